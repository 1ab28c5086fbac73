"""The exact-distribution panel: a tiny model's p(v) against the data's, on the configurations
that carry the probability, each drawn as a small picture (viz.distribution_figure)."""
from __future__ import annotations

import math

import plotly.graph_objects as go
import torch

from . import tile_images, to_png


def binary_configs(n: int) -> torch.Tensor:
    """All 2^n binary rows in binary order, most significant bit first (metrics.exact_distribution's)."""
    return (torch.arange(2 ** n)[:, None] >> torch.arange(n - 1, -1, -1)) & 1


def _config_picture(row: torch.Tensor, image_shape) -> str:
    """A data-URI PNG of one binary configuration: black = 0, white = 1, a grey frame."""
    import base64
    img = tile_images(row.to(torch.float32)[None], image_shape, normalize=None, padding=1, pad_value=0.5)
    scale = max(1, 48 // max(img.shape[-2:]))
    return "data:image/png;base64," + base64.b64encode(to_png(img, scale=scale)).decode()


def distribution_figure(probs_model, probs_data, configs=None, title: str | None = None,
                        log_y: bool = False, image_shape=None, top: int = 16) -> go.Figure:
    """The exact model distribution against the data's, on the configurations that matter:
    the `top` configurations by max(data, model) probability, each drawn as a small picture
    under its pair of bars (model p(v), data p(v)).

    Watching the model's bars grow to the data's is the picture of learning in a tiny RBM;
    a tall model bar with no data bar is probability spent on a pattern the data never show.
    ``configs`` (2^n, n) are the configurations in the order of the probabilities (default:
    binary order, `binary_configs`); ``image_shape`` the picture's (H, W) (default: square if
    n is, else one row). The title reports KL(data ‖ model) over all configurations, and how
    much of the model's probability lies outside the ones drawn.
    """
    pm = torch.as_tensor(probs_model).detach().to("cpu", torch.float64).flatten()
    pd = torch.as_tensor(probs_data).detach().to("cpu", torch.float64).flatten()
    if pm.shape != pd.shape:
        raise ValueError(f"{pm.numel()} model probabilities but {pd.numel()} data probabilities")
    n_configs = pm.numel()
    if configs is None:
        n = n_configs.bit_length() - 1
        if 2 ** n != n_configs:
            raise ValueError(f"{n_configs} probabilities are not 2^n configurations: pass configs")
        configs = binary_configs(n)
    rows = torch.as_tensor(configs).reshape(n_configs, -1).to(torch.int64)
    n = rows.shape[1]
    if image_shape is None:
        side = math.isqrt(n)
        image_shape = (side, side) if side * side == n else (1, n)

    support = pd > 0
    with torch.no_grad():
        ratio = pd[support] / pm[support]
        kl = float((pd[support] * ratio.log()).sum()) if bool((pm[support] > 0).all()) else math.inf
    order = torch.argsort(torch.maximum(pm, pd), descending=True, stable=True)[:top].tolist()
    bits = ["".join(str(b) for b in rows[i].tolist()) for i in order]
    x = list(range(len(order)))
    fig = go.Figure()
    fig.add_trace(go.Bar(x=x, y=[float(pm[i]) for i in order], name="model p(v)", customdata=bits,
                         marker_color="steelblue",
                         hovertemplate="v=%{customdata}<br>model %{y:.4f}<extra></extra>"))
    fig.add_trace(go.Bar(x=x, y=[float(pd[i]) for i in order], name="data p(v)", customdata=bits,
                         marker_color="crimson",
                         hovertemplate="v=%{customdata}<br>data %{y:.4f}<extra></extra>"))
    for xi, i in zip(x, order):
        fig.add_layout_image(source=_config_picture(rows[i], image_shape), xref="x", yref="paper", x=xi,
                             y=-0.03, sizex=0.8, sizey=0.2, xanchor="center", yanchor="top", layer="above")
    outside = float(1 - pm[order].sum())
    heading = (f"KL(data ‖ model) = {kl:.3f} nats · the {len(order)} most probable of {n_configs} "
               f"configurations; the model gives the other {n_configs - len(order)} p = {outside:.3f}")
    fig.update_layout(title=dict(text=f"{title} — {heading}" if title else heading, font=dict(size=13)),
                      template="plotly_white", barmode="group", bargap=0.25,
                      yaxis_title="probability", yaxis_type="log" if log_y else "linear",
                      xaxis=dict(showticklabels=False, range=[-0.6, len(order) - 0.4]),
                      margin=dict(l=60, r=20, t=60, b=90), height=380,
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, x=1, xanchor="right"))
    return fig
