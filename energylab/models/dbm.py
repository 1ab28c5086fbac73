"""Deep Boltzmann machines of any depth (Bernoulli layers, dense couplings).

Salakhutdinov & Hinton 2009, "Deep Boltzmann machines" (AISTATS); Salakhutdinov &
Hinton 2012, "An efficient learning procedure for deep Boltzmann machines".

Layers x_0 = v, x_1, ..., x_L; couplings W_l between x_{l-1} and x_l; biases c_l:

    E(x) = -sum_l c_l . x_l - sum_{l>=1} x_{l-1}^T W_l x_l.

Each layer talks only to its neighbours, so the even layers (v, h2, ...) and the odd
layers (h1, h3, ...) form the two sides of a bipartite graph: block Gibbs updates all
odd layers given the even ones, then all even ones, and either side can be summed out
in closed form. That gives exact log Z and log p(v) for tiny models (enumerate the
smaller side), and the AIS path (`DBMPath`: Salakhutdinov & Murray 2008's recipe on
the even side). The objective and the views that layerwise pretraining trains live in
`dbm_training.py`; the pretraining itself runs under the trainer (`training/dbm.py`, `el.dbm.pretrain`).
"""
from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from ..core.couplings import Dense
from ..core.units import Bernoulli, bernoulli_from
from ..measures.ais import base_visible_bias
from .dbm_training import DBMObjective


def _entropy(p):
    p = p.clamp(1e-12, 1 - 1e-12)
    return -(p * p.log() + (1 - p) * (1 - p).log()).sum(1)


