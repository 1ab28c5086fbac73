"""Train page: pick a variant and a dataset, press Train, watch it learn, retune it while it runs.

This file is the page: the sidebar (what to train), the start screen (your runs) and the layout of a
run's view. The header with the controls is train_live.py; what a run shows (curves, pictures, a
classifier's confusion matrix and p(y|x), a stack's layers) is train_views.py. A classifier's page
leads with its accuracy, confusion matrix and p(y|x); its generative pictures follow below.
"""
from __future__ import annotations

import streamlit as st

import energylab as el
from common import (
    attach,
    attached_run,
    control_token,
    dataset_label,
    datasets_for,
    manager,
    owner_label,
    param_widget,
    session_token,
)
from energylab.server.manager import RunLimitReached
from energylab.server.spec import DATASET_OPTIONS, page_defaults, run_settings
from train_live import ICONS, header_view, live_controls
from train_views import charts, classification_view, is_classifier_view, pictures_view, weights_view

# Pictures are inline data URIs (train_views.picture), scaled without smoothing.
st.markdown("""<style>
img.el-picture {width: 100%; image-rendering: pixelated; border-radius: 2px;}
div[data-stale="true"] {opacity: 1 !important; transition: none !important;}
.block-container {padding-top: 2.2rem;}
</style>""", unsafe_allow_html=True)


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
            options["size"] = st.slider("image size", 2, 4, DATASET_OPTIONS[dataset]["size"], key="cfg.bas.size",
                                        help="n x n pixels; 3x3 is small enough for the exact distribution panel")
        kind = el.datasets.DATASETS[dataset].kind
        fit = variant.defaults_for_kind(kind)        # e.g. a DBN's first layer for real-valued data
        defaults = page_defaults(variant, dataset)   # what the Train click of an untouched page starts
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
        model, training = run_settings(variant, dataset, chosen)     # hidden ones at their page defaults
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
    classifier = is_classifier_view(run.snapshot())
    st.session_state["classifier_layout"] = classifier
    st.fragment(header_view, run_every=every(1.0))(run)
    if classifier:
        # a classifier's main metric first: accuracy, the confusion matrix and p(y|x) on the first screen
        curves, classes = st.columns([1, 2])
        with curves:
            st.fragment(charts, run_every=every(3.0))(run)
        with classes:
            st.fragment(classification_view, run_every=every(2.0))(run)
        st.fragment(pictures_view, run_every=every(1.0))(run, with_weights=True)
    else:
        left, right = st.columns([1, 2])
        with left:
            st.fragment(weights_view, run_every=every(1.0))(run)
        with right:
            st.fragment(charts, run_every=every(3.0))(run)
        st.fragment(pictures_view, run_every=every(1.0))(run)
