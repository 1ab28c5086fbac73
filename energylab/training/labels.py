"""Class labels for a model that learns from them: a classifier (`needs_labels`), or a stack's
fine-tuning head. Checked once, before training: whole class indices in [0, n_classes), one a row."""
from __future__ import annotations

import torch

from ..errors import DataError


def class_labels(data, train, test, n_classes: int, device, missing: str) -> dict:
    """{"train": (N,), "test": (M,) or None, "test_x": test} on `device`. `missing` is the message
    (what needs the labels, and the fix) when the data has no train_labels."""
    if getattr(data, "train_labels", None) is None:
        raise ValueError(missing)
    out = {"test_x": test}
    for name, x in (("train", train), ("test", test)):
        y = getattr(data, f"{name}_labels", None)
        if y is None or x is None or not len(x):
            out[name] = None
            continue
        y = torch.as_tensor(y).to(device)
        if y.is_floating_point() and not bool((y == y.round()).all()):   # 0.7 must not become class 0
            raise DataError(f"{name} labels must be whole class indices, got e.g. "
                            f"{y[y != y.round()][0].item():g}", field=f"{name} labels",
                            fix="pass integer class indices 0, 1, 2, ...")
        y = y.long()
        if y.shape != (x.shape[0],) or y.min() < 0 or y.max() >= n_classes:
            raise ValueError(f"{name} labels must be {x.shape[0]} class indices in [0, {n_classes}); got shape "
                             f"{tuple(y.shape)}, range [{y.min().item()}, {y.max().item()}]")
        out[name] = y
    return out
