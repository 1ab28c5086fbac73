"""Issue 14's probes of bad input, each kept as a named regression test.

Every probe reproduced a traceback, a misleading message or a silently wrong result on
the command line or in the API. Each test now asserts the clear outcome: through
`cli.main`, exactly one line `energylab <command>: error: ...` naming what is wrong (the
file, the field, the value) and a non-zero exit, never a traceback; through the API, one
of the project's own exceptions (`energylab.errors`), or the correct conversion.
The checkpoint probes also check that nothing is allocated before the refusal: the
variant factories may only run on torch's "meta" device.
"""
from __future__ import annotations

import json
import pickle
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

import energylab as el
from energylab.training import checkpoint
from energylab import cli, registry
from energylab import datasets as D
from energylab.errors import CheckpointError, ConfigError, DataError, EnergylabError, RunStateError

TINY = ["--variant", "RBM", "--dataset", "bars-and-stripes", "--dataset-option", "size=2", "--n-hidden", "3",
        "--batch-size", "64", "--epochs", "1", "--quiet"]


def cli_error(capsys, argv, words=()):
    """Run the CLI expecting a refusal: one `energylab <cmd>: error:` line, non-zero exit, no traceback."""
    try:
        code = cli.main(argv)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code not in (0, None), err
    mine = [line for line in err if line.startswith(f"energylab {argv[0]}: error:")]
    assert len(mine) == 1, err
    assert not any("Traceback" in line for line in err), err
    for word in words:
        assert word in mine[0], mine[0]
    return mine[0]


def file_data(tmp_path, name, content: bytes):
    path = tmp_path / name
    path.write_bytes(content)
    return ["train", *TINY[:2], "--dataset", "file", "--dataset-option", f"path={path}", "--n-hidden", "3",
            "--epochs", "1", "--quiet", "--out", str(tmp_path / "run")]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("errors") / "run"
    assert cli.main(["train", *TINY, "--out", str(out)]) == 0
    return out


@pytest.fixture
def meta_only(monkeypatch):
    """Record the default device each variant factory runs under; the probes require "meta" only."""
    seen = []
    real_get = registry.get

    def get(name):
        variant = real_get(name)

        def factory(*a, **k):
            seen.append(torch.empty(0).device.type)
            return variant.factory(*a, **k)
        return replace(variant, factory=factory)
    monkeypatch.setattr(registry, "get", get)
    return seen


# ---------------------------------------------------------------- tracebacks from the CLI (11)

def test_probe_empty_npy(tmp_path, capsys):
    cli_error(capsys, file_data(tmp_path, "empty.npy", b""), ["empty.npy", "not a .npy file"])


def test_probe_npy_header_claiming_ten_billion_rows(tmp_path, capsys):
    header = {"descr": "<f4", "fortran_order": False, "shape": (10**10, 4)}
    path = tmp_path / "huge.npy"
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.write(b"\0" * 64)
    cli_error(capsys, ["train", "--dataset", "file", "--dataset-option", f"path={path}", "--quiet", "--out",
                       str(tmp_path / "r")], ["huge.npy", "limit"])
    # under the limit but longer than the file: truncated, also refused before reading
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {**header, "shape": (1000, 4)})
        f.write(b"\0" * 64)
    with pytest.raises(DataError, match="truncated"):
        D.load_file(path)


def test_probe_random_bytes_as_pt_data(tmp_path, capsys):
    line = cli_error(capsys, file_data(tmp_path, "noise.pt", bytes(range(256)) * 4), ["noise.pt"])
    assert "weights_only=False" not in line         # never torch's advice to unpickle


def test_probe_pickle_as_pt_data(tmp_path, capsys):
    line = cli_error(capsys, file_data(tmp_path, "evil.pt", pickle.dumps({"x": {1, 2}, "f": print})),
                     ["evil.pt", "nothing in it was run"])
    assert "weights_only=False" not in line


