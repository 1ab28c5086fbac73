"""The RBM composition (models/rbm.py) against the joint p(v, h) of a tiny model, enumerated:
energies, conditionals, free energies of both layers at any temperature, and the Gibbs kernel."""
import pytest
import torch

from energylab.core.couplings import Dense
from energylab.core.units import Bernoulli, Gaussian, LearnedVarianceGaussian, OneHot, StandardizedGaussian
from energylab.models.rbm import RBM
from test_exact import all_states

NV, NH = 4, 3


def tiny(seed=0, scale=1.0, nv=NV, nh=NH):
    g = torch.Generator().manual_seed(seed)
    model = RBM(Bernoulli(nv), Bernoulli(nh), Dense(nv, nh)).double()
    with torch.no_grad():
        for p in (model.W, model.a, model.b):
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * scale)
    return model


def joint(model):
    """E(v, h) for every pair, shape (2**nv, 2**nh), and the states."""
    V, H = all_states(model.n_visible), all_states(model.n_hidden)
    E = torch.stack([model.energy(V, h.expand(len(V), -1)) for h in H], 1)
    return E.detach(), V, H


def test_energy_is_the_bernoulli_formula():
    model = tiny()
    E, V, H = joint(model)
    with torch.no_grad():
        expected = -(V @ model.a)[:, None] - (H @ model.b)[None, :] - V @ model.W @ H.t()
    assert torch.allclose(E, expected, atol=1e-12)


@pytest.mark.parametrize("beta", [1.0, 0.5])
def test_conditionals_equal_those_of_the_enumerated_joint(beta):
    model = tiny(seed=1)
    E, V, H = joint(model)
    with torch.no_grad():
        assert torch.allclose(model.p_h(V, beta), torch.softmax(-beta * E, 1) @ H, atol=1e-12)
        assert torch.allclose(model.p_v(H, beta), torch.softmax(-beta * E, 0).t() @ V, atol=1e-12)


@pytest.mark.parametrize("beta", [1.0, 0.5])
def test_free_energies_of_both_layers_sum_out_the_other(beta):
    model = tiny(seed=2, scale=1.5)
    E, V, H = joint(model)
    with torch.no_grad():
        assert torch.allclose(model.free_energy(V, beta), -torch.logsumexp(-beta * E, 1), atol=1e-10)
        assert torch.allclose(model.free_energy_hidden(H, beta), -torch.logsumexp(-beta * E, 0), atol=1e-10)
        # Both marginals share the one partition function.
        z_v = torch.logsumexp(-model.free_energy(V, beta), 0)
        z_h = torch.logsumexp(-model.free_energy_hidden(H, beta), 0)
        assert torch.allclose(z_v, z_h, atol=1e-10)


# -- every unit type with a closed form, on either side -----------------------------------------

def standardized(n):
    layer = StandardizedGaussian(n, 0.8)
    layer.loc.fill_(1.5)
    layer.scale.fill_(2.0)
    return layer


LAYERS = {
    "bernoulli": lambda n: Bernoulli(n),
    "onehot": lambda n: OneHot(2 * n, group_size=2),
    "gaussian": lambda n: Gaussian(n, 0.8),
    "learned-hinton": lambda n: LearnedVarianceGaussian(n, 0.8, "hinton"),
    "learned-cho": lambda n: LearnedVarianceGaussian(n, 0.8, "cho"),
    "standardized": standardized,
}
DISCRETE = ("bernoulli", "onehot")


def composed(visible, hidden, n_visible=2, n_hidden=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    v, h = LAYERS[visible](n_visible), LAYERS[hidden](n_hidden)
    model = RBM(v, h, Dense(v.size, h.size)).double()
    with torch.no_grad():
        for p in (model.W, model.a, model.b):
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * 0.7)
    return model


