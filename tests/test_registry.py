"""The variant registry (registry.py): `make` and `from_config` round-trip, refusals that name the
fix, layer choices looked up when asked (whatever order the variants were registered in), and the
size limits checked before anything is allocated. (The `Param` record itself: test_schema.py.)"""
import json

import pytest
import torch

import energylab as el
from energylab import registry
from energylab.errors import ConfigError
from energylab.registry import VARIANTS, Registered, from_config, get, make, register

NAMES = sorted(VARIANTS)
ORDER = list(VARIANTS)          # registration order, which listings show


@pytest.mark.parametrize("name", NAMES)
def test_schema_is_complete(name):
    variant = VARIANTS[name]
    for p in variant.schema:
        assert p.help and p.validate(p.default) == p.default, p
    assert variant.reference and variant.summary and variant.data_kinds
    assert make(name, n_visible=64).config["variant"] == name


@pytest.mark.parametrize("name", NAMES)
def test_from_config_rebuilds_the_same_model_through_json(name):
    torch.manual_seed(0)
    model = make(name, n_visible=64)
    config = json.loads(json.dumps(model.config))              # a run record stores it as JSON
    torch.manual_seed(0)
    again = from_config(config)
    assert type(again) is type(model) and again.config == model.config
    assert model.config == {"variant": name, "n_visible": 64, "hparams": VARIANTS[name].defaults("model")}
    want, got = model.state_dict(), again.state_dict()
    assert list(want) == list(got)
    assert all(torch.equal(want[k], got[k]) for k in want)      # same seed, same draws: the same model


def test_make_validates_and_records_the_values_in_use():
    model = make("DropoutRBM", n_visible="6", n_hidden=3.0, p="0.25")
    assert model.config["n_visible"] == 6 and model.config["hparams"]["n_hidden"] == 3
    assert model.config["hparams"]["p"] == 0.25 and model.W.shape == (6, 3)


def test_refusals_name_the_fix():
    with pytest.raises(ValueError, match="needs n_visible .*dataset.n_visible"):
        make("RBM")
    with pytest.raises(ValueError, match=r"no model hyperparameter\(s\) \['n_hiden'\]; it takes \['init_std', "
                                         r"'n_hidden'\]"):
        make("RBM", n_visible=4, n_hiden=3)
    with pytest.raises(ValueError, match=r"\['lr'\] \(training hyperparameters such as these belong to the Trainer\)"):
        make("RBM", n_visible=4, lr=0.1)
    with pytest.raises(ValueError, match=r"'n_hidden' must lie in \[1, 100000\], got 0"):
        make("RBM", n_visible=4, n_hidden=0)
    with pytest.raises(ValueError, match="unknown variant 'RMB'; registered variants: RBM, "):
        get("RMB")
    with pytest.raises(ValueError, match="already registered"):
        register(VARIANTS["RBM"])
    with pytest.raises(KeyError, match="has no hyperparameter 'alpha'"):
        VARIANTS["RBM"].param("alpha")


def test_a_variant_carries_the_shared_training_schema_with_its_own_defaults():
    gaussian = VARIANTS["GaussianRBM"]
    assert gaussian.param("lr").default == 0.001 and VARIANTS["RBM"].param("lr").default == 0.1
    assert [p.name for p in gaussian.training] == [p.name for p in registry.TRAINING]
    assert gaussian.schema == gaussian.params + gaussian.training
    assert set(gaussian.defaults("all")) == set(gaussian.defaults("model")) | set(gaussian.defaults("training"))


def test_data_kinds_and_the_fix_for_a_stack():
    dbn = VARIANTS["DBN"]
    assert "real" in dbn.data_kinds and dbn.kinds_for({"first_layer": "RBM"}) == ("binary", "unit")
    assert dbn.defaults_for_kind("real") == {"first_layer": "GaussianRBM"}
    assert dbn.defaults_for_kind("binary") == {}
    with pytest.raises(ValueError, match=r"set first_layer to one of \['GaussianRBM', 'VarianceGaussianRBM'\]"):
        dbn.check_kind("real", "two-moons")
    with pytest.raises(ValueError, match="use a variant for real data .*GaussianRBM"):
        VARIANTS["RBM"].check_kind("real", "two-moons")


@pytest.fixture
def registry_restored():
    """VARIANTS as it was, in its order, after the test (every module shares the one dict)."""
    saved = dict(VARIANTS)
    yield
    VARIANTS.clear()
    VARIANTS.update(saved)


