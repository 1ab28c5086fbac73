"""Ground truth for the real-valued variants: numerical integration, exact marginals, known variances."""
from __future__ import annotations

import math

import pytest
import torch

import energylab as el
from energylab.core import units


def small_gb(n_visible, n_hidden, sigma=0.7, loc=0.3, scale=2.0, seed=0, learned=False):
    """A float64 Gaussian-Bernoulli RBM with a non-trivial standardiser and random parameters."""
    name = "VarianceGaussianRBM" if learned else "GaussianRBM"
    hp = {"sigma_init": sigma} if learned else {"sigma": sigma}
    m = el.make(name, n_visible=n_visible, n_hidden=n_hidden, **hp).double()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        m.coupling.W.copy_(torch.randn(n_visible, n_hidden, generator=g, dtype=torch.float64))
        m.a.copy_(0.5 * torch.randn(n_visible, generator=g, dtype=torch.float64))
        m.b.copy_(0.5 * torch.randn(n_hidden, generator=g, dtype=torch.float64))
        m.visible.loc.fill_(loc)
        m.visible.scale.fill_(scale)
        m.visible.fitted.fill_(True)
    return m


def trapezoid_log_integral(log_f, grid):
    """log of the integral of exp(log_f) on a uniform 1-D grid (trapezoid rule, stabilised)."""
    shift = log_f.max()
    return (torch.log(torch.trapezoid((log_f - shift).exp(), grid)) + shift).item()


@pytest.mark.parametrize("learned", [False, True])
def test_free_energy_equals_numerical_integration_1d(learned):
    m = small_gb(1, 3, learned=learned)
    grid = torch.linspace(-40, 40, 40001, dtype=torch.float64)
    v = grid[:, None]
    # F(h) = -log integral exp(-E(v, h)) dv, for every hidden state
    for h in m.hidden.enumerate():
        log_f = -m.energy(v, h.expand(len(grid), -1))
        assert -m.free_energy_hidden(h[None]).item() == pytest.approx(trapezoid_log_integral(log_f, grid), rel=1e-6)
    # log Z = log integral exp(-F(v)) dv equals the exact log Z from enumerating h
    with torch.no_grad():
        log_z_numeric = trapezoid_log_integral(-m.free_energy(v), grid)
    assert el.metrics.exact_log_partition(m) == pytest.approx(log_z_numeric, rel=1e-6)


def test_free_energy_equals_numerical_integration_2d():
    m = small_gb(2, 2, sigma=1.3, loc=-0.5, scale=0.8, seed=1)
    axis = torch.linspace(-20, 20, 1201, dtype=torch.float64)
    vx, vy = torch.meshgrid(axis, axis, indexing="ij")
    v = torch.stack([vx.flatten(), vy.flatten()], 1)
    with torch.no_grad():
        log_f = -m.free_energy(v).reshape(len(axis), len(axis))
    shift = log_f.max()
    inner = torch.trapezoid((log_f - shift).exp(), axis, dim=1)
    log_z_numeric = (torch.log(torch.trapezoid(inner, axis)) + shift).item()
    assert el.metrics.exact_log_partition(m) == pytest.approx(log_z_numeric, rel=1e-4)


