"""Unit types (core/units.py: base.py, continuous.py, onehot.py): each law against its ground truth.

A unit type answers for p(x | I) ∝ exp(-beta (E_x(x) - I s(x))). Here the log-partition and the
conditional mean are checked against a sum over every state (discrete types) or a numerical
integral over a fine grid (Gaussian types), the draws against the declared mean with a tolerance
from their standard error, and d log Z / dI against beta E[s(x)] (what the free-energy gradient
and the CD statistics rely on).
"""
import math

import pytest
import torch

from energylab.core.units import (
    SELU,
    Bernoulli,
    Gaussian,
    LearnedVarianceGaussian,
    NoisyReLU,
    OneHot,
    SigmoidMeanField,
    StandardizedGaussian,
    StandardizedLearnedVarianceGaussian,
)

BETAS = [1.0, 0.4]


def fields(n, batch=5, seed=0, scale=1.5):
    g = torch.Generator().manual_seed(seed)
    I = torch.randn(batch, n, generator=g, dtype=torch.float64) * scale
    bias = torch.randn(n, generator=g, dtype=torch.float64)
    return I, bias


def standardized(layer, loc=2.0, scale=3.0):
    layer.loc.fill_(loc)
    layer.scale.fill_(scale)
    return layer


def continuous_layers():
    """One-unit Gaussian layers (sigma 0.7), every energy form, raw and standardised."""
    return {
        "gaussian": Gaussian(1, 0.7),
        "learned-hinton": LearnedVarianceGaussian(1, 0.7, "hinton"),
        "learned-cho": LearnedVarianceGaussian(1, 0.7, "cho"),
        "standardized": standardized(StandardizedGaussian(1, 0.7)),
        "standardized-learned-cho": standardized(StandardizedLearnedVarianceGaussian(1, 0.7, "cho")),
    }


# ------------------------------------------------------------------ discrete types: enumeration

@pytest.mark.parametrize("layer", [Bernoulli(4), OneHot(6, group_size=3), OneHot(4)], ids=["bernoulli", "onehot-2x3",
                                                                                           "onehot-1x4"])
@pytest.mark.parametrize("beta", BETAS)
def test_discrete_log_partition_and_mean_equal_enumeration(layer, beta):
    I, bias = fields(layer.size)
    X = layer.enumerate()                                   # every state, one per row
    assert X.shape[0] == layer.n_states
    logits = -beta * (layer.energy(X, bias)[None, :] - I @ layer.stat(X).t())     # (batch, states)
    with torch.no_grad():
        assert torch.allclose(layer.log_partition(I.clone(), bias, beta), torch.logsumexp(logits, 1), atol=1e-10)
        assert torch.allclose(layer.mean(I.clone(), bias, beta), torch.softmax(logits, 1) @ X, atol=1e-10)


def test_bernoulli_enumerates_in_binary_order_and_by_slices():
    layer = Bernoulli(3)
    X = layer.enumerate()
    assert X.tolist()[:3] == [[0, 0, 0], [0, 0, 1], [0, 1, 0]] and X.tolist()[-1] == [1, 1, 1]
    assert torch.equal((X * torch.tensor([4.0, 2.0, 1.0], dtype=X.dtype)).sum(1), torch.arange(8, dtype=X.dtype))
    assert torch.equal(torch.cat([layer.enumerate(start=0, stop=3), layer.enumerate(start=3)]), X)


def test_one_hot_enumerates_every_combination_of_its_groups_once():
    layer = OneHot(6, group_size=3)
    X = layer.enumerate()
    assert X.shape == (9, 6) and layer.n_groups == 2
    assert bool((X.reshape(9, 2, 3).sum(-1) == 1).all())
    assert len({tuple(r) for r in X.tolist()}) == 9
    assert torch.equal(torch.cat([layer.enumerate(stop=4), layer.enumerate(start=4)]), X)


# ------------------------------------------------------------------ Gaussian types: integration

GRID = torch.linspace(-80.0, 80.0, 400_001, dtype=torch.float64)[:, None]     # one unit, raw data units


