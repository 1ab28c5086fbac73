"""Time Learnergy's Bernoulli RBM (CD-1) for one epoch; run inside the Learnergy environment.

    python learnergy_cd1.py DATA.npy --threads 2 --hidden 128 --batch 128

Prints one JSON line: {"seconds": ...}. Imports and data loading are not timed.
"""
import cli_args  # beside this script
import json
import time

import numpy as np
import torch
from torch.utils.data import TensorDataset

parser = cli_args.parser()
parser.add_argument("--what", choices=["rbm", "dbn"], default="rbm")
args = parser.parse_args()
torch.set_num_threads(args.threads)
torch.manual_seed(0)

x = torch.from_numpy(np.load(args.data))
dataset = TensorDataset(x, torch.zeros(len(x)))
if args.what == "rbm":
    from learnergy.models.bernoulli import RBM
    model = RBM(n_visible=x.shape[1], n_hidden=args.hidden, steps=1, learning_rate=args.lr)
    start = time.perf_counter()
    model.fit(dataset, batch_size=args.batch, epochs=1)
else:
    from learnergy.models.deep import DBN
    model = DBN(model=("bernoulli", "bernoulli", "bernoulli"), n_visible=x.shape[1],
                n_hidden=(args.hidden,) * 3, steps=(1,) * 3, learning_rate=(args.lr,) * 3,
                momentum=(0.0,) * 3, decay=(0.0,) * 3, temperature=(1.0,) * 3)
    start = time.perf_counter()
    model.fit(dataset, batch_size=args.batch, epochs=(1,) * 3)
print(json.dumps({"seconds": time.perf_counter() - start}))
