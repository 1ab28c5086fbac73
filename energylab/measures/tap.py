"""The second-order TAP free energy of an RBM, its minimisation, a TAP log Z and TAP training.

Gabrie, Tramel & Krzakala 2015, "Training restricted Boltzmann machines via the
Thouless-Anderson-Palmer free energy"; Tramel, Gabrie, Manoel, Caltagirone & Krzakala
2018, "Deterministic and generalized framework for unsupervised learning with RBMs".

Write each layer in terms of the magnetisation m = E[s(x)] of the statistic the coupling
sees, and of the field lambda that produces it in a lone unit (m = d phi / d lambda with
phi(lambda) = log_partition(lambda, bias) per unit). Up to second order in W (Plefka 1982),

    -Gamma(m_v, m_h) = sum_i [phi_v(lambda_i) - lambda_i m_i] + sum_j [phi_h(lambda_j) - lambda_j m_j]
                       + m_v^T W m_h + 1/2 sum_ij W_ij^2 chi_i chi_j,

chi = Var[s] of the lone unit: m (1 - m) for Bernoulli units, 1 for Gaussian units (whose
statistic is x / sigma). The first two sums are the layers' entropies plus bias terms
(for Bernoulli: S(m) + b m); the last is the Onsager reaction term. The TAP estimate is
log Z ~= max over stationary points of -Gamma, which solve the self-consistency

    lambda_h = W^T m_v + 1/2 (W^2)^T chi_v * chi_h'(m_h),   m_h = mean(lambda_h)   (and v alike).

`minimize` descends Gamma in the mirror (logit) geometry of the magnetisations: a step of
size `lr` moves each field towards its self-consistent value, which is gradient descent
on Gamma with the entropy as the mirror map, stopped at tolerance `tol` on max |dm| or
after `max_iter` iterations. The gradient of the TAP log Z with respect to the parameters,
at the minimum, is the partial derivative of -Gamma at fixed magnetisations (envelope
theorem): `TAP` trains with it instead of a sampler's negative phase.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


def _layer_kind(units) -> str:
    name = getattr(units, "name", "")
    if name == "bernoulli":
        return "bernoulli"
    if name.startswith("gaussian"):
        return "gaussian"
    raise ValueError(f"TAP is implemented for Bernoulli and Gaussian layers; this model has {name or units} "
                     "units. Train it with a sampler (sampler='cd', 'pcd' or 'pt') instead")


def _mean_stat(units, lam, bias):
    """m = E[s(x)] of a lone unit with field lambda (the statistic is linear in x for both kinds)."""
    return units.stat(units.mean(lam, bias))


def _chi(kind, m):
    return m * (1 - m) if kind == "bernoulli" else torch.ones_like(m)


def _dchi(kind, m):
    return 1 - 2 * m if kind == "bernoulli" else torch.zeros_like(m)


@dataclass
class TAPState:
    """A stationary point: fields and magnetisations of both layers (one row per start), and -Gamma there."""

    lam_v: torch.Tensor
    lam_h: torch.Tensor
    m_v: torch.Tensor
    m_h: torch.Tensor
    neg_gamma: torch.Tensor
    iterations: int
    converged: bool


def neg_gibbs_free_energy(model, lam_v, m_v, lam_h, m_h):
    """-Gamma per row, differentiable in the model's parameters at fixed (lambda, m)."""
    kv, kh = _layer_kind(model.visible), _layer_kind(model.hidden)
    W = model.W
    legendre = (model.visible.log_partition(lam_v, model.a) - (lam_v * m_v).sum(1) +
                model.hidden.log_partition(lam_h, model.b) - (lam_h * m_h).sum(1))
    coupling = ((m_v @ W) * m_h).sum(1)
    onsager = 0.5 * ((_chi(kv, m_v) @ (W * W)) * _chi(kh, m_h)).sum(1)
    return legendre + coupling + onsager


def self_consistent_fields(model, m_v, m_h):
    """The fields (lambda_v, lambda_h) that the stationarity conditions of -Gamma require."""
    kv, kh = _layer_kind(model.visible), _layer_kind(model.hidden)
    W2 = model.W * model.W
    lam_h = m_v @ model.W + 0.5 * (_chi(kv, m_v) @ W2) * _dchi(kh, m_h)
    lam_v = m_h @ model.W.t() + 0.5 * (_chi(kh, m_h) @ W2.t()) * _dchi(kv, m_v)
    return lam_v, lam_h


