"""Objectives (training/objectives.py): the gradients they set against exact ones.

The generative objective with an *exact* negative phase (every visible state as a particle,
weighted by its probability) must set minus the exact log-likelihood gradient, on the
closed-form statistics path and on the autograd path alike. The discriminative objective's loss
is -log p(y | x) summed out over every (y, h) of the joint energy written from its formula.
"""
import pytest
import torch

import energylab as el
from energylab.measures import metrics
from energylab.models.rbm import RBM
from energylab.training.objectives import Discriminative, Generative, Hybrid, Sparse
from energylab.training.samplers import CD, PCD
from test_exact import all_states
from test_rbm import tiny

NV, NH = 4, 3


class OneState:
    """A 'sampler' whose negative phase is the single visible state `v` (with E[h | v])."""

    def __init__(self, v):
        self.v = v[None]

    def negative(self, model, v_pos, h_pos, k, beta=1.0, generator=None):
        return self.v, model.p_h(self.v)


class AutogradRBM(RBM):
    """The same model, made to take the free-energy-difference (autograd) path."""

    explicit_stats = False


def exact_negative_phase_grads(model, data):
    """The objective's gradients with the model term an exact expectation: the gradient is affine
    in the negative particle, so sum_s p(s) grad(particle = s) is its value for the exact phase."""
    p = metrics.exact_distribution(model)
    total = {n: torch.zeros_like(t) for n, t in model.named_parameters()}
    for s, p_s in zip(all_states(NV), p):
        Generative().step(model, data, OneState(s), k=1, generator=torch.Generator().manual_seed(0))
        for n, t in model.named_parameters():
            total[n] += p_s * t.grad
    return total


def exact_log_likelihood_by_enumeration(model, data):
    V, H = all_states(NV), all_states(NH)
    energies = lambda v: torch.stack([model.energy(v, h.expand(len(v), -1)) for h in H], 1)
    return torch.logsumexp(-energies(data), 1).mean() - torch.logsumexp(-energies(V).flatten(), 0)


@pytest.mark.parametrize("path", ["explicit statistics", "autograd"])
def test_generative_gradient_with_an_exact_negative_phase_is_the_likelihood_gradient(path):
    model = tiny(seed=8, scale=1.2)
    if path == "autograd":
        model.__class__ = AutogradRBM
        assert not model.explicit_stats
    data = all_states(NV)[[0, 3, 3, 9, 14]]
    got = exact_negative_phase_grads(model, data)
    ll = exact_log_likelihood_by_enumeration(model, data)
    autograd = dict(zip(["coupling.W", "a", "b"], torch.autograd.grad(ll, [model.W, model.a, model.b])))
    measured = metrics.exact_log_likelihood_grad(model, data)
    for name, key in (("coupling.W", "W"), ("a", "a"), ("b", "b")):
        assert torch.allclose(got[name], -autograd[name], atol=1e-10), name      # descent direction: -d log L
        assert torch.allclose(got[name], -measured[key], atol=1e-10), name


# -------------------------------------------------------------------- the classification RBM

def classifier(variant="DiscriminativeRBM", seed=0, **hp):
    torch.manual_seed(seed)
    model = el.make(variant, n_visible=NV, n_hidden=NH, n_classes=3, init_std=1.0, **hp).double()
    with torch.no_grad():
        for p in (model.a, model.b, model.d):
            p.normal_(0, 1)
    return model


def log_p_y_by_enumeration(m, x):
    """log p(y | x) from E(x, y, h) = -a.x - b.h - d.y - x W h - y U h, every (y, h) summed."""
    Y, H = torch.eye(3, dtype=torch.float64), all_states(NH)
    minus_e = ((x @ m.a)[:, None, None] + (H @ m.b)[None, None, :] + m.d[None, :, None]
               + (x @ m.W @ H.t())[:, None, :] + (Y @ m.U @ H.t())[None, :, :])        # (x, y, h)
    return torch.log_softmax(torch.logsumexp(minus_e, 2), 1)


def test_discriminative_loss_and_gradient_are_those_of_the_exact_class_conditional():
    m = classifier(seed=1)
    x, y = all_states(NV)[[1, 6, 6, 13]], torch.tensor([0, 2, 1, 1])
    exact = -log_p_y_by_enumeration(m, x)[torch.arange(4), y].mean()
    assert Discriminative().loss(m, x, y).item() == pytest.approx(exact.item(), abs=1e-10)
    Discriminative().step(m, (x, y), None, 1)
    params = [m.W, m.U, m.a, m.b, m.d]
    expected = torch.autograd.grad(exact, params, allow_unused=True)
    for p, e in zip(params, expected):
        e = torch.zeros_like(p) if e is None else e
        assert torch.allclose(p.grad if p.grad is not None else torch.zeros_like(p), e, atol=1e-10)


def test_hybrid_without_its_generative_term_is_the_discriminative_objective():
    m = classifier(seed=2)
    x, y = all_states(NV)[[2, 7, 11]], torch.tensor([1, 0, 2])
    Discriminative().step(m, (x, y), None, 1)
    want = {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None}
    assert Hybrid(alpha=0.0).step(m, (x, y), CD(), 1) is None
    assert {n for n, p in m.named_parameters() if p.grad is not None} == set(want)
    assert all(torch.equal(p.grad, want[n]) for n, p in m.named_parameters() if p.grad is not None)
    Hybrid(alpha=0.5).step(m, (x, y), CD(), 1, generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(m.W.grad, want["coupling.W"])             # alpha > 0 adds the joint's term


def test_labelled_objectives_name_what_they_need():
    m = classifier(seed=3)
    with pytest.raises(ValueError, match=r"labelled batches \(v, y\)"):
        Discriminative().step(m, all_states(NV)[:2], None, 1)
    with pytest.raises(ValueError, match="sampler='cd'"):
        Hybrid(alpha=0.5).step(m, (all_states(NV)[:2], torch.tensor([0, 1])), PCD(), 1)


def test_sparse_adds_the_sparsity_target_to_the_generative_gradient():
    """Lee et al. 2008: b moves by cost * (q - target), q the mean hidden activation of the batch."""
    data = all_states(NV)[[1, 5, 10, 15]]
    grads = {}
    for cost in (0.0, 0.3):
        model = tiny(seed=9)
        objective = Sparse(target=0.1, cost=cost) if cost else Generative()
        objective.step(model, data, CD(), 1, generator=torch.Generator().manual_seed(2))
        grads[cost] = (model.W.grad.clone(), model.b.grad.clone(), model.a.grad.clone())
    model = tiny(seed=9)
    excess = model.p_h(data).mean(0).detach() - 0.1
    assert torch.allclose(grads[0.3][1] - grads[0.0][1], 0.3 * excess, atol=1e-12)
    assert torch.allclose(grads[0.3][0] - grads[0.0][0], 0.3 * torch.outer(data.mean(0), excess), atol=1e-12)
    assert torch.equal(grads[0.3][2], grads[0.0][2])                   # the visible bias is untouched
