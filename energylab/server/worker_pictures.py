"""Pictures and files of a dashboard run, built so that a snapshot costs the training little.

`Cache` keeps the last result per name and recomputes it only when its key changes (the
pixels of a picture, the step, the record count): a mosaic is PNG-encoded again only when
its pixels changed, at zlib's fast level. `Pictures` fills a snapshot's pictures: the weight
mosaics, reconstructions, samples, a 2-D model's points, the exact distribution of a tiny
model, and one single-stepped CD update. A stack is drawn through the layers trained so far
(`stack_phase`): the layers above the one in training still hold random weights, and a picture
through them would show the mean image or noise. `write_run_files` writes the run folder's
history / summary / weights files in the layout the command line writes too.
"""
from __future__ import annotations

import torch

from .. import viz
from ..measures import explore, metrics
from ..progress import StackProgress
from ..store.runfolder import RunFolder, display_scale

EXACT_PANEL_UNITS = 12     # send p(v) over all 2^n configurations up to this many visible units
EXACT_CURVE_UNITS = 16     # log exact KL(data || model) as a curve up to this many
N_SHOWN = 16               # images in the reconstruction / sample panels


class Cache:
    """The last result per name, recomputed only when its key changes (pixels, step, record count)."""

    def __init__(self):
        self._store = {}

    def get(self, name, key, compute):
        hit = self._store.get(name)
        if hit is not None and _same(hit[0], key):
            return hit[1]
        value = compute()
        self._store[name] = (key, value)
        return value


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape
                and bool(torch.equal(a, b)))
    return a == b


