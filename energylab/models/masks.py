"""Mask policies: which part of an RBM is switched off during a training step, and the test-time rule.

A policy answers three questions for `MaskedRBM`:

- when is a mask drawn? `begin_batch(model, v, generator)` is called by the objective once
  per mini-batch, before the positive phase; `end_batch()` after the gradients are set.
  Between the two calls the mask is *kept*: the positive phase and every step of the
  negative Gibbs chain see the same mask (Srivastava et al. 2014, section 8).
- what does it do to the fields? `up` / `down` map the coupling's fields given the mask.
- what is the test-time model? Outside a batch no mask is drawn and the deterministic
  rescaling (if any) applies: that is the model every measurement, reconstruction and
  sample uses.

Policies: `NoMask`; `HiddenDropout` (Srivastava et al. 2014); `DropConnect` (Wan et al.
2013); `EnergyDropout` (Roder, de Rosa, de Albuquerque, Rossi & Papa 2020). `p` is the
RETAIN probability everywhere (1 - p is the drop rate).

A dropped hidden unit gets the field -inf: it is off with probability one, contributes
softplus(-inf) = 0 to the free energy and 0 to every sufficient statistic, so the masked
model is exactly the thinned RBM and the fast explicit-statistics CD path stays valid
(for inverse temperatures beta > 0; a tempered sampler at beta = 0 must not run inside a batch).
"""
from __future__ import annotations

import torch

from .rbm import RBM


class NoMask:
    """No mask: the plain RBM."""

    name = "none"
    explicit_stats = True
    active = False

    def begin_batch(self, model, v, generator=None):
        pass

    def end_batch(self):
        pass

    def up(self, coupling, sv):
        return coupling.up(sv)

    def down(self, coupling, sh):
        return coupling.down(sh)

    def weight(self, W):
        """The weights of the current model (masked in a batch, rescaled at test time)."""
        return W


def _check_p(p):
    if not 0.0 < p <= 1.0:
        raise ValueError(f"retain probability p must lie in (0, 1], got {p}; p is the probability of KEEPING "
                         "a unit (drop rate 1 - p)")
    return float(p)


class HiddenDropout(NoMask):
    """Dropout on hidden units (Srivastava, Hinton, Krizhevsky, Sutskever & Salakhutdinov 2014, JMLR, s. 8).

    For each training case a mask r with r_j ~ Bernoulli(p) (p = RETAIN probability) is drawn
    once per mini-batch and kept through the positive phase and all k Gibbs steps of that case's
    negative chain. Chains of another size (PCD fantasy particles) get their own mask, drawn the
    first time they appear in the batch and kept as well. At test time every unit is present and
    the weights are scaled, W' = p W, for both conditionals and the free energy.
    """

    name = "hidden-dropout"
    has_rate = True         # `p` is a hyperparameter (and live: MaskedRBM.live_setters)

    def __init__(self, p: float = 0.5):
        self.p = _check_p(p)
        self.active = False
        self.masks: dict[int, torch.Tensor] = {}
        self.draws = 0                # how many masks have been drawn (instrumentation for tests)
        self._generator = None

    def begin_batch(self, model, v, generator=None):
        self.masks, self.active, self._generator = {}, True, generator
        self._draw(v.shape[0], tuple(model.hidden.shape), v)

    def end_batch(self):
        self.masks, self.active, self._generator = {}, False, None

    def _draw(self, n, hidden_shape, like):
        u = torch.rand((n,) + hidden_shape, generator=self._generator, device=like.device, dtype=like.dtype)
        self.masks[n] = (u < self.p).to(like.dtype)
        self.draws += 1
        return self.masks[n]

    def mask_for(self, field):
        """The kept mask of the cases in `field` (drawn once per batch and chain count)."""
        n = field.shape[0]
        return self.masks[n] if n in self.masks else self._draw(n, tuple(field.shape[1:]), field)

    def up(self, coupling, sv):
        field = coupling.up(sv)
        if not self.active:
            return self.p * field
        return field.masked_fill(self.mask_for(field) == 0, float("-inf"))

    def down(self, coupling, sh):
        if not self.active:
            return self.p * coupling.down(sh)
        return coupling.down(sh * self.mask_for(sh))

    def weight(self, W):
        return W if self.active else self.p * W


