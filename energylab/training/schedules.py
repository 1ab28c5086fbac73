"""Schedules: hyperparameters as functions of training progress t in [0, 1].

`Trainer(..., schedules={"lr": linear(0.1, 0.01), "momentum": steps([0.5, 0.9], [0.1])})`
sets the value at every mini-batch from the fraction of the run done (fastai's
idea). A schedule is a small dataclass so that it can be written into a run's
JSON config. A live change of the same hyperparameter (a dashboard slider)
replaces its schedule: the person at the controls wins.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Schedule:
    def __call__(self, t: float) -> float:
        raise NotImplementedError

    def to_dict(self) -> dict:
        return {"kind": type(self).__name__.lower(), **asdict(self)}


@dataclass(frozen=True)
class Constant(Schedule):
    value: float

    def __call__(self, t):
        return self.value


@dataclass(frozen=True)
class Linear(Schedule):
    start: float
    end: float

    def __call__(self, t):
        return self.start + (self.end - self.start) * min(max(t, 0.0), 1.0)


@dataclass(frozen=True)
class Exponential(Schedule):
    """Geometric interpolation: the usual learning-rate decay, start * (end / start) ** t."""
    start: float
    end: float

    def __call__(self, t):
        return self.start * (self.end / self.start) ** min(max(t, 0.0), 1.0)


@dataclass(frozen=True)
class Cosine(Schedule):
    start: float
    end: float

    def __call__(self, t):
        return self.end + 0.5 * (self.start - self.end) * (1 + math.cos(math.pi * min(max(t, 0.0), 1.0)))


@dataclass(frozen=True)
class Steps(Schedule):
    """Piecewise constant: values[i] from milestones[i-1] on (Hinton's momentum 0.5 then 0.9)."""
    values: tuple
    milestones: tuple

    def __post_init__(self):
        if len(self.values) != len(self.milestones) + 1:
            raise ValueError("Steps needs one more value than milestones")
        object.__setattr__(self, "values", tuple(self.values))
        object.__setattr__(self, "milestones", tuple(self.milestones))

    def __call__(self, t):
        return self.values[sum(t >= m for m in self.milestones)]


constant, linear, exponential, cosine = Constant, Linear, Exponential, Cosine


def steps(values, milestones) -> Steps:
    return Steps(tuple(values), tuple(milestones))


KINDS = {c.__name__.lower(): c for c in (Constant, Linear, Exponential, Cosine, Steps)}


def from_dict(d: dict) -> Schedule:
    d = dict(d)
    kind = d.pop("kind")
    if kind not in KINDS:
        raise ValueError(f"unknown schedule kind {kind!r}; known: {sorted(KINDS)}")
    return KINDS[kind](**d)