class DBM(nn.Module):
    """A deep Boltzmann machine; `sizes` = [n_visible, n_h1, ..., n_hL] (Salakhutdinov & Hinton 2009)."""

    def __init__(self, sizes, init_std: float = 0.01, generator=None, pretrain_epochs: int = 0):
        super().__init__()
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"a DBM needs a visible layer and at least one hidden layer of positive sizes, "
                             f"got {list(sizes)}")
        self.sizes = [int(n) for n in sizes]
        self.layers = [Bernoulli(n) for n in self.sizes]
        self.couplings = nn.ModuleList(Dense(n0, n1, init_std, generator) for n0, n1 in zip(sizes, sizes[1:]))
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(n)) for n in self.sizes)
        self.visible, self.hidden = self.layers[0], self.layers[1]
        # An alias, so that `model.W` and the state-dict key "coupling.W" name the first layer's weights.
        self.coupling = self.couplings[0]
        self.config: dict = {}
        self.objective = DBMObjective()          # the trainer uses it instead of CD / PCD
        # epochs of greedy pretraining of each layer that `Trainer.fit` runs before the joint epochs
        self.pretrain_epochs = int(pretrain_epochs)

    def plan(self, epochs: int) -> list:
        """[(phase, epochs)] in the order `Trainer.fit` runs them: each layer's pretraining (0..L-1,
        `pretrain_epochs` each, when > 0), then the joint training ("joint", `epochs`)."""
        pre = [(l, self.pretrain_epochs) for l in range(self.depth)] if self.pretrain_epochs > 0 else []
        return pre + [("joint", int(epochs))]

    # -- names users know (the first RBM's view, for mosaics and checks) ----------------------
    @property
    def depth(self) -> int:
        return len(self.sizes) - 1

    @property
    def W(self):
        return self.couplings[0].W

    @property
    def a(self):
        return self.biases[0]

    @property
    def b(self):
        return self.biases[1]

    @property
    def n_visible(self) -> int:
        return self.sizes[0]

    @property
    def n_hidden(self) -> int:
        return sum(self.sizes[1:])

    @property
    def device(self):
        return self.a.device

    # -- fields, energies, conditionals -------------------------------------------------------
    def field(self, x: list, l: int, beta=1.0):
        """Total input to layer l from its neighbours plus its bias, times beta."""
        f = self.biases[l] + 0.0
        if l > 0:
            f = f + x[l - 1] @ self.couplings[l - 1].W
        if l < self.depth:
            f = f + x[l + 1] @ self.couplings[l].W.t()
        return beta * f

    def energy(self, x: list):
        e = -sum(xl @ c for xl, c in zip(x, self.biases))
        return e - sum(((x[l] @ self.couplings[l].W) * x[l + 1]).sum(1) for l in range(self.depth))

    def gibbs(self, x, k: int = 1, clamp=(), beta=1.0, generator=None):
        """k odd/even block Gibbs sweeps; layers whose index is in `clamp` keep their states.

        `x` is the list of every layer's states (an exact Gibbs kernel of the DBM), or a visible
        batch as for an RBM (what the dashboard's Explore page gives any model): the hidden layers
        then start from a draw of the mean-field posterior q(h | v) and the visible states after k
        sweeps come back. Restarting the hidden layers from q makes that visible chain approximate,
        like `DBN.gibbs`; keep the list of states for an exact chain."""
        if isinstance(x, torch.Tensor):
            v = self.check_visible(x)
            start = [v] + [bernoulli_from(mu, generator) for mu in self.mean_field(v)[1:]]
            return self.gibbs(start, k, clamp, beta, generator)[0]
        x = list(x)
        for _ in range(k):
            for parity in (1, 0):
                for l in range(parity, self.depth + 1, 2):
                    if l not in clamp:
                        p = torch.sigmoid(self.field(x, l, beta))
                        x[l] = bernoulli_from(p, generator)
        return x

    @torch.no_grad()
    def mean_field(self, v, clamp: dict | None = None, max_iter: int = 50, tol: float = 1e-6) -> list:
        """Fixed point of mu_l = sigmoid(field_l(mu)) with v (and layers in `clamp`, {l: states}) held fixed.

        Initialised by a bottom-up pass with doubled inputs to the inner layers (they will also hear
        from above), then odd/even sweeps until max |d mu| < tol (checked every 10 sweeps).
        """
        clamp = dict(clamp or {})
        clamp[0] = v
        mu = [v]
        for l in range(1, self.depth + 1):
            up = mu[l - 1] @ self.couplings[l - 1].W
            mu.append(clamp[l] if l in clamp else torch.sigmoid(self.biases[l] + (2 if l < self.depth else 1) * up))
        for i in range(max_iter):
            old = [m for m in mu]
            for parity in (1, 0):
                for l in range(parity, self.depth + 1, 2):
                    if l not in clamp:
                        mu[l] = torch.sigmoid(self.field(mu, l))
            if (i + 1) % 10 == 0 and max((m - o).abs().max().item() for m, o in zip(mu, old)) < tol:
                break
        return mu

    def p_h(self, v, beta=1.0):
        """The mean-field posterior of the first hidden layer, q(h1 = 1 | v)."""
        return self.mean_field(self.check_visible(v))[1]

    def p_v(self, h, beta=1.0):
        """p(v = 1 | h1): the visible layer hears only the first hidden layer."""
        return torch.sigmoid(beta * (self.a + h @ self.W.t()))

    def variational_bound(self, v, **options) -> torch.Tensor:
        """-E_q[E] + H(q) per example with q the mean-field posterior: log p(v) + log Z >= this."""
        mu = self.mean_field(self.check_visible(v), **options)
        return -self.energy(mu) + sum(_entropy(m) for m in mu[1:])

    def free_energy(self, v, beta=1.0):
        """The mean-field (variational) free energy -bound(v) >= F(v): the trainer's curves for a DBM."""
        return -self.variational_bound(v)

    @torch.no_grad()
    def reconstruct(self, v, sample_hidden: bool = False, generator=None):
        mu = self.mean_field(v)
        return torch.sigmoid(self.field(mu, 0))

    @torch.no_grad()
    def sample(self, n: int, k: int = 1000, beta=1.0, init=None, clamp: dict | None = None, generator=None):
        """n visible samples after k block Gibbs sweeps; `clamp` {layer: states} fixes any layers."""
        x = [(torch.rand(n, s, generator=generator, device=self.device) < 0.5).to(self.a.dtype) for s in self.sizes]
        if init is not None:
            x[0] = init.to(self.device, self.a.dtype)
        for l, states in (clamp or {}).items():
            x[l] = states.to(self.device, self.a.dtype).expand(n, -1)
        return self.gibbs(x, k, tuple(clamp or ()), beta, generator)[0]

    def check_visible(self, v, what: str = "visible data"):
        v = torch.as_tensor(v)
        v = v.unsqueeze(0) if v.dim() == 1 else v
        if v.dim() != 2 or v.shape[1] != self.n_visible:
            raise ValueError(f"{what} has shape {tuple(v.shape)} but this DBM expects (batch, {self.n_visible})")
        v = v.float() if not v.is_floating_point() else v
        self.visible.check(v, what)
        return v.to(self.device, self.a.dtype)

    def bias_names(self) -> dict:
        """Which parameters `freeze` means by the visible and the hidden biases."""
        return {"visible_bias": {"biases.0"}, "hidden_bias": {f"biases.{l}" for l in range(1, self.depth + 1)}}

    # -- exact quantities for tiny models (sum one side out, enumerate the other) --------------
    def side(self, parity: int) -> list:
        return list(range(parity, self.depth + 1, 2))

    @property
    def exact_units(self) -> int:
        """How many units the exact log-likelihood enumerates (the trainer measures it when small)."""
        sides = [sum(self.sizes[l] for l in self.side(p)) for p in (0, 1)]
        return max(min(sides), sides[0] - self.n_visible)

    def log_f(self, x: list, parity: int, beta=1.0, a=None):
        """log sum over the `1 - parity` side of exp(-beta E), given the states x on the `parity` side."""
        out = 0.0
        for l in self.side(parity):
            if l == 0 and a is not None:
                out = out + x[0] @ a          # AIS: the visible bias follows its own interpolation
            else:
                out = out + beta * (x[l] @ self.biases[l])
        for l in self.side(1 - parity):
            out = out + F.softplus(self.field(x, l, beta)).sum(1)
        return out

    def _enumerate(self, parity: int, fixed: dict | None = None):
        """Every configuration of the `parity` side (layers in `fixed` held at their given rows)."""
        fixed = fixed or {}
        free = [l for l in self.side(parity) if l not in fixed]
        n = sum(self.sizes[l] for l in free)
        if n > 20:
            raise ValueError(f"exact computation would enumerate {n} units; use a DBM whose hidden side has at "
                             "most 20 units, or AIS (energylab.measures.ais.ais_log_partition)")
        bits = torch.arange(2 ** n, device=self.device)[:, None] >> torch.arange(n - 1, -1, -1, device=self.device)
        states = (bits & 1).to(torch.float64)
        x, start = [None] * (self.depth + 1), 0
        for l in free:
            x[l], start = states[:, start:start + self.sizes[l]], start + self.sizes[l]
        return x, free

    @torch.no_grad()
    def exact_log_partition(self, beta: float = 1.0) -> float:
        m = copy.deepcopy(self).double()
        parity = min((0, 1), key=lambda p: sum(self.sizes[l] for l in self.side(p)))
        x, _ = m._enumerate(parity)
        return torch.logsumexp(m.log_f(x, parity, beta), 0).item()

    @torch.no_grad()
    def exact_log_likelihood(self, v, per_example: bool = False):
        """log p(v) = log sum_{even hidden} f(v, h_even) - log Z, exact (the even hidden side enumerated)."""
        v = self.check_visible(v).double()
        m = copy.deepcopy(self).double()
        log_z = m.exact_log_partition()
        x, free = m._enumerate(0, fixed={0: None})
        per = []
        for row in v:
            y = [row.expand(max(1, 2 ** sum(self.sizes[l] for l in free)), -1) if l == 0 else x[l]
                 for l in range(self.depth + 1)]
            per.append(torch.logsumexp(m.log_f(y, 0), 0))
        ll = torch.stack(per) - log_z
        return ll if per_example else ll.mean().item()

    def ais_path(self, data=None):
        return DBMPath(self, base_visible_bias(self.visible, None if data is None else self.check_visible(data),
                                               self.a))


