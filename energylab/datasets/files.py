"""The user's own data: arrays, .npy / .pt files and folders of images.

`from_array` wraps (N, D) rows or (N, H, W) / (N, C, H, W) images, validates them
(numeric, non-empty, finite, one whole non-negative label per sample, an image shape
that matches the row length), infers the kind and splits off a seeded test set.
`load_file` reads a .npy file (its header checked against the file's length and the
size limit before anything is allocated), a .pt file (loaded with weights_only=True,
so a data file cannot run code) or a folder of same-size .png/.jpg images (8-bit
scaled by 255, 16-bit by 65535), and hands the array to `from_array`. Anything
unreadable is a `DataError` naming the file and the fix. Both are part of
`energylab.datasets`; `load("file", path=...)` reaches `load_file` from the command
line and the dashboard.
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from .core import MAX_VALUES, Dataset, DataTypeError, _check_finite, _generator, option


def _as_array(x, name):
    try:
        return np.asarray(x)
    except (ValueError, TypeError, OverflowError) as exc:      # ragged lists, odd objects
        raise DataError(f"cannot be read as one numeric array ({exc})", field=name,
                        fix="pass an (N, D) array of numbers") from None


def _labels(labels, n: int, name: str) -> torch.Tensor:
    """One whole, non-negative, finite label per sample (0.7 is refused, never truncated to 0)."""
    y = _as_array(labels.detach().cpu() if isinstance(labels, torch.Tensor) else labels, f"{name} labels")
    if y.dtype.kind not in "biuf":
        raise DataTypeError(f"labels must be numbers, got dtype {y.dtype}", field=f"{name} labels",
                            fix="pass integer class indices 0, 1, 2, ...")
    y = y.reshape(-1).astype(np.float64)
    problems = []
    if len(y) != n:
        problems.append(f"{len(y)} labels for {n} samples")
    if not np.isfinite(y).all():
        problems.append(f"{int((~np.isfinite(y)).sum())} NaN or infinite")
    elif (y != np.round(y)).any():
        problems.append(f"{int((y != np.round(y)).sum())} not whole (e.g. {y[y != np.round(y)][0]:g})")
    elif (y < 0).any():
        problems.append(f"{int((y < 0).sum())} negative")
    if problems:
        raise DataError(f"need one whole non-negative class index per sample; got {', '.join(problems)}",
                        field=f"{name} labels", fix="pass integer class indices 0, 1, 2, ... one per sample")
    return torch.from_numpy(y).long()


def from_array(x, name: str = "custom", image_shape: tuple | None = None, labels=None,
               test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """Wrap an array of samples: (N, D) rows, or (N, H, W) / (N, C, H, W) images (flattened,
    shape kept). Rows are shuffled with `seed` and split off for the test set."""
    if isinstance(x, np.ndarray) or not isinstance(x, torch.Tensor):
        x = _as_array(x, name)
        if x.dtype.kind not in "biuf":
            raise DataTypeError(f"array has non-numeric dtype {x.dtype}", field=name,
                                fix="convert it to numbers first (e.g. x.astype(np.float32))")
        with np.errstate(over="ignore", invalid="ignore"):    # too large for float32: inf, refused below
            x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    elif x.is_complex():
        raise DataTypeError(f"complex dtype {x.dtype} is not supported", field=name, fix="pass real values")
    x = x.detach().to("cpu", torch.float32)
    if x.numel() == 0:
        raise DataError(f"data is empty (shape {tuple(x.shape)})", field=name, fix="pass at least one sample")
    if x.ndim in (3, 4):
        image_shape = image_shape or tuple(x.shape[1:])
        x = x.reshape(len(x), -1)
    elif x.ndim != 2:
        raise DataError(f"expected (N, D) samples or (N, H, W) images, got shape {tuple(x.shape)}", field=name,
                        fix="a single sample needs x[None, :], N scalars need x[:, None]")
    if image_shape is not None:
        try:
            image_shape = tuple(int(s) for s in image_shape)
        except (TypeError, ValueError):
            raise DataError("image_shape must be whole numbers, e.g. (28, 28)", field="image_shape",
                            value=image_shape) from None
        if math.prod(image_shape) != x.shape[1] or len(image_shape) not in (2, 3):
            raise DataError(f"image_shape {image_shape} has {math.prod(image_shape)} pixels but each row has "
                            f"{x.shape[1]} values", field=name, fix="pass (H, W) or (C, H, W) with C*H*W = D")
    _check_finite(x, name)
    test_fraction = option("test_fraction", test_fraction, "float", 0, 0.999999)
    y = None if labels is None else _labels(labels, len(x), name)
    perm = torch.randperm(len(x), generator=_generator(seed, 0))
    n_test = min(int(round(test_fraction * len(x))), len(x) - 1)
    tr, te = perm[n_test:], perm[:n_test]
    kind = "binary" if ((x == 0) | (x == 1)).all() else "unit" if x.min() >= 0 and x.max() <= 1 else "real"
    return Dataset(name, x[tr].contiguous(), x[te].contiguous(), kind,
                   tuple(image_shape) if image_shape else None,
                   None if y is None else y[tr], None if y is None else y[te],
                   None if y is None else int(y.max()) + 1, f"User data with {len(x)} samples.")


def _read_image(p: Path) -> np.ndarray:
    """One image as grey values in [0, 1]: 8-bit scaled by 255, 16-bit by 65535 (not saturated)."""
    from PIL import Image
    try:
        with Image.open(p) as img:
            img.load()
            if img.mode in ("I;16", "I;16B", "I;16L", "I"):         # 16-bit grey (Pillow reads it as I;16 or I)
                a = np.asarray(img, dtype=np.float64)
                if a.min() < 0 or a.max() > 65535:
                    raise DataError(f"a {img.mode} image with values outside 0..65535", file=p,
                                    fix="save it as 8-bit or 16-bit grey")
                return (a / 65535.0).astype(np.float32)
            if img.mode == "F":
                raise DataError("a floating-point image; its range is unknown", file=p,
                                fix="save it as 8-bit or 16-bit grey, or pass the array as a .npy file")
            return np.asarray(img.convert("L"), dtype=np.float32) / 255.0
    except DataError:
        raise
    except Exception as exc:        # PIL: UnidentifiedImageError, truncated data, decompression bombs
        raise DataError(f"not a readable image ({type(exc).__name__}: {' '.join(str(exc).split())[:160]})",
                        file=p, fix="remove or re-save that file") from None


def _read_image_folder(folder: Path) -> np.ndarray:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg") and p.is_file())
    if not files:
        raise DataError("no .png/.jpg images in this folder", file=folder, fix="point path= at a folder of images")
    first = _read_image(files[0])
    if first.size * len(files) > MAX_VALUES:
        raise DataError(f"{len(files)} images of {first.shape[1]}x{first.shape[0]} pixels exceed the limit of "
                        f"{MAX_VALUES:,} values", file=folder, fix="use fewer or smaller images")
    images = [first] + [_read_image(p) for p in files[1:]]
    for p, img in zip(files, images):
        if img.shape != first.shape:
            raise DataError(f"all images must have the same size: {files[0].name} is {first.shape[::-1]} (WxH) "
                            f"but {p.name} is {img.shape[::-1]}", file=p, fix="resize them")
    return np.stack(images)


def _read_npy(path: Path) -> np.ndarray:
    """A .npy array, its header checked first: no pickles, numbers only, and a claimed shape that
    the file's length holds and the size limit allows (nothing allocated before that)."""
    fix = "save the array with numpy.save(path, x) where x holds numbers"
    with open(path, "rb") as f:
        start = f.read(6)
        f.seek(0)
        if start[:2] == b"PK":
            raise DataError("this is a .npz archive (or another zip file), not a .npy array", file=path,
                            fix="load it with numpy.load and save the one array you want with numpy.save")
        try:
            version = np.lib.format.read_magic(f)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                           (2, 0): np.lib.format.read_array_header_2_0}.get(version)
            if read_header is None:
                raise ValueError(f"format version {version} is not read here")
            shape, fortran, dtype = read_header(f)
        except Exception as exc:      # empty, text, truncated header
            raise DataError(f"not a .npy file (it starts with {start!r}: {' '.join(str(exc).split())[:120]})",
                            file=path, fix=fix) from None
        offset = f.tell()
    if dtype.hasobject:
        raise DataError("holds pickled Python objects, which are never loaded (they could run code)",
                        file=path, fix=fix)
    if dtype.kind not in "biuf":
        raise DataTypeError(f"holds dtype {dtype}, not numbers", file=path, fix=fix)
    count = math.prod(shape)
    if count > MAX_VALUES:
        raise DataError(f"the header claims shape {shape} ({count:,} values), over the limit of {MAX_VALUES:,} "
                        "(energylab.datasets.core.MAX_VALUES)", file=path, fix="use a smaller array")
    have = path.stat().st_size - offset
    if have < count * dtype.itemsize:
        raise DataError(f"truncated: the header claims shape {shape} ({count * dtype.itemsize:,} bytes) but the "
                        f"file holds {have:,} bytes of data", file=path, fix="write the file again")
    try:
        return np.load(path, allow_pickle=False)
    except Exception as exc:
        raise DataError(f"unreadable .npy data ({type(exc).__name__}: {exc})", file=path, fix=fix) from None


