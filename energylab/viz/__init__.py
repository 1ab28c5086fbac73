"""Pictures shared by the dashboard and the notebooks: image grids, weight
mosaics, PNG bytes, training curves and exact-distribution bar charts.

Everything returns plain tensors, bytes or Plotly figures, so the same call
renders in Streamlit, in Jupyter and in a headless test.
"""
from __future__ import annotations

import io
import math
import os

import plotly.graph_objects as go
import torch
from PIL import Image
from plotly.subplots import make_subplots

from ..curves import CURVES, NOT_CURVES, curve, label  # noqa: F401  (label: viz.label)
from ..training.checkpoint import atomic_write_bytes
from ..training.history import History, evenly_spaced

# Display names for metric keys (the full table, with units and help, is curves.CURVES).
METRIC_LABELS = {name: c.label for name, c in CURVES.items()}
# Short names for hyperparameters in change markers.
PARAM_LABELS = {"learning_rate": "lr", "lr": "lr", "momentum": "momentum",
                "weight_decay": "weight decay", "k": "CD-k", "batch_size": "batch"}
_NOT_CURVES = NOT_CURVES          # bookkeeping columns, not curves worth plotting by default


# ------------------------------------------------------------------ images
def _as_batch(x: torch.Tensor, image_shape) -> torch.Tensor:
    """(N, C, H, W) float on the CPU from flattened rows or image stacks."""
    x = torch.as_tensor(x).detach().to("cpu", torch.float32)
    if x.dim() == 1:
        x = x.unsqueeze(0)
    if x.dim() == 2:
        if image_shape is None:
            raise ValueError("flattened input needs image_shape")
        shape = tuple(int(s) for s in image_shape)
        if math.prod(shape) != x.shape[1]:
            raise ValueError(f"rows of length {x.shape[1]} do not reshape to {shape}")
        x = x.reshape(x.shape[0], *shape)
    if x.dim() == 3:  # (N, H, W): one channel
        x = x.unsqueeze(1)
    if x.dim() != 4 or x.shape[0] == 0:
        raise ValueError(f"cannot tile a tensor of shape {tuple(x.shape)}")
    return x


def _scale(x: torch.Tensor, normalize, symmetric: bool) -> torch.Tensor:
    """Map values into [0, 1], per tile ("each"), jointly ("all") or not (None)."""
    if normalize is None:
        return x.clamp(0, 1)
    if normalize not in ("each", "all"):
        raise ValueError('normalize must be "each", "all" or None')
    dims = (1, 2, 3) if normalize == "each" else (0, 1, 2, 3)
    if symmetric:
        # zero -> 0.5, the largest magnitude -> 0 or 1; an all-zero tile stays grey
        m = x.abs().amax(dim=dims, keepdim=True)
        return (0.5 + 0.5 * x / m.clamp_min(1e-12)).clamp(0, 1)
    lo = x.amin(dim=dims, keepdim=True)
    hi = x.amax(dim=dims, keepdim=True)
    span = hi - lo
    # A constant tile has no contrast to stretch: keep its own value (clamped),
    # so a blank black image stays black instead of turning an arbitrary grey.
    return torch.where(span > 0, (x - lo) / span.clamp_min(1e-12), x.clamp(0, 1))


def tile_images(x: torch.Tensor, image_shape=None, nrow: int | None = None,
                padding: int = 1, normalize: str | None = "each",
                pad_value: float = 1.0, symmetric: bool = False) -> torch.Tensor:
    """A grid of images: (H, W) for one channel, (3, H, W) for colour, in [0, 1].

    ``x`` is (N, D) rows reshaped by ``image_shape`` ((H, W) or (C, H, W)),
    or already (N, H, W) / (N, C, H, W). ``nrow`` is images per row (default:
    a near-square grid). With ``symmetric`` zero maps to mid-grey.
    """
    batch = _scale(_as_batch(x, image_shape), normalize, symmetric)
    if batch.shape[1] not in (1, 3):
        raise ValueError(f"images need 1 or 3 channels, got {batch.shape[1]}")
    n = batch.shape[0]
    nrow = nrow or math.ceil(math.sqrt(n))
    grid = _grid(batch, nrow, padding, pad_value)
    return grid[0] if batch.shape[1] == 1 else grid


def _grid(batch: torch.Tensor, nrow: int, padding: int, pad_value: float) -> torch.Tensor:
    """(C, H', W') canvas: the (N, C, h, w) tiles in rows of `nrow`, `padding` pixels of
    `pad_value` around every tile (torchvision's make_grid layout, without importing torchvision,
    whose import pulls in every model it ships and doubles `import energylab`)."""
    n, c, h, w = batch.shape
    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    step_h, step_w = h + padding, w + padding
    canvas = torch.full((c, rows * step_h + padding, cols * step_w + padding), float(pad_value))
    for i in range(n):
        r, q = divmod(i, cols)
        canvas[:, r * step_h + padding: r * step_h + padding + h,
               q * step_w + padding: q * step_w + padding + w] = batch[i]
    return canvas