def test_cd_statistics_are_the_exact_likelihood_gradient():
    """The closed-form statistics CD uses (through the standardiser) equal finite differences of log p."""
    m = small_gb(3, 2, seed=2)
    x = 0.3 + 2.0 * torch.randn(20, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    grad = el.metrics.exact_log_likelihood_grad(m, x)
    params = {"W": m.coupling.W, "a": m.a, "b": m.b}
    eps = 1e-6
    for name, p in params.items():
        for i in range(p.numel()):
            with torch.no_grad():
                p.view(-1)[i] += eps
                up = el.metrics.exact_log_likelihood(m, x)
                p.view(-1)[i] -= 2 * eps
                down = el.metrics.exact_log_likelihood(m, x)
                p.view(-1)[i] += eps
            assert grad[name].view(-1)[i].item() == pytest.approx((up - down) / (2 * eps), abs=1e-6)


def test_gibbs_sampler_matches_the_exact_marginal():
    """20000 independent chains of a 1-D GB-RBM after 200 steps vs the exact CDF of p(v).

    Dvoretzky-Kiefer-Wolfowitz: P(sup|F_n - F| > eps) <= 2 exp(-2 n eps^2); eps = 0.02 at
    n = 20000 bounds a false alarm by 2e-7. Returning the conditional mean instead of a draw
    (the Learnergy bug) must fail the same bound.
    """
    m = small_gb(1, 2, sigma=0.8, loc=1.0, scale=1.5, seed=3)
    grid = torch.linspace(-30, 30, 60001, dtype=torch.float64)
    with torch.no_grad():
        density = (-m.free_energy(grid[:, None]) - el.metrics.exact_log_partition(m)).exp()
    cdf = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumulative_trapezoid(density, grid)])
    assert cdf[-1].item() == pytest.approx(1.0, abs=1e-6)

    def ks(samples):
        s = samples.flatten().sort().values
        exact = torch.from_numpy(__import__("numpy").interp(s.numpy(), grid.numpy(), cdf.numpy()))
        n = len(s)
        emp_hi = torch.arange(1, n + 1, dtype=torch.float64) / n
        return max((emp_hi - exact).abs().max().item(), (emp_hi - 1 / n - exact).abs().max().item())

    n, bound = 20000, 0.02
    g = torch.Generator().manual_seed(0)
    samples = m.sample(n, k=200, generator=g)
    assert ks(samples) < bound
    with torch.no_grad():             # the same chain with means instead of Gaussian draws
        v = samples
        for _ in range(50):
            v = m.p_v(m.sample_h(v, generator=g))
    assert ks(v) > bound


def model_moments(m):
    """Exact mean and variance of each visible unit: a mixture over the enumerated hidden states."""
    m = m.double()
    h = m.hidden.enumerate()
    with torch.no_grad():
        w = torch.softmax(-m.free_energy_hidden(h), 0)[:, None]
        mu = m.p_v(h)                                            # component means, data units
        var = (m.visible._sigma() * getattr(m.visible, "scale", 1.0)) ** 2    # component variance
        mean = (w * mu).sum(0)
        return mean, var + (w * (mu - mean) ** 2).sum(0)


def test_learned_variance_recovers_a_known_variance():
    """Data N(m, s^2) per unit; the model's exact marginal (mixture over h) must have those moments,
    and the learned sigma itself must carry the variance (the hidden units add almost none).

    4000 examples give a standard error of s / sqrt(2 * 4000) ~ 1.1% on the sample std; SGD noise
    at lr 0.05 adds a few percent more, hence the 8% tolerance.
    """
    g = torch.Generator().manual_seed(0)
    true_std = torch.tensor([0.5, 2.0, 1.0])
    true_mean = torch.tensor([1.0, -2.0, 0.0])
    x = true_mean + true_std * torch.randn(4000, 3, generator=g)
    for standardize in (False, True):
        torch.manual_seed(0)
        m = el.make("VarianceGaussianRBM", n_visible=3, n_hidden=2, init_std=1e-3, standardize=standardize)
        el.Trainer(m, device="cpu", lr=0.05, momentum=0.5, weight_decay=0.0, epochs=15, batch_size=50,
                   eval_every=10**9).fit(x)
        mean, var = model_moments(m)
        sigma = (m.visible._sigma() * getattr(m.visible, "scale", 1.0)).detach().double()
        assert torch.allclose(var.sqrt(), x.std(0).double(), rtol=0.08), (standardize, var.sqrt(), x.std(0))
        assert torch.allclose(sigma, x.std(0).double(), rtol=0.08), (standardize, sigma, x.std(0))
        assert torch.allclose(mean, x.mean(0).double(), atol=0.05 * true_std.max().item())
        assert (m.visible._sigma() > 0).all()


