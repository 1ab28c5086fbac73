"""The Train page's header for a run: its status (a stack's layer in training, layer by layer), the
owner's buttons and downloads, the live sliders and the values in use. Redrawn every second.

A run belongs to the session that started it (see common.py): only its owner (or the instructor)
sees enabled controls. A page that watches a run never writes to it: the live sliders sit in their
own fragment that reruns only when a person moves one, and a change is sent only when it differs
from the value the run holds.
"""
from __future__ import annotations

import time

import streamlit as st

from common import attach, control_token, fmt, manager, nearest, param_widget, slider_grid
from energylab.errors import EnergylabError
from energylab.training.history import History
from train_views import is_classifier_view, stack_progress, stack_view, step_detail

# Material icons ship with Streamlit (emoji need a font the browser may not have).
ICONS = {"starting": ":grey[:material/hourglass_empty:]", "queued": ":grey[:material/schedule:]",
         "running": ":green[:material/play_circle:]", "paused": ":orange[:material/pause_circle:]",
         "stopped": ":grey[:material/stop_circle:]", "finished": ":green[:material/check_circle:]",
         "failed": ":red[:material/error:]", "interrupted": ":orange[:material/warning:]",
         "cancelled": ":grey[:material/cancel:]", "unreadable": ":red[:material/broken_image:]"}


def _safe(f):
    """A control's callback: a refusal (not yours, not running) becomes a notice, never a traceback."""
    try:
        f()
    except (EnergylabError, RuntimeError, ValueError) as exc:
        st.session_state["notice"] = str(exc)


def live_params(run) -> list:
    """Every hyperparameter of the run that may change while it trains (training and model: dropout p,
    hybrid alpha, conv sparsity), and only those that apply to its settings."""
    values = {**run.config.get("model", {}), **run.config.get("training", {})}
    return list(run.variant.live_params(values))


def send(run, name, token):
    """on_change of a live slider: forward a person's change, once. A widget that reports the value
    the run already holds (a re-mounted slider echoing its state) sends nothing."""
    key = f"live.{run.id}.{name}"
    value = st.session_state[key]
    if value == st.session_state.get(f"held.{key}"):
        return
    try:
        run.set(name, value, token=token)
        st.session_state[f"held.{key}"] = value
    except (EnergylabError, ValueError, RuntimeError) as exc:
        st.session_state["notice"] = str(exc)


def live_controls(run):
    """The owner's sliders. This fragment reruns only when one of its widgets is moved: a timer never
    redraws it, so watching cannot produce a change."""
    snap = run.snapshot() or {}
    token = control_token()
    if not run.active:
        return
    st.markdown("**Retune while it runs** ⚡ — the run takes a new value at its next mini-batch")
    for p in live_params(run):
        key = f"live.{run.id}.{p.name}"
        in_use = snap.get("params", {}).get(p.name, p.default)
        grid = slider_grid(p)
        shown = nearest(grid, in_use) if grid else in_use
        if key not in st.session_state:          # first drawing in this session: the run's value
            st.session_state[key] = shown
        st.session_state.setdefault(f"held.{key}", shown)
        param_widget(p, key, shown, on_change=send, args=(run, p.name, token))


def values_in_use(run, snap):
    """The live values the run holds now (anyone may have moved them: its owner, the instructor)."""
    values = snap.get("params", {})
    shown = " · ".join(f"{p.name.replace('_', ' ')} **{fmt(values.get(p.name, p.default))}**"
                       for p in live_params(run))
    if run.can_control(control_token()):
        st.caption(f"In use: {shown}")
    else:
        st.caption(f":material/visibility: You are watching **{run.owner_label}**'s run (read-only). "
                   f"In use: {shown}")


