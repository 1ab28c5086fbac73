"""How a dashboard run ends: every end leaves a checkpoint and a summary that tells the truth.

`Ends` is the part of `runworker.Worker` that deals with stopping and saving: the periodic
autosave (and the first one after the first epoch), the final save of every end (finish,
stop, divergence with the last good parameters, an exception), SIGTERM/SIGINT, the server's
disappearance (a thread blocks on the parent process's sentinel), and messages to a server
that may be gone (a bounded queue: drop rather than grow, flush the last one with a deadline).
It relies on the worker's `trainer`, `folder`, `snapshots`, `spec`, `lock`, `publish_lock`,
`persist()`, `snapshot()` and its `why`, `saved_step`, `last_autosave` and `stop_requested`.
"""
from __future__ import annotations

import multiprocessing
import queue
import signal
import threading
import time


class Ends:
    """Stopping, saving and leaving (a mixin of `runworker.Worker`)."""

    def autosave(self):
        """A resume point for kill -9 (training thread, between batches: the state is consistent)."""
        self.last_autosave = time.perf_counter()
        self._checkpoint()
        self.persist()

    def request_stop(self, why: str):
        """Stop after the current batch (any thread, a signal handler too); `end` then saves."""
        self.why = self.why or why
        self.stop_requested = True
        self.trainer.stop()

    def _checkpoint(self):
        self.folder.write_checkpoint(self.trainer)
        self.saved_step = self.trainer.step

    def send(self, msg: dict, wait: float = 0.0):
        """Put a message for the server; when the bounded queue is full (nobody reads), drop it."""
        try:
            self.snapshots.put(msg, timeout=wait) if wait else self.snapshots.put_nowait(msg)
        except queue.Full:
            pass

    # -- the server's disappearance and signals ------------------------------------------------
    def watch_parent(self):
        """Stop and save when the server process is gone (kill -9 included): the parent's sentinel
        becomes readable when it dies, so this thread wakes at once."""
        parent = multiprocessing.parent_process()
        if parent is None:                    # not a spawned child (tests run the worker in-process)
            return
        def wait():
            parent.join()
            self.request_stop("its server exited")
        threading.Thread(target=wait, daemon=True, name="energylab-parent-watch").start()

    def handle_signals(self):
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda signum, frame: self.request_stop(
                f"the server stopped it ({signal.Signals(signum).name})"))

    def end(self):
        """Every end: a final checkpoint of the last good state, then files and a last snapshot that
        say how it ended. A failed save is reported, never raised (the files still tell the truth)."""
        t = self.trainer
        if self.why is None:
            self.why = {"finished": "it trained all its epochs", "stopped": "stopped by its owner",
                        "failed": "it failed (see error)"}.get(t.status, t.status)
        try:
            self._checkpoint()
        except Exception as exc:
            self.why += f"; the final checkpoint could not be written ({type(exc).__name__}: {exc})"
        self.persist()
        self.publish_final()

    def publish_final(self):
        with self.publish_lock:
            self.send(self.snapshot(), wait=2.0)   # the server's reader, if it is still there
        if not hasattr(self.snapshots, "cancel_join_thread"):
            return                            # a plain queue (the worker run in-process by tests)
        # Flush the last snapshot into the pipe before exiting, but never hang on a reader that is
        # gone (a dead server): wait a few seconds, then exit without flushing.
        def flush():
            self.snapshots.close()
            self.snapshots.join_thread()
        flusher = threading.Thread(target=flush, daemon=True)
        flusher.start()
        flusher.join(5.0)
        if flusher.is_alive():
            self.snapshots.cancel_join_thread()
