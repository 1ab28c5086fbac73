"""One-hot (softmax) units: categorical layers, usable on either side of a coupling.

See `units.py` for the interface every unit type implements.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import Units, flat_sum, one_hot_from


class OneHot(Units):
    """Groups of units of which exactly one per group is on: softmax (categorical) units.

    p(x_g = e_i | I) = softmax_i(beta (I_g + b_g)) independently per group g, and the
    log-partition is sum_g log sum_i exp(beta (I_gi + b_gi)). By default the whole last
    dimension is one group: the class units of the discriminative RBM (Larochelle & Bengio
    2008, "Classification using discriminative restricted Boltzmann machines"). With
    `group_size=C` a flat layer of n = G * C units is G consecutive groups of C categories,
    so a dense coupling can use it on either layer (Salakhutdinov, Mnih & Hinton 2007 use
    such K-way softmax visible units; with Gaussian visible units a one-hot hidden layer
    makes the RBM a mixture of Gaussians). Paysage calls these OneHot units.
    """

    name = "onehot"
    discrete = True

    def __init__(self, n, group_size: int | None = None):
        super().__init__(n)
        last = self.shape[-1]
        self.group_size = last if group_size is None else int(group_size)
        if self.group_size < 1 or last % self.group_size:
            raise ValueError(f"a one-hot layer of {last} units cannot be cut into groups of {group_size}; "
                             "choose a group_size that divides the number of units")

    @property
    def n_groups(self) -> int:
        return self.size // self.group_size

    def _grouped(self, x):
        return x.reshape(x.shape[:-1] + (-1, self.group_size))

    def mean(self, I, bias, beta=1.0):
        z = beta * (I + bias)
        return torch.softmax(self._grouped(z), -1).reshape(z.shape)

    def sample(self, I, bias, beta=1.0, generator=None):
        return self.mean_and_sample(I, bias, beta, generator)[1]

    def mean_and_sample(self, I, bias, beta=1.0, generator=None):
        p = self.mean(I, bias, beta)
        q = self._grouped(p)
        return p, one_hot_from(q, generator).reshape(p.shape)

    def log_partition(self, I, bias, beta=1.0):
        z = beta * (I + bias)
        return flat_sum(torch.logsumexp(self._grouped(z), -1).reshape(z.shape[0], -1))

    def energy(self, x, bias):
        return -flat_sum(x * bias)

    def check(self, x, what="input"):
        value_range = super().check(x, what)
        if not bool((((x == 0) | (x == 1)).all()) and (self._grouped(x).sum(-1) == 1).all()):
            raise ValueError(f"{what} must be one-hot rows (a single 1 per group of {self.group_size}); "
                             "turn class indices into one-hot rows with torch.nn.functional.one_hot")
        return value_range

    def enumerate(self, dtype=torch.float64, device=None, start=0, stop=None) -> torch.Tensor:
        """All group_size ** n_groups states (rows), or the slice [start, stop), first group most significant."""
        if len(self.shape) != 1:
            raise ValueError("enumerate supports a flat one-hot layer; this layer has shape "
                             f"{self.shape}")
        c, g = self.group_size, self.n_groups
        stop = self.n_states if stop is None else stop
        idx = torch.arange(start, stop, device=device)
        powers = c ** torch.arange(g - 1, -1, -1, device=device)
        digits = (idx[:, None] // powers) % c                      # (states, groups)
        return F.one_hot(digits, c).to(dtype).reshape(len(idx), g * c)

    @property
    def n_states(self) -> int:
        return self.group_size ** self.n_groups
