"""Tests for energylab.datasets. All offline: MNIST-style loaders are exercised with the
network blocked and with tiny hand-written IDX files."""
import math
import socket
import struct

import numpy as np
import pytest
import torch
from scipy.stats import chi2

from energylab import datasets as D


# ------------------------------------------------------------------------- digits

def test_digits_split_shapes_range_labels():
    ds = D.load("digits")
    assert ds.train.shape[0] + ds.test.shape[0] == 1797
    assert ds.test.shape == (360, 64) and ds.n_visible == 64
    assert ds.train.dtype == torch.float32 and ds.train.is_contiguous()
    assert ds.kind == "unit" and ds.image_shape == (8, 8) and ds.n_classes == 10
    for x in (ds.train, ds.test):
        assert x.min() >= 0 and x.max() <= 1 and x.max() == 1
    for y, x in ((ds.train_labels, ds.train), (ds.test_labels, ds.test)):
        assert y.dtype == torch.int64 and len(y) == len(x)
        assert set(y.tolist()) == set(range(10))
    # Stratified: every class keeps about 20 % of its samples in the test set.
    counts = torch.bincount(ds.test_labels, minlength=10)
    assert counts.min() >= 34 and counts.max() <= 38


def test_digits_is_deterministic_per_seed():
    a, b, c = D.load("digits", seed=3), D.load("digits", seed=3), D.load("digits", seed=4)
    assert torch.equal(a.train, b.train) and torch.equal(a.test_labels, b.test_labels)
    assert not torch.equal(a.train, c.train)


