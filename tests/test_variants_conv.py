"""ConvRBM and GaussianConvRBM (Lee et al. 2009) against ground truth.

- A convolutional RBM *is* a dense RBM whose weight matrix repeats the filters
  (W[(c, i+u, j+v), (k, i, j)] = filter[k, c, u, v], built here by index
  arithmetic): free energy, energy and both conditionals must agree.
- Probabilistic max-pooling: the conditional of each block equals enumeration over
  its allowed states (one unit on or none), and log Z is the same whether the
  visible layer, the allowed hidden states, or both are enumerated.
"""
from __future__ import annotations

import itertools

import pytest
import torch

import energylab as el
from energylab.core.couplings import Dense
from energylab.training.objectives import Generative
from energylab.models.rbm import RBM
from energylab.core.units import Bernoulli, Gaussian


def randomise(m, seed, std=0.7):
    torch.manual_seed(seed)
    with torch.no_grad():
        m.coupling.W.copy_(torch.randn_like(m.coupling.W) * std)
        m.b.copy_(torch.randn_like(m.b) * std)
        c = m.coupling.image_shape[0]
        m.a.copy_((torch.randn(c, 1) * std).expand(c, m.n_visible // c).reshape(-1))   # one bias per channel
    return m


def tied_dense(conv):
    """The dense RBM with the equivalent tied weight matrix (built from the filters by index arithmetic)."""
    k, c, fh, fw = conv.filters.shape
    _, h, w = conv.coupling.image_shape
    oh, ow = h - fh + 1, w - fw + 1
    W = torch.zeros(c, h, w, k, oh, ow, dtype=torch.float64)
    for f, ch, u, v, i, j in itertools.product(range(k), range(c), range(fh), range(fw), range(oh), range(ow)):
        W[ch, i + u, j + v, f, i, j] = conv.filters[f, ch, u, v]
    visible = Gaussian if isinstance(conv.visible, Gaussian) else Bernoulli
    dense = RBM(visible(conv.n_visible), Bernoulli(k * oh * ow), Dense(conv.n_visible, k * oh * ow)).double()
    with torch.no_grad():
        dense.coupling.W.copy_(W.reshape(c * h * w, k * oh * ow))
        dense.a.copy_(conv.a)
        dense.b.copy_(conv.b.expand(k, oh, ow).reshape(-1))
    return dense


@pytest.mark.parametrize("variant,image,filters,size", [
    ("ConvRBM", (1, 4, 4), 2, (2, 2)),
    ("ConvRBM", (2, 3, 4), 3, (2, 3)),
    ("GaussianConvRBM", (1, 4, 4), 2, (3, 2)),
])
def test_conv_equals_dense_with_tied_weights(variant, image, filters, size):
    c, h, w = image
    conv = el.make(variant, n_visible=c * h * w, channels=c, image_height=h, image_width=w, n_filters=filters,
                   filter_height=size[0], filter_width=size[1]).double()
    randomise(conv, seed=c * h + filters)
    dense = tied_dense(conv)
    g = torch.Generator().manual_seed(0)
    v = (torch.rand(16, c * h * w, generator=g, dtype=torch.float64) < 0.5).double()
    if variant == "GaussianConvRBM":
        v = torch.randn(16, c * h * w, generator=g, dtype=torch.float64)
    hid = (torch.rand(16, dense.n_hidden, generator=g, dtype=torch.float64) < 0.5).double()
    assert torch.allclose(conv.free_energy(v), dense.free_energy(v), atol=1e-10)
    assert torch.allclose(conv.p_h(v).flatten(1), dense.p_h(v), atol=1e-12)
    assert torch.allclose(conv.p_v(hid), dense.p_v(hid), atol=1e-12)
    assert torch.allclose(conv.energy(v, hid), dense.energy(v, hid), atol=1e-10)
    assert torch.allclose(conv.free_energy_hidden(hid), dense.free_energy_hidden(hid), atol=1e-10)


def pooled_model(seed=0, **hp):
    m = el.make("ConvRBM", n_visible=9, n_filters=2, filter_height=2, filter_width=2, pooling="probabilistic-max",
                pool_size=2, **hp).double()
    return randomise(m, seed, std=1.0)


def test_max_pooling_conditional_equals_enumeration_of_each_block():
    m = pooled_model()                                   # 3x3 image, 2 filters of 2x2: one 2x2 block per filter
    v = (torch.rand(5, 9, generator=torch.Generator().manual_seed(1)) < 0.5).double()
    states = m.hidden.enumerate()                        # every allowed state of the hidden layer: 5 x 5
    assert states.shape == (25, 8) and (states.view(25, 2, 4).sum(2) <= 1).all()
    log_w = -torch.stack([m.energy(v, s.expand(5, 8)) for s in states], 1)   # (5, 25) unnormalised log p(h | v)
    p = torch.softmax(log_w, 1)
    assert torch.allclose(m.p_h(v).flatten(1), p @ states, atol=1e-12)
    pooled = (states.view(25, 2, 4).sum(2) > 0).double()
    assert torch.allclose(m.pooled(v).flatten(1), p @ pooled, atol=1e-12)
    # Samples respect the block constraint and follow the conditional.
    draws = m.sample_h(v[:1].expand(40000, 9), generator=torch.Generator().manual_seed(2)).flatten(1)
    assert (draws.view(-1, 2, 4).sum(2) <= 1).all()
    assert torch.allclose(draws.mean(0), m.p_h(v[:1]).flatten(), atol=0.012)   # ~4.5 std errors


def test_max_pooling_log_partition_three_ways():
    m = pooled_model(seed=3)
    log_z_visible = torch.logsumexp(-m.free_energy(Bernoulli(9).enumerate()), 0)
    log_z_hidden = torch.logsumexp(-m.free_energy_hidden(m.hidden.enumerate()), 0)
    V, S = Bernoulli(9).enumerate(), m.hidden.enumerate()
    pairs = -m.energy(V.repeat_interleave(len(S), 0), S.repeat(len(V), 1))
    log_z_brute = torch.logsumexp(pairs, 0)
    assert torch.allclose(log_z_visible, log_z_brute, atol=1e-10)
    assert torch.allclose(log_z_hidden, log_z_brute, atol=1e-10)
    assert el.metrics.exact_log_partition(m) == pytest.approx(log_z_brute.item(), abs=1e-9)


def test_sparsity_pushes_each_filters_mean_activation_to_the_target():
    m = pooled_model(seed=4, sparsity_target=0.1, sparsity_cost=2.0)
    v = (torch.rand(32, 9, generator=torch.Generator().manual_seed(5)) < 0.5).double()
    m.objective.step(m, v, el.CD(), 1, generator=torch.Generator().manual_seed(6))
    with_sparsity = m.b.grad.clone()
    Generative().step(m, v, el.CD(), 1, generator=torch.Generator().manual_seed(6))
    q = m.p_h(v).mean((0, 2, 3)).view(2, 1, 1)
    assert torch.allclose(with_sparsity - m.b.grad, 2.0 * (q - 0.1), atol=1e-12)


def test_sparsity_in_training_and_tied_visible_bias():
    ds = el.datasets.load("digits", binarize="threshold").subset(256, 64)
    means = {}
    for cost in (0.0, 5.0):
        m = el.make("ConvRBM", n_visible=64, n_filters=4, sparsity_target=0.02, sparsity_cost=cost)
        el.Trainer(m, device="cpu", epochs=3, lr=0.05, eval_every=10**6).fit(ds)
        means[cost] = m.p_h(ds.train).mean().item()
        assert torch.allclose(m.a, m.a[0].expand_as(m.a))          # one visible bias c, as in the paper
    assert abs(means[5.0] - 0.02) < 0.5 * abs(means[0.0] - 0.02), means


def test_schema_errors_are_clear():
    with pytest.raises(ValueError, match="n_visible=60 is not channels"):
        el.make("ConvRBM", n_visible=60)
    with pytest.raises(ValueError, match="multiples of the pool size"):
        el.make("ConvRBM", n_visible=64, filter_height=4, filter_width=4, pooling="probabilistic-max", pool_size=2)
    with pytest.raises(ValueError, match="do not fit"):
        el.make("ConvRBM", n_visible=16, filter_height=5, filter_width=5)
    m = el.make("ConvRBM", n_visible=28 * 28, n_filters=3)
    assert m.filters.shape == (3, 1, 5, 5) and m.hidden.shape == (3, 24, 24)


@pytest.mark.parametrize("variant,hp", [("ConvRBM", {"pooling": "probabilistic-max", "filter_height": 3,
                                                     "filter_width": 3}), ("GaussianConvRBM", {})])
def test_trains_with_the_shared_trainer_and_checkpoints(tmp_path, variant, hp):
    ds = el.datasets.load("digits").subset(128, 64)
    m = el.make(variant, n_visible=64, n_filters=4, **hp)
    trainer = el.Trainer(m, device="cpu", epochs=2)
    history = trainer.fit(ds)
    assert history.last("recon_error") is not None
    trainer.save_checkpoint(tmp_path / "c.pt")
    back = el.load(tmp_path / "c.pt")
    assert torch.allclose(back.free_energy(ds.test), m.free_energy(ds.test))
    assert back.sample(3, k=5).shape == (3, 64) and back.reconstruct(ds.test[:3]).shape == (3, 64)
