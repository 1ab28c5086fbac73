"""AIS (Salakhutdinov & Murray 2008) against exact enumeration on tiny models."""
import math

import pytest
import torch

import energylab as el
from energylab.measures import ais, metrics
from test_exact import all_states, random_rbm


def gaussian_rbm(n_visible, n_hidden, seed, scale=0.3, standardize=False):
    torch.manual_seed(seed)
    model = el.make("GaussianRBM", n_visible=n_visible, n_hidden=n_hidden, standardize=standardize).double()
    with torch.no_grad():
        model.W.normal_(0, scale)
        model.a.normal_(0, 1.0)
        model.b.normal_(0, 1.0)
    return model


def check(model, result, exact):
    assert abs(result.log_z - exact) < 0.1, (result, exact)
    assert abs(result.log_z - exact) <= 3 * result.stderr + 1e-3, (result, exact)
    assert result.log_z_low <= result.log_z <= result.log_z_high


@pytest.mark.parametrize("seed", [0, 1])
def test_ais_matches_exact_on_small_bernoulli_rbm(seed):
    model = random_rbm(8, 6, seed=seed, scale=1.0)
    exact = metrics.exact_log_partition(model)
    g = torch.Generator().manual_seed(seed)
    result = metrics.ais_log_partition(model, n_chains=200, betas=1000, generator=g)
    check(model, result, exact)
    assert (result.n_chains, result.n_betas) == (200, 1000)


def test_ais_with_data_base_rate_and_custom_ladder():
    model = random_rbm(7, 5, seed=4, scale=1.0)
    exact = metrics.exact_log_partition(model)
    data = (torch.rand(100, 7, generator=torch.Generator().manual_seed(0)) < 0.3).double()
    g = torch.Generator().manual_seed(1)
    # The base model has the data's marginals: its log Z is sum log(1 / (1 - p)) + n_hidden log 2.
    p = data.mean(0).clamp(1e-3, 1 - 1e-3)
    result = metrics.ais_log_partition(model, n_chains=200, betas=ais.beta_ladder(800, "sm2008"), data=data,
                                       generator=g)
    assert result.log_z_base == pytest.approx((-torch.log1p(-p)).sum().item() + 5 * math.log(2), abs=1e-9)
    check(model, result, exact)


def test_ais_log_likelihood_matches_exact():
    model = random_rbm(6, 5, seed=2, scale=1.0)
    v = all_states(6)[::3]
    g = torch.Generator().manual_seed(0)
    ll, result = metrics.ais_log_likelihood(model, v, n_chains=200, betas=500, generator=g)
    assert ll == pytest.approx(metrics.exact_log_likelihood(model, v), abs=0.1)


@pytest.mark.parametrize("standardize", [False, True])
def test_ais_matches_exact_on_gaussian_bernoulli_rbm(standardize):
    model = gaussian_rbm(5, 4, seed=3, standardize=standardize)
    if standardize:     # a fitted (loc, scale): log Z gains sum log(scale)
        model.visible.fit_to_data(torch.randn(50, 5, generator=torch.Generator().manual_seed(0)).double() * 2 + 1)
    exact = metrics.exact_log_partition(model)
    data = model.sample(100, k=20, generator=torch.Generator().manual_seed(2))
    g = torch.Generator().manual_seed(3)
    result = metrics.ais_log_partition(model, n_chains=200, betas=1000, data=data, generator=g)
    check(model, result, exact)


def test_more_temperatures_give_smaller_error_on_average():
    errors = {10: [], 300: []}
    for seed in range(4):
        model = random_rbm(8, 6, seed=10 + seed, scale=1.5)
        exact = metrics.exact_log_partition(model)
        for n_betas in errors:
            g = torch.Generator().manual_seed(seed)
            result = metrics.ais_log_partition(model, n_chains=100, betas=n_betas, generator=g)
            errors[n_betas].append(abs(result.log_z - exact))
    assert sum(errors[300]) < sum(errors[10])


def test_bad_ladders_are_refused_with_a_reason():
    model = random_rbm(3, 2)
    with pytest.raises(ValueError, match="from exactly 0 to exactly 1"):
        metrics.ais_log_partition(model, betas=[0.0, 0.7, 0.5, 1.0])
    with pytest.raises(ValueError, match="at least 2"):
        ais.beta_ladder(1)


