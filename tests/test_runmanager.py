"""The dashboard's engine side: runs in spawned child processes, commands, snapshots, cap, persistence.

Ground truth where there is one: a single step advances exactly one batch, the
exact distribution in a snapshot equals the enumeration of the checkpointed
model, and the data distribution of 3x3 bars-and-stripes is uniform on its 14
patterns. Waits poll with a deadline; nothing asserts a duration.
"""
import time

import pytest
import torch

import energylab as el
from energylab.server.manager import RunLimitReached, RunManager

BAS = dict(model={"n_hidden": 8}, training={"epochs": 10000, "batch_size": 16, "lr": 0.1},
           dataset_options={"size": 3})


def wait_for(predicate, timeout=90.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture
def manager(tmp_path):
    m = RunManager(tmp_path / "runs", max_running=1, snapshot_interval=0.2)
    yield m
    m.shutdown()


def test_lifecycle_live_change_step_checkpoint_and_persistence(manager, tmp_path):
    run = manager.start("RBM", "bars-and-stripes", **BAS)
    snap = wait_for(lambda: (s := run.snapshot()) and s["status"] == "running" and s["step"] > 0 and s,
                    what="the run to train")
    assert snap["device"] in ("CPU", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU")

    # a live change reaches the run and is recorded as a change at the step it happened
    run.set("lr", 0.02)
    snap = wait_for(lambda: (s := run.snapshot())["params"]["lr"] == 0.02 and s["history"]["changes"] and s,
                    what="lr to reach the run")
    change = snap["history"]["changes"][-1]
    assert (change["name"], change["old"], change["new"]) == ("lr", 0.1, 0.02)
    with pytest.raises(ValueError, match="cannot change while a run trains"):
        run.set("batch_size", 32)

    # pause holds the step; one Step is exactly one mini-batch
    run.pause()
    paused = wait_for(lambda: (s := run.snapshot())["status"] == "paused" and s, what="pause")
    time.sleep(0.5)
    assert run.snapshot()["step"] == paused["step"]

    # the exact distribution shown is the enumeration of the model (checked on the checkpoint)
    run.save_checkpoint()
    wait_for(lambda: run.notices, what="the checkpoint notice")
    model = el.load(run.folder.checkpoint)
    dist = paused["distribution"]
    assert torch.allclose(torch.tensor(dist["model"], dtype=torch.float64), el.metrics.exact_distribution(model),
                          atol=1e-6)
    p_data = torch.tensor(dist["data"])
    assert int((p_data > 0).sum()) == 14 and torch.allclose(p_data[p_data > 0], torch.full((14,), 1 / 14))
    assert any("exact_kl" in r for r in paused["history"]["records"])

    run.step()
    stepped = wait_for(lambda: (s := run.snapshot())["step"] != paused["step"] and s["status"] == "paused" and s,
                       what="a single step")
    assert stepped["step"] == paused["step"] + 1
    assert stepped["step_detail"]["step"] == stepped["step"] and stepped["step_detail"]["dW_norm"] > 0

    run.resume()
    wait_for(lambda: run.snapshot()["step"] > stepped["step"] + 5, what="resume")
    run.stop()
    assert run.wait(30)
    assert run.status == "stopped"

    # a restarted server (a new manager on the same folder) lists the run with its files
    rows = RunManager(manager.root).list_runs()
    assert [(r["id"], r["status"], r["live"], r["checkpoint"]) for r in rows] == [(run.id, "stopped", False, True)]
    assert rows[0]["step"] >= stepped["step"]
    history = run.folder.read_history()
    assert ("lr", 0.1, 0.02) in [(c["name"], c["old"], c["new"]) for c in history.changes]


def test_cap_and_a_diverging_run_fails_with_its_message(manager):
    first = manager.start("RBM", "bars-and-stripes", start_paused=True, **BAS)
    with pytest.raises(RunLimitReached, match="limit is 1.*stop one"):
        manager.start("RBM", "bars-and-stripes", **BAS)
    first.stop()
    assert first.wait(60)

    bad = manager.start("RBM", "digits", model={"n_hidden": 16}, training={"lr": 1.0, "epochs": 50},
                        max_weight=0.5)
    assert bad.wait(90)
    snap = bad.snapshot()
    assert snap["status"] == "failed"
    assert "training diverged" in snap["error"] and "Lower the learning rate" in snap["error"]
    row = next(r for r in manager.list_runs() if r["id"] == bad.id)
    assert row["status"] == "failed" and "diverged" in row["error"]
    with pytest.raises(RuntimeError, match="failed"):
        bad.pause()


def test_bad_settings_fail_in_the_server_process(manager):
    with pytest.raises(ValueError, match="'lr' must lie in"):
        manager.start("RBM", "digits", training={"lr": 50.0})
    with pytest.raises(ValueError, match="unknown variant"):
        manager.start("NoSuchRBM", "digits")
    # too large: refused at the click, before a folder or a process exists (registry.check_size)
    with pytest.raises(ValueError, match=r"has [\d,]+ parameters"):
        manager.start("DBN", "mnist", model={"hidden_layers": "100000,100000"})
    assert manager.list_runs() == []
    # checked here, so the training process builds the model without the meta-device check
    run = manager.start("RBM", "digits", training={"epochs": 1}, start_paused=True)
    assert run.spec["size_checked"] is True
    run.stop()


@pytest.mark.parametrize("variant", sorted(el.VARIANTS))
def test_every_variant_trains_in_the_worker_and_publishes_a_snapshot(variant, tmp_path):
    """The child's code run in this process (no spawn, for speed): a short run of each registered
    variant on a dataset it accepts ends 'finished' and its snapshots carry what the page draws."""
    import queue

    from energylab.server import worker as runworker
    from energylab.store.runfolder import RunFolder
    v = el.VARIANTS[variant]
    dataset = next(d for d in ("digits", "bars-and-stripes", "two-moons")
                   if el.datasets.DATASETS[d].kind in v.data_kinds)
    folder = RunFolder.create(tmp_path, variant, dataset)
    spec = {"id": folder.name, "folder": str(folder.path), "variant": variant, "dataset": dataset,
            "training": {"epochs": 1, "batch_size": 64}, "eval_every": 5, "device": "cpu"}
    commands, snapshots = queue.Queue(), queue.Queue()
    threads = torch.get_num_threads()
    try:
        runworker.main(spec, commands, snapshots)
    finally:
        torch.set_num_threads(threads)
    msgs = [snapshots.get_nowait() for _ in range(snapshots.qsize())]
    last = [m for m in msgs if "status" in m][-1]
    assert last["status"] == "finished", last.get("error")
    assert last["step"] > 0 and last["history"]["records"]
    if el.datasets.DATASETS[dataset].kind != "real":
        assert "pictures_note" not in last, last.get("pictures_note")
    assert RunFolder(folder.path).read_summary()["status"] == "finished"


@pytest.mark.parametrize("variant", ["ConvRBM", "DBN", "DBM", "GaussianRBM"])
def test_single_step_view_shows_the_weight_change_of_any_model(variant, tmp_path):
    """Paused at the start, one Step: the snapshot's step view carries the mini-batch, the negative
    particles and a ΔW mosaic for convolutional filters and stacks too, and its norm is the
    change of the weights the model draws."""
    import queue
    import threading

    from energylab.server import worker as runworker
    from energylab.store.runfolder import RunFolder
    v = el.VARIANTS[variant]
    dataset = "digits" if el.datasets.DATASETS["digits"].kind in v.data_kinds else "two-moons"
    folder = RunFolder.create(tmp_path, variant, dataset)
    spec = {"id": folder.name, "folder": str(folder.path), "variant": variant, "dataset": dataset,
            "training": {"epochs": 1, "batch_size": 32}, "eval_every": 10 ** 6, "device": "cpu",
            "start_paused": True}
    commands, snapshots = queue.Queue(), queue.Queue()
    threads = torch.get_num_threads()
    worker = threading.Thread(target=runworker.main, args=(spec, commands, snapshots), daemon=True)
    worker.start()
    seen = []

    def stepped():
        while not snapshots.empty():
            seen.append(snapshots.get_nowait())
        return next((m for m in seen if m.get("step_detail")), None)

    try:
        commands.put(("step", 1))
        snap = wait_for(stepped, what="the single step's view")
    finally:
        commands.put(("stop",))
        worker.join(60)
        torch.set_num_threads(threads)
    detail = snap["step_detail"]
    assert detail["step"] == 1 and detail["dW_norm"] > 0
    if dataset == "digits":
        assert detail["dW_png"] and detail["positive_png"] and detail["negative_png"]
        assert detail["dW_caption"].startswith("layer 1")


def test_start_checks_the_data_kind_and_gives_a_stack_a_first_layer_that_fits(manager):
    with pytest.raises(ValueError, match="'real'.*GaussianRBM"):
        manager.start("RBM", "two-moons")
    with pytest.raises(ValueError, match="first_layer=SigmoidRBM"):
        manager.start("DBN", "two-moons", model={"first_layer": "SigmoidRBM"})
    assert not manager.list_runs()                           # nothing was created for the refused runs
    run = manager.start("DBN", "two-moons", model={"hidden_layers": "8,4"}, training={"epochs": 1})
    assert run.config["model"]["first_layer"] == "GaussianRBM"
    assert run.wait(60) and run.status == "finished", run.snapshot().get("error")


def test_a_warm_process_takes_the_next_run_and_is_replaced(tmp_path):
    """prewarm=True: a training process with the engine imported waits before Train is pressed; the
    next run is handed to it (same pid), a new one is made, and shutdown leaves none behind."""
    m = RunManager(tmp_path / "runs", max_running=1, snapshot_interval=0.2, prewarm=True)
    try:
        warm = wait_for(lambda: m._warm, what="the warm process")
        run = m.start("RBM", "bars-and-stripes", model={"n_hidden": 4}, training={"epochs": 20, "batch_size": 16},
                      dataset_options={"size": 3})
        assert run.process.pid == warm[0].pid
        assert run.wait(90) and run.status == "finished" and run.folder.checkpoint.is_file()
        replacement = wait_for(lambda: m._warm, what="a new warm process")
        assert replacement[0].pid != warm[0].pid and replacement[0].is_alive()
    finally:
        m.shutdown()
    replacement[0].join(30)
    assert not replacement[0].is_alive()


def test_a_loaded_run_shows_the_epoch_it_stopped_at_before_and_after_a_step(manager):
    """Reported as "333.0 paused -> 309.8 after one step": a run loaded paused was drawn before its
    trainer knew the epoch's length, so the batches done in the epoch counted as whole epochs."""
    settings = dict(model={"n_hidden": 16}, training={"batch_size": 64, "epochs": 100})
    first = manager.start("RBM", "digits", start_paused=True, **settings)
    wait_for(lambda: (s := first.snapshot()) and s["status"] == "paused", what="the run to park")
    first.step(5)
    ended = wait_for(lambda: (s := first.snapshot()) and s["step"] == 5 and s["status"] == "paused" and s,
                     what="five single steps")
    per_epoch = -(-el.datasets.load("digits").train.shape[0] // 64)
    assert ended["epoch"] == pytest.approx(5 / per_epoch)
    first.stop()
    assert first.wait(60)

    loaded = manager.start("RBM", "digits", model={"n_hidden": 16}, resume_from=first.folder.checkpoint,
                           start_paused=True)
    paused = wait_for(lambda: (s := loaded.snapshot()) and s["status"] == "paused" and s, what="the loaded run")
    assert (paused["step"], paused["epoch"]) == (5, pytest.approx(5 / per_epoch))
    loaded.step()
    stepped = wait_for(lambda: (s := loaded.snapshot()) and s["step"] == 6 and s["status"] == "paused" and s,
                       what="one step of the loaded run")
    assert stepped["epoch"] == pytest.approx(6 / per_epoch)
