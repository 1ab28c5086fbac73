"""CD-1 on MNIST-shaped data (60,000 x 784, 128 hidden, batch 128, lr 0.1): one epoch each,
energylab against a hand-written PyTorch loop, scikit-learn's BernoulliRBM (PCD), Learnergy 2.0.2
and Paysage 0.2.1 (in their own environments, see setup_others.sh), interleaved rep by rep,
with the machine's compute floor (GEMM + random numbers) measured in the same run.
"""
from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import torch

import energylab as el
from bench.common import summary, timed

HERE = Path(__file__).resolve().parent
N_HIDDEN, BATCH, LR = 128, 128, 0.1


def energylab_epoch(x: torch.Tensor) -> float:
    """Seconds of one training epoch, measured between the trainer's epoch events."""
    class Clock(el.Callback):
        def on_epoch_start(self, trainer):
            self.start = __import__("time").perf_counter()

        def on_epoch_end(self, trainer):
            if x.is_cuda:
                torch.cuda.synchronize()
            self.seconds = __import__("time").perf_counter() - self.start

    clock = Clock()
    model = el.make("RBM", n_visible=x.shape[1], n_hidden=N_HIDDEN)
    el.Trainer(model, lr=LR, momentum=0.0, weight_decay=0.0, k=1, batch_size=BATCH, epochs=1,
               device=x.device, eval_every=10 ** 9, check_every=10 ** 9, monitor_size=64,
               callbacks=[clock]).fit(x)
    return clock.seconds


def hand_written_cd1(x: torch.Tensor, W, a, b, generator, lr: float = LR, batch: int = BATCH) -> None:
    """The yardstick: a careful minimal CD-1 epoch (shuffled batches, rand + compare sampling),
    updating W, a, b in place; its random numbers come in the order energylab draws them."""
    perm = torch.randperm(len(x), generator=generator, device=x.device)
    for i in range(0, len(x), batch):
        v = x[perm[i:i + batch]]
        ph = torch.sigmoid(torch.addmm(b, v, W))
        h = (torch.rand(ph.shape, generator=generator, device=x.device) < ph).float()
        pv = torch.sigmoid(torch.addmm(a, h, W.t()))
        vn = (torch.rand(pv.shape, generator=generator, device=x.device) < pv).float()
        phn = torch.sigmoid(torch.addmm(b, vn, W))
        n = v.shape[0]
        W.add_(torch.addmm(vn.t() @ phn, v.t(), ph, beta=-1.0), alpha=lr / n)
        a.add_((v - vn).sum(0), alpha=lr / n)
        b.add_((ph - phn).sum(0), alpha=lr / n)


def hand_written_epoch(x: torch.Tensor) -> float:
    """Seconds of one epoch of the yardstick loop."""
    def epoch():
        g = torch.Generator(x.device).manual_seed(0)
        W = torch.randn(x.shape[1], N_HIDDEN, device=x.device) * 0.01
        a, b = torch.zeros(x.shape[1], device=x.device), torch.zeros(N_HIDDEN, device=x.device)
        hand_written_cd1(x, W, a, b, g)
        if x.is_cuda:
            torch.cuda.synchronize()
    return timed(epoch)


def sklearn_epoch(x: torch.Tensor) -> float:
    from sklearn.neural_network import BernoulliRBM
    data = x.cpu().numpy()
    rbm = BernoulliRBM(n_components=N_HIDDEN, learning_rate=LR, batch_size=BATCH, n_iter=1, random_state=0)
    return timed(rbm.fit, data)


def other_library_epoch(python: Path, script: str, data_file: Path, threads: int, *extra,
                        info: dict | None = None) -> float:
    """Seconds from the last stdout line ({"seconds": ...}) of a script run in another venv;
    the line's other keys (Paysage's "backend") go into `info` when given."""
    out = subprocess.run([str(python), str(HERE / "others" / script), str(data_file), "--threads", str(threads),
                          "--hidden", str(N_HIDDEN), "--batch", str(BATCH), "--lr", str(LR), *extra],
                         capture_output=True, text=True, timeout=1200, check=True)
    reported = json.loads(out.stdout.strip().splitlines()[-1])
    if info is not None:
        info.update(reported)
    return reported["seconds"]


def compute_floor(x: torch.Tensor, reps: int = 3) -> dict:
    """Lower bound of one CD-1 epoch on this machine: its five GEMMs per batch plus its random numbers."""
    n_batches = -(-len(x) // BATCH)
    v = x[:BATCH].clone()
    W = torch.randn(x.shape[1], N_HIDDEN, device=x.device)
    h = torch.rand(BATCH, N_HIDDEN, device=x.device)
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)

    def gemms():
        for _ in range(n_batches):
            v @ W, h @ W.t(), v @ W, v.t() @ h, v.t() @ h          # up, down, up, two statistics
        sync()

    def randoms():
        for _ in range(n_batches):
            torch.rand(BATCH, N_HIDDEN, device=x.device) < h
            torch.rand(BATCH, x.shape[1], device=x.device) < v
        sync()

    gemm = min(timed(gemms) for _ in range(reps))
    rng = min(timed(randoms) for _ in range(reps))
    flops = n_batches * 5 * 2 * BATCH * x.shape[1] * N_HIDDEN
    return {"gemm_s": gemm, "rng_s": rng, "floor_s": gemm + rng, "gemm_gflops": flops / gemm / 1e9}


def run(x: torch.Tensor, reps: int = 3, threads: int = 2) -> dict:
    runners = {"energylab": energylab_epoch, "hand-written PyTorch": hand_written_epoch,
               "scikit-learn BernoulliRBM (PCD)": sklearn_epoch}
    notes = {}
    tmp = Path(tempfile.mkdtemp())
    data_file = tmp / "x.npy"
    np.save(data_file, x.cpu().numpy())
    learnergy = HERE / ".venv-learnergy" / "bin" / "python"
    if learnergy.exists():
        runners["Learnergy 2.0.2"] = lambda _: other_library_epoch(learnergy, "learnergy_cd1.py", data_file, threads)
    else:
        notes["Learnergy 2.0.2"] = "not installed (run bench/setup_others.sh)"
    status = HERE / ".paysage-status"
    paysage = HERE / ".venv-paysage" / "bin" / "python"
    paysage_info = {}
    if status.exists() and status.read_text().startswith("installed") and (HERE / "others" / "paysage_cd1.py").exists():
        runners["Paysage 0.2.1"] = lambda _: other_library_epoch(paysage, "paysage_cd1.py", data_file, threads,
                                                                 info=paysage_info)
    else:
        notes["Paysage 0.2.1"] = status.read_text().strip() if status.exists() else "not attempted"
    for warm in (energylab_epoch, hand_written_epoch):   # first calls pay for thread pools and allocators
        warm(x[:4096])
    times = {name: [] for name in runners}
    for _ in range(reps):                      # interleaved: every library sees the same machine state
        for name, fn in runners.items():
            times[name].append(fn(x))
    result = {name: summary(t) for name, t in times.items()}
    if "backend" in paysage_info:              # pytorch/cpu as in the reference numbers, or python/cpu
        result["Paysage 0.2.1"]["backend"] = paysage_info["backend"]
    floor = compute_floor(x)
    ours = result["energylab"]["median_s"]
    for name, r in result.items():
        r["samples_per_s"] = len(x) / r["median_s"]
        r["x_energylab"] = r["median_s"] / ours
        r["x_floor"] = r["median_s"] / floor["floor_s"]
    return {"epoch": result, "floor": floor, "notes": notes}
