"""The child process of a dashboard run: one `Trainer`, a command listener, throttled snapshots.

`runmanager.RunManager` spawns `main` in a fresh process (spawn, never fork, so
the child does not inherit the server's threads or locks; the target lives in
this importable module because a spawned child cannot import a Streamlit
script). Why a process and not a thread: with several browser tabs open the
server's page redraws hold Python's GIL and starved a training thread, while
a separate process kept its speed.

Inside the child:
- the main thread runs `Trainer.fit`;
- a listener thread blocks on the command queue and calls the trainer's
  thread-safe controls (`params.set`, pause, resume, step_once, stop);
- a callback publishes a snapshot at most every `snapshot_interval` seconds
  (time-based: one clock read per batch, a device sync only when a snapshot
  is actually taken), so the page never costs a sync per batch.

A snapshot costs the training thread its time, so it redoes only what changed:
a picture is re-encoded only when its pixels changed (fast zlib level), the
downsampled history only when records were logged, the exact distribution
only when the step moved (see `Cache`), a classifier's confusion matrix at most
every two seconds. The pictures are built in `worker_pictures.py`, a classifier's
view in `worker_classes.py`; this module is the process: events, commands, ends.

Every end leaves a checkpoint (`end`): finish, stop, divergence (the trainer has
restored its last good parameters), an exception, SIGTERM/SIGINT, and the
server's disappearance (a thread waits on the parent process and stops the run
within a second). A periodic autosave (`autosave_s`, and once after the first
epoch) covers kill -9. summary.json always says the status, the step, why the
run ended and the step of the checkpoint on disk.
"""
from __future__ import annotations

import os
import threading
import time
import traceback
from contextlib import nullcontext

import torch

from .. import datasets
from ..measures import metrics
from ..registry import make, size_checked
from ..store.runfolder import RunFolder
from ..training.trainer import Trainer
from .worker_classes import Classification
from .worker_ends import Ends
from .worker_pictures import Cache, Pictures, stack_phase, stack_state, write_run_files

HISTORY_POINTS = 300       # records sent to the browser per snapshot


