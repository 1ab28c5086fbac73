"""Mask policies (models/masks.py): the test-time rule is the expectation of the training-time
fields over the mask (dropout, DropConnect), E-Dropout keeps a unit with probability one minus
its normalised importance, and a masked batch is still an RBM whose marginals are enumerable."""
import math

import pytest
import torch

import energylab as el

from energylab.core.couplings import Conv2d, Dense
from energylab.core.units import Bernoulli
from energylab.models.masks import DropConnect, EnergyDropout, HiddenDropout, MaskedRBM, NoMask
from test_exact import all_states

NV, NH, P = 6, 5, 0.7


def masked(policy, seed=0):
    g = torch.Generator().manual_seed(seed)
    model = MaskedRBM(Bernoulli(NV), Bernoulli(NH), Dense(NV, NH, init_std=1.0, generator=g), policy).double()
    with torch.no_grad():
        model.a.copy_(torch.randn(NV, generator=g, dtype=torch.float64))
        model.b.copy_(torch.randn(NH, generator=g, dtype=torch.float64))
    return model


def within_standard_errors(samples, expected, z=5):
    """The sample mean (over dim 0) lies within z standard errors of `expected`, per entry."""
    se = samples.std(0) / math.sqrt(samples.shape[0])
    return bool(((samples.mean(0) - expected).abs() <= z * se + 1e-12).all())


def test_dropout_test_time_fields_are_the_expected_training_fields():
    model, n = masked(HiddenDropout(P)), 40_000
    v = all_states(NV)[[45]].expand(n, -1).clone()
    h = all_states(NH)[[27]].expand(n, -1).clone()
    test_up, test_down = model.hidden_field(v[:1]), model.visible_field(h[:1])
    model.begin_batch(v, torch.Generator().manual_seed(0))       # one mask per case
    up, down = model.hidden_field(v), model.visible_field(h)
    kept = torch.isfinite(up)                                    # a dropped unit's field is -inf: it is off
    model.end_batch()
    assert within_standard_errors(kept.double(), torch.full((NH,), P))          # p is the RETAIN probability
    assert within_standard_errors(torch.where(kept, up, torch.zeros_like(up)), test_up[0])
    assert within_standard_errors(down, test_down[0])
    assert torch.allclose(test_down, model.coupling.down(h[:1]) * P)            # and it is a rescaling


def test_dropconnect_test_time_fields_are_the_expected_training_fields():
    model, batches = masked(DropConnect(P), seed=1), 3000
    v, h = all_states(NV)[[45]], all_states(NH)[[27]]
    test_up, test_down = model.hidden_field(v)[0], model.visible_field(h)[0]
    g, ups, downs, kept = torch.Generator().manual_seed(1), [], [], []
    for _ in range(batches):                                     # one mask per mini-batch
        model.begin_batch(v, g)
        ups.append(model.hidden_field(v)[0])
        downs.append(model.visible_field(h)[0])
        kept.append(model.mask.mask.mean())
        model.end_batch()
    assert within_standard_errors(torch.stack(ups), test_up)
    assert within_standard_errors(torch.stack(downs), test_down)
    assert abs(torch.stack(kept).mean().item() - P) < 0.01
    assert torch.allclose(test_up, (v @ (P * model.W))[0])


@pytest.mark.parametrize("policy", [NoMask(), HiddenDropout(P), DropConnect(P), EnergyDropout()],
                         ids=lambda p: p.name)
def test_the_masked_model_is_an_rbm_in_a_batch_and_at_test_time(policy):
    """Conditionals and free energy equal those of the enumerated joint of the model's own energy,
    at test time and (DropConnect, a mask on the weights only) inside a batch."""
    model = masked(policy, seed=2)
    V, H = all_states(NV), all_states(NH)

    def check():
        with torch.no_grad():
            E = torch.stack([model.energy(V, h.expand(len(V), -1)) for h in H], 1)
            assert torch.allclose(model.free_energy(V), -torch.logsumexp(-E, 1), atol=1e-10)
            assert torch.allclose(model.p_h(V), torch.softmax(-E, 1) @ H, atol=1e-10)
            assert torch.allclose(model.p_v(H), torch.softmax(-E, 0).t() @ V, atol=1e-10)
    check()
    if isinstance(policy, DropConnect):
        model.begin_batch(V, torch.Generator().manual_seed(2))
        check()
        model.end_batch()


def test_energy_dropout_keeps_a_unit_with_probability_one_minus_its_normalised_importance(monkeypatch):
    policy, draws = EnergyDropout(), 4000
    model = masked(policy, seed=3)
    importance = torch.tensor([[0.5, 2.0, 1.0, 0.0, 4.0], [1.0, 0.5, 3.0, 0.2, 1.0]], dtype=torch.float64)
    monkeypatch.setattr(policy, "importance", lambda model, v, generator=None: importance)
    v, g = all_states(NV)[[5, 60]], torch.Generator().manual_seed(3)
    kept = []
    for _ in range(draws):
        model.begin_batch(v, g)
        kept.append(policy.masks[2])
        assert bool((model.p_h(v)[policy.masks[2] == 0] == 0).all())         # dropped units are off
        model.end_batch()
    expected = 1 - importance / importance.max(0).values                          # per unit over the batch
    assert within_standard_errors(torch.stack(kept), expected)
    assert torch.equal(model.hidden_field(v), model.coupling.up(v))               # test time: no rescaling


def test_retain_probability_and_coupling_are_checked():
    model = masked(HiddenDropout(P))
    model.set_p(0.25)
    assert model.mask.p == 0.25
    with pytest.raises(ValueError, match="probability of KEEPING"):
        model.set_p(0.0)
    with pytest.raises(ValueError, match="no retain probability"):
        masked(NoMask()).set_p(0.5)
    with pytest.raises(ValueError, match="dense coupling"):
        MaskedRBM(Bernoulli(16), Bernoulli((2, 3, 3)), Conv2d((1, 4, 4), 2, (2, 2)), HiddenDropout())


def test_only_masks_with_a_rate_offer_a_live_p():
    """E-Dropout's keep rate comes from the data: setting `p` on it is refused (it used to be
    accepted and wrote a `p` into the config that `from_config` then refused)."""
    for name in ("DropoutRBM", "DropConnectRBM"):
        m = el.make(name, n_visible=4, n_hidden=3)
        m.set_hparam("p", 0.3)
        assert el.registry.from_config(m.config).config["hparams"]["p"] == 0.3
    m = el.make("EDropoutRBM", n_visible=4, n_hidden=3)
    assert m.live_setters() == {}
    with pytest.raises(ValueError, match="no model hyperparameter 'p'"):
        m.set_hparam("p", 0.3)
    assert "p" not in m.config["hparams"]
