"""Convolutional RBMs: `ConvRBM` (Bernoulli visible) and `GaussianConvRBM` (Gaussian visible).

Lee, Grosse, Ranganath & Ng 2009, "Convolutional deep belief networks for
scalable unsupervised learning of hierarchical representations" (ICML). With
K filters W^k shared over positions, one bias b_k per filter and one visible
bias c per channel, the energy of an image v and hidden maps h^k is

    E(v, h) = -sum_k h^k . (W^k (*) v) - sum_k b_k sum_ij h^k_ij - c sum v      (binary v)

where (*) is the valid cross-correlation (`Conv2d.up`); the visible field is the
full convolution sum_k W^k * h^k (`Conv2d.down`). Gaussian visible units add
sum v^2 / 2 (unit variance; the data should be standardised, as the paper whitens).

Probabilistic max-pooling (section 3.3): hidden maps are cut into C x C blocks
of which at most one unit is on; the block's C^2 + 1 states (one unit on, or all
off) follow a softmax over its inputs with the "off" state at zero energy, and
the pooling unit above the block is on iff some unit in the block is on.

Sparsity (section 3.5, "the regularisation of Lee et al. 2008"): the
`Sparse` objective pushes each filter's mean activation towards a target p.

Datasets and the trainer stay flat: the model takes (batch, C*H*W) rows and the
coupling reshapes them into images.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..core.couplings import Conv2d
from ..training.objectives import Sparse
from ..models.rbm import RBM
from ..registry import INIT_STD, Param, Variant, register
from ..core.units import Bernoulli, Gaussian, Units, flat_sum, one_hot_from
from ..core.continuous import StandardizedGaussian


class ProbMaxPool(Units):
    """Binary detection units in C x C blocks with at most one unit on per block (Lee et al. 2009, 3.3).

    For a block with inputs z_i = beta (I_i + b):
        p(h_i = 1) = exp(z_i) / (1 + sum_j exp(z_j)),  p(all off) = 1 / (1 + sum_j exp(z_j)),
    and the block contributes log(1 + sum_j exp(z_j)) to the log-partition.
    """

    name = "prob-max-pool"
    discrete = True

    def __init__(self, shape: tuple, block: int):
        super().__init__(shape)
        k, h, w = self.shape
        if block < 1 or h % block or w % block:
            raise ValueError(f"probabilistic max-pooling needs hidden maps whose sides are multiples of the "
                             f"pool size; maps are {h}x{w} and pool_size={block}. Change the filter size, "
                             "the image size or pool_size")
        self.block = block

    def _blocks(self, x):
        """(batch, K, H, W) -> (batch, K, H/C, W/C, C*C)."""
        k, h, w = self.shape
        c = self.block
        x = x.expand((x.shape[0],) + self.shape) if x.dim() == 4 else x.reshape((-1,) + self.shape)
        return x.reshape(-1, k, h // c, c, w // c, c).permute(0, 1, 2, 4, 3, 5).reshape(-1, k, h // c, w // c, c * c)

    def _unblocks(self, x):
        k, h, w = self.shape
        c = self.block
        return x.reshape(-1, k, h // c, w // c, c, c).permute(0, 1, 2, 4, 3, 5).reshape((-1,) + self.shape)

    def _logits(self, I, bias, beta):
        """Each block's C*C unit logits plus a last, zero logit for "all off"."""
        z = self._blocks(beta * (I + bias))
        return torch.cat([z, torch.zeros_like(z[..., :1])], -1)

    def mean(self, I, bias, beta=1.0):
        return self._unblocks(torch.softmax(self._logits(I, bias, beta), -1)[..., :-1])

    def sample(self, I, bias, beta=1.0, generator=None):
        return self.mean_and_sample(I, bias, beta, generator)[1]

    def mean_and_sample(self, I, bias, beta=1.0, generator=None):
        p = torch.softmax(self._logits(I, bias, beta), -1)
        on = one_hot_from(p, generator)[..., :-1]           # the last state is "all off"
        return self._unblocks(p[..., :-1]), self._unblocks(on)

    def pooled_mean(self, I, bias, beta=1.0):
        """p(pooling unit on) = 1 - p(block all off): shape (batch, K, H/C, W/C)."""
        return 1 - torch.softmax(self._logits(I, bias, beta), -1)[..., -1]

    def log_partition(self, I, bias, beta=1.0):
        return flat_sum(torch.logsumexp(self._logits(I, bias, beta), -1))

    def energy(self, x, bias):
        return -flat_sum(x.reshape((-1,) + self.shape) * bias)

    def check(self, x, what="input"):
        value_range = super().check(x, what)
        binary = bool(((x == 0) | (x == 1)).all())
        if not binary or bool((self._blocks(x).sum(-1) > 1).any()):
            raise ValueError(f"{what} must be binary with at most one unit on in each "
                             f"{self.block}x{self.block} pooling block")
        return value_range

    @property
    def n_states(self) -> int:
        return (self.block ** 2 + 1) ** (self.size // self.block ** 2)

    def enumerate(self, dtype=torch.float64, device=None, start=0, stop=None) -> torch.Tensor:
        """Every allowed state (flat rows): block b's digit in base C^2 + 1 says which unit is on (0 = none)."""
        base, n_blocks = self.block ** 2 + 1, self.size // self.block ** 2
        stop = self.n_states if stop is None else stop
        idx = torch.arange(start, stop, device=device)
        powers = base ** torch.arange(n_blocks - 1, -1, -1, device=device)
        digits = (idx[:, None] // powers) % base                          # (states, blocks)
        on = F.one_hot(digits, base)[..., 1:].to(dtype)                  # digit 0 = all off
        k, h, w = self.shape
        c = self.block
        return self._unblocks(on.reshape(-1, k, h // c, w // c, c * c)).flatten(1)


class ConvRBM(RBM):
    """An RBM whose coupling is `Conv2d`: tied filters, one bias per filter, one visible bias per channel."""

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

    @torch.no_grad()
    def pooled(self, v, beta=1.0):
        """Mean activation of the pooling layer (the input of the next layer of a convolutional DBN)."""
        field = self.hidden_field(self.check_visible(v))
        if isinstance(self.hidden, ProbMaxPool):
            return self.hidden.pooled_mean(field, self.b, beta)
        return self.hidden.mean(field, self.b, beta)


# -- the variants ---------------------------------------------------------------

def image_shape(n_visible: int, channels: int, image_height: int, image_width: int) -> tuple:
    """(C, H, W) from the hyperparameters; 0 for height and width means a square image."""
    if image_height == 0 and image_width == 0:
        side = math.isqrt(n_visible // channels)
        image_height = image_width = side
    elif image_height == 0 or image_width == 0:
        known = image_height or image_width
        image_height = image_width = known
        if n_visible % (channels * known) == 0:
            other = n_visible // (channels * known)
            image_height, image_width = (known, other) if image_width == 0 else (other, known)
    if channels * image_height * image_width != n_visible:
        raise ValueError(f"n_visible={n_visible} is not channels x image_height x image_width = {channels} x "
                         f"{image_height} x {image_width}; give image_height and image_width (and channels) "
                         "that match the data, e.g. dataset.image_shape")
    return channels, image_height, image_width


PARAMS = (
    Param("n_filters", "int", 8, "number of filters (hidden maps)", 1, 1024),
    Param("filter_height", "int", 5, "filter height in pixels", 1, 256),
    Param("filter_width", "int", 5, "filter width in pixels", 1, 256),
    Param("image_height", "int", 0, "image height (0: square, from n_visible / channels)", 0, 4096),
    Param("image_width", "int", 0, "image width (0: square, from n_visible / channels)", 0, 4096),
    Param("channels", "int", 1, "image channels", 1, 64),
    Param("pooling", "choice", "none", "probabilistic max-pooling of the hidden maps (Lee et al. 2009, 3.3)",
          choices=("none", "probabilistic-max")),
    Param("pool_size", "int", 2, "side C of the C x C pooling blocks (with pooling)", 1, 16,
          when={"pooling": ("probabilistic-max",)}),
    Param("sparsity_target", "float", 0.05, "target mean activation p of each filter's hidden units", 1e-4, 0.5,
          live=True, log=True, when={"sparsity_cost": {"not": (0,)}}),
    Param("sparsity_cost", "float", 0.0, "rate lambda pushing activations to the target (0: off)", 0.0, 100.0,
          live=True, log=True),
    INIT_STD,
)
REFERENCE = "Lee, Grosse, Ranganath & Ng 2009 (ICML), Convolutional deep belief networks"
# What the pages need beyond the schema (registry.Variant): the conv layers bring their own sparsity
# (sparsity_cost / sparsity_target), so the dense one of the training schema is not offered.
GUIDE = dict(essentials=("n_filters", "sparsity_cost", "lr", "k"), unused=("sparsity_penalty", "target_activation"),
             what_to_watch="each filter turns from noise into a small edge or stroke detector, and its feature map "
                           "lights up where that stroke appears; the reconstruction error falls.")


# Off by default so that records and checkpoints written before it existed load unchanged (a
# standardising layer carries loc/scale buffers); the dashboard turns it on (dashboard_training).
STANDARDIZE_CONV = Param("standardize", "bool", False, "standardise each pixel with the training set's mean / std "
                         "(fitted once, stored in the model); recommended for Gaussian visible units")


def _gaussian_visible(n_visible, standardize=False):
    return StandardizedGaussian(n_visible) if standardize else Gaussian(n_visible)


def _conv_factory(visible_type):
    def factory(n_visible, n_filters, filter_height, filter_width, image_height, image_width, channels,
                pooling, pool_size, sparsity_target, sparsity_cost, init_std, **visible_options):
        shape = image_shape(n_visible, channels, image_height, image_width)
        coupling = Conv2d(shape, n_filters, (filter_height, filter_width), init_std)
        hidden = (ProbMaxPool(coupling.hidden_shape, pool_size) if pooling == "probabilistic-max"
                  else Bernoulli(coupling.hidden_shape))
        return ConvRBM(visible_type(n_visible, **visible_options), hidden, coupling,
                       Sparse(sparsity_target, sparsity_cost))
    return factory


register(Variant(
    name="ConvRBM", factory=_conv_factory(Bernoulli), params=PARAMS,
    summary="convolutional RBM: shared filters, optional probabilistic max-pooling and sparsity",
    visible="Bernoulli", hidden="Bernoulli maps (or max-pooled blocks)", method="CD-k / PCD (autograd)",
    reference=REFERENCE, training_defaults={"lr": 0.01, "batch_size": 32}, **GUIDE,
    # 8 filters at lr 0.01 lower the reconstruction error by ~9 % in 600 batches, 16 at 0.03 by ~25 %
    dashboard_training={"epochs": 2000, "n_filters": 16, "lr": 0.03},
))

register(Variant(
    name="GaussianConvRBM", factory=_conv_factory(_gaussian_visible), params=PARAMS + (STANDARDIZE_CONV,),
    summary="convolutional RBM with unit-variance Gaussian visible units (standardise the data)",
    visible="Gaussian", hidden="Bernoulli maps (or max-pooled blocks)", method="CD-k / PCD (autograd)",
    reference=REFERENCE, data_kinds=("real", "unit"), training_defaults={"lr": 0.001, "batch_size": 32}, **GUIDE,
    # unit-variance units on raw [0, 1] pixels barely learn at lr 0.001 and blow up at 0.01; standardised
    # pixels learn at 0.003 (reconstruction error -45 % in 600 batches)
    dashboard_training={"epochs": 2000, "lr": 0.003, "standardize": True},
))
