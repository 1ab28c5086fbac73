"""The shared invariant suite: every registered variant (el.VARIANTS) must pass every check here.

Checks (each variant's schema: test_registry.py): shapes and finite outputs of the public methods,
seeded determinism, that a few training steps improve the variant's own objective, checkpoint
round-trip, and clear errors on wrong input. Nothing is skipped: a check a variant cannot run is
replaced by an explicit assertion of why (e.g. "exact likelihood refused: approximate units").

How a variant is exercised (generic, so new variants need at most one line here):
- data comes from `Variant.data_kinds`: Bernoulli-only variants ("binary" without "real")
  get binarised digits, the others the digits in [0, 1] (Gaussian layers standardise them
  themselves); a model with `needs_labels = True` is given the Dataset, which carries labels;
- sizes: `SMALL[name]` (model hyperparameters), default n_hidden=8;
- the objective: `model.objective_value(dataset)` if the model defines it (higher is better),
  else the mean log p(y | x) of the training labels for a `needs_labels` model (`log_p_y`),
  else the exact log-likelihood where `metrics.enumerated_layer` allows it, else the
  reconstruction error (asserting that the exact metrics refuse the model).
"""
from __future__ import annotations

import math

import pytest
import torch

import energylab as el

N_TRAIN, N_TEST = 240, 60
SMALL: dict[str, dict] = {}          # per-variant small model hyperparameters (default n_hidden=8)
NAMES = sorted(el.VARIANTS)


@pytest.fixture(scope="module")
def digits():
    return el.datasets.load("digits").subset(N_TRAIN, N_TEST)


def data_for(name, digits):
    kinds = el.VARIANTS[name].data_kinds
    if "real" in kinds:
        return digits
    assert "binary" in kinds, f"{name}: data_kinds {kinds} names no kind this suite can provide"
    return el.datasets.load("digits", binarize="threshold").subset(N_TRAIN, N_TEST)


def build(name, seed=0):
    variant = el.VARIANTS[name]
    hp = dict(SMALL.get(name, {}))
    if "n_hidden" in {p.name for p in variant.params}:
        hp.setdefault("n_hidden", 8)
    torch.manual_seed(seed)
    return el.make(name, n_visible=64, **hp)


def trainer(model, **kw):
    kw = {"epochs": 2, "batch_size": 32, "seed": 3, **kw}
    return el.Trainer(model, device="cpu", eval_every=10**9, **kw)


def objective(model, data):
    """(value, method) on the training set (what training optimises): higher is better."""
    if hasattr(model, "objective_value"):
        return float(model.objective_value(data)), "model.objective_value"
    if getattr(model, "needs_labels", False):         # a classifier: the conditional log-likelihood
        log_p = model.log_p_y(model.check_visible(data.train))
        return log_p.gather(1, data.train_labels[:, None]).mean().item(), "log p(y | x)"
    try:
        el.metrics.enumerated_layer(model, max_units=16)
    except ValueError as exc:
        return -el.metrics.reconstruction_error(model, data.train), f"-reconstruction error ({exc})"
    return el.metrics.exact_log_likelihood(model, data.train, max_units=16), "exact log-likelihood"


def fitted(model, data):
    fit = getattr(model.visible, "fit_to_data", None)
    if fit is not None:
        fit(model.check_visible(data.train))
    return model


@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_finite_outputs(name, digits):
    data = data_for(name, digits)
    model = fitted(build(name), data)
    v = model.check_visible(data.test[:5])
    h = model.p_h(v)
    assert h.shape == (5, *model.hidden.shape) and torch.isfinite(h).all()
    assert model.p_v(h).shape == v.shape and torch.isfinite(model.p_v(h)).all()
    assert model.free_energy(v).shape == (5,) and torch.isfinite(model.free_energy(v)).all()
    g = torch.Generator().manual_seed(0)
    assert model.reconstruct(v).shape == v.shape and torch.isfinite(model.reconstruct(v)).all()
    s = model.sample(4, k=5, generator=g)
    assert s.shape == (4, *model.visible.shape) and torch.isfinite(s).all()
    model.visible.check(s, "model samples")       # samples lie in the visible layer's domain


@pytest.mark.parametrize("name", NAMES)
def test_seeded_runs_are_identical(name, digits):
    data = data_for(name, digits)
    states = []
    for _ in range(2):
        model = build(name, seed=5)
        trainer(model, epochs=1).fit(data)
        states.append({k: v.clone() for k, v in model.state_dict().items()})
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key]), f"{name}: {key} differs between two seeded runs"
    other = build(name, seed=5)
    trainer(other, epochs=1, seed=4).fit(data)
    assert not torch.equal(other.W, states[0]["coupling.W"]), "the training seed must matter"


@pytest.mark.parametrize("name", NAMES)
def test_training_improves_its_objective(name, digits):
    data = data_for(name, digits)
    model = build(name)                   # its true initial state: fitting a standardiser is part of fit()
    before, method = objective(model, data)
    trainer(model, epochs=5, batch_size=16).fit(data)
    after, method_after = objective(model, data)
    assert method == method_after
    if method.startswith("-reconstruction"):
        assert "approximate" in method or "discrete" in method, method
    assert math.isfinite(after) and after > before + 1e-3, f"{name}: {method} went {before:.4f} -> {after:.4f}"


@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_round_trip(name, digits, tmp_path):
    data = data_for(name, digits)
    model = build(name)
    t = trainer(model, epochs=1)
    t.fit(data)
    t.save_checkpoint(tmp_path / "run.pt")
    loaded = el.load(tmp_path / "run.pt")
    assert type(loaded) is type(model) and loaded.config == model.config
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    v = data.test[:8]
    assert torch.allclose(loaded.free_energy(v), model.free_energy(v))
    assert torch.allclose(loaded.reconstruct(v), model.reconstruct(v))
    resumed = el.Trainer.from_checkpoint(tmp_path / "run.pt", device="cpu", eval_every=10**9)
    resumed.fit(data, epochs=2)
    assert all(torch.isfinite(p).all() for p in resumed.model.parameters())


@pytest.mark.parametrize("name", NAMES)
def test_clear_errors_on_wrong_input(name, digits):
    model = build(name)
    with pytest.raises(ValueError, match="shape"):
        model.check_visible(torch.rand(3, 63))
    bad = torch.rand(3, 64)
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        model.check_visible(bad)
    with pytest.raises(ValueError, match="n_visible"):
        el.make(name)
    with pytest.raises(ValueError, match="no model hyperparameter"):
        el.make(name, n_visible=64, not_a_parameter=1)
    if "real" not in el.VARIANTS[name].kinds_for(model.config["hparams"]):     # a stack: its first layer's
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            model.check_visible(torch.full((2, 64), 3.0))
    else:      # real-valued layers accept any finite value: say so instead of skipping
        assert model.check_visible(torch.full((2, 64), 3.0)).shape == (2, 64)
