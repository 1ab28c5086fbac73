"""The trainer: live hyperparameters, control, checkpoints, guards and clear errors."""
import threading
import time
from contextlib import contextmanager

import pytest
import torch

import energylab as el
from energylab.training import checkpoint


@pytest.fixture(scope="module")
def digits():
    return el.datasets.load("digits").subset(n_train=320, n_test=64)


def small_model(n_hidden=16):
    torch.manual_seed(0)
    return el.make("RBM", n_visible=64, n_hidden=n_hidden)


class At(el.Callback):
    """Run `action(trainer)` once, at the end of batch number `step`."""

    def __init__(self, step, action):
        self.step, self.action = step, action

    def on_batch_end(self, trainer):
        if trainer.step == self.step:
            self.action(trainer)


class Record(el.Callback):
    def __init__(self):
        self.lr_at_batch = {}

    def on_batch_start(self, trainer):
        self.lr_at_batch[trainer.step + 1] = trainer.optimizer.param_groups[0]["lr"]


def test_a_live_learning_rate_change_applies_on_the_next_batch_and_is_recorded(digits):
    seen = Record()
    trainer = el.Trainer(small_model(), lr=0.05, epochs=2, batch_size=32,
                         callbacks=[At(5, lambda t: t.params.set("lr", 0.01)), seen])
    history = trainer.fit(digits)
    assert seen.lr_at_batch[5] == 0.05 and seen.lr_at_batch[6] == 0.01
    assert history.changes == [{"step": 5, "name": "lr", "old": 0.05, "new": 0.01}]
    assert trainer.params["lr"] == 0.01


def test_only_live_parameters_change_while_running(digits):
    errors = []

    def try_batch_size(t):
        try:
            t.params.set("batch_size", 8)
        except ValueError as exc:
            errors.append(str(exc))

    el.Trainer(small_model(), epochs=1, batch_size=32, callbacks=[At(2, try_batch_size)]).fit(digits)
    assert errors and "cannot change while training runs" in errors[0]


def test_schedules_follow_progress_until_a_person_overrides_them(digits):
    trainer = el.Trainer(small_model(), epochs=2, batch_size=32,
                         schedules={"lr": el.schedules.linear(0.1, 0.0)})
    seen = Record()
    trainer.callbacks.append(seen)
    trainer.fit(digits)
    lrs = [seen.lr_at_batch[s] for s in sorted(seen.lr_at_batch)]
    assert lrs[0] == pytest.approx(0.1) and lrs[-1] < 0.01 and lrs == sorted(lrs, reverse=True)


@contextmanager
def training_in_background(trainer, data):
    """fit() on a thread; yields `reach(n)`, which waits (30 s at most) until the trainer's step is n or
    more; on exit the run is stopped and the thread must end."""
    worker = threading.Thread(target=trainer.fit, args=(data,))
    worker.start()
    deadline = time.time() + 30

    def reach(n):
        while trainer.step < n and time.time() < deadline:
            time.sleep(0.01)
    try:
        yield reach
    finally:
        trainer.stop()
        worker.join(30)
    assert not worker.is_alive()


def test_pause_step_resume_and_stop(digits):
    trainer = el.Trainer(small_model(), epochs=1000, batch_size=32, eval_every=10 ** 9)
    with training_in_background(trainer, digits) as reach:
        reach(3)
        trainer.pause()
        time.sleep(0.3)
        assert trainer.status == "paused"
        frozen = trainer.step
        time.sleep(0.3)
        assert trainer.step == frozen
        trainer.step_once()
        reach(frozen + 1)
        time.sleep(0.3)
        assert trainer.step == frozen + 1 and trainer.status == "paused"
        trainer.resume()
        reach(frozen + 20)
        assert trainer.step >= frozen + 20
    assert trainer.status == "stopped"


def test_steps_requested_before_the_loop_parks_are_not_lost(digits):
    """A run started paused gets Step(3) before fit reaches its first pause check (the dashboard's
    'start paused, press Step' race): exactly three batches run, then it parks."""
    trainer = el.Trainer(small_model(), epochs=1000, batch_size=32, eval_every=10 ** 9)
    trainer.pause()
    trainer.step_once(3)
    with training_in_background(trainer, digits) as reach:
        reach(3)
        time.sleep(0.3)
        assert trainer.step == 3 and trainer.status == "paused"


