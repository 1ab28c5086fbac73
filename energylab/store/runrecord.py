"""The run record: one versioned `RunConfig`, written as a run folder's config.json by the
command line and the dashboard alike, and read back by every command and page.

    cfg = RunConfig("RBM", DatasetSpec("digits"), model={"n_hidden": 64}, training={"lr": 0.05})
    folder.write_record(cfg);  cfg = folder.read_record()        # (energylab.store.runfolder)

Schema 2 (this module) is the only layout written. Two older layouts are read and
upgraded on load, so every folder on disk stays usable:

- the command line's (no schema version): ``"dataset": {"name", "options", "kind", ...}``,
  a bare-checkpoint resume noted as ``"resumed_from"``;
- the dashboard's: ``"dataset": "<name>"`` plus ``"dataset_options"``, ``"source": "dashboard"``,
  and model hyperparameters under ``"hparams"`` in the oldest folders.

Unknown top-level keys are kept in `extra` and written back. Anything unusable raises
`errors.ConfigError` naming the file, the field, the value and the fix.

A config is input like any other: names from it become folder names only through
`safe_name`, and paths in it (a dataset's ``root`` / ``path`` option, ``resume_from``)
are used only through `checked_dataset_options` / `checked_resume_from`, which keep
them inside the data directory (`data_dir()`: ``$ENERGYLAB_DATA``, default
``~/.cache/energylab/data``, the folder MNIST downloads to) or the runs folder.
"""
from __future__ import annotations

import difflib
import json
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path

from ..errors import ConfigError
from ..jsonvalues import jsonable

SCHEMA_VERSION = 2
PATH_OPTIONS = ("root", "path")          # dataset loader options that name a place on disk


# -- names and paths ---------------------------------------------------------------------------
def safe_name(text, limit: int = 60) -> str:
    """`text` as one harmless path component: letters, digits, '-', '_' and inner dots only.

    '../../x' -> 'x', 'my data/set' -> 'my_data_set'; never empty, never '.'/'..', never hidden."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", str(text))
    name = re.sub(r"\.{2,}", ".", name).strip("._-")[:limit].strip("._-")
    return name or "run"


def data_dir() -> Path:
    """The configured data directory: $ENERGYLAB_DATA, else ~/.cache/energylab/data (as datasets.py)."""
    return Path(os.environ.get("ENERGYLAB_DATA") or "~/.cache/energylab/data").expanduser().resolve()


def confine(value, inside, *, file=None, field_name: str, what: str = "the data directory",
            fix: str | None = None) -> Path:
    """`value` as a resolved path that lies in one of the folders `inside` (a relative value is
    taken relative to the first folder that has it, else the first); a ConfigError otherwise. Symbolic links are resolved first,
    so a link cannot lead out."""
    folders = [Path(d).expanduser().resolve() for d in ([inside] if isinstance(inside, (str, Path)) else inside)]
    if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
        raise ConfigError("must be a path (text)", file=file, field=field_name, value=value,
                          fix="write the path as a string, or remove the option")
    path = Path(value).expanduser()
    if not path.is_absolute():          # relative: in the first folder, or the first that has it
        path = next((d / path for d in folders if (d / path).exists()), folders[0] / path)
    path = path.resolve()
    if not any(path == d or path.is_relative_to(d) for d in folders):
        shown = " or ".join(str(d) for d in folders)
        raise ConfigError(f"lies outside {what} ({shown}); nothing was read or created there", file=file,
                          field=field_name, value=str(value),
                          fix=fix or f"move it into {folders[0]} (or set ENERGYLAB_DATA to a folder that holds it)")
    return path


# -- the record ---------------------------------------------------------------------------------
@dataclass
class DatasetSpec:
    """Which data a run trained on: the loader's name and options, and what they turned out to be."""
    name: str
    options: dict = field(default_factory=dict)
    kind: str | None = None
    n_visible: int | None = None
    image_shape: list[int] | None = None
    n_train: int | None = None
    n_test: int | None = None


