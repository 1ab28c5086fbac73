"""Data-parallel training (energylab/training/distributed.py): 2 CPU processes on the gloo backend.

The test starts two real processes (this file run as a script, with the environment
torchrun would give: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT), each with a timeout,
so a hang fails the test instead of blocking it.

Why the exactness comparison is exact *and* meaningful. CD-k draws random numbers per
example (the hidden sample, the k Gibbs sweeps), and each process draws them from its
own sampling generator (seed + 1000003 (rank + 1)), so no single-process run with one
generator can draw the same numbers. The reference is therefore the *definition* of a
data-parallel step, written here with the plain engine in this one process, without
torch.distributed: for every step take the global batch from the permutation of the
shared (seed-seeded) generator, compute shard r = batch[r::2] 's CD-k gradient with
generator r (the objective writes .grad), average the shards' gradients weighted by
their share of the batch, and take one optimizer step (momentum, weight decay). If the
distributed run's sharding, shared permutation, per-rank streams, all_reduce, weights,
initial broadcast (rank 1 builds its model from another seed) or layerwise plumbing
were wrong, the parameters would differ. The batch size 7 on 30 examples gives an
uneven last batch (shards of 1 and 1, and of 4 and 3 elsewhere), which checks the weights.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

import energylab as el
from energylab.training import checkpoint
from energylab.training import distributed
from energylab.training.samplers import from_hyperparameters

WORLD = 2
ROOT = Path(__file__).resolve().parent.parent
HP = dict(lr=0.1, momentum=0.5, weight_decay=1e-3, k=2, batch_size=7, seed=3)
TIMEOUT_S = 120


def data() -> torch.Tensor:
    g = torch.Generator().manual_seed(11)
    return (torch.rand(30, 16, generator=g) < 0.4).float()


def rbm(seed: int):
    torch.manual_seed(seed)
    return el.make("RBM", 16, n_hidden=8, init_std=0.1)


def dbn(seed: int, **fine_tune):
    torch.manual_seed(seed)
    return el.make("DBN", 16, hidden_layers="8,6", layer_epochs="2,1", init_std=0.1, **fine_tune)


HEAD = dict(fine_tune="head", n_classes=3, fine_tune_epochs=2, fine_tune_lr=0.3)


def labels() -> torch.Tensor:
    return (data()[:, :6].sum(1) % 3).long()


# -- the workers (this file run as a script in each process) ----------------------------------------
def worker(scenario: str, out: Path) -> None:
    torch.set_num_threads(1)
    rank = int(os.environ["RANK"])
    x = data()
    mine = out / f"rank{rank}"
    mine.mkdir(parents=True, exist_ok=True)
    if scenario == "crash":
        class Crash(el.Callback):
            def on_batch_start(self, trainer):
                if rank == 1 and trainer.step == 3:
                    raise SystemExit("rank 1 crashes on purpose")
        el.Trainer(rbm(0), device="cpu", distributed=True, callbacks=[Crash()], epochs=50, **HP).fit(x)
        return
    other = 99 if rank else 0            # rank 1 starts from other weights: the broadcast must fix that
    # 1. an RBM with CD-k
    trainer = el.Trainer(rbm(0 + other), device="cpu", distributed=True, epochs=2, eval_every=3, **HP)
    trainer.fit(x)
    torch.save({k: v.clone() for k, v in trainer.model.state_dict().items()}, mine / "rbm.pt")
    (mine / "record.json").write_text(json.dumps(trainer.history.last()))
    # 2. a DBN, layer by layer (layer 1 for 2 epochs, layer 2 for 1)
    stack = dbn(1 + other)
    el.Trainer(stack, device="cpu", distributed=True, **HP).fit(x)
    torch.save(stack.state_dict(), mine / "dbn.pt")
    # 2b. the same DBN with a supervised head, fine-tuned data-parallel after the layers
    tuned = dbn(1 + other, **HEAD)
    el.Trainer(tuned, device="cpu", distributed=True, **HP).fit(SimpleNamespace(train=x, train_labels=labels()))
    torch.save(tuned.state_dict(), mine / "tuned.pt")
    # 3. resume: PCD for 2 epochs straight, against 1 epoch + checkpoint + 1 resumed epoch
    straight = el.Trainer(rbm(2 + other), device="cpu", distributed=True, sampler="pcd", epochs=2, **HP)
    straight.fit(x)
    torch.save(straight.model.state_dict(), mine / "straight.pt")
    first = el.Trainer(rbm(2 + other), device="cpu", distributed=True, sampler="pcd", epochs=1, **HP)
    first.fit(x)
    first.save_checkpoint(mine / "checkpoint.pt")     # collective; only rank 0 writes its file
    torch.distributed.barrier()
    resumed = el.Trainer.from_checkpoint(out / "rank0" / "checkpoint.pt", device="cpu", distributed=True)
    resumed.fit(x, epochs=2)
    torch.save(resumed.model.state_dict(), mine / "resumed.pt")
    (mine / "resumed.json").write_text(json.dumps({"step": resumed.step, "epoch": resumed.epoch}))
    distributed.leave()                   # every process done; tear the group down before exit


# -- launching -------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(args, cwds=None, timeout=TIMEOUT_S):
    """Start WORLD processes as torchrun would; return [(returncode, stdout, stderr)]; never hang."""
    port, procs = free_port(), []
    for r in range(WORLD):
        env = {**os.environ, "RANK": str(r), "LOCAL_RANK": str(r), "WORLD_SIZE": str(WORLD),
               "LOCAL_WORLD_SIZE": str(WORLD), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
               "ENERGYLAB_DIST_TIMEOUT": "30", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT),
               "CUDA_VISIBLE_DEVICES": ""}
        procs.append(subprocess.Popen(args, cwd=cwds[r] if cwds else ROOT, env=env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    deadline, results = time.monotonic() + timeout, []
    try:
        for p in procs:
            out, err = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
            results.append((p.returncode, out, err))
    except subprocess.TimeoutExpired:
        for p in procs:
            p.kill()
        pytest.fail(f"the distributed processes did not finish within {timeout} s (a hang)")
    return results


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    results = launch([sys.executable, __file__, "train", str(out)])
    for rank, (code, stdout, stderr) in enumerate(results):
        assert code == 0, f"rank {rank} failed:\n{stderr[-3000:]}"
    return out


# -- the single-process reference -------------------------------------------------------------------
def reference(model, x, epochs, shuffle, generators):
    """Data-parallel steps done by hand in one process with the plain engine (see the module docstring)."""
    trainer = el.Trainer(model, device="cpu", epochs=epochs, **HP)     # its optimizer (momentum, decay)
    samplers = [from_hyperparameters(trainer.params.values()) for _ in range(WORLD)]
    n, batch = x.shape[0], HP["batch_size"]
    for _ in range(epochs):
        perm = torch.randperm(n, generator=shuffle)
        for i in range(0, n, batch):
            idx = perm[i:i + batch]
            total = [torch.zeros_like(p) for p in model.parameters()]
            for r in range(WORLD):
                shard = idx[r::WORLD]
                trainer.objective.step(model, x[shard], samplers[r], HP["k"], 1.0, generators[r])
                for t, p in zip(total, model.parameters()):
                    t += p.grad * (shard.shape[0] / idx.shape[0])
            for t, p in zip(total, model.parameters()):
                p.grad = t
            trainer.optimizer.step()
    return model


def streams():
    shuffle = torch.Generator().manual_seed(HP["seed"])
    return shuffle, [torch.Generator().manual_seed(distributed.sampling_seed(HP["seed"], r)) for r in range(WORLD)]


def assert_same(got: dict, want: dict, atol=1e-6):
    for key in want:
        assert torch.allclose(got[key], want[key], atol=atol, rtol=0), \
            f"{key}: largest difference {(got[key] - want[key]).abs().max():.3g}"


# -- the tests ---------------------------------------------------------------------------------------
def test_rbm_cd_k_equals_the_single_process_global_batch(trained):
    shuffle, gens = streams()
    want = reference(rbm(0), data(), 2, shuffle, gens).state_dict()
    for rank in range(WORLD):
        assert_same(torch.load(trained / f"rank{rank}" / "rbm.pt", weights_only=True), want)
    # and the parameters moved: the comparison is not between two untrained models
    assert not torch.allclose(want["coupling.W"], rbm(0).state_dict()["coupling.W"], atol=1e-3)


def test_dbn_layers_equal_the_single_process_result(trained):
    shuffle, gens = streams()
    stack, x = dbn(1), data()
    reference(stack.layers[0], x, 2, shuffle, gens)
    features = stack.lift_all(0, x)
    reference(stack.layers[1], features, 1, shuffle, gens)       # the same streams continue
    for rank in range(WORLD):
        assert_same(torch.load(trained / f"rank{rank}" / "dbn.pt", weights_only=True), stack.state_dict())


def test_dbn_fine_tuning_equals_the_single_process_global_batch(trained):
    """The head's cross-entropy gradient over the global batch is the shard-weighted mean of the
    shards' gradients, so data-parallel fine-tuning must give the single-process head exactly."""
    shuffle, gens = streams()
    stack, x, y = dbn(1, **HEAD), data(), labels()
    reference(stack.layers[0], x, 2, shuffle, gens)
    features = stack.lift_all(0, x)
    reference(stack.layers[1], features, 1, shuffle, gens)
    top = stack.lift_all(1, features)
    head_before = {k: v.clone() for k, v in stack.head.state_dict().items()}
    optimizer = torch.optim.SGD(stack.head.parameters(), lr=HEAD["fine_tune_lr"], momentum=0.9)
    for _ in range(HEAD["fine_tune_epochs"]):          # the shared permutation stream continues
        perm = torch.randperm(x.shape[0], generator=shuffle)
        for i in range(0, x.shape[0], HP["batch_size"]):
            idx = perm[i:i + HP["batch_size"]]
            optimizer.zero_grad()
            F.cross_entropy(stack.head(top[idx]), y[idx]).backward()
            optimizer.step()
    for rank in range(WORLD):
        assert_same(torch.load(trained / f"rank{rank}" / "tuned.pt", weights_only=True), stack.state_dict())
    moved = max((stack.head.state_dict()[k] - v).abs().max().item() for k, v in head_before.items())
    assert moved > 1e-2                        # the head did learn: the comparison is not trivial