def integrate(layer, I, bias, beta):
    """(log Z, E[x], Var[x]) for each field I (shape (batch, 1)) by the trapezoid rule on GRID."""
    with torch.no_grad():
        E, s = layer.energy(GRID, bias), layer.stat(GRID)[:, 0]
        out = []
        for i in I[:, 0]:
            log_f = -beta * (E - i * s)
            top = log_f.max()
            f = (log_f - top).exp()
            z = torch.trapezoid(f, GRID[:, 0])
            mean = torch.trapezoid(f * GRID[:, 0], GRID[:, 0]) / z
            var = torch.trapezoid(f * (GRID[:, 0] - mean) ** 2, GRID[:, 0]) / z
            out.append((z.log() + top, mean, var))
        return [torch.stack(t) for t in zip(*out)]


@pytest.mark.parametrize("name", list(continuous_layers()))
@pytest.mark.parametrize("beta", BETAS)
def test_gaussian_log_partition_and_mean_equal_numerical_integration(name, beta):
    layer = continuous_layers()[name].double()
    I, bias = fields(1, batch=4, seed=3)
    log_z, mean, _ = integrate(layer, I, bias, beta)
    with torch.no_grad():
        assert torch.allclose(layer.log_partition(I, bias, beta), log_z, atol=1e-7)
        assert torch.allclose(layer.mean(I, bias, beta)[:, 0], mean, atol=1e-7)


@pytest.mark.parametrize("name", list(continuous_layers()))
def test_gaussian_draws_have_the_integrated_mean_and_variance(name):
    layer, beta, n = continuous_layers()[name].double(), 0.4, 40_000
    I, bias = fields(1, batch=1, seed=4)
    _, mean, var = integrate(layer, I, bias, beta)
    with torch.no_grad():
        x = layer.sample(I.expand(n, 1), bias, beta, torch.Generator().manual_seed(0))[:, 0]
    # 5 standard errors of the sample mean and of the sample variance (4th moment of a normal: 3 var^2)
    assert abs(x.mean() - mean) < 5 * math.sqrt(var / n)
    assert abs(x.var() - var) < 5 * math.sqrt(2 * var ** 2 / n)


# ------------------------------------------------------------------ every type: draws and gradients

STOCHASTIC = {
    "bernoulli": lambda: Bernoulli(5),
    "gaussian": lambda: Gaussian(5, 0.5),
    "standardized": lambda: standardized(StandardizedGaussian(5, 1.0), loc=-1.0, scale=0.5),
    "noisy-relu": lambda: NoisyReLU(5),
}


@pytest.mark.parametrize("name", list(STOCHASTIC))
@pytest.mark.parametrize("beta", BETAS)
def test_draws_average_to_the_declared_conditional_mean(name, beta):
    layer, n = STOCHASTIC[name]().double(), 40_000
    I, bias = fields(5, batch=1, seed=5)
    with torch.no_grad():
        mean = layer.mean(I.clone(), bias, beta)[0]
        x = layer.sample(I.expand(n, 5).clone(), bias, beta, torch.Generator().manual_seed(1))
    assert not torch.equal(x[0], mean)                        # a real draw, not the mean in disguise
    se = x.std(0) / math.sqrt(n)       # + 5 / n: a unit almost never on shows no spread to estimate it from
    assert bool(((x.mean(0) - mean).abs() < 5 * se + 5 / n).all()), (x.mean(0), mean)
    if name == "bernoulli":
        assert set(x.unique().tolist()) <= {0.0, 1.0}


def test_noisy_relu_mean_is_that_of_the_rectified_gaussian():
    """E[max(0, x + N(0, sigmoid(x)))] by integration over the Gaussian, for x = beta (I + b)."""
    layer = NoisyReLU(3).double()
    I, bias = fields(3, batch=2, seed=6)
    x = (I + bias).flatten()
    s = torch.sigmoid(x).sqrt()
    z = torch.linspace(-12, 12, 200_001, dtype=torch.float64)
    phi = torch.exp(-0.5 * z ** 2) / math.sqrt(2 * math.pi)
    expected = torch.stack([torch.trapezoid(torch.clamp_min(xi + si * z, 0) * phi, z) for xi, si in zip(x, s)])
    assert torch.allclose(layer.mean(I, bias).flatten(), expected, atol=1e-8)


GRADIENT_TYPES = {
    "bernoulli": lambda: Bernoulli(4),
    "onehot": lambda: OneHot(4, group_size=2),
    "gaussian": lambda: Gaussian(4, 0.6),
    "learned-hinton": lambda: LearnedVarianceGaussian(4, 0.6, "hinton"),
    "learned-cho": lambda: LearnedVarianceGaussian(4, 0.6, "cho"),
    "standardized": lambda: standardized(StandardizedGaussian(4, 0.6)),
    "selu": lambda: SELU(4),                         # its log-partition is defined so that this holds
    "sigmoid-mean-field": lambda: SigmoidMeanField(4),
}


