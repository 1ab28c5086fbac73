"""Datasets for energylab: one `Dataset` record for every source, from exact toy
distributions to MNIST and the user's own arrays.

Every loader returns float32 rows of shape (N, D) on the CPU, so a model never has
to know where its data came from. `load(name, **options)` is the single entry point;
`DATASETS` lists what it knows. Randomness always comes from a seeded
`torch.Generator`, never the global RNG, so loading data cannot change a training run.

This module is the registry and the loaders of library data (scikit-learn's digits,
torchvision's MNIST family, with the offline message that says where to place the
files by hand). The record and its checks are in `core.py`, the synthetic
distributions in `synthetic.py`, user arrays, files and image folders in
`files.py`; everything is importable from here.
"""
from __future__ import annotations

import difflib
import importlib.util
import inspect
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..errors import ConfigError
from .core import (
    Dataset,
    DatasetUnavailable,
    DataTypeError,
    OptionError,
    _maybe_binarize,
    binarize,
    check_range,
    option,
)
from .files import from_array, load_file
from .synthetic import (
    _bars_and_stripes,
    _checkerboard,
    _gaussian_mixture,
    _rings,
    _two_moons,
    bars_and_stripes_patterns,
)

__all__ = ["Dataset", "DatasetInfo", "DatasetUnavailable", "DataTypeError", "OptionError", "DATASETS", "load", "names",
           "binarize", "check_range", "from_array", "load_file", "bars_and_stripes_patterns"]


# --------------------------------------------------- scikit-learn digits (offline)

# The default split (test_fraction 0.2, seed 0: what the dashboard, the notebooks and most tests use)
# is scikit-learn's stratified `train_test_split`, stored as row order (train rows, then test rows)
# in digits_split.npy: with the pixels read from scikit-learn's bundled digits.csv.gz, the default
# load imports neither scikit-learn nor SciPy (~150 MB and ~1.5 s less in every training process).
# tests/test_datasets.py checks the stored order against scikit-learn's.
DEFAULT_SPLIT = (0.2, 0)


def _digits_file() -> Path | None:
    spec = importlib.util.find_spec("sklearn")            # finds the package without importing it
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            return path
    return None


def _digits_arrays(test_fraction: float, seed: int):
    """(x_train, x_test, y_train, y_test) as NumPy arrays, pixels in 0..16."""
    path = _digits_file()
    if (test_fraction, seed) == DEFAULT_SPLIT and path is not None:
        table = np.loadtxt(path, delimiter=",")
        order = np.load(Path(__file__).with_name("digits_split.npy")).astype(np.int64)
        if table.shape == (1797, 65) and len(order) == 1797:
            n_train = 1797 - 360
            x, y = table[:, :-1], table[:, -1].astype(np.int64)
            return x[order[:n_train]], x[order[n_train:]], y[order[:n_train]], y[order[n_train:]]
    from sklearn.datasets import load_digits  # bundled with scikit-learn: offline
    from sklearn.model_selection import train_test_split
    bunch = load_digits()
    return train_test_split(bunch.data, bunch.target, test_size=test_fraction, random_state=seed,
                            stratify=bunch.target)


def _digits(*, test_fraction: float = 0.2, seed: int = 0, binarize: str | None = None) -> Dataset:
    test_fraction = option("test_fraction", test_fraction, "float", 0.01, 0.99, dataset="digits")
    seed = option("seed", seed, "int", 0, 2**32 - 1, dataset="digits")
    x_tr, x_te, y_tr, y_te = _digits_arrays(test_fraction, seed)
    f = lambda a: torch.tensor(a / 16.0, dtype=torch.float32).contiguous()
    ds = Dataset("digits", f(x_tr), f(x_te), "unit", (8, 8), torch.tensor(y_tr, dtype=torch.int64),
                 torch.tensor(y_te, dtype=torch.int64), 10,
                 "scikit-learn's 1797 handwritten digits, 8x8 pixels scaled to [0, 1].")
    return _maybe_binarize(ds, binarize, seed)


# ------------------------------------------------------------ torchvision datasets

