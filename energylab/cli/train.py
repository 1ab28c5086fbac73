"""`energylab train`: a new run or a resumed one, with a progress bar, autosave and Ctrl-C.

A new run builds the variant from the generated flags (the data decide the image
size, channels and class count unless given), seeds its initial weights with
`--seed` without touching the caller's global RNG, and writes its folder (see
`energylab.store.runfolder`). `--resume` continues a run from its checkpoint in the same
folder: model hyperparameters are fixed by the checkpoint, live ones (lr, k, ...)
may change and are recorded in the history at the resume step. The first Ctrl-C
finishes the batch and saves; the second aborts. Under torchrun every process trains
its shard of each batch and rank 0 writes and reports (`energylab.training.distributed`).
"""
from __future__ import annotations

import shlex
import signal
import sys
import time
from pathlib import Path

import torch

from ..errors import ConfigError
from ..registry import VARIANTS
from ..registry import get as get_variant
from ..store.runfolder import CONFIG, RunFolder, load_dataset
from ..store.runrecord import PATH_OPTIONS, DatasetSpec, RunConfig
from ..training import checkpoint, distributed
from ..training.trainer import Trainer, TrainingDiverged
from ..version import __version__
from .flags import DEFAULT_DATASET, DEFAULT_VARIANT, device_flag, flag
from .save import Autosave, ProgressBar, _save_run, _write_failed_summary, sample_steps  # noqa: F401


def _checkpoint_path(target) -> tuple[Path, str]:
    """(checkpoint file, variant) of a run folder or a checkpoint file."""
    path = Path(target)
    ckpt = path / "checkpoint.pt" if path.is_dir() else path
    if not ckpt.is_file() and path.is_dir() and (path / CONFIG).is_file():
        raise FileNotFoundError(f"--resume {target}: this run stopped before its first checkpoint, so there is "
                                f"nothing to resume; start it again from scratch in that folder with "
                                f"`energylab train --out {target} --restart` and its flags")
    if not ckpt.is_file():
        raise FileNotFoundError(f"--resume {target}: no run folder with a checkpoint.pt and no checkpoint file "
                                "there; pass the folder `energylab train` printed")
    return ckpt, checkpoint.read(ckpt)["config"]["variant"]


def _load_dataset(name: str, options: dict):
    return load_dataset(name, options, hint=" (pass them as --dataset-option KEY=VALUE)")


def _typed_paths(options: dict) -> dict:
    """Path options typed on the command line, made absolute: a record's relative paths would be read
    relative to the data directory (runrecord), not the folder the command ran in."""
    return {k: str(Path(v).expanduser().resolve()) if k in PATH_OPTIONS and isinstance(v, str) else v
            for k, v in options.items()}


def _spec(name: str, options: dict, data) -> DatasetSpec:
    return DatasetSpec(name, options, data.kind, data.n_visible,
                       list(data.image_shape) if data.image_shape else None, len(data.train), len(data.test))


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _given(args, params) -> dict:
    return {p.name: getattr(args, p.name) for p in params if getattr(args, p.name) is not None}


def _from_data(variant, data) -> dict:
    """Model hyperparameters the data decide unless given: image size and channels, class count."""
    derived = {}
    if data.image_shape:
        *c, h, w = data.image_shape
        derived.update(image_height=h, image_width=w, channels=c[0] if c else 1)
    if data.n_classes:
        derived["n_classes"] = data.n_classes
    names = {p.name for p in variant.params}
    return {k: v for k, v in derived.items() if k in names}