def test_ais_matches_exact_with_learned_visible_variances():
    torch.manual_seed(5)
    model = el.make("VarianceGaussianRBM", n_visible=4, n_hidden=4, standardize=False).double()
    with torch.no_grad():
        model.W.normal_(0, 0.3)
        model.b.normal_(0, 1.0)
        model.visible.log_sigma.uniform_(-0.5, 0.5)
    exact = metrics.exact_log_partition(model)
    result = metrics.ais_log_partition(model, n_chains=200, betas=500, generator=torch.Generator().manual_seed(0))
    check(model, result, exact)


# ---------------------------------------------------------------- issue 14: a base far from the model's mass

def _all_off_rbm(n_hidden=10, upscale=2, coupling=1.0, off_mass=0.998):
    """The pathology of a CD-trained RBM from a = 0: 99.8 % of the mass on the all-off hidden state.

    Visible biases a = 0 (the all-off state's visible law is uniform over 2^256 images); each
    hidden unit j owns a digit prototype x_j (8x8 digits upscaled to 16x16) through
    W_:j = c (2 x_j - 1), and a common bias shift, found by bisection on the exact hidden
    marginal, leaves exactly `off_mass` on h = 0. The data are the prototypes."""
    digits = el.datasets.load("digits", binarize="threshold")
    first = [int((digits.train_labels == k).nonzero()[0]) for k in range(n_hidden)]
    protos = torch.kron(digits.train[first].reshape(n_hidden, 8, 8), torch.ones(upscale, upscale))
    protos = protos.reshape(n_hidden, -1).double()
    model = el.make("RBM", protos.shape[1], n_hidden=n_hidden).double().requires_grad_(False)
    model.a.zero_()
    model.W.copy_(coupling * (2 * protos.t() - 1))
    H = all_states(n_hidden).double()
    low, high = -500.0, 500.0
    for _ in range(80):
        shift = (low + high) / 2
        model.b.copy_(shift - coupling * protos.sum(1))
        neg_f = H @ model.b + torch.nn.functional.softplus(model.a + H @ model.W.t()).sum(1)
        p_off = torch.exp(neg_f[0] - torch.logsumexp(neg_f, 0)).item()
        low, high = (shift, high) if p_off > off_mass else (low, shift)
    assert p_off == pytest.approx(off_mass, abs=1e-6)
    return model, protos.repeat(20, 1)


def test_ais_from_several_bases_survives_a_data_base_far_from_the_mass():
    """From the data's marginals alone AIS misses the all-off mode (about 6 nats low, with narrow
    bounds that exclude the truth); from the model's own biases it is right. The combined
    estimate reports the largest and warns."""
    model, data = _all_off_rbm()
    exact = metrics.exact_log_partition(model)
    g = torch.Generator().manual_seed(0)
    with pytest.warns(ais.AISDisagreement, match="disagree"):
        result = metrics.ais_log_partition(model, n_chains=50, betas=300, data=data, generator=g)
    data_only, data_se = result.by_base["data"]
    assert exact - data_only > 4 and exact - data_only > 10 * data_se          # the pathology, reproduced
    assert set(result.by_base) == {"data", "model", "uniform"} and result.base != "data"
    assert abs(result.log_z - exact) < 0.15 and result.warning
    # the likelihood from the combined log Z is no longer ~6 nats optimistic
    ll_exact = metrics.exact_log_likelihood(model, data[:10])
    ll, _ = metrics.ais_log_likelihood(model, data[:10], log_z=result)
    assert abs(ll - ll_exact) < 0.15


def test_ais_bases_agree_on_a_benign_model_and_can_be_chosen():
    model = random_rbm(8, 6, seed=1, scale=1.0)
    exact = metrics.exact_log_partition(model)
    data = all_states(8)[::3].double()
    result = metrics.ais_log_partition(model, n_chains=100, betas=300, data=data,
                                       generator=torch.Generator().manual_seed(1))
    assert result.warning is None and set(result.by_base) == {"data", "model", "uniform"}
    assert all(abs(z - exact) < 3 * se + 0.05 for z, se in result.by_base.values())
    one = metrics.ais_log_partition(model, n_chains=100, betas=300, bases="model",
                                    generator=torch.Generator().manual_seed(1))
    assert one.base == "model" and one.by_base == {}
    with pytest.raises(ValueError, match="unknown AIS base"):
        metrics.ais_log_partition(model, bases="nowhere")
