"""`DBM`: a deep Boltzmann machine of any depth (Salakhutdinov & Hinton 2009); see `energylab/models/dbm.py`.

Trained by the shared trainer through the model's own objective (mean-field positive phase,
persistent block-Gibbs negative phase): the schema's `sampler` is not used, `k` is the number
of Gibbs sweeps of the persistent chains per update. Layerwise pretraining is
`energylab.models.dbm.pretrain(model, data)` before training.
"""
from __future__ import annotations

from ..models.dbm import DBM
from ..registry import INIT_STD, Param, Variant, register

HIDDEN_LAYERS = Param("hidden_layers", "ints", "64,32", "hidden units of each layer, bottom to top, e.g. '256,64'",
                      1, 100000)


def dbm(n_visible, hidden_layers, init_std):
    sizes = [int(s) for s in hidden_layers.split(",") if s]
    if not sizes:
        raise ValueError("hidden_layers is empty; give at least one number, e.g. '64,32'")
    return DBM([n_visible] + sizes, init_std)


register(Variant(
    name="DBM", factory=dbm, params=(HIDDEN_LAYERS, INIT_STD),
    summary="Deep Boltzmann machine: undirected layers, mean-field inference, persistent chains",
    visible="Bernoulli", hidden="Bernoulli (every layer)", method="mean-field + PCD (layerwise pretraining)",
    reference="Salakhutdinov & Hinton 2009; Salakhutdinov & Hinton 2012",
    data_kinds=("binary", "unit"), training_defaults={"lr": 0.01, "k": 5},
    # its own persistent chains and mean-field phase: the schema's sampler options do not apply
    unused=("sampler", "n_chains", "chain_init", "pt_temperatures", "pt_min_beta", "driven_momentum", "driven_std",
            "method"),
    essentials=("hidden_layers", "lr", "k"),
    dashboard_training={"epochs": 10000, "lr": 0.05},     # lr 0.01 barely moves in a minute
    what_to_watch="the first layer's weights turn into strokes while every layer is trained at once; "
                  "the reconstruction error falls and samples from the persistent chains start to look like digits.",
))
