"""Learning behaves as the theory says: Gibbs sampling converges, CD-k's bias falls with k,
training raises the exact likelihood and lowers reconstruction error."""
import pytest
import torch

import energylab as el
from energylab.measures import metrics
from energylab.training.objectives import Generative
from energylab.training.samplers import CD
from test_exact import all_states, random_rbm


def test_gibbs_sampler_matches_the_exact_distribution():
    model = random_rbm(4, 3, seed=7)
    exact = metrics.exact_distribution(model)
    g = torch.Generator().manual_seed(0)
    n = 20000
    samples = model.sample(n, k=50, generator=g)
    empirical = metrics.data_distribution(samples)
    tv = 0.5 * (empirical - exact).abs().sum().item()
    # Sampling noise alone gives E[TV] <= 0.5 * sum_i sqrt(p_i / n) <= 0.5 * sqrt(16 / n) ~ 0.014 for
    # 16 states; 0.03 leaves room for that noise and fails for a chain that has not mixed
    # (the uniform start is at TV > 0.1 from this distribution, checked below).
    assert tv < 0.03
    uniform = torch.full_like(exact, 1 / 16)
    assert 0.5 * (uniform - exact).abs().sum().item() > 0.1


def cd_gradient(model, data, k, repeats, seed):
    """The expected CD-k gradient, estimated with `repeats` copies of each example."""
    v = data.repeat(repeats, 1)
    Generative().step(model, v, CD(), k, generator=torch.Generator().manual_seed(seed))
    return torch.cat([-model.W.grad.flatten(), -model.a.grad, -model.b.grad])


def test_cd_bias_falls_as_k_grows():
    model = random_rbm(5, 4, seed=11, scale=1.5)
    data = all_states(5)[[0, 3, 12, 19, 31]]
    exact = metrics.exact_log_likelihood_grad(model, data)
    exact = torch.cat([exact["W"].flatten(), exact["a"], exact["b"]])
    bias = {k: (cd_gradient(model, data, k, 8000, seed=k) - exact).norm().item() for k in (1, 3, 30)}
    # Each estimate averages 40,000 chains; the Monte-Carlo error is ~0.01 in norm here, far
    # below the gaps between these biases.
    assert bias[1] > bias[3] > bias[30]
    assert bias[30] < 0.25 * bias[1]


def test_training_on_bars_and_stripes_raises_the_exact_likelihood():
    data = el.datasets.load("bars-and-stripes", size=3, n_train=500, n_test=200)
    model = el.make("RBM", n_visible=9, n_hidden=8)
    before = metrics.exact_log_likelihood(model, data.test)
    history = el.Trainer(model, lr=0.3, momentum=0.5, epochs=40, batch_size=20, sampler="cd").fit(data)
    after = metrics.exact_log_likelihood(model, data.test)
    assert after > before + 1.5        # from about -6.2 to about -3.4 nats; the optimum is log(1/14) = -2.64
    steps, values = history.series("exact_log_likelihood")
    assert len(values) > 10 and values[-1] > values[0]


def test_training_on_digits_lowers_reconstruction_error():
    data = el.datasets.load("digits")
    model = el.make("RBM", n_visible=64, n_hidden=32)
    before = metrics.reconstruction_error(model, data.test)
    el.Trainer(model, lr=0.05, epochs=5).fit(data)
    after = metrics.reconstruction_error(model, data.test)
    assert after < 0.7 * before
