"""The trainer: epochs of shuffled mini-batches, events, live hyperparameters, guards, checkpoints.

    history = Trainer(model, lr=0.05, k=1, epochs=5).fit(data)

Design notes (why it looks like this):
- Data lives on the device as one tensor; a batch is an index into it.
- The hot loop never syncs with the device: metrics and the divergence guard
  run every `eval_every` / `check_every` steps, not every batch.
- Hyperparameters live in a `LiveParams` record polled before each batch, so a
  slider moved in another thread takes effect on the next batch, and each change
  is recorded in the history at the step it happened.
- Every random draw (shuffling, sampling) comes from one `torch.Generator` whose
  state is checkpointed, so a resumed run continues bit for bit.
- Evaluation is in evaluation.py, a checkpoint's contents in checkpointing.py, the
  divergence guard in guard.py, the controls (pause / step / stop, what a driver reads,
  what the phases of a plan ask of the trainer that runs them) in control.py (mixins).
"""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager

import torch

from ..errors import DataError
from ..measures import monitors
from ..measures.tap import TAP
from ..registry import TRAINING, VARIANTS
from . import distributed as _distributed
from . import regularizers, samplers
from .checkpointing import Checkpointing
from .control import Control
from .evaluation import Measurements
from .guard import Guard, TrainingDiverged  # noqa: F401  (TrainingDiverged: public here)
from .history import History
from .labels import class_labels
from .live import LiveParams
from .objectives import Generative


class Callback:
    """Subscribe to the trainer's events by overriding any of these (fastai's pattern)."""

    def on_fit_start(self, trainer): ...
    def on_epoch_start(self, trainer): ...
    def on_batch_start(self, trainer): ...
    def on_batch_end(self, trainer): ...
    def on_evaluate(self, trainer, record: dict): ...
    def on_epoch_end(self, trainer): ...
    def on_fit_end(self, trainer): ...


