"""The project's own exceptions: every refusal names the file, the field, the value and the fix.

    raise ConfigError("epochs must be a positive whole number", file=path, field="training.epochs",
                      value=-3, fix="set epochs to 1 or more")
    -> ConfigError: runs/x/config.json: training.epochs = -3: epochs must be a positive whole number;
       fix: set epochs to 1 or more

Each class also derives from the built-in type callers already catch (`ValueError` for
bad input, `RuntimeError` for a state that forbids the action), so code written before
this module keeps working. The command line prints `str(exc)` as one line and exits
non-zero; no traceback unless `--debug`.
"""
from __future__ import annotations


class EnergylabError(Exception):
    """Base of every energylab error. `str()` is one line: where, what, and the fix."""

    def __init__(self, message: str, *, file=None, field: str | None = None, value=None, fix: str | None = None):
        self.message, self.file, self.field, self.value, self.fix = message, file, field, value, fix
        super().__init__(self.format())

    def format(self) -> str:
        where = []
        if self.file is not None:
            where.append(str(self.file))
        if self.field is not None:
            shown = repr(self.value)
            if len(shown) > 60:
                shown = shown[:57] + "..."
            where.append(f"{self.field} = {shown}" if self.value is not None else self.field)
        text = ": ".join(where + [self.message])
        if self.fix:
            text += f"; fix: {self.fix}"
        return " ".join(text.split())        # one line, always


class ConfigError(EnergylabError, ValueError):
    """A run configuration (config.json, flags, hyperparameters) that cannot be used."""


class DataError(EnergylabError, ValueError):
    """Data that cannot be trained on: wrong shape, values outside the units' range, NaN, empty."""


class CheckpointError(EnergylabError, ValueError):
    """A checkpoint file that cannot be read: corrupt, foreign, or for another model."""


class RunAccessError(EnergylabError, PermissionError):
    """This session does not own the run it tried to change (watching is allowed, changing is not)."""


class RunStateError(EnergylabError, RuntimeError):
    """The run is not in a state that allows the action (e.g. retuning a stopped run)."""
