"""Phases of one run under the outer trainer (training/phases.py): a DBM's layerwise pretraining
(training/dbm.py) and a DBN's fine-tuning (layerwise.py) run through the trainer's own loop.

Ground truth: the pretraining views' conditionals and a whole pretraining against a direct
computation of Salakhutdinov & Hinton's doubled CD-1 updates with the same random draws; a run
that pretrains inside `fit` against `pretrain` followed by joint training; checkpoints taken
inside pretraining (at and between epoch ends) resumed against an uninterrupted run; pause,
single steps and stop during pretraining and fine-tuning; a divergence during fine-tuning.
"""
import threading
import time
from contextlib import contextmanager

import pytest
import torch

import energylab as el
from energylab.models import dbm_training


class At(el.Callback):
    """Run `action(trainer)` once, at the end of batch number `step` (or of epoch number `epoch`)."""

    def __init__(self, action, step=None, epoch=None):
        self.action, self.step, self.epoch = action, step, epoch

    def on_batch_end(self, trainer):
        if trainer.step == self.step:
            self.action(trainer)

    def on_epoch_end(self, trainer):
        if trainer.epoch == self.epoch:
            self.action(trainer)


def random_dbm(sizes, seed=0, dtype=torch.float64, **options):
    torch.manual_seed(seed)
    model = el.make("DBM", n_visible=sizes[0], hidden_layers=",".join(map(str, sizes[1:])), **options).to(dtype)
    with torch.no_grad():
        for c in model.couplings:
            c.W.normal_(0, 0.5)
        for b in model.biases:
            b.normal_(0, 0.5)
    return model


def binary(n, d, seed=1):
    return (torch.rand(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) < 0.5).double()


def test_layer_views_share_the_dbm_parameters_and_have_the_doubled_conditionals():
    model = random_dbm([5, 4, 3, 2])
    v, W, c = binary(7, 5), [cp.W for cp in model.couplings], list(model.biases)
    for l, (up, down) in zip((1, 2, 3), ((2, 1), (1, 1), (1, 2))):
        view = dbm_training.layer_view(model, l)
        assert view.W is W[l - 1] and view.a is c[l - 1] and view.b is c[l]
        x = binary(7, model.sizes[l - 1], seed=l)
        h = binary(7, model.sizes[l], seed=10 + l)
        assert torch.allclose(view.p_h(x), torch.sigmoid(c[l] + up * x @ W[l - 1]), atol=1e-12)
        assert torch.allclose(view.p_v(h), torch.sigmoid(c[l - 1] + down * h @ W[l - 1].t()), atol=1e-12)
    assert dbm_training.layer_view(model, 2).exact_units == 3 and dbm_training.layer_view(model, 1).exact_units > 10 ** 6
    single = random_dbm([4, 3])                 # depth 1: the plain RBM, nothing doubled
    assert dbm_training.factors(1, 1) == (1.0, 1.0)
    assert torch.allclose(dbm_training.layer_view(single, 1).p_h(v[:, :4]),
                          torch.sigmoid(single.biases[1] + v[:, :4] @ single.W), atol=1e-12)


def direct_pretraining(model, x, epochs, lr, batch, g):
    """Salakhutdinov & Hinton's greedy CD-1 with doubling, written out: the expected parameters."""
    L = model.depth
    W = [c.W.detach().clone() for c in model.couplings]
    c = [b.detach().clone() for b in model.biases]
    rand = lambda p: (torch.rand(p.shape, generator=g, dtype=p.dtype) < p).to(p.dtype)
    for l in range(1, L + 1):
        up, down = (2.0 if l == 1 else 1.0), (2.0 if l == L else 1.0)
        for _ in range(epochs):
            perm = torch.randperm(len(x), generator=g)
            for i in range(0, len(x), batch):
                v0 = x[perm[i:i + batch]]
                h0 = torch.sigmoid(c[l] + up * v0 @ W[l - 1])
                vk = rand(torch.sigmoid(c[l - 1] + down * rand(h0) @ W[l - 1].t()))
                hk = torch.sigmoid(c[l] + up * vk @ W[l - 1])
                W[l - 1] += lr * (v0.t() @ h0 - vk.t() @ hk) / len(v0)
                c[l - 1] += lr * (v0 - vk).mean(0)
                c[l] += lr * (h0 - hk).mean(0)
        if 1 < l < L:
            W[l - 1] *= 0.5                     # an inner layer hears from both sides in the DBM
        if l < L:
            x = torch.sigmoid(c[l] + 2 * x @ W[l - 1])
    return W, c


def test_pretraining_through_the_trainer_equals_the_direct_computation():
    model = random_dbm([5, 4, 3, 2])
    x = binary(6, 5)
    W, c = direct_pretraining(model, x, epochs=2, lr=0.1, batch=4, g=torch.Generator().manual_seed(7))
    el.dbm.pretrain(model, x, epochs=2, lr=0.1, batch_size=4, k=1, generator=torch.Generator().manual_seed(7))
    for got, want in zip(list(model.couplings) + list(model.biases), W + c):
        got = got.W if hasattr(got, "W") else got
        assert torch.allclose(got, want, atol=1e-12), (got, want)
    assert not torch.allclose(W[1], random_dbm([5, 4, 3, 2]).couplings[1].W)     # something was learned