def resolve_device(device="auto") -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class Trainer(Control, Measurements, Checkpointing, Guard):
    """Train any registered variant; see the module docstring. Hinton 2012 for the defaults."""

    def __init__(self, model, *, device="auto", schedules=None, callbacks=(), eval_every=None,
                 check_every=50, monitor_size=256, history_capacity=2000, max_weight=1e4,
                 exact_max_units=12, distributed=False, **hparams):
        variant = VARIANTS.get(model.config.get("variant"))
        schema = variant.training if variant else TRAINING
        known = {p.name for p in schema}
        unknown = sorted(set(hparams) - known)
        if unknown:
            raise ValueError(f"unknown training hyperparameter(s) {unknown}; the trainer takes {sorted(known)}")
        values = {p.name: p.validate(hparams.get(p.name, p.default)) for p in schema}
        self._training_names = [p.name for p in schema]
        # Live *model* hyperparameters (e.g. dropout p) join the record; the model applies them.
        model_live = tuple(p for p in (variant.params if variant else ()) if p.live)
        values.update({p.name: model.config["hparams"][p.name] for p in model_live})
        self.params = LiveParams(schema + model_live, values)
        # distributed=True: join torchrun's process group, one GPU per process (distributed.py)
        self.device = _distributed.join(device) if distributed else resolve_device(device)
        self.model = model.to(self.device)
        self.schedules = dict(schedules or {})
        for name in self.schedules:
            self.params.param(name)
        self.callbacks = list(callbacks)
        self.eval_every, self.check_every = eval_every, check_every
        self.monitor_size, self.max_weight, self.exact_max_units = monitor_size, max_weight, exact_max_units
        self.history = History(history_capacity)
        self.watch = {m.name: m for m in (monitors.EnergyDistance(), monitors.WeightSparsity(),
                                          monitors.WeightSquare())}
        self.objective = getattr(model, "objective", None) or Generative()   # a variant may bring its own
        if values.get("method") == "tap" and not getattr(model, "objective", None):
            self.objective = TAP()            # sampling-free negative phase (Gabrie et al. 2015; tap.py)
        self.sampler = samplers.from_hyperparameters(values)
        self.generator = torch.Generator(self.device).manual_seed(values["seed"])
        self.optimizer = self._make_optimizer()
        self.step = self.epoch = self.batch_index = 0
        self._perm = None
        self.status, self.error = "idle", None
        self._resume = threading.Event()
        self._resume.set()
        self._stop = False
        self._step_budget = None       # while paused, how many single steps were requested
        self._good = None
        self._elapsed = 0.0
        # what the phases of a plan keep between phases, checkpointed (training/dbm.py: the biases
        # its layers' outputs were computed with); tensors by name
        self.phase_state: dict = {}
        self._dist = _distributed.DataParallel(self) if distributed else None

    @property
    def dist(self):
        """This process's part in a data-parallel run (distributed.py), or None; a stack's layer
        trainer (layerwise.py) uses its outer trainer's."""
        outer = getattr(self, "outer", None)
        return outer.dist if outer is not None else self._dist

    # -- optimisation -------------------------------------------------------------
    def _make_optimizer(self):
        # SGD-momentum, Adam or RMSProp; biases are not decayed (Hinton 2012, 10). See regularizers.py.
        p = self.params
        return regularizers.make_optimizer(self.model, p["optimizer"], p["lr"], p["momentum"], p["weight_decay"])

    def _apply_hparams(self):
        for name, old, new in self.params.poll():
            if name not in self._training_names:
                self.model.set_hparam(name, new)
            self.schedules.pop(name, None)       # a person's change overrides the schedule
            self.history.change(self.step, name, old, new)
        if self.schedules:
            progress = self.step / max(1, self.total_steps)
            for name, schedule in self.schedules.items():
                self.params.assign(name, self.params.param(name).validate(schedule(progress)))
        regularizers.set_hyperparameters(self.optimizer, self.params["lr"], self.params["momentum"],
                                         self.params["weight_decay"])

    def _regularized_step(self, v):
        """L1 / sparsity penalties and freezing on the gradients, the optimizer step, then max-norm."""
        p = self.params
        regularizers.add_penalties(self.model, v, p["l1"], p["sparsity_penalty"], p["target_activation"], p["freeze"])
        if self.dist is not None:         # the global batch's gradient, the same update everywhere
            self.dist.average_gradients(self.model)
        self.optimizer.step()
        regularizers.apply_constraints(self.model, p["max_norm"])

    # -- the loop -------------------------------------------------------------------
    def prepare(self, data):
        """What `fit` trains on: (train, test) on the device, checked; a classifier's labels (`labels`);
        a standardising visible layer fitted on the training set."""
        train = data.train if hasattr(data, "train") else data
        test = getattr(data, "test", None)
        train = self.model.check_visible(train, "training data")
        if train.shape[0] == 0:
            raise DataError("there are no training examples, so training would run zero steps",
                            field="training data", value=tuple(train.shape), fix="pass at least one example")
        if test is not None and len(test):
            test = self.model.check_visible(test, "test data")
        self.labels = None
        if getattr(self.model, "needs_labels", False):
            variant = self.model.config.get("variant", type(self.model).__name__)
            self.labels = class_labels(data, train, test, self.model.n_classes, self.device, missing=(
                f"{variant} learns from labels but the data has no train_labels; use a labelled dataset "
                "(el.datasets.load('digits')) or el.datasets.from_array(x, labels=y)"))
        fit_to_data = getattr(getattr(self.model, "visible", None), "fit_to_data", None)
        if fit_to_data is not None:    # a standardising layer: fitted on the training set once
            fit_to_data(train)
        return train, test

    def fit(self, data, epochs: int | None = None):
        """Train until `epochs` (default: the `epochs` hyperparameter) have been run; return the history.

        A stack trains layer by layer (layerwise.py); a model with `pretrain_epochs` (a DBM) first
        runs its layerwise pretraining phases (dbm.py), then this trainer's own epochs: `epoch`
        counts the pretraining's layer-epochs and then this loop's, in that order."""
        if getattr(self.model, "trains_layerwise", False):   # a stack: layer by layer on cached features
            from .layerwise import fit_layerwise  # same package; imported here as layerwise subclasses Trainer
            return fit_layerwise(self.model, self, data, epochs)
        if epochs is not None:
            self.params.assign("epochs", self.params.param("epochs").validate(epochs))
        train, test = self.prepare(data)
        pretraining = getattr(self.model, "pretrain_epochs", 0) * getattr(self.model, "depth", 0)
        self.steps_per_epoch = -(-train.shape[0] // self.params["batch_size"])
        self.total_steps = (pretraining + self.params["epochs"]) * self.steps_per_epoch
        self.monitor = self._monitor_sets(train, test)
        self._keep_good()
        with self.running():
            if self.epoch < pretraining:
                from .dbm import pretrain_phases  # same package; it subclasses Trainer
                pretrain_phases(self, train, test)
                self.last_negative = None          # the layers' particles are not the model's
                self._keep_good()
            if not self._stop:
                self._run_epochs(train, pretraining + self.params["epochs"])
        return self.history

    def _run_epochs(self, train, end: int):
        """The hot loop: epochs of mini-batches until `epoch` reaches `end` (or a stop)."""
        n, batch = train.shape[0], self.params["batch_size"]
        eval_every = self.eval_every or max(1, self.steps_per_epoch // 4)
        start = time.perf_counter() - self._elapsed
        while self.epoch < end and not self._stop:
            if self._perm is None:
                self._perm = torch.randperm(n, generator=self.generator, device=self.device)
                self.batch_index = 0
                self.emit("on_epoch_start")
            while self.batch_index < self.steps_per_epoch and not self._stop:
                self._wait_if_paused()
                if self._stop:
                    break
                self._apply_hparams()
                self.emit("on_batch_start")
                i = self.batch_index * batch
                idx = self._perm[i:i + batch]
                if self.dist is not None:               # this process's rows of the global batch
                    idx = self.dist.shard(idx)
                v = torch.index_select(train, 0, idx)   # ~2x faster than train[idx] on CPU
                if self.labels is not None:             # a classifier's objective takes (v, y)
                    v = (v, self.labels["train"][idx])
                self.last_negative = self.objective.step(self.model, v, self.sampler, self.params["k"], 1.0,
                                                         self.generator if self.dist is None else self.dist.generator)
                self._regularized_step(v)
                self.step += 1
                self.batch_index += 1
                self._elapsed = time.perf_counter() - start
                self.emit("on_batch_end")
                if self.step % self.check_every == 0 or self.step % eval_every == 0:
                    self._guard()
                if self.step % eval_every == 0:
                    self.evaluate()
            if self.batch_index >= self.steps_per_epoch:
                self.epoch += 1
                self._perm = None
                self._guard()
                self.emit("on_epoch_end")
        if self.step % eval_every:
            self.evaluate()

    @contextmanager
    def running(self):
        """One run's lifecycle: status, the live record's running flag, the fit events, and the
        failure message (a diverged run keeps its restored parameters and says why)."""
        self._stop, self.status, self.error = False, "running", None
        self.params.running = True
        self.emit("on_fit_start")
        try:
            yield
            self.status = "stopped" if self._stop else "finished"
        except TrainingDiverged as exc:
            self.status, self.error = "failed", str(exc)
            raise
        except Exception as exc:
            self.status, self.error = "failed", f"{type(exc).__name__}: {exc}"
            raise
        finally:
            self.params.running = False
            self.emit("on_fit_end")

    def emit(self, event: str, *args):
        """Call `event` (a `Callback` method name) on every callback, with this trainer first."""
        for cb in self.callbacks:
            getattr(cb, event, lambda *a: None)(self, *args)
