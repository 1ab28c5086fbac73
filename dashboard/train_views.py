"""What the Train page draws of a run: the curves (with their chooser), the weights, reconstructions,
samples, the exact distribution, one CD update close up, a stack's layer-by-layer progress, and a
classifier's confusion matrix and p(y|x).

Every number comes from the run's latest snapshot, computed in the training process by the engine
(energylab.server.worker_pictures / worker_classes); these functions only draw. Each is drawn inside
a fragment with a timer (train.py), so it must draw from the snapshot alone and keep stable keys.
"""
from __future__ import annotations

import base64
import hashlib

import streamlit as st

import energylab as el
from energylab.progress import StackProgress

# Recorded at every evaluation but not drawn unless asked for (they would crowd the page).
OPTIONAL_CURVES = ("weight_participation", "weight_square", "energy_distance")
HIDDEN_SERIES = ("epoch", "time", "samples_per_s", "layer")


def picture(png: bytes, caption: str = "", width: str = "100%"):
    # Inline (a data URI): a redraw every second never points the browser at a media file that the
    # next redraw has already replaced (broken-image icons); pixels stay crisp when scaled.
    data = base64.b64encode(png).decode()
    st.markdown(f'<img class="el-picture" style="width: {width}" src="data:image/png;base64,{data}" '
                f'alt="{caption}">', unsafe_allow_html=True)
    if caption:
        st.caption(caption)


def is_classifier_view(snap) -> bool:
    """Whether the page shows the classification layout: the run measures classes (a classification
    RBM, or a stack whose head trains)."""
    return bool(snap and snap.get("classification"))


def learns_p_x(run) -> bool:
    """Whether the model learns the data's distribution at all: a variant that ignores k (the purely
    discriminative RBM's exact gradient of log p(y | x)) has no samples or reconstructions worth seeing."""
    return "k" not in run.variant.unused


# -- a stack's layers -----------------------------------------------------------------------------
def stack_progress(snap) -> StackProgress | None:
    s = snap.get("stack") if snap else None
    if not s:
        return None
    return StackProgress(s["layer"], s["depth"], s["epoch"], s["epochs"], s["fine_tuning"],
                         s.get("pretraining", False), s.get("joint", False))


def stack_view(snap):
    """One progress bar per phase of a stack's greedy training: done, training now, or waiting."""
    s = snap.get("stack")
    progress = stack_progress(snap)
    if progress is None:
        return
    current = progress.depth if progress.fine_tuning or progress.joint else progress.layer - 1   # phase index
    cols = st.columns(len(s["phases"]))
    for i, (col, (name, epochs)) in enumerate(zip(cols, s["phases"])):
        if progress.layer == 0 or i < current:
            col.progress(1.0, text=f"{name} · trained ({epochs} epochs)")
        elif i == current:
            col.progress(progress.fraction, text=f"**{name} · training now** · {progress.fraction:.0%}")
        else:
            col.progress(0.0, text=f"{name} · trains after {s['phases'][i - 1][0]}")


# -- the curves ---------------------------------------------------------------------------------------
def series_names(snap) -> list[str]:
    return [n for n in snap["history"].get("names", []) if n not in HIDDEN_SERIES]


def default_curves(run, names, classifier: bool) -> list[str]:
    """What is drawn until the student chooses: in the classification view the accuracy panel (test
    and training accuracy: what a classifier is judged by, a stack's head too), otherwise every curve
    but the optional ones, the main metric's panel first."""
    panel = lambda metric: [n for n in names if el.curves.curve(n).title == el.curves.curve(metric).title]
    if classifier and panel("accuracy"):
        return panel("accuracy")
    first = panel(run.variant.main_metric) if run.variant.main_metric in el.curves.CURVES else []
    return first + [n for n in names if n not in first and n not in OPTIONAL_CURVES]


def curve_chooser(run, names, classifier: bool) -> list[str]:
    """The curves to draw. It is redrawn with the curves, so a series that appears later (a stack's
    fine-tuning accuracy, a curve logged after the first records) becomes an option at once; the
    student's own additions and removals are kept across those changes."""
    defaults = default_curves(run, names, classifier)
    base = f"curves.{run.id}"
    added = st.session_state.setdefault(f"{base}.added", [])
    removed = st.session_state.setdefault(f"{base}.removed", [])
    shown = [n for n in names if (n in defaults and n not in removed) or n in added]
    # a new set of options is a new widget (its default: the choice so far); same options, same widget
    key = f"{base}.{hashlib.sha1(','.join(names).encode()).hexdigest()[:10]}"

    def changed():
        chosen = st.session_state[key]
        st.session_state[f"{base}.added"] = sorted(set(added) - set(names) | set(chosen) - set(defaults))
        st.session_state[f"{base}.removed"] = sorted(set(removed) - set(names) | set(defaults) - set(chosen))

    return st.multiselect("curves to draw", names, default=shown, key=key, on_change=changed,
                          format_func=el.viz.label, placeholder="choose curves to draw",
                          help="Every curve the run records; weight statistics and energy distance are "
                               "recorded too. Hover a curve for what it measures and which way is good.")


