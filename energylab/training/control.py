"""The controls of `Trainer`: pause, single steps and stop from another thread; what a driver reads;
what the phases of a plan ask of the trainer that runs them.

`Trainer` (trainer.py) inherits `Control`. A driver (the dashboard's worker, the command line)
uses `pause`, `resume`, `step_once`, `stop` and reads `elapsed`, `single_stepping`,
`parks_next`, `batch_rows()`. A phase of a longer plan (phases.py: a stack's layers and head,
a DBM's pretraining) is an inner trainer run under an *outer* one; it calls the outer
trainer's `wait_turn`, `stopped`, `follow`, `end_epoch`, `restart_epoch`, `log` and `emit`,
never its private state.

The mixin uses what `Trainer` sets up: `_resume` (a threading.Event), `_stop`, `_step_budget`,
`_perm`, `_elapsed`, `status`, `params`, `step`, `epoch`, `batch_index`, `steps_per_epoch`,
`history` and `emit`.
"""
from __future__ import annotations

import torch


class Control:
    """The control half of `Trainer`."""

    # -- control from other threads -----------------------------------------------
    def pause(self):
        self._resume.clear()
        if self.status == "running":
            self.status = "paused"

    def resume(self):
        self._step_budget = None
        self._resume.set()

    def step_once(self, n: int = 1):
        """While paused: let exactly n mini-batches run, then pause again. A request made before
        the loop has parked (a run started paused, a pause not yet reached) counts the same."""
        self._step_budget = n           # batches still allowed; 0 = park before the next one
        self._resume.set()

    def stop(self):
        self._stop = True
        self._resume.set()

    # -- what a driver (the dashboard's worker) may read, between or inside batches ----------
    @property
    def elapsed(self) -> float:
        """Seconds of training so far (resumed runs included; pauses not counted)."""
        return self._elapsed

    @property
    def single_stepping(self) -> bool:
        """True while the batches run are single steps requested with `step_once`."""
        return self._step_budget is not None

    @property
    def parks_next(self) -> bool:
        """True when the loop will wait before its next batch: paused, or its last requested step done."""
        return not self._resume.is_set() or self._step_budget == 0

    def batch_rows(self) -> torch.Tensor | None:
        """The indices into the training set of the current batch (inside a batch's events), or None
        between epochs."""
        if self._perm is None:
            return None
        size = self.params["batch_size"]
        return self._perm[self.batch_index * size:(self.batch_index + 1) * size]

    def _wait_if_paused(self):
        while True:
            if self._step_budget is not None:
                if self._step_budget > 0:
                    self._step_budget -= 1      # this batch is one of the requested steps
                    return
                self._step_budget = None        # the steps are done: park again
                self._resume.clear()
            if self._resume.is_set() or self._stop:
                return
            self.status = "paused"
            self._resume.wait()
            if not self._stop:
                self.status = "running"

    # -- what the phases of a plan (inner trainers, phases.py) ask of the trainer that runs them ----
    @property
    def stopped(self) -> bool:
        """True once `stop` was called (the run ends at the next batch boundary)."""
        return self._stop

    def wait_turn(self) -> bool:
        """Before a batch: wait while paused (a requested single step lets one batch through);
        False when the run has been stopped."""
        self._wait_if_paused()
        return not self._stop

    def follow(self, inner, since: float) -> None:
        """Take an inner trainer's place inside its epoch: its batch and permutation (so `batch_rows`
        names the examples of its batch) and the run's elapsed time, `since` + the inner's."""
        self.batch_index, self._perm = inner.batch_index, inner._perm
        self._elapsed = since + inner.elapsed

    def end_epoch(self) -> None:
        """One more epoch of the plan done: count it and tell the callbacks."""
        self.epoch += 1
        self.batch_index, self._perm = 0, None
        self.emit("on_epoch_end")

    def restart_epoch(self) -> None:
        """Back to the start of the current epoch (a phase resumed from a checkpoint taken inside an
        epoch runs that epoch again)."""
        self.step, self.batch_index, self._perm = self.epoch * self.steps_per_epoch, 0, None

    def log(self, record: dict) -> dict:
        """Append an evaluation record at the current step and tell the callbacks."""
        self.history.log(self.step, **record)
        self.emit("on_evaluate", record)
        return record