def _read_pt(path: Path, labels):
    try:
        with warnings.catch_warnings():      # torch's notes on pickle protocols: the error below says it all
            warnings.simplefilter("ignore")
            x = torch.load(path, weights_only=True, map_location="cpu")   # a data file cannot run code
    except Exception as exc:      # random bytes, truncated zips, pickles of objects weights_only refuses
        raise DataError(f"not a tensor file energylab can read safely ({type(exc).__name__}); nothing in it was "
                        "run", file=path, fix="save a tensor, or a dict {'x': tensor, 'labels': tensor}, with "
                        "torch.save") from None
    if isinstance(x, dict):
        key = next((k for k in ("x", "data") if k in x), None)
        if key is None:
            raise DataError(f"a dict with keys {sorted(map(str, x))[:10]}", file=path,
                            fix="store the samples under 'x' (and labels under 'labels')")
        labels = labels if labels is not None else x.get("labels", x.get("y"))
        x = x[key]
    if not isinstance(x, (torch.Tensor, list, tuple)):
        raise DataError(f"holds a {type(x).__name__}, not a tensor", file=path,
                        fix="save a tensor, or a dict {'x': tensor, 'labels': tensor}, with torch.save")
    return x, labels


def load_file(path, *, name: str | None = None, labels=None, image_shape: tuple | None = None,
              test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """Load samples from a .npy file, a .pt file (a tensor, or a dict with 'x' or 'data' and
    optional 'labels'/'y') or a folder of same-size .png/.jpg images (grey, scaled to [0, 1])."""
    if not isinstance(path, (str, Path)) or not str(path):
        raise DataError("path must name a file or folder", field="path", value=path, fix="pass path=data.npy")
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError("no such file or folder", file=path, fix="check the path")
    if isinstance(labels, (str, Path)):
        raise DataError("labels must be an array; a labels file is not read", field="labels", value=labels,
                        fix="save a dict {'x': data, 'labels': labels} as a .pt file")
    if path.is_dir():
        x = _read_image_folder(path)
    elif path.suffix.lower() == ".npy":
        x = _read_npy(path)
    elif path.suffix.lower() == ".pt":
        x, labels = _read_pt(path, labels)
    else:
        raise DataError(f"unsupported file type {path.suffix!r}", file=path, fix="use .npy, .pt or an image folder")
    return from_array(x, str(name or path.stem), image_shape, labels, test_fraction, seed)