def test_what_a_driver_reads_between_and_inside_batches(digits):
    """The small public surface the dashboard's worker uses: elapsed time, single-stepping, whether
    the loop parks before its next batch, and the current batch's rows."""
    trainer = el.Trainer(small_model(), epochs=2, batch_size=32, eval_every=10 ** 9)
    assert trainer.elapsed == 0.0 and not trainer.single_stepping and not trainer.parks_next
    assert trainer.batch_rows() is None                 # no epoch drawn yet
    seen = []

    class Rows(el.Callback):
        def on_batch_start(self, t):
            rows = t.batch_rows()
            seen.append((rows.clone(), t.single_stepping, t.parks_next))

    trainer.callbacks.append(Rows())
    trainer.pause()
    assert trainer.parks_next
    trainer.step_once(2)
    assert trainer.single_stepping and not trainer.parks_next
    trainer.resume()
    trainer.fit(digits)
    assert trainer.elapsed > 0 and not trainer.single_stepping
    rows = torch.cat([r for r, _, _ in seen[:10]])      # the first epoch's batches: a permutation
    assert sorted(rows.tolist()) == list(range(320)) and all(len(r) == 32 for r, _, _ in seen)


def test_checkpoint_round_trips_bit_exactly(digits, tmp_path):
    model = small_model()
    trainer = el.Trainer(model, epochs=1, batch_size=32)
    trainer.fit(digits)
    path = trainer.save_checkpoint(tmp_path / "run" / "checkpoint.pt")
    loaded = el.load(path)
    for (name, p), (_, q) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(p, q), name
    assert loaded.config == model.config
    assert not list(path.parent.glob("*.tmp"))


@pytest.mark.parametrize("sampler", ["cd", "pcd"])
def test_resuming_continues_the_same_run(digits, tmp_path, sampler):
    options = dict(epochs=3, batch_size=32, sampler=sampler, seed=3)
    straight = small_model()
    el.Trainer(straight, **options).fit(digits)

    first = el.Trainer(small_model(), callbacks=[At(14, lambda t: t.stop())], **options)  # stops mid-epoch
    first.fit(digits)
    assert first.status == "stopped" and first.step == 14
    path = first.save_checkpoint(tmp_path / "ckpt.pt")
    second = el.Trainer.from_checkpoint(path)
    assert second.step == 14
    second.fit(digits)
    assert second.step == 3 * 10
    for (name, p), (_, q) in zip(straight.state_dict().items(), second.model.state_dict().items()):
        assert torch.equal(p, q), name


def test_nan_during_training_stops_the_run_and_keeps_the_last_good_state(digits):
    model = small_model()

    def poison(trainer):
        with torch.no_grad():
            trainer.model.W[0, 0] = float("nan")

    trainer = el.Trainer(model, epochs=5, batch_size=32, check_every=5, callbacks=[At(12, poison)])
    with pytest.raises(el.TrainingDiverged, match="NaN"):
        trainer.fit(digits)
    assert trainer.status == "failed" and "Lower the learning rate" in trainer.error
    assert all(torch.isfinite(p).all() for p in model.parameters())
    good = trainer._good
    assert all(torch.equal(p, g) for p, g in zip(model.parameters(), good))


def test_exploding_weights_stop_the_run(digits):
    trainer = el.Trainer(small_model(), lr=1.0, epochs=5, batch_size=32, max_weight=0.05, check_every=1)
    with pytest.raises(el.TrainingDiverged, match="magnitude"):
        trainer.fit(digits)


@pytest.mark.parametrize("bad,message", [
    (torch.rand(10, 63), "shape"),
    (torch.full((10, 64), float("nan")), "NaN"),
    (torch.rand(10, 64) * 3, r"\[0, 1\]"),
])
def test_bad_training_data_gives_a_clear_error(bad, message):
    with pytest.raises(ValueError, match=message):
        el.Trainer(small_model(), epochs=1).fit(bad)


@pytest.mark.parametrize("options,message", [
    ({"lr": -0.1}, "lr"), ({"k": 0}, "'k'"), ({"momentum": 1.5}, "momentum"),
    ({"sampler": "magic"}, "sampler"), ({"learning_rate": 0.1}, "unknown training"),
])
def test_impossible_hyperparameters_are_rejected(options, message):
    with pytest.raises(ValueError, match=message):
        el.Trainer(small_model(), **options)


def test_make_rejects_unknown_and_out_of_range_hyperparameters():
    with pytest.raises(ValueError, match="n_hidden"):
        el.make("RBM", n_visible=64, n_hidden=0)
    with pytest.raises(ValueError, match="belong to the Trainer"):
        el.make("RBM", n_visible=64, lr=0.1)
    with pytest.raises(ValueError, match="registered variants"):
        el.make("NoSuchRBM", n_visible=64)


