"""Variants with one-hot (softmax) hidden units (`units.OneHot` with groups).

- `OneHotRBM`: Bernoulli visible units, hidden units in groups of `group_size` of which
  exactly one is on per group: each group is a K-way categorical latent variable
  (the "softmax units" of Hinton 2012, section 13.1, on the hidden side; Paysage's OneHot).
- `GaussianMixtureRBM`: Gaussian visible units and a single one-hot hidden group of
  `n_hidden` components. Summing out h gives p(v) = sum_k pi_k N(v; a + sigma W_k, sigma^2):
  a mixture of isotropic Gaussians with mixing weights pi_k ∝ exp(b_k + |W_k|^2/2 + a.W_k / sigma).
"""
from __future__ import annotations

from dataclasses import replace

from ..core.couplings import Dense
from ..core.units import Bernoulli, OneHot
from ..models.rbm import RBM
from ..registry import INIT_STD, N_HIDDEN, Param, Variant, register
from .gaussian import GAUSSIAN_TRAINING, REAL, SIGMA, STANDARDIZE, _gaussian

GROUP_SIZE = Param("group_size", "int", 4, "categories per one-hot hidden group (must divide n_hidden)", 2, 1000)


def onehot_rbm(n_visible, n_hidden, group_size, init_std):
    if n_hidden % group_size:
        raise ValueError(f"n_hidden={n_hidden} is not a whole number of groups of group_size={group_size}; "
                         "choose n_hidden as a multiple of group_size")
    return RBM(Bernoulli(n_visible), OneHot(n_hidden, group_size), Dense(n_visible, n_hidden, init_std))


def gaussian_mixture_rbm(n_visible, n_hidden, init_std, sigma, standardize):
    return RBM(_gaussian(n_visible, sigma, standardize), OneHot(n_hidden), Dense(n_visible, n_hidden, init_std))


register(Variant(
    name="OneHotRBM", factory=onehot_rbm, params=(N_HIDDEN, GROUP_SIZE, INIT_STD),
    summary="Bernoulli visible units, hidden units in one-hot (softmax) groups",
    visible="Bernoulli", hidden="one-hot groups", method="CD-k / PCD",
    reference="Hinton 2012 (practical guide, 13.1); Salakhutdinov, Mnih & Hinton 2007",
    essentials=("n_hidden", "group_size", "lr", "k"),
    what_to_watch="each group of hidden units picks one of its categories per image: the filters of a group "
                  "compete, so they split the strokes between them; the reconstruction error falls.",
))

register(Variant(
    name="GaussianMixtureRBM", factory=gaussian_mixture_rbm,
    params=(Param("n_hidden", "int", 8, "number of mixture components (one one-hot hidden group)", 1, 10000),
            # Components start spread over the standardised plane (init_std 1) and are as wide as half
            # the data's spread (sigma 0.5): with sigma 1 and tiny initial weights one broad component
            # centred on the data explains a ring of 8 tight clusters as well as any, and nothing moves
            # (reconstruction error flat at 2.0, the data's variance); narrower ones (0.2) strand
            # components between clusters under CD-1.
            replace(INIT_STD, default=1.0), replace(SIGMA, default=0.5), STANDARDIZE),
    summary="Gaussian visible units, one one-hot hidden group: a mixture of isotropic Gaussians",
    visible="Gaussian (fixed sigma)", hidden="one-hot (one group)", method="CD-k / PCD",
    reference="Paysage (Unlearn.AI) Gaussian-OneHot RBM; Hinton 2012 (13.1, 13.2)",
    data_kinds=REAL, training_defaults={**GAUSSIAN_TRAINING, "lr": 0.01}, default_dataset="gaussian-mixture",
    essentials=("n_hidden", "sigma", "lr", "k"),
    what_to_watch="the components (one per hidden unit) move onto the clusters: samples gather on the 8 clusters "
                  "of the ring and the free-energy landscape grows a well under each; the reconstruction error falls.",
))
