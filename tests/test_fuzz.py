"""Property-based fuzzing of every boundary that reads outside input (issue 14).

For any generated input, the data loaders, the checkpoint reader (and the model config
embedded in it) and the command line's flags either succeed or raise one of the
project's own exceptions (`energylab.errors.EnergylabError`): never another exception
type, never a hang (each test has a timeout and hypothesis a bounded number of
examples), never a write outside the folder the test hands out. Training itself is
stubbed out in the command-line fuzz: it checks parsing, validation and building.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import energylab as el
from energylab.training import checkpoint
from energylab import cli
from energylab.cli import train as cli_train
from energylab import datasets as D
from energylab.errors import EnergylabError

FUZZ = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", 30)), deadline=None, derandomize=not os.environ.get("FUZZ_RANDOM"), database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
pytestmark = pytest.mark.timeout(300)

numbers = (st.integers(-3, 300) | st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0, -1, 10**12]))
values = numbers | st.none() | st.booleans() | st.text(max_size=8) | st.lists(st.integers(-2, 5), max_size=4)


def outcome(fn, *args, **kwargs):
    """Call fn; success or an EnergylabError is fine, anything else fails the property."""
    try:
        return fn(*args, **kwargs)
    except EnergylabError as exc:
        assert "\n" not in str(exc)
        return exc


@pytest.fixture
def folder(tmp_path):
    """A fresh folder per example, and a check that nothing was written next to it."""
    before = set(os.listdir(tmp_path.parent))
    yield lambda: Path(tempfile.mkdtemp(dir=tmp_path))
    assert set(os.listdir(tmp_path.parent)) == before


# ---------------------------------------------------------------- data loaders

arrays = st.one_of(
    st.lists(st.lists(numbers, min_size=0, max_size=5), max_size=6),
    st.builds(lambda shape, fill: np.full(shape, fill), st.lists(st.integers(0, 4), max_size=4).map(tuple), numbers),
    st.lists(st.text(max_size=3), max_size=4),
)


@FUZZ
@given(x=arrays, labels=st.none() | st.lists(numbers, max_size=7), image_shape=st.none() | st.lists(values, max_size=3),
       test_fraction=numbers, seed=values)
def test_from_array_succeeds_or_says_why(x, labels, image_shape, test_fraction, seed):
    result = outcome(D.from_array, x, labels=labels, image_shape=image_shape, test_fraction=test_fraction,
                     seed=seed)
    if isinstance(result, D.Dataset):
        assert len(result.train) >= 1 and torch.isfinite(result.train).all()


@FUZZ
@given(name=st.sampled_from(["digits", "bars-and-stripes", "gaussian-mixture", "two-moons", "rings",
                             "checkerboard"]),
       options=st.dictionaries(st.sampled_from(["size", "n_train", "n_test", "seed", "n_components", "radius",
                                                "std", "noise", "n_rings", "n_cells", "extent", "binarize",
                                                "test_fraction", "bogus"]), values, max_size=3))
def test_dataset_options_succeed_or_say_why(name, options):
    result = outcome(D.load, name, **options)
    if isinstance(result, D.Dataset):
        assert len(result.train) >= 1


def _valid_files():
    npy, pt, png = io.BytesIO(), io.BytesIO(), io.BytesIO()
    np.save(npy, np.random.default_rng(0).random((6, 4)).astype(np.float32))
    torch.save({"x": torch.rand(6, 4), "labels": torch.tensor([0, 1, 0, 1, 0, 1])}, pt)
    Image.fromarray(np.arange(16, dtype=np.uint8).reshape(4, 4)).save(png, format="PNG")
    return {".npy": npy.getvalue(), ".pt": pt.getvalue(), ".png": png.getvalue()}


VALID = _valid_files()


def mutated(content: bytes, data) -> bytes:
    """Truncate, flip bytes in, or replace a valid file."""
    how = data.draw(st.sampled_from(["truncate", "flip", "random", "keep"]))
    if how == "truncate":
        return content[:data.draw(st.integers(0, len(content)))]
    if how == "flip":
        b = bytearray(content)
        for i in data.draw(st.lists(st.integers(0, len(b) - 1), min_size=1, max_size=8)):
            b[i] = data.draw(st.integers(0, 255))
        return bytes(b)
    if how == "random":
        return data.draw(st.binary(max_size=300))
    return content


@FUZZ
@given(suffix=st.sampled_from([".npy", ".pt", ".png"]), data=st.data())
def test_file_loader_succeeds_or_says_why(folder, suffix, data):
    where = folder()
    content = mutated(VALID[suffix], data)
    if suffix == ".png":
        (where / "a.png").write_bytes(VALID[".png"])
        (where / "b.png").write_bytes(content)
        path = where
    else:
        path = where / f"data{suffix}"
        path.write_bytes(content)
    outcome(D.load, "file", path=str(path), test_fraction=0.25)


# ---------------------------------------------------------------- the checkpoint reader

def _valid_checkpoint():
    model = el.make("RBM", 4, n_hidden=3)
    trainer = el.Trainer(model, device="cpu", epochs=1, batch_size=4)
    trainer.fit(torch.bernoulli(torch.full((8, 4), 0.5), generator=torch.Generator().manual_seed(0)))
    buffer = io.BytesIO()
    payload = {"format": checkpoint.FORMAT, "version": checkpoint.VERSION, "config": json.dumps(model.config),
               "model": {k: v.detach() for k, v in model.state_dict().items()}}
    torch.save(payload, buffer)
    return trainer, payload, buffer.getvalue()


TRAINER, PAYLOAD, CKPT = _valid_checkpoint()
with tempfile.TemporaryDirectory() as _where:
    FULL = torch.load(TRAINER.save_checkpoint(Path(_where) / "full.pt"), weights_only=True)
tensors = st.builds(lambda shape, dtype: torch.zeros(shape, dtype=dtype), st.lists(st.integers(0, 4), max_size=3),
                    st.sampled_from([torch.float32, torch.int64, torch.bool, torch.complex64]))
json_values = st.recursive(st.none() | st.booleans() | st.integers(-5, 10**8) | st.text(max_size=6) |
                           st.sampled_from(["RBM", "DBN", "DropoutRBM"]),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                               st.sampled_from(["variant", "n_visible", "hparams", "n_hidden", "init_std", "p"]),
                               inner, max_size=4), max_leaves=8)


@FUZZ
@given(data=st.data())
def test_checkpoint_bytes_load_or_say_why(folder, data):
    path = folder() / "checkpoint.pt"
    path.write_bytes(mutated(CKPT, data))
    outcome(el.load, path)


near_valid = st.fixed_dictionaries(
    {"variant": st.sampled_from(["RBM", "DropoutRBM", "DBN", "VarianceGaussianRBM"]),
     "n_visible": st.sampled_from([4, 4, 0, -1, 2.5, "4", 10**7])},
    optional={"hparams": st.dictionaries(st.sampled_from(["n_hidden", "init_std", "p", "hidden_layers", "x"]),
                                         st.sampled_from([3, 0, -1, 0.5, "3", "8,4", None, 10**6]), max_size=3)})


@FUZZ
@given(config=near_valid | json_values | st.text(max_size=20), version=values,
       shapes=st.dictionaries(st.sampled_from(["a", "b", "coupling.W", "x"]), tensors, max_size=3))
def test_checkpoint_fields_load_or_say_why(folder, config, version, shapes):
    payload = dict(PAYLOAD, version=version,
                   config=config if isinstance(config, str) else json.dumps(config),
                   model={**PAYLOAD["model"], **shapes})
    path = folder() / "checkpoint.pt"
    torch.save(payload, path)
    outcome(el.load, path)
    outcome(el.Trainer.from_checkpoint, path, device="cpu")


@FUZZ
@given(key=st.sampled_from(sorted(set(FULL) - {"format", "version", "config", "model"})),
       value=json_values | tensors | st.text(max_size=12))
def test_training_state_resumes_or_says_why(folder, key, value):
    path = folder() / "checkpoint.pt"
    torch.save(dict(FULL, **{key: value}), path)
    outcome(el.Trainer.from_checkpoint, path, device="cpu")


# ---------------------------------------------------------------- the command line's flags

FLAGS = ["--variant", "--dataset", "--dataset-option", "--n-hidden", "--hidden-layers", "--lr", "--k", "--epochs",
         "--batch-size", "--sampler", "--p", "--init-std", "--seed", "--eval-every", "--resume", "--out",
         "--runs-dir", "--restart", "--device", "--first-layer", "--momentum", "--n-chains"]
tokens = (st.sampled_from(["RBM", "DBN", "DropoutRBM", "GaussianRBM", "digits", "bars-and-stripes", "two-moons",
                           "size=2", "n_train=0", "size=abc", "std=nan", "path=nope.npy", "8,4", "0", "-1",
                           "1e9", "nan", "pcd", "cpu", "cuda", "run", "x=", "="]) | st.text(max_size=6))


@FUZZ
@given(argv=st.lists(st.sampled_from(FLAGS) | tokens, max_size=8))
def test_cli_train_flags_parse_or_say_why(folder, monkeypatch, capsys, argv):
    where = folder()
    monkeypatch.chdir(where)                                   # relative paths land in the folder
    monkeypatch.setattr(cli_train, "_fit", lambda *a, **k: 0)  # parsing, validation and building only
    argv = [a for a in argv if not a.startswith("/") and ".." not in a and "mnist" not in a]
    try:
        code = cli.main(["train", "--quiet", "--dataset", "bars-and-stripes", *argv])
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code in (0, 1, 2), (argv, code, err)
    assert "Traceback" not in err, (argv, err)
    if code:
        assert err.strip(), argv
