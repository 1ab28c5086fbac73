"""Objectives: turn positive (data) and negative (model) particles into gradients.

The log-likelihood gradient of any RBM is a difference of expectations,

    d log p(v) / d theta = -<dF/d theta>_data + <dF/d theta>_model,

(Hinton 2002). `Generative` estimates the model term with a sampler's particles
(CD-k or PCD). Where every part has closed-form sufficient statistics (dense
coupling, Bernoulli or fixed-variance Gaussian units) the gradient is written
directly from them: no forward pass is recomputed and no autograd graph is built.
Otherwise (learned variances, masks) it falls back to autograd on the
free-energy difference, which has the same expectation.
"""
from __future__ import annotations

import torch

from . import regularizers


def set_contrastive_grads(model, v_pos, h_pos, v_neg, h_neg) -> None:
    """Write -(<stat>_pos - <stat>_neg) into `.grad` of the model's parameters.

    `h_pos` and `h_neg` are the conditional means E[h | v] of the particles.
    """
    if model.explicit_stats and hasattr(model.coupling, "cd_grad"):
        vis, hid = model.visible, model.hidden
        n_pos, n_neg = v_pos.shape[0], v_neg.shape[0]
        with torch.no_grad():
            model.coupling.W.grad = model.coupling.cd_grad(vis.stat(v_pos), hid.stat(h_pos),
                                                           vis.stat(v_neg), hid.stat(h_neg))
            # <stat>_neg - <stat>_pos, computed in place on the fresh negative sums
            model.a.grad = vis.bias_stat(v_neg, model.a).div_(n_neg).sub_(vis.bias_stat(v_pos, model.a),
                                                                          alpha=1 / n_pos)
            model.b.grad = hid.bias_stat(h_neg, model.b).div_(n_neg).sub_(hid.bias_stat(h_pos, model.b),
                                                                          alpha=1 / n_pos)
        return
    with torch.enable_grad():
        for p in model.parameters():
            p.grad = None
        loss = model.free_energy(v_pos).mean() - model.free_energy(v_neg.detach()).mean()
        loss.backward()


class Generative:
    """Approximate maximum likelihood with a negative-phase sampler (CD-k, PCD)."""

    name = "generative"

    def step(self, model, v, sampler, k: int, beta: float = 1.0, generator=None):
        """Set the gradients for one mini-batch; return the negative particles.

        A model with a mask policy (`masks.MaskedRBM`) draws its mask in `begin_batch` and keeps
        it through the positive phase, the negative chain and the gradient (Srivastava et al. 2014).
        """
        begin = getattr(model, "begin_batch", None)
        if begin is not None:
            begin(v, generator)
        try:
            with torch.no_grad():
                h_mean, h = model.hidden.mean_and_sample(*model.hidden_input(v), 1.0, generator)
                v_neg, h_neg = sampler.negative(model, v, h, k, beta, generator)
            set_contrastive_grads(model, v, h_mean, v_neg, h_neg)
        finally:
            if begin is not None:
                model.end_batch()
        return v_neg


def _labelled(batch):
    """Split a (v, y) batch; a clear error when the trainer passed no labels."""
    if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
        raise ValueError("this objective trains on labelled batches (v, y); give the trainer a dataset with "
                         "train_labels (e.g. el.datasets.load('digits')) and a model with needs_labels = True")
    return batch


def _zero_grads(model) -> None:
    for p in model.parameters():
        p.grad = None


class Discriminative:
    """Maximise the exact log p(y | x) (Larochelle & Bengio 2008, section 3).

    The class conditional of a classification RBM is a closed-form softmax, so
    its gradient is exact: autograd of the mean negative log p(y | x). No
    sampler is used (`sampler` and `k` are ignored).
    """

    name = "discriminative"

    def loss(self, model, x, y):
        return torch.nn.functional.nll_loss(model.log_p_y(x), y)

    def step(self, model, batch, sampler, k: int, beta: float = 1.0, generator=None):
        x, y = _labelled(batch)
        with torch.enable_grad():
            _zero_grads(model)
            self.loss(model, x, y).backward()
        return None


