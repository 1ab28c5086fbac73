"""Datasets for energylab: one `Dataset` record for every source, from exact toy
distributions to MNIST and the user's own arrays.

Every loader returns float32 rows of shape (N, D) on the CPU, so a model never has
to know where its data came from. `load(name, **options)` is the single entry point;
`DATASETS` lists what it knows. Randomness always comes from a seeded
`torch.Generator`, never the global RNG, so loading data cannot change a training run.
"""
from __future__ import annotations

import dataclasses
import difflib
import inspect
import math
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

__all__ = ["Dataset", "DatasetInfo", "DatasetUnavailable", "DATASETS", "load", "names",
           "binarize", "check_range", "from_array", "load_file", "bars_and_stripes_patterns"]


class DatasetUnavailable(RuntimeError):
    """The dataset's files are missing and could not be downloaded."""


@dataclass
class Dataset:
    name: str
    train: torch.Tensor                    # (N, D) float32
    test: torch.Tensor                     # (M, D) float32
    kind: str                              # "binary" | "unit" | "real"
    image_shape: tuple | None              # (H, W) or (C, H, W); None for 2-D toy data
    train_labels: torch.Tensor | None = None
    test_labels: torch.Tensor | None = None
    n_classes: int | None = None
    description: str = ""
    # Exact (patterns (P, D), probs (P,) float64) when the distribution is known, so
    # a model's likelihood and KL divergence can be computed without sampling error.
    distribution: tuple[torch.Tensor, torch.Tensor] | None = None

    def __post_init__(self):
        if self.train.ndim != 2 or self.test.ndim != 2 or self.train.shape[1] != self.test.shape[1]:
            raise ValueError(f"train and test must be (N, D) with the same D; got "
                             f"{tuple(self.train.shape)} and {tuple(self.test.shape)}")

    def __repr__(self) -> str:   # the generated one would print whole tensors
        extra = f", image {self.image_shape}" if self.image_shape else ""
        extra += f", {self.n_classes} classes" if self.n_classes else ""
        extra += ", exact distribution" if self.distribution is not None else ""
        return (f"Dataset({self.name!r}, train {tuple(self.train.shape)}, test "
                f"{tuple(self.test.shape)}, kind {self.kind!r}{extra})")

    @property
    def n_visible(self) -> int:
        return self.train.shape[1]

    def to(self, device) -> "Dataset":
        """A copy with every tensor on `device`."""
        move = lambda t: None if t is None else t.to(device)
        dist = None if self.distribution is None else tuple(move(t) for t in self.distribution)
        return dataclasses.replace(self, train=move(self.train), test=move(self.test),
                                   train_labels=move(self.train_labels),
                                   test_labels=move(self.test_labels), distribution=dist)

    def subset(self, n_train: int | None = None, n_test: int | None = None) -> "Dataset":
        """A copy keeping only the first rows: small and fast for tests and notebooks."""
        cut = lambda t, n: None if t is None else t[:n]
        return dataclasses.replace(self, train=cut(self.train, n_train), test=cut(self.test, n_test),
                                   train_labels=cut(self.train_labels, n_train),
                                   test_labels=cut(self.test_labels, n_test))


# --------------------------------------------------------------------------- checks

def _check_finite(x: torch.Tensor, what: str) -> None:
    bad = ~torch.isfinite(x)
    if bad.any():
        n_nan, n_inf = int(torch.isnan(x).sum()), int(torch.isinf(x).sum())
        first = int(bad.flatten().nonzero()[0])
        where = (f"row {first // x.shape[1]}, column {first % x.shape[1]}" if x.ndim == 2
                 else f"flat index {first}")
        raise ValueError(f"{what} contains {n_nan} NaN and {n_inf} infinite values; the first is "
                         f"at {where}. Drop or impute those entries before loading.")