def _encode(grid, target, cache=None, name=None) -> bytes:
    """PNG of a grid upscaled to about `target` pixels; with a cache, unchanged pixels are not re-encoded."""
    grid = grid.detach().to("cpu")
    encode = lambda: viz.to_png(grid, max(1, target // max(grid.shape[-1], 1)), compress_level=1)
    return cache.get(name, grid, encode) if cache is not None else encode()


def images_png(images, shape, nrow=None, target=320, normalize=None, cache=None, name=None) -> bytes:
    """PNG of a batch of images tiled `nrow` to a row (viz.tile_images), about `target` pixels wide."""
    return _encode(viz.tile_images(images, shape, nrow=nrow, normalize=normalize), target, cache, name)


def mosaic_png(W, shape, target=320, cache=None, name=None) -> bytes:
    return _encode(viz.weight_mosaic(W, shape, max_tiles=100), target, cache, name)


def stack_phase(trainer) -> StackProgress | None:
    """Where a stack's layerwise training stands now, from the trainer's own position (`epoch`
    counts the layer-epochs finished in plan order, layerwise.py): known from the first batch on,
    before any history record says it. None for a model that is not a stack."""
    model = trainer.model
    pretrains = getattr(model, "pretrain_epochs", 0) > 0        # a DBM: layerwise pretraining, then joint
    if not (getattr(model, "trains_layerwise", False) or pretrains) or not callable(getattr(model, "plan", None)):
        return None
    depth = model.depth
    done = trainer.epoch + trainer.batch_index / max(getattr(trainer, "steps_per_epoch", 1) or 1, 1)
    phases = model.plan(trainer.params["epochs"])
    for phase, epochs in phases:
        if done < epochs:
            if phase == "head":
                return StackProgress(depth + 1, depth, done, epochs, fine_tuning=True)
            if phase == "joint":
                return StackProgress(depth + 1, depth, done, epochs, joint=True)
            return StackProgress(phase + 1, depth, done, epochs, pretraining=pretrains)
        done -= epochs
    return StackProgress(0, depth, float(phases[-1][1]), phases[-1][1])


def stack_state(trainer, progress: StackProgress | None) -> dict | None:
    """What the page shows of a stack's progress: the phase in training and every phase's length."""
    if progress is None:
        return None
    names = {"head": "classifier head", "joint": "joint training"}
    layer = "pretraining layer" if progress.pretraining or progress.joint else "layer"
    phases = [(names.get(phase) or f"{layer} {phase + 1}", epochs)
              for phase, epochs in trainer.model.plan(trainer.params["epochs"])]
    return {"layer": progress.layer, "depth": progress.depth, "epoch": progress.epoch, "epochs": progress.epochs,
            "fine_tuning": progress.fine_tuning, "pretraining": progress.pretraining, "joint": progress.joint,
            "phases": phases}


def trained_depth(progress: StackProgress | None) -> int | None:
    """How many layers of a stack the pictures look through: up to the layer in training (None: all)."""
    if progress is None or progress.layer == 0 or progress.fine_tuning or progress.pretraining or progress.joint:
        return None                # a DBM's pictures are the whole model's (its layers are not a stack)
    return progress.layer


def data_distribution(model, data) -> torch.Tensor | None:
    """A tiny binary model's data distribution over all 2^n visible configurations (float64), for
    the exact panel and the exact KL curve; None for a larger or continuous model."""
    visible = getattr(model, "visible", None)
    if not (getattr(visible, "discrete", False) and model.n_visible <= EXACT_CURVE_UNITS):
        return None
    if data.distribution is not None:
        patterns, probs = data.distribution
        weights = 2 ** torch.arange(patterns.shape[1] - 1, -1, -1)
        p = torch.zeros(2 ** patterns.shape[1], dtype=torch.float64)
        p.index_add_(0, (patterns.round().long() * weights).sum(1), probs.double())
        return p
    if data.kind == "binary":
        return metrics.data_distribution(data.train)
    return None


class Pictures:
    """The pictures of one run's snapshots (training thread; see the module docstring)."""

    def __init__(self, trainer, data, cache: Cache):
        self.trainer, self.data, self.shape, self.cache = trainer, data, data.image_shape, cache
        self.gen = torch.Generator(trainer.device).manual_seed(trainer.params["seed"] + 7)
        self.display_chains = None
        self.display_depth = None
        self.step_detail = None
        self.p_data = data_distribution(trainer.model, data)


    def images(self, x, name=None):
        if self.shape is None:
            return None
        return images_png(x.clamp(0, 1), self.shape, nrow=8, target=320, cache=self.cache if name else None, name=name)

    # -- one CD update close up -------------------------------------------------------------
    def weights_before(self):
        """Every drawn weight view (dense W, conv filters, deeper layers in pixel space), before an update."""
        return [W.clone() for _, W in viz.layer_weights(self.trainer.model)]

    def record_step(self, before, rows):
        """One CD update seen close up: positive batch, negative particles, the weight change.

        The change is shown for the weights that moved most: layer 1 of an RBM (dense or
        convolutional), or the layer a stack is training, drawn in pixel space like its mosaic."""
        trainer = self.trainer
        v_pos = self.data.train[rows.cpu()][:N_SHOWN]
        negative = getattr(trainer, "last_negative", None)
        after = viz.layer_weights(trainer.model)
        changes = [(caption, W - w0) for (caption, W), w0 in zip(after, before) if W.shape == w0.shape]
        caption, dW = max(changes, key=lambda c: float(c[1].norm())) if changes else ("", None)
        self.step_detail = {"step": trainer.step, "dW_norm": float(dW.norm()) if dW is not None else 0.0,
                            "dW_caption": caption, "positive_png": self.images(v_pos),
                            "negative_png": None if negative is None else
                            self.images(negative[:N_SHOWN].detach().float().cpu()),
                            "dW_png": mosaic_png(dW, self.shape) if dW is not None else None}

    # -- samples --------------------------------------------------------------------------------
    @torch.no_grad()
    def samples(self, depth=None):
        """Model samples: the persistent chains under PCD, otherwise display chains of our own (of
        a stack's trained layers only: 5 Gibbs steps in the top trained RBM, then down)."""
        t = self.trainer
        chains = getattr(t.sampler, "chains", None)
        if chains is not None and not getattr(t.model, "trains_layerwise", False):
            return chains[:N_SHOWN], "persistent training chains (PCD)"
        beta = 1.0 / t.params["sample_temperature"]
        if self.display_chains is None or self.display_depth != depth:      # a new layer: start afresh
            self.display_chains = explore.sample_through(t.model, N_SHOWN, k=1, depth=depth, generator=self.gen)
            self.display_depth = depth
        self.display_chains = explore.sample_through(t.model, N_SHOWN, k=5, depth=depth, beta=beta,
                                                     init=self.display_chains, generator=self.gen)
        how = f"display chains, 5 Gibbs steps per refresh at T={1 / beta:g}"
        if depth is not None and depth > 1:
            how += f"; Gibbs in layer {depth}'s RBM, then down through the layers below"
        elif depth == 1:
            how += "; layer 1's RBM alone (the layers above have not trained yet)"
        return self.display_chains, how

    # -- the snapshot's pictures ------------------------------------------------------------------
    @torch.no_grad()
    def fill(self, snap, progress: StackProgress | None = None):
        t = self.trainer
        model = t.model
        depth = trained_depth(progress)
        layers = viz.layer_weights(model) if self.shape is not None else []
        if layers:
            snap["weights_png"] = mosaic_png(layers[0][1], self.shape, cache=self.cache, name="weights")
            snap["weights_are_filters"] = layers[0][1].dim() == 4      # convolution filters, not one unit each
            snap["deeper_weights"], snap["waiting_layers"] = self._deeper(layers, progress)
            v = t.monitor["train"][:N_SHOWN // 2] if hasattr(t, "monitor") else self.data.train[:8]
            v = v.to(t.device)
            both = torch.cat([v, explore.reconstruct_through(model, v, depth)]).clamp(0, 1)
            snap["recon_png"] = images_png(both, self.shape, nrow=len(v), cache=self.cache, name="recon")
            if depth is not None:
                snap["recon_how"] = (f"through layer 1 only (layer 2 and above train after it)" if depth == 1 else
                                     f"up through layers 1–{depth} and back down (the layers trained so far)")
            samples, how = self.samples(depth)
            snap["samples_png"] = self.images(samples.float().clamp(0, 1), name="samples")
            snap["samples_how"] = how
        elif model.n_visible == 2:
            samples, how = self.samples(depth)
            snap["points"] = {"data": self.data.train[:500].tolist(), "samples": samples.cpu().tolist()}
        if self.p_data is not None and model.n_visible <= EXACT_PANEL_UNITS:
            snap["distribution"] = self.cache.get("distribution", t.step, lambda: {
                "model": metrics.exact_distribution(model).cpu().tolist(),
                "data": self.p_data.tolist(), "n_visible": model.n_visible})

    def _deeper(self, layers, progress):
        """The deeper layers' mosaics of the layers trained or in training; the others only named."""
        if progress is None or progress.layer == 0 or progress.fine_tuning:
            return [(caption, mosaic_png(W, self.shape, cache=self.cache, name=caption))
                    for caption, W in layers[1:]], []
        drawn, waiting = [], []
        for number, (caption, W) in enumerate(layers[1:], start=2):
            if number < progress.layer:
                drawn.append((caption, mosaic_png(W, self.shape, cache=self.cache, name=caption)))
            elif number == progress.layer:
                drawn.append((f"{caption} — training now", mosaic_png(W, self.shape, cache=self.cache,
                                                                      name=caption)))
            else:
                waiting.append(f"layer {number} trains after layer {number - 1}")
        waiting += [f"layer {n} trains after layer {n - 1}" for n in range(len(layers) + 1, progress.depth + 1)
                    if n > progress.layer]
        return drawn, waiting


def write_run_files(folder: RunFolder, trainer, summary: dict, image_shape) -> None:
    """history.json / history.csv / summary.json / weights.png, the layout the CLI writes too."""
    folder.write_history(trainer.history)
    folder.write_summary(summary)
    layers = viz.layer_weights(trainer.model) if image_shape is not None else []
    if layers:
        folder.write_images({"weights": viz.weight_mosaic(layers[0][1], image_shape)},
                            scale=display_scale(image_shape))
