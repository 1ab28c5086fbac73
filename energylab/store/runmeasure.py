"""Measuring a saved run: its model (from checkpoint.pt) on its data (from config.json).

`RunFolder.evaluate` calls `evaluate` here; `energylab evaluate` prints the result. Every
metric is named with its method: exact where a layer is small enough to enumerate, the
pseudo-likelihood otherwise, and an AIS estimate of the log-likelihood (with its
uncertainty) where the exact value is out of reach.
"""
from __future__ import annotations

import warnings

import torch

from .. import datasets
from ..errors import DataError
from ..measures import ais, metrics


def evaluate(run, split="test", device="cpu", exact_max_units=20, seed=0, also=()) -> dict:
    """The run's model measured on its data: {"split", "n_examples", "notes", "metrics": {name: {value,
    method}}}. Likelihoods of Bernoulli visible units need binary states: [0, 1] data are binarized
    once, stochastically, with `seed` (as in the MNIST likelihood literature)."""
    model = run.load_model(device)
    data = run.load_dataset(also=also)
    x = data.test if split == "test" else data.train
    if not len(x):
        raise DataError(f"the dataset has no {split} examples", file=run.path, field="split", value=split,
                        fix="evaluate the train split instead (--split train)")
    notes, g = [], torch.Generator().manual_seed(seed)
    xb = x
    if model.visible.discrete and data.kind != "binary":
        xb = datasets.binarize(x, "stochastic", g)
        notes.append(f"likelihoods use the {split} data binarized stochastically (seed {seed})")
    found = {"reconstruction_error": (metrics.reconstruction_error(model, x), "mean squared error per unit"),
             "free_energy": (metrics.free_energy(model, x).mean().item(), "mean F(v)")}
    if model.visible.discrete:
        g_model = torch.Generator(model.device).manual_seed(seed)
        pl = metrics.pseudo_log_likelihood(model, xb, generator=g_model)
        found["pseudo_log_likelihood"] = (pl.value, pl.method)
    else:
        found["pseudo_log_likelihood"] = (None, "not applicable: real-valued visible units")
    try:
        layer = metrics.enumerated_layer(model, exact_max_units)
        found["exact_log_likelihood"] = (metrics.exact_log_likelihood(model, xb, max_units=exact_max_units),
                                         f"exact, enumerating the {layer} layer")
    except ValueError as exc:
        found["exact_log_likelihood"] = (None, f"not computable exactly ({exc})")
        if getattr(model.visible, "exact_free_energy", True) and getattr(model.hidden, "exact_free_energy", True):
            # Too large to enumerate: an AIS estimate instead, with its uncertainty.
            g_ais = torch.Generator(model.device).manual_seed(seed)
            with warnings.catch_warnings():     # bases that disagree: said once, as a note (the JSON carries it)
                warnings.simplefilter("ignore", ais.AISDisagreement)
                value, z = metrics.ais_log_likelihood(model, xb, n_chains=100, betas=1000, generator=g_ais)
            if z.warning:
                notes.append(z.warning)
            found["ais_log_likelihood"] = (value, f"AIS estimate, {z.n_chains} chains x {z.n_betas} "
                                                  f"temperatures; log Z = {z.log_z:.3f} ± {z.stderr:.3f}")
    if len(data.test):
        found["free_energy_gap"] = (metrics.free_energy_gap(model, data.train, data.test),
                                    "mean F(test) - mean F(train)")
    return {"run": str(run.path), "split": split, "n_examples": len(x), "notes": notes,
            "metrics": {k: {"value": v, "method": m} for k, (v, m) in found.items()}}