class Hybrid(Discriminative):
    """-log p(y | x) - alpha log p(x, y) (Larochelle & Bengio 2008, section 4).

    The generative term is the log-likelihood of the *joint* (x, one-hot y),
    estimated by CD-k on the joint: the negative chain samples x from p(x | h)
    and y from its softmax p(y | h) (`model.joint_chain`). Its surrogate
    F(x, y) - F(x-, y-) has the CD gradient; the discriminative term is exact.
    (Learnergy's "hybrid" differentiates a pseudo-likelihood instead; this is not that.)
    """

    name = "hybrid"

    def __init__(self, alpha: float = 0.01):
        self.alpha = float(alpha)

    def generative_loss(self, model, x, y, k: int, generator=None):
        """Surrogate whose gradient is the CD-k estimate of -d log p(x, y); also returns x-."""
        y1 = model.one_hot(y)
        with torch.no_grad():
            x_neg, y_neg = model.joint_chain(x, y1, k, generator)
        loss = model.joint_free_energy(x, y1).mean() - model.joint_free_energy(x_neg, y_neg).mean()
        return loss, x_neg

    def step(self, model, batch, sampler, k: int, beta: float = 1.0, generator=None):
        x, y = _labelled(batch)
        if getattr(sampler, "persistent", False):
            raise ValueError("the hybrid objective trains its generative term with CD-k on the joint (x, y), "
                             "as Larochelle & Bengio 2008 do; set sampler='cd'")
        with torch.enable_grad():
            _zero_grads(model)
            loss = self.loss(model, x, y)
            x_neg = None
            if self.alpha > 0:
                gen, x_neg = self.generative_loss(model, x, y, k, generator)
                loss = loss + self.alpha * gen
            loss.backward()
        return x_neg


class Sparse(Generative):
    """Generative training plus the sparsity regulariser of Lee, Ekanadham & Ng 2008, used by Lee et al. 2009.

    The penalty cost * sum_g (target - q_g)^2 / 2 pushes q_g, the mean activation
    E[h | v] of the units sharing hidden bias g (one filter of a convolutional
    RBM, or one unit of a dense one) over the batch and positions, towards
    `target`. As in the paper, only the hidden biases follow it and the sigmoid's
    derivative is dropped: b_g += lr * cost * (target - q_g). The gradient itself is
    `regularizers.add_sparsity`, the trainer's `sparsity_penalty` (a convolution's weights get none).
    """

    name = "sparse"

    def __init__(self, target: float = 0.05, cost: float = 0.0):
        self.target, self.cost = float(target), float(cost)

    def step(self, model, v, sampler, k: int, beta: float = 1.0, generator=None):
        v_neg = super().step(model, v, sampler, k, beta, generator)
        if self.cost > 0:
            regularizers.add_sparsity(model, v, self.cost, self.target)
        return v_neg


class CrossEntropy:
    """Supervised fine-tuning: the cross-entropy of `model(x)` (logits) against the labels y, by
    backpropagation (Hinton & Salakhutdinov 2006; Bengio, Lamblin, Popovici & Larochelle 2007).

    `step` sets `.grad` of every parameter the logits depend on and returns no particles. The
    batch losses, weighted by batch size, are summed on the device; `mean_loss()` reads and resets
    that sum (one sync per evaluation, not per batch)."""

    name = "cross_entropy"

    def __init__(self):
        self.total, self.seen = None, 0

    def step(self, model, batch, sampler, k: int, beta: float = 1.0, generator=None):
        x, y = _labelled(batch)
        with torch.enable_grad():
            _zero_grads(model)
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
        weighted = loss.detach() * x.shape[0]
        self.total = weighted if self.total is None else self.total + weighted
        self.seen += x.shape[0]
        return None

    def mean_loss(self) -> float | None:
        """The mean loss per example since the last call (None if no batch ran)."""
        if not self.seen:
            return None
        mean = (self.total / self.seen).item()
        self.total, self.seen = None, 0
        return mean
