"""Metric objects: small accumulators with reset / update / value, shared by the trainer,
the dashboard and the notebooks (the pattern of Paysage's `metrics.py`, Unlearn.AI).

Each object sums what it needs on the device as it is updated (no host sync in
`update`) and turns the sums into a number only in `value()`. The functions they use
are plain functions of this module or of `metrics.py`, so a one-off measurement needs
no object:

- reconstruction error (`metrics.reconstruction_error`'s quantity, pooled over batches);
- energy distance between data and model samples (Szekely & Rizzo 2013);
- free-energy gap between held-out and training data (Hinton 2012, section 6);
- heat capacity, beta^2 Var[E] per unit, the curvature of log Z(beta) (Paysage);
- weight participation ratio (sparsity) and mean squared weight;
- KL(P || Q) estimates: k-nearest-neighbour for continuous samples (Wang, Kulkarni &
  Verdu 2009), histogram plug-in for binary ones; and the exact KL(data || model) on
  bars-and-stripes for a small model (`metrics.exact_kl`).
"""
from __future__ import annotations

import math

import torch

from . import metrics

# -- functions ---------------------------------------------------------------------------------

def energy_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """2 E|X - Y| - E|X - X'| - E|Y - Y'| (Euclidean), V-statistic form; 0 iff the samples coincide in law."""
    x, y = x.reshape(x.shape[0], -1).double(), y.reshape(y.shape[0], -1).double()
    return 2 * torch.cdist(x, y).mean() - torch.cdist(x, x).mean() - torch.cdist(y, y).mean()


def participation_ratio(W: torch.Tensor) -> torch.Tensor:
    """Per hidden unit (column), (sum_i W_ij^2)^2 / (n sum_i W_ij^4): 1 for equal weights, 1/n for a single one."""
    w2 = W.reshape(W.shape[0], -1).double() ** 2
    return w2.sum(0) ** 2 / (w2.shape[0] * (w2 ** 2).sum(0).clamp_min(1e-300))


def knn_kl(p_samples: torch.Tensor, q_samples: torch.Tensor, k: int = 1) -> float:
    """KL(P || Q) from samples by k-nearest-neighbour distances (Wang, Kulkarni & Verdu 2009).

    d/n sum_i log(nu_k(i) / rho_k(i)) + log(m / (n - 1)), with rho the distance to the k-th
    neighbour among the other P samples and nu among the Q samples. For continuous data.
    """
    p, q = p_samples.reshape(p_samples.shape[0], -1).double(), q_samples.reshape(q_samples.shape[0], -1).double()
    n, m, d = p.shape[0], q.shape[0], p.shape[1]
    rho = torch.cdist(p, p).fill_diagonal_(float("inf")).kthvalue(k, 1).values
    nu = torch.cdist(p, q).kthvalue(k, 1).values
    if bool((rho == 0).any()):
        raise ValueError("repeated samples: the nearest-neighbour KL estimator needs continuous data; "
                         "use histogram_kl for binary samples")
    return (d * torch.log(nu / rho).mean() + math.log(m / (n - 1))).item()


def histogram_kl(p_samples: torch.Tensor, q_samples: torch.Tensor, smoothing: float = 0.5) -> float:
    """KL between the empirical distributions of two sets of binary rows (Q add-`smoothing` smoothed)."""
    rows, index = torch.cat([p_samples, q_samples]).round().unique(dim=0, return_inverse=True)
    n = p_samples.shape[0]
    p = torch.bincount(index[:n], minlength=len(rows)).double()
    q = torch.bincount(index[n:], minlength=len(rows)).double() + smoothing
    p, q = p / p.sum(), q / q.sum()
    s = p > 0
    return (p[s] * (p[s].log() - q[s].log())).sum().item()


def exact_heat_capacity(model, beta: float = 1.0, step: float = 1e-3) -> float:
    """beta^2 d^2 log Z / d beta^2 per unit, by central differences of the exact log Z(beta)."""
    f = [metrics.exact_log_partition(model, beta + s * step) for s in (-1, 0, 1)]
    return beta ** 2 * (f[0] - 2 * f[1] + f[2]) / step ** 2 / (model.n_visible + model.n_hidden)


# -- objects -----------------------------------------------------------------------------------

class Metric:
    """Base: `reset()`, then `update(...)` any number of times, then `value()` (a float)."""

    name = "metric"

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.total, self.count = None, 0

    def _add(self, amount: torch.Tensor, count: int) -> None:
        amount = amount.detach().double()
        self.total = amount if self.total is None else self.total + amount
        self.count += count

    def value(self) -> float:
        if self.count == 0:
            raise ValueError(f"{type(self).__name__} has no updates since its last reset; call update first")
        return (self.total / self.count).item()


