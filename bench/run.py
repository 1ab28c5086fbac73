"""`make bench`: every benchmark in one run; writes bench/results/latest.{json,md} and the README table.

    python -m bench.run [--reps 3] [--threads 2] [--quick]
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

import torch

import energylab as el
from energylab.training.trainer import resolve_device
from bench import cd1
from bench.common import machine, mnist_like, summary, timed, write

README = Path(__file__).resolve().parents[1] / "README.md"


def other_measurements(x: torch.Tensor, reps: int) -> dict:
    """Reconstruction of 10,000 samples, exact log Z with 20 hidden units, AIS with 1,000 temperatures."""
    model = el.make("RBM", n_visible=x.shape[1], n_hidden=128).to(x.device)
    out = {"reconstruct 10,000": summary([timed(model.reconstruct, x[:10000]) for _ in range(reps)])}
    small = el.make("RBM", n_visible=x.shape[1], n_hidden=20).to(x.device)
    out["exact log Z, 20 hidden (2^20 states)"] = summary(
        [timed(el.metrics.exact_log_partition, small) for _ in range(reps)])
    ais = getattr(el.metrics, "ais_log_partition", None)
    if ais is not None:
        out["AIS, 1,000 temperatures x 100 chains"] = summary(
            [timed(ais, model, n_chains=100, betas=1000) for _ in range(reps)])
    return out


def markdown(result: dict) -> str:
    m, f = result["machine"], result["cd1"]["floor"]
    lines = [f"CD-1 epoch, {result['data']}, 128 hidden, batch 128 — {m['date']}, {m['processor']}, "
             f"torch {m['torch']}, {m['threads']} threads" + (f", GPU {m['gpu']}" if m["gpu"] else ", CPU"), "",
             "| library | s / epoch (median) | spread | samples / s | x energylab | x floor |",
             "|---|---|---|---|---|---|"]
    for name, r in result["cd1"]["epoch"].items():
        lines.append(f"| {name} | {r['median_s']:.3f} | {r['min_s']:.3f}–{r['max_s']:.3f} | "
                     f"{r['samples_per_s']:,.0f} | {r['x_energylab']:.2f} | {r['x_floor']:.2f} |")
    for name, note in result["cd1"]["notes"].items():
        lines.append(f"| {name} | — | {note} | | | |")
    lines += ["", f"Floor (same run): GEMMs {f['gemm_s']:.3f} s ({f['gemm_gflops']:.0f} GFLOP/s) + random "
              f"numbers {f['rng_s']:.3f} s = {f['floor_s']:.3f} s per epoch.", ""]
    if result.get("where"):
        from bench import where_time_goes
        lines += where_time_goes.markdown(result["where"])
    if result.get("dbn"):
        d = result["dbn"]
        lines += [f"3-layer DBN epoch: {d['dbn_s']:.3f} s; sum of its three RBM epochs: {d['sum_s']:.3f} s "
                  f"(ratio {d['ratio']:.2f})" + (f"; Learnergy DBN: {d['learnergy_s']:.3f} s" if d.get("learnergy_s")
                                                  else ""), ""]
    if result.get("distributed"):
        d = result["distributed"]
        lines += [f"Data-parallel CD-1 epoch (torch.distributed, gloo, 1 thread per process, global batch 256): "
                  f"1 process {d['seconds'][1]:.3f} s, 2 processes {d['seconds'][2]:.3f} s "
                  f"(speed-up {d['speed-up']:.2f}x on this machine's cores)", ""]
    if result.get("import"):
        from bench import import_time
        lines += import_time.markdown(result["import"])
    lines += ["| other work | s (median) |", "|---|---|"]
    lines += [f"| {name} | {r['median_s']:.3f} |" for name, r in result["other"].items()]
    return "\n".join(lines) + "\n"


def update_readme(table: str) -> None:
    text = README.read_text()
    block = f"<!-- bench:start -->\n{table}<!-- bench:end -->"
    if "<!-- bench:start -->" in text:
        text = re.sub(r"<!-- bench:start -->.*<!-- bench:end -->", lambda _: block, text, flags=re.S)
        README.write_text(text)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="10,000 rows instead of 60,000 (a smoke run)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    x, source = mnist_like(10000 if args.quick else 60000)
    x = x.to(device)
    result = {"machine": machine(), "data": f"{len(x):,} x 784 ({source})"}
    from bench import import_time
    result["import"] = import_time.run(5)
    result["cd1"] = cd1.run(x, args.reps, args.threads)
    from bench import where_time_goes
    result["where"] = where_time_goes.run(x[:20000])
    try:
        from bench import dbn_epoch
        result["dbn"] = dbn_epoch.run(x, args.reps)
    except ImportError:
        result["dbn"] = None
    result["other"] = other_measurements(x, args.reps)
    from bench import distributed_scaling
    result["distributed"] = distributed_scaling.main(["--procs", "2", "--rows", str(len(x)), "--reps", str(args.reps)])
    table = markdown(result)
    write("latest", result, table)
    if not args.quick:
        update_readme(table)
    print(table)


if __name__ == "__main__":
    main()