def run(model, data, **options):
    options = {"lr": 0.05, "momentum": 0.0, "weight_decay": 0.0, "k": 1, "batch_size": 4, "seed": 3,
               "device": "cpu", "eval_every": 10 ** 9, **options}
    return el.Trainer(model, **options)


def test_fit_pretrains_each_layer_then_trains_jointly():
    x = binary(10, 5)
    inside = random_dbm([5, 4, 3], pretrain_epochs=2)
    t = run(inside, x, epochs=2)
    history = t.fit(x)
    spe = 3
    assert t.status == "finished" and t.epoch == 2 * 2 + 2 and t.step == t.epoch * spe and t.total_steps == t.step
    layers = [r.get("layer") for r in history.records]
    assert layers == [1, 2, None] and history.records[0]["epoch"] == 2.0 and history.records[1]["epoch"] == 4.0
    # the same as pretraining alone, then the joint epochs on the same random stream
    apart = random_dbm([5, 4, 3])
    g = torch.Generator().manual_seed(3)
    el.dbm.pretrain(apart, x, epochs=2, lr=0.05, batch_size=4, k=1, generator=g)
    joint = run(apart, x, epochs=2)
    joint.generator = g
    joint.fit(x)
    for (name, p), q in zip(inside.state_dict().items(), apart.state_dict().values()):
        assert torch.equal(p, q), name


