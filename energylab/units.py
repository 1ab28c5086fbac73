"""Unit types: the law of one layer of an energy-based model.

Every model in energylab writes its energy as

    E(v, h) = E_v(v; a) + E_h(h; b) - s_v(v)^T W s_h(h)

where `E_x` is a layer's own ("bias") energy and `s_x` the statistic that the
coupling sees (the state itself, or v / sigma for Gaussian units, as in
Hinton 2012, "A practical guide to training RBMs", section 13.2). A unit type
answers every question the engine asks about one layer given the *field*
`I` that the other layer sends through the coupling (bias not included):

- `mean(I, bias, beta)`: E[x | I] under p(x | I) ∝ exp(-beta (E_x(x) - I s(x)))
- `sample(I, bias, beta, generator)`: a real draw from that conditional,
  never its mean in disguise
- `log_partition(I, bias, beta)`: log ∫ exp(-beta (E_x(x) - I s(x))) dx,
  summed over the layer; the free energy of the other layer is built from it
- `energy(x, bias)`: E_x(x) summed over the layer
- `stat(x)`: s(x); `bias_stat(x, bias)`: -dE_x/d bias summed over the batch,
  the sufficient statistic used by contrastive divergence
- `check(x)`: a clear error for states the unit type cannot take

All reductions sum over every non-batch dimension, so a layer may be a flat
vector (dense coupling) or a (C, H, W) image (convolutional coupling).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LOG_2PI = math.log(2 * math.pi)


def _flat_sum(x: torch.Tensor) -> torch.Tensor:
    """Sum over all but the batch dimension."""
    return x.reshape(x.shape[0], -1).sum(1)


def _weighted_sum(x: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Sum over the batch dimension, each example weighted (for exact expectations)."""
    if weight is None:
        return x.sum(0)
    return torch.tensordot(weight, x, dims=([0], [0]))


