"""The `Dataset` record every energylab loader returns, and the checks it shares.

A dataset is float32 rows of shape (N, D) on the CPU plus what a model or a
measurement needs to know about them: their kind ("binary", "unit", "real"), the
image shape, labels, and, for the toy distributions, the exact distribution.
This module holds that record and the value contract around it: `check_range`
(what each kind allows, NaN/inf rejected with the first offending position),
`binarize` (threshold or stochastic, the latter being the binarization of the
MNIST likelihood literature, Salakhutdinov & Murray 2008), and the seeded,
per-purpose random streams (`_generator`) that keep loading data from touching the
global RNG. The loaders themselves live in `datasets.py` (registry, scikit-learn
digits, torchvision), `synthetic.py` and `files.py`; import all of
it from `energylab.datasets`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ConfigError, DataError, EnergylabError


class DatasetUnavailable(EnergylabError, RuntimeError):
    """The dataset's files are missing and could not be downloaded."""


class DataTypeError(DataError, TypeError):
    """Data of a type that cannot be numbers (strings, objects, complex); also a TypeError."""


class OptionError(ConfigError, TypeError):
    """A loader option the dataset does not have, or a required one missing; also a TypeError."""


#: Upper bound on the values a loaded dataset may hold (4 GB of float32), checked before reading;
#: a file whose header claims more is refused instead of exhausting memory.
MAX_VALUES = 1_000_000_000


def option(name: str, value, kind: str = "int", low=None, high=None, *, dataset: str = ""):
    """A loader option checked and coerced: a whole number or a finite number in [low, high]
    (None: unbounded), else a ConfigError naming the option, the value and the range."""
    where = f"dataset {dataset!r} option {name}" if dataset else f"dataset option {name}"
    shown = f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"
    fix = f"pass {name}=<{'a whole number' if kind == 'int' else 'a number'} in {shown}>"
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"must be {'a whole number' if kind == 'int' else 'a number'}", field=where,
                          value=value, fix=fix)
    number = float(value)
    if number != number or number in (float("inf"), float("-inf")) or (kind == "int" and number != int(number)):
        raise ConfigError(f"must be {'a whole number' if kind == 'int' else 'a finite number'}", field=where,
                          value=value, fix=fix)
    if (low is not None and number < low) or (high is not None and number > high):
        span = f"between {low} and {high}" if low is not None and high is not None else f"in {shown}"
        raise ConfigError(f"must lie {span}", field=where, value=value, fix=fix)
    return int(number) if kind == "int" else number


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
            raise DataError(f"train and test must be (N, D) with the same D; got "
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
        raise DataError(f"{what} contains {n_nan} NaN and {n_inf} infinite values; the first is "
                         f"at {where}. Drop or impute those entries before loading.")


def check_range(x: torch.Tensor, kind: str, what: str = "data") -> None:
    """Raise ValueError unless every value of `x` is allowed for `kind`.

    "binary" needs exactly 0 or 1, "unit" needs [0, 1] (Bernoulli visible units read
    values as probabilities), "real" only needs finite values. All kinds reject NaN/inf.
    """
    if kind not in ("binary", "unit", "real"):
        raise DataError(f"unknown kind {kind!r}; use 'binary', 'unit' or 'real'")
    _check_finite(x, what)
    if kind == "real" or x.numel() == 0:
        return
    lo, hi = float(x.min()), float(x.max())
    if lo < 0 or hi > 1:
        raise DataError(f"{what} has values in [{lo:g}, {hi:g}] but kind {kind!r} needs [0, 1]; "
                         f"scale to [0,1] (e.g. (x - x.min()) / (x.max() - x.min())) "
                         f"or choose a Gaussian visible variant")
    if kind == "binary" and not ((x == 0) | (x == 1)).all():
        example = float(x[(x != 0) & (x != 1)][0])
        raise DataError(f"{what} must be exactly 0 or 1 for kind 'binary' but contains e.g. "
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
    raise DataError(f"unknown binarize method {method!r}; use 'threshold' or 'stochastic'")


def _generator(seed: int, stream: int) -> torch.Generator:
    # Independent streams per purpose (train, test, binarization...) so that changing
    # n_train does not change the test set.
    if not isinstance(seed, int) or seed < 0:
        raise ConfigError("must be a non-negative whole number", field="seed", value=seed, fix="pass seed=0")
    state = np.random.SeedSequence([seed, stream]).generate_state(1)[0]
    return torch.Generator().manual_seed(int(state))


def _maybe_binarize(ds: Dataset, method: str | None, seed: int) -> Dataset:
    if method is None:
        return ds
    if method not in ("threshold", "stochastic"):
        raise ConfigError(f"binarize must be None, 'threshold' or 'stochastic', got {method!r}")
    # Binarized once at load time with a fixed seed, so the data set is reproducible.
    return dataclasses.replace(ds, kind="binary",
                               train=binarize(ds.train, method, _generator(seed, 10)),
                               test=binarize(ds.test, method, _generator(seed, 11)),
                               description=ds.description + f" Binarized ({method}).")
