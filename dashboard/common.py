"""Shared pieces of the dashboard pages: the server's run manager and schema-generated widgets.

The pages hold no model logic: the engine (`energylab`) owns models, training
and measurements; `energylab.server.manager` owns the runs. This module turns a
variant's hyperparameter schema (`energylab.Param`) into widgets, so a new
variant in the registry appears here without dashboard code.

Ownership: every browser session has an unguessable owner token (`session_token`),
kept in the session and in the page's URL (`?key=`), so a reload keeps control of
the session's runs. A run's page opened without its owner's key is read-only.
The instructor's key (`ENERGYLAB_INSTRUCTOR_KEY`, entered on the Class page)
controls every run.
"""
from __future__ import annotations

import hashlib
import math
import os
import secrets

import streamlit as st

import energylab as el
from energylab.server.manager import RunManager
from energylab.store.runrecord import safe_name

DATASET_NOTES = {"mnist": "download", "fashion-mnist": "download", "kmnist": "download"}


@st.cache_resource
def manager() -> RunManager:
    """One run manager per server process: runs outlive sessions, tabs and reloads."""
    return RunManager(os.environ.get("ENERGYLAB_RUNS_DIR", "runs"),
                      max_running=int(os.environ.get("ENERGYLAB_MAX_RUNS", 2)), prewarm=True)


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


def linear_grid(low: float, high: float, default: float, n: int = 100) -> list[float]:
    """n + 1 evenly spaced values (3 significant digits) with the default included, so the
    default is always a notch: a browser never snaps a value it was given to a neighbour."""
    return sorted({float(f"{low + (high - low) * i / n:.3g}") for i in range(n + 1)} | {float(default)})


def slider_grid(p: el.Param) -> list[float] | None:
    """The fixed stops of a float parameter's slider (None: not a slider), from the schema
    (`Param.grid`, the default always a stop). They depend on the schema only, never on the value
    in use, so the widget keeps its identity while a run changes."""
    if p.kind != "float":
        return None
    return p.grid()


def nearest(grid: list[float], value: float) -> float:
    if value in grid:
        return value
    if min(grid) > 0 and value > 0:
        return min(grid, key=lambda x: abs(math.log(x / value)))
    return min(grid, key=lambda x: abs(x - value))


def fmt(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def param_widget(p: el.Param, key: str, default=None, on_change=None, args=(), disabled=False):
    """One widget for one schema entry; `help` becomes the tooltip, `key` keeps it stable."""
    default = p.default if default is None else default
    label = p.name.replace("_", " ") + (" ⚡" if p.live else "")
    common = dict(key=key, help=p.help + (" (can change while training runs)" if p.live else ""),
                  on_change=on_change, args=args, disabled=disabled)
    grid = slider_grid(p)
    if key not in st.session_state:
        st.session_state[key] = nearest(grid, default) if grid else default
    elif grid and st.session_state[key] not in grid:
        st.session_state[key] = nearest(grid, st.session_state[key])
    if p.kind == "choice":
        return st.selectbox(label, list(p.choices), **common)
    if p.kind == "bool":
        return st.checkbox(label, **common)
    if p.kind == "ints":             # comma-separated whole numbers, e.g. layer sizes "256,64"
        return st.text_input(label, **common)
    if grid:
        return st.select_slider(label, options=grid, format_func=fmt, **common)
    if p.kind == "int" and p.low is not None and p.high is not None and p.high - p.low <= 200:
        return st.slider(label, int(p.low), int(p.high), step=1, **common)
    if p.kind == "int":
        return st.number_input(label, min_value=int(p.low) if p.low is not None else None,
                               max_value=int(p.high) if p.high is not None else None, step=1, **common)
    return st.number_input(label, min_value=p.low, max_value=p.high, format="%.4g", **common)


# -- who is this session --------------------------------------------------------------------------
def session_token() -> str:
    """This browser session's owner token: from the URL on a reload, else a new unguessable one.
    It is written back into the URL (`?key=`), so a reload or a bookmark keeps control."""
    token = st.session_state.get("owner_token") or st.query_params.get("key")
    if not token or len(token) < 16:
        token = secrets.token_urlsafe(24)
    st.session_state["owner_token"] = token
    if st.query_params.get("key") != token:
        st.query_params["key"] = token
    return token


def control_token() -> str:
    """The token this session changes runs with: the instructor's key once entered, else its own."""
    key = st.session_state.get("instructor_key")
    return key if key and manager().is_instructor(key) else session_token()


def owner_label() -> str:
    """The name shown to others (and the instructor) for this session's runs."""
    name = (st.session_state.get("owner_name") or "").strip()
    return name[:40] if name else "guest " + hashlib.sha256(session_token().encode()).hexdigest()[:4]


def attached_run():
    """The run this browser session watches (kept in the URL, so a reload re-attaches)."""
    # "New run" detaches explicitly (run_id ""): the URL's run is read only when the session starts
    run_id = st.session_state["run_id"] if "run_id" in st.session_state else st.query_params.get("run")
    if run_id and safe_name(run_id) != run_id:          # a URL is input: never a path
        run_id = None
    run = manager().get(run_id) if run_id else None
    if run is not None:
        st.session_state["run_id"] = run.id
        if st.query_params.get("run") != run.id:       # an address update lost in a rerun: set it again
            st.query_params["run"] = run.id
    return run


def attach(run_id: str | None):
    st.session_state["run_id"] = run_id or ""
    if run_id:
        st.query_params["run"] = run_id
    elif "run" in st.query_params:
        del st.query_params["run"]


def unreadable_folders():
    """Run folders that cannot be read, listed with their reasons (never a traceback)."""
    from energylab.store.runfolder import RunFolder
    bad = [f for f in RunFolder.list_runs(manager().root) if not f.readable]
    if bad:
        with st.expander(f"{len(bad)} run folder(s) cannot be read"):
            for f in bad:
                st.caption(f"`{f.name}`: unreadable: {f.error}")
