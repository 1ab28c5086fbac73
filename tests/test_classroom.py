"""A class on one server: 12 sessions start a run each with a cap of 2.

Exactly two train at any moment, the other ten wait in a first-in-first-out queue (one
waiting run per session) and start by themselves in the order they were asked for; no
session can retune, pause, step, save or stop another's run, while the instructor's key
can; every run ends with a loadable checkpoint. (kill -9 of the server: see
test_run_durability.py.)
"""
import time

import pytest

import energylab as el
from energylab.errors import RunAccessError
from energylab.server.manager import RunLimitReached, RunManager
from test_runmanager import wait_for

SHORT = dict(model={"n_hidden": 4}, training={"epochs": 150, "batch_size": 16}, dataset_options={"size": 3})


def test_twelve_sessions_two_slots_fifo_and_ownership(tmp_path):
    m = RunManager(tmp_path / "runs", max_running=2, snapshot_interval=0.2, instructor_key="teacher-key")
    tokens = [f"session-token-{i:02d}-unguessable" for i in range(12)]
    try:
        runs = [m.start("RBM", "bars-and-stripes", owner=t, owner_label=f"student {i}", **SHORT)
                for i, t in enumerate(tokens)]
        assert sum(r.process is not None for r in runs) == 2
        assert [m.queue_position(r) for r in runs] == [None, None] + list(range(1, 11))
        assert [r.status for r in runs[2:]] == ["queued"] * 10
        with pytest.raises(RunLimitReached, match="already have a run waiting"):
            m.start("RBM", "bars-and-stripes", owner=tokens[5], **SHORT)

        # another session can watch but not touch; the instructor can
        victim = runs[0]
        wait_for(lambda: victim.status in ("running", "finished"), what="the first run to train")
        for action in (lambda t: victim.set("lr", 0.01, token=t), lambda t: victim.pause(token=t),
                       lambda t: victim.resume(token=t), lambda t: victim.step(token=t),
                       lambda t: victim.save_checkpoint(token=t), lambda t: victim.stop(token=t),
                       lambda t: runs[7].stop(token=t)):
            for intruder in (tokens[1], None, "guess"):
                with pytest.raises(RunAccessError, match="belongs to student"):
                    action(intruder)
        assert victim.can_control("teacher-key") and not victim.can_control(tokens[3])
        rows = {r["id"]: r for r in m.list_runs(tokens[0])}
        assert rows[victim.id]["mine"] and not rows[runs[1].id]["mine"]
        assert all(r["mine"] for r in m.list_runs("teacher-key"))

        # the queue drains in order, never more than two at once
        most = 0
        deadline = time.monotonic() + 600
        while any(r.process is None or r.process.is_alive() for r in runs):
            most = max(most, sum(r.process is not None and r.process.is_alive() for r in runs))
            assert time.monotonic() < deadline, [r.status for r in runs]
            time.sleep(0.05)
        assert most == 2
        started = [r.started for r in runs]
        assert started[2:] == sorted(started[2:]), "queued runs started out of order"
        assert [r.status for r in runs] == ["finished"] * 12, [r.snapshot().get("error") for r in runs]
        for r in runs:
            el.load(r.folder.checkpoint)
            assert r.folder.read_record().owner_label.startswith("student")
        assert "session-token" not in (runs[0].folder.file("config.json")).read_text()   # only the digest
    finally:
        m.shutdown()


def test_stopping_a_queued_run_cancels_it_and_the_next_moves_up(tmp_path):
    m = RunManager(tmp_path / "runs", max_running=1, snapshot_interval=0.2)
    try:
        first = m.start("RBM", "bars-and-stripes", owner="a", start_paused=True, **SHORT)
        second = m.start("RBM", "bars-and-stripes", owner="b", **SHORT)
        third = m.start("RBM", "bars-and-stripes", owner="c", **SHORT)
        assert (m.queue_position(second), m.queue_position(third)) == (1, 2)
        second.stop(token="b")
        assert second.status == "cancelled" and m.queue_position(third) == 1
        assert second.folder.read_summary()["status"] == "cancelled"
        first.stop(token="a")
        wait_for(lambda: third.process is not None, what="the next run to start by itself")
        assert third.wait(120) and third.status == "finished"
    finally:
        m.shutdown()
