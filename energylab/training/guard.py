"""The divergence guard of `Trainer`: the last good parameters, and a clean stop on NaN or explosion.

Every `check_every` steps (and at each epoch end) the trainer looks at the largest parameter
magnitude, one device sync. Finite and below `max_weight`: the parameters become the new
last good state. Otherwise they are put back to that state and `TrainingDiverged` says
why and what to change. Parameters that are already NaN when training starts (a broken
model or checkpoint) are refused: they must never become the "last good" state.
"""
from __future__ import annotations

import torch

from ..errors import EnergylabError, RunStateError


class TrainingDiverged(EnergylabError, RuntimeError):
    """Raised when parameters become NaN/inf or explode; the last good state has been restored."""


class Guard:
    """The guard half of `Trainer` (trainer.py)."""

    # -- the divergence guard ---------------------------------------------------------
    def _keep_good(self):
        """Remember the parameters as the last good state; parameters that are already NaN or
        inf (a model or checkpoint broken before this run) are refused, never kept as "good"."""
        with torch.no_grad():
            finite = bool(torch.stack([torch.isfinite(p).all() for p in self.model.parameters()]).all())
        if not finite:
            raise RunStateError("the model's parameters hold NaN or infinite values before training, so there "
                                "is no good state to start from or return to", field="model parameters",
                                fix="load an earlier checkpoint or build a new model")
        self._good = [p.detach().clone() for p in self.model.parameters()]

    def _guard(self):
        """Stop with a clear message on NaN/inf or exploding weights; restore the last good state."""
        with torch.no_grad():
            # torch's max propagates NaN (Python's max() would skip it): one sync per check.
            worst = torch.stack([p.detach().abs().max() for p in self.model.parameters()]).max().item()
        if worst == worst and worst < self.max_weight:
            self._good = [p.detach().clone() for p in self.model.parameters()]   # checked finite above
            return
        with torch.no_grad():
            for p, good in zip(self.model.parameters(), self._good):
                p.copy_(good)
        what = "NaN or infinite values" if not worst < float("inf") or worst != worst else \
            f"a weight of magnitude {worst:.3g} (limit {self.max_weight:g})"
        raise TrainingDiverged(
            f"training diverged {self._divergence_point()}: the parameters contain {what}. The last good "
            f"parameters (checked at most {self.check_every} steps earlier) were restored. {self.rate_advice()}")

    def _divergence_point(self) -> str:
        return f"at step {self.step}"

    def rate_advice(self) -> str:
        """What to change after a divergence (a phase with a rate of its own names that one)."""
        return f"Lower the learning rate (now {self.params['lr']:g}) or raise the weight decay, then resume."
