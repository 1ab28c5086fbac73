"""A run folder: everything one training run leaves on disk, in plain files.

    runs/RBM-digits-20240501-120000/
        config.json           what was run: variant, hyperparameters, dataset, seed, device, command
        history.json/.csv     the metric history (energylab.History)
        checkpoint.pt         a full resume point (Trainer.save_checkpoint / Trainer.from_checkpoint)
        summary.json          final metrics and status
        weights.png, samples.png, reconstructions.png   pictures, where the data are images

The command line writes these and the dashboard reads them back, through this
one class. Every write is atomic (a temporary file renamed into place), so a
reader polling a running folder never sees half a file.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import torch

from . import checkpoint, datasets, metrics, viz
from .distributed import is_main
from .history import History

CONFIG, SUMMARY, CHECKPOINT = "config.json", "summary.json", "checkpoint.pt"
HISTORY_JSON, HISTORY_CSV = "history.json", "history.csv"


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


class RunFolder:
    """One run's folder. `RunFolder.create(...)` makes a new one, `RunFolder(path)` opens one."""

    def __init__(self, path):
        self.path = Path(path)

    # -- making and finding runs ------------------------------------------------------
    @classmethod
    def create(cls, runs_dir="runs", variant: str = "run", dataset: str = "data", out=None) -> "RunFolder":
        """A new, empty folder: `out` if given (it must not hold a run), else a unique
        `runs_dir/<variant>-<dataset>-<timestamp>` (a suffix -2, -3, ... if that exists)."""
        if out is not None:
            path = Path(out)
            if (path / CONFIG).exists() or (path / CHECKPOINT).exists():
                raise FileExistsError(f"{path} already holds a run; continue it with --resume {path} "
                                      "or choose another folder")
            path.mkdir(parents=True, exist_ok=True)
            return cls(path)
        runs_dir = Path(runs_dir)
        runs_dir.mkdir(parents=True, exist_ok=True)
        base = f"{variant}-{dataset}-{time.strftime('%Y%m%d-%H%M%S')}"
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
        """The run folders directly under `runs_dir`, newest first."""
        runs_dir = Path(runs_dir)
        if not runs_dir.is_dir():
            return []
        runs = [RunFolder(p) for p in runs_dir.iterdir() if p.is_dir() and (p / CONFIG).is_file()]
        return sorted(runs, key=lambda r: (r.path / CONFIG).stat().st_mtime, reverse=True)

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
        return self.write_json(CONFIG, config)

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
                   "epoch": trainer.epoch, "elapsed_s": round(trainer._elapsed, 3),
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

    def read_config(self) -> dict:
        return self.read_json(CONFIG)

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
        """(name, loader options) of the run's dataset, from either layout of config.json: the
        command line's {"dataset": {"name", "options", ...}} or the dashboard's
        {"dataset": name, "dataset_options": {...}}. Pass `config` when it is already read."""
        config = self.read_config() if config is None else config
        d = config.get("dataset")
        if isinstance(d, dict):
            return d["name"], dict(d.get("options") or {})
        return d, dict(config.get("dataset_options") or {})

    def load_dataset(self):
        """The run's dataset, reloaded from config.json (same name, same loader options)."""
        return load_dataset(*self.dataset_spec())

    def evaluate(self, split="test", device="cpu", exact_max_units=20, seed=0) -> dict:
        """The run's model measured on its data: {"split", "n_examples", "notes", "metrics": {name: {value,
        method}}}. Likelihoods of Bernoulli visible units need binary states: [0, 1] data are binarized
        once, stochastically, with `seed` (as in the MNIST likelihood literature)."""
        model = self.load_model(device)
        data = self.load_dataset()
        x = data.test if split == "test" else data.train
        if not len(x):
            raise ValueError(f"the dataset has no {split} examples; evaluate the train split instead")
        notes, g = [], torch.Generator().manual_seed(seed)
        xb = x
        if model.visible.discrete and data.kind != "binary":
            xb = datasets.binarize(x, "stochastic", g)
            notes.append(f"likelihoods use the {split} data binarized stochastically (seed {seed})")
        found = {"reconstruction_error": (metrics.reconstruction_error(model, x), "mean squared error per unit"),
                 "free_energy": (metrics.free_energy(model, x).mean().item(), "mean F(v)")}
        if model.visible.discrete:
            g_model = torch.Generator(model.device).manual_seed(seed)
            pl = metrics.pseudo_log_likelihood(model, xb, generator=g_model)
            found["pseudo_log_likelihood"] = (pl.value, pl.method)
        else:
            found["pseudo_log_likelihood"] = (None, "not applicable: real-valued visible units")
        try:
            layer = metrics.enumerated_layer(model, exact_max_units)
            found["exact_log_likelihood"] = (metrics.exact_log_likelihood(model, xb, max_units=exact_max_units),
                                             f"exact, enumerating the {layer} layer")
        except ValueError as exc:
            found["exact_log_likelihood"] = (None, f"not computable exactly ({exc})")
            if getattr(model.visible, "exact_free_energy", True) and getattr(model.hidden, "exact_free_energy", True):
                # Too large to enumerate: an AIS estimate instead, with its uncertainty.
                g_ais = torch.Generator(model.device).manual_seed(seed)
                value, z = metrics.ais_log_likelihood(model, xb, n_chains=100, betas=1000, generator=g_ais)
                found["ais_log_likelihood"] = (value, f"AIS estimate, {z.n_chains} chains x {z.n_betas} "
                                                      f"temperatures; log Z = {z.log_z:.3f} ± {z.stderr:.3f}")
        if len(data.test):
            found["free_energy_gap"] = (metrics.free_energy_gap(model, data.train, data.test),
                                        "mean F(test) - mean F(train)")
        return {"run": str(self.path), "split": split, "n_examples": len(x), "notes": notes,
                "metrics": {k: {"value": v, "method": m} for k, (v, m) in found.items()}}

    def read(self) -> dict:
        """Everything at once, for a dashboard: config, summary (or None), history (or None), images."""
        summary = self.read_summary() if (self.path / SUMMARY).is_file() else None
        history = self.read_history() if (self.path / HISTORY_JSON).is_file() else None
        return {"path": self.path, "config": self.read_config(), "summary": summary,
                "history": history, "images": self.images()}