class Worker(Ends):
    """Everything the child owns; `main` builds one and calls `run`."""

    def __init__(self, spec: dict, commands, snapshots):
        torch.set_num_threads(1)   # measured: default threads outside the main thread ran ~100x slower
        self.spec, self.commands, self.snapshots = spec, commands, snapshots
        self.folder = RunFolder(spec["folder"])
        self.data = datasets.load(spec["dataset"], **spec.get("dataset_options", {}))
        self.shape = self.data.image_shape
        options = dict(device=spec.get("device", "auto"), eval_every=spec.get("eval_every", 100),
                       callbacks=[self])
        if spec.get("max_weight") is not None:
            options["max_weight"] = spec["max_weight"]
        if spec.get("resume_from"):
            self.trainer = Trainer.from_checkpoint(spec["resume_from"], **options)
            for name, value in spec.get("training", {}).items():
                if self.trainer.params.param(name).live and value != self.trainer.params[name]:
                    self.trainer.params.set(name, value)
        else:
            # The run manager checked the model's size in its own process (`size_checked` in the spec):
            # building it here skips the meta-device check and the ~160 MB of compiler modules it imports.
            with size_checked() if spec.get("size_checked") else nullcontext():
                model = make(spec["variant"], n_visible=self.data.n_visible, **spec.get("model", {}))
            self.trainer = Trainer(model, **options, **spec.get("training", {}))
        self.device_name = (torch.cuda.get_device_name(self.trainer.device)
                            if self.trainer.device.type == "cuda" else "CPU")
        self.lock = threading.Lock()          # held by the training thread during a batch
        self.publish_lock = threading.Lock()
        self.interval = float(spec.get("snapshot_interval", 0.5))
        self.last_snapshot = self.last_persist = 0.0
        self.autosave_s = float(spec.get("autosave_s", 30.0))
        self.last_autosave = time.perf_counter()
        self.saved_step = None                # step of the checkpoint on disk (None: none yet)
        self.why = None                       # why the run ended, when something outside asked
        self.server_pid = os.getppid()
        self.rate_mark = (time.perf_counter(), self.trainer.step)
        self.rate = 0.0
        self.seq = 0
        self.stop_requested = False
        self.in_batch = False
        self.force = False                    # publish at the next batch end (after a step)
        self.stepping = None                  # weights before a single-stepped batch
        self.cache = Cache()
        self.pictures = Pictures(self.trainer, self.data, self.cache)
        self.classification = Classification(self.data, self.trainer.device)

    # -- trainer events (training thread) --------------------------------------------------
    def on_fit_start(self, trainer):
        if self.stop_requested:               # fit() clears the trainer's stop flag: a stop sent
            trainer.stop()                    # before training began must still hold

    def on_batch_start(self, trainer):
        self.lock.acquire()
        self.in_batch = True
        if trainer.single_stepping and self.stepping is None and self.shape is not None:
            self.stepping = (self.pictures.weights_before(), trainer.batch_rows())

    def on_batch_end(self, trainer):
        if self.stepping is not None:
            before, rows = self.stepping
            self.stepping = None
            self.pictures.record_step(before, rows)
            self.force = True
        self.in_batch = False
        self.lock.release()
        now = time.perf_counter()
        if self.force or now - self.last_snapshot >= self.interval:
            self.force = False
            self.publish()
            if now - self.last_persist >= 10.0:
                self.persist()
        if now - self.last_autosave >= self.autosave_s:
            self.autosave()

    def on_epoch_end(self, trainer):
        if self.saved_step is None:           # the first autosave: after the first epoch or autosave_s
            self.autosave()

    def on_evaluate(self, trainer, record):
        p_data = self.pictures.p_data             # a tiny model: KL(data || model) by enumeration
        if p_data is not None:
            trainer.history.log(trainer.step, exact_kl=metrics.exact_kl(trainer.model, p_data.to(trainer.device)))

    # -- snapshots ----------------------------------------------------------------------------
    @torch.no_grad()
    def snapshot(self) -> dict:
        t, now = self.trainer, time.perf_counter()
        (t0, s0) = self.rate_mark
        if now - t0 >= 0.25:
            self.rate = (t.step - s0) * t.params["batch_size"] / (now - t0)
            self.rate_mark = (now, t.step)
        h = t.history
        status = t.status
        if status in ("idle", "running") and t.parks_next:
            status = "paused"                 # it parks before its next batch (pause, last single step)
        elif status == "idle":
            status = "starting"               # built, about to enter its first batch
        # the epoch's length before fit() sets the trainer's own (a run loaded paused is drawn first)
        per_epoch = getattr(t, "steps_per_epoch", None) or -(-self.data.train.shape[0] // t.params["batch_size"])
        snap = {"id": self.spec["id"], "seq": self.seq, "status": status, "error": t.error,
                "step": t.step, "epoch": t.epoch + t.batch_index / max(per_epoch, 1),
                "samples_per_s": self.rate if status == "running" else 0.0,
                "elapsed": t.elapsed, "device": self.device_name, "params": t.params.values(),
                "pl_method": getattr(t, "pl_method", None), "time": time.time(),
                "history": self._history(h),
                "step_detail": self.pictures.step_detail}
        self.seq += 1
        progress = stack_phase(t)
        snap["stack"] = stack_state(t, progress)
        try:
            self.pictures.fill(snap, progress)
        except Exception as exc:              # a picture must never stop the training
            snap["pictures_note"] = f"no pictures for this model ({type(exc).__name__}: {exc})"
        try:                                  # a stack's head: once it trains
            head = progress is None or progress.layer == 0 or progress.fine_tuning
            snap["classification"] = self.classification.fields(t, applies=head, settled=status != "running")
        except Exception as exc:
            snap["classification_note"] = f"no classification view ({type(exc).__name__}: {exc})"
        return snap

    def _history(self, h) -> dict:
        """The bounded, downsampled history; recomputed only after new records or changes."""
        last = h.last()
        key = (len(h), last and last["step"], len(last or ()), len(h.changes), h.changes[-1:] if h.changes else None)
        return self.cache.get("history", key, lambda: {"records": h.downsampled(HISTORY_POINTS),
                                                        "changes": h.changes, "names": h.names()})

    def publish(self):
        # Serialised: a snapshot built before a pause must not overtake the one built after it.
        with self.publish_lock:
            self.last_snapshot = time.perf_counter()
            self.send(self.snapshot())

    def _publish_when_parked(self):
        """After pause: wait until the trainer stops advancing (a batch or an evaluation may be
        in flight), then publish, so the page shows the state the run is parked in."""
        for _ in range(50):
            step = self.trainer.step
            time.sleep(0.05)
            if step == self.trainer.step and self.trainer.status != "running":
                break
        self._while_paused(self.publish)

    def summary(self) -> dict:
        t = self.trainer
        return {"status": t.status, "error": t.error, "step": t.step, "epoch": t.epoch,
                "elapsed_s": round(t.elapsed, 3), "final": t.history.last() or {},
                "pseudo_log_likelihood_method": getattr(t, "pl_method", None),
                "params": t.params.values(), "device": self.device_name, "updated": time.time(),
                "why": self.why, "checkpoint": self.saved_step is not None, "saved_step": self.saved_step,
                "pid": os.getpid(), "server_pid": self.server_pid}

    def persist(self):
        self.last_persist = time.perf_counter()
        write_run_files(self.folder, self.trainer, self.summary(), self.shape)

    # -- commands (listener thread) ----------------------------------------------------------
    def listen(self):
        t = self.trainer
        while True:
            command, *args = self.commands.get()
            try:
                if command == "set":
                    t.params.set(*args)
                elif command == "pause":
                    t.pause()
                    self._publish_when_parked()
                elif command == "resume":
                    t.resume()
                elif command == "step":
                    t.step_once(int(args[0]) if args else 1)
                elif command == "save":
                    self._while_paused(self._save)
                elif command == "stop":
                    self.request_stop(args[0] if args else "stopped by its owner")
                    return
            except Exception as exc:  # a bad command must not kill the run: report it
                self.send({"id": self.spec["id"], "notice": f"{command} failed: {exc}"})

    def _save(self):
        self._checkpoint()
        self.persist()
        self.send({"id": self.spec["id"], "notice": f"checkpoint saved at step {self.trainer.step}"})

    def _while_paused(self, action):
        """Run `action` now if the trainer is parked between batches, else at the next batch end."""
        if self.lock.acquire(timeout=5.0):
            try:
                action()
            finally:
                self.lock.release()

    def run(self):
        if self.spec.get("start_paused"):
            self.trainer.pause()
        self.handle_signals()
        self.watch_parent()
        threading.Thread(target=self.listen, daemon=True, name="energylab-commands").start()
        self.publish()
        try:
            self.trainer.fit(self.data)
        except Exception:                     # status and message are already on the trainer
            if self.in_batch:                 # it failed inside a batch: free the batch lock
                self.in_batch = False
                self.lock.release()
            if self.trainer.error is None:
                self.trainer.status, self.trainer.error = "failed", traceback.format_exc(limit=3)
        self.end()

def main(spec: dict, commands, snapshots) -> None:
    """Entry point of the spawned child (see the module docstring)."""
    try:
        worker = Worker(spec, commands, snapshots)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        try:                                  # the folder says why, so a restarted server lists it truthfully
            RunFolder(spec["folder"]).write_summary({"status": "failed", "error": error, "step": 0,
                                                     "why": "the run could not start", "checkpoint": False})
        except Exception:
            pass
        snapshots.put({"id": spec["id"], "seq": -1, "status": "failed", "error": error,
                       "step": 0, "history": {"records": [], "changes": [], "names": []}, "params": {}})
        return
    worker.run()


def warm(commands, snapshots) -> None:
    """A training process started ahead of need (`RunManager(prewarm=True)`): it imports the engine
    (the slow part of a start) and waits for its run, so pressing Train costs only the data and the
    model. It exits quietly if its server goes away before a run arrives."""
    import multiprocessing

    # What a first start would otherwise pay on top of the engine's import (unpickling this target
    # imported the package): the bundled digits, and torch.optim's first optimizer, whose __init__
    # imports torch._dynamo (~1.4 s here). Not the meta device's own check: a run the manager has
    # size-checked skips it.
    datasets.load("digits")
    torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    started = threading.Event()
    parent = multiprocessing.parent_process()
    if parent is not None:
        def leave_if_idle():
            parent.join()
            if not started.is_set():
                os._exit(0)
        threading.Thread(target=leave_if_idle, daemon=True, name="energylab-warm-watch").start()
    message = commands.get()
    if message and message[0] == "start":
        started.set()
        main(message[1], commands, snapshots)
