"""Second-order TAP (Gabrie, Tramel & Krzakala 2015) against exact enumeration."""
import pytest
import torch

import energylab as el
from energylab.measures import metrics, tap
from test_ais import gaussian_rbm
from test_exact import random_rbm

SCALES = (0.1, 0.3, 0.8)


def coupled(scale, seed, nv=8, nh=6):
    model = random_rbm(nv, nh, seed=seed, scale=1.0)       # biases of order 1
    with torch.no_grad():
        model.W.normal_(0, scale)
    return model


def tap_error(model):
    state = tap.minimize(model, n_starts=8, generator=torch.Generator().manual_seed(0))
    assert state.converged
    return state.neg_gamma.max().item() - metrics.exact_log_partition(model)


def test_tap_log_z_is_close_for_weak_coupling_and_degrades_as_coupling_grows():
    errors = {s: [abs(tap_error(coupled(s, seed))) for seed in range(4)] for s in SCALES}
    mean = {s: sum(e) / len(e) for s, e in errors.items()}
    assert max(errors[0.1]) < 1e-3
    assert mean[0.1] < mean[0.3] < mean[0.8]
    assert mean[0.8] > 5e-3                       # the expansion is visibly off at strong coupling


def test_tap_beats_naive_mean_field_which_is_a_lower_bound():
    for seed in range(3):
        model = coupled(0.3, seed)
        exact = metrics.exact_log_partition(model)
        g = torch.Generator().manual_seed(0)
        naive = tap.naive_mean_field_log_partition(model, generator=g)
        assert naive <= exact + 1e-9              # Gibbs-Bogoliubov-Feynman variational bound
        assert abs(tap.tap_log_partition(model, generator=g) - exact) < abs(naive - exact)


@pytest.mark.parametrize("scale,tolerance", [(0.05, 1e-4), (0.1, 2e-3)])
def test_gaussian_bernoulli_tap_log_z(scale, tolerance):
    for seed in range(2):
        assert abs(tap_error(gaussian_rbm(6, 5, seed, scale=scale))) < tolerance
    errors = [abs(tap_error(gaussian_rbm(6, 5, seed, scale=s))) for s in (0.05, 0.3) for seed in range(3)]
    assert sum(errors[:3]) < sum(errors[3:])


def test_minimum_satisfies_the_self_consistency_equations():
    model = coupled(0.5, seed=1)
    state = tap.minimize(model, n_starts=4, tol=1e-12, generator=torch.Generator().manual_seed(1))
    lam_v, lam_h = tap.self_consistent_fields(model, state.m_v, state.m_h)
    assert torch.allclose(state.m_h, torch.sigmoid(lam_h + model.b), atol=1e-9)
    assert torch.allclose(state.m_v, torch.sigmoid(lam_v + model.a), atol=1e-9)


def test_parameter_gradient_at_the_minimum_is_the_derivative_of_tap_log_z():
    model = coupled(0.4, seed=2, nv=5, nh=4)
    g = lambda: torch.Generator().manual_seed(0)
    state = tap.minimize(model, n_starts=1, tol=1e-13, generator=g())
    model.zero_grad()
    tap.neg_gibbs_free_energy(model, state.lam_v, state.m_v, state.lam_h, state.m_h).sum().backward()
    eps = 1e-5
    for p, index in ((model.W, (1, 2)), (model.a, (3,)), (model.b, (0,))):
        with torch.no_grad():
            p[index] += eps
            up = tap.tap_log_partition(model, n_starts=1, tol=1e-13, generator=g())
            p[index] -= 2 * eps
            down = tap.tap_log_partition(model, n_starts=1, tol=1e-13, generator=g())
            p[index] += eps
        assert p.grad[index].item() == pytest.approx((up - down) / (2 * eps), abs=1e-6)


def test_tap_training_raises_the_exact_likelihood():
    data = el.datasets.load("bars-and-stripes", n_train=200, n_test=50)
    torch.manual_seed(0)
    model = el.make("RBM", n_visible=9, n_hidden=6, init_std=0.1)
    before = metrics.exact_log_likelihood(model, data.train)
    trainer = el.Trainer(model, method="tap", lr=0.05, momentum=0.9, epochs=40, batch_size=20, device="cpu",
                         eval_every=10 ** 6)
    assert isinstance(trainer.objective, tap.TAP)
    trainer.fit(data)
    assert metrics.exact_log_likelihood(model, data.train) > before + 0.5


def test_unsupported_units_are_refused_clearly():
    model = el.make("GaussianReluRBM", n_visible=4, n_hidden=3)
    with pytest.raises(ValueError, match="TAP is implemented for Bernoulli and Gaussian"):
        tap.tap_log_partition(model)
