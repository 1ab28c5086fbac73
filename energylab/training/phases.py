"""One phase of a longer plan, trained by the ordinary trainer under the control of another.

A stack trains layer 1, then layer 2, ..., then its classifier head (layerwise.py); a DBM
pretrains each layer before its joint training (dbm.py). The user holds one trainer, the
*outer* one: scripts, the command line and the dashboard talk to it alone. Each phase is
run by a `PhaseTrainer`, an ordinary `Trainer` (same loop, objective, guard, evaluation)
whose model is the phase's (a layer, a DBM layer's view, the head), and which
- waits on the outer trainer's pause / single step / stop (`outer.wait_turn`),
- reads the outer trainer's live hyperparameters (a change made in the browser reaches the
  phase at its next batch and is recorded in the outer history),
- draws from the outer trainer's generator (one seeded, checkpointed stream),
- hands its events and evaluation records (tagged with `layer`) to the outer trainer
  (`_Forward`: `outer.follow`, `outer.emit`, `outer.log`, `outer.end_epoch`), which counts
  the steps and epochs of the whole plan.

The outer trainer's `epoch` is the number of phase-epochs done in plan order; a run resumed
from a checkpoint skips the phases done and restarts the epoch it was in (`run(first, ...)`);
the momentum buffers of that phase's optimizer start afresh.
"""
from __future__ import annotations

from types import SimpleNamespace

from ..registry import TRAINING, VARIANTS
from .trainer import Callback, Trainer


class PhaseTrainer(Trainer):
    """Trains `model` for `epochs` epochs as one phase of `outer`'s plan; its records carry `layer`.

    `values` overrides hyperparameters taken from the outer trainer (e.g. the sampler a phase
    must use); `show(negative, rows)` turns the phase's particles into what a person watching
    single steps sees (pixel space), `rows` being the batch's examples; `finish()` runs once when
    the phase's last epoch ends, before the outer trainer counts it (so any checkpoint taken
    from then on holds the finished phase)."""

    def __init__(self, outer: Trainer, model, epochs: int, layer: int, values: dict | None = None,
                 show=None, finish=None, name: str | None = None):
        variant = VARIANTS.get(getattr(model, "config", {}).get("variant"))
        names = {p.name for p in (variant.training if variant else TRAINING)}
        given = {k: v for k, v in outer.params.values().items() if k in names}
        given.update(values or {})
        given["epochs"] = epochs
        super().__init__(model, device=outer.device, schedules={k: s for k, s in outer.schedules.items() if k in names},
                         callbacks=[_Forward(outer, layer, show)], eval_every=outer.eval_every,
                         check_every=outer.check_every, monitor_size=outer.monitor_size, history_capacity=16,
                         max_weight=outer.max_weight, exact_max_units=outer.exact_max_units, **given)
        self.outer, self.layer, self.finish = outer, layer, finish or (lambda: None)
        self.name = name or f"layer {layer}"
        self.generator = outer.generator        # one random stream for the whole run

    def run(self, first: int, train, test=None, labels=None) -> bool:
        """Train epochs `first`.. of this phase on (train, test) (a classifier's `labels` too); True
        when the phase ran to its end (False: the run was stopped inside it)."""
        self.outer.restart_epoch()              # a checkpoint taken inside an epoch: that epoch again
        self.epoch, self.step = first, first * self.outer.steps_per_epoch
        self.fit(SimpleNamespace(train=train, test=test, labels=labels))
        return self.epoch >= self.params["epochs"]

    def prepare(self, data):
        """No second validation pass: the plan's driver checked the data once, and a deeper phase's
        inputs are the model's own features (the guard keeps its parameters finite)."""
        self.labels = None
        return data.train, data.test

    def _wait_if_paused(self):
        if not self.outer.wait_turn():          # pause, resume, single steps and stop act on the outer trainer
            self._stop = True

    def _apply_hparams(self):
        outer = self.outer
        for name, old, new in outer.params.poll():
            outer.history.change(outer.step, name, old, new)
            outer.schedules.pop(name, None)
            self.schedules.pop(name, None)
            try:
                self.params.param(name)
            except KeyError:
                continue                        # not a hyperparameter of this phase
            self.params.assign(name, new)
        super()._apply_hparams()

    def _divergence_point(self) -> str:
        return f"at step {self.outer.step} ({self.name})"


class _Forward(Callback):
    """The phase's events, re-emitted by the outer trainer with its own step and epoch."""

    def __init__(self, outer: Trainer, layer: int, show=None):
        self.outer, self.layer, self.show = outer, layer, show
        self.since = outer.elapsed              # the run's time before this phase
        self.rows = None

    def on_epoch_start(self, inner):
        self.outer.follow(inner, self.since)
        self.outer.emit("on_epoch_start")

    def on_batch_start(self, inner):
        self.outer.follow(inner, self.since)    # batch_rows(): which examples this batch holds
        self.rows = inner.batch_rows()
        self.outer.emit("on_batch_start")

    def on_batch_end(self, inner):
        outer = self.outer
        outer.step += 1
        outer.follow(inner, self.since)
        negative = inner.last_negative
        if self.show is not None and outer.single_stepping:     # single steps are watched: pixel space
            negative = self.show(negative, self.rows)
        if negative is not None:
            outer.last_negative = negative
        outer.emit("on_batch_end")
        self._stop_with(outer, inner)

    def on_evaluate(self, inner, record):
        outer = self.outer
        outer.log({**record, "layer": self.layer, "time": outer.elapsed,     # epochs of the whole plan
                   "epoch": outer.step / max(outer.steps_per_epoch, 1)})

    def on_epoch_end(self, inner):
        if inner.epoch >= inner.params["epochs"]:
            inner.finish()
        self.outer.end_epoch()
        self._stop_with(self.outer, inner)

    @staticmethod
    def _stop_with(outer, inner):
        """A stop asked in the outer trainer's events ends the phase here, before it draws anything
        more from the shared random stream (a checkpoint then continues exactly)."""
        if outer.stopped:
            inner.stop()