def states(layer, n=6, seed=1):
    """Every state of a discrete layer; a few random points of a continuous one."""
    if layer.discrete:
        return layer.enumerate()
    return torch.randn(n, layer.size, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2


@pytest.mark.parametrize("visible", list(LAYERS))
@pytest.mark.parametrize("hidden", DISCRETE)
@pytest.mark.parametrize("beta", [1.0, 0.5])
def test_free_energy_sums_the_hidden_layer_out_for_every_unit_type(visible, hidden, beta):
    model = composed(visible, hidden)
    V, H = states(model.visible), model.hidden.enumerate()
    with torch.no_grad():
        E = torch.stack([model.energy(V, h.expand(len(V), -1)) for h in H], 1)
        assert torch.allclose(model.free_energy(V, beta), -torch.logsumexp(-beta * E, 1), atol=1e-10)
        assert torch.allclose(model.p_h(V, beta), torch.softmax(-beta * E, 1) @ H, atol=1e-10)


@pytest.mark.parametrize("visible", [n for n in LAYERS if n not in DISCRETE])
@pytest.mark.parametrize("beta", [1.0, 0.5])
def test_free_energy_of_the_hidden_layer_integrates_a_gaussian_visible_layer_out(visible, beta):
    """F(h) = -log of the integral of exp(-beta E(v, h)) over v, on a fine grid (one visible unit)."""
    model = composed(visible, "bernoulli", n_visible=1, n_hidden=3)
    H = model.hidden.enumerate()
    grid = torch.linspace(-60, 60, 200_001, dtype=torch.float64)[:, None]
    with torch.no_grad():
        for h in H:
            log_f = -beta * model.energy(grid, h.expand(len(grid), -1))
            top = log_f.max()
            f = (log_f - top).exp()
            z = torch.trapezoid(f, grid[:, 0])
            assert model.free_energy_hidden(h[None], beta).item() == pytest.approx(-(z.log() + top).item(), abs=1e-8)
            mean = torch.trapezoid(f * grid[:, 0], grid[:, 0]) / z
            assert model.p_v(h[None], beta).item() == pytest.approx(mean.item(), abs=1e-8)


def code(v):
    return (v.long() * 2 ** torch.arange(v.shape[1] - 1, -1, -1)).sum(1)


@pytest.mark.parametrize("k", [1, 2])
def test_gibbs_steps_follow_the_exact_transition_kernel(k):
    """From one state v0, k block-Gibbs steps land on v' with probability (T^k)[v0, v'], where
    T[v, v'] = sum_h p(h | v) p(v' | h) comes from the enumerated joint."""
    model = tiny(seed=3, scale=1.5)
    E, V, H = joint(model)
    p_h_v, p_v_h = torch.softmax(-E, 1), torch.softmax(-E, 0).t()
    T = torch.linalg.matrix_power(p_h_v @ p_v_h, k)
    start, n = 5, 20_000
    with torch.no_grad():
        v = model.gibbs(V[start].expand(n, -1).clone(), k=k, generator=torch.Generator().manual_seed(k))
    empirical = torch.bincount(code(v), minlength=len(V)).double() / n
    tv = 0.5 * (empirical - T[start]).abs().sum().item()
    assert tv < 0.025, tv           # sampling noise: E[TV] <= 0.5 sqrt(16 / n) ~ 0.014
    assert 0.5 * (T[start] - T[(start + 9) % 16]).abs().sum().item() > 0.05      # the start matters


def test_chain_from_hidden_keeps_the_last_hidden_layer_as_its_conditional_mean():
    model = tiny(seed=4)
    h = all_states(NH)
    with torch.no_grad():
        v, h_mean = model.chain_from_hidden(h, k=3, generator=torch.Generator().manual_seed(0))
        assert torch.equal(h_mean, model.p_h(v))
        assert set(v.unique().tolist()) <= {0.0, 1.0}


def test_sample_starts_where_told_and_runs_k_steps():
    model = tiny(seed=5)
    init = all_states(NV)[[3, 12]]
    assert torch.equal(model.sample(2, k=0, init=init), init)
    one = model.sample(2, k=1, init=init, generator=torch.Generator().manual_seed(0))
    again = model.gibbs(init, 1, generator=torch.Generator().manual_seed(0))
    assert torch.equal(one, again)
    assert model.sample(7, k=2).shape == (7, NV)


def test_reconstruction_is_the_mean_field_round_trip():
    model = tiny(seed=6)
    v = all_states(NV)
    assert torch.allclose(model.reconstruct(v), model.p_v(model.p_h(v)))


def test_explicit_statistics_only_when_every_part_has_them():
    assert tiny().explicit_stats
    gaussian = RBM(LearnedVarianceGaussian(3), Bernoulli(2), Dense(3, 2))
    assert not gaussian.explicit_stats


def test_public_entry_points_name_the_fix():
    model = tiny()
    with pytest.raises(ValueError, match=r"n_visible=\(5,\)"):
        model.check_visible(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="values in"):
        model.check_visible(torch.full((1, NV), 2.0))
    one = model.check_visible(torch.tensor([0, 1, 1, 0]))          # one example, ints: a float batch of one
    assert one.shape == (1, NV) and one.dtype == torch.float64
    with pytest.raises(ValueError, match="no model hyperparameter 'p'"):
        model.set_hparam("p", 0.5)
