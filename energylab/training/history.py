"""A bounded, thread-safe record of training metrics and hyperparameter changes.

The trainer logs from a worker thread while the dashboard polls from the UI
thread, and a run may last millions of steps, so the history must stay small
(O(capacity)) and every read must hand back a copy the reader can keep.
"""
from __future__ import annotations

import csv
import io
import json
import math
import threading
from bisect import bisect_right
from collections import deque

from ..jsonvalues import from_json, jsonable

_FORMAT_VERSION = 1


def _clean(value):
    """Plain Python numbers only, so records never pin tensors or numpy scalars."""
    if isinstance(value, (bool, int)):
        return int(value)
    return float(value)


def evenly_spaced(n: int, k: int) -> list[int]:
    """At most k indices in range(n), evenly spread, always holding 0 and n - 1."""
    if n <= k:
        return list(range(n))
    if k < 2:
        raise ValueError("need room for at least the first and the last point")
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


class History:
    """Metric records ``{"step": int, name: value, ...}`` plus hyperparameter changes.

    Bounding policy. When the record count reaches ``capacity`` the newest half
    is left at full resolution (the dashboard shows recent progress in detail)
    and the older half is thinned to every other record. "Every other" is taken
    on a grid of log sequence numbers whose stride doubles each time the old part
    is full again, rather than by re-halving whatever survived last time: naive
    re-halving erodes the oldest data exponentially, so after a long run only
    the last few thousand logs would remain. With the stride the old part stays
    evenly spread from step 0 to the recent window: the whole run is covered,
    at a resolution that drops with age, in O(capacity) memory.
    Never dropped while thinning: the first record (where the run started) and,
    for each recorded hyperparameter change, the first record at or after its
    step (so the kink it causes stays visible). Changes are bounded too
    (``max_changes``, oldest forgotten first), and change points may take at
    most half of the old part's room; beyond that the oldest lose protection.
    """

    def __init__(self, capacity: int = 2000, max_changes: int = 500):
        if capacity < 16:
            raise ValueError("capacity must be at least 16")
        self.capacity = int(capacity)
        self._lock = threading.RLock()
        self._records: list[dict] = []
        self._seq: list[int] = []  # log sequence number of each kept record
        self._n_logged = 0
        self._stride = 1
        self._names: dict[str, None] = {}  # insertion-ordered set
        self._changes: deque[dict] = deque(maxlen=int(max_changes))

    # ----------------------------------------------------------------- writing
    def log(self, step: int, **metrics: float) -> None:
        record = {"step": int(step)}
        record.update((k, _clean(v)) for k, v in metrics.items())
        with self._lock:
            for name in metrics:
                self._names.setdefault(name, None)
            self._records.append(record)
            self._seq.append(self._n_logged)
            self._n_logged += 1
            if len(self._records) >= self.capacity:
                self._thin()

    def change(self, step: int, name: str, old, new) -> None:
        with self._lock:
            self._changes.append(
                {"step": int(step), "name": str(name), "old": old, "new": new})

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
            self._seq.clear()
            self._n_logged = 0
            self._stride = 1
            self._names.clear()
            self._changes.clear()

    def _protected(self, upto: int) -> list[bool]:
        """Which of the first ``upto`` records must survive thinning."""
        change_steps = sorted(c["step"] for c in self._changes)
        keep = [False] * upto
        prev = -math.inf
        for i in range(upto):
            step = self._records[i]["step"]
            # a change step in (previous step, this step] lands on this record
            if bisect_right(change_steps, step) > bisect_right(change_steps, prev):
                keep[i] = True
            prev = step
        if upto:
            keep[0] = True
        return keep

    def _thin(self) -> None:
        recent = self.capacity // 2
        old = len(self._records) - recent
        # The old part may hold at most a quarter of capacity after thinning,
        # so the next thinning is a quarter of capacity logs away: each costs
        # O(capacity), which makes logging O(1) amortised.
        budget = self.capacity // 4
        protected = self._protected(old)
        # Change points may fill at most half the budget (the newest win), so
        # a run with a change every few steps still keeps an even backbone.
        marked = [i for i in range(1, old) if protected[i]]
        for i in marked[: max(0, len(marked) - budget // 2)]:
            protected[i] = False
        while True:
            keep = [protected[i] or self._seq[i] % self._stride == 0 for i in range(old)]
            if sum(keep) <= budget:
                break
            self._stride *= 2  # every other grid point of the old part goes
        keep += [True] * recent
        self._records = [r for r, k in zip(self._records, keep) if k]
        self._seq = [s for s, k in zip(self._seq, keep) if k]

    # ----------------------------------------------------------------- reading
    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    @property
    def records(self) -> list[dict]:
        with self._lock:
            return [dict(r) for r in self._records]

    @property
    def changes(self) -> list[dict]:
        with self._lock:
            return [dict(c) for c in self._changes]

    def names(self) -> list[str]:
        """Metric names ever logged, in first-seen order (``step`` excluded)."""
        with self._lock:
            return list(self._names)

    def series(self, name: str) -> tuple[list[int], list[float]]:
        with self._lock:
            pairs = [(r["step"], r[name]) for r in self._records if name in r]
        return [s for s, _ in pairs], [v for _, v in pairs]

    def last(self, name: str | None = None):
        """Last record (a copy), or the last value of ``name``; None if absent."""
        with self._lock:
            if name is None:
                return dict(self._records[-1]) if self._records else None
            for r in reversed(self._records):
                if name in r:
                    return r[name]
        return None

    def downsampled(self, max_points: int) -> list[dict]:
        """At most ``max_points`` records for a browser, first and last included.

        Each metric is thinned on its own records, so a metric logged rarely
        (an exact log-likelihood every few hundred steps) keeps its points
        instead of vanishing under a plain every-n-th-record pick.
        """
        with self._lock:
            records = [dict(r) for r in self._records]
            names = list(self._names)
        n = len(records)
        if n <= max_points:
            return records
        if max_points < 2:
            raise ValueError("max_points must be at least 2")
        where = [[i for i, r in enumerate(records) if name in r] for name in names]

        def pick(k: int) -> set[int]:
            chosen = {0, n - 1}
            for idx in where:
                chosen.update(idx[j] for j in evenly_spaced(len(idx), max(k, 2)))
            return chosen

        # Largest per-metric budget whose union still fits (binary search).
        lo, hi = 0, max_points
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if len(pick(mid)) <= max_points:
                lo = mid
            else:
                hi = mid - 1
        chosen = pick(lo) if lo >= 2 else set(evenly_spaced(n, max_points))
        return [records[i] for i in sorted(chosen)]

    # ------------------------------------------------------------ persistence
    def to_dict(self) -> dict:
        with self._lock:
            return {
                "version": _FORMAT_VERSION,
                "capacity": self.capacity,
                "max_changes": self._changes.maxlen,
                "names": list(self._names),
                "records": [{k: jsonable(v) for k, v in r.items()} for r in self._records],
                "changes": [{k: jsonable(v) for k, v in c.items()} for c in self._changes],
                # the thinning state, so a resumed run keeps thinning evenly
                "seq": list(self._seq),
                "n_logged": self._n_logged,
                "stride": self._stride,
            }

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        h = cls(capacity=d.get("capacity", 2000), max_changes=d.get("max_changes", 500))
        h._records = [{k: from_json(v) for k, v in r.items()} for r in d.get("records", [])]
        h._changes.extend({k: from_json(v) for k, v in c.items()} for c in d.get("changes", []))
        names = d.get("names") or [k for r in h._records for k in r if k != "step"]
        h._names = dict.fromkeys(names)
        seq = d.get("seq")
        h._seq = list(seq) if seq and len(seq) == len(h._records) else list(range(len(h._records)))
        h._n_logged = max(int(d.get("n_logged", 0)), h._seq[-1] + 1 if h._seq else 0)
        h._stride = int(d.get("stride", 1))
        return h

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> "History":
        return cls.from_dict(json.loads(text))

    def to_csv(self) -> str:
        """One row per record, one column per metric, an empty cell where missing."""
        with self._lock:
            records = [dict(r) for r in self._records]
            names = list(self._names)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["step", *names])
        for r in records:
            writer.writerow([r["step"], *(r.get(n, "") for n in names)])
        return out.getvalue()

    def __repr__(self) -> str:
        return f"History({len(self)} records, capacity={self.capacity})"
