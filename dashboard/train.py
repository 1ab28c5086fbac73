"""Train page: pick a variant and a dataset, press Train, watch it learn, retune it while it runs.

A run belongs to the session that started it (see common.py): only its owner (or the
instructor) sees enabled controls. A page that watches a run never writes to it: the
live sliders sit in their own fragment that reruns only when a person moves one, and
a change is sent only when it differs from the value the run holds.
"""
from __future__ import annotations

import base64
import time

import streamlit as st

import energylab as el
from common import (attach, attached_run, control_token, dataset_label, datasets_for, fmt, manager, nearest,
                    owner_label, param_widget, session_token, slider_grid)
from energylab.errors import EnergylabError
from energylab.training.history import History
from energylab.server.manager import RunLimitReached

# Recorded at every evaluation but not drawn unless asked for (they would crowd the page).
OPTIONAL_CURVES = ("weight_participation", "weight_square", "energy_distance")
HIDDEN_SERIES = ("epoch", "time", "samples_per_s", "layer")

# Material icons ship with Streamlit (emoji need a font the browser may not have).
ICONS = {"starting": ":grey[:material/hourglass_empty:]", "queued": ":grey[:material/schedule:]",
         "running": ":green[:material/play_circle:]", "paused": ":orange[:material/pause_circle:]",
         "stopped": ":grey[:material/stop_circle:]", "finished": ":green[:material/check_circle:]",
         "failed": ":red[:material/error:]", "interrupted": ":orange[:material/warning:]",
         "cancelled": ":grey[:material/cancel:]", "unreadable": ":red[:material/broken_image:]"}

# Pictures inline (data URIs): a redraw every second never points the browser at a media file
# that the next redraw has already replaced (broken-image icons); pixels stay crisp when scaled.
st.markdown("""<style>
img.el-picture {width: 100%; image-rendering: pixelated; border-radius: 2px;}
div[data-stale="true"] {opacity: 1 !important; transition: none !important;}
.block-container {padding-top: 2.2rem;}
</style>""", unsafe_allow_html=True)


def picture(png: bytes, caption: str = ""):
    data = base64.b64encode(png).decode()
    st.markdown(f'<img class="el-picture" src="data:image/png;base64,{data}" alt="{caption}">',
                unsafe_allow_html=True)
    if caption:
        st.caption(caption)


def _safe(f):
    """A control's callback: a refusal (not yours, not running) becomes a notice, never a traceback."""
    try:
        f()
    except (EnergylabError, RuntimeError, ValueError) as exc:
        st.session_state["notice"] = str(exc)


# -- sidebar: what to train -------------------------------------------------------------------
def widget_key(variant: str, p, fit: dict, kind: str) -> str:
    """A stable key per variant and parameter (a stack's data-dependent first layer per data kind)."""
    group = "model" if p in el.VARIANTS[variant].params else "train"
    return f"cfg.{variant}.{group}.{p.name}" + (f".{kind}" if p.name in fit else "")


def sidebar(current):
    with st.sidebar:
        st.text_input("your name (shown to the instructor)", key="owner_name", max_chars=40,
                      placeholder=owner_label())
        st.header("1 · Choose")
        name = st.selectbox("variant", list(el.VARIANTS), key="cfg.variant",
                            help="the model family; each is one entry of the engine's registry")
        variant = el.VARIANTS[name]
        st.caption(f"{variant.summary}. {variant.visible} visible, {variant.hidden} hidden; "
                   f"{variant.method}. _{variant.reference}_")
        names = datasets_for(variant)
        first = variant.dataset()
        names = [first] + [n for n in names if n != first] if first in names else names
        dataset = st.selectbox("dataset", names, key=f"cfg.{name}.dataset", format_func=dataset_label,
                               help="digits and bars-and-stripes are bundled and work offline")
        options = {}
        if dataset == "bars-and-stripes":
            options["size"] = st.slider("image size", 2, 4, 3, key="cfg.bas.size",
                                        help="n x n pixels; 3x3 is small enough for the exact distribution panel")
        kind = el.datasets.DATASETS[dataset].kind
        fit = variant.defaults_for_kind(kind)        # e.g. a DBN's first layer for real-valued data
        defaults = {**variant.dashboard_defaults(), **fit}
        values = {p.name: st.session_state.get(widget_key(name, p, fit, kind), defaults.get(p.name, p.default))
                  for p in variant.schema}
        shown = [p for p in variant.applicable(values)]           # e.g. pt_* only with sampler="pt"
        essential = [p for p in shown if p.name in variant.essentials]
        rest = [p for p in shown if p.name not in variant.essentials]
        chosen = {p.name: param_widget(p, widget_key(name, p, fit, kind), defaults.get(p.name)) for p in essential}
        with st.expander("2 · Advanced settings", expanded=False):
            st.caption("⚡ marks values you can change while the run trains. Settings that do not apply to "
                       "the choices above are hidden.")
            chosen.update({p.name: param_widget(p, widget_key(name, p, fit, kind), defaults.get(p.name))
                           for p in rest})
        model = {p.name: chosen[p.name] for p in variant.params if p.name in chosen}
        training = {p.name: chosen[p.name] for p in variant.training if p.name in chosen}
        model.update({n: v for n, v in defaults.items() if n not in model and n in {p.name for p in variant.params}})
        dropped = {p.name for p in variant.training} - set(training) - set(variant.unused)
        training.update({n: v for n, v in variant.dashboard_defaults("training").items() if n in dropped})
        st.header("3 · Train")
        position = manager().queue_position(current) if current is not None else None
        if position is not None:                 # where the Train button was: the queue position
            st.info(f":material/schedule: Your run waits in the queue: **position {position}** of "
                    f"{len(manager().waiting())}. It starts by itself when a slot frees.")
            return
        if st.button("Train", icon=":material/play_arrow:", type="primary", key="train", use_container_width=True,
                     help="start a new run with these settings (it keeps running if you close the tab)"):
            try:
                run = manager().start(name, dataset, model=model, training=training, dataset_options=options,
                                      owner=session_token(), owner_label=owner_label())
                attach(run.id)
                st.rerun()
            except (RunLimitReached, ValueError) as exc:
                st.error(str(exc))


