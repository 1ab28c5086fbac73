"""Faults during a run: early kills, full disks, failed starts, shared folders (issue 14).

A full disk is simulated by making `checkpoint.atomic_write_bytes` (every run file goes
through it) raise OSError(ENOSPC) for chosen files; the clock of the autosave is a fake
one advanced by a callback, so no test depends on how fast this machine is.
"""
from __future__ import annotations

import errno
import json
import os
import stat
import types

import pytest
import torch

import energylab as el
from energylab.training import checkpoint
from energylab import cli
from energylab.cli import save as cli_save
from energylab.store.runfolder import RunFolder

TINY = ["--variant", "RBM", "--dataset", "bars-and-stripes", "--dataset-option", "size=2", "--n-hidden", "3",
        "--batch-size", "100", "--quiet"]           # 1000 examples / 100 = 10 steps an epoch
STEPS = 10


@pytest.fixture
def clock(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(cli_save, "time", types.SimpleNamespace(monotonic=lambda: now[0], sleep=lambda s: None))
    return now


class Tick(el.Callback):
    """Advance the fake clock by `seconds` every batch (runs before the autosave)."""

    def __init__(self, now, seconds):
        self.now, self.seconds = now, seconds

    def on_batch_end(self, trainer):
        self.now[0] += self.seconds


class Seen(el.Callback):
    """After the autosave: (step, newest checkpoint step on disk) at every batch and epoch end."""

    def __init__(self, saver):
        self.saver, self.batches, self.epochs = saver, [], []

    def on_batch_end(self, trainer):
        self.batches.append((trainer.step, self.saver.saved_step))

    def on_epoch_end(self, trainer):
        self.epochs.append((trainer.step, self.saver.saved_step, self.saver.run.checkpoint.is_file()))


@pytest.fixture
def full_disk(monkeypatch):
    """`full_disk(names, times=None)`: writes of those file names fail with ENOSPC (the first `times` ones)."""
    real = checkpoint.atomic_write_bytes
    failures = []

    def arm(names, times=None):
        def write(path, fn):
            if os.path.basename(str(path)) in names and (times is None or len(failures) < times):
                failures.append(str(path))
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
            return real(path, fn)
        monkeypatch.setattr(checkpoint, "atomic_write_bytes", write)
        return failures
    return arm


def _trainer(tmp_path, clock, seconds, **autosave):
    run = RunFolder(tmp_path)
    saver = cli_save.Autosave(run, **autosave)
    seen = Seen(saver)
    data = el.datasets.load("bars-and-stripes", size=2)
    trainer = el.Trainer(el.make("RBM", 4, n_hidden=3), device="cpu", batch_size=100, epochs=3,
                         callbacks=[Tick(clock, seconds), saver, seen])
    return trainer, data, seen, saver, run


def test_first_autosave_at_the_end_of_the_first_epoch(tmp_path, clock):
    trainer, data, seen, saver, run = _trainer(tmp_path, clock, seconds=1.0)     # 10 s an epoch < 30 s
    trainer.fit(data, epochs=5)
    assert seen.batches[STEPS - 2] == (STEPS - 1, None)
    assert seen.epochs[0] == (STEPS, STEPS, True)    # saved at the first epoch end, not 30 s later
    assert [e[1] for e in seen.epochs] == [10, 10, 10, 40, 40]    # then at epoch ends >= 30 s apart
    assert torch.load(run.checkpoint, weights_only=True)["position"][0] == 40


def test_first_autosave_after_30_seconds_inside_a_long_first_epoch(tmp_path, clock):
    trainer, data, seen, saver, run = _trainer(tmp_path, clock, seconds=10.0)    # 100 s an epoch
    trainer.fit(data, epochs=1)
    assert seen.batches[:4] == [(1, None), (2, None), (3, 3), (4, 3)]        # 30 s: a mid-epoch resume point
    assert seen.epochs == [(STEPS, STEPS, True)]


def test_failed_autosave_keeps_training_retries_and_says_so(tmp_path, clock, full_disk, capsys):
    failures = full_disk({"checkpoint.pt"}, times=2)
    trainer, data, seen, saver, run = _trainer(tmp_path, clock, seconds=1.0, retry_s=5.0)
    trainer.fit(data)
    assert trainer.step == 3 * STEPS and trainer.status == "finished"    # training went on
    assert len(failures) == 2                         # epoch end (t=10) and the retry at t=15 failed
    assert seen.batches[19] == (20, 20)               # the retry at t=20 worked, mid-epoch
    assert seen.epochs == [(10, None, False), (20, 20, True), (30, 20, True)]
    assert torch.load(run.checkpoint, weights_only=True)["position"][0] == 20
    err = capsys.readouterr().err
    assert err.count("autosave at step 10 failed") == 1 and "No space left" in err
    assert "succeeded again" in err


def test_cli_end_of_run_save_is_retried(tmp_path, full_disk, monkeypatch, capsys):
    monkeypatch.setattr(cli_save, "SAVE_RETRY_WAITS", (0.0, 0.0))
    failures = full_disk({"checkpoint.pt"}, times=2)          # the autosave and the first final save
    assert cli.main(["train", *TINY, "--epochs", "1", "--out", str(tmp_path / "r")]) == 0
    assert len(failures) == 2
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["step"] == STEPS
    assert el.Trainer.from_checkpoint(tmp_path / "r" / "checkpoint.pt", device="cpu").step == STEPS
    assert "retrying" in capsys.readouterr().err


@pytest.mark.parametrize("names, summary_left", [({"checkpoint.pt"}, "failed"),
                                                 ({"checkpoint.pt", "summary.json", "history.json"}, None)])
def test_cli_full_disk_leaves_a_true_summary(tmp_path, full_disk, monkeypatch, capsys, names, summary_left):
    monkeypatch.setattr(cli_save, "SAVE_RETRY_WAITS", (0.0, 0.0))
    out = tmp_path / "r"
    assert cli.main(["train", *TINY, "--epochs", "1", "--out", str(out)]) == 0
    capsys.readouterr()
    full_disk(names)
    with pytest.raises(SystemExit) as exc:       # no: a save failure is not bad input; main returns 1
        raise SystemExit(cli.main(["train", "--resume", str(out), "--epochs", "1", "--quiet"]))
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("energylab train: error:") and "could not save the run" in err[-1]
    assert "Traceback" not in "\n".join(err)
    path = out / "summary.json"
    if summary_left is None:
        assert not path.exists()                  # no stale "finished, step 10" left behind
    else:
        summary = json.loads(path.read_text())
        assert summary["status"] == "failed" and summary["step"] == 2 * STEPS and summary["checkpoint_step"] is None
    # the checkpoint on disk is still the old, whole one
    assert el.Trainer.from_checkpoint(out / "checkpoint.pt", device="cpu").step == STEPS


def test_resume_log_is_written_at_resume_time_and_a_crash_leaves_a_failed_summary(tmp_path, monkeypatch, capsys):
    out = tmp_path / "r"
    assert cli.main(["train", *TINY, "--epochs", "1", "--out", str(out)]) == 0

    def crash(self, data, epochs=None):
        raise RuntimeError("killed mid-run")
    monkeypatch.setattr(el.Trainer, "fit", crash)
    for n in (1, 2, 3):
        assert cli.main(["train", "--resume", str(out), "--epochs", "1", "--quiet"]) == 1
        config = RunFolder(out).read_config()
        assert len(config["resumed"]) == n
        summary = json.loads((out / "summary.json").read_text())
        assert summary["status"] == "failed" and "killed mid-run" in summary["error"]
    assert "unexpected RuntimeError: killed mid-run" in capsys.readouterr().err


def test_end_of_run_work_shows_progress(tmp_path, capsys):
    argv = [a for a in TINY if a != "--quiet"]
    assert cli.main(["train", *argv, "--epochs", "1", "--out", str(tmp_path / "r")]) == 0
    err = capsys.readouterr().err
    assert "saving the run" in err and "Gibbs steps" in err and "saved in" in err


@pytest.mark.parametrize("umask, mode", [(0o002, 0o664), (0o022, 0o644), (0o077, 0o600)])
def test_run_files_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        assert cli.main(["train", *TINY, "--epochs", "1", "--out", str(tmp_path / "r")]) == 0
    finally:
        os.umask(old)
    for f in (tmp_path / "r").iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == mode, f.name


def test_end_of_run_sampling_is_bounded_for_large_models():
    """n_hidden = 1e5 on 784 pixels took 43 min of end-of-run sampling: the steps now shrink with size."""
    with torch.device("meta"):                       # sizes only: nothing allocated
        small, medium, large = (el.make("RBM", 784, n_hidden=n) for n in (500, 4000, 100000))
    size = lambda m: sum(p.numel() for p in m.parameters())
    assert cli_save.sample_steps(small) == 1000
    assert cli_save.sample_steps(medium) == int(cli_save.SAMPLE_BUDGET / (4 * 64 * size(medium))) < 1000
    assert cli_save.sample_steps(large) == 100
