"""Where a plan of phases stands, as a page says it: which layer trains, and how far.

A stack (DBN, ResidualDBN, ConvDBN) trains layer 1, then layer 2 on layer 1's features, ..., then
(optionally) a supervised head; a DBM with `pretrain_epochs` > 0 pretrains each layer, then trains
jointly (training/phases.py). `StackProgress` is one position in such a plan with the words a page
shows ("layer 2 of 3 · epoch 40.0 of 300"); the training process works it out from the trainer's
own position (`server.worker_pictures.stack_phase`) and the page reads it from the snapshot.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StackProgress:
    layer: int            # 1..depth; depth + 1 while fine-tuning or training jointly; 0 when every layer is done
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
