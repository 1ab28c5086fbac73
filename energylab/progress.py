"""Where a stack's layerwise training stands, from its record alone: which layer trains, and how far.

A stack (DBN, ResidualDBN, ConvDBN) trains layer 1, then layer 2 on layer 1's features, ..., then
(optionally) a supervised head; its history records carry `layer` (1..depth; depth + 1 while
fine-tuning; 0 for the final whole-stack record) and `epoch`, counted over all layers together
(layerwise.py). A page that knows only the run's record (variant, model and training
hyperparameters) and its latest history record can say "layer 2 of 3 · epoch 40 of 300".
A DBM with `pretrain_epochs` > 0 pretrains its layers the same way (training/dbm.py): its
records carry `layer` while it pretrains, and none once the joint training runs.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StackProgress:
    layer: int            # 1..depth; depth + 1 while fine-tuning; 0 when every layer is done
    depth: int
    epoch: float          # epochs done in this layer
    epochs: int           # epochs this layer trains for
    fine_tuning: bool = False
    pretraining: bool = False       # a DBM's layerwise pretraining, before its joint training
    joint: bool = False             # a DBM's joint training, after its pretraining

    @property
    def fraction(self) -> float:
        """Share of this layer's epochs done, in [0, 1] (1 when the stack is done)."""
        return 1.0 if self.layer == 0 else min(1.0, max(0.0, self.epoch / max(self.epochs, 1)))

    @property
    def label(self) -> str:
        if self.layer == 0:
            return f"all {self.depth} layers trained"
        if self.joint:
            return f"joint training of all {self.depth} layers · epoch {self.epoch:.1f} of {self.epochs}"
        if self.fine_tuning:
            return f"fine-tuning the classifier head · epoch {self.epoch:.0f} of {self.epochs}"
        what = "pretraining layer" if self.pretraining else "layer"
        return f"{what} {self.layer} of {self.depth} · epoch {self.epoch:.1f} of {self.epochs}"


def layer_sizes(model_hparams: dict) -> list:
    """The stack's layers from its model hyperparameters (`hidden_layers` or `n_filters`); [] if none."""
    for key in ("hidden_layers", "n_filters"):
        text = model_hparams.get(key)
        if isinstance(text, str) and text.strip():
            return [int(s) for s in text.split(",") if s.strip()]
    return []


def stack_progress(model_hparams: dict, training: dict, record: dict | None) -> StackProgress | None:
    """Progress of a stack's run from its hyperparameters and its latest history record; None for a
    model that is not a stack or before the first record. `training["epochs"]` is used for every
    layer when `layer_epochs` is empty (as the trainer does)."""
    sizes = layer_sizes(model_hparams)
    if not sizes or not record or "layer" not in record:
        return None
    depth = len(sizes)
    layer, epoch = int(record["layer"]), float(record.get("epoch", 0.0))
    if "pretrain_epochs" in model_hparams:          # a DBM: each layer pretrains this many epochs
        per = int(model_hparams["pretrain_epochs"])
        done = epoch - per * (layer - 1)
        return StackProgress(layer, depth, done, per, pretraining=True) if 1 <= layer <= depth else None
    given = [int(s) for s in str(model_hparams.get("layer_epochs") or "").split(",") if s.strip()]
    per_layer = given if len(given) == depth else [int(training.get("epochs", 1))] * depth
    if layer == 0:
        return StackProgress(0, depth, float(per_layer[-1]), per_layer[-1])
    if layer > depth:
        tune = int(model_hparams.get("fine_tune_epochs", 1))
        return StackProgress(layer, depth, epoch - sum(per_layer), tune, fine_tuning=True)
    return StackProgress(layer, depth, epoch - sum(per_layer[:layer - 1]), per_layer[layer - 1])
