"""Training runs owned by a server: ids, a child process each, commands in, snapshots out.

    manager = RunManager("runs", max_running=2)
    run = manager.start("RBM", "digits", model={"n_hidden": 64}, training={"lr": 0.05})
    run.set("lr", 0.01); run.pause(); run.step(); run.resume(); run.save_checkpoint(); run.stop()
    run.snapshot()      # the latest throttled picture of the run (a dict), or None before the first

A run outlives the browser session that started it: any number of tabs can
attach to it by id, and a reload only re-attaches. Each run trains in its own
*spawned* process (see `runworker` for why a process, why spawn, why one torch
thread), so page redraws cannot starve it and a crashing or diverging run
cannot take the server down. Every run writes a `RunFolder` (config.json,
history, summary.json, weights.png, checkpoint.pt on request), so a restarted
server lists earlier runs. Streamlit is never imported here.
"""
from __future__ import annotations

import multiprocessing
import os
import threading
import time
import uuid
from pathlib import Path

from . import datasets, runworker
from .registry import get as get_variant
from .runfolder import RunFolder

ACTIVE = ("starting", "running", "paused")


class RunLimitReached(RuntimeError):
    """Starting one more run would exceed the cap on concurrent runs."""


class Run:
    """The server's handle on one live run: send commands, read the latest snapshot."""

    def __init__(self, run_id: str, folder: RunFolder, config: dict, process, commands, snapshots):
        self.id, self.folder, self.config = run_id, folder, config
        self.variant = get_variant(config["variant"])
        self.process, self._commands, self._snapshots = process, commands, snapshots
        self._latest: dict | None = None
        self._lock = threading.Lock()
        self.notices: list[str] = []
        self.started = time.time()
        threading.Thread(target=self._read, daemon=True, name=f"energylab-run-{run_id}").start()

    # -- snapshots (a reader thread keeps only the newest) ----------------------------
    def _read(self):
        while True:
            try:
                msg = self._snapshots.get(timeout=0.5)
            except Exception:               # queue.Empty, or the queue broke with the child
                if not self.process.is_alive():
                    self._child_gone()
                    return
                continue
            self._take(msg)

    def _take(self, msg: dict) -> None:
        """Keep a message from the child: the newest snapshot, or one of the last five notices."""
        with self._lock:
            if "notice" in msg:
                self.notices = (self.notices + [msg["notice"]])[-5:]
            else:
                self._latest = msg

    def _child_gone(self):
        """The child exited: drain what it sent last; if it never said it ended, say it crashed."""
        while True:
            try:
                msg = self._snapshots.get(timeout=0.2)
            except Exception:
                break
            self._take(msg)
        with self._lock:
            snap = self._latest or {"id": self.id, "step": 0, "params": {},
                                    "history": {"records": [], "changes": [], "names": []}}
            if snap.get("status") in ACTIVE or snap.get("status") is None:
                snap = dict(snap, status="failed", error=f"the training process exited unexpectedly "
                                                         f"(exit code {self.process.exitcode})")
            self._latest = snap

    def snapshot(self) -> dict | None:
        with self._lock:
            return self._latest

    @property
    def status(self) -> str:
        snap = self.snapshot()
        return snap["status"] if snap else "starting"

    @property
    def active(self) -> bool:
        return self.status in ACTIVE and self.process.is_alive()

    # -- commands -----------------------------------------------------------------------
    def _send(self, *command):
        if not self.process.is_alive():
            raise RuntimeError(f"run {self.id} is {self.status}; start a new run (or load its checkpoint)")
        self._commands.put(command)

    def set(self, name: str, value):
        """Change a live hyperparameter; the run applies it at its next batch and records the change."""
        p = self.variant.param(name)
        if not p.live:
            raise ValueError(f"{name!r} cannot change while a run trains; stop it and start a new run")
        value = p.validate(value)
        self._send("set", name, value)
        return value

    def pause(self):
        self._send("pause")

    def resume(self):
        self._send("resume")

    def step(self, n: int = 1):
        """While paused: run exactly n mini-batches, then pause again."""
        self._send("step", int(n))

    def stop(self):
        if self.process.is_alive():
            self._commands.put(("stop",))

    def save_checkpoint(self):
        """Write checkpoint.pt (a full resume point) into the run's folder."""
        self._send("save")

    def wait(self, timeout: float = 30.0) -> bool:
        """Block until the child has exited (True) or `timeout` passed (False)."""
        self.process.join(timeout)
        return not self.process.is_alive()

    def kill(self):
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)