class DBMPath:
    """AIS on the even side: biases of v interpolate from base-rate a0, everything else scales with beta."""

    def __init__(self, model: DBM, a0):
        self.model, self.a0 = model, a0.to(model.device, model.a.dtype)
        n_other = sum(model.sizes[1:])
        self.log_z0 = (F.softplus(self.a0).sum() + n_other * math.log(2)).item()

    def init(self, n, generator=None):
        m = self.model
        x = [(torch.rand(n, s, generator=generator, device=m.device, dtype=m.a.dtype) < 0.5).to(m.a.dtype)
             for s in m.sizes]
        x[0] = (torch.rand(n, m.sizes[0], generator=generator, device=m.device, dtype=m.a.dtype)
                < torch.sigmoid(self.a0)).to(m.a.dtype)
        return x

    def _a(self, beta):
        return (1 - beta) * self.a0 + beta * self.model.a

    def log_f(self, x, beta):
        return self.model.log_f(x, 0, beta, a=self._a(beta))

    def step(self, x, beta, generator=None):
        m, x = self.model, list(x)
        for parity in (1, 0):
            for l in m.side(parity):
                f = m.field(x, l, beta)
                if l == 0:                    # the visible bias follows a_beta, not beta * a
                    f = f - beta * m.a + self._a(beta)
                p = torch.sigmoid(f)
                x[l] = bernoulli_from(p, generator)
        return x
