"""Convolutional RBMs and their stack: `ConvRBM` and `ConvStack` (the convolutional DBN).

Lee, Grosse, Ranganath & Ng 2009, "Convolutional deep belief networks for
scalable unsupervised learning of hierarchical representations" (ICML). With
K filters W^k shared over positions, one bias b_k per filter and one visible
bias c per channel, the energy of an image v and hidden maps h^k is

    E(v, h) = -sum_k h^k . (W^k (*) v) - sum_k b_k sum_ij h^k_ij - c sum v      (binary v)

where (*) is the valid cross-correlation (`Conv2d.up`); the visible field is the
full convolution sum_k W^k * h^k (`Conv2d.down`). Gaussian visible units add
sum v^2 / 2 (unit variance; the data should be standardised, as the paper whitens).
The conditionals are the unit types' own given these fields:

    p(h^k_ij = 1 | v) = sigmoid((W^k (*) v)_ij + b_k)       (or the pooled blocks below)
    p(v | h)          = the visible units' law given sum_k W^k * h^k + c

Probabilistic max-pooling (section 3.3, `core/pooling.py`): hidden maps are cut
into C x C blocks of which at most one unit is on; the pooling unit above a block
is on iff some unit in the block is on.

Sparsity (section 3.5, "the regularisation of Lee et al. 2008"): the objective the
factory attaches (`training.objectives.Sparse`) pushes each filter's mean activation
towards a target p; the model only names its live knobs (`live_setters`).

The convolutional DBN (section 3.4) stacks ConvRBMs: with probabilistic max-pooling
each layer passes its pooling units' probabilities up; going down, a pooling unit
that is on switches on one detection unit of its block, chosen uniformly (the units
of a block share their bias), off switches all off.

Datasets and the trainer stay flat: the model takes (batch, C*H*W) rows and the
coupling reshapes them into images.
"""
from __future__ import annotations

import torch
from torch import nn

from ..core.couplings import Conv2d
from ..core.pooling import ProbMaxPool
from ..core.units import Units
from .rbm import RBM
from .stacks import Stack


class ConvRBM(RBM):
    """An RBM whose coupling is `Conv2d`: tied filters, one bias per filter, one visible bias per channel
    (Lee et al. 2009)."""

    def __init__(self, visible: Units, hidden: Units, coupling: Conv2d, objective=None):
        super().__init__(visible, hidden, coupling)
        self.b = nn.Parameter(torch.zeros(coupling.n_filters, 1, 1))     # broadcast over positions
        self.a.register_hook(self._tie_visible_bias)
        self.objective = objective

    def live_setters(self) -> dict:
        """Live hyperparameters (RBM.set_hparam): the sparsity term of the objective."""
        return {"sparsity_target": self.set_sparsity_target, "sparsity_cost": self.set_sparsity_cost}

    def set_sparsity_target(self, value):
        self.objective.target = float(value)

    def set_sparsity_cost(self, value):
        self.objective.cost = float(value)

    def _tie_visible_bias(self, grad):
        # a holds one value per pixel, kept equal within a channel: the shared c of the paper
        # receives the sum of its pixels' gradients. (a starts at zero, so it stays tied.)
        c = self.coupling.image_shape[0]
        return grad.reshape(c, -1).sum(1, keepdim=True).expand(c, grad.numel() // c).reshape(grad.shape)

    @property
    def explicit_stats(self) -> bool:
        return False        # tied parameters: the gradient is autograd of the free-energy difference

    @property
    def filters(self) -> torch.Tensor:
        return self.coupling.W

    def _hidden(self, h):
        return h.reshape((h.shape[0],) + tuple(self.hidden.shape))

    def energy(self, v, h):
        return super().energy(v, self._hidden(h))

    def free_energy_hidden(self, h, beta=1.0):
        return super().free_energy_hidden(self._hidden(h), beta)

    def pooling_mean(self, v, beta=1.0):
        """E[pooling units | v] with probabilistic max-pooling, else E[h | v]: maps of shape (batch, K, H', W').
        Differentiable: what the next layer of a convolutional DBN sees, fine-tuning included."""
        field = self.hidden_field(v)
        if isinstance(self.hidden, ProbMaxPool):
            return self.hidden.pooled_mean(field, self.b, beta)
        return self.hidden.mean(field, self.b, beta)

    @torch.no_grad()
    def pooled(self, v, beta=1.0):
        """Mean activation of the pooling layer (the input of the next layer of a convolutional DBN)."""
        return self.pooling_mean(self.check_visible(v), beta)


class ConvStack(Stack):
    """A convolutional DBN (Lee et al. 2009, 3.4): each layer a `ConvRBM` whose images are the pooled
    (or detection) maps of the layer below."""

    def lift(self, l, x):
        return self.layers[l].pooling_mean(x).flatten(1)

    def lower(self, l, h, sample=False, beta=1.0, generator=None):
        hidden = self.layers[l].hidden
        if isinstance(hidden, ProbMaxPool):        # pooling units -> detection units of their blocks
            h = hidden.unpool(h, sample, generator)
        return super().lower(l, h.flatten(1), sample, beta, generator)
