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


SAMPLERS = {"cd": CD, "pcd": PCD}


def make_sampler(name: str, **options):
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; choose one of {sorted(SAMPLERS)}")
    return SAMPLERS[name](**options)
