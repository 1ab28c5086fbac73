"""Synthetic datasets whose distribution is known: bars-and-stripes and the 2-D toys.

Bars-and-stripes (MacKay 2003, "Information Theory, Inference, and Learning
Algorithms") is uniform over the 2**(n+1) - 2 distinct n x n images in which
whole rows or whole columns are on; the `Dataset` carries that exact distribution so
a small model's likelihood and KL divergence can be computed by enumeration. The 2-D
toy distributions (a ring of Gaussians, two moons, concentric rings, a
checkerboard) are real-valued point clouds for drawing a Gaussian RBM's energy
landscape. Every draw uses a seeded `torch.Generator` per split, so changing
n_train never changes the test set. They are registered in, and loaded through,
`energylab.datasets.load`.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from .core import Dataset, _generator, option

MAX_SAMPLES = 10_000_000   # per split, for the generated datasets


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
    size = option("size", size, "int", 2, 5, dataset="bars-and-stripes")   # 2**(n+1)-2 patterns: exact
    n_train, n_test = _counts("bars-and-stripes", n_train, n_test)        # likelihoods stay tractable
    patterns = bars_and_stripes_patterns(size)
    probs = torch.full((len(patterns),), 1.0 / len(patterns), dtype=torch.float64)
    draw = lambda n, stream: patterns[torch.randint(len(patterns), (n,), generator=_generator(seed, stream))]
    return Dataset("bars-and-stripes", draw(n_train, 0), draw(n_test, 1), "binary", (size, size),
                   description=f"Uniform over the {len(patterns)} distinct {size}x{size} bar and "
                               f"stripe images (all-off and all-on counted once).",
                   distribution=(patterns, probs))


def _counts(name: str, n_train, n_test) -> tuple[int, int]:
    """At least one training example (zero would train for zero steps), any number of test ones."""
    return (option("n_train", n_train, "int", 1, MAX_SAMPLES, dataset=name),
            option("n_test", n_test, "int", 0, MAX_SAMPLES, dataset=name))


def _toy(name: str, sampler: Callable, n_train: int, n_test: int, seed: int, description: str,
         n_classes: int | None = None) -> Dataset:
    n_train, n_test = _counts(name, n_train, n_test)
    (x_tr, y_tr), (x_te, y_te) = sampler(n_train, _generator(seed, 0)), sampler(n_test, _generator(seed, 1))
    return Dataset(name, x_tr.contiguous(), x_te.contiguous(), "real", None, y_tr, y_te, n_classes,
                   description)


def _gaussian_mixture(*, n_components: int = 8, radius: float = 2.0, std: float = 0.2,
                      n_train: int = 4000, n_test: int = 1000, seed: int = 0) -> Dataset:
    n_components = option("n_components", n_components, "int", 1, 10000, dataset="gaussian-mixture")
    radius = option("radius", radius, "float", 0, 1e6, dataset="gaussian-mixture")
    std = option("std", std, "float", 0, 1e6, dataset="gaussian-mixture")
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
    noise = option("noise", noise, "float", 0, 1e6, dataset="two-moons")

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
    n_rings = option("n_rings", n_rings, "int", 1, 10000, dataset="rings")
    radius = option("radius", radius, "float", 0, 1e6, dataset="rings")
    noise = option("noise", noise, "float", 0, 1e6, dataset="rings")

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
    n_cells = option("n_cells", n_cells, "int", 1, 10000, dataset="checkerboard")
    extent = option("extent", extent, "float", 1e-6, 1e6, dataset="checkerboard")

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
