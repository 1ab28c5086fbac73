"""How `energylab train` keeps a run on disk: the progress bar, autosave, and the end-of-run save.

Autosave writes the checkpoint and history after the first epoch or 30 s, whichever comes
first, then at epoch ends at most every 30 s. No write error stops training: a failed
autosave (a full disk) is reported once and retried while the state stays in memory; the
end-of-run save is retried too, and if it never succeeds summary.json is made to tell the
truth (status "failed", the step of the newest checkpoint on disk) or is removed when
even that cannot be written, and the error says what was lost.
"""
from __future__ import annotations

import sys
import time

from ..errors import RunStateError
from ..store.runfolder import RunFolder
from ..training.trainer import Callback


class ProgressBar(Callback):
    """A tqdm bar over mini-batches; the last measurements as its postfix (no device sync: the
    trainer's evaluation already produced Python floats)."""

    def __init__(self, disable: bool = False):
        self.disable, self.bar = disable, None

    def on_fit_start(self, trainer):
        from tqdm.auto import tqdm
        self.bar = tqdm(total=trainer.total_steps, initial=trainer.step, unit="batch", disable=self.disable,
                        dynamic_ncols=True, file=sys.stderr)

    def on_epoch_start(self, trainer):
        # a stack's or a pretrained DBM's plan is longer than `epochs`: count the plan's epochs
        total = trainer.total_steps // max(trainer.steps_per_epoch, 1)
        self.bar.set_description(f"epoch {trainer.epoch + 1}/{total}")

    def on_batch_end(self, trainer):
        self.bar.update(1)

    def on_evaluate(self, trainer, record):
        shown = {"recon": "recon_error", "PL": "pseudo_log_likelihood", "PL~": "pseudo_log_likelihood_1bit",
                 "LL": "exact_log_likelihood", "acc": "accuracy"}
        self.bar.set_postfix({k: f"{record[v]:.4g}" for k, v in shown.items() if v in record}, refresh=False)

    def on_fit_end(self, trainer):
        self.bar.close()


class Autosave(Callback):
    """Checkpoint and history, so an interrupted run can be resumed and a dashboard can follow it.

    The first save comes at the end of the first epoch or after `every_s` seconds, whichever is
    first (a mid-epoch checkpoint is a valid resume point), later ones at epoch ends at most every
    `every_s` seconds. A failed write (a full disk, a lost mount) does not stop training: the
    state stays in memory, the failure is reported once, and the save is retried after `retry_s`.
    `saved_step` is the step of the newest checkpoint on disk (None: none yet)."""

    def __init__(self, run: RunFolder, every_s: float = 30.0, retry_s: float = 5.0):
        self.run, self.every_s, self.retry_s = run, every_s, retry_s
        self.next_try, self.saved_step, self.failing = time.monotonic() + every_s, None, False

    def on_batch_end(self, trainer):      # one clock read a batch; never in a distributed run (collective)
        if (self.saved_step is None or self.failing) and trainer.dist is None and time.monotonic() >= self.next_try:
            self.save(trainer)

    def on_epoch_end(self, trainer):
        due = self.saved_step is None or time.monotonic() >= self.next_try
        if trainer.dist is not None:     # rank 0's clock decides for all: the checkpoint is collective
            due = trainer.dist.any(due and trainer.dist.is_main)
        if due:
            self.save(trainer)

    def save(self, trainer) -> bool:
        try:
            self.run.write_checkpoint(trainer)
            self.run.write_history(trainer.history)
        except OSError as exc:
            if not self.failing:
                print(f"\nenergylab train: warning: autosave at step {trainer.step} failed ({_os_reason(exc)}); "
                      f"training continues with its state in memory, retrying every {self.retry_s:g} s",
                      file=sys.stderr)
            self.failing, self.next_try = True, time.monotonic() + self.retry_s
            return False
        if self.failing:
            print(f"\nenergylab train: autosave at step {trainer.step} succeeded again", file=sys.stderr)
        self.failing, self.saved_step, self.next_try = False, trainer.step, time.monotonic() + self.every_s
        return True


def _os_reason(exc: OSError) -> str:
    return f"{exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}"


#: seconds to wait before each retry of the end-of-run save (a full disk may be freed meanwhile)
SAVE_RETRY_WAITS = (2.0, 10.0)


#: the end-of-run model samples get at most this many multiply-adds of Gibbs sampling (64 chains);
#: a model with more parameters than 1000 full steps allow draws with fewer steps (at least 100)
SAMPLE_BUDGET = 4e11


def sample_steps(model, n_samples: int = 64) -> int:
    """Gibbs steps for the end-of-run samples: 1000, fewer for a model too large to sample that long."""
    size = sum(p.numel() for p in model.parameters())
    return int(min(1000, max(100, SAMPLE_BUDGET / (4 * n_samples * max(size, 1)))))


def _save_run(run, trainer, data, config, autosave) -> dict:
    """The end-of-run save, retried on an OS error; if it never succeeds summary.json is made true
    (or removed when even that cannot be written) and the error names the newest checkpoint on disk."""
    for wait in SAVE_RETRY_WAITS + (None,):
        try:
            run.write_record(config) if hasattr(config, "to_dict") else run.write_config(config)
            return run.save_trainer(trainer, data.image_shape, data.kind,
                                    examples=data.test if len(data.test) else data.train,
                                    sample_steps=sample_steps(trainer.model))
        except OSError as exc:
            failure = exc
            if wait is None:
                break
            print(f"energylab train: warning: saving the run failed ({_os_reason(exc)}); the trained state is in "
                  f"memory, retrying in {wait:g} s", file=sys.stderr, flush=True)
            time.sleep(wait)
    _write_failed_summary(run, trainer, failure, saved_step=autosave.saved_step)
    on_disk = "no checkpoint" if autosave.saved_step is None else f"the checkpoint of step {autosave.saved_step}"
    raise RunStateError(f"could not save the run after {len(SAVE_RETRY_WAITS) + 1} tries ({_os_reason(failure)}); "
                        f"the {trainer.step} steps trained are lost beyond {on_disk}", file=run.path,
                        fix="free disk space, then resume the run (or start it again)")


def _write_failed_summary(run, trainer, exc, saved_step=None) -> None:
    """A true summary.json after a failure; if even that cannot be written, no stale one is left."""
    summary = {"status": "failed", "error": f"{type(exc).__name__}: {exc}", "step": trainer.step,
               "epoch": trainer.epoch, "checkpoint_step": saved_step, "final": trainer.history.last() or {},
               "images": [], "notes": []}
    try:
        run.write_summary(summary)
    except OSError:
        run.file("summary.json").unlink(missing_ok=True)
