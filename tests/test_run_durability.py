"""Every end of a dashboard run leaves a loadable checkpoint and a summary.json that tells the truth.

Ends checked: finish, stop, divergence (the last good parameters), an exception inside training,
SIGTERM to the training process, kill -9 of the server (its children notice, save and exit; a new
server lists what they left). Each checkpoint is loaded back and compared with what the run
reported; nothing asserts a duration, every wait has a deadline.
"""
import json
import os
import queue
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

import energylab as el
from energylab.training import checkpoint
from energylab.server import worker as runworker
from energylab.store.runfolder import RunFolder
from energylab.server.manager import RunManager
from test_runmanager import BAS, wait_for


def summary(run_or_folder):
    folder = getattr(run_or_folder, "folder", run_or_folder)
    return json.loads(folder.file("summary.json").read_text())


def loadable(folder, step):
    """The checkpoint loads without pickles and is the state at `step`."""
    state = checkpoint.read(folder.checkpoint)
    model = el.load(folder.checkpoint)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    return state["trainer"]["step"] if "trainer" in state else step


@pytest.fixture
def manager(tmp_path):
    m = RunManager(tmp_path / "runs", max_running=2, snapshot_interval=0.2, autosave_s=1.0)
    yield m
    m.shutdown()


def test_finish_and_stop_write_a_final_checkpoint(manager):
    done = manager.start("RBM", "bars-and-stripes", model={"n_hidden": 4},
                         training={"epochs": 3, "batch_size": 16}, dataset_options={"size": 3})
    long = manager.start("RBM", "bars-and-stripes", **BAS)
    wait_for(lambda: (s := long.snapshot()) and s["step"] > 10, what="the long run to train")
    long.stop()
    assert done.wait(90) and long.wait(90)
    for run, status, why in ((done, "finished", "all its epochs"), (long, "stopped", "stopped by its owner")):
        s = summary(run)
        assert (s["status"], s["checkpoint"]) == (status, True) and why in s["why"]
        assert s["saved_step"] == s["step"] == run.snapshot()["step"]
        trainer = el.Trainer.from_checkpoint(run.folder.checkpoint)
        assert trainer.step == s["step"]


def test_divergence_keeps_the_last_good_parameters(manager):
    bad = manager.start("RBM", "digits", model={"n_hidden": 16}, training={"lr": 1.0, "epochs": 50},
                        max_weight=0.5)
    assert bad.wait(120)
    s = summary(bad)
    assert s["status"] == "failed" and "diverged" in s["error"] and s["checkpoint"]
    model = el.load(bad.folder.checkpoint)
    assert max(p.abs().max().item() for p in model.parameters()) < 0.5      # the restored, good state


def test_an_exception_inside_training_still_saves(tmp_path):
    folder = RunFolder.create(tmp_path, "RBM", "digits")
    spec = {"id": folder.name, "folder": str(folder.path), "variant": "RBM", "dataset": "digits",
            "training": {"epochs": 5, "batch_size": 64}, "eval_every": 1000, "device": "cpu"}
    threads = torch.get_num_threads()
    try:
        worker = runworker.Worker(spec, queue.Queue(), queue.Queue())
        step = worker.trainer.objective.step

        def flaky(*args):
            if worker.trainer.step == 7:
                raise RuntimeError("a simulated fault in the objective")
            return step(*args)
        worker.trainer.objective.step = flaky
        worker.run()
    finally:
        torch.set_num_threads(threads)
    s = summary(folder)
    assert s["status"] == "failed" and "simulated fault" in s["error"]
    assert s["checkpoint"] and s["saved_step"] == 7
    assert el.Trainer.from_checkpoint(folder.checkpoint).step == 7


def test_sigterm_to_the_training_process_stops_with_a_save(manager):
    run = manager.start("RBM", "bars-and-stripes", **BAS)
    wait_for(lambda: (s := run.snapshot()) and s["step"] > 10, what="training")
    os.kill(run.process.pid, signal.SIGTERM)
    assert run.wait(60)
    s = summary(run)
    assert s["status"] == "stopped" and "SIGTERM" in s["why"] and s["checkpoint"]
    assert run.process.exitcode == 0


SERVER = textwrap.dedent("""
    import sys, time, json
    from energylab.server.manager import RunManager
    m = RunManager(sys.argv[1], max_running=2, snapshot_interval=0.2, autosave_s=1.0)
    runs = [m.start("RBM", "bars-and-stripes", model={"n_hidden": 8}, owner=f"student-{i}",
                    training={"epochs": 10000, "batch_size": 16}, dataset_options={"size": 3}) for i in range(3)]
    while not all(r.snapshot() and r.snapshot()["step"] > 0 for r in runs[:2]):
        time.sleep(0.1)
    print(json.dumps({"pids": [r.process.pid for r in runs[:2]], "ids": [r.id for r in runs]}), flush=True)
    time.sleep(3600)
""")


def test_kill_9_of_the_server_leaves_no_orphan_and_every_run_loadable(tmp_path):
    root = tmp_path / "runs"
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(root)], stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1])))
    try:
        info = json.loads(server.stdout.readline())
        folders = [RunFolder(root / i) for i in info["ids"]]
        wait_for(lambda: all(f.checkpoint.is_file() for f in folders[:2]), what="the first autosaves")
    finally:
        server.kill()                               # kill -9: no atexit, no shutdown, nothing
        server.wait(10)

    def gone(pid):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return Path(f"/proc/{pid}/status").is_file() and "zombie" in Path(f"/proc/{pid}/status").read_text()
    wait_for(lambda: all(gone(pid) for pid in info["pids"]), timeout=30, what="the orphaned workers to exit")

    # the children saved on their way out and said why; the queued run is marked when a server starts
    for folder in folders[:2]:
        s = summary(folder)
        assert (s["status"], s["checkpoint"]) == ("stopped", True) and "server exited" in s["why"]
        assert s["saved_step"] == s["step"] and el.Trainer.from_checkpoint(folder.checkpoint).step == s["step"]
    assert summary(folders[2])["status"] == "queued"
    restarted = RunManager(root, max_running=2)
    try:
        assert restarted.recovered == [folders[2].name]
        rows = {r["id"]: r for r in restarted.list_runs()}
        assert rows[folders[2].name]["status"] == "cancelled"
        assert [rows[f.name]["status"] for f in folders[:2]] == ["stopped", "stopped"]
        # a run left by the dead server loads and continues in the new one
        again = restarted.start("RBM", "bars-and-stripes", model={"n_hidden": 8}, dataset_options={"size": 3},
                                resume_from=folders[0].checkpoint, start_paused=True, owner="student-0")
        wait_for(lambda: (s := again.snapshot()) and s["status"] == "paused", what="the loaded run")
        assert again.snapshot()["step"] == summary(folders[0])["step"]
    finally:
        restarted.shutdown()


def test_a_training_process_killed_outright_is_marked_by_the_next_server(manager, tmp_path):
    run = manager.start("RBM", "bars-and-stripes", **BAS)
    wait_for(lambda: run.folder.file("summary.json").is_file() and summary(run).get("saved_step"),
             what="an autosave")
    os.kill(run.process.pid, signal.SIGKILL)
    assert run.wait(30)
    wait_for(lambda: run.status == "failed", what="the server to notice")
    s = summary(run)
    assert s["status"] == "failed" and "exit code -9" in s["error"] and s["checkpoint"]
    el.load(run.folder.checkpoint)
