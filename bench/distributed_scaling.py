"""Data-parallel scaling: one CD-1 epoch on 1 process and on N processes (torchrun), seconds and ratio.

    .venv/bin/python -m bench.distributed_scaling [--procs 2] [--rows 60000] [--hidden 128] [--batch 256]

Each worker runs `el.Trainer(..., distributed=True)` on the same MNIST-shaped data and reports the
epoch time measured between the trainer's epoch events (start-up and process-group set-up are not
timed). On CPU the processes share the machine's cores, so the ratio says what gloo's all-reduce and
the split cost here; on a multi-GPU machine the same command measures GPU scaling (nccl).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import torch

import energylab as el


def worker(rows: int, hidden: int, batch: int, threads: int) -> None:
    from bench.common import mnist_like
    torch.set_num_threads(threads)
    x, _ = mnist_like(rows)

    class Clock(el.Callback):
        def on_epoch_start(self, trainer):
            self.start = time.perf_counter()

        def on_epoch_end(self, trainer):
            if trainer.device.type == "cuda":
                torch.cuda.synchronize()
            self.seconds = time.perf_counter() - self.start

    clock = Clock()
    model = el.make("RBM", n_visible=x.shape[1], n_hidden=hidden)
    trainer = el.Trainer(model, lr=0.1, momentum=0.0, weight_decay=0.0, batch_size=batch, epochs=1,
                         eval_every=10 ** 9, check_every=10 ** 9, monitor_size=64, distributed=True,
                         callbacks=[clock])
    trainer.fit(x)
    if int(os.environ.get("RANK", 0)) == 0:
        print(json.dumps({"seconds": clock.seconds}))
    from energylab.training import distributed
    distributed.leave()


def run(procs: int, args) -> float:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}",
               "-m", "bench.distributed_scaling", "--worker", "--rows", str(args.rows), "--hidden",
               str(args.hidden), "--batch", str(args.batch), "--threads", str(args.threads)]
    out = subprocess.run(command, capture_output=True, text=True, timeout=1200, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["seconds"]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--rows", type=int, default=60000)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--batch", type=int, default=256, help="global mini-batch")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.rows, args.hidden, args.batch, args.threads)
        return {}
    times = {1: [], args.procs: []}
    for _ in range(args.reps):                       # interleaved, as every benchmark here
        for procs in times:
            times[procs].append(run(procs, args))
    best = {procs: min(t) for procs, t in times.items()}
    result = {"seconds": best, "speed-up": best[1] / best[args.procs], "procs": args.procs}
    print(f"one CD-1 epoch, {args.rows} rows, {args.hidden} hidden, global batch {args.batch}, "
          f"{args.threads} thread(s) per process: 1 process {best[1]:.3f} s, {args.procs} processes "
          f"{best[args.procs]:.3f} s, speed-up {result['speed-up']:.2f}x")
    return result


if __name__ == "__main__":
    main()
