"""Pictures of a model for a run folder and the dashboard: weight mosaic, samples, reconstructions.

`RunFolder.save_trainer` writes them as PNGs next to the checkpoint; the dashboard's worker
draws the same pictures. Samples use their own seeded generator, so drawing never changes
a training run.
"""
from __future__ import annotations

import torch

from .. import viz


def display_scale(image_shape) -> int:
    """Upscale small images (8x8 digits) so a PNG is readable; 28x28 and larger stay 1:1."""
    return max(1, round(28 / max(image_shape[-2:])))


@torch.no_grad()
def model_pictures(model, image_shape, kind="unit", examples=None, n_samples=64, sample_steps=1000,
                   beta=1.0, seed=0, notes=None) -> dict:
    """{"weights": mosaic, "samples": grid, "reconstructions": grid} as images in [0, 1].

    Reconstructions alternate rows: 8 examples, then their mean-field reconstructions.
    Samples come from their own seeded generator, so drawing them never changes training.
    """
    notes = [] if notes is None else notes
    normalize = "all" if kind == "real" else None
    pictures = {}
    W = getattr(model, "W", None)
    if isinstance(W, torch.Tensor) and W.dim() in (2, 4):
        pictures["weights"] = viz.weight_mosaic(W, image_shape)
    else:
        notes.append("no weights.png: this model has no dense or convolutional W to draw")
    g = torch.Generator(model.device).manual_seed(int(seed))
    pictures["samples"] = viz.tile_images(model.sample(n_samples, k=sample_steps, beta=beta, generator=g),
                                          image_shape, normalize=normalize)
    if examples is not None and len(examples):
        x = model.check_visible(examples[:32])
        rows = min(8, len(x))
        x = x[: rows * (len(x) // rows)]
        flat = lambda t: t.reshape(-1, rows, t[0].numel())        # (pairs of rows, rows, D)
        pairs = torch.stack([flat(x), flat(model.reconstruct(x))], 1)
        pictures["reconstructions"] = viz.tile_images(pairs.reshape(-1, pairs.shape[-1]), image_shape,
                                                      nrow=rows, normalize=normalize)
    return pictures
