"""Training runs owned by a server: a queue, a child process each, owners, durable ends.

    manager = RunManager("runs", max_running=2)
    run = manager.start("RBM", "digits", model={"n_hidden": 64}, training={"lr": 0.05}, owner=token)
    run.set("lr", 0.01, token=token); run.pause(token); run.step(token=token); run.stop(token)
    run.snapshot()      # the latest throttled picture of the run (a dict), or None before the first

A run outlives the browser session that started it, but belongs to it: the
session's owner token (see `runhandle`) is needed to change it; anyone may watch.
`ENERGYLAB_INSTRUCTOR_KEY` names a key that controls every run (the dashboard's
instructor view). At most `max_running` runs train at once; further runs of
owners wait in a first-in-first-out queue (one waiting run per owner) and start
by themselves when a slot frees. Each run trains in its own *spawned* process
(see `runworker`), so page redraws cannot starve it and a crash cannot take the
server down.

Every end leaves a loadable checkpoint: the child saves on stop, finish,
divergence (the last good parameters), an exception, SIGTERM/SIGINT, and when
its server disappears (it watches its parent and exits within seconds); a
periodic autosave covers kill -9. The server stops its children with a final
save when it exits, and a new server marks folders a dead one left "running" as
interrupted. Streamlit is never imported here.
"""
from __future__ import annotations

import atexit
import multiprocessing
import os
import threading
import time
from collections import deque
from pathlib import Path

from .. import datasets
from ..errors import ConfigError
from ..registry import check_size
from ..registry import get as get_variant
from ..store.runfolder import RunFolder
from ..store.runrecord import DatasetSpec, RunConfig
from ..version import __version__
from . import worker as runworker
from .handle import ACTIVE, Run, mark_ended, owner_digest, spawn, summary_of

__all__ = ["RunManager", "Run", "RunLimitReached", "ACTIVE"]


class RunLimitReached(RuntimeError):
    """Starting one more run would exceed the cap (callers without an owner cannot queue)."""


def _pid_alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
        return True
    except (OSError, TypeError, ValueError):
        return False


