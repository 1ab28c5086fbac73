"""What the Train page starts: a run's settings from the values its widgets hold.

    model, training = run_settings(variant, "digits", chosen)     # chosen: the widgets shown
    manager.start(name, **default_run(name), owner=token)          # what a first Train click starts

The page shows a variant's hyperparameters that apply (`Variant.applicable`), starts each widget at
`page_defaults` (the registry's `dashboard_training` over the schema's defaults, and a stack's
first layer that fits the data's kind), and hands `RunManager.start` the settings `run_settings`
builds: every model hyperparameter (a hidden one at its page default) and every training
hyperparameter the variant uses. Kept here, out of `dashboard/`, so that tests and other callers
start exactly what a student's Train click starts, without Streamlit.
"""
from __future__ import annotations

from ..datasets import DATASETS
from ..registry import Variant
from ..registry import get as get_variant

# Options a dataset's own widgets start at on the page (bars-and-stripes: a 3x3 image, small
# enough for the exact-distribution panel).
DATASET_OPTIONS = {"bars-and-stripes": {"size": 3}}


def page_defaults(variant: Variant, dataset: str) -> dict:
    """The value every widget of the Train page starts at, for this variant on this dataset."""
    return {**variant.dashboard_defaults(), **variant.defaults_for_kind(DATASETS[dataset].kind)}


def run_settings(variant: Variant, dataset: str, chosen: dict | None = None) -> tuple[dict, dict]:
    """(model, training) for `RunManager.start` from the values of the widgets shown (`chosen`):
    a model hyperparameter not shown takes its page default; a training one not shown takes its
    page default unless the variant ignores it (`Variant.unused`)."""
    chosen = chosen or {}
    defaults = page_defaults(variant, dataset)
    model = {p.name: chosen.get(p.name, defaults[p.name]) for p in variant.params}
    training = {p.name: chosen.get(p.name, defaults[p.name]) for p in variant.training
                if p.name in chosen or p.name not in variant.unused}
    return model, training


def default_run(name: str, dataset: str | None = None) -> dict:
    """The keyword arguments of `RunManager.start(name, ...)` for a Train click on an untouched
    page: the variant's default dataset (`Variant.dataset`), every widget at its default."""
    variant = get_variant(name)
    dataset = dataset or variant.dataset()
    model, training = run_settings(variant, dataset)
    return {"dataset": dataset, "model": model, "training": training,
            "dataset_options": dict(DATASET_OPTIONS.get(dataset, {}))}
