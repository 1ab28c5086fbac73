"""Training a deep Boltzmann machine under the trainer: greedy layerwise pretraining, then joint training.

Salakhutdinov & Hinton 2009, "Deep Boltzmann machines" (AISTATS), section 3.1; Salakhutdinov &
Hinton 2012, "An efficient learning procedure for deep Boltzmann machines" (depth > 2).

`Trainer.fit(dbm)` with `dbm.pretrain_epochs` > 0 (the DBM variant's `pretrain_epochs`) first
runs one phase per layer (`pretrain_phases`), then its own joint epochs (mean field + persistent
chains, `models/dbm_training.DBMObjective`). Phase l trains RBM l, a view of the DBM's own
coupling W_l and biases with the doubling of the papers (`models/dbm_training.LayerView`:
RBM 1's up-weights doubled, RBM L's down-weights doubled), by CD-k with the outer trainer's
live `lr`, `k`, momentum, weight decay and guard, on the mean-field outputs of RBM l - 1
(`lift`), computed once when that layer finished. When an inner layer's last epoch ends its
weights are halved (`finish_layer`), before the epoch is counted, so a checkpoint never holds
a finished layer unhalved; the layer's hidden bias at that moment is kept in the trainer's
checkpointed `phase_state` (the next RBM trains it further as its visible bias), so a run
resumed inside a later layer recomputes that layer's inputs exactly. The outer trainer's
`epoch` counts pretraining layer-epochs, then joint epochs; a run resumed inside pretraining
skips the layers done and restarts the epoch it was in (phases.py).

This module is `el.dbm`: the model (`DBM`), its objective and `pretrain`, the same pretraining
for a script that wants it apart from the joint training.
"""
from __future__ import annotations

import torch

from ..models.dbm import DBM, DBMPath  # noqa: F401  (el.dbm.DBM: the model, with its training)
from ..models.dbm_training import DBMObjective, down_to_visible, finish_layer, layer_view, lift  # noqa: F401
from .phases import PhaseTrainer
from .trainer import Trainer

#: what every pretraining phase uses, whatever the joint training's settings (the papers' CD)
PHASE_VALUES = {"sampler": "cd", "method": "sampling"}


def pretrain_phases(outer: Trainer, train, test=None, epochs: int | None = None) -> bool:
    """Run (or resume, from `outer.epoch`) the pretraining of every layer of `outer.model` for
    `epochs` epochs each (default: the model's `pretrain_epochs`); True when all of it is done."""
    dbm = outer.model
    epochs = dbm.pretrain_epochs if epochs is None else epochs
    done = outer.epoch                          # layer-epochs finished before (a resumed run)
    x, x_test = train, test
    for l in range(1, dbm.depth + 1):
        first = min(done, epochs)
        done -= first
        if outer.stopped:
            return False
        if first < epochs:
            phase = PhaseTrainer(outer, layer_view(dbm, l), epochs, layer=l, values=PHASE_VALUES,
                                 show=lambda negative, rows, l=l: down_to_visible(dbm, l, negative),
                                 finish=lambda l=l: _finish(outer, dbm, l), name=f"pretraining layer {l}")
            if not phase.run(first, x, x_test):
                return False                    # stopped inside this layer
        if l < dbm.depth:
            bias = outer.phase_state.get(f"dbm_lift_bias{l}")
            x = lift(dbm, l, x, bias)
            x_test = None if x_test is None else lift(dbm, l, x_test, bias)
    return True


def _finish(outer, dbm, l: int) -> None:
    """Layer l's last epoch has ended: compose it (halve an inner layer) and keep its hidden bias as
    it is now: RBM l + 1 trains that bias further as its visible bias, and a run resumed inside a
    later layer computes RBM l's outputs again, from this value (the trainer checkpoints it)."""
    finish_layer(dbm, l)
    if l < dbm.depth:
        outer.phase_state[f"dbm_lift_bias{l}"] = dbm.biases[l].detach().clone()


def pretrain(model, data, epochs: int = 20, lr: float = 0.05, batch_size: int = 20, k: int = 1,
             generator=None):
    """Greedy layerwise CD-k pretraining of `model` alone (no joint training); returns the model.

    The phases `Trainer.fit` runs for a DBM with `pretrain_epochs`, with plain SGD (no momentum,
    no weight decay) at `lr`. `generator` gives the shuffling and sampling stream (default: one
    seeded from torch's global generator, so torch.manual_seed fixes it)."""
    trainer = Trainer(model, device=model.device, lr=lr, batch_size=batch_size, k=k, momentum=0.0,
                      weight_decay=0.0, eval_every=10 ** 9)
    if generator is None:
        generator = torch.Generator(trainer.device).manual_seed(int(torch.randint(2 ** 62, (1,)).item()))
    trainer.generator = generator
    train, test = trainer.prepare(data)
    trainer.steps_per_epoch = -(-train.shape[0] // batch_size)
    trainer.total_steps = epochs * model.depth * trainer.steps_per_epoch
    with trainer.running():
        pretrain_phases(trainer, train, test, epochs)
    return model
