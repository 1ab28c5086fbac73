"""Couplings: how the two layers of an RBM talk to each other.

A coupling owns the interaction weights and answers four questions:
`up(sv)` (the field on the hidden layer), `down(sh)` (the field on the visible
layer), `energy(sv, sh)` (the interaction energy -s_v^T W s_h per sample) and
`cd_grad(...)` (the difference of -dE/dW between positive and negative
particles, the statistic contrastive divergence follows).
"""
from __future__ import annotations

import torch
from torch import nn


class Dense(nn.Module):
    """A full weight matrix W of shape (n_visible, n_hidden)."""

    def __init__(self, n_visible: int, n_hidden: int, init_std: float = 0.01,
                 generator: torch.Generator | None = None):
        super().__init__()
        # Hinton 2012, section 8: small random weights N(0, 0.01^2) break the symmetry.
        W = torch.randn(n_visible, n_hidden, generator=generator) * init_std
        self.W = nn.Parameter(W)

    @property
    def visible_shape(self):
        return (self.W.shape[0],)

    @property
    def hidden_shape(self):
        return (self.W.shape[1],)

    def up(self, sv: torch.Tensor) -> torch.Tensor:
        return sv @ self.W

    def down(self, sh: torch.Tensor) -> torch.Tensor:
        return sh @ self.W.t()

    def energy(self, sv: torch.Tensor, sh: torch.Tensor) -> torch.Tensor:
        return -((sv @ self.W) * sh).sum(1)

    def cd_grad(self, sv_pos, sh_pos, sv_neg, sh_neg) -> torch.Tensor:
        """Descent direction for W: -(<sv sh^T>_pos - <sv sh^T>_neg), batch means, two GEMMs."""
        neg = sv_neg.t() @ sh_neg
        return torch.addmm(neg, sv_pos.t(), sh_pos, beta=1.0 / sv_neg.shape[0], alpha=-1.0 / sv_pos.shape[0])

    def extra_repr(self) -> str:
        return f"{self.W.shape[0]} x {self.W.shape[1]}"