class EnergyDropout(HiddenDropout):
    """Energy-based dropout, E-Dropout (Roder et al. 2020, "Energy-based dropout in RBMs: why not go random").

    Per training case i and hidden unit j, from one unmasked Gibbs step v -> h -> v~ -> h~:

        I_ij = ( p(h_j = 1 | v~_i) / p(h_j = 1 | v_i) ) / |E(v~_i, h~_i) - E(v_i, h_i)|

    (h, h~ are samples; the energy difference is per case). I is normalised per unit by its
    maximum over the mini-batch, and the unit is kept when I_ij < u_ij, u ~ U(0, 1): the
    normalised importance is the drop probability. The mask is then kept through the positive
    phase and the negative chain, as for dropout. At test time the full model is used with no
    rescaling (the paper's inference; the keep rate is data-dependent, so no single p exists).
    The mask is per case, so the negative chains must be the cases' own (CD): PCD chains of
    another count raise an error.
    """

    name = "energy-dropout"
    EPS = 1e-8
    has_rate = False        # the keep rate is the data's, not a hyperparameter: no live `p`

    def __init__(self):
        super().__init__(1.0)

    @torch.no_grad()
    def importance(self, model, v, generator=None):
        """I_ij as defined above (before normalisation), with the unmasked model."""
        p_pos, h_pos = model.hidden.mean_and_sample(model.hidden_field(v), model.b, 1.0, generator)
        v_neg = model.sample_v(h_pos, 1.0, generator)
        p_neg, h_neg = model.hidden.mean_and_sample(model.hidden_field(v_neg), model.b, 1.0, generator)
        delta = (model.energy(v_neg, h_neg) - model.energy(v, h_pos)).abs().clamp_min(self.EPS)
        return (p_neg / p_pos.clamp_min(self.EPS)) / delta[:, None]

    def begin_batch(self, model, v, generator=None):
        self.end_batch()                       # the importance uses the full model
        imp = self.importance(model, v, generator)
        imp = imp / imp.max(0, keepdim=True).values.clamp_min(self.EPS)
        u = torch.rand(imp.shape, generator=generator, device=imp.device, dtype=imp.dtype)
        self.masks, self.active, self._generator = {v.shape[0]: (imp < u).to(v.dtype)}, True, generator
        self.draws += 1

    def mask_for(self, field):
        n = field.shape[0]
        if n not in self.masks:
            raise ValueError(f"E-Dropout masks are per training case ({list(self.masks)} cases in this batch) but "
                             f"a chain of {n} particles asked for one; train EDropoutRBM with sampler='cd'")
        return self.masks[n]

    def up(self, coupling, sv):
        return super().up(coupling, sv) if self.active else coupling.up(sv)

    def down(self, coupling, sh):
        return super().down(coupling, sh) if self.active else coupling.down(sh)

    def weight(self, W):
        return W


class DropConnect(NoMask):
    """DropConnect on the weights (Wan, Zeiler, Zhang, LeCun & Fergus 2013, ICML).

    A mask M with M_ij ~ Bernoulli(p) (p = RETAIN probability) is drawn once per MINI-BATCH
    (shared by its cases: a per-case mask would cost a batch x n_visible x n_hidden tensor) and
    kept through the positive phase and the negative chain; the model of the batch is the RBM
    with weights M * W, whose gradient is M * (the CD statistic), obtained by autograd of the
    free-energy difference. At test time the weights are their expectation p W: the mean-field
    ("mean inference") approximation of the paper's inference section, not its Gaussian
    moment-matching sampler.
    """

    name = "dropconnect"
    explicit_stats = False
    has_rate = True

    def __init__(self, p: float = 0.5):
        self.p = _check_p(p)
        self.active, self.mask, self.draws = False, None, 0

    def begin_batch(self, model, v, generator=None):
        W = model.coupling.W
        u = torch.rand(W.shape, generator=generator, device=W.device, dtype=W.dtype)
        self.mask, self.active = (u < self.p).to(W.dtype), True
        self.draws += 1

    def end_batch(self):
        self.mask, self.active = None, False

    def weight(self, W):
        return W * self.mask if self.active else self.p * W

    def up(self, coupling, sv):
        return sv @ self.weight(coupling.W)

    def down(self, coupling, sh):
        return sh @ self.weight(coupling.W).t()


class MaskedRBM(RBM):
    """An RBM whose fields pass through a mask policy (see the module docstring).

    Outside `begin_batch` / `end_batch` it is the test-time model. Dense coupling only:
    the policies act on the weight matrix W (n_visible x n_hidden).
    """

    def __init__(self, visible, hidden, coupling, mask):
        super().__init__(visible, hidden, coupling)
        if not hasattr(coupling, "W") or coupling.W.dim() != 2:
            raise ValueError("mask policies need a dense coupling with a weight matrix W")
        self.mask = mask

    @property
    def explicit_stats(self) -> bool:
        return super().explicit_stats and self.mask.explicit_stats

    def begin_batch(self, v, generator=None):
        """Draw this mini-batch's mask; it is kept until `end_batch` (the objective calls both)."""
        self.mask.begin_batch(self, v, generator)

    def end_batch(self):
        self.mask.end_batch()

    def live_setters(self) -> dict:
        return {"p": self.set_p} if getattr(self.mask, "has_rate", False) else {}

    def set_p(self, p: float) -> None:
        """Live dropout rate: the next mini-batch draws its mask with the new retain probability."""
        if not getattr(self.mask, "has_rate", False):
            raise ValueError(f"the {self.mask.name} mask policy has no retain probability p")
        self.mask.p = _check_p(p)

    def hidden_field(self, v, bias=None):
        field = self.mask.up(self.coupling, self.visible.stat(v))
        return field if bias is None else field + bias

    def visible_field(self, h, bias=None):
        field = self.mask.down(self.coupling, self.hidden.stat(h))
        return field if bias is None else field + bias

    def energy(self, v, h):
        sv, sh = self.visible.stat(v), self.hidden.stat(h)
        interaction = -((sv @ self.mask.weight(self.W)) * sh).sum(1)
        return self.visible.energy(v, self.a) + self.hidden.energy(h, self.b) + interaction

    def extra_repr(self) -> str:
        p = getattr(self.mask, "p", None)
        return ", ".join(filter(None, [super().extra_repr(), f"mask={self.mask.name}",
                                       f"p={p}" if p is not None and self.mask.name != "energy-dropout" else ""]))