@dataclass
class RunConfig:
    """What was run: variant, hyperparameters, dataset and provenance (config.json, schema 2)."""
    variant: str
    dataset: DatasetSpec
    model: dict = field(default_factory=dict)        # model hyperparameters
    training: dict = field(default_factory=dict)     # training hyperparameters
    source: str = "cli"                              # "cli" | "dashboard"
    id: str | None = None                            # run id (= folder name for dashboard runs)
    owner: str | None = None                         # opaque owner digest (a hash, never a token)
    owner_label: str | None = None                   # human-readable owner name for listings
    n_visible: int | None = None
    seed: int | None = None
    device: str | None = None
    eval_every: int | None = None
    created: str | None = None
    command: str | None = None
    energylab_version: str | None = None
    resume_from: str | None = None
    resumed: list = field(default_factory=list)
    distributed: dict | None = None
    extra: dict = field(default_factory=dict)        # unknown keys kept, written back

    # -- writing ------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        out = {"schema_version": SCHEMA_VERSION}
        for f in fields(self):
            if f.name == "dataset":
                out["dataset"] = {g.name: getattr(self.dataset, g.name) for g in fields(DatasetSpec)}
            elif f.name != "extra":
                out[f.name] = getattr(self, f.name)
        return {**{k: v for k, v in self.extra.items() if k not in out}, **out}

    def to_json(self) -> str:
        return json.dumps(jsonable(self.to_dict()), indent=2) + "\n"

    # -- reading (and upgrading) ------------------------------------------------------------------
    @classmethod
    def from_json(cls, text, file=None) -> "RunConfig":
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError, TypeError, RecursionError) as exc:
            raise ConfigError(f"is not JSON ({exc})", file=file,
                              fix="restore the file, or delete the run folder") from None
        return cls.from_dict(data, file=file)

    @classmethod
    def from_dict(cls, data, file=None) -> "RunConfig":
        """Read schema 2 or either older layout (module docstring); a ConfigError for anything else."""
        def bad(message, name=None, value=None, fix="restore the file from the run that wrote it, or delete the "
                                                    "run folder"):
            return ConfigError(message, file=file, field=name, value=value, fix=fix)

        if not isinstance(data, dict):
            raise bad(f"holds {json.dumps(data)[:40]}, not a run record (a JSON object with a variant and a "
                      "dataset)")
        data = dict(data)
        version = data.pop("schema_version", 1)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise bad("must be a whole number", "schema_version", version)
        if version > SCHEMA_VERSION:
            raise bad(f"was written by a newer energylab (this one reads up to {SCHEMA_VERSION})",
                      "schema_version", version, fix="upgrade energylab")
        variant = data.pop("variant", None)
        _check_variant(variant, bad)
        dataset = _dataset_spec(data.pop("dataset", None), data.pop("dataset_options", None), bad)
        model = data.pop("model", None)
        if model is None and "hparams" in data:          # the oldest dashboard spelling
            model = data.pop("hparams")
        values = {"model": {} if model is None else model, "training": data.pop("training", None) or {}}
        if data.get("resume_from") is None and "resumed_from" in data:    # the command line's bare resume
            data["resume_from"] = data.pop("resumed_from")
        for name, check in _FIELD_TYPES.items():
            if name in data:
                values[name] = data.pop(name)
        for name in ("model", "training"):
            if not isinstance(values[name], dict):
                raise bad("must be an object of hyperparameters", name, values[name])
        for name, value in values.items():
            if name in _FIELD_TYPES and not _FIELD_TYPES[name](value):
                raise bad(f"has the wrong type ({type(value).__name__})", name, value,
                          fix=f"write {_FIELD_HELP[name]}, or remove the key")
        if values.get("resumed") is None:
            values["resumed"] = []
        values.setdefault("source", "cli")
        return cls(variant=variant, dataset=dataset, extra=data, **values)

    # -- paths, checked -----------------------------------------------------------------------------
    def checked_dataset_options(self, data_dir_: Path | str | None = None, also=(), file=None) -> dict:
        """The dataset's loader options with every path option (`root`, `path`) resolved and confined
        to the data directory (default `data_dir()`) or one of the folders `also`; a ConfigError naming
        the option otherwise, before anything is read, created or downloaded."""
        inside = [Path(data_dir_) if data_dir_ is not None else data_dir(), *map(Path, also)]
        options = dict(self.dataset.options)
        for key in PATH_OPTIONS:
            if key in options and not (key == "root" and options[key] is None):
                options[key] = str(confine(options[key], inside, file=file, field_name=f"dataset.options.{key}"))
        return options

    def checked_resume_from(self, runs_dir, file=None) -> Path | None:
        """`resume_from` as a path inside `runs_dir` (None if unset); a ConfigError if it leads elsewhere."""
        if self.resume_from is None:
            return None
        return confine(self.resume_from, runs_dir, file=file, field_name="resume_from", what="the runs folder",
                       fix="resume only from a checkpoint inside the runs folder")


