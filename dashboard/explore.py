"""Explore page: a trained model up close — Gibbs chains step by step, inpainting, hidden units,
and for 2-D data the free-energy landscape. Models come from saved checkpoints (Save checkpoint
on the Train page, or `energylab train`). The data come from the run's record: a dataset path
(`root`, `path`) outside the data directory is refused before anything is read, created or
downloaded (`RunConfig.checked_dataset_options`), and the page says so instead of failing."""
import plotly.graph_objects as go
import streamlit as st
import torch

import energylab as el
from common import manager
from energylab.runfolder import RunFolder


@st.cache_resource(max_entries=4)
def load(path: str, mtime: float):
    folder = RunFolder(path)
    return folder.load_model(), folder.load_dataset()        # a dashboard or command-line run;
                                                             # paths confined to the data directory


def grid(x, shape, nrow=8):
    return el.viz.to_png(el.viz.tile_images(x.clamp(0, 1), shape, nrow=nrow, normalize=None), scale=8)


st.title("Explore a trained model")
runs = [r for r in manager().list_runs() if r["checkpoint"]]
unreadable = [f for f in RunFolder.list_runs(manager().root) if not f.readable]
if unreadable:
    with st.expander(f"{len(unreadable)} run folder(s) cannot be read"):
        for f in unreadable:
            st.caption(f"`{f.name}`: unreadable: {f.error}")
if not runs:
    st.info("No saved model yet. On the **Train** page start a run and press **Save checkpoint**; "
            "the model then appears here.")
    st.stop()
run_id = st.selectbox("model (runs with a checkpoint)", [r["id"] for r in runs], key="explore.run")
path = next(r["path"] for r in runs if r["id"] == run_id)
try:
    model, data = load(path, RunFolder(path).checkpoint.stat().st_mtime)
except (OSError, ValueError, RuntimeError) as exc:     # ConfigError, CheckpointError, DatasetUnavailable...
    st.error(f"`{run_id}` cannot be explored: {exc}")
    st.stop()
shape = data.image_shape
g = torch.Generator().manual_seed(st.session_state.get("explore.seed", 0))
st.caption(f"{model.config['variant']} with {model.n_visible} visible and {model.n_hidden} hidden units, "
           f"trained on {data.name}")

if shape is not None:
    st.subheader("Gibbs chain, step by step")
    key = f"explore.chain.{run_id}"
    c1, c2, c3 = st.columns(3)
    if c1.button("restart from noise", key="chain.reset") or key not in st.session_state:
        st.session_state[key] = (model.sample(16, k=1, generator=g), 0)
    steps = 1 if c2.button("1 Gibbs step", key="chain.step") else 20 if c3.button("20 steps", key="chain.20") else 0
    v, t = st.session_state[key]
    if steps:
        v, t = model.gibbs(v, steps, generator=g), t + steps
        st.session_state[key] = (v, t)
    st.image(grid(v, shape), caption=f"16 chains after {t} Gibbs steps", output_format="PNG")

    st.subheader("Inpainting: clamp the top half, let the model fill in the rest")
    i = st.slider("test image", 0, len(data.test) - 1, 0, key="inpaint.index")
    x = data.test[i:i + 1].repeat(8, 1)
    known = torch.zeros(shape[-2:], dtype=torch.bool)
    known[: shape[-2] // 2] = True
    known = known.flatten()
    v = torch.where(known, x, torch.rand(x.shape, generator=g))
    for _ in range(st.slider("Gibbs steps", 1, 200, 50, key="inpaint.steps")):
        v = torch.where(known, x, model.gibbs(v, 1, generator=g))
    st.image(grid(torch.cat([x[:1], torch.where(known, x[:1], 0.5), v]), shape, nrow=10), output_format="PNG",
             caption="original · what the model sees · 8 completions")

    st.subheader("Hidden units for this input")
    p_h = model.p_h(data.test[i:i + 1].to(model.a.dtype))[0]
    st.plotly_chart(go.Figure(go.Bar(y=p_h.tolist())).update_layout(
        template="plotly_white", height=250, xaxis_title="hidden unit", yaxis_title="p(h=1 | v)",
        margin=dict(t=20)), key="explore.hidden")
elif model.n_visible == 2:
    st.subheader("Free-energy landscape")
    st.caption("Colour: the free energy F(v) at every point of the plane (dark = low F = probable). "
               "White: training data; red: samples from the model after 200 Gibbs steps.")
    samples = model.sample(300, k=200, generator=g)
    both = torch.cat([data.train[:500], samples.to(data.train.dtype)])
    lo, hi = both.min(0).values - 0.3, both.max(0).values + 0.3     # samples stay on the map
    xs, ys = torch.linspace(lo[0], hi[0], 120), torch.linspace(lo[1], hi[1], 120)
    pts = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).reshape(-1, 2)
    with torch.no_grad():
        f = model.free_energy(pts).reshape(120, 120)
    fig = go.Figure(go.Heatmap(x=xs.tolist(), y=ys.tolist(), z=f.tolist(), colorscale="Viridis",
                               colorbar=dict(title="F(v)"), name="F(v)"))
    fig.add_trace(go.Scatter(x=data.train[:500, 0].tolist(), y=data.train[:500, 1].tolist(), mode="markers",
                             name="data", marker=dict(size=3, color="white")))
    fig.add_trace(go.Scatter(x=samples[:, 0].tolist(), y=samples[:, 1].tolist(), mode="markers",
                             name="samples", marker=dict(size=4, color="crimson")))
    fig.update_layout(height=550, template="plotly_white", margin=dict(t=30), xaxis_title="v₁",
                      yaxis_title="v₂", legend=dict(orientation="h", yanchor="bottom", y=1.01, x=0))
    st.plotly_chart(fig, key="explore.landscape")
else:
    st.info("This model's data are neither images nor 2-D points; nothing to draw here.")