def test_evaluation_records_are_averaged_and_identical_on_every_process(trained):
    records = [json.loads((trained / f"rank{r}" / "record.json").read_text()) for r in range(WORLD)]
    assert records[0].keys() == records[1].keys() and "recon_error" in records[0]
    for key in records[0]:
        if isinstance(records[0][key], float):
            assert records[0][key] == pytest.approx(records[1][key], rel=1e-9, abs=1e-9)


def test_only_rank_0_writes_and_resuming_continues_exactly(trained):
    assert (trained / "rank0" / "checkpoint.pt").is_file()
    assert not (trained / "rank1" / "checkpoint.pt").exists()
    payload = checkpoint.read(trained / "rank0" / "checkpoint.pt")
    assert payload["distributed"]["world_size"] == WORLD and len(payload["distributed"]["samplers"]) == WORLD
    for rank in range(WORLD):      # PCD chains and sampling streams of both processes came back
        straight = torch.load(trained / f"rank{rank}" / "straight.pt", weights_only=True)
        assert_same(torch.load(trained / f"rank{rank}" / "resumed.pt", weights_only=True), straight, atol=1e-6)
        position = json.loads((trained / f"rank{rank}" / "resumed.json").read_text())
        assert position == {"step": 2 * 5, "epoch": 2}      # 30 examples in batches of 7: 5 steps an epoch


