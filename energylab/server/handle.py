"""The server's handle on one dashboard run: who owns it, its child process, commands in, snapshots out.

A run belongs to the browser session that started it. The session holds an
unguessable owner token; the run keeps only its digest (`owner_digest`), so the
token never reaches disk. Every command that changes a run (retune, pause,
step, stop, save) takes the caller's token and raises `RunAccessError` unless it
is the owner's or the instructor's. Reading a run (its snapshot, its files) needs
no token: watching never writes.

A run may wait in the manager's queue before it has a process (`status ==
"queued"`); `launch` spawns the child when its turn comes. The child's snapshot
queue is bounded: a child whose reader is gone drops snapshots instead of
growing (`runworker`).
"""
from __future__ import annotations

import hashlib
import hmac
import sys
import threading
import time
import types
from contextlib import contextmanager

from ..errors import RunAccessError, RunStateError
from ..registry import get as get_variant
from ..store.runfolder import RunFolder

ACTIVE = ("starting", "running", "paused")
ENDED = ("finished", "stopped", "failed")          # what a child reports when it ends by itself
SNAPSHOT_QUEUE = 8          # snapshots in flight per run; the reader keeps only the newest


def spawn(context, target, args: tuple, name: str):
    """A child process running `target(*args, commands, snapshots)`, with its two queues."""
    commands, snapshots = context.Queue(), context.Queue(SNAPSHOT_QUEUE)
    process = context.Process(target=target, args=(*args, commands, snapshots), daemon=True,
                              name=f"energylab-{name}")
    with _bare_main():
        process.start()
    return process, commands, snapshots


_MAIN_LOCK = threading.Lock()


@contextmanager
def _bare_main():
    """Spawn a child without re-running the server's __main__ in it. multiprocessing's spawn
    imports the parent's main module in the child (for a dashboard: Streamlit's command line),
    which cost every worker the import of Streamlit and printed "missing ScriptRunContext"
    warnings. The child only needs `runworker.main`, importable by name."""
    with _MAIN_LOCK:
        main = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            sys.modules["__main__"] = main


def summary_of(folder: RunFolder) -> dict:
    """A folder's summary.json as a dict; {} when it is missing, being replaced, or damaged."""
    try:
        summary = folder.read_summary() if folder.file("summary.json").is_file() else {}
    except (OSError, ValueError):
        return {}
    return summary if isinstance(summary, dict) else {}