@pytest.mark.parametrize("name", list(GRADIENT_TYPES))
@pytest.mark.parametrize("beta", BETAS)
def test_log_partition_gradient_is_beta_times_the_mean_statistic(name, beta):
    """d log Z(I) / dI = beta E[s(x) | I]: the free energy's gradient is the CD statistic."""
    layer = GRADIENT_TYPES[name]().double()
    I, bias = fields(4, batch=3, seed=7)
    I.requires_grad_(True)
    grad, = torch.autograd.grad(layer.log_partition(I, bias, beta).sum(), I)
    with torch.no_grad():
        expected = beta * layer.stat(layer.mean(I.detach().clone(), bias, beta))
    assert torch.allclose(grad, expected, atol=1e-10)


@pytest.mark.parametrize("layer", [SELU(4), SigmoidMeanField(4)], ids=["selu", "sigmoid-mean-field"])
def test_mean_field_types_are_deterministic_by_definition(layer):
    I, bias = fields(4, seed=8)
    mean = layer.double().mean(I.clone(), bias, 0.7)
    assert torch.equal(layer.sample(I.clone(), bias, 0.7, torch.Generator().manual_seed(0)), mean)
    assert all(torch.equal(t, mean) for t in layer.mean_and_sample(I.clone(), bias, 0.7))
    assert layer.exact_free_energy is False


def test_samples_are_one_hot_with_the_conditional_frequencies():
    layer = OneHot(6, group_size=3)
    I = torch.tensor([[0.5, -1.0, 2.0, 0.0, 0.3, -0.3]], dtype=torch.float64).expand(20000, -1)
    bias = torch.zeros(6, dtype=torch.float64)
    p, x = layer.mean_and_sample(I, bias, 0.7, torch.Generator().manual_seed(0))
    layer.check(x)
    assert torch.allclose(x.mean(0), p[0], atol=0.015)
    assert torch.allclose(p[0].reshape(2, 3), torch.softmax(0.7 * I[0].reshape(2, 3), -1))


# ------------------------------------------------------------------ standardisation and checks

def test_standardisation_is_fitted_once_and_its_jacobian_enters_log_z():
    layer = StandardizedGaussian(2).double()
    data = torch.tensor([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0]], dtype=torch.float64)
    assert layer.fit_to_data(data)
    assert torch.allclose(layer.loc, torch.tensor([3.0, 5.0], dtype=torch.float64))
    assert layer.scale[0] == 2.0 and 0 < layer.scale[1] <= 2.0 * layer.min_relative_scale   # a constant unit: floor
    assert not layer.fit_to_data(data * 10)                  # fitted once: a second call keeps the first fit
    assert layer.loc[0] == 3.0 and layer.fit_to_data(data * 10, refit=True) and layer.loc[0] == 30.0
    plain = Gaussian(2).double()
    I, bias = fields(2, seed=9)
    with torch.no_grad():
        gap = layer.log_partition(I, bias) - plain.log_partition(I, bias)
    assert torch.allclose(gap, torch.log(layer.scale).sum().expand(5))


def test_states_a_type_cannot_take_are_refused_with_the_fix():
    with pytest.raises(ValueError, match=r"\[0, 1\].*Gaussian visible"):
        Bernoulli(2).check(torch.tensor([[0.0, 2.0]]))
    with pytest.raises(ValueError, match="NaN or infinite"):
        Gaussian(2).check(torch.tensor([[0.0, float("nan")]]))
    with pytest.raises(ValueError, match="negative"):
        NoisyReLU(2).check(torch.tensor([[0.0, -0.5]]))
    with pytest.raises(ValueError, match="one-hot rows"):
        OneHot(4, group_size=2).check(torch.tensor([[1.0, 1.0, 0.0, 1.0]]))
    with pytest.raises(ValueError, match="group_size that divides"):
        OneHot(5, group_size=2)
    with pytest.raises(ValueError, match="sigma must be positive"):
        Gaussian(3, sigma=0.0)
    with pytest.raises(ValueError, match="energy_form"):
        LearnedVarianceGaussian(3, energy_form="paysage")
    Bernoulli(2).check(torch.tensor([[0.25, 1.0]]))            # probabilities are allowed as data
