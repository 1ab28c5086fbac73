"""Data-parallel training on PyTorch's own distributed engine (`torch.distributed`).

    torchrun --nproc_per_node=4 -m energylab train --variant RBM --dataset digits ...
    el.Trainer(model, distributed=True, ...).fit(data)      # in each process torchrun started

Synchronous data parallelism (Dean et al. 2012, "Large scale distributed deep
networks", the synchronous baseline; Goyal et al. 2017, "Accurate, large
minibatch SGD"): every process holds the whole model and the whole (small,
on-device) data set, and for every step

1. draws the *global* mini-batch of `batch_size` rows from the epoch's
   permutation. The permutation comes from the trainer's shared generator,
   seeded with `seed` on every process, so all processes draw the same rows;
2. keeps its shard, rows `rank::world_size` of that batch;
3. computes its gradient (the objective writes `.grad`: CD-k, PCD, ...) with its
   *own* sampling generator (seeded `seed + 1000003 (rank + 1)`), so the Gibbs
   chains of different processes are independent;
4. averages the gradients with one `all_reduce` over a flat buffer, each shard
   weighted by its share of the batch, so the result is the gradient of the
   global batch (exactly so for per-example means such as the CD statistics);
5. applies the same optimizer update, so parameters stay identical everywhere.

Persistent chains (PCD, tempering) live in each process: with `n_chains` = N the
run has world_size x N chains. Evaluation records are averaged over processes
(one `all_reduce` per evaluation): the deterministic measurements are identical
on every process anyway, and the ones that use a process's own particles
(`free_energy_model`) become the mean over all of them. Only rank 0 writes files
(`runfolder.py`); a checkpoint gathers every process's sampling generator and
sampler state, so resuming with the same number of processes continues exactly.

A crashed or killed process makes the others' next collective fail (gloo notices
the closed connection) or time out after `ENERGYLAB_DIST_TIMEOUT` seconds
(default 300); they stop with a `DistributedError` that says so, never hang.
The single-process path makes no collective call at all.
"""
from __future__ import annotations

import datetime
import os
import sys

import torch
import torch.distributed as td

SAMPLING_SEED_STRIDE = 1_000_003


class DistributedError(RuntimeError):
    """A collective operation failed or timed out: another process has stopped or crashed."""


def launched() -> bool:
    """True when started by torchrun (or by hand) as one of several processes: WORLD_SIZE > 1."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_main() -> bool:
    """Whether this process writes files: rank 0 of a distributed run, or a lone process."""
    return not (td.is_available() and td.is_initialized()) or td.get_rank() == 0


def timeout_s() -> float:
    return float(os.environ.get("ENERGYLAB_DIST_TIMEOUT", "300"))


def join(device="auto") -> torch.device:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT) and
    return this process's device: `cuda:LOCAL_RANK` with the nccl backend on GPUs, the CPU with gloo.
    A group the caller has already initialised is used as it is."""
    if device in (None, "auto"):
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if not td.is_available():
        raise RuntimeError("distributed=True needs a PyTorch built with torch.distributed; this one has none")
    if device.type == "cuda" and device.index is None:
        local = int(os.environ.get("LOCAL_RANK", os.environ.get("RANK", "0"))) % torch.cuda.device_count()
        device = torch.device("cuda", local)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not td.is_initialized():
        missing = [k for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
        if missing:
            raise ValueError(f"distributed=True but the environment has no {', '.join(missing)}: start the "
                             "processes with torchrun (torchrun --nproc_per_node=2 -m energylab train ...) or "
                             "call torch.distributed.init_process_group yourself first")
        backend = "nccl" if device.type == "cuda" else "gloo"
        kwargs = {"device_id": device} if device.type == "cuda" else {}
        td.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s()), **kwargs)
    return device


def leave() -> None:
    """Tear the process group down, after every process has arrived.

    A process that exits with the group still up can abort in gloo's destructor
    ("terminate called without an active exception"), so a finished run waits for
    the others and destroys the group. Nothing happens outside a distributed run."""
    if td.is_available() and td.is_initialized():
        try:
            _collective("the final barrier", td.barrier)
        finally:
            td.destroy_process_group()


def sampling_seed(seed: int, rank: int) -> int:
    """The seed of process `rank`'s sampling generator (distinct from the shared shuffling seed)."""
    return int(seed) + SAMPLING_SEED_STRIDE * (rank + 1)


def _collective(what: str, call, *args, **kwargs):
    """Run one collective; turn a failure or timeout into a message that says what probably happened."""
    try:
        return call(*args, **kwargs)
    except (RuntimeError, OSError) as exc:
        rank = td.get_rank() if td.is_initialized() else "?"
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise DistributedError(
            f"process {rank}: {what} failed ({first}). Another process has probably crashed or was stopped "
            f"(see its output), or did not answer within {timeout_s():g} s (ENERGYLAB_DIST_TIMEOUT). Start the "
            "run again, or resume it from its last checkpoint with --resume.") from None


def broadcast_object(value, what: str = "broadcast"):
    """Rank 0's `value` on every process (or `value` itself outside a process group)."""
    if not td.is_initialized():
        return value
    box = [value]
    _collective(what, td.broadcast_object_list, box, src=0)
    return box[0]


