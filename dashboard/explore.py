"""Explore page: a trained model up close — for a classifier its accuracy, confusion matrix and p(y|x);
Gibbs chains step by step, inpainting and hidden units for images; the free-energy landscape for 2-D
data. Models come from saved checkpoints (Save checkpoint on the Train page, or `energylab train`).
The data come from the run's record: a dataset path (`root`, `path`) outside the data directory is
refused before anything is read, created or downloaded (`RunConfig.checked_dataset_options`), and
the page says so instead of failing. Everything computed here is the engine's (`energylab.measures.explore`);
the page draws."""
import plotly.graph_objects as go
import streamlit as st
import torch

import energylab as el
from common import manager, unreadable_folders
from energylab.store.runfolder import RunFolder


@st.cache_resource(max_entries=4)
def load(path: str, mtime: float):
    folder = RunFolder(path)
    return folder.load_model(), folder.load_dataset()        # a dashboard or command-line run;
                                                             # paths confined to the data directory


def dtype(model):
    return next(model.parameters()).dtype


def grid(x, shape, nrow=8, scale=8):
    return el.viz.to_png(el.viz.tile_images(x.clamp(0, 1), shape, nrow=nrow, normalize=None), scale=scale)


def classification(model, data, run_id):
    """Accuracy, the confusion matrix on the test set, and p(y|x) for one chosen test image."""
    labels = getattr(data, "test_labels", None)
    if labels is None or not len(data.test):
        st.info("This dataset has no test labels: nothing to classify.")
        return
    st.subheader("Classification on the test set")
    counts = el.explore.confusion_matrix(model, data.test, labels)
    accuracy = float(counts.diagonal().sum() / counts.sum())
    c1, c2 = st.columns([3, 2])
    with c1:
        st.metric("test accuracy", f"{accuracy:.1%}", help=el.curves.curve("accuracy").help)
        st.plotly_chart(el.viz.confusion_figure(counts), key="explore.confusion")
        st.caption("Each row is a true class; the diagonal counts what the model gets right, "
                   "off-diagonal cells the classes it confuses.")
    with c2:
        i = st.slider("test image", 0, len(data.test) - 1, 0, key=f"explore.class_index.{run_id}")
        x = data.test[i:i + 1]
        if data.image_shape is not None:
            st.image(grid(x, data.image_shape, nrow=1, scale=16), output_format="PNG",
                     caption=f"test image {i}, true class {int(labels[i])}")
        probs = el.explore.class_probabilities(model, x.to(dtype(model)))[0]
        st.plotly_chart(el.viz.class_probability_figure(probs, int(labels[i])), key="explore.p_y")
        st.caption(f"p(y | x): the model's belief in each class (red: the true class). "
                   f"Predicted: **{int(probs.argmax())}**.")


def chain(model, shape, run_id, g):
    st.subheader("Gibbs chain, step by step")
    key = f"explore.chain.{run_id}"
    c1, c2, c3 = st.columns(3)
    # Every button is drawn at every run (no `or` between them: a short circuit would hide the second).
    restart = c1.button("restart from noise", key="chain.reset")
    one = c2.button("1 Gibbs step", key="chain.step")
    twenty = c3.button("20 steps", key="chain.20")
    if restart or key not in st.session_state:
        st.session_state[key] = (model.sample(16, k=1, generator=g), 0)
    v, t = st.session_state[key]
    steps = 1 if one else 20 if twenty else 0
    if steps:
        v, t = model.gibbs(v, steps, generator=g), t + steps
        st.session_state[key] = (v, t)
    st.image(grid(v, shape), caption=f"16 chains after {t} Gibbs steps", output_format="PNG")


def inpainting(model, data, shape, g):
    st.subheader("Inpainting: clamp half the image, let the model fill in the rest")
    c1, c2, c3 = st.columns(3)
    i = c1.slider("test image", 0, len(data.test) - 1, 0, key="inpaint.index")
    keep = c2.selectbox("known half", ["top", "bottom", "left", "right"], key="inpaint.keep")
    steps = c3.slider("Gibbs steps", 1, 200, 50, key="inpaint.steps")
    x = data.test[i:i + 1].to(dtype(model))
    known = el.explore.half_mask(shape, keep)
    completions = el.explore.inpaint(model, x.repeat(8, 1), known, steps=steps, generator=g)
    st.image(grid(torch.cat([x, torch.where(known, x, 0.5), completions]), shape, nrow=10), output_format="PNG",
             caption="original · what the model sees (grey: unknown) · 8 completions")
    return x


