"""One-hot (softmax) units on either layer: conditionals, free energies and log Z against enumeration."""
import pytest
import torch

import energylab as el
from energylab.measures import metrics
from energylab.core.couplings import Dense
from energylab.models.rbm import RBM
from energylab.core.units import Bernoulli, OneHot
from test_exact import all_states


def model_with(visible, hidden, seed=0, scale=1.0):
    torch.manual_seed(seed)
    model = RBM(visible, hidden, Dense(visible.size, hidden.size)).double()
    with torch.no_grad():
        for p in (model.W, model.a, model.b):
            p.normal_(0, scale)
    return model


def states(layer):
    return layer.enumerate() if isinstance(layer, OneHot) else all_states(layer.size)


@pytest.mark.parametrize("which", ["visible", "hidden"])
def test_conditionals_and_free_energies_equal_enumeration(which):
    one_hot, binary = OneHot(6, group_size=3), Bernoulli(3)
    model = model_with(one_hot, binary) if which == "visible" else model_with(binary, one_hot, seed=1)
    V, H = states(model.visible), states(model.hidden)
    assert len(states(one_hot)) == 9 and bool((states(one_hot).reshape(9, 2, 3).sum(-1) == 1).all())
    E = torch.stack([model.energy(V, h.expand(len(V), -1)) for h in H], 1)     # (|V|, |H|)
    # p(h | v) and p(v | h) by enumeration, against the unit type's conditional means.
    p_h_given_v = torch.softmax(-E, 1) @ H
    p_v_given_h = torch.softmax(-E, 0).t() @ V
    assert torch.allclose(model.p_h(V), p_h_given_v, atol=1e-10)
    assert torch.allclose(model.p_v(H), p_v_given_h, atol=1e-10)
    # Free energies of both layers (logsumexp per group) and the partition function.
    assert torch.allclose(model.free_energy(V), -torch.logsumexp(-E, 1), atol=1e-10)
    assert torch.allclose(model.free_energy_hidden(H), -torch.logsumexp(-E, 0), atol=1e-10)
    log_z = torch.logsumexp(-E.flatten(), 0).item()
    assert metrics.exact_log_partition(model) == pytest.approx(log_z, abs=1e-9)
    # Tempered: log Z(beta) too.
    assert metrics.exact_log_partition(model, beta=0.5) == pytest.approx(
        torch.logsumexp(-0.5 * E.flatten(), 0).item(), abs=1e-9)


def test_ais_on_a_one_hot_visible_layer_matches_exact():
    model = model_with(OneHot(8, group_size=4), Bernoulli(5), seed=2)
    exact = metrics.exact_log_partition(model)
    data = OneHot(8, group_size=4).enumerate()[::3]
    result = metrics.ais_log_partition(model, n_chains=200, betas=500, data=data,
                                       generator=torch.Generator().manual_seed(0))
    assert abs(result.log_z - exact) < 0.1 and abs(result.log_z - exact) <= 3 * result.stderr + 1e-3


def test_single_group_default_is_the_class_layer():
    layer = OneHot(4)
    assert (layer.group_size, layer.n_groups, layer.n_states) == (4, 1, 4)
    assert torch.equal(layer.enumerate(), torch.eye(4, dtype=torch.float64))


def test_clear_errors():
    with pytest.raises(ValueError, match="groups of 4"):
        OneHot(6, group_size=4)
    with pytest.raises(ValueError, match="one-hot rows"):
        OneHot(6, group_size=3).check(torch.tensor([[1.0, 1.0, 0.0, 0.0, 0.0, 1.0]]))


def test_gaussian_one_hot_rbm_is_a_mixture_of_gaussians():
    torch.manual_seed(3)
    model = el.make("GaussianMixtureRBM", n_visible=2, n_hidden=3, sigma=0.7, standardize=False).double()
    with torch.no_grad():
        model.W.normal_(0, 1.0), model.a.normal_(0, 1.0), model.b.normal_(0, 1.0)
    v = torch.randn(50, 2, dtype=torch.float64)
    sigma = 0.7
    means = model.a + sigma * model.W.t()                                  # (components, 2)
    log_pi = torch.log_softmax(model.b + model.a @ model.W / sigma + (model.W ** 2).sum(0) / 2, 0)
    mixture = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(logits=log_pi),
        torch.distributions.Independent(torch.distributions.Normal(means, sigma), 1))
    assert torch.allclose(metrics.exact_log_likelihood(model, v, per_example=True), mixture.log_prob(v), atol=1e-9)
    # and its hidden conditional is the mixture's responsibility of each component
    resp = torch.softmax(log_pi + torch.distributions.Normal(means, sigma).log_prob(v[:, None]).sum(-1), 1)
    assert torch.allclose(model.p_h(v), resp, atol=1e-9)


def test_one_hot_rbm_variant_checks_its_groups():
    model = el.make("OneHotRBM", n_visible=5, n_hidden=6, group_size=3)
    assert (model.hidden.n_groups, model.hidden.group_size) == (2, 3)
    with pytest.raises(ValueError, match="multiple of group_size"):
        el.make("OneHotRBM", n_visible=5, n_hidden=7, group_size=3)
