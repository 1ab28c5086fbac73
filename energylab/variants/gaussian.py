"""Variants: real-valued visible units and rectified / SELU / mean-field units.

Every model here is `RBM(visible, hidden, Dense)`; the free energy and both conditionals
come from the unit types (`units.py`), where each law lives with its paper:

- `GaussianRBM`: Gaussian visible units with a fixed sigma, Bernoulli hidden units
  (Hinton & Salakhutdinov 2006; Hinton 2012, section 13.2). Visible *samples* are Gaussian
  draws. F(v) = sum_i (z_i - a_i)^2 / (2 sigma^2) - sum_j softplus(b_j + sum_i z_i W_ij / sigma)
  with z = (v - loc) / scale.
- `VarianceGaussianRBM`: the same with a learned per-unit sigma = exp(log_sigma) > 0, trained by
  autograd of the free-energy difference. `energy_form` picks the energy: "hinton" (default,
  (v/sigma)^T W h, Hinton 2012) or "cho" ((v/sigma^2)^T W h, Cho, Ilin & Raiko 2011); see
  `units.LearnedVarianceGaussian`.
- `GaussianReluRBM`: Gaussian visible, noisy rectified linear hidden units (Nair & Hinton 2010);
  its free energy is the stepped-sigmoid approximation (see `units.NoisyReLU`).
- `GaussianSeluRBM`: Gaussian visible, deterministic SELU hidden units (Klambauer et al. 2017,
  as in Learnergy); free energy is the zero-temperature approximation (`units.SELU`).
- `SigmoidRBM`: continuous [0, 1] visible units whose state is the mean-field probability
  (`units.SigmoidMeanField`), Bernoulli hidden units.

Standardisation (`standardize=True`): the Gaussian layer owns buffers `loc`/`scale`, fitted on
the training set once when training starts (`Trainer.fit` calls `visible.fit_to_data`; a resumed
or refitted model keeps them) and used by every method, so data, reconstructions and samples are
always in the data's own units, checkpoints carry the transform, and nothing is fitted per batch.
"""
from __future__ import annotations

from ..core.couplings import Dense
from ..core.units import (
    SELU,
    Bernoulli,
    Gaussian,
    LearnedVarianceGaussian,
    NoisyReLU,
    SigmoidMeanField,
    StandardizedGaussian,
    StandardizedLearnedVarianceGaussian,
)
from ..models.rbm import RBM
from ..registry import INIT_STD, N_HIDDEN, Param, Variant, register

SIGMA = Param("sigma", "float", 1.0, "fixed standard deviation of the visible units (on standardised data)",
              0.05, 10.0, log=True)
SIGMA_INIT = Param("sigma_init", "float", 1.0, "initial standard deviation of each visible unit (then learned)",
                   0.05, 10.0, log=True)
ENERGY_FORM = Param("energy_form", "choice", "hinton", "energy of the learned-variance units: hinton = "
                    "(v/sigma)^T W h (Hinton 2012), cho = (v/sigma^2)^T W h (Cho, Ilin & Raiko 2011)",
                    choices=("hinton", "cho"))
STANDARDIZE = Param("standardize", "bool", True, "standardise each visible unit with the training set's "
                    "mean / std (fitted once, stored in the model)")
REAL = ("real", "unit", "binary")       # a Gaussian layer takes any finite data
GUIDE = dict(essentials=("n_hidden", "lr", "k"), dashboard_training={"epochs": 10000, "lr": 0.01},
             what_to_watch="the weights turn from noise into smooth blobs and strokes and the reconstruction error "
                           "(in the data's own units) falls; real-valued samples are noisier than binary ones.")


def _gaussian(n_visible, sigma, standardize, learned=False, energy_form="hinton"):
    if learned:
        cls = StandardizedLearnedVarianceGaussian if standardize else LearnedVarianceGaussian
        return cls(n_visible, sigma, energy_form)
    return (StandardizedGaussian if standardize else Gaussian)(n_visible, sigma)


