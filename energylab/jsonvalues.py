"""Plain JSON values, both ways: strict JSON has no NaN or Infinity, and a diverging run produces them.

`jsonable` turns a value into plain JSON (non-finite floats become the strings 'nan' / 'inf' /
'-inf', which `float()` reads back exactly; tuples become lists; numpy / torch scalars numbers);
`from_json` reads those strings back as floats. Used by the history and the run files alike.
"""
from __future__ import annotations

import math

NON_FINITE = ("nan", "inf", "-inf")


def jsonable(value):
    """Plain JSON values: non-finite floats become the strings 'nan'/'inf'/'-inf', tuples lists."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "item"):          # numpy / torch scalars
        return jsonable(value.item())
    return str(value)


def from_json(value):
    """A value written by `jsonable` with its non-finite floats back."""
    return float(value) if isinstance(value, str) and value in NON_FINITE else value