def list_runs(runs_dir="runs") -> list[RunFolder]:
    """The run folders directly under `runs_dir`, newest first."""
    return RunFolder.list_runs(runs_dir)


def load_dataset(name: str, options: dict, hint: str = ""):
    """`datasets.load` with a ValueError (not TypeError) for unknown or missing loader options."""
    try:
        return datasets.load(name, **options)
    except TypeError as exc:
        raise ValueError(f"{exc}{hint}") from None


def display_scale(image_shape) -> int:
    """Upscale small images (8x8 digits) so a PNG is readable; 28x28 and larger stay 1:1."""
    return max(1, round(28 / max(image_shape[-2:])))


@torch.no_grad()
def model_pictures(model, image_shape, kind="unit", examples=None, n_samples=64, sample_steps=1000,
                   beta=1.0, seed=0, notes=None) -> dict:
    """{"weights": mosaic, "samples": grid, "reconstructions": grid} as images in [0, 1].

    Reconstructions alternate rows: 8 examples, then their mean-field reconstructions.
    Samples come from their own seeded generator, so drawing them never changes training.
    """
    notes = [] if notes is None else notes
    normalize = "all" if kind == "real" else None
    pictures = {}
    W = getattr(model, "W", None)
    if isinstance(W, torch.Tensor) and W.dim() in (2, 4):
        pictures["weights"] = viz.weight_mosaic(W, image_shape)
    else:
        notes.append("no weights.png: this model has no dense or convolutional W to draw")
    g = torch.Generator(model.device).manual_seed(int(seed))
    pictures["samples"] = viz.tile_images(model.sample(n_samples, k=sample_steps, beta=beta, generator=g),
                                          image_shape, normalize=normalize)
    if examples is not None and len(examples):
        x = model.check_visible(examples[:32])
        rows = min(8, len(x))
        x = x[: rows * (len(x) // rows)]
        flat = lambda t: t.reshape(-1, rows, t[0].numel())        # (pairs of rows, rows, D)
        pairs = torch.stack([flat(x), flat(model.reconstruct(x))], 1)
        pictures["reconstructions"] = viz.tile_images(pairs.reshape(-1, pairs.shape[-1]), image_shape,
                                                      nrow=rows, normalize=normalize)
    return pictures
