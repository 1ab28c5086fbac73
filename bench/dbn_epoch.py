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


def timed(fn, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


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
    device = el.trainer.resolve_device(args.device)
    g = torch.Generator().manual_seed(0)
    data = (torch.rand(args.n, args.n_visible, generator=g) < 0.2).float().to(device)
    sizes = [int(s) for s in args.layers.split(",")]
    training = dict(device=device, epochs=args.epochs, batch_size=args.batch_size, eval_every=10**9, seed=0)

    def dbn_run():
        model = el.make("DBN", n_visible=args.n_visible, hidden_layers=args.layers)
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

    dbn = min(timed(dbn_run, device) for _ in range(args.repeats))
    per_layer = [min(timed(lambda: rbm_run(l), device) for _ in range(args.repeats)) for l in range(len(sizes))]
    ratio = dbn / sum(per_layer)
    print(f"device {device}; data {args.n} x {args.n_visible}; layers {sizes}; {args.epochs} epoch(s) per layer, "
          f"batch {args.batch_size}; best of {args.repeats}")
    print(f"DBN (greedy, cached features): {dbn:.3f} s")
    for l, t in enumerate(per_layer):
        print(f"  RBM {l + 1} ({inputs[l].shape[1]} x {sizes[l]}) alone: {t:.3f} s")
    print(f"sum of the RBMs: {sum(per_layer):.3f} s; ratio DBN / sum = {ratio:.3f} (target <= 1.2)")
    return {"dbn_s": dbn, "rbm_s": per_layer, "ratio": ratio}


if __name__ == "__main__":
    main()