def layer_weights(model) -> list:
    """[(caption, weights)] to draw for any model, every entry in pixel space.

    Layer 1: its dense W or its convolution filters. A deeper dense layer l of a
    stack (DBN, DBM) is drawn through the layers below, W_1 W_2 ... W_l: the
    linear projection of each deeper unit onto the pixels (Erhan et al. 2009's
    simplest view of what it responds to). Deeper convolutional layers show their
    filters as they are (one row of input channels per filter).
    """
    stack = getattr(model, "couplings", None) or getattr(model, "layers", None)
    Ws = [getattr(layer, "W", None) for layer in stack] if isinstance(stack, torch.nn.ModuleList) else [model.W]
    Ws = [W.detach() for W in Ws if isinstance(W, torch.Tensor) and W.dim() in (2, 4)]
    drawn, projection = [], None
    for depth, W in enumerate(Ws, start=1):
        if W.dim() == 4:
            drawn.append((f"layer {depth} filters", W))
            continue
        projection = W if projection is None else projection @ W
        if projection.shape[0] != Ws[0].shape[0]:
            break                                   # not a dense chain back to the pixels
        caption = "layer 1" if depth == 1 else f"layer {depth}, projected to the pixels (W1···W{depth})"
        drawn.append((caption, projection))
    return drawn


def weight_mosaic(W: torch.Tensor, image_shape=None, max_tiles: int = 100,
                  normalize: str | None = "each", nrow: int | None = None,
                  padding: int = 1, pad_value: float = 1.0) -> torch.Tensor:
    """Receptive fields as pictures, zero weight shown as mid-grey.

    Dense ``W`` (n_visible, n_hidden): column j, reshaped to ``image_shape``, is
    hidden unit j's tile. Conv filters (K, C, kh, kw): one tile per filter, or,
    when C is neither 1 nor 3, one row of C tiles per filter.

    The scaling is symmetric about zero on purpose: a weight's sign says whether
    a pixel excites or inhibits the unit and zero means "ignores it". Min-max
    scaling would give zero a different grey in every tile and make a weak,
    all-negative filter look like a strong positive one; symmetric scaling keeps
    white = excitatory, black = inhibitory, grey = indifferent in every tile.
    """
    W = torch.as_tensor(W).detach().to("cpu", torch.float32)
    if W.dim() == 2:
        tiles = W.t()[:max_tiles]
    elif W.dim() == 4:
        tiles = W[:max_tiles]
        if tiles.shape[1] not in (1, 3):
            c = tiles.shape[1]
            tiles = tiles.reshape(-1, 1, *tiles.shape[2:])[: max_tiles * c]
            nrow = nrow or c
        image_shape = None
    else:
        raise ValueError(f"expected a (n_visible, n_hidden) matrix or (K, C, kh, kw) filters, got {tuple(W.shape)}")
    return tile_images(tiles, image_shape, nrow=nrow, padding=padding,
                       normalize=normalize, pad_value=pad_value, symmetric=True)


