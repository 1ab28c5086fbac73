"""Where energylab's CD-1 epoch goes: its own epoch under torch.profiler, operators grouped.

    .venv/bin/python -m bench.where_time_goes [--rows 20000]

The groups are matrix products (the floor's GEMMs), random numbers (the floor's RNG), and
everything else the step needs that the floor leaves out (sigmoids, compares, the batch
gather, the bias statistics, the parameter update); "outside operators" is the wall time
left over: Python, dispatch, the trainer's bookkeeping. The profiler adds its own overhead
to every operator, so read the shares, not the absolute times.
"""
from __future__ import annotations

import argparse
import time

import torch

import energylab as el
from bench.cd1 import BATCH, LR, N_HIDDEN

GROUPS = {"matrix products": ("aten::mm", "aten::addmm", "aten::addmm_"),
          "random numbers": ("aten::uniform_",)}


def run(x: torch.Tensor) -> dict:
    """Seconds per epoch in each group, and the number of batches."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if x.is_cuda else [])
    prof = profile(activities=activities)

    class Window(el.Callback):
        """The profiler runs from the epoch's first batch to its last (not the fit's set-up)."""
        def on_epoch_start(self, trainer):
            if profiling:
                prof.start()
            self.start = time.perf_counter()

        def on_epoch_end(self, trainer):
            if x.is_cuda:
                torch.cuda.synchronize()
            self.wall = time.perf_counter() - self.start
            if profiling:
                prof.stop()

    def epoch():
        model = el.make("RBM", n_visible=x.shape[1], n_hidden=N_HIDDEN)
        el.Trainer(model, lr=LR, momentum=0.0, weight_decay=0.0, k=1, batch_size=BATCH, epochs=1,
                   device=x.device, eval_every=10 ** 9, check_every=10 ** 9, monitor_size=64,
                   callbacks=[window]).fit(x)

    window, profiling = Window(), False
    epoch()                                    # warm-up
    profiling = True
    epoch()
    wall = window.wall
    # self times: an operator called inside another (rand -> uniform_) counts once, where it works
    seconds = {name: 0.0 for name in GROUPS}
    seconds["other operators"] = 0.0
    for e in prof.events():
        if e.name.startswith("aten::"):
            group = next((g for g, names in GROUPS.items() if e.name in names), "other operators")
            seconds[group] += e.self_cpu_time_total / 1e6
    seconds["outside operators"] = max(0.0, wall - sum(seconds.values()))
    return {"wall_s": wall, "rows": len(x), "seconds": seconds}


def markdown(r: dict) -> list[str]:
    lines = [f"Where energylab's CD-1 epoch goes (torch.profiler, {r['rows']:,} rows, profiler overhead "
             "included: read the shares):", "", "| part | share |", "|---|---|"]
    lines += [f"| {name} | {s / r['wall_s']:.0%} |" for name, s in r["seconds"].items()]
    return lines + [""]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20000)
    args = parser.parse_args(argv)
    from bench.common import mnist_like
    x, _ = mnist_like(args.rows)
    print("\n".join(markdown(run(x))))


if __name__ == "__main__":
    main()