def test_standardisation_is_fitted_once_on_the_training_set(tmp_path):
    d = el.datasets.load("gaussian-mixture", n_train=500, n_test=200)
    m = el.make("GaussianRBM", n_visible=2, n_hidden=4)
    assert not bool(m.visible.fitted)
    t = el.Trainer(m, device="cpu", epochs=1, eval_every=10**9)
    t.fit(d)
    assert torch.allclose(m.visible.loc, d.train.mean(0)) and torch.allclose(m.visible.scale, d.train.std(0))
    loc = m.visible.loc.clone()
    el.Trainer(m, device="cpu", epochs=1, eval_every=10**9).fit(d.test * 5 + 3)     # not refitted
    assert torch.equal(m.visible.loc, loc)
    t.save_checkpoint(tmp_path / "g.pt")
    assert torch.equal(el.load(tmp_path / "g.pt").visible.loc, m.visible.loc)
    # samples are in data units and are Gaussian draws: their spread given h is sigma * scale
    h = torch.ones(20000, 4)
    v = m.sample_v(h, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(v.std(0), m.visible.scale, rtol=0.03)
    assert torch.allclose(v.mean(0), m.p_v(h[:1])[0], atol=0.05)


def test_noisy_relu_units():
    u = units.NoisyReLU(5)
    x = torch.tensor([-3.0, -0.5, 0.0, 1.0, 4.0])
    g = torch.Generator().manual_seed(0)
    draws = torch.stack([u.sample(x, torch.zeros(5), generator=g) for _ in range(40000)])
    assert (draws >= 0).all()
    # the mean formula is the exact mean of max(0, x + N(0, sigmoid(x))); MC standard error < 0.01
    assert torch.allclose(draws.mean(0), u.mean(x, torch.zeros(5)), atol=0.02)
    # the log-partition is that of the stepped sigmoid units (Nair & Hinton 2010, eq. 2)
    xs = torch.linspace(-5, 30, 8, dtype=torch.float64)[None]
    direct = sum(torch.nn.functional.softplus(xs - i + 0.5) for i in range(1, 400)).sum()
    assert u.log_partition(xs, 0.0).item() == pytest.approx(direct.item(), rel=1e-9)
    # approximate free energy: the exact metrics must refuse
    m = el.make("GaussianReluRBM", n_visible=2, n_hidden=3)
    with pytest.raises(ValueError, match="approximate"):
        el.metrics.exact_log_partition(m)


def test_selu_units_are_deterministic_and_their_log_partition_integrates_selu():
    u = units.SELU(4)
    x = torch.tensor([[-2.0, -0.1, 0.3, 2.5]], dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(u.log_partition(x, 0.0).sum(), x)
    assert torch.allclose(grad, torch.nn.functional.selu(x))
    assert torch.equal(u.sample(x, 0.0, generator=torch.Generator()), u.mean(x, 0.0))
    assert u.deterministic and not u.exact_free_energy


def test_sigmoid_rbm_uses_mean_field_states_in_unit_interval():
    m = el.make("SigmoidRBM", n_visible=6, n_hidden=3)
    h = torch.tensor([[1.0, 0.0, 1.0]])
    assert torch.equal(m.sample_v(h, generator=torch.Generator()), m.p_v(h))
    assert m.visible.name == "sigmoid-mean-field" and m.visible.deterministic
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        m.check_visible(torch.full((1, 6), 1.5))
    with pytest.raises(ValueError, match="approximate"):
        el.metrics.exact_log_likelihood(m, torch.ones(2, 6))


def test_sigma_must_be_positive_and_in_range():
    with pytest.raises(ValueError, match="sigma"):
        el.make("GaussianRBM", n_visible=3, sigma=0.0)
    assert math.isclose(el.make("GaussianRBM", n_visible=3, sigma=2.0).visible.sigma[0].item(), 2.0)
