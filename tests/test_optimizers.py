"""Optimizers (SGD-momentum, Adam, RMSProp) and regularisers (L1, max-norm, sparsity target, freezing)."""
import pytest
import torch

import energylab as el
from energylab.measures import metrics
from energylab.training import regularizers
from test_exact import random_rbm


def one_step(name, grad, lr=0.01):
    model = random_rbm(3, 2)
    before = model.W.detach().clone()
    opt = regularizers.make_optimizer(model, name, lr, momentum=0.0, weight_decay=0.0)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    model.W.grad = grad.clone()
    opt.step()
    return model.W.detach() - before


def test_first_steps_of_each_optimizer_have_their_closed_form():
    g = torch.tensor([[2.0, -0.5], [1e-2, 3.0], [-4.0, 1.0]], dtype=torch.float64)
    assert torch.allclose(one_step("sgd", g), -0.01 * g)
    # Adam's bias-corrected first step is lr * g / (|g| + eps): lr * sign(g).
    assert torch.allclose(one_step("adam", g), -0.01 * torch.sign(g), atol=1e-7)
    # RMSProp (alpha 0.99): g / sqrt(0.01 g^2) = 10 sign(g).
    assert torch.allclose(one_step("rmsprop", g), -0.1 * torch.sign(g), atol=1e-6)
    with pytest.raises(ValueError, match="unknown optimizer"):
        regularizers.make_optimizer(random_rbm(2, 2), "lbfgs", 0.1, 0.0, 0.0)


def test_lean_sgd_step_is_torch_sgd_bit_for_bit_and_shares_its_state_dict():
    """regularizers.SGD replaces torch's generic step for speed; momentum (its first step clones
    the gradient), L2 decay on the weight group only, and live lr/momentum changes must match."""
    ours, theirs = random_rbm(5, 4, seed=2), random_rbm(5, 4, seed=2)
    opt = regularizers.make_optimizer(ours, "sgd", 0.1, momentum=0.5, weight_decay=0.01)
    assert isinstance(opt, regularizers.SGD)
    groups = [{"params": [theirs.W], "weight_decay": 0.01}, {"params": [theirs.a, theirs.b], "weight_decay": 0.0}]
    ref = torch.optim.SGD(groups, lr=0.1, momentum=0.5)
    g = torch.Generator().manual_seed(3)
    for step in range(6):
        if step == 3:                        # a slider moved: live values reach both
            regularizers.set_hyperparameters(opt, 0.05, 0.9, 0.001)
            regularizers.set_hyperparameters(ref, 0.05, 0.9, 0.001)
        for p, q in zip(ours.parameters(), theirs.parameters()):
            p.grad = torch.randn(p.shape, generator=g, dtype=p.dtype)
            q.grad = p.grad.clone()
        theirs.b.grad = ours.b.grad = None if step == 4 else ours.b.grad   # a parameter without a gradient
        opt.step()
        ref.step()
        for p, q in zip(ours.parameters(), theirs.parameters()):
            assert torch.equal(p, q)
    state, ref_state = opt.state_dict(), ref.state_dict()
    assert state["param_groups"] == ref_state["param_groups"]
    for k, s in state["state"].items():
        assert torch.equal(s["momentum_buffer"], ref_state["state"][k]["momentum_buffer"])
    ref.load_state_dict(state)                # interchangeable checkpoints
    seen = []                                 # a registered hook still runs (through torch's own step)
    opt.register_step_post_hook(lambda *args: seen.append(1))
    opt.step()
    assert seen == [1]


def test_l1_sparsity_and_freezing_on_the_gradients():
    model = random_rbm(4, 3, seed=1)
    v = (torch.rand(10, 4, generator=torch.Generator().manual_seed(0)) < 0.5).double()
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    regularizers.add_penalties(model, v, l1=0.1)
    assert torch.allclose(model.W.grad, 0.1 * torch.sign(model.W))
    assert torch.equal(model.a.grad, torch.zeros_like(model.a))
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    regularizers.add_penalties(model, v, sparsity_penalty=2.0, target_activation=0.2)
    excess = model.p_h(v).mean(0) - 0.2          # d CE / d input = q - target (Hinton 2012, section 11)
    assert torch.allclose(model.b.grad, 2.0 * excess)
    assert torch.allclose(model.W.grad, 2.0 * torch.outer(v.mean(0), excess))
    regularizers.add_penalties(model, v, freeze="biases")
    assert model.a.grad is None and model.b.grad is None and model.W.grad is not None
    with pytest.raises(ValueError, match="freeze must be one of"):
        regularizers.frozen(model, "everything")


def test_max_norm_caps_each_hidden_units_weights():
    model = random_rbm(5, 3, seed=2, scale=2.0)
    with torch.no_grad():
        model.W[:, 2] = 0.01
    small = model.W[:, 2].clone()
    regularizers.apply_constraints(model, max_norm=1.0)
    norms = model.W.norm(dim=0)
    assert torch.allclose(norms[:2], torch.ones(2, dtype=torch.float64))
    assert torch.equal(model.W[:, 2], small)       # already within the ball: untouched


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "rmsprop"])
def test_trainer_with_each_optimizer_and_regularisers_learns_bars_and_stripes(optimizer):
    data = el.datasets.load("bars-and-stripes", n_train=200, n_test=50)
    torch.manual_seed(0)
    model = el.make("RBM", n_visible=9, n_hidden=6, init_std=0.1)
    before = metrics.exact_log_likelihood(model, data.train)
    lr = {"sgd": 0.1, "adam": 0.03, "rmsprop": 0.01}[optimizer]
    el.Trainer(model, optimizer=optimizer, lr=lr, momentum=0.9, epochs=60, batch_size=20, max_norm=3.0, l1=1e-4,
               device="cpu", sampler="pcd", eval_every=10 ** 6).fit(data)
    assert metrics.exact_log_likelihood(model, data.train) > before + 0.5
    assert bool((model.W.norm(dim=0) <= 3.0 + 1e-5).all())


def test_trainer_freezing_keeps_parameters_fixed():
    x = (torch.rand(40, 6, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    model = el.make("RBM", n_visible=6, n_hidden=3)
    W, b = model.W.detach().clone(), model.b.detach().clone()
    el.Trainer(model, freeze="weights", epochs=2, batch_size=10, device="cpu").fit(x)
    assert torch.equal(model.W.detach(), W) and not torch.equal(model.b.detach(), b)


def test_schema_exposes_the_choices_with_help():
    variant = el.VARIANTS["RBM"]
    assert set(variant.param("optimizer").choices) == {"sgd", "adam", "rmsprop"}
    for name in ("l1", "max_norm", "sparsity_penalty", "target_activation", "freeze"):
        assert variant.param(name).help
    assert variant.param("l1").live and variant.param("max_norm").live
    with pytest.raises(ValueError, match="optimizer"):
        el.Trainer(el.make("RBM", n_visible=4, n_hidden=2), optimizer="lbfgs")
