"""Metric objects (reset / update / value), each on a case with a known answer."""
import math

import pytest
import torch

from energylab.measures import metrics, monitors
from test_exact import random_rbm


def independent_rbm(nv, nh, seed=0):
    """W = 0: every unit independent, so energies, reconstructions and heat capacities are closed form."""
    model = random_rbm(nv, nh, seed=seed)
    with torch.no_grad():
        model.W.zero_()
    return model


def test_reconstruction_error_of_a_blank_model_is_one_quarter_and_pools_batches():
    model = random_rbm(6, 3)
    with torch.no_grad():
        model.W.zero_(), model.a.zero_()
    m = monitors.ReconstructionError()
    g = torch.Generator().manual_seed(0)
    for n in (5, 17):
        m.update(model, (torch.rand(n, 6, generator=g) < 0.5).double())
    assert m.value() == pytest.approx(0.25)        # reconstruction 0.5 of every bit of 0/1 data
    m.reset()
    with pytest.raises(ValueError, match="no updates"):
        m.value()
    v = (torch.rand(9, 6, generator=g) < 0.5).double()
    m.update(random_rbm(6, 3, seed=1), v)
    assert m.value() == pytest.approx(metrics.reconstruction_error(random_rbm(6, 3, seed=1), v))


def test_energy_distance_known_values():
    x, y = torch.zeros(4, 1), torch.ones(3, 1)
    assert monitors.energy_distance(x, y).item() == pytest.approx(2.0)   # 2 |0 - 1| - 0 - 0
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(3000, 1, generator=g), torch.randn(3000, 1, generator=g) + 1.0
    # Closed form for N(0,1) vs N(1,1): 2 E|Z| with Z ~ N(1, 2), minus 2 E|X - X'| = 2 * 2 / sqrt(pi).
    s, mu = math.sqrt(2), 1.0
    e_abs = s * math.sqrt(2 / math.pi) * math.exp(-mu ** 2 / (2 * s * s)) + mu * math.erf(mu / (s * math.sqrt(2)))
    expected = 2 * e_abs - 2 * 2 / math.sqrt(math.pi)
    m = monitors.EnergyDistance()
    m.update(None, a, b)
    assert m.value() == pytest.approx(expected, abs=0.03)


def test_free_energy_gap_closed_form():
    model = independent_rbm(5, 3)
    g = torch.Generator().manual_seed(0)
    train, test = (torch.rand(40, 5, generator=g) < 0.3).double(), (torch.rand(30, 5, generator=g) < 0.7).double()
    m = monitors.FreeEnergyGap()
    m.update(model, train[:20], test[:10])
    m.update(model, train[20:], test[10:])
    # F(v) = -a.v - sum_j softplus(b_j): the gap is -a . (mean test - mean train).
    expected = -(model.a * (test.mean(0) - train.mean(0))).sum().item()
    assert m.value() == pytest.approx(expected, abs=1e-9)
    assert m.value() == pytest.approx(metrics.free_energy_gap(model, train, test), abs=1e-9)


def test_heat_capacity_of_independent_units():
    model = independent_rbm(4, 3, seed=2)
    p, q = torch.sigmoid(model.a), torch.sigmoid(model.b)
    exact = ((model.a ** 2 * p * (1 - p)).sum() + (model.b ** 2 * q * (1 - q)).sum()).item() / 7
    assert monitors.exact_heat_capacity(model) == pytest.approx(exact, rel=1e-4)
    g = torch.Generator().manual_seed(0)
    m = monitors.HeatCapacity()
    for _ in range(4):
        v = (torch.rand(5000, 4, generator=g, dtype=torch.float64) < p).double()
        m.update(model, v, generator=g)
    assert m.value() == pytest.approx(exact, rel=0.05)


def test_weight_sparsity_and_square():
    model = random_rbm(4, 2)
    with torch.no_grad():
        model.W.copy_(torch.tensor([[3.0, 1.0], [0.0, 1.0], [0.0, -1.0], [0.0, 1.0]]))
    m = monitors.WeightSparsity()
    m.update(model)
    assert m.value() == pytest.approx((0.25 + 1.0) / 2)    # a single weight: 1/n; equal magnitudes: 1
    w2 = monitors.WeightSquare()
    w2.update(model)
    assert w2.value() == pytest.approx((9 + 4) / 8)


def test_kl_estimates():
    g = torch.Generator().manual_seed(0)
    p, q = torch.randn(2000, 1, generator=g), torch.randn(2000, 1, generator=g) + 1.0
    assert monitors.knn_kl(p, q, k=5) == pytest.approx(0.5, abs=0.1)       # KL(N(0,1) || N(1,1)) = 1/2
    bits_p = torch.tensor([[1.0, 0.0]] * 50 + [[0.0, 1.0]] * 50)
    bits_q = torch.tensor([[1.0, 0.0]] * 75 + [[0.0, 1.0]] * 25)
    m = monitors.KLEstimate()
    m.update(None, bits_p, bits_q)
    # 1/2 log(0.5 / 0.75) + 1/2 log(0.5 / 0.25), with q smoothed by 1/2 count per seen row.
    q_s = torch.tensor([75.5, 25.5], dtype=torch.float64) / 101
    assert m.value() == pytest.approx((0.5 * (0.5 / q_s).log()).sum().item(), abs=1e-9)
    with pytest.raises(ValueError, match="repeated samples"):
        monitors.knn_kl(bits_p, bits_q)


def test_exact_kl_on_bars_and_stripes_of_a_uniform_model():
    model = random_rbm(9, 4)
    with torch.no_grad():
        model.W.zero_(), model.a.zero_(), model.b.zero_()
    m = monitors.ExactKL(size=3)
    assert m.patterns.shape == (14, 9)                  # 2 * 2^3 - 2 distinct 3x3 images
    m.update(model)
    assert m.value() == pytest.approx(math.log(2 ** 9 / 14), abs=1e-9)
    with pytest.raises(ValueError, match="9 pixels"):
        m.update(random_rbm(4, 2))
