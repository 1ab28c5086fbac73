"""Training a deep Boltzmann machine: the objective and greedy layerwise pretraining.

Salakhutdinov & Hinton 2009, "Deep Boltzmann machines" (AISTATS); Salakhutdinov &
Hinton 2012, "An efficient learning procedure for deep Boltzmann machines".

- `DBMObjective` (used by the shared trainer): a mean-field positive phase (a factorised
  q(h | v) whose fixed point maximises the variational lower bound on log p(v)) and a
  persistent block-Gibbs negative phase (the model's own chains; the schema's `sampler`
  is not used, `k` is the number of sweeps per update).
- `pretrain`: a stack of RBMs whose first layer sees its input twice (up-weights
  doubled), whose top layer sees its input twice from above (down-weights doubled), and
  whose inner layers are halved when composed, so that every layer of the DBM receives
  input of the right scale from both sides.
"""
from __future__ import annotations

import torch

from ..core.units import bernoulli_from


class DBMObjective:
    """Mean-field positive phase, persistent block-Gibbs negative phase (Salakhutdinov & Hinton 2009, section 3)."""

    name = "dbm"

    def __init__(self, n_chains: int = 100, mean_field_iter: int = 10):
        self.n_chains, self.mean_field_iter = n_chains, mean_field_iter
        self.chains = None

    def state_dict(self) -> dict:
        """The persistent chains, one tensor per layer, for a checkpoint."""
        return {} if self.chains is None else {f"chain{i}": c for i, c in enumerate(self.chains)}

    def load_state_dict(self, state: dict, device=None) -> None:
        self.chains = [state[f"chain{i}"].to(device) for i in range(len(state))] or None

    def step(self, model, v, sampler, k: int, beta: float = 1.0, generator=None):
        with torch.no_grad():
            mu = model.mean_field(v, max_iter=self.mean_field_iter, tol=0.0)
            if self.chains is None or self.chains[0].device != v.device:
                self.chains = [(torch.rand(self.n_chains, s, generator=generator, device=v.device) < 0.5).to(v.dtype)
                               for s in model.sizes]
            self.chains = model.gibbs(self.chains, k, generator=generator)
            neg = self.chains
            for l, c in enumerate(model.couplings):
                c.W.grad = neg[l].t() @ neg[l + 1] / len(neg[0]) - mu[l].t() @ mu[l + 1] / len(v)
            for l, b in enumerate(model.biases):
                b.grad = neg[l].mean(0) - mu[l].mean(0)
        return neg[0]


@torch.no_grad()
def pretrain(model, data, epochs: int = 20, lr: float = 0.05, batch_size: int = 20, k: int = 1,
             generator=None):
    """Greedy layerwise CD-k pretraining (Salakhutdinov & Hinton 2009 section 3.1; 2012 for depth > 2).

    RBM 1 sees its input twice going up (up-weights doubled); RBM L sees its input twice going
    down (down-weights doubled); inner RBMs are ordinary and their weights are halved in the DBM.
    Each layer's training input is the mean-field output of the one below (with the same doubling).
    """
    x = model.check_visible(data)
    L = model.depth
    for l in range(1, L + 1):
        up = 2.0 if (l == 1 and L > 1) else 1.0
        down = 2.0 if (l == L and L > 1) else 1.0
        W, bv, bh = model.couplings[l - 1].W, model.biases[l - 1], model.biases[l]
        for _ in range(epochs):
            perm = torch.randperm(len(x), generator=generator, device=x.device)
            for i in range(0, len(x), batch_size):
                v0 = x[perm[i:i + batch_size]]
                h0 = torch.sigmoid(bh + up * v0 @ W)
                h = bernoulli_from(h0, generator)
                for _ in range(k):
                    vk = torch.sigmoid(bv + down * h @ W.t())
                    vk = bernoulli_from(vk, generator)
                    hk = torch.sigmoid(bh + up * vk @ W)
                    h = bernoulli_from(hk, generator)
                n = len(v0)
                W += lr * (v0.t() @ h0 - vk.t() @ hk) / n
                bv += lr * (v0 - vk).mean(0)
                bh += lr * (h0 - hk).mean(0)
        if 1 < l < L:
            W.mul_(0.5)
            x = torch.sigmoid(bh + x @ W * 2)      # the halved weights, seen from below only: doubled
        else:
            x = torch.sigmoid(bh + up * x @ W)
    return model
