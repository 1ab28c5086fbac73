"""What the Train page draws, computed in the training process: a classifier's confusion matrix and
p(y|x) in the snapshot, and a stack's pictures through the layers trained so far (never through the
random layers above the one in training), with the layer in training named.

The child's code runs in this process (no spawn) on a queue, as in test_runmanager.py."""
import io
import queue

import pytest
import torch
from PIL import Image

import energylab as el
from energylab.measures import explore
from energylab.server import worker as runworker
from energylab.server import worker_classes
from energylab.server.worker_pictures import stack_phase
from energylab.store.runfolder import RunFolder


def snapshots_of(tmp_path, variant, training, model=None, stop_at=None):
    """Run `variant` on digits in this process; every snapshot it published (optionally stopping at a step)."""
    folder = RunFolder.create(tmp_path, variant, "digits")
    spec = {"id": folder.name, "folder": str(folder.path), "variant": variant, "dataset": "digits",
            "model": model or {}, "training": training, "eval_every": 10, "device": "cpu",
            "snapshot_interval": 0.0}
    commands, snaps = queue.Queue(), queue.Queue()
    if stop_at is not None:
        original = runworker.Worker.on_batch_end

        def on_batch_end(self, trainer):
            original(self, trainer)
            if trainer.step >= stop_at:
                trainer.stop()
        runworker.Worker.on_batch_end = on_batch_end
    threads = torch.get_num_threads()
    try:
        runworker.main(spec, commands, snaps)
    finally:
        torch.set_num_threads(threads)
        if stop_at is not None:
            runworker.Worker.on_batch_end = original
    return [m for m in (snaps.get_nowait() for _ in range(snaps.qsize())) if "status" in m]


def pixels(png: bytes) -> torch.Tensor:
    import numpy as np
    return torch.from_numpy(np.array(Image.open(io.BytesIO(png)).convert("L"), dtype="float32") / 255)


def test_a_classifier_snapshot_carries_its_confusion_matrix_and_p_y_given_x(tmp_path, monkeypatch):
    monkeypatch.setattr(worker_classes, "INTERVAL", 0.0)
    snaps = snapshots_of(tmp_path, "DiscriminativeRBM", {"epochs": 6, "batch_size": 32}, {"n_hidden": 32})
    last = snaps[-1]
    assert last["status"] == "finished"
    c = last["classification"]
    counts = torch.tensor(c["counts"])
    data = el.datasets.load("digits")
    assert counts.shape == (10, 10) and counts.sum() == c["n_test"] == len(data.test)
    assert c["accuracy"] == pytest.approx(float(counts.diagonal().sum() / counts.sum()))
    assert c["accuracy"] > 0.5                            # six epochs already classify digits
    examples = c["examples"]
    assert len(examples) == 20 and sorted({e["label"] for e in examples}) == list(range(10))
    for e in examples:
        assert len(e["p"]) == 10 and sum(e["p"]) == pytest.approx(1.0, abs=1e-4)
        assert e["label"] == int(data.test_labels[e["index"]]) and e["png"][:4] == b"\x89PNG"
    # the same numbers as the engine's, from the model the run saved
    model = el.load(RunFolder(tmp_path / snaps[0]["id"]).checkpoint)
    assert torch.equal(explore.confusion_matrix(model, data.test, data.test_labels), counts)
    assert "stack" not in last or last["stack"] is None


def test_the_classification_is_throttled_not_computed_per_snapshot(tmp_path):
    snaps = snapshots_of(tmp_path, "DiscriminativeRBM", {"epochs": 3, "batch_size": 64}, {"n_hidden": 16})
    steps = {s["classification"]["step"] for s in snaps if s.get("classification")}
    assert len(snaps) > 20 and len(steps) <= len(snaps) // 4, (len(snaps), steps)


def test_a_generative_model_has_no_classification(tmp_path):
    snaps = snapshots_of(tmp_path, "RBM", {"epochs": 1, "batch_size": 64}, {"n_hidden": 16})
    assert snaps[-1]["classification"] is None


@pytest.mark.parametrize("variant,model", [("DBN", {"hidden_layers": "64,32,16"}),
                                           ("ResidualDBN", {"hidden_layers": "64,32"}),
                                           ("ConvDBN", {"n_filters": "4,4"})])
