"""Convolutional RBMs: the named variants `ConvRBM` (Bernoulli visible) and `GaussianConvRBM` (Gaussian visible).

Lee, Grosse, Ranganath & Ng 2009 (ICML). The model, its energy and conditionals are in
`models/conv.py`, probabilistic max-pooling (section 3.3) in `core/pooling.py`, the
sparsity term (section 3.5) in `training/objectives.py` (`Sparse`); here: the schema,
the image shape from the hyperparameters, the factories and `register`.
"""
from __future__ import annotations

import math

from ..core.continuous import StandardizedGaussian
from ..core.couplings import Conv2d
from ..core.pooling import ProbMaxPool
from ..core.units import Bernoulli, Gaussian
from ..models.conv import ConvRBM
from ..registry import INIT_STD, Param, Variant, register
from ..training.objectives import Sparse


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
