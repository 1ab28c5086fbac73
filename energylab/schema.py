"""A hyperparameter's schema: the `Param` record (type, range, default, whether it may change
while training runs, help) and its validation, when it applies, and the notches of the slider
that moves it; and `VariantGuide`, what a page asks of a variant beyond its schema.

`Param` sits here, below the registry, so that anything that reads or checks a schema (the live
record, the command line's flags, a checkpoint's reader) needs no registered variant; the
registry re-exports it (`energylab.registry.Param`, `el.Param`).

`Param.when` is a dict of conditions on *other* hyperparameters, all of which
must hold for the parameter to mean anything:

    when={"sampler": ("pt",)}                 # parallel-tempering rungs only with sampler="pt"
    when={"sampler": ("pcd", "pt", "driven")}  # any of these values
    when={"sparsity_penalty": {"not": (0,)}}  # any value but these (the penalty is switched on)

A condition is a tuple (or list) of accepted values, a single accepted value, or
`{"not": values}`. Conditions stay plain data, so a schema is still JSON (`Param.to_dict`).

`grid(p)` is the list of values a slider offers for `p`: round steps on a log
scale (`p.log`, 1-2-3-5 per decade; a lower bound of 0 adds 0 below the decades, so a weight decay of 0.0001 is a
notch, not an invisible sliver of a 0-0.1 track), a round step on a linear one. The
default is *not* inserted: a test (test_schema.py) checks that every default lies on its grid,
so a UI can build the slider from the grid alone. `include=` adds a value read back from a
run (a checkpoint may hold any valid value).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

MAX_NOTCHES = 201            # a slider with more stops than this is better typed in
MANTISSAS = (1, 2, 3, 5)     # a log slider's stops in every decade (3: fine-tuning's lr 0.3 is a stop)


def condition_holds(condition, value) -> bool:
    """One `when` condition against the value in use (see the module docstring)."""
    if isinstance(condition, dict):
        return not condition_holds(tuple(condition.get("not", ())), value)
    accepted = tuple(condition) if isinstance(condition, (tuple, list)) else (condition,)
    return any(_same(value, a) for a in accepted)


def _same(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def applies(when: dict | None, values: dict) -> bool:
    """True when every condition holds; a name absent from `values` is not checked (a caller
    that passes only some values sees the parameter rather than losing it)."""
    return all(condition_holds(c, values[name]) for name, c in (when or {}).items() if name in values)


def _nice(x: float) -> float:
    """The 1-2-5 number nearest below x (x > 0): a round linear step."""
    e = math.floor(math.log10(x))
    for m in (5, 2, 1):
        if m * 10 ** e <= x * (1 + 1e-9):
            return float(f"{m}e{e}")
    return float(f"1e{e}")


def _log_grid(low: float, high: float, default) -> list[float]:
    floor = low
    if low <= 0:       # 0 means "off": keep it as the first notch, then decades from below the default
        floor = _nice(default / 100) if default and default > 0 else _nice(high * 1e-4)
    values = {0.0} if low <= 0 else set()
    for e in range(math.floor(math.log10(floor)), math.ceil(math.log10(high)) + 1):
        for m in MANTISSAS:
            x = float(f"{m}e{e}")
            if floor * (1 - 1e-9) <= x <= high * (1 + 1e-9):
                values.add(x)
    return sorted(values)


def step(p) -> float | None:
    """The linear slider's step for a numeric parameter (None: log scale, or no range)."""
    if p.kind == "int":
        return 1 if p.low is not None and p.high is not None else None
    if p.kind != "float" or p.log or p.low is None or p.high is None:
        return None
    return _nice((p.high - p.low) / 50)


def grid(p, include=None) -> list | None:
    """Every value a slider for `p` offers, ascending; None where a slider does not fit
    (choices, text, booleans, unbounded or very wide whole-number ranges)."""
    if p.kind not in ("int", "float") or p.low is None or p.high is None:
        return None
    if p.kind == "int":
        if p.high - p.low + 1 > MAX_NOTCHES:
            return None
        values = [int(x) for x in range(int(p.low), int(p.high) + 1)]
    elif p.log:
        values = _log_grid(p.low, p.high, p.default)
    else:
        s = step(p)             # the bounds, and the round multiples of the step between them
        first, last = math.floor(p.low / s) + 1, math.ceil(p.high / s) - 1
        values = sorted({float(p.low), float(p.high)} | {round(i * s, 12) for i in range(first, last + 1)})
    if include is not None and not any(_same(include, v) for v in values):
        values = sorted(values + [include])
    return values


def on_grid(p, value) -> bool:
    g = grid(p)
    return g is None or any(_same(value, v) for v in g)


