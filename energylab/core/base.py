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


def flat_sum(x: torch.Tensor) -> torch.Tensor:
    """Sum over all but the batch dimension."""
    return x.reshape(x.shape[0], -1).sum(1)


def _weighted_sum(x: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Sum over the batch dimension, each example weighted (for exact expectations)."""
    if weight is None:
        return x.sum(0)
    return torch.tensordot(weight, x, dims=([0], [0]))


def scaled_field(I, bias, beta):
    """beta * (I + bias), in place on the fresh sum and skipping the multiply at beta == 1 (the
    training hot path: one elementwise pass over the batch instead of three).

    `bias=None` means the bias is already in `I` (a coupling added it inside its matrix product,
    see `RBM.hidden_input`): `I` is then a fresh tensor owned by the caller and is scaled in place."""
    x = I + bias if bias is not None else I
    return x if isinstance(beta, (int, float)) and beta == 1 else x.mul_(beta)


def softplus_owned(x: torch.Tensor) -> torch.Tensor:
    """softplus(x) = log(1 + e^x), written over `x` (a fresh tensor the caller owns) unless
    autograd needs the input. Exact enumeration computes this on ~2 MB chunks; allocating a
    second chunk-sized result each time made the allocator hand memory back to the OS and
    fault it in again (log Z over 2^20 states varied 2.6-7.5 s; in place it stays ~2.6 s)."""
    if x.requires_grad and torch.is_grad_enabled():
        return F.softplus(x)
    return torch.logaddexp(x, x.new_zeros(()), out=x)


def uniform_like(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    # rand + compare costs ~3 ns/element here against ~13 ns for torch.bernoulli.
    return torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def bernoulli_from(p: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """A {0, 1} draw with P(1) = p, in p's dtype: uniforms compared with p, the result written
    over the uniforms (one pass and no bool tensor; `(u < p).to(dtype)` took ~5x longer)."""
    u = uniform_like(p, generator)
    return torch.lt(u, p, out=u)


def one_hot_from(q: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """A one-hot draw from each categorical distribution along q's last dimension (probabilities
    that sum to 1): one uniform per distribution, the state where the cumulative sum first passes it."""
    u = uniform_like(q[..., :1], generator)
    index = (q.cumsum(-1) < u).sum(-1).clamp_max(q.shape[-1] - 1)
    return F.one_hot(index, q.shape[-1]).to(q.dtype)


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

    #: does the law depend on the field only through I + bias? Then a coupling may add the bias
    #: inside its matrix product (`RBM.hidden_input`) and pass bias=None (see `scaled_field`).
    field_plus_bias = False

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

    def check(self, x: torch.Tensor, what: str = "input") -> tuple[float, float]:
        """A clear error for NaN or infinite values; returns the data's (min, max) for subclasses.

        One `aminmax` pass (NaN propagates through it, an infinity shows at an end): on 60,000 x
        784 values it costs ~25 ms where isfinite + all + min + max took ~150-350 ms."""
        if x.numel() == 0:
            return 0.0, 0.0
        lo, hi = (t.item() for t in torch.aminmax(x))
        if not (math.isfinite(lo) and math.isfinite(hi)):
            bad = (~torch.isfinite(x)).sum().item()
            raise ValueError(f"{what} contains {bad} NaN or infinite value(s); clean or impute the data first")
        return lo, hi

    def extra_repr(self) -> str:
        return f"{self.shape}"


class Bernoulli(Units):
    """Binary {0, 1} units: p(x=1 | I) = sigmoid(beta (I + b)). Hinton 2002."""

    name = "bernoulli"
    label = "Bernoulli"
    discrete = True
    field_plus_bias = True

    def mean(self, I, bias, beta=1.0):
        return torch.sigmoid_(scaled_field(I, bias, beta))

    def sample(self, I, bias, beta=1.0, generator=None):
        return self.mean_and_sample(I, bias, beta, generator)[1]

    def mean_and_sample(self, I, bias, beta=1.0, generator=None):
        p = self.mean(I, bias, beta)
        return p, bernoulli_from(p, generator)

    def log_partition(self, I, bias, beta=1.0):
        return flat_sum(softplus_owned(scaled_field(I, bias, beta)))

    def energy(self, x, bias):
        return -flat_sum(x * bias)

    def check(self, x, what="input"):
        lo, hi = super().check(x, what)
        if lo < 0 or hi > 1:
            raise ValueError(
                f"{what} has values in [{lo:.4g}, {hi:.4g}] but {self.label} units take values in [0, 1] "
                "(probabilities are allowed as data); scale the data to [0, 1] or choose a variant "
                "with Gaussian visible units")
        return lo, hi

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
        return flat_sum(per_unit.expand_as(I))

    def energy(self, x, bias):
        return flat_sum((x - bias) ** 2 / (2 * self._sigma() ** 2))

    def stat(self, x):
        return x / self._sigma()

    def bias_stat(self, x, bias, weight=None):
        return _weighted_sum((x - bias) / self._sigma() ** 2, weight)


class LearnedVarianceGaussian(Gaussian):
    """Gaussian units whose per-unit variance is learned as sigma = exp(log_sigma), so it stays positive.

    Two energies are in use for these units; both parameterise the same family of models, but
    the gradients with respect to sigma, and so the learning, differ. `energy_form` picks one:

    - "hinton" (default): E = sum (v - a)^2 / (2 sigma^2) - (v / sigma)^T W h - b^T h, so
      s(v) = v / sigma and p(v | h) = N(a + sigma W h, sigma^2). Hinton 2012 (guide, 13.2);
      the form of the fixed-sigma `Gaussian`.
    - "cho": E = sum (v - a)^2 / (2 sigma^2) - (v / sigma^2)^T W h - b^T h, so
      s(v) = v / sigma^2 and p(v | h) = N(a + W h, sigma^2). Cho, Ilin & Raiko 2011
      ("Improved learning of Gaussian-Bernoulli RBMs", ICANN), who argue it learns sigma better.

    Trained through autograd of the free-energy difference, since sigma has no simple statistic.
    """

    name = "gaussian-learned-variance"
    explicit_stats = False
    ENERGY_FORMS = ("hinton", "cho")

    def __init__(self, n, sigma: float = 1.0, energy_form: str = "hinton"):
        super().__init__(n, sigma)
        if energy_form not in self.ENERGY_FORMS:
            raise ValueError(f"energy_form must be one of {self.ENERGY_FORMS}, got {energy_form!r}")
        self.energy_form = energy_form
        del self.sigma
        self.log_sigma = nn.Parameter(torch.full(self.shape, math.log(sigma)))

    def _sigma(self):
        return self.log_sigma.exp()

    def mean(self, I, bias, beta=1.0):
        return super().mean(I, bias, beta) if self.energy_form == "hinton" else bias + I

    def log_partition(self, I, bias, beta=1.0):
        if self.energy_form == "hinton":
            return super().log_partition(I, bias, beta)
        s = self._sigma()
        per_unit = beta * (I * bias + 0.5 * I * I) / s ** 2 + 0.5 * (LOG_2PI + 2 * torch.log(s) - math.log(beta))
        return flat_sum(per_unit.expand_as(I))

    def stat(self, x):
        return x / self._sigma() if self.energy_form == "hinton" else x / self._sigma() ** 2
