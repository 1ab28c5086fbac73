"""`DBM`: a deep Boltzmann machine of any depth (Salakhutdinov & Hinton 2009); see `energylab/models/dbm.py`.

Trained by the shared trainer through the model's own objective (mean-field positive phase,
persistent block-Gibbs negative phase): the schema's `sampler` is not used, `k` is the number
of Gibbs sweeps of the persistent chains per update. With `pretrain_epochs` > 0 the trainer
first pretrains the layers greedily, one phase per layer (Salakhutdinov & Hinton 2009, 3.1;
`energylab/training/dbm.py`), under the same pause / step / stop, live learning rate, guard
and checkpoints; `el.dbm.pretrain(model, data)` runs that pretraining alone.
"""
from __future__ import annotations

from ..models.dbm import DBM
from ..registry import INIT_STD, Param, Variant, register

HIDDEN_LAYERS = Param("hidden_layers", "ints", "64,32", "hidden units of each layer, bottom to top, e.g. '256,64'",
                      1, 100000)
PRETRAIN_EPOCHS = Param("pretrain_epochs", "int", 0, "epochs of greedy layerwise pretraining of each layer (CD-k, "
                        "doubled first and top layers) before the joint training; 0: none", 0, 10000)


def dbm(n_visible, hidden_layers, init_std, pretrain_epochs=0):
    sizes = [int(s) for s in hidden_layers.split(",") if s]
    if not sizes:
        raise ValueError("hidden_layers is empty; give at least one number, e.g. '64,32'")
    return DBM([n_visible] + sizes, init_std, pretrain_epochs=pretrain_epochs)


register(Variant(
    name="DBM", factory=dbm, params=(HIDDEN_LAYERS, INIT_STD, PRETRAIN_EPOCHS),
    summary="Deep Boltzmann machine: undirected layers, mean-field inference, persistent chains",
    visible="Bernoulli", hidden="Bernoulli (every layer)", method="mean-field + PCD (layerwise pretraining)",
    reference="Salakhutdinov & Hinton 2009; Salakhutdinov & Hinton 2012",
    data_kinds=("binary", "unit"), training_defaults={"lr": 0.01, "k": 5},
    # its own persistent chains and mean-field phase: the schema's sampler options do not apply
    unused=("sampler", "n_chains", "chain_init", "pt_temperatures", "pt_min_beta", "driven_momentum", "driven_std",
            "method"),
    essentials=("hidden_layers", "pretrain_epochs", "lr", "k"),
    # lr 0.01 barely moves in a minute; a few epochs of pretraining per layer take seconds
    dashboard_training={"epochs": 10000, "lr": 0.05, "pretrain_epochs": 5},
    what_to_watch="first each layer is pretrained in turn as an RBM, its records tagged with the layer; then every "
                  "layer is trained at once: the first layer's weights turn into strokes, the reconstruction "
                  "error falls and samples from the persistent chains start to look like digits.",
))
