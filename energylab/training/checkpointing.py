"""A trainer's full resume point: `save_checkpoint` / `from_checkpoint` assemble and restore it.

`Trainer` (trainer.py) inherits `Checkpointing`, so these stay `trainer.save_checkpoint(path)`
and `Trainer.from_checkpoint(path)`. checkpoint.py writes and reads the file (atomic,
pickle-free); this module decides what a training run puts in it: the model, optimizer,
sampler chains, objective state, the random generator, the position in the epoch, the
elapsed time, the training hyperparameters and schedules, the history and the state the
phases of a plan keep between phases (`phase_state`, e.g. a DBM's pretraining), so that a
resumed run continues bit for bit. A data-parallel run (distributed.py) adds every
process's sampling state; only rank 0 writes.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import EnergylabError
from . import checkpoint
from .history import History


class Checkpointing:
    """The checkpoint half of `Trainer`."""

    def save_checkpoint(self, path):
        """Model, optimizer, sampler chains, RNG, position in the epoch and history: a full resume point."""
        objective_state = getattr(self.objective, "state_dict", dict)()      # persistent state of its own
        state = {"optimizer": self.optimizer.state_dict(), "sampler": self.sampler.state_dict(),
                 "objective": objective_state,
                 "generator": self.generator.get_state(), "perm": self._perm,
                 "position": [self.step, self.epoch, self.batch_index], "elapsed": self._elapsed,
                 "training": json.dumps({"params": {k: v for k, v in self.params.values().items()
                                                    if k in self._training_names},
                                         "schedules": {k: s.to_dict() for k, s in self.schedules.items()}}),
                 "history": json.dumps(self.history.to_dict()),
                 "phases": {k: v.detach().cpu() for k, v in self.phase_state.items()}}
        if self.dist is not None:         # every process's sampling state, gathered; only rank 0 writes
            state["distributed"] = self.dist.state_dict(self)
            if not self.dist.is_main:
                return Path(path)
        return checkpoint.save(path, self.model, **state)

    @classmethod
    def from_checkpoint(cls, path, device="auto", **options):
        """A trainer (and model) ready to continue the run saved at `path`. A checkpoint whose
        parameters hold NaN or inf, or whose training state is incomplete, is a CheckpointError."""
        payload = checkpoint.read(path)
        checkpoint.check_finite(payload, path)        # never resume (or keep as "last good") NaN weights
        model = checkpoint.load(path)
        try:
            return cls._restore(payload, model, device, options)
        except EnergylabError:
            raise
        except (KeyError, TypeError, IndexError, AttributeError, ValueError, RuntimeError) as exc:
            raise checkpoint.CheckpointError(f"the training state cannot be restored ({type(exc).__name__}: {exc}); "
                                             "the model itself loads with energylab.load", file=path,
                                             fix="check the options passed, or resume from an unaltered "
                                             "checkpoint") from None

    @classmethod
    def _restore(cls, payload, model, device, options):
        from . import schedules as sched
        training = json.loads(payload["training"])
        trainer = cls(model, device=device,
                      schedules={k: sched.from_dict(d) for k, d in training["schedules"].items()},
                      **options, **training["params"])
        trainer.optimizer.load_state_dict(payload["optimizer"])
        trainer.sampler.load_state_dict({k: v.to(trainer.device) for k, v in payload["sampler"].items()})
        if payload.get("objective") and hasattr(trainer.objective, "load_state_dict"):
            trainer.objective.load_state_dict(payload["objective"], trainer.device)
        trainer.generator.set_state(payload["generator"])
        trainer._perm = None if payload["perm"] is None else payload["perm"].to(trainer.device)
        trainer.step, trainer.epoch, trainer.batch_index = payload["position"]
        trainer._elapsed = payload["elapsed"]
        trainer.history = History.from_dict(json.loads(payload["history"]))
        trainer.phase_state = {k: v.to(trainer.device) for k, v in payload.get("phases", {}).items()}
        if trainer.dist is not None:
            trainer.dist.load_state_dict(trainer, payload.get("distributed"))
        return trainer
