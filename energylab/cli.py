"""The `energylab` command line: train, evaluate, sample, and browse the registry.

    energylab train --variant RBM --dataset digits --epochs 5 --n-hidden 64 --lr 0.1
    energylab evaluate runs/RBM-digits-20240501-120000
    energylab sample runs/RBM-digits-20240501-120000 --n 64 --k 1000
    energylab variants [NAME] [--markdown]      energylab datasets      energylab runs

The flags of `train` are generated from the chosen variant's schema
(`energylab.VARIANTS[name].schema`), so a new variant gets its flags with no
change here: `--variant` is read first, then the parser for that variant is built.
A run writes a folder (see `energylab.runfolder`) that `evaluate`, `sample`,
`--resume` and the dashboard read back.
"""
from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
import time
from pathlib import Path

import torch

from . import __version__, checkpoint, datasets, distributed, viz
from .registry import VARIANTS
from .registry import get as get_variant
from .runfolder import CONFIG, RunFolder, display_scale, list_runs, load_dataset
from .trainer import Callback, Trainer, TrainingDiverged, resolve_device

DEFAULT_VARIANT, DEFAULT_DATASET = "RBM", "digits"
# train flags that are not hyperparameters; a variant's Param may not reuse these names
FIXED = {"variant", "dataset", "dataset_option", "device", "resume", "eval_every", "quiet", "out", "runs_dir"}


