"""The `energylab` command line: train, evaluate, sample, and browse the registry.

    energylab train --variant RBM --dataset digits --epochs 5 --n-hidden 64 --lr 0.1
    energylab evaluate runs/RBM-digits-20240501-120000
    energylab sample runs/RBM-digits-20240501-120000 --n 64 --k 1000
    energylab variants [NAME] [--markdown]      energylab datasets      energylab runs
    energylab dashboard [--port 8501] [--runs-dir runs]      (the Streamlit app, loopback only)

The flags of `train` are generated from the chosen variant's schema
(`energylab.VARIANTS[name].schema`), so a new variant gets its flags with no
change here: `--variant` is read first, then the parser for that variant is built.
A run writes a folder (see `energylab.store.runfolder`) that `evaluate`, `sample`,
`--resume` and the dashboard read back.

This module is the parser and `main`; the generated flags and argument types are in
`flags.py`, `train` (new and resumed runs) in `train.py`, and the commands
that read (`evaluate`, `sample`, the tables) in `commands.py`, `dashboard` in
`dashboard.py`.
"""
from __future__ import annotations

import argparse
import sys
import warnings

from .. import datasets
from ..errors import EnergylabError
from ..registry import VARIANTS
from ..training import distributed
from ..version import __version__
from .commands import LABELS, cmd_datasets, cmd_evaluate, cmd_runs, cmd_sample, cmd_variants, table
from .dashboard import LOOPBACK, cmd_dashboard
from .flags import (
    DEFAULT_DATASET,
    DEFAULT_VARIANT,
    FIXED,
    _dataset_option,
    _port,
    _positive_float,
    _positive_int,
    add_schema_flags,
    flag,
    name_other_variants,
)
from .train import Autosave, ProgressBar, _checkpoint_path, cmd_train

# what `energylab.cli` offered before it was split, still importable from here
__all__ = ["main", "build_parser", "DEFAULT_VARIANT", "DEFAULT_DATASET", "FIXED", "flag", "add_schema_flags",
           "ProgressBar", "Autosave", "LABELS", "table", "cmd_train", "cmd_evaluate", "cmd_sample", "cmd_variants",
           "cmd_datasets", "cmd_runs"]


# -- the parser ------------------------------------------------------------------------------
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
    train.add_argument("--restart", action="store_true", help="with --out DIR: start the run in DIR again from "
                       "scratch, replacing its run files (e.g. a run killed before its first checkpoint)")
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

    dash = sub.add_parser("dashboard", help="start the dashboard (Streamlit) on this machine",
                          description="Start the Streamlit dashboard with the project's settings, from any "
                          "folder: loopback only unless --address says otherwise, no usage statistics, no "
                          "Deploy button.")
    dash.add_argument("--address", default=LOOPBACK, help=f"address to listen on (default {LOOPBACK}: this "
                      "machine only); anything else exposes every run to the network")
    dash.add_argument("--port", type=_port, default=8501, help="port (default 8501)")
    dash.add_argument("--runs-dir", default="runs", help="where run folders are kept (default: ./runs); "
                      "sets ENERGYLAB_RUNS_DIR for the app")
    dash.set_defaults(func=cmd_dashboard, parser=dash)
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
    """Run one command. Every refusal is one line, `energylab <command>: error: ...`, and a non-zero
    exit: 2 for bad input (argparse's convention), 1 for anything else; `--debug` (anywhere on the
    line) re-raises instead, so the traceback shows."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    variant = _peek_variant(argv)
    parser = build_parser(variant)
    name_other_variants(parser, variant)
    args = parser.parse_args(argv)
    args.argv = argv
    shown = warnings.showwarning
    if not debug:     # a warning is one line too (e.g. AIS bases that disagree)
        warnings.showwarning = lambda message, category, *rest: print(
            f"energylab {args.command}: warning: {' '.join(str(message).split())}", file=sys.stderr)
    try:
        return _run(args, debug)
    finally:
        warnings.showwarning = shown


def _run(args, debug: bool) -> int:
    try:
        code = args.func(args) or 0
        distributed.leave()                    # under torchrun: every process done, group torn down
        return code
    except KeyboardInterrupt:
        print(f"energylab {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if debug:
            raise
        print(f"energylab {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        if isinstance(exc, (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError)):
            raise SystemExit(2) from None      # bad input
        return 1


def _one_line(exc: BaseException) -> str:
    """The exception as one line: the project's own errors as they are, anything else with its type,
    its file where the OS named one, and the hint that --debug shows the traceback."""
    if isinstance(exc, EnergylabError):
        return str(exc)
    if isinstance(exc, (ValueError, FileNotFoundError, FileExistsError)) and str(exc):
        return " ".join(str(exc).split())
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror or exc} (OSError errno {exc.errno}); nothing more was written"
    if isinstance(exc, MemoryError):
        return "out of memory; use smaller sizes (fewer hidden units, a smaller batch) or free memory"
    text = " ".join(str(exc).split())[:300] or "(no message)"
    return f"unexpected {type(exc).__name__}: {text} (rerun with --debug for the traceback)"