class RunManager:
    """Starts runs or queues them, caps how many train at once, finds them again (live or on disk)."""

    def __init__(self, root="runs", max_running: int | None = None, snapshot_interval: float = 1.0,
                 autosave_s: float | None = None, instructor_key: str | None = None, prewarm: bool = False):
        self.root = Path(root)
        self.max_running = int(max_running or os.environ.get("ENERGYLAB_MAX_RUNS", 2))
        self.snapshot_interval = snapshot_interval
        self.autosave_s = float(autosave_s or os.environ.get("ENERGYLAB_AUTOSAVE_S", 30))
        key = instructor_key if instructor_key is not None else os.environ.get("ENERGYLAB_INSTRUCTOR_KEY")
        self._instructor = owner_digest(key) if key else None
        self._runs: dict[str, Run] = {}
        self._queue: deque[Run] = deque()
        self._lock = threading.RLock()
        self._context = multiprocessing.get_context("spawn")   # never fork a server with threads
        self._closed = False
        self._prewarm, self._warm = prewarm, None     # a training process with the engine imported, idle
        self._warm_lock = threading.Lock()
        if prewarm:
            self._make_warm()
            # the size check's first meta-device operation imports torch's compiler stack (~2 s): pay it
            # now, not at the first Train click
            threading.Thread(target=check_size, args=("RBM", 4, {"n_hidden": 2, "init_std": 0.01}),
                             daemon=True, name="energylab-prewarm-size").start()
        self.recovered = self._recover()
        atexit.register(self.shutdown)           # server exit: every child saves and stops
        threading.Thread(target=self._dispatch_forever, daemon=True, name="energylab-queue").start()

    # -- a previous server's leftovers ----------------------------------------------------------
    def _recover(self) -> list[str]:
        """Folders a dead server left "running" or "queued": say truthfully how they ended."""
        fixed = []
        for folder in RunFolder.list_runs(self.root):
            summary = summary_of(folder)
            status = summary.get("status")
            if status == "queued" and not _pid_alive(summary.get("server_pid")):
                mark_ended(folder, "cancelled", "its server stopped before the run's turn came")
            elif status in ACTIVE and not _pid_alive(summary.get("pid")):
                saved = folder.checkpoint.is_file()
                mark_ended(folder, "interrupted", "its server or training process stopped without a final save; "
                           + (f"the last autosave (step {summary.get('saved_step', '?')}) can be loaded"
                              if saved else "it had not autosaved yet"))
            else:
                continue
            fixed.append(folder.name)
        return fixed

    # -- ownership --------------------------------------------------------------------------------
    def is_instructor(self, key: str | None) -> bool:
        return self._instructor is not None and owner_digest(key) == self._instructor

    @property
    def has_instructor(self) -> bool:
        return self._instructor is not None

    # -- starting and queueing ---------------------------------------------------------------
    def start(self, variant: str, dataset: str = "digits", *, model: dict | None = None,
              training: dict | None = None, dataset_options: dict | None = None, device: str = "auto",
              eval_every: int = 100, max_weight: float | None = None, resume_from=None,
              start_paused: bool = False, owner: str | None = None, owner_label: str | None = None) -> Run:
        """Start a run now, or queue it when the cap is reached (owners only; one waiting run each).
        Hyperparameters are checked here, so a bad value fails at once, in this process."""
        v = get_variant(variant)
        model = {p.name: p.validate(value) for p, value in
                 ((v.param(k), val) for k, val in (model or {}).items())}
        training = {p.name: p.validate(value) for p, value in
                    ((v.param(k), val) for k, val in (training or {}).items())}
        info = datasets.DATASETS.get(dataset)
        if info is None:
            raise ConfigError(f"unknown dataset {dataset!r}", field="dataset", value=dataset,
                              fix=f"choose one of {', '.join(datasets.DATASETS)}")
        model = {**v.defaults_for_kind(info.kind), **model}      # a stack on real data: Gaussian first layer
        v.check_kind(info.kind, dataset, model)
        size_checked = self._check_size(v, dataset, dataset_options, model)
        with self._lock:
            if self._closed:
                raise RunLimitReached("the server is shutting down; start the run again when it is back")
            digest = owner_digest(owner)
            if digest is not None and any(r.owner == digest for r in self._queue):
                raise RunLimitReached("you already have a run waiting in the queue; it starts by itself "
                                      "when a slot frees (stop it to choose other settings)")
            full = len(self._training()) >= self.max_running
            if full and owner is None:
                running = self._training()
                raise RunLimitReached(
                    f"{len(running)} runs are already training and the limit is {self.max_running} "
                    f"(ENERGYLAB_MAX_RUNS): stop one of them ({', '.join(r.id for r in running)}) first")
            folder = RunFolder.create(self.root, variant, dataset)
            record = RunConfig(variant, DatasetSpec(dataset, dict(dataset_options or {}), kind=info.kind),
                               model=model, training={**v.defaults("training"), **training}, source="dashboard",
                               id=folder.name, owner=digest, owner_label=owner_label, device=device,
                               eval_every=int(eval_every), resume_from=str(resume_from) if resume_from else None,
                               created=time.strftime("%Y-%m-%dT%H:%M:%S%z"), energylab_version=__version__)
            folder.write_record(record)
            config = record.to_dict()
            spec = {"id": folder.name, "folder": str(folder.path), "variant": variant, "dataset": dataset,
                    "dataset_options": dict(dataset_options or {}), "model": model, "training": training,
                    "device": device, "eval_every": int(eval_every), "max_weight": max_weight,
                    "resume_from": record.resume_from, "snapshot_interval": self.snapshot_interval,
                    "autosave_s": self.autosave_s, "start_paused": start_paused, "size_checked": size_checked}
            run = Run(folder.name, folder, config, spec, owner=owner, owner_label=owner_label,
                      instructor_digest=self._instructor)
            run.on_exit = lambda _: self._dispatch()
            self._runs[run.id] = run
            if full:
                folder.write_summary({"status": "queued", "step": 0, "queued": time.time(),
                                      "server_pid": os.getpid()})
                self._queue.append(run)
            else:
                run.launch(self._context, runworker.main, warm=self._take_warm())
            return run

    @staticmethod
    def _check_size(variant, dataset: str, options: dict | None, model: dict) -> bool:
        """A model too large for the limits or this machine's memory fails here, at the Train click,
        before any process starts (registry.check_size); True when checked, so that the training
        process skips the check and the ~160 MB of modules torch's meta device imports. A user's
        file, whose size only the file knows, is checked in the training process instead."""
        n_visible = datasets.n_visible_of(dataset, options)
        if n_visible is None:
            return False
        values = {p.name: p.validate(model.get(p.name, p.default)) for p in variant.params}
        check_size(variant.name, n_visible, values)
        return True

    # -- a warm process: the engine imported before Train is pressed -------------------------------
    def _make_warm(self):
        with self._warm_lock:
            if self._warm is None and not self._closed:
                self._warm = spawn(self._context, runworker.warm, (), "warm")

    def _take_warm(self):
        """The warm process for a run that starts now (a new one is made in the background)."""
        if not self._prewarm:
            return None
        with self._warm_lock:
            warm, self._warm = self._warm, None
        threading.Thread(target=self._make_warm, daemon=True, name="energylab-prewarm").start()
        return warm if warm is not None and warm[0].is_alive() else None

    def _training(self) -> list[Run]:
        """Runs holding a slot: launched and not yet exited."""
        return [r for r in self._runs.values() if r.process is not None and r.process.is_alive()]

    def _dispatch(self):
        """Start queued runs, oldest first, while slots are free."""
        with self._lock:
            while self._queue and not self._closed:
                if self._queue[0].cancelled:
                    self._queue.popleft()
                    continue
                if len(self._training()) >= self.max_running:
                    return
                self._queue.popleft().launch(self._context, runworker.main, warm=self._take_warm())

    def _dispatch_forever(self):
        while not self._closed:
            self._dispatch()
            time.sleep(0.5)

    def queue_position(self, run: Run) -> int | None:
        """1 for the next run to start; None when the run is not waiting."""
        with self._lock:
            waiting = [r for r in self._queue if not r.cancelled]
            return waiting.index(run) + 1 if run in waiting else None

    # -- finding runs -----------------------------------------------------------------------------
    def get(self, run_id: str | None) -> Run | None:
        """The live handle of a run this server started (None for runs only on disk)."""
        with self._lock:
            return self._runs.get(run_id) if run_id else None

    def active(self) -> list[Run]:
        with self._lock:
            return [r for r in self._runs.values() if r.active]

    def waiting(self) -> list[Run]:
        with self._lock:
            return [r for r in self._queue if not r.cancelled]

    def list_runs(self, token: str | None = None) -> list[dict]:
        """Every run under the root folder, newest first: live ones with their current status,
        earlier ones (also from a previous server or the command line) as their files say. `mine`
        says whether `token` controls the run; unreadable folders are skipped (see runfolder)."""
        rows = []
        for folder in RunFolder.list_runs(self.root):
            record = folder.record
            if record is None:               # listed with its reason, never loaded
                rows.append({"id": folder.name, "path": str(folder.path), "variant": None, "dataset": None,
                             "dataset_options": {}, "status": "unreadable", "live": False, "step": 0,
                             "samples_per_s": 0.0, "error": folder.error, "why": folder.error, "created": "",
                             "checkpoint": False, "owner_label": "?", "mine": False, "queue_position": None})
                continue
            live = self.get(folder.name)
            summary = summary_of(folder)
            snap = (live.snapshot() or {}) if live else {}
            status = live.status if live else summary.get("status", "unknown")
            if not live and status in ACTIVE + ("queued",):
                status = "interrupted"       # the server that ran it has gone
            rows.append({
                "id": folder.name, "path": str(folder.path), "variant": record.variant,
                "dataset": record.dataset.name, "dataset_options": dict(record.dataset.options),
                "status": status, "live": bool(live),
                "step": snap.get("step", 0) if live else summary.get("step", 0),
                "samples_per_s": snap.get("samples_per_s", 0.0) if live else 0.0,
                "error": snap.get("error") if live else summary.get("error"),
                "why": summary.get("why"), "created": record.created or "",
                "checkpoint": folder.checkpoint.is_file(), "owner_label": record.owner_label or
                ("command line" if record.source == "cli" else "anonymous"),
                "mine": (live.can_control(token) if live else
                         record.owner is None or (token is not None and
                                                  owner_digest(token) in (record.owner, self._instructor))),
                "queue_position": self.queue_position(live) if live else None})
        return rows

    # -- the end ----------------------------------------------------------------------------------
    def shutdown(self, timeout: float = 15.0):
        """Server exit (and tests): cancel the queue, stop every child, wait for its final save."""
        with self._lock:
            self._closed = True
            runs = list(self._runs.values())
            queued, self._queue = list(self._queue), deque()
        with self._warm_lock:
            warm, self._warm = self._warm, None
        if warm is not None:              # idle, no run to save: end it now, and before its queues go
            warm[0].terminate()
            warm[0].join(10)
        for run in queued:
            if not run.cancelled:
                run.cancelled = True
                mark_ended(run.folder, "cancelled", "the server stopped before the run's turn came")
        for run in runs:
            if run.process is not None and run.process.is_alive():
                run._commands.put(("stop", "the server shut down"))
        deadline = time.monotonic() + timeout
        for run in runs:
            if run.process is not None and not run.wait(max(0.1, deadline - time.monotonic())):
                run.kill()
