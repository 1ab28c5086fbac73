"""Greedy layerwise training of a stack (`deep.Stack`) under the one `Trainer` the user holds.

Hinton, Osindero & Teh 2006, section 4; Bengio, Lamblin, Popovici & Larochelle 2007.

`Trainer.fit` hands a stack to `fit_layerwise(stack, trainer, data)`. The user's
trainer (the *outer* one) stays the object that scripts, the command line and
the dashboard talk to; it runs a plan of phases: one per layer, then the
optional fine-tuning head. Layer l is trained by an inner `LayerTrainer` (the
ordinary trainer: same sampler, objective, guard, evaluation) on the *cached*
features of the layer below, computed once when that layer finished. The inner
trainer
- waits on the outer trainer's pause / step / stop controls,
- reads the outer trainer's live hyperparameters (a slider moved in the browser
  reaches the layer being trained at its next batch; the change is recorded),
- draws from the outer trainer's generator (one seeded, checkpointed stream),
- forwards its events and evaluation records (tagged with "layer") to the outer
  trainer's callbacks and history, and advances the outer step / epoch.

A checkpoint of the outer trainer holds every layer (the stack's state dict) and
the position `epoch` = layer-epochs finished in plan order; a resumed run skips
the phases already done and restarts the epoch it was in (the momentum buffers
of that layer's optimizer start afresh).
"""
from __future__ import annotations

import time
from types import SimpleNamespace

import torch
import torch.nn.functional as F

from ..registry import VARIANTS
from .labels import class_labels
from .trainer import Callback, Trainer, TrainingDiverged


class LayerTrainer(Trainer):
    """Trains layer `index` of a stack for `epochs` epochs, under the control of the `outer` trainer."""

    def __init__(self, outer: Trainer, stack, index: int, epochs: int):
        layer = stack.layers[index]
        names = {p.name for p in VARIANTS[layer.config["variant"]].training}
        values = {k: v for k, v in outer.params.values().items() if k in names}
        values["epochs"] = epochs
        super().__init__(layer, device=outer.device, schedules=dict(outer.schedules),
                         callbacks=[_Forward(outer, stack, index)], eval_every=outer.eval_every,
                         check_every=outer.check_every, monitor_size=outer.monitor_size, history_capacity=16,
                         max_weight=outer.max_weight, exact_max_units=outer.exact_max_units, **values)
        self.outer, self.index = outer, index
        self.generator = outer.generator        # one random stream for the whole run

    def _prepare(self, data):
        """No second validation pass: `fit_layerwise` checked the data once, and a deeper layer's
        inputs are the stack's own features (the guard keeps its parameters finite)."""
        self.labels = None
        return data.train, data.test

    def _wait_if_paused(self):
        self.outer._wait_if_paused()            # pause, resume, single steps and stop act on the outer trainer
        if self.outer._stop:
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
                continue                        # not a hyperparameter of this layer
            self.params.assign(name, new)
        super()._apply_hparams()


class _Forward(Callback):
    """The inner trainer's events, re-emitted by the outer trainer with its own step and epoch."""

    def __init__(self, outer: Trainer, stack, index: int):
        self.outer, self.stack, self.index, self.elapsed0 = outer, stack, index, outer._elapsed

    def on_epoch_start(self, inner):
        self.outer.batch_index = inner.batch_index
        self.outer._emit("on_epoch_start")

    def on_batch_start(self, inner):
        self.outer._perm = inner._perm          # which examples this batch holds (a dashboard's step view)
        self.outer._emit("on_batch_start")

    def on_batch_end(self, inner):
        outer = self.outer
        outer.step += 1
        outer.batch_index = inner.batch_index
        outer._elapsed = self.elapsed0 + inner._elapsed
        negative = inner.last_negative
        if self.index > 0 and negative is not None and outer._step_budget is not None:
            # single steps are watched: show this layer's negative particles through the layers below
            with torch.no_grad():
                for l in reversed(range(self.index)):
                    negative = self.stack.lower(l, negative)
        outer.last_negative = negative
        outer._emit("on_batch_end")

    def on_evaluate(self, inner, record):
        outer = self.outer
        record = {**record, "layer": self.index + 1, "time": outer._elapsed,
                  "epoch": outer.epoch + inner.batch_index / max(inner.steps_per_epoch, 1)}
        outer.history.log(outer.step, **record)
        outer._emit("on_evaluate", record)

    def on_epoch_end(self, inner):
        self.outer.epoch += 1
        self.outer.batch_index, self.outer._perm = 0, None
        self.outer._emit("on_epoch_end")


