"""The dropout family against its papers: test-time rescaling, a mask kept through the chain,
the thinned network's free energy and gradient, DropConnect's masked weights, E-Dropout's formula."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import energylab as el
from energylab.training.objectives import Generative, set_contrastive_grads
from energylab.training.samplers import CD


def random_model(name, n_visible=6, n_hidden=5, seed=0, **hp):
    torch.manual_seed(seed)
    m = el.make(name, n_visible=n_visible, n_hidden=n_hidden, init_std=0.5, **hp).double()
    with torch.no_grad():
        m.a.normal_(0, 0.5)
        m.b.normal_(0, 0.5)
    return m


def plain_copy(m, scale):
    plain = el.make("RBM", n_visible=m.n_visible, n_hidden=m.n_hidden).double()
    with torch.no_grad():
        plain.coupling.W.copy_(scale * m.W)
        plain.a.copy_(m.a)
        plain.b.copy_(m.b)
    return plain


def binary(n, d, seed=1):
    return (torch.rand(n, d, generator=torch.Generator().manual_seed(seed)) < 0.5).double()


@pytest.mark.parametrize("name,scale", [("DropoutRBM", 0.7), ("DropConnectRBM", 0.7), ("EDropoutRBM", 1.0)])
def test_test_time_model_is_the_rescaled_rbm(name, scale):
    """Outside a batch: Dropout and DropConnect are the RBM with W' = p W; E-Dropout the full RBM."""
    hp = {} if name == "EDropoutRBM" else {"p": 0.7}
    m = random_model(name, **hp)
    plain = plain_copy(m, scale)
    v, h = binary(7, 6), binary(7, 5, seed=2)
    assert torch.allclose(m.p_h(v), plain.p_h(v))
    assert torch.allclose(m.p_v(h), plain.p_v(h))
    assert torch.allclose(m.free_energy(v), plain.free_energy(v))
    assert torch.allclose(m.energy(v, h), plain.energy(v, h))
    assert el.metrics.exact_log_partition(m) == pytest.approx(el.metrics.exact_log_partition(plain), rel=1e-12)


def test_dropout_mask_is_drawn_once_per_batch_and_kept_through_the_chain():
    m = random_model("DropoutRBM", p=0.5)
    seen = []
    draw = m.mask.mask_for
    m.mask.mask_for = lambda field: seen.append(draw(field).clone()) or seen[-1]
    hidden = []
    mean_and_sample = m.hidden.mean_and_sample
    m.hidden.mean_and_sample = lambda *a, **k: hidden.append(mean_and_sample(*a, **k)) or hidden[-1]
    v = binary(16, 6)
    g = torch.Generator().manual_seed(0)
    Generative().step(m, v, CD(), k=5, generator=g)
    assert m.mask.draws == 1 and not m.mask.active
    assert len(seen) >= 2 * 5 and all(torch.equal(s, seen[0]) for s in seen)
    dropped = seen[0] == 0
    assert dropped.any() and (~dropped).any()
    for mean, sample in hidden:                      # dropped units are off at every step
        assert (mean[dropped] == 0).all() and (sample[dropped] == 0).all()
    assert (m.W.grad[:, dropped.all(0)] == 0).all()  # a unit dropped in every case gets no update
    Generative().step(m, v, CD(), k=1, generator=g)
    assert m.mask.draws == 2 and not torch.equal(seen[-1], seen[0])    # a new batch, a new mask


def test_masked_free_energy_and_gradient_are_those_of_the_thinned_rbm():
    """Per case, F equals the free energy of the RBM with only the kept hidden units, and the
    explicit CD statistics equal autograd of the masked free-energy difference."""
    m = random_model("DropoutRBM", p=0.6)
    v, v_neg = binary(9, 6), binary(9, 6, seed=5)
    g = torch.Generator().manual_seed(3)
    m.begin_batch(v, g)
    r = m.mask.masks[9]
    f = m.free_energy(v)
    for i in range(9):
        keep = r[i] == 1
        thinned = -(v[i] @ m.a) - F.softplus(v[i] @ m.W[:, keep] + m.b[keep]).sum()
        assert f[i].item() == pytest.approx(thinned.item(), rel=1e-12)
    with torch.no_grad():
        h_pos, h_neg = m.p_h(v), m.p_h(v_neg)
    set_contrastive_grads(m, v, h_pos, v_neg, h_neg)
    explicit = [m.W.grad.clone(), m.a.grad.clone(), m.b.grad.clone()]
    loss = m.free_energy(v).mean() - m.free_energy(v_neg).mean()
    auto = torch.autograd.grad(loss, [m.coupling.W, m.a, m.b])
    m.end_batch()
    for e, a in zip(explicit, auto):
        assert torch.allclose(e, a)


