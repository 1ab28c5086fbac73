"""Parallel tempering (Desjardins et al. 2010) and the driven sampler against exact mode weights."""
import math

import pytest
import torch

import energylab as el
from energylab.measures import metrics
from energylab.training.samplers import SAMPLERS, Driven, ParallelTempering, _gamma, make_sampler
from test_exact import all_states

N_VISIBLE = 12


def bimodal_rbm(log_odds=math.log(0.3 / 0.7)):
    """One hidden unit switches all visible units on: modes 'all off' and 'all on', a high barrier between.

    With W = 6, a = -3 and b = -3 n + log_odds the two modes weigh in the ratio exp(log_odds) at
    every temperature, while a Gibbs chain at beta = 1 leaves the 'off' mode only if about half
    of the 12 visible units (each on with probability 0.047) turn on at once: ~1e-5 per step.
    """
    model = el.make("RBM", n_visible=N_VISIBLE, n_hidden=1).double()
    with torch.no_grad():
        model.W.fill_(6.0)
        model.a.fill_(-3.0)
        model.b.fill_(-3.0 * N_VISIBLE + log_odds)
    return model


def exact_on_fraction(model):
    p = metrics.exact_distribution(model)
    return p[all_states(N_VISIBLE).sum(1) > N_VISIBLE / 2].sum().item()


def on_fraction(model, sampler, steps, n_chains=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    start = torch.zeros(n_chains, N_VISIBLE, dtype=torch.float64)      # every chain in the 'off' mode
    total = torch.zeros((), dtype=torch.float64)
    for _ in range(steps):
        v, _ = sampler.negative(model, start, None, k=1, generator=g)
        total += (v.sum(1) > N_VISIBLE / 2).double().mean()
    return (total / steps).item()


def test_parallel_tempering_mixes_a_bimodal_model_that_gibbs_does_not():
    model = bimodal_rbm()
    exact = exact_on_fraction(model)
    assert exact == pytest.approx(0.3, abs=0.01)
    pt = ParallelTempering(n_chains=20, n_temps=10, min_beta=0.05)
    pt_fraction = on_fraction(model, pt, steps=1500)
    gibbs_fraction = on_fraction(model, make_sampler("pcd", n_chains=20), steps=1500)
    assert abs(pt_fraction - exact) < 0.07, (pt_fraction, exact)
    assert gibbs_fraction < 0.01          # stuck in the mode it started in
    rates = pt.swap_rates
    assert rates.shape == (9,) and bool((rates > 0.05).all()) and bool((rates <= 1).all())


def test_tempering_keeps_beta_one_distribution_on_a_small_random_model():
    torch.manual_seed(0)
    model = el.make("RBM", n_visible=4, n_hidden=3).double()
    with torch.no_grad():
        model.W.normal_(0, 1.5)
        model.a.normal_(0, 1)
        model.b.normal_(0, 1)
    exact = metrics.exact_distribution(model)
    pt = ParallelTempering(n_chains=200, betas=[1.0, 0.6, 0.3])
    g = torch.Generator().manual_seed(1)
    counts = torch.zeros(16, dtype=torch.float64)
    weights = 2 ** torch.arange(3, -1, -1)
    v0 = torch.zeros(200, 4, dtype=torch.float64)
    for step in range(300):
        v, _ = pt.negative(model, v0, None, k=1, generator=g)
        if step >= 50:
            counts += torch.bincount((v.long() * weights).sum(1), minlength=16).double()
    tv = 0.5 * (counts / counts.sum() - exact).abs().sum().item()
    assert tv < 0.03


def test_bad_ladders_are_refused():
    with pytest.raises(ValueError, match="start at beta = 1"):
        ParallelTempering(betas=[0.5, 0.2])
    with pytest.raises(ValueError, match="min_beta"):
        ParallelTempering(min_beta=1.5)


def test_driven_sampler_betas_are_an_autocorrelated_gamma_process():
    g = torch.Generator().manual_seed(0)
    assert _gamma(3.0, torch.zeros(50000, dtype=torch.float64), g).mean().item() == pytest.approx(3.0, rel=0.02)
    model = bimodal_rbm()
    driven = Driven(n_chains=400, beta_momentum=0.9, beta_std=0.5)
    v = torch.zeros(400, N_VISIBLE, dtype=torch.float64)
    betas = []
    for _ in range(300):
        v_neg, h = driven.negative(model, v, None, k=1, generator=g)
        betas.append(driven.betas.clone())
    b = torch.stack(betas[50:])                      # (time, chains)
    assert b.mean().item() == pytest.approx(1.0, abs=0.03)
    lag1 = ((b[1:] - 1) * (b[:-1] - 1)).mean() / ((b - 1) ** 2).mean()
    assert lag1.item() == pytest.approx(0.9, abs=0.05)
    # The stationary variance of the AR(1) is (1 - rho)^2 std^2 / (1 - rho^2).
    assert b.var().item() == pytest.approx(0.1 ** 2 * 0.25 / (1 - 0.81), rel=0.15)
    assert v_neg.shape == (400, N_VISIBLE) and bool(((v_neg == 0) | (v_neg == 1)).all())


@pytest.mark.parametrize("sampler", ["pt", "driven"])
def test_registered_and_trainable(sampler):
    assert sampler in SAMPLERS
    assert sampler in el.VARIANTS["RBM"].param("sampler").choices
    torch.manual_seed(0)
    x = (torch.rand(64, 9) < 0.5).float()
    model = el.make("RBM", n_visible=9, n_hidden=4)
    trainer = el.Trainer(model, sampler=sampler, epochs=2, batch_size=16, device="cpu")
    history = trainer.fit(x)
    assert torch.isfinite(model.W).all()
    if sampler == "pt":                      # the swap rates are part of the training curves
        assert 0 < trainer.evaluate()["swap_rate"] <= 1 and "swap_rate" in str(history.to_dict())
    state = trainer.sampler.state_dict()
    assert "chains" in state


def test_the_schema_configures_the_samplers():
    import energylab as el
    model = el.make("RBM", n_visible=9, n_hidden=4)
    pt = el.Trainer(model, sampler="pt", pt_temperatures=5, pt_min_beta=0.3, n_chains=7).sampler
    assert len(pt.betas) == 5 and float(pt.betas.min()) == pytest.approx(0.3) and pt.n_chains == 7
    driven = el.Trainer(model, sampler="driven", driven_momentum=0.5, driven_std=0.2, chain_init="random").sampler
    assert (driven.rho, driven.shape, driven.init) == (0.5, pytest.approx(1 / 0.2 ** 2), "random")
    with pytest.raises(ValueError, match="pt_temperatures"):
        el.Trainer(model, sampler="pt", pt_temperatures=1)