def fit_layerwise(stack, outer: Trainer, data, epochs=None):
    """Run (or resume) the stack's plan under `outer`; return the outer trainer's history."""
    if epochs is not None:
        outer.params.assign("epochs", outer.params.param("epochs").validate(epochs))
    train = stack.check_visible(data.train if hasattr(data, "train") else data, "training data")
    test = getattr(data, "test", None)
    test = stack.check_visible(test, "test data") if test is not None and len(test) else None
    labels = None
    if stack.head is not None:
        labels = class_labels(data, train, test, stack.n_classes, outer.device, missing=(
            f"fine_tune={stack.fine_tune!r} needs labels but the data has no train_labels; use a labelled "
            "dataset (el.datasets.load('digits')) or build the model with fine_tune='off'"))
    fit_to_data = getattr(stack.visible, "fit_to_data", None)
    if fit_to_data is not None:
        fit_to_data(train)
    plan = stack.plan(outer.params["epochs"])
    outer.steps_per_epoch = -(-train.shape[0] // outer.params["batch_size"])
    outer.total_steps = sum(e for _, e in plan) * outer.steps_per_epoch
    outer.monitor = {"train": train[:outer.monitor_size],
                     "test": None if test is None else test[:outer.monitor_size]}
    with outer.running():
        done = outer.epoch                      # layer-epochs finished before (a resumed run)
        x, x_test = train, test
        for phase, n_epochs in plan:
            first = min(done, n_epochs)
            done -= first
            if outer._stop:
                break
            if phase == "head":
                _fine_tune(stack, outer, train, x, test, x_test, labels, first, n_epochs)
                break
            if first < n_epochs:
                inner = LayerTrainer(outer, stack, phase, n_epochs)
                inner.epoch, inner.step = first, first * outer.steps_per_epoch
                inner.fit(SimpleNamespace(train=x, test=x_test))
                if inner.epoch < n_epochs:      # stopped inside this layer
                    break
            stack.fit_lift(phase, x)
            x = stack.lift_all(phase, x)
            x_test = None if x_test is None else stack.lift_all(phase, x_test)
        if not outer._stop:
            _log_stack(stack, outer, labels)
    return outer.history


def _fine_tune(stack, outer, train, top, test, top_test, labels, first: int, n_epochs: int):
    """Cross-entropy training of the head (on cached top features) or of the whole up-pass ("all")."""
    whole = stack.fine_tune == "all"
    inputs, inputs_test = (train, test) if whole else (top, top_test)
    forward = stack.logits if whole else stack.head
    params = list(stack.parameters()) if whole else list(stack.head.parameters())
    optimizer = torch.optim.SGD(params, lr=stack.fine_tune_lr, momentum=0.9)
    y, n, batch = labels["train"], inputs.shape[0], outer.params["batch_size"]
    dist = outer.dist               # data-parallel: this process's rows, the global batch's gradient
    start = time.perf_counter() - outer._elapsed
    for _ in range(first, n_epochs):
        outer._perm = perm = torch.randperm(n, generator=outer.generator, device=outer.device)
        outer.batch_index = 0
        outer._emit("on_epoch_start")
        total = torch.zeros((), device=outer.device)
        seen = 0
        for i in range(0, n, batch):
            outer._wait_if_paused()
            if outer._stop:
                return
            for name, old, new in outer.params.poll():     # recorded; the head follows fine_tune_lr
                outer.history.change(outer.step, name, old, new)
            outer._emit("on_batch_start")
            idx = perm[i:i + batch]
            rows = idx if dist is None else dist.shard(idx)
            with torch.enable_grad():
                optimizer.zero_grad()
                loss = F.cross_entropy(forward(inputs[rows]), y[rows])
                loss.backward()
            if dist is not None:
                dist.average_gradients(stack if whole else stack.head)
            optimizer.step()
            if outer._step_budget is not None:   # single steps are watched: show the batch's reconstructions
                outer.last_negative = stack.reconstruct(train[idx])
            total += loss.detach() * rows.shape[0]
            seen += rows.shape[0]
            outer.step += 1
            outer.batch_index += 1
            outer._elapsed = time.perf_counter() - start
            outer._emit("on_batch_end")
        outer.epoch += 1
        outer.batch_index, outer._perm = 0, None
        loss = (total / seen).item()                     # one sync per epoch
        if loss != loss or not all(torch.isfinite(p).all() for p in params):
            raise TrainingDiverged(f"fine-tuning diverged at step {outer.step} (loss {loss}); lower fine_tune_lr "
                                   f"(now {stack.fine_tune_lr:g})")
        record = {"epoch": float(outer.epoch), "time": outer._elapsed, "layer": stack.depth + 1,
                  "fine_tune_loss": loss}
        with torch.no_grad():
            record["train_accuracy"] = (forward(inputs).argmax(-1) == y).double().mean().item()
            if inputs_test is not None and labels["test"] is not None:
                record["accuracy"] = (forward(inputs_test).argmax(-1) == labels["test"]).double().mean().item()
        if dist is not None:            # the loss: the mean over processes; accuracies are the same on each
            record = dist.reduce_record(record)
        outer.history.log(outer.step, **record)
        outer._emit("on_evaluate", record)
        outer._emit("on_epoch_end")


@torch.no_grad()
def _log_stack(stack, outer, labels):
    """One record for the whole stack at the end: up-down reconstruction error (and test accuracy)."""
    mon = outer.monitor
    record = {"epoch": float(outer.epoch), "time": outer._elapsed, "layer": 0,
              "stack_recon_error": ((stack.reconstruct(mon["train"]) - mon["train"]) ** 2).mean().item()}
    if mon["test"] is not None:
        record["stack_recon_error_test"] = ((stack.reconstruct(mon["test"]) - mon["test"]) ** 2).mean().item()
    outer.history.log(outer.step, **record)
    outer._emit("on_evaluate", record)