def to_png(img: torch.Tensor, scale: int = 1, compress_level: int = 6) -> bytes:
    """PNG bytes of an (H, W) or (C, H, W) image in [0, 1].

    Upscaled with nearest neighbour so 8x8 tiles stay crisp blocks; PNG rather
    than JPEG because JPEG's compression smears exactly those hard pixel edges.
    ``compress_level`` (zlib, 0-9) trades size for speed: a live view that
    re-encodes every second uses 1 (same pixels, a few times faster).
    """
    img = torch.as_tensor(img).detach().to("cpu", torch.float32)
    if img.dim() == 3 and img.shape[0] == 1:
        img = img[0]
    if img.dim() == 3:
        if img.shape[0] != 3:
            raise ValueError("colour images must be (3, H, W)")
        img = img.permute(1, 2, 0)
    elif img.dim() != 2:
        raise ValueError(f"expected (H, W) or (3, H, W), got {tuple(img.shape)}")
    pixels = (img.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    picture = Image.fromarray(pixels)
    if scale != 1:
        picture = picture.resize((picture.width * scale, picture.height * scale),
                                 Image.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()


def save_png(img: torch.Tensor, path, scale: int = 1) -> str:
    """Write a PNG atomically: a reader (the dashboard) never sees half a file."""
    data = to_png(img, scale)
    atomic_write_bytes(path, lambda f: f.write(data))
    return os.fspath(path)


# ------------------------------------------------------------------ curves
def _family(key: str) -> str:
    """The panel a metric is drawn in, titled with its unit: curves share a y axis only when they
    measure the same thing on a comparable scale (a gap near 0 gets its own panel, or it and the
    free energies near -50 would both be flat lines)."""
    return curve(key).title


def _fmt(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def curves_figure(history, names: list[str] | None = None, title: str | None = None,
                  max_points: int = 1000) -> go.Figure:
    """Training curves against step: one row per metric family, one line per
    metric, and a dashed marker labelled e.g. "lr 0.1→0.05" at every
    hyperparameter change, so a kink in a curve can be matched to its cause.
    """
    if isinstance(history, dict):
        history = History.from_dict(history)
    if names is None:
        names = [n for n in history.names() if n not in _NOT_CURVES]
    series = {}
    for name in names:
        steps, values = history.series(name)
        if steps:
            keep = evenly_spaced(len(steps), max_points)  # a browser chokes on 10^5 points
            series[name] = ([steps[i] for i in keep], [values[i] for i in keep])

    families = list(dict.fromkeys(_family(n) for n in series)) or [""]
    rows = len(families)
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True,
                        vertical_spacing=min(0.08, 0.3 / rows), subplot_titles=families)
    for name, (steps, values) in series.items():
        fig.add_trace(go.Scatter(
            x=steps, y=values, name=label(name), customdata=[curve(name).help] * len(steps),
            hovertemplate="step %{x}<br>%{y:.4g}<br><i>%{customdata}</i><extra>" + label(name) + "</extra>",
            # a rarely logged metric is a handful of points: show them
            mode="lines+markers" if len(steps) <= 50 else "lines",
        ), row=families.index(_family(name)) + 1, col=1)

    for i, c in enumerate(history.changes):
        text = f"{PARAM_LABELS.get(c['name'], c['name'])} {_fmt(c['old'])}→{_fmt(c['new'])}"
        # xref "x" is the first row's axis; shared_xaxes keeps every row on
        # the same range, and yref "paper" runs the line through all of them.
        fig.add_shape(type="line", xref="x", yref="paper", x0=c["step"], x1=c["step"],
                      y0=0, y1=1, line=dict(dash="dash", width=1, color="grey"))
        fig.add_annotation(x=c["step"], xref="x", yref="paper", y=1 - 0.035 * (i % 3),
                           text=text, showarrow=False, xanchor="left", yanchor="top",
                           font=dict(size=10), bgcolor="rgba(255,255,255,0.7)")
    if not series:
        fig.add_annotation(text="no data yet", xref="paper", yref="paper",
                           x=0.5, y=0.5, showarrow=False)
    fig.update_xaxes(title_text="training step", row=rows, col=1)
    fig.update_layout(title=title, template="plotly_white", height=90 + 230 * rows,
                      margin=dict(l=60, r=20, t=60 if title else 30, b=40),
                      legend=dict(orientation="h", y=-0.08 if rows == 1 else -0.03))
    return fig


# ------------------------------------------------------------ classifiers
def confusion_figure(counts, title: str | None = None) -> go.Figure:
    """A confusion matrix as a heatmap: row = true class, column = predicted, each cell the count
    and its share of the row (the diagonal is what the classifier gets right)."""
    counts = torch.as_tensor(counts).to(torch.float64)
    share = counts / counts.sum(1, keepdim=True).clamp_min(1)
    classes = [str(c) for c in range(counts.shape[0])]
    fig = go.Figure(go.Heatmap(z=share.tolist(), x=classes, y=classes, colorscale="Blues", zmin=0, zmax=1,
                               text=[[f"{int(c)}" for c in row] for row in counts.tolist()],
                               texttemplate="%{text}", colorbar=dict(title="share of row"),
                               hovertemplate="true %{y}, predicted %{x}: %{text} (%{z:.0%})<extra></extra>"))
    accuracy = float(counts.diagonal().sum() / counts.sum().clamp_min(1))
    fig.update_layout(title=f"{title + ' — ' if title else ''}accuracy {accuracy:.1%}", template="plotly_white",
                      xaxis_title="predicted class", yaxis_title="true class", yaxis_autorange="reversed",
                      height=420, margin=dict(t=50, l=60, r=20, b=50))
    return fig


def class_probability_figure(probs, true_class: int | None = None) -> go.Figure:
    """p(y | x) for every class as bars, the true class in red."""
    p = torch.as_tensor(probs).detach().to("cpu", torch.float64).flatten().tolist()
    colors = ["crimson" if c == true_class else "steelblue" for c in range(len(p))]
    fig = go.Figure(go.Bar(x=[str(c) for c in range(len(p))], y=p, marker_color=colors,
                           hovertemplate="class %{x}: p = %{y:.3f}<extra></extra>"))
    fig.update_layout(template="plotly_white", xaxis_title="class y", yaxis_title="p(y | x)",
                      yaxis_range=[0, 1], height=260, margin=dict(t=20, l=60, r=20, b=40))
    return fig


# ------------------------------------------------------------ distributions
# The exact-distribution panel lives in its own file (one concept a file); imported last, as it
# draws its configurations with tile_images / to_png above.
from .distribution import binary_configs, distribution_figure  # noqa: E402,F401