def gaussian_rbm(n_visible, n_hidden, init_std, sigma, standardize):
    return RBM(_gaussian(n_visible, sigma, standardize), Bernoulli(n_hidden), Dense(n_visible, n_hidden, init_std))


def variance_gaussian_rbm(n_visible, n_hidden, init_std, sigma_init, standardize, energy_form="hinton"):
    visible = _gaussian(n_visible, sigma_init, standardize, learned=True, energy_form=energy_form)
    return RBM(visible, Bernoulli(n_hidden), Dense(n_visible, n_hidden, init_std))


def gaussian_relu_rbm(n_visible, n_hidden, init_std, standardize):
    return RBM(_gaussian(n_visible, 1.0, standardize), NoisyReLU(n_hidden), Dense(n_visible, n_hidden, init_std))


def gaussian_selu_rbm(n_visible, n_hidden, init_std, standardize):
    return RBM(_gaussian(n_visible, 1.0, standardize), SELU(n_hidden), Dense(n_visible, n_hidden, init_std))


def sigmoid_rbm(n_visible, n_hidden, init_std):
    return RBM(SigmoidMeanField(n_visible), Bernoulli(n_hidden), Dense(n_visible, n_hidden, init_std))


# Hinton 2012 (section 13.2): Gaussian visible units need a learning rate one to two orders of
# magnitude below the binary RBM's (0.05); 0.01 already lowers the likelihood on standardised digits.
GAUSSIAN_TRAINING = {"lr": 0.001, "momentum": 0.5}

register(Variant(
    name="GaussianRBM", factory=gaussian_rbm, params=(N_HIDDEN, INIT_STD, SIGMA, STANDARDIZE),
    summary="Gaussian-Bernoulli RBM: real-valued visible units with a fixed sigma",
    visible="Gaussian (fixed sigma)", hidden="Bernoulli", method="CD-k / PCD",
    reference="Hinton & Salakhutdinov 2006; Hinton 2012 (practical guide, 13.2)",
    data_kinds=REAL, training_defaults=GAUSSIAN_TRAINING, **GUIDE,
))

register(Variant(
    name="VarianceGaussianRBM", factory=variance_gaussian_rbm,
    params=(N_HIDDEN, INIT_STD, SIGMA_INIT, STANDARDIZE, ENERGY_FORM),
    summary="Gaussian-Bernoulli RBM with a learned per-unit variance (sigma = exp(log_sigma))",
    visible="Gaussian (learned sigma)", hidden="Bernoulli", method="CD-k / PCD (autograd)",
    reference="Cho, Ilin & Raiko 2011 (ICANN)",
    data_kinds=REAL, training_defaults=GAUSSIAN_TRAINING, **GUIDE,
))

register(Variant(
    name="GaussianReluRBM", factory=gaussian_relu_rbm, params=(N_HIDDEN, INIT_STD, STANDARDIZE),
    summary="Gaussian visible units, noisy rectified linear hidden units (approximate free energy)",
    visible="Gaussian", hidden="noisy ReLU", method="CD-k / PCD",
    reference="Nair & Hinton 2010 (ICML)",
    data_kinds=REAL, training_defaults=GAUSSIAN_TRAINING, **GUIDE,
))

register(Variant(
    name="GaussianSeluRBM", factory=gaussian_selu_rbm, params=(N_HIDDEN, INIT_STD, STANDARDIZE),
    summary="Gaussian visible units, deterministic SELU hidden units (approximate free energy)",
    visible="Gaussian", hidden="SELU (deterministic)", method="CD-k / PCD",
    reference="Klambauer et al. 2017 (NeurIPS); Learnergy's GaussianSeluRBM",
    data_kinds=REAL, training_defaults=GAUSSIAN_TRAINING, **GUIDE,
))

register(Variant(
    name="SigmoidRBM", factory=sigmoid_rbm, params=(N_HIDDEN, INIT_STD),
    summary="continuous [0, 1] visible units whose states are mean-field probabilities",
    visible="sigmoid mean-field, [0, 1]", hidden="Bernoulli", method="CD-k / PCD",
    reference="Hinton 2012 (practical guide, 13.1)",
    data_kinds=("unit", "binary"),
))
