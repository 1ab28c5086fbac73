"""The child process of a dashboard run: one `Trainer`, a command listener, throttled snapshots.

`runmanager.RunManager` spawns `main` in a fresh process (spawn, never fork, so
the child does not inherit the server's threads or locks; the target lives in
this importable module because a spawned child cannot import a Streamlit
script). Why a process and not a thread: with several browser tabs open the
server's page redraws hold Python's GIL and starved a training thread, while
a separate process kept its speed.

Inside the child:
- the main thread runs `Trainer.fit`;
- a listener thread blocks on the command queue and calls the trainer's
  thread-safe controls (`params.set`, pause, resume, step_once, stop);
- a callback publishes a snapshot at most every `snapshot_interval` seconds
  (time-based: one clock read per batch, a device sync only when a snapshot
  is actually taken), so the page never costs a sync per batch.

A snapshot costs the training thread its time, so it redoes only what changed:
a picture is re-encoded only when its pixels changed (fast zlib level), the
downsampled history only when records were logged, the exact distribution
only when the step moved (see `Cache`).

Every end leaves a checkpoint (`end`): finish, stop, divergence (the trainer has
restored its last good parameters), an exception, SIGTERM/SIGINT, and the
server's disappearance (a thread waits on the parent process and stops the run
within a second). A periodic autosave (`autosave_s`, and once after the first
epoch) covers kill -9. summary.json always says the status, the step, why the
run ended and the step of the checkpoint on disk.
"""
from __future__ import annotations

import os
import threading
import time
import traceback

import torch

from .. import datasets, viz
from ..measures import metrics
from ..registry import make
from ..store.runfolder import RunFolder
from ..training.trainer import Trainer
from .worker_ends import Ends
from .worker_pictures import Cache, _png, mosaic_png, write_run_files

EXACT_PANEL_UNITS = 12     # send p(v) over all 2^n configurations up to this many visible units
EXACT_CURVE_UNITS = 16     # log exact KL(data || model) as a curve up to this many
HISTORY_POINTS = 300       # records sent to the browser per snapshot
N_SHOWN = 16               # images in the reconstruction / sample panels