def test_dropconnect_masks_weights_per_batch_and_updates_only_kept_weights():
    m = random_model("DropConnectRBM", p=0.5)
    v = binary(12, 6)
    m.begin_batch(v, torch.Generator().manual_seed(0))
    M = m.mask.mask.clone()
    assert torch.allclose(m.hidden_field(v), v @ (M * m.W))
    assert torch.allclose(m.hidden_field(v), v @ (M * m.W))            # the same mask on every call
    m.end_batch()
    assert not m.explicit_stats                                       # the gradient goes through M * W
    m.mask.begin_batch = lambda model, v, generator=None: setattr(m.mask, "mask", M) or setattr(m.mask, "active", True)
    Generative().step(m, v, CD(), k=3, generator=torch.Generator().manual_seed(1))
    assert (m.W.grad[M == 0] == 0).all() and (m.W.grad[M == 1] != 0).any()


def test_energy_dropout_mask_follows_the_importance_formula():
    m = random_model("EDropoutRBM", n_visible=8, n_hidden=6)
    v = binary(10, 8)
    # recompute the paper's quantities with the same random stream
    g = torch.Generator().manual_seed(7)
    p_pos, h_pos = m.hidden.mean_and_sample(v @ m.W, m.b, 1.0, g)
    v_neg = m.sample_v(h_pos, generator=g)
    p_neg, h_neg = m.hidden.mean_and_sample(v_neg @ m.W, m.b, 1.0, g)
    energy = lambda x, h: -(x @ m.a) - (h @ m.b) - ((x @ m.W) * h).sum(1)
    importance = (p_neg / p_pos) / (energy(v_neg, h_neg) - energy(v, h_pos)).abs()[:, None]
    importance = importance / importance.max(0).values
    u = torch.rand(importance.shape, generator=g, dtype=importance.dtype)
    expected = (importance < u).double()
    m.begin_batch(v, torch.Generator().manual_seed(7))
    assert torch.equal(m.mask.masks[10], expected)
    assert torch.equal((m.p_h(v) == 0).double(), 1 - expected)        # dropped units are off
    m.end_batch()
    # a PCD chain of another count has no per-case mask: a clear error, not a silent guess
    with pytest.raises(ValueError, match="sampler='cd'"):
        el.Trainer(m.float(), device="cpu", sampler="pcd", batch_size=7, epochs=1).fit(binary(10, 8).float())


@pytest.mark.parametrize("p", [0.0, 1.5])
def test_retain_probability_is_validated(p):
    with pytest.raises(ValueError, match="'p'"):
        el.make("DropoutRBM", n_visible=4, p=p)
    assert "RETAIN" in el.VARIANTS["DropoutRBM"].param("p").help


@pytest.mark.parametrize("name,hp", [("DropoutRBM", {"p": 0.8}), ("DropConnectRBM", {"p": 0.8}),
                                     ("EDropoutRBM", {})])
def test_training_improves_the_test_time_likelihood(name, hp):
    """Bars-and-stripes 3x3: exact log-likelihood of the test-time model, from log 2^-9 = -6.24
    towards log(1/14) = -2.64 (the plain RBM reaches -3.3 with these settings)."""
    d = el.datasets.load("bars-and-stripes", size=3, n_train=300, n_test=100)
    torch.manual_seed(0)
    m = el.make(name, n_visible=9, n_hidden=12, init_std=0.1, **hp)
    before = el.metrics.exact_log_likelihood(m, d.train)
    el.Trainer(m, device="cpu", epochs=40, batch_size=10, lr=0.1, momentum=0.5, k=3, eval_every=10**9).fit(d)
    after = el.metrics.exact_log_likelihood(m, d.train)
    assert after > before + 0.8, (before, after)
