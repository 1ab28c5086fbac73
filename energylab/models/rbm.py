"""The restricted Boltzmann machine as a composition: visible units x hidden units x coupling.

    E(v, h) = E_v(v; a) + E_h(h; b) - s_v(v)^T W s_h(h)
    p(v, h) = exp(-beta E(v, h)) / Z(beta)
    F(v)    = -log sum_h exp(-beta E(v, h)) = beta E_v(v) - log Z_h(W^T s_v(v))

Smolensky 1986; Hinton 2002, "Training products of experts by minimizing
contrastive divergence"; Hinton 2012, "A practical guide to training RBMs".
Every named variant (see `registry.py`) is an `RBM` built from other parts.
"""
from __future__ import annotations

import torch
from torch import nn

from ..core.units import Units


class RBM(nn.Module):
    """A two-layer energy-based model with no intra-layer connections.

    `W` (n_visible x n_hidden for a dense coupling), `a` (visible bias) and `b`
    (hidden bias) are its parameters; the unit types may add their own.
    """

    def __init__(self, visible: Units, hidden: Units, coupling: nn.Module):
        super().__init__()
        self.visible, self.hidden, self.coupling = visible, hidden, coupling
        self.a = nn.Parameter(torch.zeros(visible.shape))
        self.b = nn.Parameter(torch.zeros(hidden.shape))
        # Set by the registry's factory: which variant, with which hyperparameters.
        self.config: dict = {}

    # -- names users know ----------------------------------------------------------
    @property
    def W(self) -> torch.Tensor:
        return self.coupling.W

    @property
    def n_visible(self) -> int:
        return self.visible.size

    @property
    def n_hidden(self) -> int:
        return self.hidden.size

    @property
    def device(self) -> torch.device:
        return self.a.device

    @property
    def explicit_stats(self) -> bool:
        """Whether CD can use closed-form sufficient statistics instead of autograd."""
        return self.visible.explicit_stats and self.hidden.explicit_stats

    # -- conditionals ----------------------------------------------------------------
    def hidden_field(self, v, bias=None):
        """The field W^T s_v(v) on the hidden layer (plus `bias` when given, added by the coupling)."""
        return self.coupling.up(self.visible.stat(v), bias)

    def visible_field(self, h, bias=None):
        """The field W s_h(h) on the visible layer (plus `bias` when given, added by the coupling)."""
        return self.coupling.down(self.hidden.stat(h), bias)

    def hidden_input(self, v):
        """(field, bias) for the hidden layer's law. Where the unit type sees the field only
        through I + b (`field_plus_bias`), the coupling adds b inside its matrix product and
        None stands in for the bias: one pass over the batch less on the training hot path."""
        if self.hidden.field_plus_bias:
            return self.hidden_field(v, self.b), None
        return self.hidden_field(v), self.b

    def visible_input(self, h):
        """(field, bias) for the visible layer's law; see `hidden_input`."""
        if self.visible.field_plus_bias:
            return self.visible_field(h, self.a), None
        return self.visible_field(h), self.a

    def p_h(self, v, beta=1.0):
        """E[h | v]: for Bernoulli hidden units, the probabilities p(h_j = 1 | v)."""
        return self.hidden.mean(*self.hidden_input(v), beta)

    def p_v(self, h, beta=1.0):
        """E[v | h]."""
        return self.visible.mean(*self.visible_input(h), beta)

    def sample_h(self, v, beta=1.0, generator=None):
        return self.hidden.sample(*self.hidden_input(v), beta, generator)

    def sample_v(self, h, beta=1.0, generator=None):
        return self.visible.sample(*self.visible_input(h), beta, generator)

    # -- energies --------------------------------------------------------------------
    def energy(self, v, h):
        """E(v, h) per sample."""
        sv, sh = self.visible.stat(v), self.hidden.stat(h)
        return self.visible.energy(v, self.a) + self.hidden.energy(h, self.b) + self.coupling.energy(sv, sh)

    def free_energy(self, v, beta=1.0):
        """F(v) = -log sum_h exp(-beta E(v, h)) per sample (hidden layer summed out exactly)."""
        return beta * self.visible.energy(v, self.a) - self.hidden.log_partition(*self.hidden_input(v), beta)

    def free_energy_hidden(self, h, beta=1.0):
        """F(h) = -log integral_v exp(-beta E(v, h)) per sample (visible layer summed out exactly)."""
        return beta * self.hidden.energy(h, self.b) - self.visible.log_partition(*self.visible_input(h), beta)

    # -- sampling ----------------------------------------------------------------------
    def gibbs(self, v, k: int = 1, beta=1.0, generator=None):
        """k steps of block Gibbs sampling v -> h -> v; returns the final visible *sample*."""
        for _ in range(k):
            v = self.sample_v(self.sample_h(v, beta, generator), beta, generator)
        return v

    def chain_from_hidden(self, h, k: int, beta=1.0, generator=None):
        """Run k steps h -> v -> h from a hidden sample; return (v_k, E[h | v_k]).

        This is the negative phase of CD-k and PCD: the last hidden layer is kept
        as its conditional mean (a Rao-Blackwellised statistic, not a sample).
        """
        for step in range(k):
            v = self.sample_v(h, beta, generator)
            if step < k - 1:
                h_mean, h = self.hidden.mean_and_sample(*self.hidden_input(v), beta, generator)
            else:
                h_mean = self.p_h(v, beta)
        return v, h_mean

    @torch.no_grad()
    def reconstruct(self, v, sample_hidden: bool = False, generator=None):
        """Mean-field reconstruction E[v | h] with h = E[h | v] (or a sample of h)."""
        h = self.sample_h(v, generator=generator) if sample_hidden else self.p_h(v)
        return self.p_v(h)

    @torch.no_grad()
    def sample(self, n: int, k: int = 1000, beta=1.0, init: torch.Tensor | None = None, generator=None):
        """n visible samples after k Gibbs steps from random (or given) starting states."""
        if init is None:
            h = torch.rand((n,) + tuple(self.hidden.shape), generator=generator, device=self.device)
            h = (h < 0.5).to(self.a.dtype) if self.hidden.discrete else h
            v = self.sample_v(h, beta, generator)
        else:
            v = init.to(self.device, self.a.dtype)
        return self.gibbs(v, k, beta, generator)

    def live_setters(self) -> dict:
        """{name: setter} of the model hyperparameters that may change while training runs; a
        variant with live ones (dropout p, the hybrid's alpha, conv sparsity) names them here."""
        return {}

    def set_hparam(self, name: str, value) -> None:
        """Change a live model hyperparameter between batches (a variant declares which are live)."""
        setter = self.live_setters().get(name)
        if setter is None:
            raise ValueError(f"{type(self).__name__} has no model hyperparameter {name!r} that can change "
                             "while training runs")
        setter(value)
        if self.config:
            self.config["hparams"][name] = value

    # -- input checks (public entry points call these; the training loop does not) ----
    def check_visible(self, v: torch.Tensor, what: str = "visible data") -> torch.Tensor:
        if not isinstance(v, torch.Tensor):
            v = torch.as_tensor(v)
        shape = tuple(self.visible.shape)
        if v.dim() == len(shape):
            v = v.unsqueeze(0)
        if tuple(v.shape[1:]) != shape:
            raise ValueError(f"{what} has shape {tuple(v.shape)} but this model expects (batch, "
                             f"{', '.join(map(str, shape))}); reshape the data or build the model with "
                             f"n_visible={tuple(v.shape[1:]) if v.dim() > 1 else v.shape}")
        if not v.is_floating_point():
            v = v.float()
        self.visible.check(v, what)
        return v.to(self.device, self.a.dtype)

    def extra_repr(self) -> str:
        variant = self.config.get("variant")
        return f"variant={variant}" if variant else ""
