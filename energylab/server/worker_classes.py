"""A classifier's view for the Train page, computed in the training process at snapshot time.

For a model that predicts classes (DiscriminativeRBM, HybridDiscriminativeRBM, a stack whose
fine-tuning head trains) a snapshot carries the confusion matrix on the test set (at most
`MAX_TEST` images) and p(y | x) for a small fixed set of test images, two of every class, each
with its picture. The numbers are the engine's (`measures.explore`, the Explore page's too) and
they are recomputed at most every `INTERVAL` seconds and only when the step moved: never per
batch, and the device sync they cost is paid only then.
"""
from __future__ import annotations

import time

import torch

from ..measures import explore
from .worker_pictures import images_png

INTERVAL = 2.0         # seconds between two evaluations of the test set
MAX_TEST = 2000        # test images in the confusion matrix (the rest would cost the training more)


class Classification:
    """Throttled confusion matrix and p(y | x) of one run (training thread)."""

    def __init__(self, data, device):
        labels = getattr(data, "test_labels", None)
        test = getattr(data, "test", None)
        self.available = labels is not None and test is not None and len(test) > 0
        self.value, self.at, self.step = None, 0.0, None
        if not self.available:
            return
        self.n_total = len(test)
        self.x = test[:MAX_TEST].to(device)
        self.y = torch.as_tensor(labels[:MAX_TEST]).long()
        self.chosen = explore.examples_per_class(self.y)
        shape = data.image_shape
        self.pictures = [None if shape is None else
                         images_png(test[i:i + 1].float().clamp(0, 1), shape, nrow=1, target=96) for i in self.chosen]

    def fields(self, trainer, applies: bool, settled: bool = False) -> dict | None:
        """The snapshot's "classification" entry, or None (not a classifier, or its head waits).
        `settled`: the run is parked or ended, so the page keeps this one: measure the step it holds."""
        model = trainer.model
        if not (applies and self.available and explore.is_classifier(model)):
            return None
        now = time.perf_counter()
        if self.value is not None and (trainer.step == self.step or (now - self.at < INTERVAL and not settled)):
            return self.value
        x = self.x.to(next(model.parameters()).dtype)
        n_classes = getattr(model, "n_classes", None) or int(self.y.max()) + 1
        counts = explore.confusion_matrix(model, x, self.y, n_classes)
        probs = explore.class_probabilities(model, x[self.chosen.to(x.device)])
        self.value = {
            "step": trainer.step, "counts": counts.tolist(), "n_test": len(self.y), "n_total": self.n_total,
            "accuracy": float(counts.diagonal().sum()) / max(float(counts.sum()), 1.0),
            "examples": [{"index": int(i), "label": int(self.y[i]), "png": png, "p": p.tolist()}
                         for i, png, p in zip(self.chosen, self.pictures, probs)]}
        self.at, self.step = time.perf_counter(), trainer.step
        return self.value
