"""The commands that read: `evaluate`, `sample`, and `variants`, `datasets`, `runs` as tables.

`evaluate` measures a trained run on its data (the exact log-likelihood where a layer
is small enough to enumerate, estimates elsewhere, each metric named with its
method); `sample` draws model samples of a run with Gibbs chains and saves them as a
PNG grid; the listings print the registry, the datasets and the run folders as
aligned text or, with `--markdown`, as the Markdown table the README embeds.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from .. import datasets, viz
from ..errors import DataError
from ..registry import VARIANTS
from ..store.runfolder import RunFolder, display_scale
from .flags import describe_range, device_flag


# -- evaluate and sample ----------------------------------------------------------------------
# Paths in a run's record (a dataset's root or file) must lie in the data directory
# ($ENERGYLAB_DATA) or, on the command line, under the folder the command runs in.
def _allowed_data_dirs() -> tuple:
    return (Path.cwd(),)


def _open_run(path):
    """(RunFolder, RunConfig) of a run folder written by the command line or the dashboard."""
    run = RunFolder.open(path)
    return run, run.read_record()


LABELS = {"reconstruction_error": "reconstruction error", "free_energy": "free energy",
          "pseudo_log_likelihood": "pseudo-log-likelihood", "exact_log_likelihood": "exact log-likelihood",
          "ais_log_likelihood": "AIS log-likelihood",
          "free_energy_gap": "free-energy gap"}


def cmd_evaluate(args) -> int:
    run, cfg = _open_run(args.run)
    result = run.evaluate(args.split, device_flag(args.device), args.exact_max_units, args.seed,
                          also=_allowed_data_dirs())
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{run.path} ({cfg.variant} on {cfg.dataset.name}), {args.split} split, "
          f"{result['n_examples']} examples")
    rows = [[LABELS.get(k, k), "-" if r["value"] is None else f"{r['value']:.5g}", r["method"]]
            for k, r in result["metrics"].items()]
    print(table(["metric", "value", "method"], rows))
    for note in result["notes"]:
        print(f"note: {note}")
    return 0


def cmd_sample(args) -> int:
    run, cfg = _open_run(args.run)
    shape, kind = cfg.dataset.image_shape, cfg.dataset.kind
    if shape is None and kind is None:   # a dashboard record does not say: the data do
        data = run.load_dataset(also=_allowed_data_dirs())
        shape, kind = data.image_shape, data.kind
    if not shape:
        raise DataError("the data are not images, so there is no picture grid to draw", file=run.path,
                        field="dataset.name", value=cfg.dataset.name,
                        fix="use energylab.load(...).sample(...) in Python")
    model = run.load_model(device_flag(args.device))
    g = torch.Generator(model.device).manual_seed(args.seed)
    v = model.sample(args.n, k=args.k, beta=1.0 / args.temperature, generator=g)
    grid = viz.tile_images(v, shape, normalize="all" if kind == "real" else None)
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
    rows = [[p.name, p.kind, p.default, describe_range(p), "yes" if p.live else "no", p.help] for p in v.schema]
    print(table(["name", "type", "default", "range", "live", "help"], rows, args.markdown))
    return 0


def cmd_datasets(args) -> int:
    rows = [[name, info.kind, info.description] for name, info in datasets.DATASETS.items()]
    print(table(["name", "kind", "description"], rows, args.markdown))
    return 0


def cmd_runs(args) -> int:
    """Every run folder, from the command line or the dashboard; a folder that cannot be read is
    one row saying why ("unreadable: <reason>"), never a crash."""
    rows = []
    for run in RunFolder.list_runs(args.runs_dir):
        if not run.readable:
            rows.append([run.path, "-", "-", f"unreadable: {run.error}", "-", "-"])
            continue
        cfg = run.record
        try:
            summary = run.read_summary() if run.file("summary.json").is_file() else {"status": "running?"}
        except (OSError, ValueError) as exc:
            summary = {"status": f"unreadable summary.json ({type(exc).__name__})"}
        summary = summary if isinstance(summary, dict) else {"status": "unreadable summary.json"}
        final = summary.get("final") if isinstance(summary.get("final"), dict) else {}
        recon = final.get("recon_error")
        rows.append([run.path, cfg.variant, cfg.dataset.name, summary.get("status", "unknown"),
                     summary.get("epoch", "-"), f"{recon:.4g}" if isinstance(recon, (int, float)) else "-"])
    print(table(["run", "variant", "dataset", "status", "epochs", "recon error"], rows) if rows
          else f"no runs in {args.runs_dir}")
    return 0