def cmd_train(args) -> int:
    options = _typed_paths(dict(args.dataset_option))
    if args.resume and getattr(args, "restart", False):
        raise ConfigError("--restart starts a run again from scratch and --resume continues one; choose one",
                          field="--restart", fix="drop --restart to continue, or use --out DIR --restart")
    if args.resume:
        return _resume(args, options)
    _check_destination(args)
    variant = VARIANTS[args.variant or DEFAULT_VARIANT]
    name = args.dataset or DEFAULT_DATASET
    data = _load_dataset(name, options)
    from ..registry import make
    # a stack's first layer follows the data (Gaussian visible units for real data) unless given
    hparams = {**variant.defaults_for_kind(data.kind), **_from_data(variant, data), **_given(args, variant.params)}
    variant.check_kind(data.kind, name, hparams)
    training = _given(args, variant.training)
    with torch.random.fork_rng(devices=[]):   # --seed fixes the initial weights too, without touching
        torch.manual_seed(training.get("seed", variant.param("seed").default))   # the caller's global RNG
        model = make(variant.name, data.n_visible, **hparams)
    # under torchrun (WORLD_SIZE > 1) every process trains its shard of each batch (distributed.py)
    trainer = Trainer(model, device=device_flag(args.device), eval_every=args.eval_every,
                      distributed=distributed.launched(), **training)
    if getattr(args, "restart", False) and distributed.is_main():
        _clear_run(Path(args.out))
    run = distributed.on_main(lambda: RunFolder.create(args.runs_dir, variant.name, data.name, args.out),
                              "creating the run folder")
    cfg = RunConfig(variant.name, _spec(name, options, data), model=model.config["hparams"],
                    training=trainer.params.values(), source="cli", n_visible=data.n_visible,
                    seed=trainer.params["seed"], device=str(trainer.device), eval_every=args.eval_every,
                    energylab_version=__version__, command="energylab " + shlex.join(args.argv), created=_now())
    if run.path.parent.resolve() == Path(args.runs_dir).resolve():
        cfg.id = run.name
    if trainer.dist is not None:
        cfg.distributed = {"world_size": trainer.dist.world_size, "backend": torch.distributed.get_backend()}
    run.write_record(cfg)
    return _fit(args, trainer, data, run, cfg, epochs=None)


RUN_FILES = ("config.json", "checkpoint.pt", "summary.json", "history.json", "history.csv", "weights.png",
             "samples.png", "reconstructions.png")


def _check_destination(args) -> None:
    """--runs-dir and --out must be folders (or not exist yet); --restart needs --out."""
    for flag_name, value in (("--runs-dir", args.runs_dir), ("--out", args.out)):
        if value and Path(value).exists() and not Path(value).is_dir():
            raise ConfigError("is a file, not a folder", field=flag_name, value=str(value),
                              fix=f"pass a folder (it is created if missing) to {flag_name}")
    restart = getattr(args, "restart", False)
    out = Path(args.out) if args.out else None
    if out and not restart and (out / CONFIG).is_file() and not (out / "checkpoint.pt").is_file():
        raise ConfigError("holds a run that stopped before its first checkpoint (only its config.json), so it cannot "
                          "be resumed", field="--out", value=str(args.out),
                          fix="add --restart to start it again from scratch in that folder, or choose another folder")
    if restart and not args.out:
        raise ConfigError("--restart starts the run in --out DIR again from scratch; it needs --out",
                          field="--restart", fix="pass --out DIR with the folder to start again")


def _clear_run(path: Path) -> None:
    """--restart: remove a run's own files from `path` (other files stay) so a new run can start there."""
    for name in RUN_FILES:
        if (path / name).is_file():
            (path / name).unlink()


