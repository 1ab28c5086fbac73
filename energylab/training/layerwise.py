"""Greedy layerwise training of a stack (`deep.Stack`) under the one `Trainer` the user holds.

Hinton, Osindero & Teh 2006, section 4; Bengio, Lamblin, Popovici & Larochelle 2007.

`Trainer.fit` hands a stack to `fit_layerwise(stack, trainer, data)`. The user's
trainer (the *outer* one) runs a plan of phases (phases.py): one per layer, then the
optional fine-tuning head. Layer l is trained by a `LayerTrainer` (the ordinary
trainer: same sampler, objective, guard, evaluation) on the *cached* features of the
layer below, computed once when that layer finished. The head is trained by a
`FineTuner`, the same loop with the cross-entropy objective (`objectives.CrossEntropy`),
SGD with momentum 0.9 at the stack's `fine_tune_lr`, and an evaluation of its own
(`fine_tune_loss`, `train_accuracy`, `accuracy`, once per epoch; layer = depth + 1).

A checkpoint of the outer trainer holds every layer (the stack's state dict) and
the position `epoch` = layer-epochs finished in plan order; a resumed run skips
the phases already done and restarts the epoch it was in (the momentum buffers
of that phase's optimizer start afresh).
"""

from __future__ import annotations

import torch
from torch import nn

from . import regularizers
from .labels import class_labels
from .objectives import CrossEntropy
from .phases import PhaseTrainer
from .trainer import Trainer


class LayerTrainer(PhaseTrainer):
    """Trains layer `index` of a stack for `epochs` epochs, under the control of the `outer` trainer."""

    def __init__(self, outer: Trainer, stack, index: int, epochs: int):
        def show(negative, rows):               # this layer's particles through the layers below
            with torch.no_grad():
                for l in reversed(range(index)):
                    negative = stack.lower(l, negative)
            return negative
        super().__init__(outer, stack.layers[index], epochs, layer=index + 1, show=show if index else None)


class Classifier(nn.Module):
    """What fine-tuning trains: the head on the cached top features, or the whole up-pass and the
    head (`whole`, fine_tune == "all"); calling it gives the logits."""

    def __init__(self, stack, whole: bool):
        super().__init__()
        self.net, self.whole, self.config = stack if whole else stack.head, whole, {}

    def forward(self, x):
        return self.net.logits(x) if self.whole else self.net(x)


class FineTuner(PhaseTrainer):
    """The supervised phase of a stack: cross-entropy, SGD momentum 0.9 at `stack.fine_tune_lr`."""

    def __init__(self, outer: Trainer, stack, epochs: int, raw_train):
        self.stack = stack
        super().__init__(outer, Classifier(stack, stack.fine_tune == "all"), epochs, layer=stack.depth + 1,
                         show=lambda negative, rows: stack.reconstruct(raw_train[rows]), name="fine-tuning")
        self.objective = CrossEntropy()
        self.optimizer = regularizers.make_optimizer(self.model, "sgd", stack.fine_tune_lr, 0.9, 0.0)
        self.eval_every = outer.steps_per_epoch      # one record per epoch

    def prepare(self, data):
        self.labels = data.labels
        return data.train, data.test

    def _monitor_sets(self, train, test):
        return {"train": train, "test": test}       # accuracies over the whole sets

    def _apply_hparams(self):
        outer = self.outer                           # recorded; the head follows fine_tune_lr
        for name, old, new in outer.params.poll():
            outer.history.change(outer.step, name, old, new)

    def _regularized_step(self, v):
        if self.dist is not None:                    # the global batch's gradient, the same update everywhere
            self.dist.average_gradients(self.model)
        self.optimizer.step()

    def rate_advice(self) -> str:
        return f"Lower fine_tune_lr (now {self.stack.fine_tune_lr:g}), then resume."

    @torch.no_grad()
    def evaluate(self) -> dict:
        record, mon, labels = {}, self.monitor, self.labels
        loss = self.objective.mean_loss()
        if loss is not None:
            record["fine_tune_loss"] = loss
        record["train_accuracy"] = (self.model(mon["train"]).argmax(-1) == labels["train"]).double().mean().item()
        if mon["test"] is not None and labels["test"] is not None:
            record["accuracy"] = (self.model(mon["test"]).argmax(-1) == labels["test"]).double().mean().item()
        if self.dist is not None:       # the loss: the mean over processes; accuracies are the same on each
            record = self.dist.reduce_record(record)
        return self.log(record)


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
            if outer.stopped:
                break
            if phase == "head":
                whole = stack.fine_tune == "all"
                tuner = FineTuner(outer, stack, n_epochs, train)
                tuner.run(first, train if whole else x, test if whole else x_test, labels)
                break
            if first < n_epochs and not LayerTrainer(outer, stack, phase, n_epochs).run(first, x, x_test):
                break                           # stopped inside this layer
            stack.fit_lift(phase, x)
            x = stack.lift_all(phase, x)
            x_test = None if x_test is None else stack.lift_all(phase, x_test)
        if not outer.stopped:
            _log_stack(stack, outer, labels)
    return outer.history


@torch.no_grad()
def _log_stack(stack, outer, labels):
    """One record for the whole stack at the end: up-down reconstruction error (and test accuracy)."""
    mon = outer.monitor
    record = {"epoch": float(outer.epoch), "time": outer.elapsed, "layer": 0,
              "stack_recon_error": ((stack.reconstruct(mon["train"]) - mon["train"]) ** 2).mean().item()}
    if mon["test"] is not None:
        record["stack_recon_error_test"] = ((stack.reconstruct(mon["test"]) - mon["test"]) ** 2).mean().item()
    outer.log(record)