@pytest.mark.parametrize("stop_epoch", [3, 4, 5])     # inside layer 2, at its end (halved), inside layer 3
def test_a_checkpoint_taken_during_pretraining_resumes_exactly(tmp_path, stop_epoch):
    x = binary(10, 6)
    straight = random_dbm([6, 5, 4, 3], dtype=torch.float32, pretrain_epochs=2)     # checkpoints hold float32
    run(straight, x, epochs=1).fit(x)
    first = run(random_dbm([6, 5, 4, 3], dtype=torch.float32, pretrain_epochs=2), x, epochs=1,
                callbacks=[At(lambda t: t.stop(), epoch=stop_epoch)])
    first.fit(x)
    assert first.status == "stopped" and first.epoch == stop_epoch
    path = first.save_checkpoint(tmp_path / "pre.pt")
    resumed = el.Trainer.from_checkpoint(path, device="cpu", eval_every=10 ** 9)
    resumed.fit(x)
    assert resumed.status == "finished" and resumed.epoch == 2 * 3 + 1 and resumed.step == resumed.epoch * 3
    after = [r.get("layer") for r in resumed.history.records if r["step"] > stop_epoch * 3]
    assert after == ([2, 3, None] if stop_epoch == 3 else [3, None])
    for (name, p), q in zip(straight.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(p, q), name            # with momentum 0 an epoch boundary loses nothing


def test_a_checkpoint_inside_a_pretraining_epoch_restarts_that_epoch_of_that_layer(tmp_path):
    x = binary(10, 6)
    first = run(random_dbm([6, 5, 3], dtype=torch.float32, pretrain_epochs=2), x, epochs=1, callbacks=[At(lambda t: t.stop(), step=8)])
    first.fit(x)                                # step 8: layer 2, its first epoch, second batch
    assert first.epoch == 2 and first.batch_index == 2
    path = first.save_checkpoint(tmp_path / "mid.pt")
    seen = []
    resumed = el.Trainer.from_checkpoint(path, device="cpu", eval_every=10 ** 9)
    resumed.callbacks.append(type("Seen", (el.Callback,), {"on_batch_start": lambda self, t: seen.append(
        (t.step, t.epoch, t.batch_index))})())
    resumed.fit(x)
    assert seen[0] == (6, 2, 0)                 # the epoch of layer 2 starts again
    assert resumed.epoch == 2 * 2 + 1 and resumed.step == 15
    assert [r.get("layer") for r in resumed.history.records if r["step"] > 8] == [2, None]


def test_a_live_learning_rate_reaches_the_layer_being_pretrained():
    x = binary(40, 6)                           # 10 batches an epoch: layer 2 trains from step 21 to 40

    def pretrain(change):
        model = random_dbm([6, 5, 3], pretrain_epochs=2)
        seen = {}

        def slide(t):
            seen["start"] = model.couplings[1].W.detach().clone()
            if change:
                t.params.set("lr", 1e-5)

        t = run(model, x, epochs=1, callbacks=[At(slide, step=21), At(lambda t: seen.setdefault(
            "end", model.couplings[1].W.detach().clone()), epoch=4)])
        t.fit(x)
        return t, (seen["end"] - seen["start"]).abs().max().item()

    slow, moved_slow = pretrain(True)
    _, moved = pretrain(False)
    assert moved > 100 * moved_slow, (moved, moved_slow)
    assert [(c["step"], c["name"], c["old"], c["new"]) for c in slow.history.changes] == [(21, "lr", 0.05, 1e-5)]


@contextmanager
def in_background(trainer, data):
    worker = threading.Thread(target=trainer.fit, args=(data,))
    worker.start()
    try:
        yield
    finally:
        trainer.stop()
        worker.join(60)
    assert not worker.is_alive()


def wait_for(condition, seconds=60):
    deadline = time.time() + seconds
    while not condition() and time.time() < deadline:
        time.sleep(0.01)
    assert condition()


def test_pause_single_steps_and_stop_reach_dbm_pretraining():
    """Paused inside layer 2's pretraining, one step runs one batch of layer 2 and shows its
    particles in pixel space; stop ends the run there, before the joint training."""
    x = binary(40, 6)
    model = random_dbm([6, 5, 3], pretrain_epochs=3)
    t = run(model, x, epochs=5, callbacks=[At(lambda t: t.pause(), step=32)])     # 10 batches a layer-epoch
    with in_background(t, x):
        wait_for(lambda: t.status == "paused")
        assert t.step == 32
        W2 = model.couplings[1].W.detach().clone()
        W1 = model.couplings[0].W.detach().clone()
        t.step_once()
        wait_for(lambda: t.step == 33 and t.parks_next)
        time.sleep(0.2)
        assert t.step == 33 and t.status == "paused"
        assert not torch.equal(model.couplings[1].W, W2) and torch.equal(model.couplings[0].W, W1)
        assert t.last_negative.shape == (4, 6)      # layer 2's particles, taken down to the pixels
    assert t.status == "stopped" and t.step == 33 and t.epoch == 3
    assert [r.get("layer") for r in t.history.records] == [1, 2]


@pytest.fixture(scope="module")
def digits():
    return el.datasets.load("digits", binarize="threshold").subset(96, 32)


def tuned_dbn(**options):
    torch.manual_seed(0)
    return el.make("DBN", n_visible=64, hidden_layers="16,8", layer_epochs="1,1", fine_tune="head",
                   fine_tune_epochs=2, **options)


def test_pause_single_steps_and_stop_reach_fine_tuning(digits):
    model = tuned_dbn()
    t = el.Trainer(model, batch_size=32, device="cpu", eval_every=10 ** 9, callbacks=[At(lambda t: t.pause(), step=7)])
    rows = []
    t.callbacks.append(type("Rows", (el.Callback,), {"on_batch_start": lambda self, tr: rows.append(tr.batch_rows())})())
    with in_background(t, digits):
        wait_for(lambda: t.status == "paused")
        assert t.step == 7 and t.epoch == 2         # two layer-epochs done, fine-tuning's first epoch
        head = model.head.weight.detach().clone()
        t.step_once()
        wait_for(lambda: t.step == 8 and t.parks_next)
        assert not torch.equal(model.head.weight, head)
        assert torch.equal(t.last_negative, model.reconstruct(digits.train[rows[-1]]))   # the batch, reconstructed
    assert t.status == "stopped" and t.step == 8
    assert [r.get("layer") for r in t.history.records] == [1, 2, 3]     # the stopped epoch's partial record
    assert "fine_tune_loss" in t.history.records[-1]


def test_a_divergence_during_fine_tuning_restores_the_last_good_head_and_names_fine_tune_lr(digits):
    model = tuned_dbn()

    def poison(t):
        with torch.no_grad():
            model.head.weight[0, 0] = float("nan")

    t = el.Trainer(model, batch_size=32, device="cpu", check_every=1, callbacks=[At(poison, step=8)])
    with pytest.raises(el.TrainingDiverged, match="fine_tune_lr") as error:
        t.fit(digits)
    assert t.status == "failed" and "fine_tune_lr" in t.error and "fine-tuning" in str(error.value)
    assert all(bool(torch.isfinite(p).all()) for p in model.parameters())


def test_a_checkpoint_inside_fine_tuning_resumes_the_fine_tuning_only(digits, tmp_path):
    model = tuned_dbn()
    t = el.Trainer(model, batch_size=32, device="cpu", eval_every=10 ** 9,
                   callbacks=[At(lambda t: t.stop(), epoch=3)])
    t.fit(digits)
    assert t.status == "stopped" and t.epoch == 3
    path = t.save_checkpoint(tmp_path / "tune.pt")
    layers = [layer.W.detach().clone() for layer in model.layers]
    resumed = el.Trainer.from_checkpoint(path, device="cpu", eval_every=10 ** 9)
    resumed.fit(digits)
    assert resumed.status == "finished" and resumed.epoch == 4 and resumed.step == 12
    after = [r for r in resumed.history.records if r["step"] > 9]
    assert [r.get("layer") for r in after] == [3, 0] and after[0]["epoch"] == 4.0
    assert {"fine_tune_loss", "train_accuracy", "accuracy"} <= set(after[0])
    assert all(torch.equal(w, layer.W) for w, layer in zip(layers, resumed.model.layers))