# -- checks ---------------------------------------------------------------------------------------
def _opt(kind):
    return lambda v: v is None or (isinstance(v, kind) and not (kind is int and isinstance(v, bool)))


_FIELD_TYPES = {"source": lambda v: v in ("cli", "dashboard"), "id": _opt(str), "owner": _opt(str),
                "owner_label": _opt(str), "n_visible": _opt(int), "seed": _opt(int), "device": _opt(str),
                "eval_every": _opt(int), "created": _opt(str), "command": _opt(str),
                "energylab_version": _opt(str), "resume_from": _opt(str),
                "resumed": lambda v: v is None or isinstance(v, list), "distributed": _opt(dict)}
_FIELD_HELP = {"source": '"cli" or "dashboard"', "n_visible": "a whole number", "seed": "a whole number",
               "eval_every": "a whole number", "resumed": "a list", "distributed": "an object"}
_FIELD_HELP.update({k: "text" for k in _FIELD_TYPES if k not in _FIELD_HELP})


def _check_variant(variant, bad) -> None:
    from ..registry import VARIANTS
    if variant is None:
        raise bad("has no variant: the record does not say which model was trained", "variant",
                  fix='add "variant": "<name>" (see `energylab variants`), or delete the run folder')
    if not isinstance(variant, str) or variant not in VARIANTS:
        close = difflib.get_close_matches(str(variant), VARIANTS, n=1)
        raise bad("is not a registered variant", "variant", variant,
                  fix=f"use {close[0]!r}" if close else f"use one of {', '.join(VARIANTS)}")


def _dataset_spec(d, legacy_options, bad) -> DatasetSpec:
    from ..datasets import DATASETS
    if isinstance(d, str):                                 # the dashboard's layout (schema 1)
        d = {"name": d, "options": legacy_options if legacy_options is not None else {}}
    if d is None:
        raise bad("is missing: the record does not say which data the run trained on", "dataset",
                  fix='add "dataset": {"name": "<dataset>"} (see `energylab datasets`), or delete the run folder')
    if not isinstance(d, dict):
        raise bad("must be an object with a name", "dataset", d)
    name = d.get("name")
    if not isinstance(name, str) or not name:
        raise bad("is missing or not text", "dataset.name", name,
                  fix='add "name": "<dataset>" (see `energylab datasets`), or delete the run folder')
    if name not in DATASETS:
        close = difflib.get_close_matches(name, DATASETS, n=1)
        raise bad("is not a known dataset", "dataset.name", name,
                  fix=f"use {close[0]!r}" if close else f"use one of {', '.join(DATASETS)}")
    options = d.get("options")
    options = {} if options is None else options
    if not isinstance(options, dict):
        raise bad("must be an object of loader options", "dataset.options", options)
    spec = DatasetSpec(name, dict(options))
    checks = {"kind": _opt(str), "n_visible": _opt(int), "n_train": _opt(int), "n_test": _opt(int),
              "image_shape": lambda v: v is None or (isinstance(v, list) and 2 <= len(v) <= 3 and all(
                  _opt(int)(n) and n and n > 0 for n in v))}
    for key, ok in checks.items():
        value = d.get(key)
        if not ok(value):
            raise bad("has the wrong type", f"dataset.{key}", value,
                      fix="write a list of 2 or 3 positive whole numbers" if key == "image_shape"
                      else "correct or remove it")
        setattr(spec, key, value)
    return spec
