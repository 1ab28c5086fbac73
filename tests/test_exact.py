"""Ground truth by brute force: every exact measurement against a sum over all (v, h)."""
import itertools
import math

import pytest
import torch

import energylab as el
from energylab.measures import metrics


def all_states(n):
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=torch.float64)


def random_rbm(n_visible, n_hidden, seed=0, scale=1.0):
    torch.manual_seed(seed)
    model = el.make("RBM", n_visible=n_visible, n_hidden=n_hidden).double()
    with torch.no_grad():
        model.W.normal_(0, scale)
        model.a.normal_(0, scale)
        model.b.normal_(0, scale)
    return model


def brute_force_energies(model):
    """E(v, h) for every pair, shape (2**nv, 2**nh)."""
    V, H = all_states(model.n_visible), all_states(model.n_hidden)
    return torch.stack([model.energy(V, h.expand(len(V), -1)) for h in H], 1), V, H


@pytest.mark.parametrize("nv,nh", [(4, 3), (3, 6), (6, 2)])
@pytest.mark.parametrize("beta", [1.0, 0.5])
def test_log_partition_equals_brute_force(nv, nh, beta):
    model = random_rbm(nv, nh, seed=nv * 10 + nh)
    E, _, _ = brute_force_energies(model)
    expected = torch.logsumexp(-beta * E.flatten(), 0).item()
    assert metrics.exact_log_partition(model, beta=beta) == pytest.approx(expected, abs=1e-5)


def test_both_enumeration_directions_agree():
    model = random_rbm(7, 7, seed=3)
    by_hidden = metrics.exact_log_partition(model)
    # Force enumeration of the visible layer by making it the smaller one on a transposed twin.
    twin = el.make("RBM", n_visible=7, n_hidden=7).double()
    twin.load_state_dict({"a": model.b, "b": model.a, "coupling.W": model.W.t()})
    assert metrics.exact_log_partition(twin) == pytest.approx(by_hidden, abs=1e-8)


@pytest.mark.parametrize("nv,nh", [(4, 3), (5, 5)])
def test_free_energy_and_likelihood_equal_brute_force(nv, nh):
    model = random_rbm(nv, nh, seed=1)
    E, V, _ = brute_force_energies(model)
    free = -torch.logsumexp(-E, 1)
    assert torch.allclose(metrics.free_energy(model, V), free, atol=1e-5)
    log_p = -free - torch.logsumexp(-E.flatten(), 0)
    assert torch.allclose(metrics.exact_log_likelihood(model, V, per_example=True), log_p, atol=1e-5)
    assert math.isclose(torch.logsumexp(log_p, 0).item(), 0.0, abs_tol=1e-9)   # a distribution
    assert torch.allclose(metrics.exact_distribution(model), log_p.exp(), atol=1e-8)


def test_gradient_from_enumeration_equals_autograd():
    model = random_rbm(5, 4, seed=2)
    data = all_states(5)[torch.randint(32, (40,), generator=torch.Generator().manual_seed(0))]
    grad = metrics.exact_log_likelihood_grad(model, data)
    # Autograd of the exact log-likelihood, written independently from brute-force energies.
    V, H = all_states(5), all_states(4)
    energies = lambda v: torch.stack([model.energy(v, h.expand(len(v), -1)) for h in H], 1)
    ll = torch.logsumexp(-energies(data), 1).mean() - torch.logsumexp(-energies(V).flatten(), 0)
    autograd = torch.autograd.grad(ll, [model.W, model.a, model.b])
    for name, g in zip(["W", "a", "b"], autograd):
        assert torch.allclose(grad[name], g, atol=1e-10), name


def test_enumeration_limit_gives_clear_error():
    model = el.make("RBM", n_visible=30, n_hidden=30)
    with pytest.raises(ValueError, match="AIS|smaller n_hidden"):
        metrics.exact_log_partition(model)


def test_likelihood_needs_binary_states():
    model = random_rbm(4, 3)
    with pytest.raises(ValueError, match="binary"):
        metrics.exact_log_likelihood(model, torch.full((2, 4), 0.5, dtype=torch.float64))


def test_exact_pseudo_likelihood_equals_product_of_conditionals():
    model = random_rbm(5, 4, seed=4)
    E, V, _ = brute_force_energies(model)
    log_joint = torch.logsumexp(-E, 1)         # unnormalised log p(v)
    index = {tuple(v.tolist()): i for i, v in enumerate(V)}
    data = V[[3, 7, 30, 12]]
    expected = []
    for v in data:
        total = 0.0
        for i in range(5):
            flipped = v.clone()
            flipped[i] = 1 - flipped[i]
            a, b = log_joint[index[tuple(v.tolist())]], log_joint[index[tuple(flipped.tolist())]]
            total += (a - torch.logaddexp(a, b)).item()      # log p(v_i | v_-i)
        expected.append(total)
    pl = metrics.pseudo_log_likelihood(model, data, method="exact")
    assert pl.method == "exact"
    assert pl.value == pytest.approx(sum(expected) / len(expected), abs=1e-9)


def test_one_bit_estimate_is_unbiased_for_the_exact_pseudo_likelihood():
    model = random_rbm(6, 4, seed=5)
    data = all_states(6)[torch.randint(64, (8,), generator=torch.Generator().manual_seed(1))]
    exact = metrics.pseudo_log_likelihood(model, data, method="exact").value
    g = torch.Generator().manual_seed(0)
    draws = torch.tensor([metrics.pseudo_log_likelihood(model, data, method="stochastic", generator=g).value
                          for _ in range(3000)])
    se = draws.std().item() / math.sqrt(len(draws))
    assert metrics.pseudo_log_likelihood(model, data, method="stochastic").method == "one-bit estimate"
    assert abs(draws.mean().item() - exact) < 3 * se + 1e-12


def test_exact_kl_of_the_model_itself_is_zero_and_positive_elsewhere():
    model = random_rbm(4, 3, seed=6)
    p_model = metrics.exact_distribution(model)
    assert metrics.exact_kl(model, p_model) == pytest.approx(0.0, abs=1e-10)
    p_data = metrics.data_distribution(all_states(4)[[0, 5, 5, 9]])
    assert p_data.sum().item() == pytest.approx(1.0)
    assert metrics.exact_kl(model, p_data) > 0