def uniform_like(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    # rand + compare costs ~3 ns/element here against ~13 ns for torch.bernoulli.
    return torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def normal_like(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


class Units(nn.Module):
    """Base class of a layer's law. Subclasses may own parameters (e.g. a learned variance)."""

    name = "units"
    discrete = False        # can the layer be enumerated?
    #: does the unit type admit the explicit sufficient statistics CD uses? A type
    #: with its own parameters (learned variance) trains through autograd instead.
    explicit_stats = True

    def __init__(self, n: int | tuple[int, ...]):
        super().__init__()
        self.shape = (n,) if isinstance(n, int) else tuple(n)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    # The five laws, each with inverse temperature beta.
    def mean(self, I, bias, beta=1.0):
        raise NotImplementedError

    def sample(self, I, bias, beta=1.0, generator=None):
        raise NotImplementedError

    def log_partition(self, I, bias, beta=1.0):
        raise NotImplementedError

    def energy(self, x, bias):
        raise NotImplementedError

    def mean_and_sample(self, I, bias, beta=1.0, generator=None):
        """Both E[x | I] and a draw, sharing the work where the type allows."""
        return self.mean(I, bias, beta), self.sample(I, bias, beta, generator)

    def stat(self, x):
        return x

    def bias_stat(self, x, bias, weight=None):
        """-dE_x/d bias summed over the batch (each example weighted by `weight` if given)."""
        return _weighted_sum(x, weight)

    def check(self, x: torch.Tensor, what: str = "input") -> None:
        if not torch.isfinite(x).all():
            bad = (~torch.isfinite(x)).sum().item()
            raise ValueError(f"{what} contains {bad} NaN or infinite value(s); clean or impute the data first")

    def extra_repr(self) -> str:
        return f"{self.shape}"


class Bernoulli(Units):
    """Binary {0, 1} units: p(x=1 | I) = sigmoid(beta (I + b)). Hinton 2002."""

    name = "bernoulli"
    discrete = True

    def mean(self, I, bias, beta=1.0):
        return torch.sigmoid(beta * (I + bias))

    def sample(self, I, bias, beta=1.0, generator=None):
        return self.mean_and_sample(I, bias, beta, generator)[1]

    def mean_and_sample(self, I, bias, beta=1.0, generator=None):
        p = self.mean(I, bias, beta)
        return p, (uniform_like(p, generator) < p).to(p.dtype)

    def log_partition(self, I, bias, beta=1.0):
        return _flat_sum(F.softplus(beta * (I + bias)))

    def energy(self, x, bias):
        return -_flat_sum(x * bias)

    def check(self, x, what="input"):
        super().check(x, what)
        lo, hi = x.min().item(), x.max().item()
        if lo < 0 or hi > 1:
            raise ValueError(
                f"{what} has values in [{lo:.4g}, {hi:.4g}] but Bernoulli units take values in [0, 1] "
                "(probabilities are allowed as data); scale the data to [0, 1] or choose a variant "
                "with Gaussian visible units")

    def enumerate(self, dtype=torch.float64, device=None, start=0, stop=None) -> torch.Tensor:
        """All 2**n binary states (rows), or the slice [start, stop) of them, in binary order."""
        n = self.size
        stop = 2 ** n if stop is None else stop
        idx = torch.arange(start, stop, device=device)
        bits = torch.arange(n - 1, -1, -1, device=device)
        return ((idx[:, None] >> bits) & 1).to(dtype)

    @property
    def n_states(self) -> int:
        return 2 ** self.size


class Gaussian(Units):
    """Gaussian units with mean a and standard deviation sigma (fixed, default 1).

    E_x(x) = sum (x - a)^2 / (2 sigma^2), s(x) = x / sigma, so that
    p(x | I) = N(a + sigma I, sigma^2 / beta). Hinton 2012 (guide, section 13.2);
    Cho, Ilin & Raiko 2011. The energy is *summed* over units (Paysage averaged it).
    """

    name = "gaussian"

    def __init__(self, n, sigma: float = 1.0):
        super().__init__(n)
        if not sigma > 0:
            raise ValueError(f"sigma must be positive, got {sigma}")
        self.register_buffer("sigma", torch.full(self.shape, float(sigma)))

    def _sigma(self):
        return self.sigma

    def mean(self, I, bias, beta=1.0):
        return bias + self._sigma() * I

    def sample(self, I, bias, beta=1.0, generator=None):
        mu = self.mean(I, bias, beta)
        return mu + self._sigma() * beta ** -0.5 * normal_like(mu, generator)   # beta: float or per-chain tensor

    def log_partition(self, I, bias, beta=1.0):
        s = self._sigma()
        per_unit = beta * (I * bias / s + 0.5 * I * I) + 0.5 * (LOG_2PI + 2 * torch.log(s) - math.log(beta))
        return _flat_sum(per_unit.expand_as(I))

    def energy(self, x, bias):
        return _flat_sum((x - bias) ** 2 / (2 * self._sigma() ** 2))

    def stat(self, x):
        return x / self._sigma()

    def bias_stat(self, x, bias, weight=None):
        return _weighted_sum((x - bias) / self._sigma() ** 2, weight)


class LearnedVarianceGaussian(Gaussian):
    """Gaussian units whose per-unit variance is learned as sigma = exp(log_sigma), so it stays positive.

    Cho, Ilin & Raiko 2011 ("Improved learning of Gaussian-Bernoulli RBMs"). Trained
    through autograd of the free-energy difference, since sigma has no simple statistic.
    """

    name = "gaussian-learned-variance"
    explicit_stats = False

    def __init__(self, n, sigma: float = 1.0):
        super().__init__(n, sigma)
        del self.sigma
        self.log_sigma = nn.Parameter(torch.full(self.shape, math.log(sigma)))

    def _sigma(self):
        return self.log_sigma.exp()


UNIT_TYPES = {cls.name: cls for cls in (Bernoulli, Gaussian, LearnedVarianceGaussian)}


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

    def __init__(self, n, sigma: float = 1.0):
        super().__init__(n, sigma)
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
        return _flat_sum(F.softplus(x.unsqueeze(-1) - offsets).sum(-1))

    def energy(self, x, bias):
        return -_flat_sum(x * bias)

    def check(self, x, what="input"):
        super().check(x, what)
        if x.min().item() < 0:
            raise ValueError(f"{what} has negative values but rectified units are >= 0")


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
        return _flat_sum(self.LAMBDA * (pos + neg))

    def energy(self, x, bias):
        return -_flat_sum(x * bias)


class SigmoidMeanField(Units):
    """Continuous visible units in [0, 1] whose state is the mean-field probability sigmoid(beta (I + a)).

    Mean-field by definition (`deterministic`): `sample` returns the probability itself, the
    usual treatment of grey-level pixels (Hinton 2012, section 13.1; Learnergy's SigmoidRBM).
    The log-partition is that of Bernoulli units (softplus), so F(v) is the binary RBM's free
    energy evaluated at real-valued v: an approximation, not a density on [0, 1]^n
    (`exact_free_energy = False`).
    """

    name = "sigmoid-mean-field"
    exact_free_energy = False
    deterministic = True

    def mean(self, I, bias, beta=1.0):
        return torch.sigmoid(beta * (I + bias))

    def sample(self, I, bias, beta=1.0, generator=None):
        return self.mean(I, bias, beta)

    def log_partition(self, I, bias, beta=1.0):
        return _flat_sum(F.softplus(beta * (I + bias)))

    def energy(self, x, bias):
        return -_flat_sum(x * bias)

    def check(self, x, what="input"):
        super().check(x, what)
        lo, hi = x.min().item(), x.max().item()
        if lo < 0 or hi > 1:
            raise ValueError(f"{what} has values in [{lo:.4g}, {hi:.4g}] but sigmoid mean-field units take values "
                             "in [0, 1]; scale the data to [0, 1] or choose a variant with Gaussian visible units")


UNIT_TYPES.update({cls.name: cls for cls in (StandardizedGaussian, StandardizedLearnedVarianceGaussian,
                                             NoisyReLU, SELU, SigmoidMeanField)})


class OneHot(Units):
    """Groups of units of which exactly one per group is on: softmax (categorical) units.

    p(x_g = e_i | I) = softmax_i(beta (I_g + b_g)) independently per group g, and the
    log-partition is sum_g log sum_i exp(beta (I_gi + b_gi)). By default the whole last
    dimension is one group: the class units of the discriminative RBM (Larochelle & Bengio
    2008, "Classification using discriminative restricted Boltzmann machines"). With
    `group_size=C` a flat layer of n = G * C units is G consecutive groups of C categories,
    so a dense coupling can use it on either layer (Salakhutdinov, Mnih & Hinton 2007 use
    such K-way softmax visible units; with Gaussian visible units a one-hot hidden layer
    makes the RBM a mixture of Gaussians). Paysage calls these OneHot units.
    """

    name = "onehot"
    discrete = True

    def __init__(self, n, group_size: int | None = None):
        super().__init__(n)
        last = self.shape[-1]
        self.group_size = last if group_size is None else int(group_size)
        if self.group_size < 1 or last % self.group_size:
            raise ValueError(f"a one-hot layer of {last} units cannot be cut into groups of {group_size}; "
                             "choose a group_size that divides the number of units")

    @property
    def n_groups(self) -> int:
        return self.size // self.group_size

    def _grouped(self, x):
        return x.reshape(x.shape[:-1] + (-1, self.group_size))

    def mean(self, I, bias, beta=1.0):
        z = beta * (I + bias)
        return torch.softmax(self._grouped(z), -1).reshape(z.shape)

    def sample(self, I, bias, beta=1.0, generator=None):
        return self.mean_and_sample(I, bias, beta, generator)[1]

    def mean_and_sample(self, I, bias, beta=1.0, generator=None):
        p = self.mean(I, bias, beta)
        q = self._grouped(p)
        # One uniform per group; the chosen index is where the cumulative sum first passes it.
        u = uniform_like(q[..., :1], generator)
        index = (q.cumsum(-1) < u).sum(-1).clamp_max(self.group_size - 1)
        return p, F.one_hot(index, self.group_size).to(p.dtype).reshape(p.shape)

    def log_partition(self, I, bias, beta=1.0):
        z = beta * (I + bias)
        return _flat_sum(torch.logsumexp(self._grouped(z), -1).reshape(z.shape[0], -1))

    def energy(self, x, bias):
        return -_flat_sum(x * bias)

    def check(self, x, what="input"):
        super().check(x, what)
        if not bool((((x == 0) | (x == 1)).all()) and (self._grouped(x).sum(-1) == 1).all()):
            raise ValueError(f"{what} must be one-hot rows (a single 1 per group of {self.group_size}); "
                             "turn class indices into one-hot rows with torch.nn.functional.one_hot")

    def enumerate(self, dtype=torch.float64, device=None, start=0, stop=None) -> torch.Tensor:
        """All group_size ** n_groups states (rows), or the slice [start, stop), first group most significant."""
        if len(self.shape) != 1:
            raise ValueError("enumerate supports a flat one-hot layer; this layer has shape "
                             f"{self.shape}")
        c, g = self.group_size, self.n_groups
        stop = self.n_states if stop is None else stop
        idx = torch.arange(start, stop, device=device)
        powers = c ** torch.arange(g - 1, -1, -1, device=device)
        digits = (idx[:, None] // powers) % c                      # (states, groups)
        return F.one_hot(digits, c).to(dtype).reshape(len(idx), g * c)

    @property
    def n_states(self) -> int:
        return self.group_size ** self.n_groups


UNIT_TYPES[OneHot.name] = OneHot