class ReconstructionError(Metric):
    """Mean squared error per visible unit of the mean-field reconstruction, pooled over updates."""

    name = "recon_error"

    @torch.no_grad()
    def update(self, model, v) -> None:
        v = model.check_visible(v)
        self._add(((model.reconstruct(v) - v) ** 2).sum(), v.numel())


class EnergyDistance(Metric):
    """Energy distance between data and model samples, averaged over the updates' batches."""

    name = "energy_distance"

    @torch.no_grad()
    def update(self, model, v_data, v_model) -> None:
        self._add(energy_distance(v_data, v_model), 1)


class FreeEnergyGap(Metric):
    """Mean F(held-out) - mean F(train), each mean pooled over updates (Hinton 2012, section 6)."""

    name = "free_energy_gap"

    def reset(self):
        self.sums = None
        self.counts = [0, 0]

    @torch.no_grad()
    def update(self, model, train, test) -> None:
        f = torch.stack([model.free_energy(model.check_visible(train)).double().sum(),
                         model.free_energy(model.check_visible(test)).double().sum()])
        self.sums = f if self.sums is None else self.sums + f
        self.counts[0] += len(train)
        self.counts[1] += len(test)

    def value(self) -> float:
        if self.sums is None:
            raise ValueError("FreeEnergyGap has no updates since its last reset; call update first")
        return (self.sums[1] / self.counts[1] - self.sums[0] / self.counts[0]).item()


class HeatCapacity(Metric):
    """beta^2 Var[E(v, h)] per unit from model samples: the heat capacity C = beta^2 d^2 log Z / d beta^2.

    Give joint samples (v, h), or only v and the hidden states are drawn from p(h | v).
    """

    name = "heat_capacity"

    def __init__(self, beta: float = 1.0):
        self.beta = beta
        super().__init__()

    @torch.no_grad()
    def update(self, model, v, h=None, generator=None) -> None:
        v = model.check_visible(v)
        if h is None:
            h = model.sample_h(v, self.beta, generator)
        e = model.energy(v, h).double()
        self.n_units = model.n_visible + model.n_hidden
        self._add(torch.stack([e.sum(), (e * e).sum()]), len(e))

    def value(self) -> float:
        if self.count < 2:
            raise ValueError("HeatCapacity needs at least 2 samples; call update with more model samples")
        mean, mean_sq = (self.total / self.count).tolist()
        var = (mean_sq - mean ** 2) * self.count / (self.count - 1)
        return self.beta ** 2 * var / self.n_units


class WeightSparsity(Metric):
    """Mean participation ratio of the hidden units' weight vectors (1: dense, 1/n_visible: one weight)."""

    name = "weight_participation"

    @torch.no_grad()
    def update(self, model) -> None:
        self._add(participation_ratio(model.W).mean(), 1)


class WeightSquare(Metric):
    """Mean squared weight, mean_ij W_ij^2."""

    name = "weight_square"

    @torch.no_grad()
    def update(self, model) -> None:
        self._add((model.W.double() ** 2).mean(), 1)


class KLEstimate(Metric):
    """KL(data || model) from samples: histogram plug-in for binary rows, k-NN for real ones; mean over updates."""

    name = "kl_estimate"

    def __init__(self, k: int = 1):
        self.k = k
        super().__init__()

    @torch.no_grad()
    def update(self, model, v_data, v_model) -> None:
        binary = bool(((v_data == 0) | (v_data == 1)).all() and ((v_model == 0) | (v_model == 1)).all())
        kl = histogram_kl(v_data, v_model) if binary else knn_kl(v_data, v_model, self.k)
        self._add(torch.tensor(kl, dtype=torch.float64), 1)


class ExactKL(Metric):
    """Exact KL(data || model) in nats for a small binary model, with data = uniform over given patterns.

    Default patterns: all bars-and-stripes images of `size` x `size` (MacKay 2003), whose
    distribution is known exactly.
    """

    name = "exact_kl"

    def __init__(self, patterns: torch.Tensor | None = None, size: int = 3):
        from ..datasets import bars_and_stripes_patterns
        self.patterns = bars_and_stripes_patterns(size) if patterns is None else torch.as_tensor(patterns)
        self.patterns = self.patterns.reshape(self.patterns.shape[0], -1).unique(dim=0)
        super().__init__()

    @torch.no_grad()
    def update(self, model) -> None:
        if model.n_visible != self.patterns.shape[1]:
            raise ValueError(f"the patterns have {self.patterns.shape[1]} pixels but the model has "
                             f"{model.n_visible} visible units; build the model for these patterns")
        p_data = metrics.data_distribution(self.patterns)
        self._add(torch.tensor(metrics.exact_kl(model, p_data.to(model.device)), dtype=torch.float64), 1)