def check_range(x: torch.Tensor, kind: str, what: str = "data") -> None:
    """Raise ValueError unless every value of `x` is allowed for `kind`.

    "binary" needs exactly 0 or 1, "unit" needs [0, 1] (Bernoulli visible units read
    values as probabilities), "real" only needs finite values. All kinds reject NaN/inf.
    """
    if kind not in ("binary", "unit", "real"):
        raise ValueError(f"unknown kind {kind!r}; use 'binary', 'unit' or 'real'")
    _check_finite(x, what)
    if kind == "real" or x.numel() == 0:
        return
    lo, hi = float(x.min()), float(x.max())
    if lo < 0 or hi > 1:
        raise ValueError(f"{what} has values in [{lo:g}, {hi:g}] but kind {kind!r} needs [0, 1]; "
                         f"scale to [0,1] (e.g. (x - x.min()) / (x.max() - x.min())) "
                         f"or choose a Gaussian visible variant")
    if kind == "binary" and not ((x == 0) | (x == 1)).all():
        example = float(x[(x != 0) & (x != 1)][0])
        raise ValueError(f"{what} must be exactly 0 or 1 for kind 'binary' but contains e.g. "
                         f"{example:g}; binarize it with energylab.datasets.binarize(x, "
                         f"'stochastic') or treat it as kind 'unit'")


def binarize(x: torch.Tensor, method: str, generator: torch.Generator | None = None) -> torch.Tensor:
    """Turn intensities in [0, 1] into exact 0/1 values (float32).

    "threshold": 1 where x > 0.5. Deterministic, but it throws away the grey levels.
    "stochastic": 1 where x > u with u ~ Uniform(0, 1), i.e. each pixel is a
    Bernoulli(x) sample. This is the binarization of the MNIST likelihood literature
    (e.g. Salakhutdinov & Murray 2008); log-likelihoods on thresholded data are
    not comparable with published numbers.
    """
    check_range(x, "unit", "data to binarize")
    if method == "threshold":
        return (x > 0.5).float()
    if method == "stochastic":
        device = generator.device if generator is not None else x.device
        u = torch.rand(x.shape, generator=generator, device=device).to(x.device)
        return (x > u).float()
    raise ValueError(f"unknown binarize method {method!r}; use 'threshold' or 'stochastic'")


def _generator(seed: int, stream: int) -> torch.Generator:
    # Independent streams per purpose (train, test, binarization...) so that changing
    # n_train does not change the test set.
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    state = np.random.SeedSequence([seed, stream]).generate_state(1)[0]
    return torch.Generator().manual_seed(int(state))


def _maybe_binarize(ds: Dataset, method: str | None, seed: int) -> Dataset:
    if method is None:
        return ds
    if method not in ("threshold", "stochastic"):
        raise ValueError(f"binarize must be None, 'threshold' or 'stochastic', got {method!r}")
    # Binarized once at load time with a fixed seed, so the data set is reproducible.
    return dataclasses.replace(ds, kind="binary",
                               train=binarize(ds.train, method, _generator(seed, 10)),
                               test=binarize(ds.test, method, _generator(seed, 11)),
                               description=ds.description + f" Binarized ({method}).")


# ------------------------------------------------------------------ small datasets

def _digits(*, test_fraction: float = 0.2, seed: int = 0, binarize: str | None = None) -> Dataset:
    from sklearn.datasets import load_digits          # bundled with scikit-learn: offline
    from sklearn.model_selection import train_test_split
    bunch = load_digits()
    x_tr, x_te, y_tr, y_te = train_test_split(bunch.data / 16.0, bunch.target, test_size=test_fraction,
                                              random_state=seed, stratify=bunch.target)
    f = lambda a: torch.tensor(a, dtype=torch.float32).contiguous()
    ds = Dataset("digits", f(x_tr), f(x_te), "unit", (8, 8), torch.tensor(y_tr, dtype=torch.int64),
                 torch.tensor(y_te, dtype=torch.int64), 10,
                 "scikit-learn's 1797 handwritten digits, 8x8 pixels scaled to [0, 1].")
    return _maybe_binarize(ds, binarize, seed)


