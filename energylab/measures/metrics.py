"""Measurements: free energy, exact partition functions and likelihoods, pseudo-likelihood,
reconstruction error. The same functions feed the trainer, the dashboard, the notebooks
and the tests.

Ground truth comes from enumeration. A model whose discrete layer has at most
`MAX_ENUMERATED_UNITS` units has a log partition function that is a finite sum:

    log Z = logsumexp_h [ -F(h) ]   (enumerate a small Bernoulli hidden layer), or
    log Z = logsumexp_v [ -F(v) ]   (enumerate a small Bernoulli visible layer),

the other layer being summed or integrated out in closed form. Exact work is done
in float64 on a copy of the model, in chunks so memory stays bounded.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch

MAX_ENUMERATED_UNITS = 25
#: Enumerated states per chunk times the other layer's size. ~2 MB of float64 per intermediate
#: keeps the softplus passes in cache: 2^20 hidden states x 784 visible took 7-9 s with chunks
#: of 32,768 states (200 MB intermediates) and ~3 s with this.
CHUNK_ELEMENTS = 2 ** 18


@dataclass(frozen=True)
class Measurement:
    """A value with its method ("exact", "one-bit estimate", ...) and standard error where estimated."""

    value: float
    method: str
    stderr: float = 0.0

    def __float__(self) -> float:
        return self.value


def _float64(model):
    return copy.deepcopy(model).double()


def _binary_states(model, v, what):
    v = model.check_visible(v, what)
    if model.visible.discrete and not bool(((v == 0) | (v == 1)).all()):
        raise ValueError(f"{what} must be binary (0/1) states for a likelihood of Bernoulli visible units; "
                         "binarize it first (energylab.datasets.binarize, 'stochastic' as in the MNIST literature)")
    return v


@torch.no_grad()
def free_energy(model, v, beta: float = 1.0) -> torch.Tensor:
    """F(v) per example: -log sum_h exp(-beta E(v, h))."""
    return model.free_energy(model.check_visible(v), beta)


@torch.no_grad()
def energy(model, v, h) -> torch.Tensor:
    """E(v, h) per example."""
    return model.energy(model.check_visible(v), h.to(model.device, model.a.dtype))


def enumerated_layer(model, max_units: int = MAX_ENUMERATED_UNITS) -> str:
    """Which layer exact computations enumerate: the smaller discrete one."""
    approximate = [layer.name for layer in (model.visible, model.hidden)
                   if not getattr(layer, "exact_free_energy", True)]
    if approximate:
        raise ValueError(f"exact computation is not available: the {', '.join(approximate)} units of this model "
                         "have an approximate log-partition (exact_free_energy = False); report "
                         "reconstruction error or free-energy curves instead")
    options = [(layer.size, name) for name, layer in (("hidden", model.hidden), ("visible", model.visible))
               if layer.discrete and hasattr(layer, "enumerate")]
    if not options or min(options)[0] > max_units:
        sizes = f"{model.n_visible} visible / {model.n_hidden} hidden"
        raise ValueError(f"exact computation needs a discrete layer of at most {max_units} units to enumerate; "
                         f"this model has {sizes} units. Use an AIS estimate for larger models, "
                         "or a smaller n_hidden")
    return min(options)[1]


def _states(layer, device, other_size: int = 1):
    """Yield all states of a discrete layer, chunk by chunk (`CHUNK_ELEMENTS` / `other_size` states each)."""
    rows = max(64, CHUNK_ELEMENTS // max(other_size, 1))
    for start in range(0, layer.n_states, rows):
        yield layer.enumerate(torch.float64, device, start, min(start + rows, layer.n_states))


def _neg_free_energies(model, layer: str, beta: float):
    """Yield (states, -F(states)) over every state of the enumerated layer."""
    other = model.visible if layer == "hidden" else model.hidden
    for s in _states(getattr(model, layer), model.device, other.size):
        neg_f = -(model.free_energy_hidden(s, beta) if layer == "hidden" else model.free_energy(s, beta))
        yield s, neg_f


@torch.no_grad()
def exact_log_partition(model, beta: float = 1.0, max_units: int = MAX_ENUMERATED_UNITS) -> float:
    """log Z(beta), exact, by enumerating the smaller discrete layer (float64)."""
    if hasattr(model, "exact_log_partition"):       # a model with its own enumeration (dbm.DBM)
        return model.exact_log_partition(beta)
    return _log_z(_float64(model), enumerated_layer(model, max_units), beta)


def _log_z(m, layer: str, beta: float = 1.0) -> float:
    """log Z of a float64 copy `m`, enumerating `layer` chunk by chunk."""
    parts = [torch.logsumexp(neg_f, 0) for _, neg_f in _neg_free_energies(m, layer, beta)]
    return torch.logsumexp(torch.stack(parts), 0).item()


@torch.no_grad()
def exact_log_likelihood(model, v, per_example: bool = False, max_units: int = MAX_ENUMERATED_UNITS):
    """Mean log p(v) in nats per example (or each example's), exact: -F(v) - log Z."""
    if hasattr(model, "exact_log_likelihood"):      # a model with its own enumeration (dbm.DBM)
        return model.exact_log_likelihood(v, per_example)
    v = _binary_states(model, v, "data")
    m = _float64(model)                            # one float64 copy for log Z and F(v)
    ll = -m.free_energy(v.double()) - _log_z(m, enumerated_layer(model, max_units))
    return ll if per_example else ll.mean().item()


@torch.no_grad()
def exact_distribution(model, max_units: int = 20) -> torch.Tensor:
    """p(v) for every visible configuration, in binary order (Bernoulli visible units only)."""
    if not (model.visible.discrete and model.n_visible <= max_units):
        raise ValueError(f"the exact visible distribution needs at most {max_units} discrete visible units; "
                         f"this model has {model.n_visible}")
    m = _float64(model)
    neg_f = torch.cat([f for _, f in _neg_free_energies(m, "visible", 1.0)])
    return torch.softmax(neg_f, 0)


def data_distribution(v: torch.Tensor) -> torch.Tensor:
    """Empirical distribution of binary rows over all 2**D configurations, in binary order."""
    v = torch.as_tensor(v)
    d = v.shape[1]
    weights = 2 ** torch.arange(d - 1, -1, -1, device=v.device)
    index = (v.round().long() * weights).sum(1)
    return torch.bincount(index, minlength=2 ** d).double() / v.shape[0]


def exact_kl(model, p_data: torch.Tensor) -> float:
    """KL(data || model) in nats, exact, for a small binary visible layer."""
    q = exact_distribution(model).to(p_data.device)
    support = p_data > 0
    return (p_data[support] * (p_data[support].log() - q[support].log())).sum().item()


def exact_log_likelihood_grad(model, v, max_units: int = MAX_ENUMERATED_UNITS) -> dict:
    """The exact gradient of the mean log-likelihood, as {parameter name: tensor}.

    Data term minus model term, each built from the same sufficient statistics
    that contrastive divergence uses; the model term is an exact expectation
    over the enumerated layer. (Autograd of `exact_log_likelihood` is the check.)

    It is the gradient of the model as defined, the test-time model that every measurement
    uses: with a mask policy (dropout, DropConnect) the statistics give the gradient with
    respect to the effective weights W' = mask.weight(W) (p W), and the chain rule through
    that map turns it into the gradient with respect to W.
    """
    if not (model.visible.explicit_stats and model.hidden.explicit_stats):
        raise ValueError("exact_log_likelihood_grad needs closed-form statistics; this model has learned "
                         "unit parameters: differentiate exact_log_likelihood with autograd instead")
    v = _binary_states(model, v, "data").double()
    m, layer = _float64(model), enumerated_layer(model, max_units)
    with torch.no_grad():
        log_z = _log_z(m, layer)
        # The model term: every state of the enumerated layer is a particle, weighted by its
        # exact probability; the other layer enters through its conditional mean.
        W = torch.zeros_like(m.W)
        a, b = torch.zeros_like(m.a), torch.zeros_like(m.b)
        for s, neg_f in _neg_free_energies(m, layer, 1.0):
            w = (neg_f - log_z).exp()
            v_s, h_s = (m.p_v(s), s) if layer == "hidden" else (s, m.p_h(s))
            W += (m.visible.stat(v_s) * w[:, None]).t() @ m.hidden.stat(h_s)
            a += m.visible.bias_stat(v_s, m.a, w)
            b += m.hidden.bias_stat(h_s, m.b, w)
        n = v.shape[0]
        h_data = m.p_h(v)
        grad_W = m.visible.stat(v).t() @ m.hidden.stat(h_data) / n - W        # d log L / d W'
    weight = getattr(getattr(m, "mask", None), "weight", None)
    if weight is not None:        # W' = weight(W): back through the map (p W for test-time dropout)
        with torch.enable_grad():
            W_param = m.W.detach().requires_grad_(True)
            grad_W, = torch.autograd.grad(weight(W_param), W_param, grad_W)
    with torch.no_grad():
        return {"W": grad_W,
                "a": m.visible.bias_stat(v, m.a) / n - a,
                "b": m.hidden.bias_stat(h_data, m.b) / n - b}


@torch.no_grad()
def pseudo_log_likelihood(model, v, method: str = "auto", generator=None,
                          max_exact_visible: int = 100) -> Measurement:
    """Mean log pseudo-likelihood per example, sum_i log p(v_i | v_-i) (Besag 1975).

    `method="exact"` flips every visible bit (n_visible free-energy evaluations);
    `"stochastic"` flips one random bit per example and scales by n_visible, an
    unbiased one-bit estimate of the same sum (as scikit-learn's BernoulliRBM
    reports); `"auto"` is exact up to `max_exact_visible` visible units.
    """
    if not model.visible.discrete:
        raise ValueError("pseudo-likelihood by bit flips needs binary visible units; "
                         "use exact_log_likelihood or AIS for real-valued models")
    v = _binary_states(model, v, "data")
    if method == "auto":
        method = "exact" if model.n_visible <= max_exact_visible else "stochastic"
    if method not in ("exact", "stochastic"):
        raise ValueError(f"method must be 'auto', 'exact' or 'stochastic', got {method!r}")
    n, d = v.shape[0], model.n_visible
    f = model.free_energy(v)
    flat = v.reshape(n, d)
    if method == "exact":
        per_example = torch.zeros(n, dtype=f.dtype, device=f.device)
        for i in range(d):
            flipped = flat.clone()
            flipped[:, i] = 1 - flipped[:, i]
            per_example += torch.nn.functional.logsigmoid(model.free_energy(flipped.view_as(v)) - f)
        return Measurement(per_example.mean().item(), "exact")
    i = torch.randint(d, (n,), generator=generator, device=v.device)
    flipped = flat.clone()
    rows = torch.arange(n, device=v.device)
    flipped[rows, i] = 1 - flipped[rows, i]
    per_example = d * torch.nn.functional.logsigmoid(model.free_energy(flipped.view_as(v)) - f)
    stderr = per_example.std().item() / math.sqrt(n) if n > 1 else float("nan")
    return Measurement(per_example.mean().item(), "one-bit estimate", stderr)


@torch.no_grad()
def reconstruction_error(model, v) -> float:
    """Mean squared error per visible unit of the mean-field reconstruction E[v | E[h | v]].

    Cheap and popular, but not the objective: a model can reconstruct well and still
    put its probability mass in the wrong places (Hinton 2012, section 5).
    """
    v = model.check_visible(v)
    return ((model.reconstruct(v) - v) ** 2).mean().item()


@torch.no_grad()
def free_energy_gap(model, train, test) -> float:
    """Mean F(test) - mean F(train): grows when the model overfits (Hinton 2012, section 6)."""
    return (free_energy(model, test).mean() - free_energy(model, train).mean()).item()


@torch.no_grad()
def accuracy(model, x, y) -> float:
    """Fraction of examples whose predicted class `model.predict(x)` equals the label y."""
    if not hasattr(model, "predict"):
        raise ValueError(f"{type(model).__name__} is not a classifier (it has no predict); accuracy needs a "
                         "classification variant such as DiscriminativeRBM")
    y = torch.as_tensor(y).to(model.device).reshape(-1)
    pred = model.predict(x)
    if pred.shape != y.shape:
        raise ValueError(f"{pred.shape[0]} inputs but {y.shape[0]} labels; give one label per input")
    return (pred == y).double().mean().item()


# Annealed importance sampling for models too large to enumerate (energylab/measures/ais.py).
from .ais import ais_log_likelihood, ais_log_partition  # noqa: E402,F401
