"""Pictures and files of a dashboard run, built so that a snapshot costs the training little.

`Cache` keeps the last result per name and recomputes it only when its key changes (the
pixels of a picture, the step, the record count): a mosaic is PNG-encoded again only when
its pixels changed, at zlib's fast level. `write_run_files` writes the run folder's
history / summary / weights files in the layout the command line writes too.
"""
from __future__ import annotations

import torch

from .. import viz
from ..store.runfolder import RunFolder, display_scale


class Cache:
    """The last result per name, recomputed only when its key changes (pixels, step, record count)."""

    def __init__(self):
        self._store = {}

    def get(self, name, key, compute):
        hit = self._store.get(name)
        if hit is not None and _same(hit[0], key):
            return hit[1]
        value = compute()
        self._store[name] = (key, value)
        return value


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape
                and bool(torch.equal(a, b)))
    return a == b


def _encode(grid, target, cache=None, name=None) -> bytes:
    """PNG of a grid upscaled to about `target` pixels; with a cache, unchanged pixels are not re-encoded."""
    grid = grid.detach().to("cpu")
    encode = lambda: viz.to_png(grid, max(1, target // max(grid.shape[-1], 1)), compress_level=1)
    return cache.get(name, grid, encode) if cache is not None else encode()


def _png(images, shape, nrow=None, target=320, normalize=None, cache=None, name=None):
    return _encode(viz.tile_images(images, shape, nrow=nrow, normalize=normalize), target, cache, name)


def mosaic_png(W, shape, target=320, cache=None, name=None) -> bytes:
    return _encode(viz.weight_mosaic(W, shape, max_tiles=100), target, cache, name)


def write_run_files(folder: RunFolder, trainer, summary: dict, image_shape) -> None:
    """history.json / history.csv / summary.json / weights.png, the layout the CLI writes too."""
    folder.write_history(trainer.history)
    folder.write_summary(summary)
    layers = viz.layer_weights(trainer.model) if image_shape is not None else []
    if layers:
        folder.write_images({"weights": viz.weight_mosaic(layers[0][1], image_shape)},
                            scale=display_scale(image_shape))
