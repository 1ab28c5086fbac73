"""`Param` validates and coerces a value, naming the range, the choices or the form it wants; the
schema says when a hyperparameter applies, which ones a first-time user sees, which a running
run accepts, and where a slider stops; every variant says what to watch and what it is judged by."""
import json

import pytest

import energylab as el
from energylab.curves import CURVES
from energylab.schema import Param

SAMPLER_OPTIONS = {"n_chains", "chain_init", "pt_temperatures", "pt_min_beta", "driven_momentum", "driven_std"}


def names(params):
    return {p.name for p in params}


def test_sampler_options_apply_only_with_their_sampler():
    rbm = el.VARIANTS["RBM"]
    assert not SAMPLER_OPTIONS & names(rbm.applicable())                 # default: CD-1, no chains
    assert {"n_chains", "chain_init"} <= names(rbm.applicable({"sampler": "pcd"}))
    assert not {"pt_temperatures", "driven_std"} & names(rbm.applicable({"sampler": "pcd"}))
    assert {"pt_temperatures", "pt_min_beta"} <= names(rbm.applicable({"sampler": "pt"}))
    assert {"driven_momentum", "driven_std"} <= names(rbm.applicable({"sampler": "driven"}))
    # TAP needs no sampler at all
    assert not ({"sampler"} | SAMPLER_OPTIONS) & names(rbm.applicable({"method": "tap", "sampler": "pt"}))
    assert "momentum" not in names(rbm.applicable({"optimizer": "adam"}))


def test_a_target_applies_only_with_its_penalty_and_a_pool_size_only_with_pooling():
    rbm, conv = el.VARIANTS["RBM"], el.VARIANTS["ConvRBM"]
    assert not rbm.applies("target_activation") and rbm.applies("target_activation", {"sparsity_penalty": 0.1})
    assert not conv.applies("sparsity_target") and conv.applies("sparsity_target", {"sparsity_cost": 1.0})
    assert not conv.applies("pool_size") and conv.applies("pool_size", {"pooling": "probabilistic-max"})
    assert not conv.applies("sparsity_penalty", {"sparsity_penalty": 1.0})   # conv brings its own sparsity
    dbn = el.VARIANTS["DBN"]
    assert not dbn.applies("fine_tune_lr") and dbn.applies("fine_tune_lr", {"fine_tune": "all"})


def test_when_conditions_accept_values_lists_and_negations():
    p = Param("x", "float", 0.0, "x", when={"mode": ("a", "b"), "rate": {"not": (0,)}})
    assert p.applies({"mode": "a", "rate": 0.5}) and p.applies({"mode": "b", "rate": 2})
    assert not p.applies({"mode": "c", "rate": 0.5}) and not p.applies({"mode": "a", "rate": 0.0})
    assert p.applies({})                             # values not given are not checked
    assert Param("y", "int", 1, "y", when={"mode": "a"}).applies({"mode": "a"})
    assert p.to_dict()["when"] == {"mode": ("a", "b"), "rate": {"not": (0,)}}


def test_a_classifier_offers_no_sampler():
    disc, hybrid = el.VARIANTS["DiscriminativeRBM"], el.VARIANTS["HybridDiscriminativeRBM"]
    offered = names(disc.applicable({"sampler": "pt"}))
    assert not ({"sampler", "k", "method"} | SAMPLER_OPTIONS) & offered
    assert "k" in names(hybrid.applicable()) and "sampler" not in names(hybrid.applicable())
    dbm = el.VARIANTS["DBM"]
    assert "sampler" not in names(dbm.applicable()) and "k" in names(dbm.applicable())


def test_live_params_include_the_models_own():
    assert "p" in names(el.VARIANTS["DropoutRBM"].live_params())
    assert "alpha" in names(el.VARIANTS["HybridDiscriminativeRBM"].live_params())
    assert {"sparsity_target", "sparsity_cost"} <= names(el.VARIANTS["ConvRBM"].live_params())
    rbm = el.VARIANTS["RBM"]
    assert names(rbm.live_params()) == {p.name for p in rbm.training if p.live}
    assert "target_activation" not in names(rbm.live_params({}))           # only when the penalty is on
    # the trainer's live record accepts every one of them
    model = el.make("HybridDiscriminativeRBM", n_visible=64)
    trainer = el.Trainer(model)
    for p in el.VARIANTS["HybridDiscriminativeRBM"].live_params():
        trainer.params.param(p.name)