def test_layer_choices_are_resolved_when_asked_not_at_import(registry_restored):
    """A first-layer variant registered after the stack that names it still becomes a choice:
    remove two and register them again, as a later import would."""
    first = VARIANTS["DBN"].param("first_layer")
    gaussians = {n: VARIANTS.pop(n) for n in ("GaussianRBM", "VarianceGaussianRBM")}
    assert tuple(first.choices) == ("RBM", "SigmoidRBM", "DropoutRBM", "DropConnectRBM", "EDropoutRBM")
    assert "real" not in VARIANTS["DBN"].data_kinds
    with pytest.raises(ValueError, match="must be one of"):
        make("DBN", n_visible=4, hidden_layers="3", first_layer="GaussianRBM")
    for variant in gaussians.values():
        register(variant)
    assert "GaussianRBM" in first.choices and first.to_dict()["choices"][-1] == "VarianceGaussianRBM"
    assert "real" in VARIANTS["DBN"].data_kinds
    assert make("DBN", n_visible=4, hidden_layers="3", first_layer="GaussianRBM").config["hparams"][
        "first_layer"] == "GaussianRBM"
    assert Registered(("RBM", "NoSuchRBM")) == ("RBM",) and len(Registered(("NoSuchRBM",))) == 0


def test_sizes_are_computed_without_allocating_and_limits_name_the_fix(monkeypatch):
    values = {"n_hidden": 100_000, "init_std": 0.01}
    shapes = registry.shapes_of("RBM", 1_000_000, values)       # 1e11 numbers: only possible on "meta"
    assert shapes == {"a": (1_000_000,), "b": (100_000,), "coupling.W": (1_000_000, 100_000)}
    monkeypatch.setattr(registry, "_free_memory_bytes", lambda: None)
    with pytest.raises(ConfigError, match=r"limit is 100,000,000 .*fix: use fewer or smaller layers") as err:
        make("RBM", n_visible=20_000, n_hidden=10_000)
    assert err.value.value == 20_000 * 10_000 + 20_000 + 10_000
    monkeypatch.setattr(registry, "_free_memory_bytes", lambda: 2**30)         # 1 GiB free: 2**26 numbers
    assert registry.check_size("RBM", 64, {"n_hidden": 64, "init_std": 0.01}) == 64 * 64 + 128
    with pytest.raises(ConfigError, match=r"only 1.0 GiB of memory is free"):
        make("RBM", n_visible=10_000, n_hidden=8_000)
    with pytest.raises(ValueError, match="'n_visible' must lie in"):
        make("RBM", n_visible=registry.MAX_VISIBLE + 1)


def test_the_package_and_the_registry_share_one_schema():
    assert el.Param is registry.Param and el.make is make and el.VARIANTS is VARIANTS
    from energylab.schema import Param
    assert registry.Param is Param


def test_the_registry_keeps_its_order_after_the_tests_that_change_it():
    assert list(VARIANTS) == ORDER


def test_size_checked_builds_without_the_meta_device():
    """Inside `size_checked` (a caller that checked the size itself: the run manager), `make` builds
    the same model without running the size check; outside, the check runs, and its meta-device
    operation pulls in torch's compiler stack (sympy), which training processes are spared."""
    import subprocess
    import sys
    code = ("import sys, torch, energylab as el\n"
            "from energylab import registry\n"
            "with registry.size_checked():\n"
            "    a = el.make('DBN', n_visible=64, hidden_layers='16,8')\n"
            "print('sympy' in sys.modules)\n"
            "torch.manual_seed(0); b = el.make('RBM', n_visible=64)\n"
            "print('sympy' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]
    torch.manual_seed(3)
    with registry.size_checked():
        a = el.make("RBM", n_visible=6, n_hidden=4)
    torch.manual_seed(3)
    b = el.make("RBM", n_visible=6, n_hidden=4)
    assert a.config == b.config and all(torch.equal(x, y) for x, y in zip(a.state_dict().values(),
                                                                          b.state_dict().values()))
    calls = []
    original = registry.check_size
    try:
        registry.check_size = lambda *args: calls.append(args)
        with registry.size_checked():
            el.make("RBM", n_visible=6, n_hidden=4)
        el.make("RBM", n_visible=6, n_hidden=4)
    finally:
        registry.check_size = original
    assert calls == [("RBM", 6, {**el.VARIANTS["RBM"].defaults("model"), "n_hidden": 4})]
