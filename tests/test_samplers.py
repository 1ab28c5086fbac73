"""Negative-phase samplers (training/samplers.py): run long on a fixed tiny model, their particles
follow the exact distribution (total-variation distance to the enumerated p_beta); short CD does not."""
import pytest
import torch

from energylab.measures import metrics
from energylab.training.samplers import CD, PCD, ParallelTempering, make_sampler
from test_exact import all_states
from test_rbm import code, tiny

N_STATES = 16          # the tiny model's 4 visible units


def tv(samples, exact):
    empirical = torch.bincount(code(samples), minlength=N_STATES).double()
    return 0.5 * (empirical / empirical.sum() - exact).abs().sum().item()


def exact_at(model, beta):
    """p_beta(v) ∝ exp(-F_beta(v)) over every visible state."""
    with torch.no_grad():
        return torch.softmax(-model.free_energy(all_states(model.n_visible), beta), 0)


def start_batch(model, n, state=0, seed=0):
    v = all_states(model.n_visible)[state].expand(n, -1).clone()
    return v, model.sample_h(v, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def model():
    return tiny(seed=7, scale=1.5)


def test_a_long_cd_chain_reaches_the_model_distribution_and_cd1_does_not(model):
    exact = metrics.exact_distribution(model)
    v, h = start_batch(model, 20_000)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        long_v, long_h = CD().negative(model, v, h, k=100, generator=g)
        short_v, _ = CD().negative(model, v, h, k=1, generator=g)
    # sampling noise: E[TV] <= 0.5 sqrt(16 / 20000) ~ 0.014
    assert tv(long_v, exact) < 0.03
    assert tv(short_v, exact) > 0.1                 # one step from a single state: CD-1's bias
    assert torch.equal(long_h, model.p_h(long_v))    # the negative hidden statistic is the conditional mean


def test_persistent_chains_carry_over_and_converge(model):
    exact = metrics.exact_distribution(model)
    pcd = PCD(n_chains=300)
    v, h = start_batch(model, 10)
    g = torch.Generator().manual_seed(2)
    samples = []
    with torch.no_grad():
        for step in range(250):
            before = None if pcd.chains is None else pcd.chains.clone()
            v_neg, _ = pcd.negative(model, v, h, k=1, generator=g)
            assert torch.equal(pcd.chains, v_neg) and v_neg.shape == (300, 4)
            if step >= 50:
                assert not torch.equal(before, v_neg)         # the chains moved on from where they were
                samples.append(v_neg)
    assert tv(torch.cat(samples), exact) < 0.03
    # a checkpoint carries the chains; reset forgets them
    restored = PCD(n_chains=300)
    restored.load_state_dict(pcd.state_dict())
    assert torch.equal(restored.chains, pcd.chains)
    pcd.reset()
    assert pcd.chains is None and pcd.state_dict() == {}


def test_persistent_chains_start_from_the_data_or_from_noise(model):
    v = all_states(4)[[3, 9]]
    chains = PCD(n_chains=5)._start(model, v, None)
    assert torch.equal(chains, v[[0, 1, 0, 1, 0]])
    noise = PCD(n_chains=5, init="random")._start(model, v, torch.Generator().manual_seed(0))
    assert noise.shape == (5, 4) and set(noise.unique().tolist()) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="'data' or 'random'"):
        PCD(init="zeros")


def test_every_tempering_rung_samples_its_own_temperature(model):
    betas = [1.0, 0.6, 0.3]
    pt = ParallelTempering(n_chains=200, betas=betas)
    v, h = start_batch(model, 200, state=15)
    g = torch.Generator().manual_seed(3)
    per_rung = [[] for _ in betas]
    with torch.no_grad():
        for step in range(300):
            pt.negative(model, v, h, k=1, generator=g)
            if step >= 50:
                for r, chains in enumerate(pt.chains.reshape(len(betas), 200, 4)):
                    per_rung[r].append(chains)
    for r, beta in enumerate(betas):
        assert tv(torch.cat(per_rung[r]), exact_at(model, beta)) < 0.03, beta
    # the rungs really are different laws (a sampler ignoring beta would fail above)
    assert 0.5 * (exact_at(model, 1.0) - exact_at(model, 0.3)).abs().sum().item() > 0.1
    assert bool((pt.swap_rates > 0).all())


def test_a_restored_tempering_sampler_continues_exactly(model):
    v, h = start_batch(model, 20)
    pt = ParallelTempering(n_chains=20, n_temps=4, min_beta=0.2)
    with torch.no_grad():
        pt.negative(model, v, h, k=3, generator=torch.Generator().manual_seed(4))
        twin = ParallelTempering(n_chains=20, n_temps=4, min_beta=0.2)
        twin.load_state_dict({k: t.clone() for k, t in pt.state_dict().items()})
        a, _ = pt.negative(model, v, h, k=3, generator=torch.Generator().manual_seed(5))
        b, _ = twin.negative(model, v, h, k=3, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and pt.parity == twin.parity and torch.equal(pt.swap_rates, twin.swap_rates)


def test_unknown_samplers_are_named():
    with pytest.raises(ValueError, match=r"choose one of \['cd', 'driven', 'pcd', 'pt'\]"):
        make_sampler("gibbs")