def test_a_crashed_worker_stops_the_other_with_a_clear_message(tmp_path):
    (crashed, _, err1), (code0, _, err0) = launch([sys.executable, __file__, "crash", str(tmp_path)])[::-1]
    assert crashed != 0 and "crashes on purpose" in err1
    assert code0 != 0
    assert "DistributedError" in err0 and "Another process has probably crashed" in err0, err0[-2000:]


def test_command_line_under_torchrun_environment(tmp_path):
    cwds = [tmp_path / f"rank{r}" for r in range(WORLD)]
    for c in cwds:
        c.mkdir()
    train = [sys.executable, "-m", "energylab", "train", "--dataset", "bars-and-stripes", "--n-hidden", "8",
             "--epochs", "2", "--batch-size", "8", "--device", "cpu", "--quiet"]
    results = launch(train, cwds)
    assert [r[0] for r in results] == [0, 0], results[0][2][-2000:] + results[1][2][-2000:]
    assert not (cwds[1] / "runs").exists()                      # rank 1 wrote nothing
    (run,) = (cwds[0] / "runs").iterdir()
    assert {"config.json", "checkpoint.pt", "history.json", "summary.json"} <= {p.name for p in run.iterdir()}
    config = json.loads((run / "config.json").read_text())
    assert config["distributed"]["world_size"] == WORLD
    assert results[1][1].strip() == ""                          # and printed nothing
    results = launch(train[:4] + ["--resume", str(run), "--epochs", "1", "--quiet"], cwds)
    assert [r[0] for r in results] == [0, 0], results[0][2][-2000:] + results[1][2][-2000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["epoch"] == 3 and summary["status"] == "finished"


def test_distributed_without_a_process_group_says_how_to_start_one(monkeypatch):
    for key in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(ValueError, match="torchrun"):
        el.Trainer(rbm(0), device="cpu", distributed=True)


if __name__ == "__main__":
    worker(sys.argv[1], Path(sys.argv[2]))
