"""Checkpoints: a state dict plus a JSON config, written atomically, loaded without pickles.

A checkpoint file holds only tensors, numbers, strings, lists and dicts, so
`torch.load(..., weights_only=True)` reads it: loading never runs arbitrary code.
Writes go to a temporary file in the same folder, then `os.replace`, so a crash
mid-write leaves the previous checkpoint intact.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch

from .errors import CheckpointError  # re-exported here and as el.CheckpointError

FORMAT = "energylab-checkpoint"
VERSION = 1


def atomic_write_bytes(path, write) -> Path:
    """Call `write(file_object)` on a temporary file next to `path`, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path, text: str) -> Path:
    return atomic_write_bytes(path, lambda f: f.write(text.encode()))


def save(path, model, **state) -> Path:
    """Write `model`'s state dict and config, plus any extra (tensor / plain) training state."""
    if not model.config:
        raise CheckpointError("this model was not built by energylab.make, so its config is unknown; "
                              "build it with el.make(variant, ...) to checkpoint it")
    payload = {"format": FORMAT, "version": VERSION, "config": json.dumps(model.config),
               "model": {k: v.detach().cpu() for k, v in model.state_dict().items()}, **state}
    return atomic_write_bytes(path, lambda f: torch.save(payload, f))


def read(path) -> dict:
    """Load and check a checkpoint file; a clear CheckpointError for anything else."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint file at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for truncated / foreign files
        raise CheckpointError(f"{path} is corrupt or not an energylab checkpoint ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0][:200]}); nothing was loaded") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an energylab checkpoint; nothing was loaded")
    if payload.get("version", 0) > VERSION:
        raise CheckpointError(f"{path} was written by a newer energylab (format {payload['version']}); upgrade")
    payload["config"] = json.loads(payload["config"])
    return payload


def load_into(model, payload: dict, path="checkpoint") -> None:
    """Copy a checkpoint's parameters into `model`, after checking it is the same model."""
    got, want = payload["config"], model.config
    if want and got.get("variant") != want.get("variant"):
        raise CheckpointError(f"{path} holds a {got.get('variant')!r} model but this model is a "
                              f"{want.get('variant')!r}; load it with energylab.load instead")
    if want and (got.get("n_visible"), got.get("hparams")) != (want.get("n_visible"), want.get("hparams")):
        raise CheckpointError(f"{path} holds a {got.get('variant')} with n_visible={got.get('n_visible')} and "
                              f"{got.get('hparams')}, not this model's n_visible={want.get('n_visible')} and "
                              f"{want.get('hparams')}; nothing was loaded")
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as exc:
        raise CheckpointError(f"{path} does not fit this model: {exc}") from None


def load(path, device="cpu"):
    """Rebuild the model stored in a checkpoint: `model = energylab.load("run/checkpoint.pt")`."""
    from .registry import from_config
    payload = read(path)
    model = from_config(payload["config"])
    load_into(model, payload, path)
    return model.to(device)