def bars_and_stripes_patterns(size: int) -> torch.Tensor:
    """All distinct size x size bar/stripe images, flattened, in a fixed order."""
    seen: dict[tuple, None] = {}
    for mask in range(2 ** size):
        on = torch.tensor([(mask >> i) & 1 for i in range(size)], dtype=torch.float32)
        for img in (on[:, None].expand(size, size), on[None, :].expand(size, size)):  # stripes, bars
            seen.setdefault(tuple(img.flatten().tolist()), None)
    return torch.tensor(list(seen), dtype=torch.float32)


def _bars_and_stripes(*, size: int = 3, n_train: int = 1000, n_test: int = 1000,
                      seed: int = 0) -> Dataset:
    if not 2 <= size <= 5:
        raise ValueError(f"size must be between 2 and 5 (got {size}); the pattern count 2**(n+1)-2 "
                         f"is what keeps exact likelihoods tractable")
    patterns = bars_and_stripes_patterns(size)
    probs = torch.full((len(patterns),), 1.0 / len(patterns), dtype=torch.float64)
    draw = lambda n, stream: patterns[torch.randint(len(patterns), (n,), generator=_generator(seed, stream))]
    return Dataset("bars-and-stripes", draw(n_train, 0), draw(n_test, 1), "binary", (size, size),
                   description=f"Uniform over the {len(patterns)} distinct {size}x{size} bar and "
                               f"stripe images (all-off and all-on counted once).",
                   distribution=(patterns, probs))


def _toy(name: str, sampler: Callable, n_train: int, n_test: int, seed: int, description: str,
         n_classes: int | None = None) -> Dataset:
    (x_tr, y_tr), (x_te, y_te) = sampler(n_train, _generator(seed, 0)), sampler(n_test, _generator(seed, 1))
    return Dataset(name, x_tr.contiguous(), x_te.contiguous(), "real", None, y_tr, y_te, n_classes,
                   description)


def _gaussian_mixture(*, n_components: int = 8, radius: float = 2.0, std: float = 0.2,
                      n_train: int = 4000, n_test: int = 1000, seed: int = 0) -> Dataset:
    angles = 2 * math.pi * torch.arange(n_components) / n_components
    means = radius * torch.stack([torch.cos(angles), torch.sin(angles)], 1)

    def sample(n, g):
        k = torch.randint(n_components, (n,), generator=g)
        return means[k] + std * torch.randn(n, 2, generator=g), k
    return _toy("gaussian-mixture", sample, n_train, n_test, seed,
                f"{n_components} equal-weight Gaussians (std {std}) on a ring of radius {radius}; "
                f"component k is centred at radius*(cos 2pi k/K, sin 2pi k/K); labels = component.",
                n_components)


def _two_moons(*, noise: float = 0.1, n_train: int = 4000, n_test: int = 1000, seed: int = 0) -> Dataset:
    def sample(n, g):
        k = torch.randint(2, (n,), generator=g)
        t = math.pi * torch.rand(n, generator=g)
        upper = torch.stack([torch.cos(t), torch.sin(t)], 1)
        lower = torch.stack([1 - torch.cos(t), 0.5 - torch.sin(t)], 1)
        x = torch.where(k[:, None] == 0, upper, lower) - torch.tensor([0.5, 0.25])  # centred
        return x + noise * torch.randn(n, 2, generator=g), k
    return _toy("two-moons", sample, n_train, n_test, seed,
                f"Two interleaved half circles of radius 1, centred at the origin, noise {noise}.", 2)