def charts(run):
    """The curves and their chooser: Plotly redraws cost the browser most, so every 3 s."""
    snap = run.snapshot()
    if not snap:
        return
    classifier = is_classifier_view(snap)
    names = series_names(snap)
    if classifier:
        st.markdown("**Test accuracy** — the share of test images classified right; higher is better "
                    "(chance is 1 in the number of classes)")
    elif snap.get("pl_method"):
        st.caption(f"log pseudo-likelihood: {snap['pl_method']}")
    chart = st.container()                # the chart above its chooser, drawn once the choice is known
    if names:
        with st.popover("Curves to draw", icon=":material/tune:"):   # stays open across redraws
            chosen = curve_chooser(run, names, classifier)
    else:                                 # the chooser's place, so that nothing is left behind when it comes
        chosen = []
        st.caption("The curves appear after the first measurement (every few mini-batches).")
    fig = el.viz.curves_figure(snap["history"], names=[n for n in names if n in chosen])
    # the legend starts ~55 px under the plot: below the tick labels and the "training step" title
    height = 380 if classifier else 440
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-55 / (height - 150)),
                      margin=dict(b=120, t=30), height=height)
    if names and not chosen:
        fig.layout.annotations = ()           # not "no data yet": the data are there, none is chosen
        fig.add_annotation(text="no curve chosen: pick some in 'Curves to draw' below", xref="paper",
                           yref="paper", x=0.5, y=0.6, showarrow=False)
    chart.plotly_chart(fig, key="curves")


# -- a classifier -------------------------------------------------------------------------------------
def classification_view(run):
    """The confusion matrix on the test set and p(y|x) for one chosen test image, side by side."""
    snap = run.snapshot()
    c = snap.get("classification") if snap else None
    if not c:
        return
    import torch
    left, right = st.columns([1.15, 1])
    with left:
        st.markdown("**Confusion matrix** — row: the true class, column: the model's answer. "
                    "Good: the counts sit on the diagonal")
        fig = el.viz.confusion_figure(torch.tensor(c["counts"]))
        fig.update_layout(height=330, margin=dict(t=40, l=50, r=10, b=45), title_font_size=13)
        st.plotly_chart(fig, key="train.confusion")
        part = "" if c["n_test"] == c["n_total"] else f" (the first {c['n_test']:,} of {c['n_total']:,})"
        st.caption(f"{c['n_test']:,} test images{part}, measured at step {c['step']:,}; "
                   "an off-diagonal cell counts one class taken for another.")
    with right:
        examples = c["examples"]
        st.markdown("**p(y | x) for one test image** — how sure the model is of each class")
        i = st.selectbox("test image", range(len(examples)), key=f"train.class_example.{run.id}",
                         format_func=lambda j: f"test image {examples[j]['index']} · a {examples[j]['label']}",
                         help="two test images of every class; the bars follow the training")
        e = examples[min(i, len(examples) - 1)]
        image, bars = st.columns([1, 3], vertical_alignment="center")
        with image:
            if e.get("png"):
                picture(e["png"], f"a {e['label']}")
        with bars:
            fig = el.viz.class_probability_figure(e["p"], e["label"])
            fig.update_layout(height=200, margin=dict(t=10, l=45, r=5, b=35))
            st.plotly_chart(fig, key="train.p_y")
        predicted = max(range(len(e["p"])), key=lambda k: e["p"][k])
        verdict = "right" if predicted == e["label"] else "wrong"
        st.caption(f"Red: the true class. Good: the red bar is the tallest and near 1. "
                   f"The model answers **{predicted}** ({verdict}, p = {e['p'][predicted]:.2f}).")


# -- pictures -----------------------------------------------------------------------------------------
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
        which = " of layer 1" if snap.get("stack") else ""
        tile = "filter (shared by a whole map of hidden units)" if snap.get("weights_are_filters") else "hidden unit"
        st.markdown(f"**Weights{which}** — one tile per {tile}; white excites, black inhibits")
        picture(snap["weights_png"])


def pictures_view(run, with_weights: bool = False):
    """Reconstructions, samples, deeper layers and the exact distribution, under the main row (with
    the weights first, in the classification layout)."""
    snap = run.snapshot()
    if not snap:
        return
    if snap.get("weights_png"):
        panels = [lambda: weights_view(run)] if with_weights else []
        if learns_p_x(run):
            panels += [lambda: recon_panel(snap), lambda: samples_panel(snap)]
        else:
            panels.append(lambda: st.caption(
                "No reconstructions or samples: this model learns only p(y | x), which class an image shows, "
                "not what the images look like (the hybrid variant learns both)."))
        if snap.get("deeper_weights") or snap.get("waiting_layers"):
            panels.append(lambda: deeper_panel(snap))
        for col, panel in zip(st.columns(max(3, len(panels))), panels):
            with col:
                panel()
    distribution(snap)


def recon_panel(snap):
    how = snap.get("recon_how")
    st.markdown("**Reconstructions** — top: inputs, bottom: the model's reconstructions" + (f" {how}" if how else ""))
    picture(snap["recon_png"])


def samples_panel(snap):
    st.markdown("**Samples** from the model")
    picture(snap["samples_png"], snap.get("samples_how", ""))


def deeper_panel(snap):
    """The deeper layers of a stack that trained or train now; the others only named."""
    for caption, png in snap.get("deeper_weights") or []:
        picture(png, caption)
    for line in snap.get("waiting_layers") or []:
        st.caption(f":material/hourglass_empty: {line}: no picture until then")


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