def _torchvision(cls_name: str, name: str, root, download: bool, binarize, seed: int) -> Dataset:
    import torchvision.datasets as tvd
    cls = getattr(tvd, cls_name)
    root = Path(root or os.environ.get("ENERGYLAB_DATA") or "~/.cache/energylab/data").expanduser().resolve()
    old_timeout = socket.getdefaulttimeout()
    # torchvision opens URLs without a timeout; a bounded one makes offline runs fail fast.
    socket.setdefaulttimeout(20)
    try:
        parts = [cls(str(root), train=t, download=download) for t in (True, False)]
    except Exception as err:   # URLError, RuntimeError, OSError, truncated archives...
        raw = root / cls_name / "raw"
        files = ", ".join(f for f, _ in cls.resources)
        raise DatasetUnavailable(
            f"{name} could not be downloaded or read ({type(err).__name__}: {str(err).strip()[:300]}).\n"
            f"Place the raw files by hand in the folder\n    {raw}\nnamely {files} (the .gz files or "
            f"their extracted versions without .gz). To keep data elsewhere pass root=... to "
            f"load({name!r}) or set the environment variable ENERGYLAB_DATA.") from err
    finally:
        socket.setdefaulttimeout(old_timeout)
    x = [p.data.reshape(len(p.data), -1).float().div_(255).contiguous() for p in parts]
    ds = Dataset(name, x[0], x[1], "unit", (28, 28), parts[0].targets.long(), parts[1].targets.long(),
                 10, f"torchvision {cls_name}: 28x28 grey images scaled to [0, 1].")
    return _maybe_binarize(ds, binarize, seed)


def _torchvision_loader(cls_name: str, name: str) -> Callable:
    def loader(*, root=None, download: bool = True, binarize: str | None = None, seed: int = 0):
        return _torchvision(cls_name, name, root, download, binarize, seed)
    return loader


# --------------------------------------------------------------------- registry

@dataclass(frozen=True)
class DatasetInfo:
    description: str
    kind: str            # the default kind; binarize= or user data may change it
    loader: Callable[..., Dataset]
    n_visible: int | None = None    # known without loading (downloaded sets); else ask the data


DATASETS: dict[str, DatasetInfo] = {
    "digits": DatasetInfo("8x8 handwritten digits from scikit-learn (offline)", "unit", _digits),
    "bars-and-stripes": DatasetInfo("all n x n bar/stripe images, exact uniform distribution",
                                    "binary", _bars_and_stripes),
    "gaussian-mixture": DatasetInfo("2-D Gaussians on a ring", "real", _gaussian_mixture),
    "two-moons": DatasetInfo("2-D interleaved half circles", "real", _two_moons),
    "rings": DatasetInfo("2-D concentric rings", "real", _rings),
    "checkerboard": DatasetInfo("2-D uniform on a checkerboard", "real", _checkerboard),
    "mnist": DatasetInfo("MNIST digits 28x28 (download)", "unit", _torchvision_loader("MNIST", "mnist"), 784),
    "fashion-mnist": DatasetInfo("Fashion-MNIST clothing 28x28 (download)", "unit",
                                 _torchvision_loader("FashionMNIST", "fashion-mnist"), 784),
    "kmnist": DatasetInfo("Kuzushiji-MNIST characters 28x28 (download)", "unit",
                          _torchvision_loader("KMNIST", "kmnist"), 784),
    "file": DatasetInfo("your own .npy/.pt file or image folder: load('file', path=...)", "inferred",
                        load_file),
}


def n_visible_of(name: str, options: dict | None = None) -> int | None:
    """The number of visible units `load(name, **options)` gives, without loading a downloaded set
    (the run manager checks a model's size before a training process starts); None for a user's
    file, whose shape only the file knows. Bundled and generated sets are loaded (milliseconds)."""
    info = DATASETS.get(name)
    if info is None or info.kind == "inferred":
        return None
    if info.n_visible is not None:
        return info.n_visible
    return load(name, **(options or {})).n_visible


def names() -> list[str]:
    return list(DATASETS)


def load(name: str, **options) -> Dataset:
    """Load dataset `name` (see `names()`) with loader-specific keyword options."""
    if name not in DATASETS:
        close = difflib.get_close_matches(str(name), DATASETS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown dataset {name!r}.{hint} Available: {', '.join(DATASETS)}")
    params = inspect.signature(DATASETS[name].loader).parameters
    unknown = [k for k in options if k not in params]
    if unknown:
        accepted = ", ".join(k for k, p in params.items() if p.kind is not p.POSITIONAL_ONLY)
        raise OptionError(f"dataset {name!r} has no option {', '.join(map(repr, unknown))}; "
                        f"it accepts: {accepted}")
    missing = [k for k, p in params.items() if p.default is p.empty and k not in options]
    if missing:
        raise OptionError(f"dataset {name!r} needs {', '.join(k + '=...' for k in missing)}")
    return DATASETS[name].loader(**options)
