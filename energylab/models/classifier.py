"""The classification RBM: `ClassRBM`, an RBM over (x, y) with a one-hot class layer.

Larochelle & Bengio 2008, "Classification using discriminative restricted
Boltzmann machines" (ICML). The model adds a one-hot class layer y to an RBM:

    E(y, x, h) = -h^T W^T x - a^T x - b^T h - d^T e_y - h^T U^T e_y

(the paper's W, b, c are our W^T, a, b; here W is n_visible x n_hidden and U is
n_classes x n_hidden). Summing h out gives, for every class, in closed form

    -F(x, y) = a^T x + d_y + sum_j softplus(b_j + (W^T x)_j + U_yj)
    p(y | x) = softmax_y(-F(x, y))

and the conditionals of block Gibbs sampling on the joint are

    p(h_j = 1 | x, y) = sigmoid(b_j + (W^T x)_j + U_yj)
    p(x_i = 1 | h)    = sigmoid(a_i + (W h)_i),      p(y | h) = softmax_y(d_y + (U h)_y)

The same model is trained by two objectives, which the variant's factory attaches
(`training/objectives.py`; a model does not import the trainer's layer):
`Discriminative` (exact -log p(y | x)) and `Hybrid` (plus alpha times the CD-k
estimate of -log p(x, y) on the joint, `joint_chain`). For everything that takes x
alone (free energy, p(h | x), Gibbs sampling, reconstruction, pseudo-likelihood,
exact log-likelihood) the class is summed out exactly, so the engine's metrics and
trainer treat the model as an RBM over x.
"""
from __future__ import annotations

import torch
from torch import nn

from ..core.couplings import Dense
from ..core.units import Bernoulli, OneHot
from .rbm import RBM


class ClassRBM(RBM):
    """An RBM with a softmax class layer coupled to the hidden layer (Larochelle & Bengio 2008)."""

    needs_labels = True     # the trainer hands this model (x, y) batches

    def __init__(self, n_visible: int, n_hidden: int, n_classes: int, init_std: float = 0.01, objective=None):
        super().__init__(Bernoulli(n_visible), Bernoulli(n_hidden), Dense(n_visible, n_hidden, init_std))
        self.labels = OneHot(n_classes)
        self.label_coupling = Dense(n_classes, n_hidden, init_std)
        self.d = nn.Parameter(torch.zeros(n_classes))
        self.objective = objective

    def bias_names(self) -> dict:
        """The class units' bias `d` sits with the visible side (Larochelle & Bengio 2008: (x, y) is visible)."""
        return {"visible_bias": {"a", "d"}, "hidden_bias": {"b"}}

    def live_setters(self) -> dict:
        return {"alpha": self.set_alpha}

    def set_alpha(self, value):
        """Live weight of the hybrid's generative term (RBM.set_hparam)."""
        if not hasattr(self.objective, "alpha"):
            raise ValueError("only the hybrid objective has a generative weight alpha")
        self.objective.alpha = float(value)

    @property
    def U(self) -> torch.Tensor:
        return self.label_coupling.W

    @property
    def n_classes(self) -> int:
        return self.labels.size

    def one_hot(self, y: torch.Tensor) -> torch.Tensor:
        return nn.functional.one_hot(y.long(), self.n_classes).to(self.a.dtype)

    # -- the closed form: every class at once ------------------------------------------
    def class_scores(self, x, beta=1.0):
        """-F(x, y) at inverse temperature beta, for every class y: shape (batch, n_classes)."""
        n, c = x.shape[0], self.n_classes
        fields = self.hidden_field(x)[:, None, :] + self.U          # (batch, class, hidden)
        hidden = self.hidden.log_partition(fields.reshape(n * c, -1), self.b, beta).view(n, c)
        return hidden + beta * (self.d - self.visible.energy(x, self.a)[:, None])

    def log_p_y(self, x, beta=1.0):
        """log p(y | x) for every class, exact."""
        return torch.log_softmax(self.class_scores(x, beta), -1)

    @torch.no_grad()
    def predict_proba(self, x):
        return self.log_p_y(self.check_visible(x, "inputs")).exp()

    @torch.no_grad()
    def predict(self, x):
        return self.predict_proba(x).argmax(-1)

    # -- the RBM over x: y summed out exactly ------------------------------------------------
    def free_energy(self, x, beta=1.0):
        return -torch.logsumexp(self.class_scores(x, beta), -1)

    def energy(self, x, h):
        """E(x, h) = -log sum_y exp(-E(y, x, h))."""
        return super().energy(x, h) - self.labels.log_partition(self.label_coupling.down(self.hidden.stat(h)), self.d)

    def free_energy_hidden(self, h, beta=1.0):
        label_term = self.labels.log_partition(self.label_coupling.down(self.hidden.stat(h)), self.d, beta)
        return super().free_energy_hidden(h, beta) - label_term

    def p_h(self, x, beta=1.0):
        """E[h | x] = sum_y p(y | x) sigmoid(b + W^T x + U_y)."""
        fields = self.hidden_field(x)[:, None, :] + self.U
        p_y = self.log_p_y(x, beta).exp()
        return (p_y[..., None] * self.hidden.mean(fields, self.b, beta)).sum(1)

    def sample_h(self, x, beta=1.0, generator=None):
        """A draw of h from p(h | x): first y from p(y | x), then h from p(h | x, y)."""
        y = self.labels.sample(self.log_p_y(x, beta), 0.0, 1.0, generator)
        return self.hidden.sample(self.hidden_field_xy(x, y), self.b, beta, generator)

    def chain_from_hidden(self, h, k: int, beta=1.0, generator=None):
        for step in range(k):
            v = self.sample_v(h, beta, generator)
            if step < k - 1:
                h = self.sample_h(v, beta, generator)
        return v, self.p_h(v, beta)

    # -- the joint (x, y): the generative term of the hybrid objective ---------------------
    def hidden_field_xy(self, x, y):
        return self.hidden_field(x) + self.label_coupling.up(y)

    def joint_free_energy(self, x, y, beta=1.0):
        """F(x, y) per example, y one-hot."""
        own = self.visible.energy(x, self.a) + self.labels.energy(y, self.d)
        return beta * own - self.hidden.log_partition(self.hidden_field_xy(x, y), self.b, beta)

    def joint_chain(self, x, y, k: int, generator=None):
        """k steps of block Gibbs on (x, y) | h and h | (x, y) from the data: CD-k's negative (x, y)."""
        h = self.hidden.sample(self.hidden_field_xy(x, y), self.b, 1.0, generator)
        for step in range(k):
            x = self.sample_v(h, 1.0, generator)
            y = self.labels.sample(self.label_coupling.down(h), self.d, 1.0, generator)
            if step < k - 1:
                h = self.hidden.sample(self.hidden_field_xy(x, y), self.b, 1.0, generator)
        return x, y