def _rings(*, n_rings: int = 2, radius: float = 2.0, noise: float = 0.08, n_train: int = 4000,
           n_test: int = 1000, seed: int = 0) -> Dataset:
    def sample(n, g):
        k = torch.randint(n_rings, (n,), generator=g)
        r = radius * (k + 1) / n_rings + noise * torch.randn(n, generator=g)
        t = 2 * math.pi * torch.rand(n, generator=g)
        return torch.stack([r * torch.cos(t), r * torch.sin(t)], 1), k
    return _toy("rings", sample, n_train, n_test, seed,
                f"{n_rings} concentric rings, outermost radius {radius}, equal weights, "
                f"radial noise {noise}.", n_rings)


def _checkerboard(*, n_cells: int = 4, extent: float = 2.0, n_train: int = 4000, n_test: int = 1000,
                  seed: int = 0) -> Dataset:
    def sample(n, g):
        # Rejection from the square: exact uniform density on the dark cells for any n_cells.
        kept = [torch.empty(0, 2)]
        while sum(len(c) for c in kept) < n:
            x = (2 * torch.rand(2 * n + 8, 2, generator=g) - 1) * extent
            cell = ((x + extent) / (2 * extent) * n_cells).floor().clamp(max=n_cells - 1).long()
            kept.append(x[(cell.sum(1) % 2) == 0])
        return torch.cat(kept)[:n], None
    return _toy("checkerboard", sample, n_train, n_test, seed,
                f"Uniform on the dark squares of a {n_cells}x{n_cells} board covering "
                f"[-{extent}, {extent}]^2.")


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


# -------------------------------------------------------------------- user data

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


# --------------------------------------------------------------------- registry

@dataclass(frozen=True)
class DatasetInfo:
    description: str
    kind: str            # the default kind; binarize= or user data may change it
    loader: Callable[..., Dataset]


DATASETS: dict[str, DatasetInfo] = {
    "digits": DatasetInfo("8x8 handwritten digits from scikit-learn (offline)", "unit", _digits),
    "bars-and-stripes": DatasetInfo("all n x n bar/stripe images, exact uniform distribution",
                                    "binary", _bars_and_stripes),
    "gaussian-mixture": DatasetInfo("2-D Gaussians on a ring", "real", _gaussian_mixture),
    "two-moons": DatasetInfo("2-D interleaved half circles", "real", _two_moons),
    "rings": DatasetInfo("2-D concentric rings", "real", _rings),
    "checkerboard": DatasetInfo("2-D uniform on a checkerboard", "real", _checkerboard),
    "mnist": DatasetInfo("MNIST digits 28x28 (download)", "unit", _torchvision_loader("MNIST", "mnist")),
    "fashion-mnist": DatasetInfo("Fashion-MNIST clothing 28x28 (download)", "unit",
                                 _torchvision_loader("FashionMNIST", "fashion-mnist")),
    "kmnist": DatasetInfo("Kuzushiji-MNIST characters 28x28 (download)", "unit",
                          _torchvision_loader("KMNIST", "kmnist")),
    "file": DatasetInfo("your own .npy/.pt file or image folder: load('file', path=...)", "inferred",
                        load_file),
}


def names() -> list[str]:
    return list(DATASETS)


def load(name: str, **options) -> Dataset:
    """Load dataset `name` (see `names()`) with loader-specific keyword options."""
    if name not in DATASETS:
        close = difflib.get_close_matches(str(name), DATASETS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown dataset {name!r}.{hint} Available: {', '.join(DATASETS)}")
    params = inspect.signature(DATASETS[name].loader).parameters
    unknown = [k for k in options if k not in params]
    if unknown:
        accepted = ", ".join(k for k, p in params.items() if p.kind is not p.POSITIONAL_ONLY)
        raise TypeError(f"dataset {name!r} has no option {', '.join(map(repr, unknown))}; "
                        f"it accepts: {accepted}")
    missing = [k for k, p in params.items() if p.default is p.empty and k not in options]
    if missing:
        raise TypeError(f"dataset {name!r} needs {', '.join(k + '=...' for k in missing)}")
    return DATASETS[name].loader(**options)
