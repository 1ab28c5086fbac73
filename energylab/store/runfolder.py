"""A run folder: everything one training run leaves on disk, in plain files.

    runs/RBM-digits-20240501-120000/
        config.json           the run record (`runrecord.RunConfig`, schema 2): variant, hyperparameters,
                              dataset, seed, device, command, source ("cli" | "dashboard"), owner
        history.json/.csv     the metric history (energylab.History)
        checkpoint.pt         a full resume point (Trainer.save_checkpoint / Trainer.from_checkpoint)
        summary.json          final metrics and status
        weights.png, samples.png, reconstructions.png   pictures, where the data are images

The command line and the dashboard both write these and read them back, through this
one class: `write_record(cfg)` / `read_record()` (older config.json layouts of either
are upgraded on read; `read_config()` returns the upgraded record as a plain dict).
Every write is atomic (a temporary file renamed into place), so a reader polling a
running folder never sees half a file.

Listing never fails on one bad folder. `RunFolder.list_runs(runs_dir)` returns a `RunFolder`
for every folder directly under `runs_dir` that holds a config.json or a checkpoint.pt, newest first, each with

    entry.record    the RunConfig, or None when the folder cannot be read
    entry.error     None, or one line saying why it cannot be read (bad JSON, no variant,
                    a dataset without a name, a symbolic link, ...)
    entry.readable  entry.error is None

Listings show unreadable entries as "unreadable: <error>" and never open them further.
Folder names are built with `runrecord.safe_name`, so no variant or dataset name can
place a run outside `runs_dir`; the dataset paths in a record are used only through
`RunConfig.checked_dataset_options` (see runrecord).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from .. import datasets, viz
from ..errors import ConfigError
from ..jsonvalues import jsonable
from ..training import checkpoint
from ..training.distributed import is_main
from ..training.history import History
from .pictures import display_scale, model_pictures  # noqa: F401  (display_scale: importable here)
from .runrecord import RunConfig, safe_name

CONFIG, SUMMARY, CHECKPOINT = "config.json", "summary.json", "checkpoint.pt"
MAX_RECORD_BYTES = 4_000_000          # a record is a few kB; a larger config.json is not one
HISTORY_JSON, HISTORY_CSV = "history.json", "history.csv"


class RunFolder:
    """One run's folder. `RunFolder.create(...)` makes a new one, `RunFolder(path)` opens one."""

    def __init__(self, path):
        self.path = Path(path)

    # -- making and finding runs ------------------------------------------------------
    @classmethod
    def create(cls, runs_dir="runs", variant: str = "run", dataset: str = "data", out=None) -> "RunFolder":
        """A new, empty folder: `out` if given (it must not hold a run), else a unique
        `runs_dir/<variant>-<dataset>-<timestamp>` (a suffix -2, -3, ... if that exists), the names
        passed through `safe_name` so that none can lead outside `runs_dir`."""
        if out is not None:
            path = Path(out)
            if (path / CONFIG).exists() or (path / CHECKPOINT).exists():
                raise FileExistsError(f"{path} already holds a run; continue it with --resume {path} "
                                      "or choose another folder")
            path.mkdir(parents=True, exist_ok=True)
            return cls(path)
        runs_dir = Path(runs_dir)
        runs_dir.mkdir(parents=True, exist_ok=True)
        base = f"{safe_name(variant)}-{safe_name(dataset)}-{time.strftime('%Y%m%d-%H%M%S')}"
        for i in range(1, 10000):
            path = runs_dir / (base if i == 1 else f"{base}-{i}")
            try:
                path.mkdir()            # atomic: two runs started in the same second get different names
                return cls(path)
            except FileExistsError:
                continue
        raise FileExistsError(f"could not find a free run folder name under {runs_dir}")

    @classmethod
    def open(cls, path) -> "RunFolder":
        """An existing run: a run folder, or a checkpoint file inside one."""
        path = Path(path)
        if path.is_file():
            path = path.parent
        run = cls(path)
        if not run.is_run():
            raise FileNotFoundError(f"{path} is not an energylab run folder (no {CONFIG} or {CHECKPOINT}); "
                                    "pass the folder a `energylab train` run wrote")
        return run

    @staticmethod
    def list_runs(runs_dir="runs") -> list["RunFolder"]:
        """Every run folder directly under `runs_dir`, newest first, readable or not: each entry has
        `record` (a RunConfig or None) and `error` (None or why it cannot be read). Never raises
        for a bad folder (module docstring)."""
        runs_dir = Path(runs_dir)
        if not runs_dir.is_dir():
            return []
        found = []
        for p in runs_dir.iterdir():
            try:
                if not p.is_dir() or not ((p / CONFIG).exists() or (p / CHECKPOINT).exists()):
                    continue
                stamp = max((p / f).stat().st_mtime for f in (CONFIG, CHECKPOINT) if (p / f).exists())
            except OSError:                  # vanished or unreadable while we looked
                continue
            found.append((stamp, RunFolder(p)._examine()))
        return [run for _, run in sorted(found, key=lambda t: t[0], reverse=True)]

    def _examine(self) -> "RunFolder":
        """Read the record once for a listing: set `record` and `error`, never raise."""
        self._record, self._error = None, None
        try:
            if self.path.is_symlink():
                raise ConfigError("is a symbolic link, not a run folder", file=self.path,
                                  fix="move the run itself into the runs folder")
            if not (self.path / CONFIG).is_file():
                raise ConfigError(f"has no {CONFIG} file", file=self.path,
                                  fix="the run's record is lost; load the checkpoint in Python with energylab.load")
            self._record = self.read_record()
        except (OSError, ValueError) as exc:      # ConfigError is a ValueError
            self._error = " ".join(str(exc).split()) or type(exc).__name__
        return self

    @property
    def record(self) -> RunConfig | None:
        """The record as read when listed (read now if this folder was not listed); None if unreadable."""
        if not hasattr(self, "_error"):
            self._examine()
        return self._record

    @property
    def error(self) -> str | None:
        """Why the folder cannot be read (one line), or None."""
        if not hasattr(self, "_error"):
            self._examine()
        return self._error

    @property
    def readable(self) -> bool:
        return self.error is None

    def is_run(self) -> bool:
        return (self.path / CONFIG).is_file() or (self.path / CHECKPOINT).is_file()

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT

    def file(self, name: str) -> Path:
        return self.path / name

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    # -- writing ------------------------------------------------------------------------
    # In a distributed run only rank 0 writes (distributed.py); the other processes' writes are no-ops.
    def write_json(self, name: str, data: dict) -> Path:
        if not is_main():
            return self.path / name
        return checkpoint.atomic_write_text(self.path / name, json.dumps(jsonable(data), indent=2) + "\n")

    def write_config(self, config: dict) -> Path:
        """Write a record given as a dict (checked and written in schema 2, like `write_record`)."""
        return self.write_record(RunConfig.from_dict(config, file=self.path / CONFIG))

    def write_record(self, cfg: RunConfig) -> Path:
        """Write the run record as config.json (schema 2)."""
        if not is_main():
            return self.path / CONFIG
        return checkpoint.atomic_write_text(self.path / CONFIG, cfg.to_json())

    def write_summary(self, summary: dict) -> Path:
        return self.write_json(SUMMARY, summary)

    def write_history(self, history: History) -> None:
        if not is_main():
            return
        checkpoint.atomic_write_text(self.path / HISTORY_JSON, history.to_json())
        checkpoint.atomic_write_text(self.path / HISTORY_CSV, history.to_csv())

    def write_checkpoint(self, trainer) -> Path:
        return trainer.save_checkpoint(self.checkpoint)

    def write_images(self, images: dict, scale: int = 1) -> list[Path]:
        """Save `{"weights": (H, W) image in [0, 1], ...}` as weights.png, ...; return the paths."""
        if not is_main():
            return []
        return [Path(viz.save_png(img, self.path / f"{name}.png", scale=scale)) for name, img in images.items()]

    def save_trainer(self, trainer, image_shape=None, kind: str = "unit", examples=None,
                     n_samples: int = 64, sample_steps: int = 1000) -> dict:
        """Write a trainer's whole state: checkpoint, history, pictures and summary.json.

        `image_shape` is the data's (H, W) or (C, H, W) (None: no pictures, with a note),
        `kind` its value range ("real" data are shown min-max scaled, others as they are),
        `examples` a few held-out rows to reconstruct. Returns the summary.
        """
        self.write_checkpoint(trainer)     # collective in a distributed run: every process calls it
        if not is_main():
            return {"status": trainer.status, "step": trainer.step, "epoch": trainer.epoch}
        self.write_history(trainer.history)
        notes, written = [], []
        if image_shape is None:
            notes.append("no pictures: the data have no image shape (e.g. 2-D points)")
        else:
            pictures = model_pictures(trainer.model, image_shape, kind, examples, n_samples, sample_steps,
                                      beta=1.0 / trainer.params["sample_temperature"],
                                      seed=trainer.params["seed"], notes=notes)
            written = [p.name for p in self.write_images(pictures, scale=display_scale(image_shape))]
        summary = {"status": trainer.status, "error": trainer.error, "step": trainer.step,
                   "epoch": trainer.epoch, "elapsed_s": round(trainer.elapsed, 3),
                   "final": trainer.history.last() or {},
                   "pseudo_log_likelihood_method": getattr(trainer, "pl_method", None),
                   "images": written, "notes": notes}
        self.write_summary(summary)
        return summary

    # -- reading back ---------------------------------------------------------------------
    def read_json(self, name: str) -> dict:
        path = self.path / name
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist; was the run interrupted before writing it?")
        return json.loads(path.read_text())

    def read_record(self) -> RunConfig:
        """The run record, upgraded from any older layout; a ConfigError naming the file if unusable."""
        path = self.path / CONFIG
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist; was the run interrupted before writing it?")
        if path.stat().st_size > MAX_RECORD_BYTES:
            raise ConfigError(f"is {path.stat().st_size} bytes, too large for a run record", file=path,
                              fix="restore the file, or delete the run folder")
        try:
            text = path.read_bytes().decode()
        except UnicodeDecodeError as exc:
            raise ConfigError(f"is not text ({exc.reason})", file=path, fix="restore the file, or delete the "
                              "run folder") from None
        return RunConfig.from_json(text, file=path)

    def read_config(self) -> dict:
        """The run record as a plain dict in the current layout (schema 2), for callers that want a dict."""
        return self.read_record().to_dict()

    def read_summary(self) -> dict:
        return self.read_json(SUMMARY)

    def read_history(self) -> History:
        path = self.path / HISTORY_JSON
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist; the run has not logged any metrics yet")
        return History.from_json(path.read_text())

    def images(self) -> dict[str, Path]:
        """The pictures this run has, by name ("weights", "samples", "reconstructions", ...)."""
        return {p.stem: p for p in sorted(self.path.glob("*.png"))}

    def load_model(self, device="cpu"):
        """The trained model of this run (from its checkpoint, no pickles)."""
        return checkpoint.load(self.checkpoint, device=device)

    def dataset_spec(self, config: dict | None = None) -> tuple[str, dict]:
        """(name, loader options) of the run's dataset as recorded (paths not yet checked: load with
        `load_dataset`). Pass `config` (a dict of any layout) when it is already read."""
        cfg = self.read_record() if config is None else RunConfig.from_dict(config, file=self.path / CONFIG)
        return cfg.dataset.name, dict(cfg.dataset.options)

    def load_dataset(self, data_dir=None, also=()):
        """The run's dataset, reloaded from its record (same name, same loader options). A path option
        (`root`, `path`) must lie in the data directory (`runrecord.data_dir()` unless `data_dir` is
        given) or one of the folders `also`, else a ConfigError before anything is read or created."""
        cfg = self.read_record()
        options = cfg.checked_dataset_options(data_dir, also, file=self.path / CONFIG)
        return load_dataset(cfg.dataset.name, options)

    def evaluate(self, split="test", device="cpu", exact_max_units=20, seed=0, also=()) -> dict:
        """The run's model measured on its data (see `runmeasure.evaluate`)."""
        from .runmeasure import evaluate
        return evaluate(self, split, device, exact_max_units, seed, also=also)

    def read(self) -> dict:
        """Everything at once, for a dashboard: config, summary (or None), history (or None), images."""
        summary = self.read_summary() if (self.path / SUMMARY).is_file() else None
        history = self.read_history() if (self.path / HISTORY_JSON).is_file() else None
        return {"path": self.path, "config": self.read_config(), "summary": summary,
                "history": history, "images": self.images()}


def load_dataset(name: str, options: dict, hint: str = ""):
    """`datasets.load` with a ValueError (not TypeError) for unknown or missing loader options."""
    try:
        return datasets.load(name, **options)
    except TypeError as exc:
        raise ValueError(f"{exc}{hint}") from None