@dataclass(frozen=True)
class Param:
    """One hyperparameter: type, range, default, whether it may change while training runs, help."""

    name: str
    kind: str                       # "float" | "int" | "bool" | "choice" | "ints" (e.g. layer sizes "256,64")
    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    choices: tuple = ()
    live: bool = False              # may change while a training run is going
    log: bool = False               # a slider for it should move on a log scale
    #: applies only when other hyperparameters hold given values, e.g. {"sampler": ("pt",)} (module docstring)
    when: dict | None = None

    def applies(self, values: dict) -> bool:
        """Whether this parameter means anything with these values of the others (`when`)."""
        return applies(self.when, values)

    def grid(self, include=None) -> list | None:
        """The values a slider offers (1-2-3-5 per decade when `log`; a schema's defaults are stops, which
        test_schema.py checks, not inserted here); None where a slider does not fit. `include` adds one more value (e.g. read from a checkpoint)."""
        return grid(self, include)

    @property
    def step(self):
        """A linear slider's step (None on a log scale: use `grid()`)."""
        return step(self)

    def validate(self, value):
        """Return `value` coerced to the parameter's type, or raise a ValueError that says why."""
        where = f"hyperparameter {self.name!r}"
        if self.kind == "ints":
            return self._validate_ints(value, where)
        if self.kind == "choice":
            if value not in self.choices:
                raise ValueError(f"{where} must be one of {list(self.choices)}, got {value!r}")
            return value
        if self.kind == "bool":
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
                return value.lower() in ("true", "1", "yes")
            if not isinstance(value, (bool, int)):
                raise ValueError(f"{where} must be true or false, got {value!r}")
            return bool(value)
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{where} must be a number, got {value!r}") from None
        if math.isnan(number) or math.isinf(number):
            raise ValueError(f"{where} must be finite, got {value!r}")
        if self.kind == "int":
            if number != int(number):
                raise ValueError(f"{where} must be a whole number, got {value!r}")
            number = int(number)
        if (self.low is not None and number < self.low) or (self.high is not None and number > self.high):
            raise ValueError(f"{where} must lie in [{self.low}, {self.high}], got {value!r} ({self.help})")
        return number

    def _validate_ints(self, value, where) -> str:
        """Whole numbers separated by commas ("256,64", or a list), each in [low, high]; canonical text back."""
        parts = value.replace(" ", "").split(",") if isinstance(value, str) else list(value)
        parts = [] if parts == [""] else parts
        try:
            numbers = [float(x) for x in parts]
        except (TypeError, ValueError):
            numbers = [math.nan]
        if not all(math.isfinite(x) and x == int(x) for x in numbers):
            raise ValueError(f"{where} must be whole numbers separated by commas, e.g. '256,64'; got {value!r}")
        if any((self.low is not None and x < self.low) or (self.high is not None and x > self.high) for x in numbers):
            raise ValueError(f"{where} must hold numbers in [{self.low}, {self.high}], got {value!r} ({self.help})")
        return ",".join(str(int(x)) for x in numbers)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["choices"] = list(self.choices)
        return d


class VariantGuide:
    """What a UI asks of a `registry.Variant` beyond its schema (a mixin: the fields `unused`,
    `dashboard_training`, `main_metric`, `default_dataset` and `data_kinds` are the Variant's)."""

    def applies(self, name: str, values: dict | None = None) -> bool:
        """Whether hyperparameter `name` means anything for this variant with these values (the
        others take their defaults): not in `unused`, and its `when` holds."""
        return name not in self.unused and self.param(name).applies({**self.defaults(), **(values or {})})

    def applicable(self, values: dict | None = None, which: str = "all") -> tuple:
        """The Params of `which` ("model", "training", "all") that apply with these values."""
        params = {"model": self.params, "training": self.training, "all": self.schema}[which]
        return tuple(p for p in params if self.applies(p.name, values))

    def live_params(self, values: dict | None = None) -> tuple:
        """Every hyperparameter a running run accepts: training ones and the model's own (dropout p,
        hybrid alpha, conv sparsity), those that apply with `values` only when given."""
        live = tuple(p for p in self.training + self.params if p.live)
        return live if values is None else tuple(p for p in live if self.applies(p.name, values))

    def dashboard_defaults(self, which: str = "all") -> dict:
        """The defaults with the dashboard's overrides (`dashboard_training`) applied."""
        values = self.defaults(which)
        return {**values, **{k: v for k, v in self.dashboard_training.items() if k in values}}

    @property
    def main_metric_better(self) -> str:
        """"higher" or "lower": which way `main_metric` moves when the model learns."""
        from .curves import curve
        return curve(self.main_metric).better

    def dataset(self) -> str:
        """The dataset a new run starts on (`default_dataset`, else the first that fits)."""
        if self.default_dataset:
            return self.default_dataset
        from .datasets import DATASETS
        return next(n for n, info in DATASETS.items() if info.kind in self.data_kinds and n != "file")