class Worker(Ends):
    """Everything the child owns; `main` builds one and calls `run`."""

    def __init__(self, spec: dict, commands, snapshots):
        torch.set_num_threads(1)   # measured: default threads outside the main thread ran ~100x slower
        self.spec, self.commands, self.snapshots = spec, commands, snapshots
        self.folder = RunFolder(spec["folder"])
        self.data = datasets.load(spec["dataset"], **spec.get("dataset_options", {}))
        self.shape = self.data.image_shape
        options = dict(device=spec.get("device", "auto"), eval_every=spec.get("eval_every", 100),
                       callbacks=[self])
        if spec.get("max_weight") is not None:
            options["max_weight"] = spec["max_weight"]
        if spec.get("resume_from"):
            self.trainer = Trainer.from_checkpoint(spec["resume_from"], **options)
            for name, value in spec.get("training", {}).items():
                if self.trainer.params.param(name).live and value != self.trainer.params[name]:
                    self.trainer.params.set(name, value)
        else:
            model = make(spec["variant"], n_visible=self.data.n_visible, **spec.get("model", {}))
            self.trainer = Trainer(model, **options, **spec.get("training", {}))
        self.device_name = (torch.cuda.get_device_name(self.trainer.device)
                            if self.trainer.device.type == "cuda" else "CPU")
        self.lock = threading.Lock()          # held by the training thread during a batch
        self.publish_lock = threading.Lock()
        self.interval = float(spec.get("snapshot_interval", 0.5))
        self.last_snapshot = self.last_persist = 0.0
        self.autosave_s = float(spec.get("autosave_s", 30.0))
        self.last_autosave = time.perf_counter()
        self.saved_step = None                # step of the checkpoint on disk (None: none yet)
        self.why = None                       # why the run ended, when something outside asked
        self.server_pid = os.getppid()
        self.rate_mark = (time.perf_counter(), self.trainer.step)
        self.rate = 0.0
        self.seq = 0
        self.stop_requested = False
        self.in_batch = False
        self.force = False                    # publish at the next batch end (after a step)
        self.stepping = None                  # weights before a single-stepped batch
        self.step_detail = None
        self.gen = torch.Generator(self.trainer.device).manual_seed(self.trainer.params["seed"] + 7)
        self.display_chains = None
        self.cache = Cache()
        self._exact_setup()

    # -- tiny models: the data distribution over all 2^n configurations --------------------
    def _exact_setup(self):
        self.p_data = None
        model = self.trainer.model
        visible = getattr(model, "visible", None)
        if not (getattr(visible, "discrete", False) and model.n_visible <= EXACT_CURVE_UNITS):
            return
        if self.data.distribution is not None:
            patterns, probs = self.data.distribution
            weights = 2 ** torch.arange(patterns.shape[1] - 1, -1, -1)
            p = torch.zeros(2 ** patterns.shape[1], dtype=torch.float64)
            p.index_add_(0, (patterns.round().long() * weights).sum(1), probs.double())
            self.p_data = p
        elif self.data.kind == "binary":
            self.p_data = metrics.data_distribution(self.data.train)

    # -- trainer events (training thread) --------------------------------------------------
    def on_fit_start(self, trainer):
        if self.stop_requested:               # fit() clears the trainer's stop flag: a stop sent
            trainer.stop()                    # before training began must still hold

    def on_batch_start(self, trainer):
        self.lock.acquire()
        self.in_batch = True
        if trainer.single_stepping and self.stepping is None and self.shape is not None:
            # every drawn weight view (dense W, conv filters, deeper layers in pixel space), before the update
            before = [W.clone() for _, W in viz.layer_weights(trainer.model)]
            self.stepping = (before, trainer.batch_rows())

    def on_batch_end(self, trainer):
        if self.stepping is not None:
            self._record_step(trainer)
        self.in_batch = False
        self.lock.release()
        now = time.perf_counter()
        if self.force or now - self.last_snapshot >= self.interval:
            self.force = False
            self.publish()
            if now - self.last_persist >= 10.0:
                self.persist()
        if now - self.last_autosave >= self.autosave_s:
            self.autosave()

    def on_epoch_end(self, trainer):
        if self.saved_step is None:           # the first autosave: after the first epoch or autosave_s
            self.autosave()

    def on_evaluate(self, trainer, record):
        if self.p_data is not None:
            trainer.history.log(trainer.step, exact_kl=metrics.exact_kl(trainer.model,
                                                                        self.p_data.to(trainer.device)))

    def _record_step(self, trainer):
        """One CD update seen close up: positive batch, negative particles, the weight change.

        The change is shown for the weights that moved most: layer 1 of an RBM (dense or
        convolutional), or the layer a stack is training, drawn in pixel space like its mosaic."""
        before, rows = self.stepping
        self.stepping = None
        rows = rows.cpu()
        v_pos = self.data.train[rows][:N_SHOWN]
        negative = getattr(trainer, "last_negative", None)
        after = viz.layer_weights(trainer.model)
        changes = [(caption, W - w0) for (caption, W), w0 in zip(after, before) if W.shape == w0.shape]
        caption, dW = max(changes, key=lambda c: float(c[1].norm())) if changes else ("", None)
        self.step_detail = {"step": trainer.step, "dW_norm": float(dW.norm()) if dW is not None else 0.0,
                            "dW_caption": caption, "positive_png": self._images(v_pos),
                            "negative_png": None if negative is None else
                            self._images(negative[:N_SHOWN].detach().float().cpu()),
                            "dW_png": mosaic_png(dW, self.shape) if dW is not None else None}
        self.force = True

    def _images(self, x, name=None):
        if self.shape is None:
            return None
        return _png(x.clamp(0, 1), self.shape, nrow=8, target=320, cache=self.cache if name else None, name=name)

    # -- snapshots ----------------------------------------------------------------------------
    @torch.no_grad()
    def _samples(self):
        """Model samples: the persistent chains under PCD, otherwise display chains of our own."""
        t = self.trainer
        chains = getattr(t.sampler, "chains", None)
        if chains is not None:
            return chains[:N_SHOWN], "persistent training chains (PCD)"
        beta = 1.0 / t.params["sample_temperature"]
        if self.display_chains is None:
            self.display_chains = t.model.sample(N_SHOWN, k=1, generator=self.gen)
        self.display_chains = t.model.sample(N_SHOWN, k=5, beta=beta, init=self.display_chains, generator=self.gen)
        return self.display_chains, f"display chains, 5 Gibbs steps per refresh at T={1 / beta:g}"

    @torch.no_grad()
    def snapshot(self) -> dict:
        t, now = self.trainer, time.perf_counter()
        (t0, s0) = self.rate_mark
        if now - t0 >= 0.25:
            self.rate = (t.step - s0) * t.params["batch_size"] / (now - t0)
            self.rate_mark = (now, t.step)
        h = t.history
        status = t.status
        if status in ("idle", "running") and t.parks_next:
            status = "paused"                 # it parks before its next batch (pause, last single step)
        elif status == "idle":
            status = "starting"               # built, about to enter its first batch
        # the epoch's length before fit() sets the trainer's own (a run loaded paused is drawn first)
        per_epoch = getattr(t, "steps_per_epoch", None) or -(-self.data.train.shape[0] // t.params["batch_size"])
        snap = {"id": self.spec["id"], "seq": self.seq, "status": status, "error": t.error,
                "step": t.step, "epoch": t.epoch + t.batch_index / max(per_epoch, 1),
                "samples_per_s": self.rate if status == "running" else 0.0,
                "elapsed": t.elapsed, "device": self.device_name, "params": t.params.values(),
                "pl_method": getattr(t, "pl_method", None), "time": time.time(),
                "history": self._history(h),
                "step_detail": self.step_detail}
        self.seq += 1
        try:
            self._pictures(snap)
        except Exception as exc:              # a picture must never stop the training
            snap["pictures_note"] = f"no pictures for this model ({type(exc).__name__}: {exc})"
        return snap

    def _history(self, h) -> dict:
        """The bounded, downsampled history; recomputed only after new records or changes."""
        last = h.last()
        key = (len(h), last and last["step"], len(last or ()), len(h.changes), h.changes[-1:] if h.changes else None)
        return self.cache.get("history", key, lambda: {"records": h.downsampled(HISTORY_POINTS),
                                                        "changes": h.changes, "names": h.names()})

    @torch.no_grad()
    def _pictures(self, snap):
        t = self.trainer
        model = t.model
        layers = viz.layer_weights(model) if self.shape is not None else []
        if layers:
            snap["weights_png"] = mosaic_png(layers[0][1], self.shape, cache=self.cache, name="weights")
            snap["deeper_weights"] = [(caption, mosaic_png(W, self.shape, cache=self.cache, name=caption))
                                      for caption, W in layers[1:]]
            v = t.monitor["train"][:N_SHOWN // 2] if hasattr(t, "monitor") else self.data.train[:8]
            v = v.to(t.device)
            both = torch.cat([v, model.reconstruct(v)]).clamp(0, 1)
            snap["recon_png"] = _png(both, self.shape, nrow=len(v), cache=self.cache, name="recon")
            samples, how = self._samples()
            snap["samples_png"] = self._images(samples.float().clamp(0, 1), name="samples")
            snap["samples_how"] = how
        elif model.n_visible == 2:
            samples, how = self._samples()
            snap["points"] = {"data": self.data.train[:500].tolist(), "samples": samples.cpu().tolist()}
        if self.p_data is not None and model.n_visible <= EXACT_PANEL_UNITS:
            snap["distribution"] = self.cache.get("distribution", t.step, lambda: {
                "model": metrics.exact_distribution(model).cpu().tolist(),
                "data": self.p_data.tolist(), "n_visible": model.n_visible})

    def publish(self):
        # Serialised: a snapshot built before a pause must not overtake the one built after it.
        with self.publish_lock:
            self.last_snapshot = time.perf_counter()
            self.send(self.snapshot())

    def _publish_when_parked(self):
        """After pause: wait until the trainer stops advancing (a batch or an evaluation may be
        in flight), then publish, so the page shows the state the run is parked in."""
        for _ in range(50):
            step = self.trainer.step
            time.sleep(0.05)
            if step == self.trainer.step and self.trainer.status != "running":
                break
        self._while_paused(self.publish)

    def summary(self) -> dict:
        t = self.trainer
        return {"status": t.status, "error": t.error, "step": t.step, "epoch": t.epoch,
                "elapsed_s": round(t.elapsed, 3), "final": t.history.last() or {},
                "pseudo_log_likelihood_method": getattr(t, "pl_method", None),
                "params": t.params.values(), "device": self.device_name, "updated": time.time(),
                "why": self.why, "checkpoint": self.saved_step is not None, "saved_step": self.saved_step,
                "pid": os.getpid(), "server_pid": self.server_pid}

    def persist(self):
        self.last_persist = time.perf_counter()
        write_run_files(self.folder, self.trainer, self.summary(), self.shape)

    # -- commands (listener thread) ----------------------------------------------------------
    def listen(self):
        t = self.trainer
        while True:
            command, *args = self.commands.get()
            try:
                if command == "set":
                    t.params.set(*args)
                elif command == "pause":
                    t.pause()
                    self._publish_when_parked()
                elif command == "resume":
                    t.resume()
                elif command == "step":
                    t.step_once(int(args[0]) if args else 1)
                elif command == "save":
                    self._while_paused(self._save)
                elif command == "stop":
                    self.request_stop(args[0] if args else "stopped by its owner")
                    return
            except Exception as exc:  # a bad command must not kill the run: report it
                self.send({"id": self.spec["id"], "notice": f"{command} failed: {exc}"})

    def _save(self):
        self._checkpoint()
        self.persist()
        self.send({"id": self.spec["id"], "notice": f"checkpoint saved at step {self.trainer.step}"})

    def _while_paused(self, action):
        """Run `action` now if the trainer is parked between batches, else at the next batch end."""
        if self.lock.acquire(timeout=5.0):
            try:
                action()
            finally:
                self.lock.release()

    def run(self):
        if self.spec.get("start_paused"):
            self.trainer.pause()
        self.handle_signals()
        self.watch_parent()
        threading.Thread(target=self.listen, daemon=True, name="energylab-commands").start()
        self.publish()
        try:
            self.trainer.fit(self.data)
        except Exception:                     # status and message are already on the trainer
            if self.in_batch:                 # it failed inside a batch: free the batch lock
                self.in_batch = False
                self.lock.release()
            if self.trainer.error is None:
                self.trainer.status, self.trainer.error = "failed", traceback.format_exc(limit=3)
        self.end()

def main(spec: dict, commands, snapshots) -> None:
    """Entry point of the spawned child (see the module docstring)."""
    try:
        worker = Worker(spec, commands, snapshots)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        try:                                  # the folder says why, so a restarted server lists it truthfully
            RunFolder(spec["folder"]).write_summary({"status": "failed", "error": error, "step": 0,
                                                     "why": "the run could not start", "checkpoint": False})
        except Exception:
            pass
        snapshots.put({"id": spec["id"], "seq": -1, "status": "failed", "error": error,
                       "step": 0, "history": {"records": [], "changes": [], "names": []}, "params": {}})
        return
    worker.run()


def warm(commands, snapshots) -> None:
    """A training process started ahead of need (`RunManager(prewarm=True)`): it imports the engine
    (the slow part of a start) and waits for its run, so pressing Train costs only the data and the
    model. It exits quietly if its server goes away before a run arrives."""
    import multiprocessing

    # What a first start would otherwise pay on top of the engine's import (unpickling this target
    # imported the package; measured ~2 s more here): scikit-learn behind the bundled digits, and
    # the modules torch's meta device pulls in when `make` checks a model's size before allocating.
    datasets.load("digits")
    make("RBM", n_visible=4, n_hidden=2)
    started = threading.Event()
    parent = multiprocessing.parent_process()
    if parent is not None:
        def leave_if_idle():
            parent.join()
            if not started.is_set():
                os._exit(0)
        threading.Thread(target=leave_if_idle, daemon=True, name="energylab-warm-watch").start()
    message = commands.get()
    if message and message[0] == "start":
        started.set()
        main(message[1], commands, snapshots)