@torch.no_grad()
def minimize(model, init_v: torch.Tensor | None = None, n_starts: int = 8, lr: float = 0.5, tol: float = 1e-8,
             max_iter: int = 2000, generator=None) -> TAPState:
    """Minimise Gamma over the magnetisations from `init_v` (visible states or magnetisations) or random starts.

    Alternating (v then h) damped steps; the loop checks the tolerance every 20 iterations
    (one host sync each), so short runs stay asynchronous.
    """
    _layer_kind(model.visible), _layer_kind(model.hidden)
    if not 0 < lr <= 1:
        raise ValueError(f"the TAP step size lr must lie in (0, 1], got {lr}")
    if init_v is None:
        init_v = torch.rand((n_starts, model.n_visible), generator=generator, device=model.device,
                            dtype=model.a.dtype)
        if _layer_kind(model.visible) == "gaussian":
            init_v = model.visible.mean(torch.zeros_like(init_v), model.a)
    m_v = model.visible.stat(init_v.to(model.device, model.a.dtype))
    lam_h = model.hidden_field(init_v.to(model.device, model.a.dtype))
    m_h = _mean_stat(model.hidden, lam_h, model.b)
    lam_v, _ = self_consistent_fields(model, m_v, m_h)
    iterations, converged = 0, False
    while iterations < max_iter:
        old_v, old_h = m_v, m_h
        target_v, _ = self_consistent_fields(model, m_v, m_h)
        lam_v = (1 - lr) * lam_v + lr * target_v
        m_v = _mean_stat(model.visible, lam_v, model.a)
        _, target_h = self_consistent_fields(model, m_v, m_h)
        lam_h = (1 - lr) * lam_h + lr * target_h
        m_h = _mean_stat(model.hidden, lam_h, model.b)
        iterations += 1
        if iterations % 20 == 0:
            change = torch.maximum((m_v - old_v).abs().max(), (m_h - old_h).abs().max()).item()
            if change < tol:
                converged = True
                break
    # The fields consistent with the final magnetisations, so that -Gamma is evaluated exactly there.
    lam_v, lam_h = _fields_of(model.visible, m_v, model.a), _fields_of(model.hidden, m_h, model.b)
    return TAPState(lam_v, lam_h, m_v, m_h, neg_gibbs_free_energy(model, lam_v, m_v, lam_h, m_h), iterations,
                    converged)


def _fields_of(units, m, bias):
    """Invert m = mean(lambda): the lone unit's field for a given magnetisation."""
    if _layer_kind(units) == "bernoulli":
        m = m.clamp(1e-12, 1 - 1e-12)
        return torch.log(m) - torch.log1p(-m) - bias
    # Gaussian: m = s(bias + sigma lambda) = stat(bias) + lambda, since s is linear with unit slope.
    zero = torch.zeros_like(m)
    return m - units.stat(units.mean(zero, bias))


@torch.no_grad()
def tap_log_partition(model, n_starts: int = 8, generator=None, **options) -> float:
    """TAP estimate of log Z: the largest -Gamma over the minima reached from `n_starts` starts."""
    state = minimize(model, n_starts=n_starts, generator=generator, **options)
    return state.neg_gamma.max().item()


@torch.no_grad()
def naive_mean_field_log_partition(model, n_starts: int = 8, generator=None, **options) -> float:
    """First-order (naive mean-field) value at the TAP minima without the Onsager term: a lower bound on log Z."""
    state = minimize(model, n_starts=n_starts, generator=generator, **options)
    kv, kh = _layer_kind(model.visible), _layer_kind(model.hidden)
    onsager = 0.5 * ((_chi(kv, state.m_v) @ (model.W ** 2)) * _chi(kh, state.m_h)).sum(1)
    return (state.neg_gamma - onsager).max().item()


class TAP:
    """Sampling-free training: the model term of the likelihood gradient from the TAP free energy.

    Gabrie, Tramel & Krzakala 2015. Persistent magnetisations (one per `n_chains` start,
    initialised from the data) are carried from one update to the next and relaxed for
    `k` x `steps_per_k` damped iterations; the loss is mean F(v) over the batch plus the
    mean of -Gamma over the persistent minima, whose gradient at fixed magnetisations is
    the TAP estimate of the log-likelihood gradient.
    """

    name = "tap"

    def __init__(self, n_chains: int = 16, steps_per_k: int = 5, lr: float = 0.5):
        self.n_chains, self.steps_per_k, self.lr = n_chains, steps_per_k, lr
        self.m_v = None

    def step(self, model, v, sampler, k: int, beta: float = 1.0, generator=None):
        if self.m_v is None or self.m_v.device != v.device:
            reps = -(-self.n_chains // v.shape[0])
            self.m_v = v.repeat(reps, 1)[:self.n_chains].clone()
        state = minimize(model, init_v=self.m_v, lr=self.lr, tol=0.0, max_iter=k * self.steps_per_k,
                         generator=generator)
        x_v = model.visible.mean(state.lam_v, model.a)
        self.m_v = x_v
        with torch.enable_grad():
            for p in model.parameters():
                p.grad = None
            # -log p(v) = F(v) + log Z, with log Z ~= -Gamma at the persistent minima.
            loss = model.free_energy(v).mean() + neg_gibbs_free_energy(
                model, state.lam_v, state.m_v, state.lam_h, state.m_h).mean()
            loss.backward()
        return x_v

    def state_dict(self) -> dict:
        return {} if self.m_v is None else {"m_v": self.m_v}

    def load_state_dict(self, state: dict, device=None) -> None:
        self.m_v = state["m_v"].to(device) if "m_v" in state else None