def _resume(args, options) -> int:
    ckpt, variant_name = _checkpoint_path(args.resume)
    variant = get_variant(variant_name)
    if args.variant and args.variant != variant_name:
        raise ValueError(f"--resume {args.resume} holds a {variant_name} model, not --variant {args.variant}")
    fixed = [flag(n) for n in _given(args, variant.params)]
    if fixed:
        raise ValueError(f"{', '.join(fixed)}: model hyperparameters are fixed by the checkpoint; start a new "
                         "run to change them")
    run = RunFolder(ckpt.parent) if (ckpt.parent / CONFIG).is_file() else None
    cfg = run.read_record() if run else None     # a command-line or a dashboard run, any layout
    if run and args.out:
        raise ConfigError("is for new runs; a resumed run continues in its own folder", field="--out",
                          value=args.out, fix=f"drop --out to continue in {run.path}")
    if cfg:
        recorded = cfg.dataset
        if (args.dataset or recorded.name) != recorded.name or (options and options != recorded.options):
            raise ConfigError(f"trained on {recorded.name} with options {recorded.options}", file=run.path / CONFIG,
                              field="dataset", value=args.dataset or options,
                              fix="drop --dataset/--dataset-option to resume it")
        name, options = recorded.name, cfg.checked_dataset_options(also=(Path.cwd(),), file=run.path / CONFIG)
    elif not args.dataset:
        raise ConfigError("is not inside a run folder, so its dataset is unknown", file=ckpt,
                          fix="pass --dataset (and --dataset-option) to resume it")
    else:
        name, options = args.dataset, _typed_paths(options)
    data = _load_dataset(name, options)
    eval_every = args.eval_every or (cfg.eval_every if cfg else None)
    trainer = Trainer.from_checkpoint(ckpt, device=device_flag(args.device), eval_every=eval_every,
                                      distributed=distributed.launched())
    extra = _given(args, variant.training)
    more = extra.pop("epochs", None)
    for key, value in extra.items():
        if not trainer.params.param(key).live and value != trainer.params[key]:
            raise ValueError(f"{flag(key)} cannot change when resuming (only live hyperparameters can: "
                             f"{', '.join(flag(p.name) for p in variant.training if p.live)}); start a new run")
        trainer.params.set(key, value)      # recorded in the history at the resume step
    target = trainer.epoch + more if more else trainer.params["epochs"]
    limit = int(trainer.params.param("epochs").high)
    if target > limit:
        raise ConfigError(f"{more} more epochs after the {trainer.epoch} done makes {target}, over the limit of "
                          f"{limit}", field="--epochs", value=more,
                          fix=f"pass --epochs {limit - trainer.epoch} or less")
    if target <= trainer.epoch:
        if distributed.is_main():
            print(f"nothing to do: the run has finished its {trainer.epoch} epochs; pass --epochs N to train N more")
        return 0
    if run is None:
        run = distributed.on_main(lambda: RunFolder.create(args.runs_dir, variant_name, name, args.out),
                                  "creating the run folder")
        cfg = RunConfig(variant_name, _spec(name, options, data), model=trainer.model.config.get("hparams", {}),
                        n_visible=data.n_visible, resume_from=str(ckpt.resolve()), created=_now(),
                        energylab_version=__version__)
    cfg.resumed.append({"command": "energylab " + shlex.join(args.argv), "from_step": trainer.step,
                        "time": _now()})
    cfg.device = str(trainer.device)
    return _fit(args, trainer, data, run, cfg, epochs=target)


def _fit(args, trainer, data, run, cfg: RunConfig, epochs) -> int:
    run.write_record(cfg)                # a resumed run's log entry is on disk from the start
    autosave = Autosave(run)
    trainer.callbacks += [ProgressBar(disable=args.quiet or not distributed.is_main()), autosave]
    stopping = []

    def on_interrupt(signum, frame):     # first Ctrl-C: finish the batch, save; second: abort
        if stopping:
            raise KeyboardInterrupt
        stopping.append(True)
        print("\nstopping after this batch and saving the run (Ctrl-C again to abort)", file=sys.stderr)
        trainer.stop()
    try:     # a distributed run cannot agree on a last batch: there Ctrl-C ends it (resume from its autosave)
        previous = signal.signal(signal.SIGINT, on_interrupt) if trainer.dist is None else None
    except ValueError:                   # not the main thread: leave signals alone
        previous = None
    try:
        trainer.fit(data, epochs=epochs)
    except TrainingDiverged as exc:
        print(f"energylab train: error: {exc}", file=sys.stderr)
    except BaseException as exc:         # a failed start or run: summary.json says so (never "running?")
        _write_failed_summary(run, trainer, exc)
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    cfg.training = trainer.params.values()
    started = time.monotonic()
    if not args.quiet and distributed.is_main():
        steps = sample_steps(trainer.model)
        print(f"saving the run in {run.path}: checkpoint, history"
              f"{f', pictures (a weight mosaic, 64 samples x {steps} Gibbs steps)' if data.image_shape else ''}"
              f"{' (fewer steps: a large model)' if steps < 1000 else ''} ...", file=sys.stderr, flush=True)
    summary = _save_run(run, trainer, data, cfg, autosave)
    if not distributed.is_main():        # rank 0 reports for the whole run
        return 1 if trainer.status == "failed" else 0
    if not args.quiet:
        print(f"saved in {time.monotonic() - started:.1f} s", file=sys.stderr)
        final = summary["final"]
        shown = ", ".join(f"{k} {final[k]:.4g}" for k in ("recon_error", "pseudo_log_likelihood",
                          "pseudo_log_likelihood_1bit", "exact_log_likelihood", "accuracy") if k in final)
        print(f"{trainer.status}: {trainer.epoch} epochs, {trainer.step} steps; {shown}")
        for note in summary["notes"]:
            print(f"note: {note}")
    print(run.path)
    return 1 if trainer.status == "failed" else 0