# -- generated flags ----------------------------------------------------------------------
def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _param_type(p):
    """An argparse `type` that validates with the Param itself (its message names the problem)."""
    def convert(text):
        if p.kind == "choice":       # choices may be numbers: match on their text
            text = next((c for c in p.choices if str(c) == text), text)
        try:
            return p.validate(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    convert.__name__ = p.kind        # argparse names the type in "invalid <type> value"
    return convert


def _describe_range(p) -> str:
    if p.kind == "choice":
        return " | ".join(map(str, p.choices))
    if p.kind == "bool":
        return "true | false"
    if p.low is None and p.high is None:
        return "any"
    show = (lambda x: str(int(x))) if p.kind == "int" else (lambda x: f"{x:g}")
    return f"[{'-inf' if p.low is None else show(p.low)}, {'inf' if p.high is None else show(p.high)}]"


def add_schema_flags(parser, variant) -> None:
    """One flag per Param: `n_hidden` -> `--n-hidden`, help and default from the schema."""
    for title, params in ((f"model hyperparameters of {variant.name}", variant.params),
                          ("training hyperparameters", variant.training)):
        group = parser.add_argument_group(title)
        for p in params:
            if p.name in FIXED:
                raise ValueError(f"variant {variant.name!r} declares a hyperparameter {p.name!r} that clashes "
                                 f"with the command line's own {flag(p.name)}; rename the Param")
            extra = f"; range {_describe_range(p)}" if p.kind not in ("choice", "bool") else ""
            text = f"{p.help} (default: {p.default}{extra}{'; live' if p.live else ''})".replace("%", "%%")
            options = dict(dest=p.name, default=None, type=_param_type(p), help=text)
            if p.kind == "choice":
                options["metavar"] = "{" + ",".join(map(str, p.choices)) + "}"
            elif p.kind == "bool":
                options.update(nargs="?", const="true", metavar="BOOL")
            else:
                options["metavar"] = p.kind.upper()
            group.add_argument(flag(p.name), **options)


# -- the parser ------------------------------------------------------------------------------
def _dataset_option(text):
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"dataset option {text!r} must look like KEY=VALUE, "
                                         "e.g. binarize=stochastic or size=4")
    key, value = (s.strip() for s in text.split("=", 1))
    low = value.lower()
    if low in ("none", "null"):
        return key.replace("-", "_"), None
    if low in ("true", "false"):
        return key.replace("-", "_"), low == "true"
    for cast in (int, float):
        try:
            return key.replace("-", "_"), cast(value)
        except ValueError:
            pass
    return key.replace("-", "_"), value


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def build_parser(variant_name: str = DEFAULT_VARIANT) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="energylab", description="Energy-based models (RBMs and "
                                     "relatives): train, evaluate, sample, and list what is available.")
    parser.add_argument("--version", action="version", version=f"energylab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    device = dict(default="auto", choices=["auto", "cpu", "cuda"], help="where to compute (default: auto = "
                  "cuda when available)")

    train = sub.add_parser("train", help="train a variant on a dataset and write a run folder",
                           description=f"Train a variant; the hyperparameter flags below are those of "
                           f"{variant_name} (pass --variant NAME --help to see another variant's).")
    train.add_argument("--variant", choices=list(VARIANTS), default=None,
                       help=f"model to train (default: {DEFAULT_VARIANT}, or the resumed run's)")
    train.add_argument("--dataset", choices=datasets.names(), default=None,
                       help=f"training data (default: {DEFAULT_DATASET}); see `energylab datasets`")
    train.add_argument("--dataset-option", type=_dataset_option, action="append", default=[],
                       metavar="KEY=VALUE", help="loader option, repeatable: binarize=stochastic, size=4, "
                       "path=data.npy (for --dataset file)")
    train.add_argument("--device", **device)
    train.add_argument("--resume", metavar="RUN_DIR_OR_CHECKPOINT", help="continue a run in its folder; "
                       "--epochs N then trains until N more epochs are complete, and live hyperparameters "
                       "(lr, k, ...) may be changed")
    train.add_argument("--eval-every", type=_positive_int, metavar="STEPS",
                       help="measure every STEPS mini-batches (default: 4 times an epoch)")
    train.add_argument("--runs-dir", default="runs", help="where run folders go (default: ./runs)")
    train.add_argument("--out", metavar="DIR", help="write the run to DIR instead of a new folder in --runs-dir")
    train.add_argument("--quiet", action="store_true", help="no progress bar; print only the run folder")
    add_schema_flags(train, VARIANTS[variant_name])
    train.set_defaults(func=cmd_train, parser=train)

    evaluate = sub.add_parser("evaluate", help="measure a trained run on its data")
    evaluate.add_argument("run", metavar="RUN_DIR")
    evaluate.add_argument("--split", choices=["test", "train"], default="test")
    evaluate.add_argument("--device", **device)
    evaluate.add_argument("--exact-max-units", type=_positive_int, default=20, metavar="N",
                          help="compute the exact log-likelihood when a layer has at most N units (default 20)")
    evaluate.add_argument("--seed", type=int, default=0, help="seed of stochastic binarization and estimates")
    evaluate.add_argument("--json", action="store_true", help="machine-readable output")
    evaluate.set_defaults(func=cmd_evaluate, parser=evaluate)

    sample = sub.add_parser("sample", help="draw model samples of a run and save them as a PNG grid")
    sample.add_argument("run", metavar="RUN_DIR")
    sample.add_argument("--n", type=_positive_int, default=64, help="number of samples (default 64)")
    sample.add_argument("--k", type=_positive_int, default=1000, help="Gibbs steps per chain (default 1000)")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--temperature", type=_positive_float, default=1.0, help="sample at beta = 1/T")
    sample.add_argument("--scale", type=_positive_int, default=None, help="pixel upscaling (default: auto)")
    sample.add_argument("--out", help="PNG path (default: RUN_DIR/samples-n<N>-k<K>-seed<S>.png)")
    sample.add_argument("--device", **device)
    sample.set_defaults(func=cmd_sample, parser=sample)

    variants = sub.add_parser("variants", help="list the registered variants, or one variant's schema")
    variants.add_argument("name", nargs="?", metavar="NAME")
    variants.add_argument("--markdown", action="store_true", help="a Markdown table")
    variants.set_defaults(func=cmd_variants, parser=variants)

    data = sub.add_parser("datasets", help="list the datasets")
    data.add_argument("--markdown", action="store_true", help="a Markdown table")
    data.set_defaults(func=cmd_datasets, parser=data)

    runs = sub.add_parser("runs", help="list the run folders in --runs-dir")
    runs.add_argument("--runs-dir", default="runs")
    runs.set_defaults(func=cmd_runs, parser=runs)
    return parser


def _peek_variant(argv) -> str:
    """The variant whose flags `train` needs: --variant, else the resumed run's, else the default."""
    if not argv or argv[0] != "train":
        return DEFAULT_VARIANT
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--variant")
    pre.add_argument("--resume")
    known, _ = pre.parse_known_args(argv[1:])
    if known.variant:
        return known.variant if known.variant in VARIANTS else DEFAULT_VARIANT  # argparse rejects it later
    if known.resume:
        try:
            return _checkpoint_path(known.resume)[1]
        except Exception:      # reported properly once the full parser has run
            pass
    return DEFAULT_VARIANT


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(_peek_variant(argv)).parse_args(argv)
    args.argv = argv
    try:
        code = args.func(args) or 0
        distributed.leave()                    # under torchrun: every process done, group torn down
        return code
    except (ValueError, FileNotFoundError, FileExistsError) as exc:   # bad input: argparse style, exit 2
        args.parser.error(str(exc))
    except (datasets.DatasetUnavailable, distributed.DistributedError) as exc:
        print(f"energylab {args.command}: error: {exc}", file=sys.stderr)
        return 1


# -- train ------------------------------------------------------------------------------------
class ProgressBar(Callback):
    """A tqdm bar over mini-batches; the last measurements as its postfix (no device sync: the
    trainer's evaluation already produced Python floats)."""

    def __init__(self, disable: bool = False):
        self.disable, self.bar = disable, None

    def on_fit_start(self, trainer):
        from tqdm.auto import tqdm
        self.bar = tqdm(total=trainer.total_steps, initial=trainer.step, unit="batch", disable=self.disable,
                        dynamic_ncols=True, file=sys.stderr)

    def on_epoch_start(self, trainer):
        self.bar.set_description(f"epoch {trainer.epoch + 1}/{trainer.params['epochs']}")

    def on_batch_end(self, trainer):
        self.bar.update(1)

    def on_evaluate(self, trainer, record):
        shown = {"recon": "recon_error", "PL": "pseudo_log_likelihood", "PL~": "pseudo_log_likelihood_1bit",
                 "LL": "exact_log_likelihood", "acc": "accuracy"}
        self.bar.set_postfix({k: f"{record[v]:.4g}" for k, v in shown.items() if v in record}, refresh=False)

    def on_fit_end(self, trainer):
        self.bar.close()


class Autosave(Callback):
    """Checkpoint and history at epoch ends, at most every `every_s` seconds, so an interrupted
    run can be resumed and a dashboard can follow it."""

    def __init__(self, run: RunFolder, every_s: float = 30.0):
        self.run, self.every_s, self.last = run, every_s, time.monotonic()

    def on_epoch_end(self, trainer):
        due = time.monotonic() - self.last >= self.every_s
        if trainer.dist is not None:     # rank 0's clock decides for all: the checkpoint is collective
            due = trainer.dist.any(due and trainer.dist.is_main)
        if due:
            self.run.write_checkpoint(trainer)
            self.run.write_history(trainer.history)
            self.last = time.monotonic()


def _checkpoint_path(target) -> tuple[Path, str]:
    """(checkpoint file, variant) of a run folder or a checkpoint file."""
    path = Path(target)
    ckpt = path / "checkpoint.pt" if path.is_dir() else path
    if not ckpt.is_file():
        raise FileNotFoundError(f"--resume {target}: no run folder with a checkpoint.pt and no checkpoint file "
                                "there; pass the folder `energylab train` printed")
    return ckpt, checkpoint.read(ckpt)["config"]["variant"]


def _device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: PyTorch sees no CUDA GPU here; use --device cpu (or auto)")
    return resolve_device(name)


def _load_dataset(name: str, options: dict):
    return load_dataset(name, options, hint=" (pass them as --dataset-option KEY=VALUE)")


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
    options = dict(args.dataset_option)
    if args.resume:
        return _resume(args, options)
    variant = VARIANTS[args.variant or DEFAULT_VARIANT]
    name = args.dataset or DEFAULT_DATASET
    data = _load_dataset(name, options)
    if data.kind not in variant.data_kinds:
        fits = [v.name for v in VARIANTS.values() if data.kind in v.data_kinds]
        raise ValueError(f"variant {variant.name} models {'/'.join(variant.data_kinds)} data but dataset {name!r} "
                         f"is {data.kind!r}; use a variant for {data.kind} data ({', '.join(fits) or 'none yet'})")
    from .registry import make
    training = _given(args, variant.training)
    with torch.random.fork_rng(devices=[]):   # --seed fixes the initial weights too, without touching
        torch.manual_seed(training.get("seed", variant.param("seed").default))   # the caller's global RNG
        model = make(variant.name, data.n_visible, **{**_from_data(variant, data), **_given(args, variant.params)})
    # under torchrun (WORLD_SIZE > 1) every process trains its shard of each batch (distributed.py)
    trainer = Trainer(model, device=_device(args.device), eval_every=args.eval_every,
                      distributed=distributed.launched(), **training)
    run = distributed.on_main(lambda: RunFolder.create(args.runs_dir, variant.name, "".join(
        c if c.isalnum() or c in "-_." else "_" for c in data.name), args.out), "creating the run folder")
    config = {"variant": variant.name, "n_visible": data.n_visible, "model": model.config["hparams"],
              "training": trainer.params.values(),
              "dataset": {"name": name, "options": options, "kind": data.kind, "n_visible": data.n_visible,
                          "image_shape": list(data.image_shape) if data.image_shape else None,
                          "n_train": len(data.train), "n_test": len(data.test)},
              "seed": trainer.params["seed"], "device": str(trainer.device), "eval_every": args.eval_every,
              "energylab_version": __version__, "command": "energylab " + shlex.join(args.argv),
              "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if trainer.dist is not None:
        config["distributed"] = {"world_size": trainer.dist.world_size, "backend": torch.distributed.get_backend()}
    run.write_config(config)
    return _fit(args, trainer, data, run, config, epochs=None)


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
    config = run.read_config() if run else None
    if run and args.out:
        raise ValueError(f"--out is for new runs; a resumed run continues in its own folder {run.path}")
    if config:
        if (args.dataset or config["dataset"]["name"]) != config["dataset"]["name"] or \
                (options and options != config["dataset"]["options"]):
            raise ValueError(f"the run in {run.path} trained on {config['dataset']['name']} with options "
                             f"{config['dataset']['options']}; drop --dataset/--dataset-option to resume it")
        name, options = config["dataset"]["name"], config["dataset"]["options"]
    elif not args.dataset:
        raise ValueError(f"{ckpt} is not inside a run folder, so its dataset is unknown: pass --dataset")
    else:
        name = args.dataset
    data = _load_dataset(name, options)
    eval_every = args.eval_every or (config or {}).get("eval_every")
    trainer = Trainer.from_checkpoint(ckpt, device=_device(args.device), eval_every=eval_every,
                                      distributed=distributed.launched())
    extra = _given(args, variant.training)
    more = extra.pop("epochs", None)
    for key, value in extra.items():
        if not trainer.params.param(key).live and value != trainer.params[key]:
            raise ValueError(f"{flag(key)} cannot change when resuming (only live hyperparameters can: "
                             f"{', '.join(flag(p.name) for p in variant.training if p.live)}); start a new run")
        trainer.params.set(key, value)      # recorded in the history at the resume step
    target = trainer.epoch + more if more else trainer.params["epochs"]
    if target <= trainer.epoch:
        if distributed.is_main():
            print(f"nothing to do: the run has finished its {trainer.epoch} epochs; pass --epochs N to train N more")
        return 0
    if run is None:
        run = distributed.on_main(lambda: RunFolder.create(args.runs_dir, variant_name, name, args.out),
                                  "creating the run folder")
        config = {"variant": variant_name, "resumed_from": str(ckpt), "dataset": {
            "name": name, "options": options, "kind": data.kind,
            "image_shape": list(data.image_shape) if data.image_shape else None}}
    config.setdefault("resumed", []).append({"command": "energylab " + shlex.join(args.argv), "from_step":
                                             trainer.step, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    config["device"] = str(trainer.device)
    return _fit(args, trainer, data, run, config, epochs=target)


def _fit(args, trainer, data, run, config, epochs) -> int:
    trainer.callbacks += [ProgressBar(disable=args.quiet or not distributed.is_main()), Autosave(run)]
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
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    config["training"] = trainer.params.values()
    run.write_config(config)
    summary = run.save_trainer(trainer, data.image_shape, data.kind,
                               examples=data.test if len(data.test) else data.train)
    if not distributed.is_main():        # rank 0 reports for the whole run
        return 1 if trainer.status == "failed" else 0
    if not args.quiet:
        final = summary["final"]
        shown = ", ".join(f"{k} {final[k]:.4g}" for k in ("recon_error", "pseudo_log_likelihood",
                          "pseudo_log_likelihood_1bit", "exact_log_likelihood", "accuracy") if k in final)
        print(f"{trainer.status}: {trainer.epoch} epochs, {trainer.step} steps; {shown}")
        for note in summary["notes"]:
            print(f"note: {note}")
    print(run.path)
    return 1 if trainer.status == "failed" else 0


# -- evaluate and sample ----------------------------------------------------------------------
def _open_run(path):
    run = RunFolder.open(path)
    config = run.read_config()
    return run, config


LABELS = {"reconstruction_error": "reconstruction error", "free_energy": "free energy",
          "pseudo_log_likelihood": "pseudo-log-likelihood", "exact_log_likelihood": "exact log-likelihood",
          "ais_log_likelihood": "AIS log-likelihood",
          "free_energy_gap": "free-energy gap"}


def cmd_evaluate(args) -> int:
    run, config = _open_run(args.run)
    result = run.evaluate(args.split, _device(args.device), args.exact_max_units, args.seed)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{run.path} ({config['variant']} on {config['dataset']['name']}), {args.split} split, "
          f"{result['n_examples']} examples")
    rows = [[LABELS.get(k, k), "-" if r["value"] is None else f"{r['value']:.5g}", r["method"]]
            for k, r in result["metrics"].items()]
    print(table(["metric", "value", "method"], rows))
    for note in result["notes"]:
        print(f"note: {note}")
    return 0


def cmd_sample(args) -> int:
    run, config = _open_run(args.run)
    shape = config["dataset"].get("image_shape")
    if not shape:
        raise ValueError(f"the data of {run.path} are not images ({config['dataset']['name']}), so there is "
                         "no picture grid to draw; use energylab.load(...).sample(...) in Python")
    model = run.load_model(_device(args.device))
    g = torch.Generator(model.device).manual_seed(args.seed)
    v = model.sample(args.n, k=args.k, beta=1.0 / args.temperature, generator=g)
    grid = viz.tile_images(v, shape, normalize="all" if config["dataset"].get("kind") == "real" else None)
    out = Path(args.out) if args.out else run.file(f"samples-n{args.n}-k{args.k}-seed{args.seed}.png")
    viz.save_png(grid, out, scale=args.scale or display_scale(shape))
    print(out)
    return 0


# -- the registry, datasets and runs as tables ----------------------------------------------
def table(headers, rows, markdown: bool = False) -> str:
    rows = [[str(c) for c in row] for row in rows]
    if markdown:
        cell = lambda s: s.replace("|", "\\|")
        return "\n".join(["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
                         + ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows])
    widths = [max([len(h)] + [len(row[i]) for row in rows]) for i, h in enumerate(headers)]
    line = lambda row: "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(row) for row in rows])


def cmd_variants(args) -> int:
    if args.name is None:
        rows = [[v.name, v.visible, v.hidden, v.method, v.reference] for v in VARIANTS.values()]
        print(table(["name", "visible", "hidden", "method", "reference"], rows, args.markdown))
        return 0
    if args.name not in VARIANTS:
        raise ValueError(f"unknown variant {args.name!r}; registered variants: {', '.join(VARIANTS)}")
    v = VARIANTS[args.name]
    if not args.markdown:
        print(f"{v.name}: {v.summary} ({v.reference}); data: {', '.join(v.data_kinds)}")
    rows = [[p.name, p.kind, p.default, _describe_range(p), "yes" if p.live else "no", p.help] for p in v.schema]
    print(table(["name", "type", "default", "range", "live", "help"], rows, args.markdown))
    return 0


def cmd_datasets(args) -> int:
    rows = [[name, info.kind, info.description] for name, info in datasets.DATASETS.items()]
    print(table(["name", "kind", "description"], rows, args.markdown))
    return 0


def cmd_runs(args) -> int:
    rows = []
    for run in list_runs(args.runs_dir):
        config = run.read_config()
        summary = run.read_summary() if run.file("summary.json").is_file() else {}
        recon = summary.get("final", {}).get("recon_error")
        rows.append([run.path, config.get("variant"), config.get("dataset", {}).get("name"),
                     summary.get("status", "running?"), summary.get("epoch", "-"),
                     "-" if recon is None else f"{recon:.4g}"])
    print(table(["run", "variant", "dataset", "status", "epochs", "recon error"], rows) if rows
          else f"no runs in {args.runs_dir}")
    return 0