def on_main(make, what: str = "rank 0's result"):
    """`make()` on rank 0 only, its result (or its error, re-raised) on every process."""
    if not td.is_initialized():
        return make()
    result = error = None
    if is_main():
        try:
            result = make()
        except Exception as exc:        # every process must learn of it, or the others would wait
            error = exc
    result, error = broadcast_object((result, None if error is None else (type(error), str(error))), what)
    if error is not None:
        kind, message = error
        raise kind(message) if isinstance(kind, type) and issubclass(kind, Exception) else RuntimeError(message)
    return result


class DataParallel:
    """One process's part in a data-parallel run: its shard, its sampling generator, the reductions.

    `trainer.dist` holds one (see the module docstring); its methods are the trainer's hooks.
    """

    def __init__(self, trainer):
        if not td.is_initialized():
            join(trainer.device)
        self.rank, self.world_size = td.get_rank(), td.get_world_size()
        self.device = trainer.device
        self.seed = trainer.params["seed"]
        self.generator = torch.Generator(self.device).manual_seed(sampling_seed(self.seed, self.rank))
        self.weight = 1.0 / self.world_size
        with torch.no_grad():   # every process starts from rank 0's parameters (as DistributedDataParallel)
            for tensor in list(trainer.model.parameters()) + list(trainer.model.buffers()):
                _collective("broadcasting the initial parameters", td.broadcast, tensor.data, src=0)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, idx: torch.Tensor) -> torch.Tensor:
        """This process's rows of the global batch `idx`; remembers its share for the gradient weights.
        A batch with fewer rows than processes (an epoch's last) is repeated cyclically so none is empty."""
        n = idx.shape[0]
        if n < self.world_size:
            idx = idx.repeat(-(-self.world_size // n))[:self.world_size]
        mine = idx[self.rank::self.world_size]
        self.weight = mine.shape[0] / idx.shape[0]
        return mine

    @torch.no_grad()
    def average_gradients(self, model) -> None:
        """grad <- sum over processes of (share x grad): the global batch's gradient, on every process.
        One all_reduce per dtype over a flat buffer; no host synchronisation."""
        groups = {}
        for p in model.parameters():
            if p.grad is not None:
                groups.setdefault(p.grad.dtype, []).append(p)
        for params in groups.values():
            flat = torch.cat([p.grad.reshape(-1) for p in params]).mul_(self.weight)
            _collective("the gradient all-reduce", td.all_reduce, flat)
            offset = 0
            for p in params:
                n = p.grad.numel()
                p.grad.copy_(flat[offset:offset + n].view_as(p.grad))
                offset += n

    def reduce_record(self, record: dict) -> dict:
        """The mean over processes of an evaluation record's numbers (one all_reduce)."""
        keys = [k for k, v in record.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if not keys:
            return record
        values = torch.tensor([float(record[k]) for k in keys], dtype=torch.float64, device=self.device)
        _collective("averaging the evaluation", td.all_reduce, values)
        values = (values / self.world_size).tolist()
        return {**record, **dict(zip(keys, values))}

    def any(self, flag: bool) -> bool:
        """True on every process if `flag` is true on any (e.g. 'a checkpoint is due')."""
        value = torch.tensor([1.0 if flag else 0.0], device=self.device)
        _collective("agreeing on a decision", td.all_reduce, value, op=td.ReduceOp.MAX)
        return bool(value.item())

    # -- checkpoints: every process's sampling state, gathered; rank 0 writes it ----------------
    def state_dict(self, trainer) -> dict:
        cpu = lambda state: {k: v.detach().cpu() if isinstance(v, torch.Tensor) else v for k, v in state.items()}
        mine = {"generator": self.generator.get_state(), "sampler": cpu(trainer.sampler.state_dict()),
                "objective": cpu(getattr(trainer.objective, "state_dict", dict)())}   # e.g. TAP magnetisations
        gathered = [None] * self.world_size
        _collective("gathering the sampling state for a checkpoint", td.all_gather_object, gathered, mine)
        return {"world_size": self.world_size, **{f"{key}s": [g[key] for g in gathered]
                                                  for key in ("generator", "sampler", "objective")}}

    def load_state_dict(self, trainer, state) -> None:
        """Take this process's generator and chains from a checkpoint written by as many processes;
        with another number of processes, start fresh chains and a fresh (reseeded) sampling stream."""
        if state and state.get("world_size") == self.world_size:
            self.generator.set_state(state["generators"][self.rank])
            trainer.sampler.load_state_dict({k: v.to(self.device) if isinstance(v, torch.Tensor) else v
                                             for k, v in state["samplers"][self.rank].items()})
            objective = state["objectives"][self.rank]
            if objective and hasattr(trainer.objective, "load_state_dict"):
                trainer.objective.load_state_dict(objective, self.device)
            return
        self.generator.manual_seed(sampling_seed(self.seed + trainer.step, self.rank))
        trainer.sampler.reset()
        if self.is_main:
            was = state.get("world_size") if state else 1
            print(f"energylab: resuming a run of {was} process(es) with {self.world_size}: the parameters, "
                  "optimizer and data order continue; persistent chains and sampling streams start afresh",
                  file=sys.stderr)