def test_probe_corrupt_png_in_image_folder(tmp_path, capsys):
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(folder / "a.png")
    (folder / "b.png").write_bytes(b"this is not a png")
    cli_error(capsys, ["train", "--dataset", "file", "--dataset-option", f"path={folder}", "--quiet", "--out",
                       str(tmp_path / "r")], ["b.png", "not a readable image"])


def test_probe_truncated_png_names_the_file(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray((np.arange(400).reshape(20, 20) % 255).astype(np.uint8)).save(folder / "a.png")
    whole = (folder / "a.png").read_bytes()
    (folder / "b.png").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match=r"b\.png.*truncated"):
        D.load_file(folder)


def test_probe_dbn_hidden_layers_of_100000_refused_before_allocating(tmp_path, capsys, meta_only):
    cli_error(capsys, ["train", "--variant", "DBN", "--hidden-layers", "100000,100000", "--quiet", "--out",
                       str(tmp_path / "r")], ["DBN", "parameters", "100000,100000"])
    assert set(meta_only) == {"meta"}
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("dataset, option", [("bars-and-stripes", "n_train=-1"),
                                             ("gaussian-mixture", "n_components=0"), ("rings", "n_rings=0")])
def test_probe_impossible_synthetic_options(dataset, option, tmp_path, capsys):
    variant = "RBM" if dataset == "bars-and-stripes" else "GaussianRBM"
    cli_error(capsys, ["train", "--variant", variant, "--dataset", dataset, "--dataset-option", option, "--quiet",
                       "--out", str(tmp_path / "r")], [option.split("=")[0], "must lie between"])


def test_probe_resume_checkpoint_naming_an_unknown_variant(tiny_run, tmp_path, capsys):
    path = tmp_path / "checkpoint.pt"
    payload = torch.load(tiny_run / "checkpoint.pt", weights_only=True)
    payload["config"] = json.dumps({**json.loads(payload["config"]), "variant": "NoSuchRBM"})
    torch.save(payload, path)
    cli_error(capsys, ["train", "--resume", str(path), "--dataset", "bars-and-stripes", "--quiet"],
              ["NoSuchRBM", "config.variant"])


# ---------------------------------------------------------------- checkpoint reading (6)

def _altered(tiny_run, tmp_path, **changes):
    payload = torch.load(tiny_run / "checkpoint.pt", weights_only=True)
    payload.update(changes)
    path = tmp_path / "checkpoint.pt"
    torch.save(payload, path)
    return path


