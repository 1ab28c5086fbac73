"""The plain Bernoulli-Bernoulli RBM (Hinton 2002; Hinton 2012, the practical guide)."""
from ..core.couplings import Dense
from ..core.units import Bernoulli
from ..models.rbm import RBM
from ..registry import INIT_STD, N_HIDDEN, Variant, register


def _bernoulli_rbm(n_visible, n_hidden, init_std):
    return RBM(Bernoulli(n_visible), Bernoulli(n_hidden), Dense(n_visible, n_hidden, init_std))


register(Variant(
    name="RBM", factory=_bernoulli_rbm, params=(N_HIDDEN, INIT_STD),
    summary="Bernoulli-Bernoulli restricted Boltzmann machine",
    visible="Bernoulli", hidden="Bernoulli", method="CD-k / PCD",
    reference="Hinton 2002; Hinton 2012 (practical guide)",
))
