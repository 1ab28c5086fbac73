"""Continuous and rectified unit types: standardised Gaussians, noisy ReLU, SELU, sigmoid mean-field.

See `units.py` for the interface every unit type implements.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .base import Bernoulli, Gaussian, LearnedVarianceGaussian, Units, flat_sum, normal_like

# -- continuous and rectified unit types (appended; the classes above are unchanged) ---------------------
# `exact_free_energy = False` marks a type whose log-partition is an approximation: the
# exact metrics (metrics.enumerated_layer) refuse a model with such a layer.
# `deterministic = True` marks a mean-field type whose state *is* its conditional mean, by
# definition and by name (not a sample in disguise).

class _AffineStandardized:
    """Mixin: a Gaussian layer that models raw data x through z = (x - loc) / scale.

    `loc` and `scale` are buffers fitted once on the training set (`fit_to_data`), so a
    checkpoint carries them and every method (conditionals, samples, free energy) speaks
    the raw data's units. The density of x is that of z times the Jacobian 1 / prod(scale),
    which is why `log_partition` adds sum(log scale). Standardising the data is Hinton's
    advice (2012, section 13.2); doing it inside the unit means it is never redone per batch.
    """

    min_relative_scale = 1e-3   # constant pixels get this fraction of the largest std

    def _init_standardizer(self):
        self.register_buffer("loc", torch.zeros(self.shape))
        self.register_buffer("scale", torch.ones(self.shape))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    @torch.no_grad()
    def fit_to_data(self, x: torch.Tensor, refit: bool = False) -> bool:
        """Set loc/scale to the per-unit mean/std of `x` (once); return whether it fitted now."""
        if bool(self.fitted) and not refit:
            return False
        x = x.reshape(x.shape[0], *self.shape).to(self.loc.dtype)
        if x.shape[0] < 2:
            raise ValueError("fitting the standardisation needs at least 2 training examples")
        std = x.std(0)
        floor = self.min_relative_scale * std.max().clamp_min(1e-12)
        self.loc.copy_(x.mean(0))
        self.scale.copy_(std.clamp_min(floor))
        self.fitted.fill_(True)
        return True

    def standardize(self, x):
        return (x - self.loc) / self.scale

    def unstandardize(self, z):
        return self.loc + self.scale * z

    def mean(self, I, bias, beta=1.0):
        return self.unstandardize(super().mean(I, bias, beta))

    def sample(self, I, bias, beta=1.0, generator=None):
        # Not super().sample: Gaussian.sample calls self.mean, which here is already unstandardised.
        mu = super().mean(I, bias, beta)
        return self.unstandardize(mu + self._sigma() * beta ** -0.5 * normal_like(mu, generator))

    def log_partition(self, I, bias, beta=1.0):
        log_jacobian = torch.log(self.scale).sum()
        return super().log_partition(I, bias, beta) + log_jacobian

    def energy(self, x, bias):
        return super().energy(self.standardize(x), bias)

    def stat(self, x):
        return super().stat(self.standardize(x))

    def bias_stat(self, x, bias, weight=None):
        return super().bias_stat(self.standardize(x), bias, weight)


class StandardizedGaussian(_AffineStandardized, Gaussian):
    """Gaussian units (fixed sigma) on data standardised by a fitted (loc, scale); see the mixin.

    Gaussian-Bernoulli RBM of Hinton & Salakhutdinov 2006 / Hinton 2012 (section 13.2).
    """

    name = "gaussian-standardized"

    def __init__(self, n, sigma: float = 1.0):
        super().__init__(n, sigma)
        self._init_standardizer()


class StandardizedLearnedVarianceGaussian(_AffineStandardized, LearnedVarianceGaussian):
    """Learned per-unit variance, sigma = exp(log_sigma) > 0, on standardised data (Cho et al. 2011)."""

    name = "gaussian-learned-variance-standardized"

    def __init__(self, n, sigma: float = 1.0, energy_form: str = "hinton"):
        super().__init__(n, sigma, energy_form)
        self._init_standardizer()


class NoisyReLU(Units):
    """Noisy rectified linear units (Nair & Hinton 2010, "Rectified linear units improve RBMs").

    With x = beta (I + b), a state is h = max(0, x + N(0, sigmoid(x))), the NReLU approximation
    of infinitely many tied binary copies with bias offsets -0.5, -1.5, ... ("stepped sigmoid
    units"). `mean` is the exact mean of that rectified Gaussian, x Phi(x/s) + s phi(x/s) with
    s^2 = sigmoid(x). `log_partition` is APPROXIMATE: it is that of the stepped sigmoid units,
    sum_{i=1}^{N_COPIES} softplus(x - i + 0.5), truncated at N_COPIES copies (the neglected
    terms are below e^-20 while x < N_COPIES - 20); NReLU only approximates those units, so free
    energies of this type are approximations and `exact_free_energy` is False. The bias energy
    is the linear part -b h. For beta != 1 the temperature scales the pre-activation x.
    """

    name = "noisy-relu"
    exact_free_energy = False
    N_COPIES = 64

    def _x(self, I, bias, beta):
        return beta * (I + bias)

    def mean(self, I, bias, beta=1.0):
        x = self._x(I, bias, beta)
        s = torch.sigmoid(x).sqrt().clamp_min(1e-12)
        t = x / s
        cdf = 0.5 * (1 + torch.erf(t / math.sqrt(2)))
        pdf = torch.exp(-0.5 * t * t) / math.sqrt(2 * math.pi)
        return x * cdf + s * pdf

    def sample(self, I, bias, beta=1.0, generator=None):
        x = self._x(I, bias, beta)
        return torch.clamp_min(x + torch.sigmoid(x).sqrt() * normal_like(x, generator), 0.0)

    def log_partition(self, I, bias, beta=1.0):
        x = self._x(I, bias, beta)
        offsets = torch.arange(self.N_COPIES, device=x.device, dtype=x.dtype) + 0.5
        return flat_sum(F.softplus(x.unsqueeze(-1) - offsets).sum(-1))

    def energy(self, x, bias):
        return -flat_sum(x * bias)

    def check(self, x, what="input"):
        lo, hi = super().check(x, what)
        if lo < 0:
            raise ValueError(f"{what} has negative values but rectified units are >= 0")
        return lo, hi


class SELU(Units):
    """Deterministic SELU hidden units: the state is selu(beta (I + b)) (Klambauer et al. 2017).

    Mean-field by definition (`deterministic`): `sample` returns the same value as `mean`, as in
    Learnergy's GaussianSeluRBM. No noise model defines a partition function, so `log_partition`
    is the zero-temperature choice whose derivative is the unit's state: the antiderivative
    S(x) = lambda x^2 / 2 (x > 0), lambda alpha (e^x - 1 - x) (x <= 0). With it the free-energy
    gradient equals the CD statistic that uses selu(x); it is an approximation
    (`exact_free_energy = False`), not a normaliser.
    """

    name = "selu"
    exact_free_energy = False
    deterministic = True
    ALPHA, LAMBDA = 1.6732632423543772, 1.0507009873554805

    def mean(self, I, bias, beta=1.0):
        return F.selu(beta * (I + bias))

    def sample(self, I, bias, beta=1.0, generator=None):
        return self.mean(I, bias, beta)

    def log_partition(self, I, bias, beta=1.0):
        x = beta * (I + bias)
        pos = 0.5 * x.clamp_min(0) ** 2
        xn = x.clamp_max(0)
        neg = self.ALPHA * (torch.expm1(xn) - xn)
        return flat_sum(self.LAMBDA * (pos + neg))

    def energy(self, x, bias):
        return -flat_sum(x * bias)


class SigmoidMeanField(Bernoulli):
    """Continuous visible units in [0, 1] whose state is the mean-field probability sigmoid(beta (I + a)).

    Mean-field by definition (`deterministic`): `sample` returns the probability itself, the
    usual treatment of grey-level pixels (Hinton 2012, section 13.1; Learnergy's SigmoidRBM).
    The log-partition is that of Bernoulli units (softplus), so F(v) is the binary RBM's free
    energy evaluated at real-valued v: an approximation, not a density on [0, 1]^n
    (`exact_free_energy = False`).
    """

    name = "sigmoid-mean-field"
    label = "sigmoid mean-field"
    discrete = False          # real-valued states: nothing to enumerate
    exact_free_energy = False
    deterministic = True

    def sample(self, I, bias, beta=1.0, generator=None):
        return self.mean(I, bias, beta)

    def mean_and_sample(self, I, bias, beta=1.0, generator=None):
        mean = self.mean(I, bias, beta)
        return mean, mean
