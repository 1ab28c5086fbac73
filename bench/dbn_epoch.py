"""Does an epoch of a deep belief network cost the sum of its RBMs' epochs? (target: ratio <= 1.2)

    .venv/bin/python -m bench.dbn_epoch [--layers 500,500,200] [--n 10000] [--epochs 2] [--device auto]

A 3-layer `DBN` is trained with `Trainer(...).fit` (greedy, each layer on the cached
features of the one below); then three stand-alone `RBM`s of the same sizes are
trained for the same epochs on the same inputs (the data, then the features the
DBN's layers produce). Both sides use the same trainer, batch size and seed, with
evaluation switched off so only training is timed. The DBN side also pays for the
one forward pass per layer that builds the cache and for one final stack record.
A stack that pushed every batch through the layers below (Learnergy's DBN) would
cost roughly 1 + 2 + 3 = 6 layer-passes per batch of the top layer instead of 3.
The data are random binary rows of MNIST size (the bench needs no download).
"""
from __future__ import annotations

import argparse
import time

import torch

import energylab as el
from energylab.training.trainer import resolve_device


def timed(fn, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def measure(data, layers: str, epochs: int, batch_size: int, repeats: int, device) -> dict:
    """Best-of-`repeats` seconds for the DBN and for each stand-alone RBM on the inputs its layer saw."""
    sizes = [int(s) for s in layers.split(",")]
    training = dict(device=device, epochs=epochs, batch_size=batch_size, eval_every=10**9, seed=0)

    def dbn_run():
        model = el.make("DBN", n_visible=data.shape[1], hidden_layers=layers)
        el.Trainer(model, **training).fit(data)
        return model

    dbn_run()                                         # warm-up (allocator, kernels)
    trained = dbn_run()
    inputs, x = [], data
    for l in range(len(sizes)):                       # the inputs each layer saw (for the RBM side)
        inputs.append(x)
        x = trained.lift_all(l, x)

    def rbm_run(l):
        rbm = el.make("RBM", n_visible=inputs[l].shape[1], n_hidden=sizes[l])
        el.Trainer(rbm, **training).fit(inputs[l])

    dbn = min(timed(dbn_run, device) for _ in range(repeats))
    per_layer = [min(timed(lambda: rbm_run(l), device) for _ in range(repeats)) for l in range(len(sizes))]
    return {"layers": sizes, "dbn_s": dbn, "rbm_s": per_layer, "sum_s": sum(per_layer),
            "ratio": dbn / sum(per_layer), "inputs": [tuple(i.shape) for i in inputs]}


def run(x, reps: int = 3, layers: str = "128,128,128", threads: int = 2) -> dict:
    """For `make bench`: one epoch per layer on the benchmark data, and Learnergy's DBN on the same data."""
    from bench import cd1
    result = measure(x, layers, epochs=1, batch_size=128, repeats=reps, device=x.device)
    learnergy = cd1.HERE / ".venv-learnergy" / "bin" / "python"
    if learnergy.exists():
        import tempfile
        from pathlib import Path
        import numpy as np
        data_file = Path(tempfile.mkdtemp()) / "x.npy"
        np.save(data_file, x.cpu().numpy())
        result["learnergy_s"] = min(cd1.other_library_epoch(learnergy, "learnergy_cd1.py", data_file, threads,
                                                            "--what", "dbn") for _ in range(reps))
    return result


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", default="500,500,200")
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--n-visible", type=int, default=784)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    g = torch.Generator().manual_seed(0)
    data = (torch.rand(args.n, args.n_visible, generator=g) < 0.2).float().to(device)
    r = measure(data, args.layers, args.epochs, args.batch_size, args.repeats, device)
    print(f"device {device}; data {args.n} x {args.n_visible}; layers {r['layers']}; {args.epochs} epoch(s) per "
          f"layer, batch {args.batch_size}; best of {args.repeats}")
    print(f"DBN (greedy, cached features): {r['dbn_s']:.3f} s")
    for l, (t, shape) in enumerate(zip(r["rbm_s"], r["inputs"])):
        print(f"  RBM {l + 1} ({shape[1]} x {r['layers'][l]}) alone: {t:.3f} s")
    print(f"sum of the RBMs: {r['sum_s']:.3f} s; ratio DBN / sum = {r['ratio']:.3f} (target <= 1.2)")
    return r


if __name__ == "__main__":
    main()