def test_a_stack_in_its_first_layer_draws_only_what_trained(tmp_path, variant, model):
    snaps = snapshots_of(tmp_path, variant, {"epochs": 50, "batch_size": 32}, model, stop_at=150)
    last = snaps[-1]
    stack = last["stack"]
    assert stack["layer"] == 1 and not stack["fine_tuning"] and tuple(stack["phases"][0]) == ("layer 1", 50)
    assert 0 < stack["epoch"] < 50
    assert last["deeper_weights"] == []                   # no mosaic pretends a random layer learnt
    depth = len(stack["phases"])
    assert last["waiting_layers"] == [f"layer {n} trains after layer {n - 1}" for n in range(2, depth + 1)]
    recon = pixels(last["recon_png"])
    top, bottom = recon[: recon.shape[0] // 2], recon[recon.shape[0] // 2:]
    assert bottom.max() > 0.5 and bottom.std() > 0.1, "the reconstructions are black or flat"
    assert "layer 1" in last["recon_how"] and "layer 1" in last["samples_how"]
    # the reconstruction is layer 1's own: it follows its input (a flat mean image would not)
    assert (top - bottom).abs().mean() < (top - top.mean()).abs().mean()
    assert pixels(last["samples_png"]).std() > 0.1
    assert last["weights_are_filters"] == (variant == "ConvDBN")


def test_the_trained_part_of_a_stack_is_the_whole_stack_when_every_layer_trained():
    stack = el.make("DBN", n_visible=64, hidden_layers="16,8")
    v = el.datasets.load("digits").train[:4]
    assert torch.allclose(explore.reconstruct_through(stack, v, None), stack.reconstruct(v))
    assert torch.allclose(explore.reconstruct_through(stack, v, 2), stack.reconstruct(v))
    assert torch.allclose(explore.reconstruct_through(stack, v, 1), stack.layers[0].reconstruct(v))
    g = torch.Generator().manual_seed(0)
    assert explore.sample_through(stack, 5, k=2, depth=1, generator=g).shape == (5, 64)
    rbm = el.make("RBM", n_visible=64, n_hidden=8)
    assert torch.allclose(explore.reconstruct_through(rbm, v, 1), rbm.reconstruct(v))


def test_a_dbm_names_its_pretraining_and_then_its_joint_training(tmp_path):
    """A DBM with pretrain_epochs pretrains layer by layer, then trains jointly (training/dbm.py):
    the snapshot says which, with each phase's length, from the trainer's own position."""
    # digits: 1437 / 128 -> 12 steps per epoch; 2 layers x 2 pretraining epochs = 48 steps
    during = snapshots_of(tmp_path / "a", "DBM", {"epochs": 3, "batch_size": 128},
                          {"hidden_layers": "16,8", "pretrain_epochs": 2}, stop_at=30)[-1]["stack"]
    assert during["pretraining"] and not during["joint"] and during["layer"] == 2 and 0 < during["epoch"] < 2
    assert [tuple(p) for p in during["phases"]] == [("pretraining layer 1", 2), ("pretraining layer 2", 2),
                                                     ("joint training", 3)]
    joint = snapshots_of(tmp_path / "b", "DBM", {"epochs": 3, "batch_size": 128},
                         {"hidden_layers": "16,8", "pretrain_epochs": 2}, stop_at=60)[-1]["stack"]
    assert joint["joint"] and joint["layer"] == 3 and 0 < joint["epoch"] < 3 and joint["epochs"] == 3
    plain = snapshots_of(tmp_path / "c", "DBM", {"epochs": 1, "batch_size": 128}, {"hidden_layers": "16,8"},
                         stop_at=5)[-1]
    assert plain.get("stack") is None                     # no pretraining: nothing to say


def at(trainer, epoch: float):
    """`trainer` placed at `epoch` epochs of its plan (whole epochs plus batches), for `stack_phase`."""
    trainer.steps_per_epoch = 10
    trainer.epoch, trainer.batch_index = int(epoch), round((epoch - int(epoch)) * 10)
    return stack_phase(trainer)


def test_stack_phase_names_the_layer_in_training():
    """Where a stack's plan stands, from the trainer's own position: each layer's epochs (`layer_epochs`,
    or the trainer's `epochs` for every layer), the fine-tuning head, the end; nothing for an RBM."""
    dbn = el.Trainer(el.make("DBN", n_visible=64, hidden_layers="8,6", layer_epochs="2,3", fine_tune="off"),
                     epochs=1)
    p = at(dbn, 0.5)
    assert (p.layer, p.depth, p.epochs) == (1, 2, 2) and 0 < p.fraction <= 1 and "layer 1 of 2" in p.label
    p = at(dbn, 3.0)
    assert (p.layer, p.epochs, p.epoch) == (2, 3, 1.0) and "layer 2 of 2" in p.label
    assert at(dbn, 5.0).label == "all 2 layers trained"
    deep = el.Trainer(el.make("DBN", n_visible=64, hidden_layers="8,6,4", fine_tune="off"), epochs=300)
    assert at(deep, 610.0).layer == 3 and at(deep, 610.0).epoch == 10       # 300 epochs for every layer
    tune = el.Trainer(el.make("DBN", n_visible=64, hidden_layers="8,6", fine_tune="head", fine_tune_epochs=10),
                      epochs=5)
    p = at(tune, 13.0)
    assert p.fine_tuning and p.epoch == 3 and p.epochs == 10 and "fine-tuning" in p.label
    assert at(el.Trainer(el.make("RBM", n_visible=64), epochs=5), 1.0) is None


def test_stack_phase_of_a_dbm_pretraining_then_its_joint_training():
    """A DBM with pretrain_epochs: "pretraining layer l of L" with the pretraining's epochs, then the joint
    training with its own; no pretraining, nothing to say."""
    dbm = el.Trainer(el.make("DBM", n_visible=64, hidden_layers="16,8", pretrain_epochs=2), epochs=3)
    p = at(dbm, 1.5)
    assert p.pretraining and (p.layer, p.epochs, p.epoch) == (1, 2, 1.5) and "pretraining layer 1 of 2" in p.label
    p = at(dbm, 3.9)
    assert p.pretraining and p.layer == 2 and p.fraction == pytest.approx(0.95)
    p = at(dbm, 5.0)
    assert p.joint and p.epoch == 1.0 and p.epochs == 3 and "joint training of all 2 layers" in p.label
    assert at(el.Trainer(el.make("DBM", n_visible=64, hidden_layers="16,8"), epochs=3), 1.0) is None