def test_digits_default_split_is_scikit_learns_without_importing_it():
    """The stored row order of the default split (digits_split.npy) is exactly scikit-learn's
    stratified split, and loading it imports neither scikit-learn nor SciPy (training processes)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    bunch = load_digits()
    x_tr, x_te, y_tr, y_te = train_test_split(bunch.data / 16.0, bunch.target, test_size=0.2, random_state=0,
                                              stratify=bunch.target)
    ds = D.load("digits")
    assert torch.equal(ds.train, torch.tensor(x_tr, dtype=torch.float32))
    assert torch.equal(ds.test, torch.tensor(x_te, dtype=torch.float32))
    assert ds.train_labels.tolist() == list(y_tr) and ds.test_labels.tolist() == list(y_te)
    other = D.load("digits", seed=5)                        # any other split: scikit-learn computes it
    x_tr5, *_ = train_test_split(bunch.data / 16.0, bunch.target, test_size=0.2, random_state=5,
                                 stratify=bunch.target)
    assert torch.equal(other.train, torch.tensor(x_tr5, dtype=torch.float32))
    code = ("import sys, energylab as el; el.datasets.load('digits'); "
            "print(sorted(m for m in ('sklearn', 'scipy', 'pandas') if m in sys.modules))")
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_digits_threshold_binarization():
    unit, ds = D.load("digits"), D.load("digits", binarize="threshold")
    assert ds.kind == "binary"
    assert set(ds.train.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(ds.train, (unit.train > 0.5).float())


def test_digits_stochastic_binarization_is_bernoulli_of_intensity():
    unit, ds = D.load("digits"), D.load("digits", binarize="stochastic")
    assert ds.kind == "binary" and set(ds.train.unique().tolist()) == {0.0, 1.0}
    # Each pixel is an independent Bernoulli(p): for every grey level p, the fraction of
    # ones has standard error sqrt(p(1-p)/n). Five standard errors (plus a hair for
    # p in {0, 1}, where it must be exact) makes a false alarm essentially impossible.
    for level in unit.train.unique():
        mask = unit.train == level
        p, n = float(level), int(mask.sum())
        se = math.sqrt(p * (1 - p) / n)
        assert abs(float(ds.train[mask].mean()) - p) <= 5 * se + 1e-9, (p, n)
    # A different seed gives different noise.
    other = D.load("digits", binarize="stochastic", seed=1)
    assert not torch.equal(ds.train, other.train)


def test_binarize_function():
    x = torch.tensor([[0.0, 0.2, 0.5, 0.51, 1.0]])
    assert D.binarize(x, "threshold").tolist() == [[0, 0, 0, 1, 1]]
    g = torch.Generator().manual_seed(0)
    b = D.binarize(x, "stochastic", generator=g)
    assert b[0, 0] == 0 and b[0, -1] == 1          # p = 0 and p = 1 are certain
    with pytest.raises(ValueError, match="threshold"):
        D.binarize(x, "round")
    with pytest.raises(ValueError, match=r"\[0, ?1\]"):
        D.binarize(x * 3, "threshold")
    with pytest.raises(ValueError, match="binarize"):
        D.load("digits", binarize="yes")


# --------------------------------------------------------------- bars and stripes

def _is_bar_or_stripe(img):
    rows_const = bool((img == img[:, :1]).all())     # every row uniform: a stripe image
    cols_const = bool((img == img[:1, :]).all())     # every column uniform: a bar image
    return rows_const or cols_const


@pytest.mark.parametrize("n", [2, 3, 4])
def test_bars_and_stripes_distribution_is_exact(n):
    ds = D.load("bars-and-stripes", size=n)
    patterns, probs = ds.distribution
    assert ds.kind == "binary" and ds.image_shape == (n, n) and ds.n_visible == n * n
    # Distinct, valid and as many as exist: together they mean it is the complete set.
    assert patterns.shape == (2 ** (n + 1) - 2, n * n)
    assert len(torch.unique(patterns, dim=0)) == len(patterns)
    assert all(_is_bar_or_stripe(p.reshape(n, n)) for p in patterns)
    assert probs.dtype == torch.float64
    assert math.isclose(float(probs.sum()), 1.0, abs_tol=1e-12)
    assert torch.allclose(probs, torch.full_like(probs, 1 / len(probs)))


@pytest.mark.parametrize("n", [2, 3, 4])
def test_bars_and_stripes_samples_are_uniform(n):
    ds = D.load("bars-and-stripes", size=n, n_train=20000, n_test=100)
    patterns, _ = ds.distribution
    match = (ds.train[:, None, :] == patterns[None]).all(-1)       # (N, P)
    assert (match.sum(1) == 1).all(), "a sample is not one of the patterns"
    observed = match.sum(0).double()
    expected = len(ds.train) / len(patterns)
    stat = float(((observed - expected) ** 2 / expected).sum())
    # Pearson's statistic is chi-square with P-1 degrees of freedom under uniformity;
    # the 1 - 1e-6 quantile only fails if the sampler is really biased.
    assert stat < chi2.ppf(1 - 1e-6, len(patterns) - 1)


def test_bars_and_stripes_seeds_and_streams():
    a = D.load("bars-and-stripes", n_train=500, n_test=300)
    b = D.load("bars-and-stripes", n_train=800, n_test=300)
    assert torch.equal(a.test, b.test)              # test stream independent of n_train
    assert not torch.equal(a.train[:300], a.test)
    assert a.train.shape == (500, 9) and a.test.shape == (300, 9)
    with pytest.raises(ValueError, match="between 2 and 5"):
        D.load("bars-and-stripes", size=6)


# ------------------------------------------------------------------------ toy 2-D

TOYS = ["gaussian-mixture", "two-moons", "rings", "checkerboard"]


@pytest.mark.parametrize("name", TOYS)
def test_toy_shapes_determinism_no_global_rng(name):
    state = torch.random.get_rng_state()
    a = D.load(name, n_train=700, n_test=50, seed=5)
    assert torch.equal(state, torch.random.get_rng_state()), "touched the global RNG"
    b, c = D.load(name, n_train=700, n_test=50, seed=5), D.load(name, n_train=700, n_test=50, seed=6)
    assert a.train.shape == (700, 2) and a.test.shape == (50, 2) and a.train.dtype == torch.float32
    assert a.kind == "real" and a.image_shape is None
    assert torch.isfinite(a.train).all() and torch.isfinite(a.test).all()
    assert torch.equal(a.train, b.train) and not torch.equal(a.train, c.train)


def test_gaussian_mixture_recovers_components():
    K, R, std = 6, 3.0, 0.25
    ds = D.load("gaussian-mixture", n_components=K, radius=R, std=std, n_train=6000)
    angles = 2 * math.pi * torch.arange(K) / K
    means = R * torch.stack([torch.cos(angles), torch.sin(angles)], 1)
    nearest = torch.cdist(ds.train, means).argmin(1)
    assert torch.equal(nearest, ds.train_labels)    # components are far apart vs std
    for k in range(K):
        pts = ds.train[nearest == k]
        # about 1000 points each: weight within 5 binomial standard errors of 1/K ...
        assert abs(len(pts) / len(ds.train) - 1 / K) < 5 * math.sqrt((1 / K) * (1 - 1 / K) / len(ds.train))
        # ... and mean within 5 standard errors (std / sqrt(n)) of the true centre.
        assert (pts.mean(0) - means[k]).abs().max() < 5 * std / math.sqrt(len(pts))
        assert abs(float(pts.std(0).mean()) - std) < 0.1 * std


def test_rings_checkerboard_moons_geometry():
    rings = D.load("rings", n_rings=3, radius=3.0, noise=0.05, n_train=3000)
    r = rings.train.norm(dim=1)
    for k in range(3):
        assert abs(float(r[rings.train_labels == k].mean()) - 3.0 * (k + 1) / 3) < 0.02
    board = D.load("checkerboard", n_cells=4, extent=2.0, n_train=3000)
    assert board.train.abs().max() <= 2.0
    cells = ((board.train + 2.0) / 4.0 * 4).floor().clamp(max=3).long()
    assert ((cells.sum(1) % 2) == 0).all()
    assert len(torch.unique(cells, dim=0)) == 8     # all dark squares are used
    moons = D.load("two-moons", n_train=4000)
    assert moons.train.mean(0).abs().max() < 0.05 and set(moons.train_labels.tolist()) == {0, 1}


# ------------------------------------------------------------ torchvision / MNIST

@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network disabled in tests")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize("name,folder", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST"),
                                         ("kmnist", "KMNIST")])
def test_torchvision_offline_raises_helpful_error(no_network, tmp_path, name, folder):
    before = socket.getdefaulttimeout()
    with pytest.raises(D.DatasetUnavailable) as info:
        D.load(name, root=tmp_path)
    msg = str(info.value)
    assert isinstance(info.value, RuntimeError)
    assert str(tmp_path / folder / "raw") in msg
    assert "train-images-idx3-ubyte" in msg and "t10k-labels-idx1-ubyte" in msg
    assert "ENERGYLAB_DATA" in msg and "root" in msg
    assert socket.getdefaulttimeout() == before


def test_torchvision_default_root_from_environment(no_network, tmp_path, monkeypatch):
    monkeypatch.setenv("ENERGYLAB_DATA", str(tmp_path / "elsewhere"))
    with pytest.raises(D.DatasetUnavailable, match="elsewhere"):
        D.load("mnist", download=False)


def _write_idx(path, array):
    # IDX format: zero bytes, dtype code 0x08 (uint8), rank, big-endian sizes, raw data.
    array = np.asarray(array, dtype=np.uint8)
    header = struct.pack(">HBB", 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.tobytes())


def test_mnist_reads_raw_files_placed_by_hand(no_network, tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    images = {"train": rng.integers(0, 256, (12, 28, 28)), "t10k": rng.integers(0, 256, (5, 28, 28))}
    for split, imgs in images.items():
        _write_idx(raw / f"{split}-images-idx3-ubyte", imgs)
        _write_idx(raw / f"{split}-labels-idx1-ubyte", np.arange(len(imgs)) % 10)
    ds = D.load("mnist", root=tmp_path)
    assert ds.train.shape == (12, 784) and ds.test.shape == (5, 784) and ds.image_shape == (28, 28)
    assert torch.allclose(ds.train, torch.tensor(images["train"].reshape(12, -1) / 255, dtype=torch.float32))
    assert ds.kind == "unit" and ds.test_labels.tolist() == [0, 1, 2, 3, 4]
    assert D.load("mnist", root=tmp_path, binarize="threshold").kind == "binary"


# --------------------------------------------------------------------- user data

def _same_rows(ds, x):
    got = torch.cat([ds.train, ds.test])
    return torch.equal(got[torch.argsort(got[:, 0])], x[torch.argsort(x[:, 0])])


def test_npy_and_pt_round_trip(tmp_path):
    x = torch.rand(50, 7)
    np.save(tmp_path / "a.npy", x.numpy())
    ds = D.load_file(tmp_path / "a.npy")
    assert ds.name == "a" and ds.kind == "unit" and ds.test.shape == (10, 7) and _same_rows(ds, x)
    torch.save(x * 5 - 2, tmp_path / "b.pt")
    ds = D.load("file", path=tmp_path / "b.pt", test_fraction=0.0)
    assert ds.kind == "real" and ds.test.shape == (0, 7) and _same_rows(ds, x * 5 - 2)
    y = torch.arange(50) % 3
    torch.save({"x": (x > 0.5).float(), "labels": y}, tmp_path / "c.pt")
    ds = D.load_file(tmp_path / "c.pt")
    assert ds.kind == "binary" and ds.n_classes == 3
    assert torch.equal(torch.cat([ds.train_labels, ds.test_labels]).sort().values, y.sort().values)


def test_from_array_images_are_flattened():
    imgs = np.random.default_rng(0).random((10, 4, 3))
    ds = D.from_array(imgs, test_fraction=0.3, seed=1)
    assert ds.image_shape == (4, 3) and ds.train.shape == (7, 12) and ds.test.shape == (3, 12)
    assert torch.equal(ds.train, D.from_array(imgs, test_fraction=0.3, seed=1).train)


def test_image_folder(tmp_path):
    from PIL import Image
    pixels = [np.full((5, 6), 40 * i, dtype=np.uint8) for i in range(4)]
    for i, p in enumerate(pixels):
        Image.fromarray(p).convert("RGB").save(tmp_path / f"img{i}.png")
    ds = D.load_file(tmp_path, test_fraction=0.0)
    assert ds.image_shape == (5, 6) and ds.train.shape == (4, 30)
    assert sorted(ds.train[:, 0].tolist()) == pytest.approx([40 * i / 255 for i in range(4)])
    Image.fromarray(np.zeros((7, 6), dtype=np.uint8)).save(tmp_path / "odd.png")
    with pytest.raises(ValueError, match="odd.png"):
        D.load_file(tmp_path)


def test_user_data_errors(tmp_path):
    x = np.ones((6, 3))
    x[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"1 NaN.*row 3, column 1"):
        D.from_array(x)
    with pytest.raises(ValueError, match="infinite"):
        D.from_array(np.array([[1.0, np.inf]]))
    with pytest.raises(ValueError, match=r"x\[None, :\]"):
        D.from_array(np.ones(5))
    with pytest.raises(ValueError, match="empty"):
        D.from_array(np.zeros((0, 4)))
    with pytest.raises(TypeError, match="non-numeric"):
        D.from_array(np.array([["a", "b"]]))
    with pytest.raises(ValueError, match="image_shape"):
        D.from_array(np.ones((4, 10)), image_shape=(3, 3))
    with pytest.raises(ValueError, match="label"):
        D.from_array(np.ones((4, 2)), labels=[0, 1])
    (tmp_path / "x.csv").write_text("1,2\n")
    with pytest.raises(ValueError, match=r"\.npy"):
        D.load_file(tmp_path / "x.csv")


def test_check_range():
    D.check_range(torch.tensor([0.0, 1.0]), "binary")
    D.check_range(torch.tensor([0.0, 0.3, 1.0]), "unit")
    D.check_range(torch.tensor([-7.0, 3.0]), "real")
    with pytest.raises(ValueError, match=r"exactly 0 or 1.*0\.3"):
        D.check_range(torch.tensor([0.0, 0.3]), "binary")
    for kind in ("binary", "unit"):
        with pytest.raises(ValueError, match=r"\[-0\.5, 2\].*scale to \[0,1\].*Gaussian"):
            D.check_range(torch.tensor([[-0.5, 2.0]]), kind, what="pixels")
    with pytest.raises(ValueError, match="NaN"):
        D.check_range(torch.tensor([[0.0, float("nan")]]), "real")
    with pytest.raises(ValueError, match="kind"):
        D.check_range(torch.zeros(2), "gaussian")


# ---------------------------------------------------------------------- registry

def test_registry_and_errors():
    expected = TOYS + ["digits", "bars-and-stripes", "mnist", "fashion-mnist", "kmnist", "file"]
    assert set(expected) <= set(D.names())
    assert all(isinstance(info, D.DatasetInfo) and info.description for info in D.DATASETS.values())
    with pytest.raises(ValueError) as info:
        D.load("mnsit")
    msg = str(info.value)
    assert "'mnsit'" in msg and "mnist" in msg and all(n in msg for n in D.names())
    with pytest.raises(TypeError, match=r"'sise'.*size"):
        D.load("bars-and-stripes", sise=3)
    with pytest.raises(TypeError, match="path="):
        D.load("file")


def test_dataset_to_and_subset():
    ds = D.load("bars-and-stripes", size=2, n_train=40, n_test=20)
    small = ds.subset(n_train=5, n_test=3)
    assert small.train.shape == (5, 4) and small.test.shape == (3, 4)
    moved = ds.to("cpu")
    assert moved is not ds and torch.equal(moved.distribution[0], ds.distribution[0])
    labelled = D.load("digits").subset(10)
    assert len(labelled.train_labels) == 10 and len(labelled.test_labels) == 360
    with pytest.raises(ValueError, match="same D"):
        D.Dataset("bad", torch.zeros(3, 2), torch.zeros(3, 4), "real", None)


def test_n_visible_of_agrees_with_loading():
    """What the run manager uses to check a model's size before a training process starts."""
    for name, info in D.DATASETS.items():
        if info.kind == "inferred":
            assert D.n_visible_of(name) is None
        elif info.n_visible is None:
            assert D.n_visible_of(name) == D.load(name).n_visible, name
    assert D.n_visible_of("bars-and-stripes", {"size": 4}) == D.load("bars-and-stripes", size=4).n_visible == 16
    assert D.n_visible_of("mnist") == 28 * 28 and D.n_visible_of("no-such-set") is None
