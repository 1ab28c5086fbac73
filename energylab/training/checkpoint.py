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

from ..errors import CheckpointError  # re-exported here and as el.CheckpointError

FORMAT = "energylab-checkpoint"
VERSION = 1


def atomic_write_bytes(path, write) -> Path:
    """Call `write(file_object)` on a temporary file next to `path`, then rename it into place.

    The file gets the permissions a plain `open()` would give it (0o666 less the umask), not
    mkstemp's private 0o600, so the group can read a shared runs folder.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
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


def _umask() -> int:
    try:                        # Linux says it without changing it (no window for other threads)
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)      # elsewhere: set it to read it, and put it straight back
    os.umask(mask)
    return mask


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
    """Load and check a checkpoint file; a clear CheckpointError for anything else.

    The embedded config is parsed and checked (an object naming a registered variant, a whole
    n_visible, a hyperparameter object) and every model tensor's shape is compared with the
    shapes that config implies, worked out on torch's meta device: a small file whose config
    claims a huge model is refused before anything is allocated."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError("no checkpoint file here", file=path, fix="pass the run folder `energylab train` "
                              "printed, or its checkpoint.pt")
    if path.stat().st_size == 0:
        raise CheckpointError("the file is empty (0 bytes); nothing was loaded", file=path,
                              fix="the write was interrupted before it began: use an earlier checkpoint")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for truncated / foreign files
        first = (str(exc).strip().splitlines() or [""])[0][:160]
        raise CheckpointError(f"corrupt or not an energylab checkpoint ({type(exc).__name__}: {first}); nothing "
                              "was loaded (and nothing in it was run)", file=path,
                              fix="use a checkpoint.pt written by energylab") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError("not an energylab checkpoint; nothing was loaded", file=path,
                              fix="use a checkpoint.pt written by energylab")
    version = payload.get("version", 0)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise CheckpointError("the format version must be a whole number", file=path, field="version",
                              value=version, fix="the file was altered: use an unaltered checkpoint")
    if version > VERSION:
        raise CheckpointError(f"written by a newer energylab (format {version}, this one reads {VERSION})",
                              file=path, fix="upgrade energylab")
    payload["config"] = _config(payload.get("config"), path)
    _check_tensors(payload, path)
    return payload


def _config(text, path) -> dict:
    """The checkpoint's embedded model config, parsed and checked (variant, n_visible, hparams)."""
    from ..registry import VARIANTS, Param
    fix = "the file was altered or is not for this energylab: use an unaltered checkpoint"
    if not isinstance(text, str):
        raise CheckpointError("the model config is missing", file=path, field="config", fix=fix)
    try:
        config = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise CheckpointError(f"the model config is not JSON ({exc})", file=path, field="config", fix=fix) from None
    if not isinstance(config, dict):
        raise CheckpointError(f"the model config must be a JSON object, not {type(config).__name__}",
                              file=path, field="config", fix=fix)
    variant = config.get("variant")
    if not isinstance(variant, str) or variant not in VARIANTS:
        raise CheckpointError(f"names no registered variant (registered: {', '.join(VARIANTS)})", file=path,
                              field="config.variant", value=variant, fix=fix)
    hparams = config.setdefault("hparams", {})      # absent: the defaults
    if not isinstance(hparams, dict):
        raise CheckpointError("must be an object of hyperparameters", file=path, field="config.hparams",
                              value=hparams, fix=fix)
    try:
        Param("n_visible", "int", 1, "visible units", 1, None).validate(config.get("n_visible"))
    except ValueError:
        raise CheckpointError("must be a positive whole number", file=path, field="config.n_visible",
                              value=config.get("n_visible"), fix=fix) from None
    return config


def _check_tensors(payload: dict, path) -> None:
    """Every model entry a tensor of the shape its config implies (computed without allocating)."""
    from ..registry import check_size, get, shapes_of
    state, config = payload.get("model"), payload["config"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError("the model state must map names to tensors", file=path, field="model",
                              fix="use an unaltered checkpoint")
    variant = get(config["variant"])
    known = {p.name: p for p in variant.params}
    try:
        unknown = sorted(set(config["hparams"]) - set(known))
        if unknown:
            raise ValueError(f"unknown hyperparameter(s) {unknown}")
        values = {p.name: p.validate(config["hparams"].get(p.name, p.default)) for p in variant.params}
        n_visible = int(config["n_visible"])
        check_size(variant.name, n_visible, values)
        want = shapes_of(variant.name, n_visible, values)
        config["hparams"] = values        # defaults filled in: a checkpoint from before a Param was added loads
    except ValueError as exc:
        raise CheckpointError(f"the model config cannot be built: {exc}", file=path, field="config",
                              fix="use an unaltered checkpoint") from None
    got = {k: tuple(v.shape) for k, v in state.items()}
    if got != want:
        diff = sorted(k for k in set(got) | set(want) if got.get(k) != want.get(k))
        shown = "; ".join(f"{k}: file {got.get(k)}, config {want.get(k)}" for k in diff[:3])
        raise CheckpointError(f"the tensors do not match the model its config describes ({shown})", file=path,
                              field="model", fix="use an unaltered checkpoint; nothing was loaded")


def check_finite(payload: dict, path) -> None:
    """A CheckpointError naming the first model tensor holding NaN or infinite values."""
    for name, tensor in payload["model"].items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise CheckpointError(f"the model parameters hold {bad} NaN or infinite values, so every measurement "
                                  "and sample from them would be NaN", file=path, field=f"model.{name}",
                                  fix="resume from an earlier checkpoint or start a new run with a lower lr")


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


def load(path, device="cpu", allow_nonfinite: bool = False):
    """Rebuild the model stored in a checkpoint: `model = energylab.load("run/checkpoint.pt")`.

    A checkpoint whose parameters hold NaN or inf is refused (every number from it would be NaN)
    unless `allow_nonfinite=True`, for inspecting what went wrong."""
    from ..registry import from_config
    payload = read(path)
    if not allow_nonfinite:
        check_finite(payload, path)
    model = from_config(payload["config"])
    load_into(model, payload, path)
    return model.to(device)
