"""Training a deep Boltzmann machine, the model's side: the objective and the pretraining views.

Salakhutdinov & Hinton 2009, "Deep Boltzmann machines" (AISTATS); Salakhutdinov &
Hinton 2012, "An efficient learning procedure for deep Boltzmann machines".

- `DBMObjective` (used by the shared trainer): a mean-field positive phase (a factorised
  q(h | v) whose fixed point maximises the variational lower bound on log p(v)) and a
  persistent block-Gibbs negative phase (the model's own chains; the schema's `sampler`
  is not used, `k` is the number of sweeps per update).
- Greedy layerwise pretraining (driven by the trainer: `training/dbm.py`) trains RBM l on
  the couplings and biases of layers l - 1 and l of the DBM itself, through a view
  (`layer_view`) that shares its parameters: RBM 1 sees its input twice going up
  (up-weights doubled), RBM L sees its input twice coming down (down-weights doubled),
  inner RBMs are ordinary and their weights are halved when the DBM is composed
  (`finish_layer`), so that every layer of the DBM receives input of the right scale from
  both sides. RBM l + 1 learns from `lift(l, x)`, the mean-field output of RBM l with the
  same doubling.
"""
from __future__ import annotations

import torch
from torch import nn

from ..core.units import Bernoulli
from .rbm import RBM


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


def factors(l: int, depth: int) -> tuple:
    """(up, down): how much RBM l of a depth-`depth` DBM multiplies its upward and downward fields."""
    return (2.0 if l == 1 and depth > 1 else 1.0), (2.0 if l == depth and depth > 1 else 1.0)


class ScaledDense(nn.Module):
    """A dense coupling seen with its upward field times `up` and its downward field times `down`.

    The weights are the coupling's own (shared, not copied). The CD statistics are the plain
    ones (`cd_grad`), as in Salakhutdinov & Hinton's updates; the energy is the plain one."""

    def __init__(self, dense, up: float = 1.0, down: float = 1.0):
        super().__init__()
        self.dense, self.up_factor, self.down_factor = dense, float(up), float(down)

    @property
    def W(self) -> torch.Tensor:
        return self.dense.W

    @property
    def visible_shape(self):
        return self.dense.visible_shape

    @property
    def hidden_shape(self):
        return self.dense.hidden_shape

    def up(self, sv, bias=None):
        if bias is None:
            return torch.mm(sv, self.W).mul_(self.up_factor)
        return torch.addmm(bias, sv, self.W, alpha=self.up_factor)

    def down(self, sh, bias=None):
        if bias is None:
            return torch.mm(sh, self.W.t()).mul_(self.down_factor)
        return torch.addmm(bias, sh, self.W.t(), alpha=self.down_factor)

    def energy(self, sv, sh):
        return self.dense.energy(sv, sh)

    def cd_grad(self, sv_pos, sh_pos, sv_neg, sh_neg):
        return self.dense.cd_grad(sv_pos, sh_pos, sv_neg, sh_neg)

    def extra_repr(self) -> str:
        return f"up x{self.up_factor:g}, down x{self.down_factor:g}"


class LayerView(RBM):
    """RBM l of a DBM's pretraining: Bernoulli layers l - 1 and l, coupling W_l with the doubling
    of `factors`, biases c_{l-1} and c_l. Every parameter is the DBM's own, so training the view
    trains the DBM. p(h | v) = sigmoid(c_l + up v W_l), p(v | h) = sigmoid(c_{l-1} + down h W_l^T)."""

    def __init__(self, dbm, l: int):
        up, down = factors(l, dbm.depth)
        coupling = dbm.couplings[l - 1]
        super().__init__(Bernoulli(dbm.sizes[l - 1]), Bernoulli(dbm.sizes[l]), ScaledDense(coupling, up, down))
        self.a, self.b = dbm.biases[l - 1], dbm.biases[l]      # the DBM's parameters, not copies
        self.layer = l

    @property
    def exact_units(self) -> int:
        """With a doubled side the view's conditionals belong to no single energy over (v, h): no
        exact likelihood is measured (a count the trainer never enumerates)."""
        plain = self.coupling.up_factor == self.coupling.down_factor == 1.0
        return min(self.n_visible, self.n_hidden) if plain else 10 ** 9


def layer_view(dbm, l: int) -> LayerView:
    """The RBM that pretraining trains as layer l (1..depth) of `dbm`."""
    if not 1 <= l <= dbm.depth:
        raise ValueError(f"a DBM of depth {dbm.depth} has pretraining layers 1..{dbm.depth}, not {l}")
    return LayerView(dbm, l)


@torch.no_grad()
def finish_layer(dbm, l: int) -> None:
    """Compose RBM l into the DBM once it is trained: an inner layer's weights are halved (it will
    hear from both sides). Call once per layer (training/dbm.py does, when the layer's last epoch ends)."""
    if 1 < l < dbm.depth:
        dbm.couplings[l - 1].W.mul_(0.5)


@torch.no_grad()
def lift(dbm, l: int, x: torch.Tensor, bias: torch.Tensor | None = None, chunk: int = 4096) -> torch.Tensor:
    """What RBM l + 1 learns from: the mean-field output sigmoid(c_l + 2 x W_l) of RBM l (its up-weights
    doubled for l = 1; an inner layer's halved weights, seen from below only, doubled again). For
    l < depth, after `finish_layer(dbm, l)`. RBM l + 1 goes on training c_l as its visible bias, so
    `bias` gives c_l as it was when RBM l finished (default: c_l now)."""
    W, c = dbm.couplings[l - 1].W, dbm.biases[l] if bias is None else bias
    return torch.cat([torch.sigmoid(torch.addmm(c, x[i:i + chunk], W, alpha=2.0)) for i in range(0, len(x), chunk)])


@torch.no_grad()
def down_to_visible(dbm, l: int, x: torch.Tensor) -> torch.Tensor:
    """States of layer l - 1 taken down to the visible layer by mean-field top-down steps (a picture of
    RBM l's particles in pixel space)."""
    for j in reversed(range(1, l)):
        x = torch.sigmoid(torch.addmm(dbm.biases[j - 1], x, dbm.couplings[j - 1].W.t()))
    return x
