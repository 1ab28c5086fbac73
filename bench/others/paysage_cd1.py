"""Time Paysage 0.2.1's Bernoulli RBM (CD-1) for one epoch; run inside the Paysage environment.

    python paysage_cd1.py DATA.npy --threads 2 --hidden 128 --batch 128 --lr 0.1

CD-1 as in Hinton (2002), "Training products of experts by minimizing contrastive divergence":
Paysage's `fit.methods.cd` with one Monte Carlo step, plain gradient steps (no momentum), a
constant learning rate, inverse temperature fixed at 1 (beta_std=0) and the progress monitor off.
The backend (pytorch or python/numpy) is whatever `setup_others.sh` wrote into Paysage's
backends/config.json; it is reported with the time.

Prints one JSON line last: {"seconds": ..., "backend": "..."}. Imports, data loading, model
construction and initialisation are not timed; the epoch is.
"""
import cli_args  # beside this script
import json
import sys
import time

import numpy as np

parser = cli_args.parser()
args = parser.parse_args()

from threadpoolctl import threadpool_limits  # noqa: E402  (numpy's BLAS threads, python backend)

threadpool_limits(args.threads)
from paysage import backends as be, batch, fit, layers, models, optimizers, schedules  # noqa: E402
from paysage.backends import read_config  # noqa: E402

backend = f"{read_config.BACKEND}/{read_config.PROCESSOR}"
if read_config.BACKEND == "pytorch":
    import torch
    torch.set_num_threads(args.threads)

x = np.load(args.data).astype(np.float32, copy=False)
if x.ndim != 2 or x.min() < 0 or x.max() > 1:
    sys.exit(f"{args.data}: expected a 2-D array with values in [0, 1], got shape {x.shape} "
             f"and range [{x.min()}, {x.max()}]; save the training rows as float32 in [0, 1]")
be.set_seed(0)
data = batch.Batch({"train": batch.InMemoryTable(be.float_tensor(x), args.batch)})

rbm = models.BoltzmannMachine([layers.BernoulliLayer(x.shape[1]), layers.BernoulliLayer(args.hidden)])
rbm.initialize(data, method="hinton")           # W ~ N(0, 0.01), biases from the data means

sgd = fit.SGD(rbm, data)
sgd.monitor = None                              # no reconstruction / fantasy metrics per epoch
step = optimizers.Gradient(stepsize=schedules.Constant(initial=args.lr))

start = time.perf_counter()
sgd.train(step, num_epochs=1, mcsteps=1, method=fit.methods.cd, beta_std=0.0, verbose=False)
if read_config.PROCESSOR == "gpu":
    torch.cuda.synchronize()
seconds = time.perf_counter() - start

print(json.dumps({"seconds": seconds, "backend": backend}))