def mark_ended(folder: RunFolder, status: str, why: str) -> None:
    """Make a folder's summary.json tell the truth about an end its child could not report itself
    (a crash, a cancelled queue entry, a server that died): status, why, and where the model is."""
    summary = summary_of(folder)
    summary.update(status=status, error=why if status == "failed" else summary.get("error"), why=why,
                   checkpoint=folder.checkpoint.is_file(), ended=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    folder.write_summary(summary)


def owner_digest(token: str | None) -> str | None:
    """The stored form of an owner token (SHA-256, hex); None for runs nobody owns (API, tests)."""
    return hashlib.sha256(token.encode()).hexdigest() if token else None


class Run:
    """One run: send commands (owner or instructor only), read the latest snapshot (anyone)."""

    def __init__(self, run_id: str, folder: RunFolder, config: dict, spec: dict, *, owner: str | None = None,
                 owner_label: str | None = None, instructor_digest: str | None = None):
        self.id, self.folder, self.config, self.spec = run_id, folder, config, spec
        self.variant = get_variant(config["variant"])
        self.owner, self.owner_label = owner_digest(owner), owner_label or "anonymous"
        self._instructor = instructor_digest
        self.process = self._commands = self._snapshots = None
        self._latest: dict | None = None
        self._lock = threading.Lock()
        self.notices: list[str] = []
        self.created = time.time()
        self.started: float | None = None
        self.cancelled = False
        self.on_exit = None                       # the manager's hook: a slot freed, start the next

    # -- ownership ------------------------------------------------------------------------
    def can_control(self, token: str | None) -> bool:
        """True for the owner's token and the instructor's key; a run nobody owns obeys anyone."""
        if self.owner is None:
            return True
        digest = owner_digest(token)
        return digest is not None and (hmac.compare_digest(digest, self.owner) or
                                       (self._instructor is not None and hmac.compare_digest(digest, self._instructor)))

    def _authorise(self, token, action: str):
        if not self.can_control(token):
            raise RunAccessError(f"this run belongs to {self.owner_label}; you can watch it but not {action} it",
                                 field="run", value=self.id, fix="start your own run on the Train page")

    # -- the child process ------------------------------------------------------------------
    def launch(self, context, target, warm=None):
        """Start the child that trains this run (called by the manager when a slot is free): hand the
        run to a warm process `(process, commands, snapshots)` if one is given, else spawn one."""
        if warm is not None:
            process, self._commands, self._snapshots = warm
            self._commands.put(("start", self.spec))
        else:
            process, self._commands, self._snapshots = spawn(context, target, (self.spec,), self.id)
        self.process = process
        self.started = time.time()
        threading.Thread(target=self._read, daemon=True, name=f"energylab-run-{self.id}").start()

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
        """The child exited: drain what it sent last; if it never said it ended, say it crashed
        and make the folder's summary say so too."""
        while True:
            try:
                msg = self._snapshots.get(timeout=0.2)
            except Exception:
                break
            self._take(msg)
        with self._lock:
            snap = self._latest or {"id": self.id, "step": 0, "params": {},
                                    "history": {"records": [], "changes": [], "names": []}}
        crashed = snap.get("status") not in ENDED      # it never said it ended
        if crashed and self.process.exitcode == 0:       # it did, in its files: trust them
            written = summary_of(self.folder)
            if written.get("status") in ENDED:
                snap = dict(snap, status=written["status"], error=written.get("error"),
                            step=written.get("step", snap.get("step", 0)))
                crashed = False
        if crashed:
            saved = self.folder.checkpoint.is_file()
            snap = dict(snap, status="failed", error=(
                f"the training process exited unexpectedly (exit code {self.process.exitcode}); "
                + ("its last autosave can be loaded" if saved else "it had not autosaved yet")))
            mark_ended(self.folder, "failed", snap["error"])     # the folder first, then the page
        with self._lock:
            self._latest = snap
        if self.on_exit is not None:
            self.on_exit(self)

    # -- reading (anyone) ---------------------------------------------------------------------
    def snapshot(self) -> dict | None:
        with self._lock:
            return self._latest

    @property
    def status(self) -> str:
        if self.process is None:
            return "cancelled" if self.cancelled else "queued"
        snap = self.snapshot()
        return snap["status"] if snap else "starting"

    @property
    def active(self) -> bool:
        """Training or about to: a process that is alive and has not reported an end."""
        return self.process is not None and self.status in ACTIVE and self.process.is_alive()

    @property
    def waiting(self) -> bool:
        return self.process is None and not self.cancelled

    # -- commands (owner or instructor) ----------------------------------------------------------
    def _send(self, token, action, *command):
        self._authorise(token, action)
        if self.process is None or not self.process.is_alive():
            hint = ("load its checkpoint from the start page to continue it" if self.folder.checkpoint.is_file()
                    else "start a new run")
            raise RunStateError(f"run {self.id} is {self.status}, so it cannot {action}", fix=hint)
        self._commands.put(command)

    def set(self, name: str, value, token: str | None = None):
        """Change a live hyperparameter; the run applies it at its next batch and records the change."""
        p = self.variant.param(name)
        if not p.live:
            raise ValueError(f"{name!r} cannot change while a run trains; stop it and start a new run")
        value = p.validate(value)
        self._send(token, "retune", "set", name, value)
        return value

    def pause(self, token: str | None = None):
        self._send(token, "pause", "pause")

    def resume(self, token: str | None = None):
        self._send(token, "resume", "resume")

    def step(self, n: int = 1, token: str | None = None):
        """While paused: run exactly n mini-batches, then pause again."""
        self._send(token, "step", "step", int(n))

    def save_checkpoint(self, token: str | None = None):
        """Write checkpoint.pt (a full resume point) into the run's folder now."""
        self._send(token, "save", "save")

    def stop(self, token: str | None = None):
        """Stop after the current batch; the child saves a final checkpoint. A queued run is cancelled."""
        self._authorise(token, "stop")
        if self.process is None:
            if not self.cancelled:
                self.cancelled = True
                mark_ended(self.folder, "cancelled", "stopped while it waited in the queue")
            return
        if self.process.is_alive():
            self._commands.put(("stop",))

    def wait(self, timeout: float = 30.0) -> bool:
        """Block until the child has exited (True) or `timeout` passed (False)."""
        if self.process is None:
            return self.cancelled
        self.process.join(timeout)
        return not self.process.is_alive()

    def kill(self):
        if self.process is not None and self.process.is_alive():
            self.process.terminate()      # the child's SIGTERM handler saves before it exits
            self.process.join(10)
        if self.process is not None and self.process.is_alive():
            self.process.kill()
