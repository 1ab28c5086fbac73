"""Annealed importance sampling (AIS) of the log partition function.

Neal 2001, "Annealed importance sampling"; Salakhutdinov & Murray 2008, "On the
quantitative analysis of deep belief networks" (the RBM recipe used here).

AIS walks from a base model A, whose log Z is known in closed form, to the target
B through intermediate distributions p_k, k = 0..K, along a ladder
0 = beta_0 < beta_1 < ... < beta_K = 1. Each of `n_chains` independent runs draws
x_0 ~ A, then for k = 1..K adds log f_k(x_{k-1}) - log f_{k-1}(x_{k-1}) to its log
weight and moves x_k with one Gibbs sweep that leaves p_k invariant. Then
E[w] = Z_B / Z_A, so log Z_B ~= log Z_A + log mean(w).

For an RBM the path interpolates the parameters, theta_beta = (a_beta, beta W, beta b)
with a_beta = (1 - beta) a_A + beta a: the base has no coupling and visible biases
a_A (the data's marginals when data are given, as Salakhutdinov & Murray advise,
else the model's own a). Every intermediate model is an RBM of the same unit types,
so one code path serves every visible type (Bernoulli, Gaussian, one-hot, ...): the
unnormalised marginal is log f_beta(v) = -E_v(v; a_beta) + log Z_h(beta (W^T s(v) + b)),
and the Gibbs sweep uses the unit types' own conditionals.

What the error bars cannot see. The standard error and the bounds log(mean w +- 3 std err)
describe the spread of the importance weights of the chains that ran. A mode of the target
that no chain reaches (a base far from where the model keeps its mass, with Gibbs moves
that cannot cross over at the intermediate temperatures) contributes nothing to any weight,
so every chain agrees on a log Z that is too small and the bounds are narrow around the wrong
value: a 576-unit RBM with 99.8 % of its mass on the all-off hidden state, started from the
data's marginals, comes out 6.3 nats low with a standard error of 0.06. AIS also
under-estimates log Z on average (Jensen: E[log mean w] <= log E[w]). So `ais_log_partition`
runs AIS from several bases (the data's marginals, the model's own visible biases, and the
uniform distribution for discrete visible units), reports the largest estimate, and warns
(`AISDisagreement`) when they disagree beyond their errors. Agreement is evidence, not
proof: a mode that no base and no path reaches stays invisible.

A path is any object with `log_z0`, `init(n, generator)`, `log_f(x, beta)` and
`step(x, beta, generator)`; `RBMPath` is the one for RBMs, `dbm.DBMPath` the one for
deep Boltzmann machines. The weights stay on the device: no host sync per temperature.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, replace

import torch


class AISDisagreement(UserWarning):
    """AIS runs from different base distributions gave log Z values further apart than their errors."""


@dataclass(frozen=True)
class AISResult:
    """log Z with its uncertainty: `stderr` (delta method, in nats) and the bounds log(mean w +- 3 std err).

    `base` names the base distribution of this estimate; `by_base` holds every base's
    (log Z, stderr) when several ran, and `warning` says when they disagreed (see the module doc)."""

    log_z: float
    stderr: float
    log_z_low: float
    log_z_high: float
    n_chains: int
    n_betas: int
    log_z_base: float
    base: str = ""
    by_base: dict = field(default_factory=dict)
    warning: str | None = None

    def __float__(self) -> float:
        return self.log_z


def beta_ladder(n_betas: int = 1000, kind: str = "linear", device=None, dtype=torch.float64) -> torch.Tensor:
    """Inverse temperatures 0 = beta_0 < ... < beta_{n-1} = 1.

    "linear" spaces them evenly; "sm2008" follows Salakhutdinov & Murray's schedule
    shape (coarse steps to 0.5, finer to 0.9, finest to 1), scaled to `n_betas`.
    """
    if n_betas < 2:
        raise ValueError(f"an AIS ladder needs at least 2 inverse temperatures, got n_betas={n_betas}")
    if kind == "linear":
        return torch.linspace(0.0, 1.0, n_betas, device=device, dtype=dtype)
    if kind == "sm2008":
        # Their 14,500 temperatures: 500 to 0.5, 4,000 to 0.9, 10,000 to 1 (same proportions here).
        n1, n2 = max(2, n_betas * 500 // 14500), max(2, n_betas * 4000 // 14500)
        n3 = max(2, n_betas - n1 - n2 + 2)
        parts = [torch.linspace(0, 0.5, n1), torch.linspace(0.5, 0.9, n2)[1:], torch.linspace(0.9, 1.0, n3)[1:]]
        return torch.cat(parts).to(device=device, dtype=dtype)
    raise ValueError(f"unknown ladder kind {kind!r}; use 'linear', 'sm2008' or pass the betas themselves")


def _as_ladder(betas, device) -> torch.Tensor:
    if isinstance(betas, int):
        return beta_ladder(betas, device=device)
    betas = torch.as_tensor(betas, dtype=torch.float64, device=device).flatten()
    if betas.numel() < 2 or betas[0] != 0 or betas[-1] != 1 or bool((betas[1:] < betas[:-1]).any()):
        raise ValueError("a custom AIS ladder must be non-decreasing from exactly 0 to exactly 1, "
                         f"got {betas.numel()} values from {betas[0].item():g} to {betas[-1].item():g}")
    return betas


@torch.no_grad()
def base_visible_bias(visible, data: torch.Tensor | None, fallback: torch.Tensor, eps: float = 1e-3):
    """Biases of independent visible units matching the data's marginals (or `fallback` without data).

    Bernoulli: logit of the clamped mean; one-hot: log of the clamped group frequencies;
    Gaussian: the mean of the (standardised) statistic, since p(x | I=0) = N(a, sigma^2).
    Other types keep `fallback` (the model's own biases).
    """
    if data is None:
        return fallback.detach().clone()
    x = data.reshape((data.shape[0],) + tuple(visible.shape)).to(fallback.dtype)
    name = getattr(visible, "name", "")
    if name == "bernoulli":
        p = x.mean(0).clamp(eps, 1 - eps)
        return torch.log(p) - torch.log1p(-p)
    if name == "onehot":
        return torch.log(x.mean(0).clamp_min(eps))
    if name.startswith("gaussian"):
        z = visible.standardize(x) if hasattr(visible, "standardize") else x
        return z.mean(0)
    return fallback.detach().clone()


class RBMPath:
    """The parameter-interpolation path from independent visible units to an RBM (see the module doc)."""

    def __init__(self, model, base_bias: torch.Tensor):
        self.model = model
        self.a0 = base_bias.to(model.a.device, model.a.dtype)
        zeros_v = torch.zeros((1,) + tuple(model.visible.shape), device=model.device, dtype=model.a.dtype)
        zeros_h = torch.zeros((1,) + tuple(model.hidden.shape), device=model.device, dtype=model.a.dtype)
        # At beta = 0: independent visible units with biases a0, hidden units with no field and no bias.
        self.log_z0 = (model.visible.log_partition(zeros_v, self.a0) +
                       model.hidden.log_partition(zeros_h, torch.zeros_like(model.b))).item()

    def _a(self, beta):
        return (1 - beta) * self.a0 + beta * self.model.a

    def init(self, n, generator=None):
        m = self.model
        zeros = torch.zeros((n,) + tuple(m.visible.shape), device=m.device, dtype=m.a.dtype)
        return m.visible.sample(zeros, self.a0, 1.0, generator)

    def log_f(self, v, beta):
        m = self.model
        return (-m.visible.energy(v, self._a(beta)) +
                m.hidden.log_partition(beta * m.hidden_field(v), beta * m.b))

    def step(self, v, beta, generator=None):
        m = self.model
        h = m.hidden.sample(beta * m.hidden_field(v), beta * m.b, 1.0, generator)
        return m.visible.sample(beta * m.visible_field(h), self._a(beta), 1.0, generator)


@torch.no_grad()
def run_ais(path, betas, n_chains: int = 100, generator=None) -> AISResult:
    """Run AIS along `path` through the ladder `betas`; see the module docstring."""
    x = path.init(n_chains, generator)
    like = x[0] if isinstance(x, (list, tuple)) else x      # a DBM's state is a list of layers
    betas = betas.to(dtype=like.dtype)
    log_w = torch.zeros(n_chains, device=like.device, dtype=torch.float64)
    for k in range(1, betas.numel()):
        log_w += (path.log_f(x, betas[k]) - path.log_f(x, betas[k - 1])).double()
        if k < betas.numel() - 1:
            x = path.step(x, betas[k], generator)
    return summarize(log_w, path.log_z0, betas.numel())


def summarize(log_w: torch.Tensor, log_z0: float, n_betas: int) -> AISResult:
    """log Z and its uncertainty from the chains' log weights (one host sync, at the end)."""
    n = log_w.numel()
    log_mean = torch.logsumexp(log_w, 0) - math.log(n)
    w = torch.exp(log_w - log_mean)                 # weights relative to their mean (mean 1)
    rel_se = (w.std() / math.sqrt(n)).item() if n > 1 else float("inf")
    log_mean = log_mean.item()
    low = log_mean + math.log(1 - 3 * rel_se) if 3 * rel_se < 1 else float("-inf")
    high = log_mean + math.log(1 + 3 * rel_se)
    return AISResult(log_z0 + log_mean, rel_se, log_z0 + low, log_z0 + high, n, n_betas, log_z0)


def _base_biases(model, data, bases) -> dict:
    """{base name: visible biases of the independent base model} for the requested bases."""
    if bases == "auto":
        bases = ("data",) if data is not None else ()
        bases += ("model",) + (("uniform",) if getattr(model.visible, "discrete", False) else ())
    elif isinstance(bases, str):
        bases = (bases,)
    out = {}
    for name in bases:
        if name == "data":
            if data is None:
                raise ValueError("the 'data' AIS base needs data=...")
            out[name] = base_visible_bias(model.visible, data, model.a)
        elif name == "model":
            out[name] = model.a.detach().clone()
        elif name == "uniform":
            out[name] = torch.zeros_like(model.a)
        else:
            raise ValueError(f"unknown AIS base {name!r}; use 'data', 'model', 'uniform' or 'auto'")
    if not out:
        raise ValueError("no AIS base to run; pass bases='auto' or a base name")
    return out


def combine(results: dict) -> AISResult:
    """The largest estimate of several bases (AIS under-estimates log Z), with a warning when two
    estimates are further apart than 3 (stderr_a + stderr_b) plus 0.05 nats."""
    best_name = max(results, key=lambda k: results[k].log_z)
    best = results[best_name]
    far = [k for k, r in results.items() if best.log_z - r.log_z > 3 * (best.stderr + r.stderr) + 0.05]
    warning = None
    if far:
        shown = ", ".join(f"{k} {r.log_z:.3f} ± {r.stderr:.3f}" for k, r in results.items())
        warning = (f"AIS estimates of log Z from different bases disagree beyond their errors ({shown}); "
                   f"reporting the largest ({best_name}). Lower ones missed part of the model's mass; "
                   "more temperatures or chains may show whether the largest did too")
        warnings.warn(warning, AISDisagreement, stacklevel=3)
    return replace(best, base=best_name, by_base={k: (r.log_z, r.stderr) for k, r in results.items()},
                   warning=warning)


@torch.no_grad()
def ais_log_partition(model, n_chains: int = 100, betas=1000, data=None, generator=None,
                      bases="auto") -> AISResult:
    """AIS estimate of log Z for an RBM (any unit types) or a DBM; `betas` is a count or a ladder.

    `bases` (RBMs): "auto" runs from the data's marginals (when `data` is given), the model's own
    visible biases and, for discrete visible units, the uniform distribution, and reports the
    largest estimate, warning when they disagree (see the module doc); or name one or several
    of "data", "model", "uniform". A DBM brings its own path (from `data` when given).
    """
    if n_chains < 1:
        raise ValueError(f"n_chains must be at least 1, got {n_chains}")
    if hasattr(model, "ais_path"):               # deep Boltzmann machines bring their own path
        device = model.a.device if hasattr(model, "a") else None
        return run_ais(model.ais_path(data), _as_ladder(betas, device), n_chains, generator)
    if data is not None:
        data = model.check_visible(data, "AIS base-rate data")
    ladder = _as_ladder(betas, model.a.device)
    results = {name: replace(run_ais(RBMPath(model, bias), ladder, n_chains, generator), base=name)
               for name, bias in _base_biases(model, data, bases).items()}
    return combine(results) if len(results) > 1 else next(iter(results.values()))


@torch.no_grad()
def ais_log_likelihood(model, v, n_chains: int = 100, betas=1000, generator=None, log_z: AISResult | None = None,
                       bases="auto"):
    """Mean log p(v) per example, -F(v) - log Z with log Z from AIS; returns (value, AISResult).

    An AIS log Z tends to be underestimated, which makes this estimate optimistic (Salakhutdinov
    & Murray 2008, section 4): report it with the AIS bounds, and read `log_z.warning` (several
    bases are run and the largest log Z is used; see the module doc for what the bounds miss). For a DBM, F(v) is the mean-field
    free energy, so this is the variational lower bound that Salakhutdinov & Hinton 2009 report.
    """
    v = model.check_visible(v, "data")
    if log_z is None:
        log_z = ais_log_partition(model, n_chains, betas, data=v, generator=generator, bases=bases)
    return (-model.free_energy(v)).mean().item() - log_z.log_z, log_z
