"""Shared pieces of the dashboard pages: the server's run manager and schema-generated widgets.

The pages hold no model logic: the engine (`energylab`) owns models, training
and measurements; `energylab.runmanager` owns the runs. This module turns a
variant's hyperparameter schema (`energylab.Param`) into widgets, so a new
variant in the registry appears here without dashboard code.
"""
from __future__ import annotations

import math
import os

import streamlit as st

import energylab as el
from energylab.runmanager import RunManager

# The dashboard trains longer than the schema's default so there is time to watch (stop any time).
DASHBOARD_DEFAULTS = {"epochs": 2000}
DATASET_NOTES = {"mnist": "download", "fashion-mnist": "download", "kmnist": "download"}


@st.cache_resource
def manager() -> RunManager:
    """One run manager per server process: runs outlive sessions, tabs and reloads."""
    return RunManager(os.environ.get("ENERGYLAB_RUNS_DIR", "runs"),
                      max_running=int(os.environ.get("ENERGYLAB_MAX_RUNS", 2)))


def datasets_for(variant: el.Variant) -> list[str]:
    """Datasets whose kind the variant's visible units accept (user files need the CLI)."""
    return [name for name, info in el.datasets.DATASETS.items()
            if info.kind in variant.data_kinds and name != "file"]


def dataset_label(name: str) -> str:
    note = DATASET_NOTES.get(name)
    return f"{name} ({note})" if note else name


def log_grid(low: float, high: float, default: float) -> list[float]:
    """1-2-5 values from low to high (a log-scale slider), with the default included."""
    values = {default}
    for e in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1):
        for m in (1, 2, 5):
            x = float(f"{m}e{e}")
            if low <= x <= high:
                values.add(x)
    return sorted(values)


def fmt(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def param_widget(p: el.Param, key: str, default=None, on_change=None, args=(), disabled=False):
    """One widget for one schema entry; `help` becomes the tooltip, `key` keeps it stable."""
    default = p.default if default is None else default
    label = p.name.replace("_", " ") + (" ⚡" if p.live else "")
    common = dict(key=key, help=p.help + (" (can change while training runs)" if p.live else ""),
                  on_change=on_change, args=args, disabled=disabled)
    if key not in st.session_state:
        st.session_state[key] = default
    if p.kind == "choice":
        return st.selectbox(label, list(p.choices), **common)
    if p.kind == "bool":
        return st.checkbox(label, **common)
    if p.kind == "ints":             # comma-separated whole numbers, e.g. layer sizes "256,64"
        return st.text_input(label, **common)
    if p.kind == "float" and p.log and p.low and p.high:
        grid = log_grid(p.low, p.high, default)
        if st.session_state[key] not in grid:
            st.session_state[key] = min(grid, key=lambda x: abs(math.log(x / st.session_state[key])))
        return st.select_slider(label, options=grid, format_func=fmt, **common)
    if p.kind == "float" and p.low is not None and p.high is not None:
        return st.slider(label, float(p.low), float(p.high), step=(p.high - p.low) / 100, format="%.3g",
                         **common)
    if p.kind == "int" and p.low is not None and p.high is not None and p.high - p.low <= 200:
        return st.slider(label, int(p.low), int(p.high), step=1, **common)
    if p.kind == "int":
        return st.number_input(label, min_value=int(p.low) if p.low is not None else None,
                               max_value=int(p.high) if p.high is not None else None, step=1, **common)
    return st.number_input(label, min_value=p.low, max_value=p.high, format="%.4g", **common)


def attached_run():
    """The run this browser session watches (kept in the URL, so a reload re-attaches)."""
    run_id = st.session_state.get("run_id") or st.query_params.get("run")
    run = manager().get(run_id) if run_id else None
    if run is not None:
        st.session_state["run_id"] = run.id
    return run


def attach(run_id: str | None):
    st.session_state["run_id"] = run_id
    if run_id:
        st.query_params["run"] = run_id
    elif "run" in st.query_params:
        del st.query_params["run"]
