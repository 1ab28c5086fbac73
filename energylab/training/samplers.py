"""Negative-phase samplers: where the model's particles for the gradient come from.

- `CD`: contrastive divergence (Hinton 2002). Chains start at the data's hidden
  sample and run k steps; biased, but cheap and low-variance.
- `PCD`: persistent contrastive divergence (Tieleman 2008). Chains survive from
  one update to the next, so they track the model and the bias fades as the
  learning rate shrinks.

A sampler returns `(v_neg, h_neg_mean)`; the trainer turns positive and negative
particles into gradient statistics. Persistent chains are part of a checkpoint.
"""
from __future__ import annotations

import torch


class CD:
    """Contrastive divergence CD-k: k Gibbs steps from the data."""

    name = "cd"
    persistent = False

    def negative(self, model, v_pos, h_pos, k: int, beta: float = 1.0, generator=None):
        return model.chain_from_hidden(h_pos, k, beta, generator)

    def reset(self):
        pass

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class PCD:
    """Persistent contrastive divergence: `n_chains` fantasy particles kept across updates.

    Chains start from the first data batch (`init="data"`) or uniform noise
    (`init="random"`). With `n_chains=None` there is one chain per example of a batch.
    """

    name = "pcd"
    persistent = True

    def __init__(self, n_chains: int | None = None, init: str = "data"):
        if init not in ("data", "random"):
            raise ValueError(f"PCD init must be 'data' or 'random', got {init!r}")
        self.n_chains, self.init = n_chains, init
        self.chains: torch.Tensor | None = None

    def _start(self, model, v_pos, generator):
        n = self.n_chains or v_pos.shape[0]
        if self.init == "data":
            reps = -(-n // v_pos.shape[0])
            return v_pos.repeat((reps,) + (1,) * (v_pos.dim() - 1))[:n].clone()
        return model.sample(n, k=1, generator=generator)

    def negative(self, model, v_pos, h_pos, k: int, beta: float = 1.0, generator=None):
        if self.chains is None or self.chains.device != v_pos.device:
            self.chains = self._start(model, v_pos, generator)
        h = model.sample_h(self.chains, beta, generator)
        v, h_mean = model.chain_from_hidden(h, k, beta, generator)
        self.chains = v
        return v, h_mean

    def reset(self):
        self.chains = None

    def state_dict(self) -> dict:
        return {} if self.chains is None else {"chains": self.chains}

    def load_state_dict(self, state: dict) -> None:
        self.chains = state.get("chains")


def _per_chain(beta: torch.Tensor, layer_shape) -> torch.Tensor:
    """A per-chain inverse temperature shaped to broadcast over one layer's states."""
    return beta.reshape((-1,) + (1,) * len(tuple(layer_shape)))


def _gibbs_sweep(model, v, beta, generator):
    """One sweep h ~ p_beta(h | v), v ~ p_beta(v | h) with per-chain beta; returns the joint state (v, h)."""
    h = model.hidden.sample(model.hidden_field(v), model.b, _per_chain(beta, model.hidden.shape), generator)
    v = model.visible.sample(model.visible_field(h), model.a, _per_chain(beta, model.visible.shape), generator)
    return v, h


class ParallelTempering(PCD):
    """Parallel tempering: persistent chains at inverse temperatures 1 = beta_0 > ... > beta_{M-1}.

    Desjardins, Courville, Bengio, Vincent & Delalleau 2010, "Tempered Markov chain Monte
    Carlo for training of RBMs"; Cho, Raiko & Ilin 2010. Every replica makes one Gibbs sweep
    at its own beta per step, then neighbours (alternately the even and the odd pairs) swap
    joint states (v, h) with probability min(1, exp((beta_i - beta_j)(E(x_i) - E(x_j)))),
    which keeps each p_beta invariant. Hot replicas cross energy barriers and hand their
    states down to beta = 1, whose chains are the negative particles. `betas` is the ladder
    (or `n_temps` geometric from 1 down to `min_beta`); `swap_rates` is the acceptance of
    each neighbour pair so far, kept on the device (read it when displaying, not per batch).
    """

    name = "pt"

    def __init__(self, n_chains: int | None = None, init: str = "data", n_temps: int = 10,
                 min_beta: float = 0.1, betas=None):
        super().__init__(n_chains, init)
        if betas is None:
            if n_temps < 2 or not 0 < min_beta < 1:
                raise ValueError(f"parallel tempering needs n_temps >= 2 and 0 < min_beta < 1, got n_temps="
                                 f"{n_temps}, min_beta={min_beta}")
            betas = torch.logspace(0, torch.log10(torch.tensor(float(min_beta))).item(), n_temps)
        betas = torch.as_tensor(betas, dtype=torch.float64).flatten()
        if betas.numel() < 2 or betas[0] != 1 or bool((betas[1:] >= betas[:-1]).any()) or betas[-1] <= 0:
            raise ValueError("a tempering ladder must start at beta = 1 and decrease strictly to a positive "
                             f"value, got {betas.tolist()}")
        self.betas = betas
        self.parity = 0
        self.accepted = self.proposed = None

    @property
    def n_temps(self) -> int:
        return self.betas.numel()

    @property
    def swap_rates(self) -> torch.Tensor:
        """Acceptance rate of swaps between beta_i and beta_{i+1}, one value per neighbour pair."""
        if self.accepted is None:
            return torch.zeros(self.n_temps - 1)
        return self.accepted / self.proposed.clamp_min(1)

    def _start_all(self, model, v_pos, generator):
        v = self._start(model, v_pos, generator)
        return v.repeat((self.n_temps,) + (1,) * (v.dim() - 1))

    def sweep(self, model, generator=None):
        """One Gibbs sweep of every replica, then one round of neighbour swaps."""
        m, n = self.n_temps, self.chains.shape[0] // self.n_temps
        beta = self.betas.to(self.chains.device, self.chains.dtype).repeat_interleave(n)
        v, h = _gibbs_sweep(model, self.chains, beta, generator)
        energy = model.energy(v, h).reshape(m, n)
        v, h = v.reshape((m, n) + v.shape[1:]), h.reshape((m, n) + h.shape[1:])
        lo = torch.arange(self.parity, m - 1, 2, device=v.device)
        self.parity = 1 - self.parity
        if lo.numel():
            b = self.betas.to(v.device, v.dtype)
            log_r = (b[lo] - b[lo + 1])[:, None] * (energy[lo] - energy[lo + 1])
            u = torch.rand(log_r.shape, generator=generator, device=v.device, dtype=v.dtype)
            swap = torch.log(u) < log_r                       # (pairs, n)
            for x in (v, h):
                a, c = x[lo], x[lo + 1]
                mask = swap.reshape(swap.shape + (1,) * (x.dim() - 2))
                x[lo], x[lo + 1] = torch.where(mask, c, a), torch.where(mask, a, c)
            if self.accepted is None:
                self.accepted = torch.zeros(m - 1, device=v.device, dtype=torch.float64)
                self.proposed = torch.zeros(m - 1, device=v.device, dtype=torch.float64)
            self.accepted[lo] += swap.sum(1).double()
            self.proposed[lo] += n
        self.chains = v.reshape((m * n,) + v.shape[2:])
        return v[0], h[0]

    def negative(self, model, v_pos, h_pos, k: int, beta: float = 1.0, generator=None):
        if self.chains is None or self.chains.device != v_pos.device:
            self.chains = self._start_all(model, v_pos, generator)
        for _ in range(k):
            v, _ = self.sweep(model, generator)
        return v, model.p_h(v)

    def state_dict(self) -> dict:
        state = super().state_dict()
        state["parity"] = torch.tensor(self.parity)        # which neighbour pairs swap next
        if self.accepted is not None:
            state.update(accepted=self.accepted, proposed=self.proposed)
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.parity = int(state["parity"]) if "parity" in state else 0
        self.accepted, self.proposed = state.get("accepted"), state.get("proposed")


def _gamma(shape: float, like: torch.Tensor, generator=None, tries: int = 8) -> torch.Tensor:
    """Standard Gamma(shape) draws shaped like `like`, from `generator` (torch's sampler takes none).

    Marsaglia & Tsang 2000 with `tries` vectorised proposals per draw (each accepted with
    probability > 0.95, so all fail with probability < 1e-10; then the mean is used): no
    data-dependent loop, no host sync. Shapes below 1 use Gamma(shape + 1) * U^(1 / shape).
    """
    boost = shape < 1
    alpha = shape + 1 if boost else shape
    d = alpha - 1.0 / 3
    c = 1.0 / (9 * d) ** 0.5
    size = (tries,) + tuple(like.shape)
    x = torch.randn(size, generator=generator, device=like.device, dtype=like.dtype)
    u = torch.rand(size, generator=generator, device=like.device, dtype=like.dtype)
    v = (1 + c * x) ** 3
    ok = (v > 0) & (torch.log(u) < 0.5 * x * x + d - d * v + d * torch.log(v.clamp_min(1e-30)))
    first = torch.argmax(ok.to(torch.int8), 0, keepdim=True)
    draw = torch.where(ok.any(0), (d * v).gather(0, first)[0], torch.full_like(like, alpha))
    if boost:
        draw = draw * torch.rand(like.shape, generator=generator, device=like.device, dtype=like.dtype) ** (1 / shape)
    return draw


class Driven(PCD):
    """Persistent chains driven by per-chain inverse temperatures from an autocorrelated Gamma process.

    Paysage's "driven" sequential Monte Carlo sampler (Unlearn.AI): at every Gibbs step each
    chain's beta follows beta_t = rho beta_{t-1} + (1 - rho) g_t with g_t ~ Gamma(mean 1,
    std `beta_std`), so chains wander to hotter (beta < 1) and colder states and back, which
    helps them leave a mode. Its particles are not exact samples of p: it is a heuristic for
    mixing, as in Paysage. `beta_momentum` is rho.
    """

    name = "driven"

    def __init__(self, n_chains: int | None = None, init: str = "data", beta_momentum: float = 0.9,
                 beta_std: float = 0.6):
        super().__init__(n_chains, init)
        if not (0 <= beta_momentum < 1 and beta_std > 0):
            raise ValueError(f"the driven sampler needs 0 <= beta_momentum < 1 and beta_std > 0, got "
                             f"{beta_momentum}, {beta_std}")
        self.rho, self.shape = float(beta_momentum), 1.0 / float(beta_std) ** 2
        self.betas = None

    def update_betas(self, generator=None):
        if self.betas is None or self.betas.shape[0] != self.chains.shape[0]:
            self.betas = torch.ones(self.chains.shape[0], device=self.chains.device, dtype=self.chains.dtype)
        g = _gamma(self.shape, self.betas, generator) / self.shape     # Gamma with mean 1, std beta_std
        self.betas = self.rho * self.betas + (1 - self.rho) * g
        return self.betas

    def negative(self, model, v_pos, h_pos, k: int, beta: float = 1.0, generator=None):
        if self.chains is None or self.chains.device != v_pos.device:
            self.chains = self._start(model, v_pos, generator)
        v = self.chains
        for _ in range(k):
            v, _ = _gibbs_sweep(model, v, self.update_betas(generator), generator)
        self.chains = v
        return v, model.p_h(v)

    def state_dict(self) -> dict:
        state = super().state_dict()
        if self.betas is not None:
            state["betas"] = self.betas
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.betas = state.get("betas")


SAMPLERS = {"cd": CD, "pcd": PCD, "pt": ParallelTempering, "driven": Driven}


def make_sampler(name: str, **options):
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; choose one of {sorted(SAMPLERS)}")
    return SAMPLERS[name](**options)


def from_hyperparameters(values: dict):
    """The sampler a run's training hyperparameters describe (the schema's sampler options)."""
    name = values["sampler"]
    if name == "cd":
        return CD()
    common = {"n_chains": values.get("n_chains") or None, "init": values.get("chain_init", "data")}
    extra = {"pt": {"n_temps": values.get("pt_temperatures", 10), "min_beta": values.get("pt_min_beta", 0.1)},
             "driven": {"beta_momentum": values.get("driven_momentum", 0.9),
                        "beta_std": values.get("driven_std", 0.6)}}.get(name, {})
    return make_sampler(name, **common, **extra)