def intro():
    st.title("energylab · train an energy-based model")
    st.markdown(
        "**What to do:** in the sidebar on the left, **1** choose a variant (start with `RBM`) and a dataset "
        "(`digits` is bundled), adjust the few settings shown (**2** holds the rest; hover a control's "
        ":material/help: for what it does), then **3** press **▶ Train**.\n\n"
        "While it trains you will see the weights as images, the training curves, reconstructions and "
        "samples, refreshing every second. Sliders marked ⚡ change the *running* training. "
        "Choose `bars-and-stripes` to watch the model's exact probability of every 3x3 image.")
    rows = manager().list_runs(control_token())
    mine = [r for r in rows if r["mine"] and r["status"] != "unreadable"]
    others = len(rows) - len(mine)
    if mine:
        st.subheader("Your runs")
        st.caption("Runs you started in this browser session, and command-line runs on this server. "
                   "Every run that ended kept its model: **load** continues it from its checkpoint.")
        for r in mine[:12]:
            cols = st.columns([6, 1], vertical_alignment="center")
            why = f" — {r['why']}" if r.get("why") and not r["live"] else ""
            cols[0].markdown(f"{ICONS.get(r['status'], '·')} `{r['id']}` · {r['status']}, step {r['step']:,}{why}")
            if r["live"] and r["status"] not in ("finished", "stopped", "failed", "cancelled"):
                if cols[1].button("open", key=f"open.{r['id']}", use_container_width=True):
                    attach(r["id"])
                    st.rerun()
            elif r["checkpoint"] and cols[1].button("load", key=f"load.{r['id']}", use_container_width=True,
                                                    help="continue this run from its saved checkpoint"):
                load_run(r)
    if others:
        st.caption(f"{others} other run folder(s) on this server belong to other sessions "
                   "(the instructor's Class page lists them all).")


def load_run(row: dict):
    from energylab.store.runfolder import RunFolder
    folder = RunFolder(row["path"])
    try:
        record = folder.read_record()
        options = record.checked_dataset_options()            # paths stay inside the data directory
        run = manager().start(record.variant, record.dataset.name, model=record.model, dataset_options=options,
                              resume_from=folder.checkpoint, start_paused=True, owner=session_token(),
                              owner_label=owner_label())
        attach(run.id)
        st.rerun()
    except (RunLimitReached, ValueError) as exc:
        st.error(str(exc))


# -- the live view ---------------------------------------------------------------------------------
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
    records = s.get("history", {}).get("records") or []
    stack = el.progress.stack_progress(run.config.get("model", {}), run.config.get("training", {}),
                                       records[-1] if records else None)
    if stack is not None:
        text += f" · **{stack.label}**"
    st.markdown(text)
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