def test_probe_zero_byte_checkpoint(tmp_path, capsys):
    (tmp_path / "checkpoint.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        el.load(tmp_path / "checkpoint.pt")
    cli_error(capsys, ["train", "--resume", str(tmp_path / "checkpoint.pt"), "--dataset", "digits"], ["empty"])


def test_probe_checkpoint_version_not_a_number(tiny_run, tmp_path):
    with pytest.raises(CheckpointError, match="version = 'x'"):
        el.load(_altered(tiny_run, tmp_path, version="x"))


@pytest.mark.parametrize("config, words", [("{not json", "not JSON"), ("[1, 2]", "JSON object"),
                                           (json.dumps({"n_visible": 4, "hparams": {}}), "config.variant")])
def test_probe_embedded_config_not_json_not_object_or_without_variant(tiny_run, tmp_path, config, words):
    with pytest.raises(CheckpointError, match=words):
        el.load(_altered(tiny_run, tmp_path, config=config))


def test_embedded_config_without_hparams_means_the_defaults(tiny_run, tmp_path):
    config = json.loads(torch.load(tiny_run / "checkpoint.pt", weights_only=True)["config"])
    path = _altered(tiny_run, tmp_path, config=json.dumps({"variant": "RBM", "n_visible": config["n_visible"]}))
    with pytest.raises(CheckpointError, match=r"do not match.*coupling.W"):     # default n_hidden=64, not 3
        el.load(path)


def test_probe_small_checkpoint_claiming_huge_n_visible(tiny_run, tmp_path, meta_only):
    config = json.loads(torch.load(tiny_run / "checkpoint.pt", weights_only=True)["config"])
    for n_visible, words in ((2_500_000, r"do not match.*2500000"), (50_000_000, "n_visible")):
        path = _altered(tiny_run, tmp_path, config=json.dumps({**config, "n_visible": n_visible}))
        assert path.stat().st_size < 100_000
        with pytest.raises(CheckpointError, match=words):
            el.load(path)
    assert set(meta_only) == {"meta"}          # the shapes were worked out without allocating


# ---------------------------------------------------------------- silent wrong results (6)

def test_probe_fit_on_empty_tensor():
    with pytest.raises(DataError, match="zero steps"):
        el.Trainer(el.make("RBM", 4, n_hidden=2), device="cpu", epochs=1).fit(torch.zeros(0, 4))


def test_probe_bars_and_stripes_with_no_training_examples(tmp_path, capsys):
    cli_error(capsys, ["train", *TINY, "--dataset-option", "n_train=0", "--out", str(tmp_path / "r")], ["n_train"])


def test_probe_fractional_labels_refused_not_truncated():
    x = np.random.default_rng(0).random((6, 4))
    with pytest.raises(DataError, match="not whole.*0.7"):
        D.from_array(x, labels=[0.7, 1, 0, 1, 0, 1])
    model = el.make("DiscriminativeRBM", 4, n_classes=2, n_hidden=3)
    data = D.from_array(x, labels=[0, 1, 0, 1, 0, 1], test_fraction=0)
    data.train_labels = data.train_labels.float() + 0.7
    with pytest.raises(DataError, match="whole class indices"):
        el.Trainer(model, device="cpu", epochs=1).fit(data)


def test_probe_16_bit_png_scaled_by_65535(tmp_path):
    for i, value in enumerate((1000, 65535)):
        Image.fromarray(np.full((3, 3), value, np.uint16)).save(tmp_path / f"{i}.png")
    ds = D.load_file(tmp_path, test_fraction=0)
    assert sorted(ds.train[:, 0].tolist()) == pytest.approx([1000 / 65535, 1.0])


def _nan_checkpoint(tiny_run, tmp_path):
    run = tmp_path / "nanrun"
    run.mkdir()
    for f in ("config.json", "history.json"):
        (run / f).write_bytes((tiny_run / f).read_bytes())
    payload = torch.load(tiny_run / "checkpoint.pt", weights_only=True)
    payload["model"]["coupling.W"] = torch.full_like(payload["model"]["coupling.W"], float("nan"))
    torch.save(payload, run / "checkpoint.pt")
    return run


def test_probe_evaluate_nan_checkpoint_exits_non_zero(tiny_run, tmp_path, capsys):
    run = _nan_checkpoint(tiny_run, tmp_path)
    cli_error(capsys, ["evaluate", str(run)], ["NaN", "coupling.W"])
    assert torch.isnan(checkpoint.load(run / "checkpoint.pt", allow_nonfinite=True).W).all()   # inspectable


def test_probe_resume_nan_checkpoint_never_restores_nan_as_last_good(tiny_run, tmp_path, capsys):
    run = _nan_checkpoint(tiny_run, tmp_path)
    cli_error(capsys, ["train", "--resume", str(run), "--epochs", "1", "--quiet"], ["NaN"])
    model = el.make("RBM", 4, n_hidden=3)
    with torch.no_grad():
        model.W.fill_(float("nan"))
    trainer = el.Trainer(model, device="cpu", epochs=1)
    with pytest.raises(RunStateError, match="no good state"):
        trainer.fit(torch.ones(8, 4))
    assert trainer._good is None


# ---------------------------------------------------------------- misleading messages (7)

def test_probe_text_file_named_npy(tmp_path, capsys):
    line = cli_error(capsys, file_data(tmp_path, "data.npy", b"1,2,3\n4,5,6\n"), ["data.npy", "not a .npy file"])
    assert "pickled" not in line


def test_probe_npz_renamed_npy(tmp_path, capsys):
    np.savez(tmp_path / "arrays.npz", x=np.ones((3, 2)))
    (tmp_path / "arrays.npz").rename(tmp_path / "arrays.npy")
    cli_error(capsys, ["train", "--dataset", "file", "--dataset-option", f"path={tmp_path / 'arrays.npy'}",
                       "--quiet", "--out", str(tmp_path / "r")], [".npz archive"])


def test_probe_nan_labels():
    with pytest.raises(DataError, match="NaN") as info:
        D.from_array(np.ones((4, 2)), labels=[0, float("nan"), 1, 0])
    assert "negative ones" not in str(info.value)


def test_probe_runs_dir_is_a_file(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    line = cli_error(capsys, ["train", *TINY, "--runs-dir", str(tmp_path / "afile")], ["--runs-dir", "is a file"])
    assert "Errno" not in line


def test_probe_dataset_option_size_not_a_number(tmp_path, capsys):
    line = cli_error(capsys, ["train", *TINY, "--dataset-option", "size=abc", "--out", str(tmp_path / "r")],
                     ["size", "'abc'", "whole number"])
    assert "not supported" not in line


def test_probe_resume_with_epochs_past_the_limit(tiny_run, tmp_path, capsys):
    line = cli_error(capsys, ["train", "--resume", str(tiny_run), "--epochs", "10000", "--quiet"],
                     ["--epochs", "10000", "limit", "9999"])
    assert "got 10001" not in line


def test_probe_flag_of_another_variant(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["train", *TINY, "--p", "0.5", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "ambiguous" not in err and "DropoutRBM" in err and "'p'" in err


# ---------------------------------------------------------------- faults with a message (2 here, more in test_faults)

def test_probe_config_only_folder_is_no_dead_end(tiny_run, tmp_path, capsys):
    dead = tmp_path / "dead"
    dead.mkdir()
    (dead / "config.json").write_bytes((tiny_run / "config.json").read_bytes())
    cli_error(capsys, ["train", "--resume", str(dead), "--quiet"], ["--restart"])
    cli_error(capsys, ["train", *TINY, "--out", str(dead)], ["--restart"])
    assert cli.main(["train", *TINY, "--out", str(dead), "--restart"]) == 0
    assert json.loads((dead / "summary.json").read_text())["status"] == "finished"
    assert (dead / "checkpoint.pt").is_file()


def test_probe_failed_start_leaves_no_running_folder(tmp_path, capsys):
    cli_error(capsys, ["train", "--variant", "GaussianRBM", "--dataset", "gaussian-mixture", "--dataset-option",
                       "std=nan", "--quiet", "--out", str(tmp_path / "r")], ["std", "finite"])
    assert not (tmp_path / "r").exists()


def test_unexpected_exceptions_are_one_line_and_debug_shows_the_traceback(monkeypatch, capsys):
    class Broken(dict):                   # `energylab datasets` meets a bug: a KeyError from inside
        def items(self):
            raise KeyError("inner")
    monkeypatch.setattr(D, "DATASETS", Broken(D.DATASETS))
    assert cli.main(["datasets"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["energylab datasets: error: unexpected KeyError: 'inner' (rerun with --debug for the traceback)"]
    with pytest.raises(KeyError):
        cli.main(["datasets", "--debug"])


def test_error_family_is_one_line_and_keeps_builtin_bases():
    exc = ConfigError("bad\nvalue", file="f.json", field="x", value=3, fix="use 1")
    assert str(exc) == "f.json: x = 3: bad value; fix: use 1"
    assert isinstance(exc, ValueError) and isinstance(DataError("m"), ValueError)
    assert isinstance(CheckpointError("m"), ValueError) and isinstance(RunStateError("m"), RuntimeError)
    assert all(issubclass(t, EnergylabError) for t in (ConfigError, DataError, CheckpointError, RunStateError,
                                                       el.TrainingDiverged, D.DataTypeError, D.OptionError))
