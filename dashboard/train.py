"""Train page: pick a variant and a dataset, press Train, watch it learn, retune it while it runs."""
from __future__ import annotations

import time

import streamlit as st

import energylab as el
from common import (DASHBOARD_DEFAULTS, attach, attached_run, dataset_label, datasets_for, fmt, manager,
                    param_widget)
from energylab.history import History
from energylab.runmanager import RunLimitReached

# Recorded at every evaluation but not drawn unless asked for (they would crowd the page).
OPTIONAL_CURVES = ("weight_participation", "weight_square", "energy_distance")

# Material icons ship with Streamlit (emoji need a font the browser may not have).
ICONS = {"starting": ":grey[:material/hourglass_empty:]", "running": ":green[:material/play_circle:]",
         "paused": ":orange[:material/pause_circle:]", "stopped": ":grey[:material/stop_circle:]",
         "finished": ":green[:material/check_circle:]", "failed": ":red[:material/error:]"}


# -- sidebar: what to train -------------------------------------------------------------------
def sidebar():
    with st.sidebar:
        st.header("1 · Choose")
        name = st.selectbox("variant", list(el.VARIANTS), key="cfg.variant",
                            help="the model family; each is one entry of the engine's registry")
        variant = el.VARIANTS[name]
        st.caption(f"{variant.summary}. {variant.visible} visible, {variant.hidden} hidden; "
                   f"{variant.method}. _{variant.reference}_")
        names = datasets_for(variant)
        dataset = st.selectbox("dataset", names, key=f"cfg.{name}.dataset", format_func=dataset_label,
                               help="digits and bars-and-stripes are bundled and work offline")
        options = {}
        if dataset == "bars-and-stripes":
            options["size"] = st.slider("image size", 2, 4, 3, key="cfg.bas.size",
                                        help="n x n pixels; 3x3 is small enough for the exact distribution panel")
        kind = el.datasets.DATASETS[dataset].kind
        fit = variant.defaults_for_kind(kind)        # e.g. a DBN's first layer for real-valued data
        with st.expander("2 · Architecture", expanded=False):
            model = {p.name: param_widget(p, f"cfg.{name}.model.{p.name}" + (f".{kind}" if p.name in fit else ""),
                                          fit.get(p.name)) for p in variant.params}
        with st.expander("3 · Training method and hyperparameters", expanded=False):
            st.caption("⚡ marks values you can change while the run trains.")
            training = {p.name: param_widget(p, f"cfg.{name}.train.{p.name}", DASHBOARD_DEFAULTS.get(p.name))
                        for p in variant.training}
        st.header("4 · Train")
        if st.button("Train", icon=":material/play_arrow:", type="primary", key="train", use_container_width=True,
                     help="start a new run with these settings (it keeps running if you close the tab)"):
            try:
                run = manager().start(name, dataset, model=model, training=training, dataset_options=options)
                attach(run.id)
            except (RunLimitReached, ValueError) as exc:
                st.error(str(exc))


def intro():
    st.title("energylab · train an energy-based model")
    st.markdown(
        "**What to do:** in the sidebar on the left, **1** choose a variant (start with `RBM`) and a dataset "
        "(`digits` is bundled), **2–3** adjust the architecture and the hyperparameters if you like "
        "(hover a control's :material/help: for what it does), then **4** press **▶ Train**.\n\n"
        "While it trains you will see the weights as images, the training curves, reconstructions and "
        "samples, refreshing every second. Sliders marked ⚡ change the *running* training. "
        "Choose `bars-and-stripes` to watch the model's exact probability of every 3x3 image.")
    runs = manager().list_runs()
    if runs:
        st.subheader("Earlier and running runs")
        for r in runs[:10]:
            cols = st.columns([5, 2, 1])
            cols[0].write(f"{ICONS.get(r['status'], '·')} `{r['id']}` — {r['status']}, step {r['step']}")
            if r["live"] and cols[2].button("watch", key=f"watch.{r['id']}"):
                attach(r["id"])
                st.rerun()
            elif r["checkpoint"] and cols[2].button("load", key=f"load.{r['id']}",
                                                   help="continue this run from its saved checkpoint"):
                load_run(r)


def load_run(row: dict):
    from energylab.runfolder import RunFolder
    folder = RunFolder(row["path"])
    config = folder.read_config()
    dataset, options = folder.dataset_spec(config)    # a dashboard or command-line run
    try:
        run = manager().start(config["variant"], dataset, model=config.get("model"), dataset_options=options,
                              resume_from=folder.checkpoint, start_paused=True)
        attach(run.id)
        st.rerun()
    except (RunLimitReached, ValueError) as exc:
        st.error(str(exc))


# -- the live view ---------------------------------------------------------------------------------
def send(run, name):
    """on_change of a live slider: the run applies the value at its next batch."""
    key = f"live.{run.id}.{name}"
    try:
        run.set(name, st.session_state[key])
    except (ValueError, RuntimeError) as exc:
        st.session_state["notice"] = str(exc)


def live_controls(run, snap):
    """Sliders for the live hyperparameters; they follow the run (another tab may move them)."""
    live = [p for p in run.variant.training if p.live]
    st.markdown("**Retune while it runs** — the run picks a new value at its next mini-batch")
    per_row = 5                                # wider rows squeeze the labels
    cols = [c for i in range(0, len(live), per_row) for c in st.columns(per_row)]
    for col, p in zip(cols, live):
        key = f"live.{run.id}.{p.name}"
        in_use = snap["params"].get(p.name, p.default)
        seen = st.session_state.get(f"seen.{key}")
        if key in st.session_state and seen != in_use and st.session_state[key] == seen:
            st.session_state[key] = in_use           # the run changed (another tab): follow it
        st.session_state[f"seen.{key}"] = in_use
        with col:
            param_widget(p, key, in_use, on_change=send, args=(run, p.name), disabled=not run.active)
            st.caption(f"in use: **{fmt(in_use)}**")