def hidden_units(model, x, run_id):
    st.subheader("Hidden units for this input")
    maps = el.explore.hidden_maps(model, x)
    if maps is not None:         # a convolutional model: one feature map per filter, as pictures
        st.image(el.viz.to_png(el.viz.tile_images(maps, nrow=min(8, maps.shape[0]), normalize=None,
                                                  pad_value=0.5), scale=12),
                 output_format="PNG", caption=f"{maps.shape[0]} feature maps, p(h = 1 | v) "
                 "(white: the filter's pattern is present at that place)")
        return
    p_h = model.p_h(x)[0].flatten()
    st.plotly_chart(go.Figure(go.Bar(y=p_h.tolist())).update_layout(
        template="plotly_white", height=250, xaxis_title="hidden unit", yaxis_title="p(h=1 | v)",
        margin=dict(t=20)), key=f"explore.hidden.{run_id}")


def landscape(model, data, g):
    st.subheader("Free-energy landscape")
    st.caption("Colour: the free energy F(v) at every point of the plane (dark = low F = probable). "
               "White: training data; red: samples from the model after 200 Gibbs steps.")
    samples = model.sample(300, k=200, generator=g)
    both = torch.cat([data.train[:500], samples.to(data.train.dtype)])
    lo, hi = both.min(0).values - 0.3, both.max(0).values + 0.3     # samples stay on the map
    xs, ys = torch.linspace(lo[0], hi[0], 120), torch.linspace(lo[1], hi[1], 120)
    pts = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).reshape(-1, 2)
    with torch.no_grad():
        f = model.free_energy(pts.to(dtype(model))).reshape(120, 120)
    fig = go.Figure(go.Heatmap(x=xs.tolist(), y=ys.tolist(), z=f.tolist(), colorscale="Viridis",
                               colorbar=dict(title="F(v)"), name="F(v)"))
    fig.add_trace(go.Scatter(x=data.train[:500, 0].tolist(), y=data.train[:500, 1].tolist(), mode="markers",
                             name="data", marker=dict(size=3, color="white")))
    fig.add_trace(go.Scatter(x=samples[:, 0].tolist(), y=samples[:, 1].tolist(), mode="markers",
                             name="samples", marker=dict(size=4, color="crimson")))
    fig.update_layout(height=550, template="plotly_white", margin=dict(t=30), xaxis_title="v₁",
                      yaxis_title="v₂", legend=dict(orientation="h", yanchor="bottom", y=1.01, x=0))
    st.plotly_chart(fig, key="explore.landscape")


st.title("Explore a trained model")
runs = [r for r in manager().list_runs() if r["checkpoint"]]
unreadable_folders()
if not runs:
    st.info("No saved model yet. On the **Train** page start a run and press **Save checkpoint**; "
            "the model then appears here.")
    st.stop()
run_id = st.selectbox("model (runs with a checkpoint)", [r["id"] for r in runs], key="explore.run",
                      format_func=lambda i: next(f"{i} — {r['variant']} on {r['dataset']}" for r in runs
                                                 if r["id"] == i))
path = next(r["path"] for r in runs if r["id"] == run_id)
try:
    model, data = load(path, RunFolder(path).checkpoint.stat().st_mtime)
except (OSError, ValueError, RuntimeError) as exc:     # ConfigError, CheckpointError, DatasetUnavailable...
    st.error(f"`{run_id}` cannot be explored: {exc}")
    st.stop()
shape = data.image_shape
g = torch.Generator().manual_seed(st.session_state.get("explore.seed", 0))
variant = el.VARIANTS.get(model.config["variant"])
st.caption(f"{model.config['variant']} with {model.n_visible} visible and {model.n_hidden} hidden units, "
           f"trained on {data.name}." + (f" **What to watch:** {variant.what_to_watch}" if variant else ""))

if el.explore.is_classifier(model):
    classification(model, data, run_id)
if shape is not None:
    chain(model, shape, run_id, g)
    x = inpainting(model, data, shape, g)
    hidden_units(model, x, run_id)
elif model.n_visible == 2:
    landscape(model, data, g)
else:
    st.info("This model's data are neither images nor 2-D points; nothing to draw here.")