@pytest.mark.parametrize("name", list(el.VARIANTS))
def test_every_variant_is_guided_and_its_defaults_are_slider_stops(name):
    v = el.VARIANTS[name]
    schema = names(v.schema)
    assert 2 <= len(v.essentials) <= 5 and set(v.essentials) <= schema
    assert all(v.applies(e) for e in v.essentials)
    assert len(v.what_to_watch) > 40 and v.what_to_watch.count(".") <= 3
    assert v.main_metric in CURVES and v.main_metric_better in ("lower", "higher")
    assert set(v.dashboard_training) <= schema and set(v.unused) <= names(v.training)
    assert v.dataset() in el.datasets.DATASETS
    for values in (v.defaults(), v.dashboard_defaults()):
        for key, value in values.items():
            p = v.param(key)
            p.validate(value)
            grid = p.grid()
            assert grid is None or value in grid, f"{name}.{key} = {value} is not a stop of {grid}"


def test_slider_grids():
    lr = el.VARIANTS["RBM"].param("lr")
    assert lr.log and lr.grid()[:4] == [1e-5, 2e-5, 3e-5, 5e-5] and lr.grid()[-1] == 1.0
    decay = el.VARIANTS["RBM"].param("weight_decay")
    assert decay.grid()[0] == 0.0 and 1e-4 in decay.grid() and decay.grid()[1] < 1e-4   # 0 = off, then decades
    temperature = el.VARIANTS["RBM"].param("sample_temperature")
    assert temperature.step == 0.05 and temperature.grid()[0] == 0.2 and 1.0 in temperature.grid()
    assert el.VARIANTS["RBM"].param("k").grid() == list(range(1, 101))
    assert el.VARIANTS["RBM"].param("n_hidden").grid() is None          # too wide: typed in
    assert lr.grid(include=0.07) == sorted(lr.grid() + [0.07])
    assert el.VARIANTS["RBM"].param("sampler").grid() is None


def test_numbers_are_coerced_and_held_to_their_range_with_the_help_in_the_error():
    rate = Param("rate", "float", 0.1, "how fast", 0.0, 1.0)
    assert rate.validate("0.25") == 0.25 and rate.validate(1) == 1.0 and rate.validate(0.0) == 0.0
    for bad, why in ((1.5, r"must lie in \[0.0, 1.0\], got 1.5 \(how fast\)"), (-1e-9, "must lie in"),
                     ("fast", "must be a number, got 'fast'"), (None, "must be a number"),
                     (float("nan"), "must be finite"), (float("inf"), "must be finite")):
        with pytest.raises(ValueError, match=f"hyperparameter 'rate' {why}"):
            rate.validate(bad)
    count = Param("count", "int", 3, "how many", 1, 10)
    assert count.validate("4") == 4 and isinstance(count.validate(4.0), int)
    with pytest.raises(ValueError, match="must be a whole number, got 2.5"):
        count.validate(2.5)
    assert Param("free", "float", 0.0, "no bounds").validate(-1e30) == -1e30


def test_choices_booleans_and_lists_of_whole_numbers():
    mode = Param("mode", "choice", "a", "which", choices=("a", "b"))
    assert mode.validate("b") == "b"
    with pytest.raises(ValueError, match=r"must be one of \['a', 'b'\], got 'c'"):
        mode.validate("c")
    flag = Param("flag", "bool", False, "on or off")
    assert [flag.validate(x) for x in ("yes", "False", "1", True, 0)] == [True, False, True, True, False]
    with pytest.raises(ValueError, match="must be true or false"):
        flag.validate("maybe")
    sizes = Param("sizes", "ints", "8,4", "layer sizes", 1, 100)
    assert sizes.validate(" 56 , 64") == "56,64" and sizes.validate([3, 2.0]) == "3,2"
    assert sizes.validate("") == ""
    with pytest.raises(ValueError, match="whole numbers separated by commas, e.g. '256,64'; got '8,x'"):
        sizes.validate("8,x")
    with pytest.raises(ValueError, match=r"must hold numbers in \[1, 100\], got '8,0'"):
        sizes.validate("8,0")


def test_a_log_scale_param_offers_round_stops_per_decade_and_stays_json():
    p = Param("lr", "float", 0.01, "learning rate", 1e-3, 1.0, live=True, log=True)
    assert p.grid() == [1e-3, 2e-3, 3e-3, 5e-3, 1e-2, 2e-2, 3e-2, 5e-2, 0.1, 0.2, 0.3, 0.5, 1.0]
    assert p.step is None                                     # a log slider moves by its grid
    linear = Param("x", "float", 0.5, "linear", 0.0, 1.0)
    assert linear.step == 0.02 and linear.grid()[:3] == [0.0, 0.02, 0.04] and linear.grid()[-1] == 1.0
    d = p.to_dict()
    assert json.loads(json.dumps(d)) == d and d["log"] and d["live"] and d["choices"] == []
