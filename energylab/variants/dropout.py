"""Variants: the dropout family, a Bernoulli-Bernoulli RBM composed with a mask policy (`masks.py`).

- `DropoutRBM`: hidden units dropped per training case, mask kept through the Gibbs chain,
  test-time weights p W (Srivastava et al. 2014, JMLR 15, section 8).
- `DropConnectRBM`: weights dropped per mini-batch, test-time weights p W (Wan et al. 2013).
- `EDropoutRBM`: energy-based dropout, the mask decided by each hidden unit's importance
  (Roder, de Rosa, de Albuquerque, Rossi & Papa 2020, IEEE TETCI).

The free energy and conditionals are those of `RBM` with the policy's fields (`masks.MaskedRBM`).
"""
from __future__ import annotations

from ..core.couplings import Dense
from ..core.units import Bernoulli
from ..models.masks import DropConnect, EnergyDropout, HiddenDropout, MaskedRBM
from ..registry import INIT_STD, N_HIDDEN, Param, Variant, register

RETAIN_P = Param("p", "float", 0.5, "RETAIN probability p of each unit (drop rate 1 - p); test time uses W' = p W",
                 0.05, 1.0, live=True)
RETAIN_P_WEIGHTS = Param("p", "float", 0.5, "RETAIN probability p of each weight (drop rate 1 - p); test time "
                         "uses the expected weights p W", 0.05, 1.0, live=True)


def _masked(n_visible, n_hidden, init_std, mask):
    return MaskedRBM(Bernoulli(n_visible), Bernoulli(n_hidden), Dense(n_visible, n_hidden, init_std), mask)


def dropout_rbm(n_visible, n_hidden, init_std, p):
    return _masked(n_visible, n_hidden, init_std, HiddenDropout(p))


def dropconnect_rbm(n_visible, n_hidden, init_std, p):
    return _masked(n_visible, n_hidden, init_std, DropConnect(p))


def edropout_rbm(n_visible, n_hidden, init_std):
    return _masked(n_visible, n_hidden, init_std, EnergyDropout())


DROPOUT_WATCH = ("as in a plain RBM the filters turn into strokes and the reconstruction error falls, a little "
                 "slower; the free-energy gap stays lower (less overfitting). Move p while it runs to see it.")


register(Variant(
    name="DropoutRBM", factory=dropout_rbm, params=(N_HIDDEN, INIT_STD, RETAIN_P),
    summary="RBM with dropout on hidden units (mask per case, kept through the Gibbs chain)",
    visible="Bernoulli", hidden="Bernoulli (dropout)", method="CD-k / PCD with a kept mask",
    reference="Srivastava, Hinton, Krizhevsky, Sutskever & Salakhutdinov 2014 (JMLR), section 8",
    essentials=("n_hidden", "p", "lr", "k"), what_to_watch=DROPOUT_WATCH,
))

register(Variant(
    name="DropConnectRBM", factory=dropconnect_rbm, params=(N_HIDDEN, INIT_STD, RETAIN_P_WEIGHTS),
    summary="RBM with DropConnect on the weights (mask per mini-batch; test time p W)",
    visible="Bernoulli", hidden="Bernoulli", method="CD-k / PCD with masked weights (autograd)",
    reference="Wan, Zeiler, Zhang, LeCun & Fergus 2013 (ICML)",
    essentials=("n_hidden", "p", "lr", "k"), what_to_watch=DROPOUT_WATCH,
    dashboard_training={"epochs": 10000, "lr": 0.2},
))

register(Variant(
    name="EDropoutRBM", factory=edropout_rbm, params=(N_HIDDEN, INIT_STD),
    summary="RBM with energy-based dropout: each hidden unit's importance decides its mask, per case",
    visible="Bernoulli", hidden="Bernoulli (E-Dropout)", method="CD-k with an importance mask",
    reference="Roder, de Rosa, de Albuquerque, Rossi & Papa 2020 (IEEE TETCI)",
    what_to_watch=DROPOUT_WATCH,
))