def test_corrupt_and_foreign_checkpoints_are_refused_and_nothing_is_lost(digits, tmp_path):
    trainer = el.Trainer(small_model(), epochs=1, batch_size=32)
    trainer.fit(digits)
    good = trainer.save_checkpoint(tmp_path / "good.pt")
    raw = good.read_bytes()

    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(raw[: len(raw) // 2])
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    for path in (truncated, garbage):
        with pytest.raises(checkpoint.CheckpointError, match="corrupt"):
            el.load(path)

    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(checkpoint.CheckpointError, match="not an energylab checkpoint"):
        el.load(foreign)

    # A checkpoint of another variant (or shape) does not load into this model, which keeps its state.
    model = small_model(n_hidden=8)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(checkpoint.CheckpointError, match="n_hidden|hparams"):
        checkpoint.load_into(model, checkpoint.read(good), good)
    other = el.make("RBM", n_visible=64, n_hidden=16)
    other.config = {**other.config, "variant": "SomethingElse"}
    with pytest.raises(checkpoint.CheckpointError, match="holds a 'RBM' model"):
        checkpoint.load_into(other, checkpoint.read(good), good)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_a_failed_write_leaves_the_previous_checkpoint_intact(digits, tmp_path, monkeypatch):
    trainer = el.Trainer(small_model(), epochs=1, batch_size=32)
    trainer.fit(digits)
    path = trainer.save_checkpoint(tmp_path / "ckpt.pt")
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError):
        trainer.save_checkpoint(path)
    assert path.read_bytes() == before and not list(tmp_path.glob("*.tmp"))


def test_a_live_model_hyperparameter_reaches_the_model_and_its_checkpoint(digits, tmp_path):
    model = el.make("DropoutRBM", n_visible=64, n_hidden=16, p=0.5)
    trainer = el.Trainer(model, epochs=1, batch_size=32, callbacks=[At(3, lambda t: t.params.set("p", 0.8))])
    history = trainer.fit(digits)
    assert model.mask.p == 0.8 and model.config["hparams"]["p"] == 0.8
    assert {"step": 3, "name": "p", "old": 0.5, "new": 0.8} in history.changes
    assert el.load(trainer.save_checkpoint(tmp_path / "c.pt")).mask.p == 0.8
    with pytest.raises(ValueError, match="no model hyperparameter"):
        small_model().set_hparam("p", 0.5)


@pytest.mark.parametrize("variant,name,value,attribute", [
    ("HybridDiscriminativeRBM", "alpha", 0.5, lambda m: m.objective.alpha),
    ("ConvRBM", "sparsity_cost", 2.0, lambda m: m.objective.cost),
])
def test_live_objective_hyperparameters(digits, variant, name, value, attribute):
    model = el.make(variant, n_visible=64)
    trainer = el.Trainer(model, epochs=1, batch_size=32, callbacks=[At(2, lambda t: t.params.set(name, value))])
    trainer.fit(digits)
    assert attribute(model) == value and model.config["hparams"][name] == value


@pytest.mark.parametrize("variant,hparams,options", [
    ("DBM", {"hidden_layers": "16,8"}, {}),
    ("RBM", {"n_hidden": 16}, {"method": "tap"}),
    ("RBM", {"n_hidden": 16}, {"sampler": "pt", "pt_temperatures": 4}),
    ("RBM", {"n_hidden": 16}, {"sampler": "driven"}),
])
def test_resuming_keeps_the_objectives_and_samplers_own_state(digits, tmp_path, variant, hparams, options):
    """Persistent chains of a DBM, TAP magnetisations and tempered chains travel in the checkpoint."""
    def fresh():
        torch.manual_seed(0)
        return el.make(variant, n_visible=64, **hparams)

    options = dict(epochs=2, batch_size=32, seed=5, **options)
    straight = fresh()
    el.Trainer(straight, **options).fit(digits)
    first = el.Trainer(fresh(), callbacks=[At(13, lambda t: t.stop())], **options)
    first.fit(digits)
    second = el.Trainer.from_checkpoint(first.save_checkpoint(tmp_path / "ckpt.pt"))
    second.fit(digits)
    for (name, p), (_, q) in zip(straight.state_dict().items(), second.model.state_dict().items()):
        assert torch.equal(p, q), name


def test_evaluation_records_the_shared_metric_objects(digits):
    model = small_model()
    history = el.Trainer(model, epochs=1, batch_size=32).fit(digits)
    last = history.last()
    assert last["weight_square"] == pytest.approx((model.W.double() ** 2).mean().item())
    assert 0 < last["weight_participation"] <= 1 and last["energy_distance"] >= 0
