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
            model.a.grad = vis.bias_stat(v_neg, model.a) / n_neg - vis.bias_stat(v_pos, model.a) / n_pos
            model.b.grad = hid.bias_stat(h_neg, model.b) / n_neg - hid.bias_stat(h_pos, model.b) / n_pos
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
        """Set the gradients for one mini-batch; return the negative particles."""
        with torch.no_grad():
            h_mean, h = model.hidden.mean_and_sample(model.hidden_field(v), model.b, 1.0, generator)
            v_neg, h_neg = sampler.negative(model, v, h, k, beta, generator)
        set_contrastive_grads(model, v, h_mean, v_neg, h_neg)
        return v_neg
