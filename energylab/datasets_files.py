"""The user's own data: arrays, .npy / .pt files and folders of images.

`from_array` wraps (N, D) rows or (N, H, W) / (N, C, H, W) images, validates them
(numeric, non-empty, finite, one non-negative label per sample, an image shape
that matches the row length), infers the kind and splits off a seeded test set.
`load_file` reads a .npy file, a .pt file (loaded with weights_only=True, so a data
file cannot run code) or a folder of same-size .png/.jpg images, and hands the
array to `from_array`. Both are part of `energylab.datasets`; `load("file",
path=...)` reaches `load_file` from the command line and the dashboard.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from .datasets_core import Dataset, _check_finite, _generator


def from_array(x, name: str = "custom", image_shape: tuple | None = None, labels=None,
               test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """Wrap an array of samples: (N, D) rows, or (N, H, W) / (N, C, H, W) images (flattened,
    shape kept). Rows are shuffled with `seed` and split off for the test set."""
    if isinstance(x, np.ndarray) or not isinstance(x, torch.Tensor):
        x = np.asarray(x)
        if x.dtype.kind not in "biuf":
            raise TypeError(f"{name}: array has non-numeric dtype {x.dtype}; convert it to numbers "
                            f"first (e.g. x.astype(np.float32))")
        x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    elif x.is_complex():
        raise TypeError(f"{name}: complex dtype {x.dtype} is not supported; pass real values")
    x = x.detach().to("cpu", torch.float32)
    if x.ndim in (3, 4):
        image_shape = image_shape or tuple(x.shape[1:])
        x = x.reshape(len(x), -1)
    elif x.ndim != 2:
        raise ValueError(f"{name}: expected (N, D) samples or (N, H, W) images, got shape "
                         f"{tuple(x.shape)}; a single sample needs x[None, :], N scalars need x[:, None]")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name}: data is empty (shape {tuple(x.shape)}); pass at least one sample")
    if image_shape is not None and math.prod(image_shape) != x.shape[1]:
        raise ValueError(f"{name}: image_shape {tuple(image_shape)} has {math.prod(image_shape)} "
                         f"pixels but each row has {x.shape[1]} values")
    _check_finite(x, name)
    if not 0 <= test_fraction < 1:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    y = None
    if labels is not None:
        y = torch.as_tensor(np.asarray(labels)).long().flatten()
        if len(y) != len(x) or (y < 0).any():
            raise ValueError(f"{name}: need one non-negative integer label per sample; got "
                             f"{len(y)} labels for {len(x)} samples (negative ones: {int((y < 0).sum())})")
    perm = torch.randperm(len(x), generator=_generator(seed, 0))
    n_test = min(int(round(test_fraction * len(x))), len(x) - 1)
    tr, te = perm[n_test:], perm[:n_test]
    kind = "binary" if ((x == 0) | (x == 1)).all() else "unit" if x.min() >= 0 and x.max() <= 1 else "real"
    return Dataset(name, x[tr].contiguous(), x[te].contiguous(), kind,
                   tuple(image_shape) if image_shape else None,
                   None if y is None else y[tr], None if y is None else y[te],
                   None if y is None else int(y.max()) + 1, f"User data with {len(x)} samples.")


def _read_image_folder(folder: Path) -> np.ndarray:
    from PIL import Image
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if not files:
        raise ValueError(f"no .png/.jpg images in folder {folder}")
    images = [np.asarray(Image.open(p).convert("L"), dtype=np.float32) / 255.0 for p in files]
    for p, img in zip(files, images):
        if img.shape != images[0].shape:
            raise ValueError(f"all images must have the same size: {files[0].name} is "
                             f"{images[0].shape[::-1]} (WxH) but {p.name} is {img.shape[::-1]}; resize them")
    return np.stack(images)


def load_file(path, *, name: str | None = None, labels=None, image_shape: tuple | None = None,
              test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """Load samples from a .npy file, a .pt file (a tensor, or a dict with 'x' or 'data' and
    optional 'labels'/'y') or a folder of same-size .png/.jpg images (grey, scaled to [0, 1])."""
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    if path.is_dir():
        x = _read_image_folder(path)
    elif path.suffix.lower() == ".npy":
        x = np.load(path, allow_pickle=False)
    elif path.suffix.lower() == ".pt":
        x = torch.load(path, weights_only=True)   # weights_only: a data file cannot run code
        if isinstance(x, dict):
            key = next((k for k in ("x", "data") if k in x), None)
            if key is None:
                raise ValueError(f"{path}: dict has keys {sorted(x)}; store the samples under 'x'")
            labels = labels if labels is not None else x.get("labels", x.get("y"))
            x = x[key]
    else:
        raise ValueError(f"{path}: unsupported file type {path.suffix!r}; use .npy, .pt or an image folder")
    return from_array(x, name or path.stem, image_shape, labels, test_fraction, seed)