def buttons(run, snap, token):
    status = snap["status"]
    mine = run.can_control(token)
    cols = st.columns([1, 1.1, 1, 1, 1.5, 1.2, 1.3])
    act = lambda f: (lambda: _safe(f))
    off = not mine
    cols[0].button("Pause", icon=":material/pause:", key="pause", on_click=act(lambda: run.pause(token=token)),
                   disabled=off or status != "running", help="hold the run after the current mini-batch")
    cols[1].button("Resume", icon=":material/play_arrow:", key="resume",
                   on_click=act(lambda: run.resume(token=token)), disabled=off or status != "paused")
    cols[2].button("Step", icon=":material/skip_next:", key="step", on_click=act(lambda: run.step(token=token)),
                   disabled=off or status != "paused",
                   help="while paused: one mini-batch, to watch a single CD update")
    cols[3].button("Stop", icon=":material/stop:", key="stop", on_click=act(lambda: run.stop(token=token)),
                   disabled=off or not (run.active or run.waiting),
                   help="end the run; it saves a final checkpoint you can load later")
    cols[4].button("Save checkpoint", icon=":material/save:", key="save",
                   on_click=act(lambda: run.save_checkpoint(token=token)), disabled=off or not run.active,
                   help="write a resume point now (every end and a periodic autosave write one too)")
    if cols[5].button("New run", icon=":material/restart_alt:", key="reset",
                      help="back to the start screen; a running run keeps running (stop it first to end it)"):
        attach(None)
        st.rerun(scope="app")             # the button sits in a fragment: redraw the whole page
    return cols[6]


def status_line(run, snap):
    s = snap
    who = "" if run.can_control(control_token()) else f" · {run.owner_label}'s run"
    text = (f"{ICONS.get(s['status'], '')} **{s['status']}** · step {s['step']:,} · epoch {s.get('epoch', 0):.1f} "
            f"· {s.get('samples_per_s', 0):,.0f} samples/s · {s.get('device', '?')} "
            f"· {time.strftime('%M:%S', time.gmtime(s.get('elapsed', 0)))} elapsed{who}")
    stack = stack_progress(s)             # the worker's own position, known from the first batch
    if stack is not None:
        text += f" · **{stack.label}**"
    st.markdown(text)
    stack_view(s)
    st.caption(f":material/visibility: What to watch: {run.variant.what_to_watch}")
    if s.get("error"):
        st.error(f"The run failed: {s['error']}")
    for note in run.notices[-2:]:
        st.caption(f":material/info: {note}")
    if st.session_state.get("notice"):
        st.warning(st.session_state.pop("notice"))


def full_history(run) -> History:
    """The run's whole history: from its folder once it has ended, else the latest snapshot."""
    if not run.active and run.folder.file("history.json").is_file():
        return run.folder.read_history()
    return History.from_dict(run.snapshot()["history"])


def downloads(col, run, snap):
    # Callables: the files are built only when clicked, not at every one-second redraw.
    with col.popover("Download", icon=":material/download:"):
        st.download_button("history.csv", lambda: full_history(run).to_csv(), f"{run.id}-history.csv",
                           "text/csv", key="dl.csv", on_click="ignore")
        st.download_button("history.json", lambda: full_history(run).to_json(), f"{run.id}-history.json",
                           "application/json", key="dl.json", on_click="ignore")
        if snap.get("weights_png"):
            st.download_button("weights.png", lambda: run.snapshot()["weights_png"], f"{run.id}-weights.png",
                               "image/png", key="dl.png", on_click="ignore")
        if run.folder.checkpoint.is_file():
            st.download_button("checkpoint.pt", lambda: run.folder.checkpoint.read_bytes(),
                               f"{run.id}-checkpoint.pt", "application/octet-stream", key="dl.ckpt",
                               on_click="ignore", help="load it with energylab.load(path) (no pickles)")
        st.caption(f"While it trains the history is thinned to {len(snap['history']['records'])} points; "
                   f"the run's folder on the server is `{run.id}`")


def header_view(run):
    """Status, controls and the single-step view; redrawn every second while the run trains."""
    snap = run.snapshot()
    if run.waiting:
        st.info(f":material/schedule: Waiting in the queue (position {manager().queue_position(run)}); "
                "the run starts by itself when one of the running ones ends.")
        return
    if snap is None:
        st.info(":material/hourglass_empty: Starting the training process (loading the engine and the data "
                "takes a few seconds)…")
        return
    if st.session_state.get("fast_tick"):
        st.session_state["fast_tick"] = False
        st.rerun(scope="app")                 # the first picture is in: back to the one-second timers
    token = control_token()
    status_line(run, snap)
    dl = buttons(run, snap, token)
    downloads(dl, run, snap)
    values_in_use(run, snap)
    step_detail(snap)
    if not run.active and st.session_state.get("was_active"):
        st.session_state["was_active"] = False
        st.rerun(scope="app")                 # the run ended: redraw once without the timer
    st.session_state["was_active"] = run.active
    if is_classifier_view(snap) != st.session_state.get("classifier_layout", False):
        st.rerun(scope="app")                 # a stack's head began to train: the classification layout


