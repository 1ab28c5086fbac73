"""Live hyperparameters: one small thread-safe record the trainer reads at every batch.

A dashboard slider (another thread, or another process through a queue) calls
`set`; the training loop calls `poll` before each mini-batch and gets the
changes made since the previous poll, so a new value takes effect on the next
batch. Reading costs one integer comparison when nothing changed: no lock,
no host sync on the hot path.
"""
from __future__ import annotations

import threading

from ..registry import Param


class LiveParams:
    def __init__(self, schema: tuple[Param, ...], values: dict):
        self._schema = {p.name: p for p in schema}
        self._values = dict(values)
        self._pending: list[tuple[str, object]] = []
        self._lock = threading.Lock()
        self._version = 0           # bumped by set(); compared without the lock by poll()
        self._seen = 0
        self.running = False        # while True, only `live` parameters may change

    def __getitem__(self, name):
        return self._values[name]

    def values(self) -> dict:
        with self._lock:
            return dict(self._values)

    def param(self, name: str) -> Param:
        if name not in self._schema:
            raise KeyError(f"unknown hyperparameter {name!r}; known: {sorted(self._schema)}")
        return self._schema[name]

    def set(self, name: str, value) -> object:
        """Request a new value; validated now, applied by the trainer at its next batch."""
        p = self.param(name)
        value = p.validate(value)
        if self.running and not p.live:
            raise ValueError(f"{name!r} cannot change while training runs; stop the run and start a new one")
        with self._lock:
            self._pending.append((name, value))
            self._version += 1
        return value

    def poll(self) -> list[tuple[str, object, object]]:
        """Apply pending requests; return [(name, old, new)] for values that actually changed."""
        if self._version == self._seen:
            return []
        with self._lock:
            pending, self._pending = self._pending, []
            self._seen = self._version
            changes = []
            for name, value in pending:
                old = self._values.get(name)
                if old != value:
                    self._values[name] = value
                    changes.append((name, old, value))
            return changes

    def assign(self, name: str, value) -> None:
        """Set a value from inside the training loop (a schedule), without recording a change."""
        with self._lock:
            self._values[name] = value