def buttons(run, snap):
    status = snap["status"]
    cols = st.columns([1, 1.1, 1, 1, 1.7, 1, 1.3])
    act = lambda f: (lambda: _safe(f))
    cols[0].button("Pause", icon=":material/pause:", key="pause", on_click=act(run.pause),
                   disabled=status != "running", help="hold the run after the current mini-batch")
    cols[1].button("Resume", icon=":material/play_arrow:", key="resume", on_click=act(run.resume),
                   disabled=status != "paused")
    cols[2].button("Step", icon=":material/skip_next:", key="step", on_click=act(run.step),
                   disabled=status != "paused", help="while paused: one mini-batch, to watch a single CD update")
    cols[3].button("Stop", icon=":material/stop:", key="stop", on_click=act(run.stop), disabled=not run.active)
    cols[4].button("Save checkpoint", icon=":material/save:", key="save", on_click=act(run.save_checkpoint),
                   disabled=not run.active, help=f"write checkpoint.pt into {run.folder.path}")
    cols[5].button("Reset", icon=":material/restart_alt:", key="reset", on_click=lambda: (run.stop(), attach(None)),
                   help="stop this run and go back to the start screen (the run's files stay)")
    return cols[6]


def _safe(f):
    try:
        f()
    except RuntimeError as exc:
        st.session_state["notice"] = str(exc)


def status_line(run, snap):
    s = snap
    text = (f"{ICONS.get(s['status'], '')} **{s['status']}** · step {s['step']:,} · epoch {s.get('epoch', 0):.1f} "
            f"· {s.get('samples_per_s', 0):,.0f} samples/s · {s.get('device', '?')} "
            f"· {time.strftime('%M:%S', time.gmtime(s.get('elapsed', 0)))} elapsed · run `{run.id}`")
    st.markdown(text)
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
        st.caption(f"While it trains the history is thinned to {len(snap['history']['records'])} points; "
                   f"all files are in {run.folder.path}")


def pictures(snap):
    if snap.get("pictures_note"):
        st.caption(snap["pictures_note"])
    if snap.get("points"):
        import plotly.graph_objects as go
        data, samples = snap["points"]["data"], snap["points"]["samples"]
        fig = go.Figure([go.Scatter(x=[p[0] for p in data], y=[p[1] for p in data], mode="markers",
                                    name="data", marker=dict(size=3, color="grey")),
                         go.Scatter(x=[p[0] for p in samples], y=[p[1] for p in samples], mode="markers",
                                    name="model samples", marker=dict(size=6, color="crimson"))])
        fig.update_layout(template="plotly_white", height=380, margin=dict(t=20))
        st.plotly_chart(fig, key="points")
    if not snap.get("weights_png"):
        return
    c1, c2, c3 = st.columns(3)
    with c1:
        st.markdown("**Weights** (one tile per hidden unit; white excites, black inhibits)")
        st.image(snap["weights_png"], output_format="PNG")
    with c2:
        st.markdown("**Reconstructions** (top: inputs, bottom: reconstructions)")
        st.image(snap["recon_png"], output_format="PNG")
    with c3:
        st.markdown("**Samples** from the model")
        st.image(snap["samples_png"], output_format="PNG", caption=snap.get("samples_how"))
    deeper = snap.get("deeper_weights") or []
    for column, (caption, png) in zip(st.columns(max(3, len(deeper))) if deeper else [], deeper):
        with column:
            st.image(png, output_format="PNG", caption=caption)


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
            col.image(d[key], output_format="PNG", caption=caption)


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


def live_view(run):
    snap = run.snapshot()
    if snap is None:
        st.info(":material/hourglass_empty: Starting the training process (loading the engine and the data takes a few seconds)…")
        return
    status_line(run, snap)
    dl = buttons(run, snap)
    downloads(dl, run, snap)
    if run.active:
        live_controls(run, snap)
    step_detail(snap)
    pictures(snap)
    if not run.active and st.session_state.get("was_active"):
        st.session_state["was_active"] = False
        st.rerun(scope="app")                 # the run ended: redraw once without the timer
    st.session_state["was_active"] = run.active


def charts(run):
    """Curves and the exact distribution: Plotly redraws cost the browser most, so every 3 s."""
    snap = run.snapshot()
    if snap is None:
        return
    if snap.get("pl_method"):
        st.caption(f"log pseudo-likelihood: {snap['pl_method']}")
    names = [n for n in snap["history"].get("names", []) if n not in ("epoch", "time", "samples_per_s", "layer")]
    shown = st.multiselect("curves", names, default=[n for n in names if n not in OPTIONAL_CURVES],
                           format_func=el.viz.label, key="curves_shown",
                           help="Weight statistics and energy distance are recorded too; add them here.")
    fig = el.viz.curves_figure(snap["history"], names=shown or None)
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.07), margin=dict(b=110))
    st.plotly_chart(fig, key="curves")
    distribution(snap)


sidebar()
run = attached_run()
if run is None:
    intro()
else:
    st.title("energylab · live training")
    # Redraw every second while the run trains; an ended run is drawn once (no timer, no cost).
    ticking = run.active or run.snapshot() is None
    st.fragment(live_view, run_every=1.0 if ticking else None)(run)
    st.fragment(charts, run_every=3.0 if ticking else None)(run)