def weights_view(run):
    snap = run.snapshot()
    if not snap:
        return
    if snap.get("pictures_note"):
        st.caption(snap["pictures_note"])
    if snap.get("points"):
        import plotly.graph_objects as go
        data, samples = snap["points"]["data"], snap["points"]["samples"]
        fig = go.Figure([go.Scatter(x=[p[0] for p in data], y=[p[1] for p in data], mode="markers",
                                    name="data", marker=dict(size=3, color="grey")),
                         go.Scatter(x=[p[0] for p in samples], y=[p[1] for p in samples], mode="markers",
                                    name="model samples", marker=dict(size=6, color="crimson"))])
        fig.update_layout(template="plotly_white", height=380, margin=dict(t=10, b=10, l=10, r=10),
                          legend=dict(orientation="h", y=-0.1))
        st.markdown("**Data and model samples** — learning moves the red samples onto the grey data")
        st.plotly_chart(fig, key="points")
    if snap.get("weights_png"):
        st.markdown("**Weights** — one tile per hidden unit; white excites, black inhibits")
        picture(snap["weights_png"])


def pictures_view(run):
    """Reconstructions, samples, deeper layers and the exact distribution, under the main row."""
    snap = run.snapshot()
    if not snap:
        return
    if snap.get("weights_png"):
        c2, c3, c4 = st.columns(3)
        with c2:
            st.markdown("**Reconstructions** — top: inputs, bottom: the model's reconstructions")
            picture(snap["recon_png"])
        with c3:
            st.markdown("**Samples** from the model")
            picture(snap["samples_png"], snap.get("samples_how", ""))
        deeper = snap.get("deeper_weights") or []
        with c4:
            for caption, png in deeper:
                picture(png, caption)
    distribution(snap)


def step_detail(snap):
    d = snap.get("step_detail")
    if not d or snap["status"] != "paused":
        return
    st.markdown(f"**One CD update, step {d['step']}** — positive phase (data) against negative phase "
                f"(model particles); the update moves W by their difference, ‖ΔW‖ = {d['dW_norm']:.3g}")
    which = f" ({d['dW_caption']})" if d.get("dW_caption", "layer 1") != "layer 1" else ""
    cols = st.columns(3)
    for col, (key, caption) in zip(cols, [("positive_png", "positive: the mini-batch"),
                                          ("negative_png", "negative: the chains' particles"),
                                          ("dW_png", f"ΔW as a mosaic{which}")]):
        if d.get(key):
            with col:
                picture(d[key], caption)


def distribution(snap):
    dist = snap.get("distribution")
    if not dist:
        return
    import torch
    n = dist["n_visible"]
    configs = ((torch.arange(2 ** n)[:, None] >> torch.arange(n - 1, -1, -1)) & 1)
    st.markdown("**Exact distribution over all visible configurations** — bars: the model's p(v) "
                "(computed by enumeration), diamonds: the data. Learning moves probability onto the diamonds.")
    st.plotly_chart(el.viz.distribution_figure(dist["model"], dist["data"], configs), key="dist")


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


def charts(run):
    """The curves: Plotly redraws cost the browser most, so every 3 s."""
    snap = run.snapshot()
    if not snap:
        return
    if snap.get("pl_method"):
        st.caption(f"log pseudo-likelihood: {snap['pl_method']}")
    names = [n for n in snap["history"].get("names", []) if n not in HIDDEN_SERIES]
    shown = st.session_state.get("curves_shown") or [n for n in names if n not in OPTIONAL_CURVES]
    fig = el.viz.curves_figure(snap["history"], names=[n for n in shown if n in names] or None)
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.12), margin=dict(b=90, t=30), height=420)
    st.plotly_chart(fig, key="curves")


def curve_chooser(run):
    snap = run.snapshot()
    if snap is None:
        return
    names = [n for n in snap["history"].get("names", []) if n not in HIDDEN_SERIES]
    if names:
        st.multiselect("curves", names, default=[n for n in names if n not in OPTIONAL_CURVES],
                       format_func=el.viz.label, key="curves_shown",
                       help="Weight statistics and energy distance are recorded too; add them here.")


session_token()
run = attached_run()
if run is not None and run.active and run.can_control(control_token()):
    with st.sidebar:                          # the owner's sliders first, where the eye is
        st.fragment(live_controls)(run)
        st.divider()
sidebar(run)
if run is None:
    intro()
else:
    # Redraw while the run trains or waits; an ended run is drawn once (no timer, no cost).
    ticking = run.active or run.waiting or run.snapshot() is None
    waiting_for_first = run.snapshot() is None          # the first snapshot carries the first pictures
    st.session_state["fast_tick"] = waiting_for_first
    # quick redraws until the first picture arrives (it is what a student waits for), then every second
    every = lambda s: (0.25 if waiting_for_first else s) if ticking else None
    st.fragment(header_view, run_every=every(1.0))(run)
    left, right = st.columns([1, 2])
    with left:
        st.fragment(weights_view, run_every=every(1.0))(run)
    with right:
        st.fragment(charts, run_every=every(3.0))(run)
    st.fragment(pictures_view, run_every=every(1.0))(run)
    with st.expander("Curves to draw"):
        curve_chooser(run)