class RunManager:
    """Starts runs, caps how many train at once, finds them again by id (live or on disk)."""

    def __init__(self, root="runs", max_running: int | None = None, snapshot_interval: float = 1.0):
        self.root = Path(root)
        self.max_running = int(max_running or os.environ.get("ENERGYLAB_MAX_RUNS", 2))
        self.snapshot_interval = snapshot_interval
        self._runs: dict[str, Run] = {}
        self._lock = threading.Lock()
        self._context = multiprocessing.get_context("spawn")   # never fork a server with threads

    def active(self) -> list[Run]:
        with self._lock:
            return [r for r in self._runs.values() if r.active]

    def start(self, variant: str, dataset: str = "digits", *, model: dict | None = None,
              training: dict | None = None, dataset_options: dict | None = None, device: str = "auto",
              eval_every: int = 100, max_weight: float | None = None, resume_from=None,
              start_paused: bool = False) -> Run:
        """Spawn a run. Hyperparameters are checked here, so a bad value fails at once, in this process."""
        v = get_variant(variant)
        model = {p.name: p.validate(value) for p, value in
                 ((v.param(k), val) for k, val in (model or {}).items())}
        training = {p.name: p.validate(value) for p, value in
                    ((v.param(k), val) for k, val in (training or {}).items())}
        info = datasets.DATASETS.get(dataset)
        if info is not None:       # a stack on real data gets a Gaussian first layer unless told otherwise
            model = {**v.defaults_for_kind(info.kind), **model}
            v.check_kind(info.kind, dataset, model)
        with self._lock:
            running = [r for r in self._runs.values() if r.active]
            if len(running) >= self.max_running:
                raise RunLimitReached(
                    f"{len(running)} runs are already training and the limit is {self.max_running} "
                    f"(ENERGYLAB_MAX_RUNS): stop one of them ({', '.join(r.id for r in running)}) first")
            folder = RunFolder.create(self.root, variant, dataset)
            run_id = folder.name
            config = {"id": run_id, "variant": variant, "dataset": dataset,
                      "dataset_options": dict(dataset_options or {}), "model": model,
                      "training": {**v.defaults("training"), **training}, "device": device,
                      "eval_every": int(eval_every), "source": "dashboard",
                      "resume_from": str(resume_from) if resume_from else None,
                      "created": time.strftime("%Y-%m-%d %H:%M:%S")}
            folder.write_config(config)
            spec = dict(config, folder=str(folder.path), training=training, max_weight=max_weight,
                        snapshot_interval=self.snapshot_interval, start_paused=start_paused)
            commands, snapshots = self._context.Queue(), self._context.Queue()
            process = self._context.Process(target=runworker.main, args=(spec, commands, snapshots),
                                            daemon=True, name=f"energylab-{run_id}")
            process.start()
            run = Run(run_id, folder, config, process, commands, snapshots)
            self._runs[run_id] = run
            return run

    def get(self, run_id: str) -> Run | None:
        """The live handle of a run this server started (None for runs only on disk)."""
        with self._lock:
            return self._runs.get(run_id)

    def list_runs(self) -> list[dict]:
        """Every run under the root folder, newest first: live ones with their current status,
        earlier ones (also from a previous server or the command line) as their files say."""
        rows = []
        for folder in RunFolder.list_runs(self.root):
            try:
                config = folder.read_config()
            except (OSError, ValueError):
                continue
            live = self.get(folder.name)
            summary = {}
            if (folder.path / "summary.json").is_file():
                try:
                    summary = folder.read_summary()
                except (OSError, ValueError):
                    pass
            status = live.status if live else summary.get("status", "unknown")
            if not live and status in ACTIVE:
                status = "interrupted"       # the server that ran it has gone
            dataset, options = folder.dataset_spec(config)
            rows.append({"id": folder.name, "path": str(folder.path), "variant": config.get("variant"),
                         "dataset": dataset, "dataset_options": options, "status": status, "live": bool(live),
                         "step": (live.snapshot() or {}).get("step", 0) if live else summary.get("step", 0),
                         "error": summary.get("error") if not live else (live.snapshot() or {}).get("error"),
                         "created": config.get("created", ""), "checkpoint": folder.checkpoint.is_file()})
        return rows

    def shutdown(self, timeout: float = 5.0):
        """Stop every live run and wait for the children (tests, server exit)."""
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            run.stop()
        for run in runs:
            if not run.wait(timeout):
                run.kill()
