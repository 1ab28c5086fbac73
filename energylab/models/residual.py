"""The residual DBN: `ResidualStack`, a DBN whose layers pass up reinforced features.

Roder, Passos, Ribeiro, Pereira, Papa & Rossi 2020, "A layer-wise information
reinforcement approach to improve learning in deep belief networks" (ICAISC;
Learnergy's stack package). Each layer l is an ordinary RBM trained greedily as in
a DBN (`stacks.py`); only what the next layer sees changes: the hidden
probabilities reinforced by the rectified pre-activation. With a_l = x_l W_l + b_l:

    r_l     = relu(a_l) / m_l,                       m_l = max over the training set of relu(a_l)
    x_{l+1} = min(1, (z1 sigmoid(a_l) + z2 r_l) / n_l), n_l = max over the training set of z1 sigmoid(a_l) + z2 r_l

(z1, z2 = `zeta1`, `zeta2`; sigmoid(a_l) is the layer's own hidden mean, p(h_l | x_l)).
Learnergy divides by the maxima of each mini-batch, so an example's features depend
on its batch mates; here m_l and n_l are fitted once on the training set when layer l
finishes (`fit_lift`) and stored in the model (buffers, checkpointed). Before that, the
maxima of the batch at hand are used. The top-down pass treats x_{l+1} as layer l's
hidden state (the residual map has no generative inverse), so `lower` is the DBN's.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .stacks import CHUNK, Stack


class ResidualStack(Stack):
    """A DBN whose layers pass up probabilities reinforced by the rectified pre-activation
    (Roder et al. 2020; see the module docstring)."""

    def __init__(self, layers, zeta1: float, zeta2: float, **options):
        self.zeta1, self.zeta2 = zeta1, zeta2
        super().__init__(layers, **options)

    def init_lift(self):
        self.register_buffer("relu_max", torch.zeros(self.depth))     # m_l; 0 = not fitted yet
        self.register_buffer("out_max", torch.zeros(self.depth))      # n_l

    def _parts(self, l, x):
        layer = self.layers[l]
        field = layer.hidden_field(x)
        return layer.hidden.mean(field, layer.b), F.relu(field + layer.b)

    @staticmethod
    def _scale(fitted, batch_max):
        # a fitted maximum if there is one, else the batch's (no host sync either way)
        return torch.where(fitted > 0, fitted, batch_max).clamp_min(1e-12)

    def lift(self, l, x):
        p, r = self._parts(l, x)
        combined = self.zeta1 * p + self.zeta2 * r / self._scale(self.relu_max[l], r.max())
        return (combined / self._scale(self.out_max[l], combined.max())).clamp_max(1.0).flatten(1)

    @torch.no_grad()
    def fit_lift(self, l, x):
        self.relu_max[l] = self.out_max[l] = 0.0
        chunks = [x[i:i + CHUNK] for i in range(0, x.shape[0], CHUNK)]
        self.relu_max[l] = torch.stack([self._parts(l, c)[1].max() for c in chunks]).max().clamp_min(1e-12)
        combined = [self.zeta1 * p + self.zeta2 * r / self.relu_max[l] for p, r in map(lambda c: self._parts(l, c),
                                                                                      chunks)]
        self.out_max[l] = torch.stack([c.max() for c in combined]).max().clamp_min(1e-12)
