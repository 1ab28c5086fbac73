"""The run record (`energylab.store.runrecord`): one schema read by every command and page.

Old layouts of both writers are upgraded, unusable files are refused with the file and
the field named, listings survive them, folder names cannot leave the runs folder and
paths in a record cannot leave the data directory.
"""
from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import pytest

from energylab.errors import ConfigError
from energylab.store.runfolder import RunFolder
from energylab.store.runrecord import SCHEMA_VERSION, DatasetSpec, RunConfig, safe_name

# The two layouts written before schema 2, as the command line and the dashboard wrote them.
CLI_V1 = {"variant": "RBM", "n_visible": 64, "model": {"n_hidden": 8, "init_std": 0.01},
          "training": {"lr": 0.1, "epochs": 2}, "seed": 0, "device": "cpu", "eval_every": None,
          "dataset": {"name": "digits", "options": {"binarize": "threshold"}, "kind": "binary", "n_visible": 64,
                      "image_shape": [8, 8], "n_train": 1437, "n_test": 360},
          "energylab_version": "0.1.0", "command": "energylab train --n-hidden 8",
          "created": "2024-05-01T12:00:00+0000",
          "resumed": [{"command": "energylab train --resume x", "from_step": 12, "time": "t"}]}
DASHBOARD_V1 = {"id": "RBM-bars-and-stripes-20240501-120000", "variant": "RBM", "dataset": "bars-and-stripes",
                "dataset_options": {"size": 3}, "model": {"n_hidden": 4}, "training": {"lr": 0.05},
                "device": "auto", "eval_every": 100, "source": "dashboard", "resume_from": None,
                "created": "2024-05-01 12:00:00"}


def test_the_command_lines_old_layout_is_upgraded():
    cfg = RunConfig.from_dict(CLI_V1)
    assert cfg.variant == "RBM" and cfg.source == "cli" and cfg.n_visible == 64 and cfg.seed == 0
    assert cfg.dataset == DatasetSpec("digits", {"binarize": "threshold"}, "binary", 64, [8, 8], 1437, 360)
    assert cfg.model == {"n_hidden": 8, "init_std": 0.01} and cfg.training["lr"] == 0.1
    assert cfg.resumed[0]["from_step"] == 12 and cfg.extra == {}
    out = cfg.to_dict()
    assert out["schema_version"] == SCHEMA_VERSION == 2
    assert out["dataset"]["name"] == "digits" and out["dataset"]["options"] == {"binarize": "threshold"}


def test_the_dashboards_old_layout_is_upgraded():
    cfg = RunConfig.from_dict(DASHBOARD_V1)
    assert cfg.source == "dashboard" and cfg.id == DASHBOARD_V1["id"] and cfg.eval_every == 100
    assert cfg.dataset.name == "bars-and-stripes" and cfg.dataset.options == {"size": 3}
    assert cfg.dataset.kind is None and cfg.dataset.image_shape is None      # not recorded then
    out = cfg.to_dict()
    assert "dataset_options" not in out and out["dataset"]["options"] == {"size": 3}


def test_other_old_spellings_are_read():
    cfg = RunConfig.from_dict({"variant": "RBM", "dataset": "digits", "hparams": {"n_hidden": 3}})
    assert cfg.model == {"n_hidden": 3} and cfg.dataset.options == {}
    cfg = RunConfig.from_dict({"variant": "RBM", "resumed_from": "runs/a/checkpoint.pt",
                               "dataset": {"name": "digits", "options": {}, "kind": "unit"}})
    assert cfg.resume_from == "runs/a/checkpoint.pt"


def test_round_trip_keeps_unknown_keys():
    data = dict(CLI_V1, teacher_note="keep me", model={"n_hidden": 8, "x": float("nan")})
    cfg = RunConfig.from_dict(data)
    assert cfg.extra == {"teacher_note": "keep me"}
    text = cfg.to_json()
    assert json.loads(text)["model"]["x"] == "nan"                 # strict JSON on disk
    again = RunConfig.from_json(text)
    assert again.extra == {"teacher_note": "keep me"} and again.dataset == cfg.dataset
    assert again.to_dict() == json.loads(text)
    assert RunConfig.from_dict(again.to_dict()).to_dict() == again.to_dict()


def test_owner_fields_round_trip():
    cfg = RunConfig("RBM", DatasetSpec("digits"), source="dashboard", id="r1", owner="ab" * 32,
                    owner_label="Ada")
    back = RunConfig.from_json(cfg.to_json())
    assert (back.source, back.id, back.owner, back.owner_label) == ("dashboard", "r1", "ab" * 32, "Ada")


MALFORMED = [
    ("[]", None, "not a run record"),
    ("null", None, "not a run record"),
    ('"text"', None, "not a run record"),
    ("{not json", None, "is not JSON"),
    ('{"variant": "RBM"}', "dataset", "is missing"),
    ('{"variant": "RBM", "dataset": {"options": {}}}', "dataset.name", "is missing"),
    ('{"variant": "RBM", "dataset": {"name": ""}}', "dataset.name", "is missing"),
    ('{"variant": "RBM", "dataset": {"name": "../../evil"}}', "dataset.name", "not a known dataset"),
    ('{"variant": "Nope", "dataset": "digits"}', "variant", "not a registered variant"),
    ('{"dataset": "digits"}', "variant", "has no variant"),
    ('{"variant": "RBM", "dataset": "digits", "seed": "x"}', "seed", "wrong type"),
    ('{"variant": "RBM", "dataset": "digits", "model": []}', "model", "must be an object"),
    ('{"variant": "RBM", "dataset": {"name": "digits", "options": [1]}}', "dataset.options", "must be an object"),
    ('{"variant": "RBM", "dataset": {"name": "digits", "image_shape": [8, "8"]}}', "dataset.image_shape",
     "wrong type"),
    ('{"variant": "RBM", "dataset": "digits", "schema_version": 99}', "schema_version", "newer energylab"),
    ("[" * 100000, None, "is not JSON"),
]


@pytest.mark.parametrize("text,field,words", MALFORMED)
def test_unusable_records_are_refused_naming_file_field_and_fix(text, field, words):
    with pytest.raises(ConfigError) as info:
        RunConfig.from_json(text, file="runs/x/config.json")
    msg = str(info.value)
    assert isinstance(info.value, ValueError)
    assert msg.startswith("runs/x/config.json: ") and words in msg and "fix:" in msg
    assert "\n" not in msg
    if field:
        assert info.value.field == field and f"{field}" in msg


def test_listing_survives_every_bad_folder(tmp_path):
    good = RunFolder.create(tmp_path, "RBM", "digits")
    good.write_record(RunConfig.from_dict(CLI_V1))
    for i, (text, _, _) in enumerate(MALFORMED):
        (tmp_path / f"bad{i}").mkdir()
        (tmp_path / f"bad{i}" / "config.json").write_text(text)
    (tmp_path / "binary").mkdir()
    (tmp_path / "binary" / "config.json").write_bytes(b"\xff\xfe\x00")
    (tmp_path / "huge").mkdir()
    (tmp_path / "huge" / "config.json").write_text(" " * 4_000_001 + "{}")
    (tmp_path / "only-checkpoint").mkdir()
    (tmp_path / "only-checkpoint" / "checkpoint.pt").write_bytes(b"x")
    (tmp_path / "not-a-run").mkdir()                                          # nothing in it: not listed
    os.symlink(good.path, tmp_path / "link")                                  # a link is not a run folder
    runs = RunFolder.list_runs(tmp_path)
    by_name = {r.name: r for r in runs}
    assert set(by_name) == {good.name, "binary", "huge", "only-checkpoint", "link"} | {f"bad{i}" for i in range(len(MALFORMED))}
    assert by_name[good.name].readable and by_name[good.name].record.dataset.name == "digits"
    for name, run in by_name.items():
        if name != good.name:
            assert not run.readable and run.record is None and run.error, name
            assert "\n" not in run.error
    assert "symbolic link" in by_name["link"].error and "no config.json" in by_name["only-checkpoint"].error
    assert "not text" in by_name["binary"].error and "too large" in by_name["huge"].error
    assert [r.path for r in RunFolder.list_runs(tmp_path)] == [r.path for r in runs]   # a stable order


@pytest.mark.parametrize("text,expected", [("../../x", "x"), ("my data/set", "my_data_set"), ("..", "run"),
                                           (".hidden", "hidden"), ("", "run"), ("a..b", "a.b"),
                                           ("RBM", "RBM"), ("fashion-mnist", "fashion-mnist"),
                                           ("/etc/passwd", "etc_passwd"), ("x" * 200, "x" * 60)])
def test_safe_name(text, expected):
    assert safe_name(text) == expected
    assert "/" not in safe_name(text) and safe_name(text) not in (".", "..")


def test_run_folders_never_leave_the_runs_folder(tmp_path):
    runs = tmp_path / "deep" / "runs"
    folder = RunFolder.create(runs, "../../../RBM", "../../escape")
    assert folder.path.parent == runs and folder.name.startswith("RBM-escape-")
    assert sorted(p.name for p in (tmp_path / "deep").iterdir()) == ["runs"]


def test_dataset_paths_are_confined_to_the_data_directory(tmp_path, monkeypatch):
    data = tmp_path / "data"
    monkeypatch.setenv("ENERGYLAB_DATA", str(data))
    inside = RunConfig("RBM", DatasetSpec("mnist", {"root": str(data / "mnist")}))
    assert inside.checked_dataset_options() == {"root": str((data / "mnist").resolve())}
    relative = RunConfig("RBM", DatasetSpec("mnist", {"root": "mnist"}))     # relative to the data directory
    assert relative.checked_dataset_options()["root"] == str((data / "mnist").resolve())
    assert RunConfig("RBM", DatasetSpec("mnist", {"root": None})).checked_dataset_options() == {"root": None}
    for bad in (str(tmp_path / "elsewhere"), "../elsewhere", str(data) + "-twin", "/"):
        cfg = RunConfig("RBM", DatasetSpec("mnist", {"root": bad}))
        with pytest.raises(ConfigError, match="outside the data directory") as info:
            cfg.checked_dataset_options(file="runs/x/config.json")
        assert info.value.field == "dataset.options.root" and "ENERGYLAB_DATA" in str(info.value)
    with pytest.raises(ConfigError, match="dataset.options.path"):
        RunConfig("RBM", DatasetSpec("file", {"path": "/etc/passwd"})).checked_dataset_options()
    with pytest.raises(ConfigError, match="must be a path"):
        RunConfig("RBM", DatasetSpec("file", {"path": 3})).checked_dataset_options()
    # a link inside the data directory that leads out is followed, and refused
    data.mkdir()
    os.symlink(tmp_path, data / "link")
    with pytest.raises(ConfigError, match="outside"):
        RunConfig("RBM", DatasetSpec("file", {"path": "link/x.npy"})).checked_dataset_options()
    # a folder given explicitly (the command line adds its working folder) is allowed too
    own = RunConfig("RBM", DatasetSpec("file", {"path": str(tmp_path / "mine.npy")}))
    assert own.checked_dataset_options(also=[tmp_path])["path"] == str((tmp_path / "mine.npy").resolve())


def test_resume_from_is_confined_to_the_runs_folder(tmp_path):
    runs = tmp_path / "runs"
    ok = RunConfig("RBM", DatasetSpec("digits"), resume_from=str(runs / "a" / "checkpoint.pt"))
    assert ok.checked_resume_from(runs) == (runs / "a" / "checkpoint.pt").resolve()
    assert RunConfig("RBM", DatasetSpec("digits")).checked_resume_from(runs) is None
    bad = RunConfig("RBM", DatasetSpec("digits"), resume_from="../../elsewhere/checkpoint.pt")
    with pytest.raises(ConfigError, match="outside the runs folder"):
        bad.checked_resume_from(runs)


def test_a_planted_mnist_root_creates_nothing_and_never_touches_the_network(tmp_path, monkeypatch):
    """What Explore does with a run (RunFolder.load_dataset) on a planted config."""
    def refuse(*args, **kwargs):
        raise AssertionError("the network was touched")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("ENERGYLAB_DATA", str(tmp_path / "data"))
    target = tmp_path / "victim" / "deep"
    folder = RunFolder.create(tmp_path / "runs", "RBM", "mnist")
    (folder.path / "config.json").write_text(json.dumps(
        {"variant": "RBM", "dataset": "mnist", "dataset_options": {"root": str(target)}, "source": "dashboard"}))
    with pytest.raises(ConfigError, match="dataset.options.root") as info:
        folder.load_dataset()
    assert str(folder.path / "config.json") in str(info.value)
    assert not (tmp_path / "victim").exists() and not (tmp_path / "data").exists()


def test_read_config_returns_the_upgraded_layout_and_write_config_checks(tmp_path):
    folder = RunFolder.create(tmp_path, "RBM", "bars")
    (folder.path / "config.json").write_text(json.dumps(DASHBOARD_V1))
    config = folder.read_config()
    assert config["schema_version"] == 2 and config["dataset"]["name"] == "bars-and-stripes"
    assert folder.dataset_spec() == ("bars-and-stripes", {"size": 3})
    assert folder.dataset_spec(DASHBOARD_V1) == ("bars-and-stripes", {"size": 3})
    folder.write_config(DASHBOARD_V1)                   # a dict of any layout is written as schema 2
    assert json.loads((folder.path / "config.json").read_text())["schema_version"] == 2
    with pytest.raises(ConfigError, match="variant"):
        folder.write_config({"dataset": "digits"})
    assert folder.read_record().source == "dashboard"


def test_the_pages_read_a_command_line_run(tmp_path, monkeypatch):
    """Compare and Explore read a run through RunFolder: record, history, model and data."""
    from energylab import cli
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", "--variant", "RBM", "--dataset", "bars-and-stripes", "--dataset-option", "size=3",
                     "--n-hidden", "4", "--epochs", "1", "--quiet", "--runs-dir", str(tmp_path / "runs")]) == 0
    (folder,) = RunFolder.list_runs(tmp_path / "runs")
    assert folder.readable and folder.record.source == "cli" and folder.record.id == folder.name
    assert folder.record.dataset.image_shape == [3, 3] and folder.record.dataset.kind == "binary"
    assert len(folder.read_history()) > 0
    model, data = folder.load_model(), folder.load_dataset()
    assert model.n_visible == data.n_visible == 9 and data.name == "bars-and-stripes"


def test_compare_and_explore_pages_read_both_sources_and_survive_bad_folders(tmp_path, monkeypatch):
    """AppTest of the two pages on one runs folder holding a command-line run, a dashboard run of the
    old layout, malformed folders and a planted config whose MNIST root lies outside the data
    directory: no traceback, unreadable folders named with their reason, the planted run refused
    without creating its folder."""
    import shutil

    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from energylab import cli
    from test_cli import _dashboard_run
    app_file = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"
    sys.path.insert(0, str(app_file.parent))              # the pages import `common` as streamlit run does
    runs = tmp_path / "runs"
    monkeypatch.setenv("ENERGYLAB_RUNS_DIR", str(runs))
    monkeypatch.setenv("ENERGYLAB_DATA", str(tmp_path / "data"))
    dash = _dashboard_run(runs)
    assert cli.main(["train", "--variant", "RBM", "--dataset", "digits", "--n-hidden", "8", "--batch-size", "128",
                     "--epochs", "1", "--quiet", "--runs-dir", str(runs)]) == 0
    (cli_run,) = [f for f in RunFolder.list_runs(runs) if f.record.source == "cli"]
    for name, text in (("bad-list", "[]"), ("bad-null", "null"), ("bad-noname", '{"variant": "RBM", "dataset": {}}')):
        (runs / name).mkdir()
        (runs / name / "config.json").write_text(text)
    planted = runs / "planted"
    planted.mkdir()
    (planted / "config.json").write_text(json.dumps({"variant": "RBM", "dataset": "mnist", "source": "dashboard",
                                                     "dataset_options": {"root": str(tmp_path / "victim")}}))
    shutil.copy(cli_run.checkpoint, planted / "checkpoint.pt")
    st.cache_resource.clear()
    at = AppTest.from_file(str(app_file), default_timeout=60)
    try:
        at.run()
        at.switch_page("compare.py").run()
        assert not at.exception, [e.value for e in at.exception]
        at.multiselect(key="compare.runs").set_value([dash.name, cli_run.name]).run()
        assert not at.exception, [e.value for e in at.exception]
        captions = "\n".join(c.value for c in at.caption)
        assert f"`{dash.name}`: RBM on digits (dashboard run)" in captions
        assert f"`{cli_run.name}`: RBM on digits (cli run)" in captions
        for name in ("bad-list", "bad-null", "bad-noname"):
            assert f"`{name}`: unreadable: " in captions
        assert len(at.get("plotly_chart")) == 1

        at.switch_page("explore.py").run()
        for run_id in (dash.name, cli_run.name):
            at.selectbox(key="explore.run").set_value(run_id).run()
            assert not at.exception, [e.value for e in at.exception]
            assert not at.error and "trained on digits" in "\n".join(c.value for c in at.caption)
        at.selectbox(key="explore.run").set_value("planted").run()
        assert not at.exception, [e.value for e in at.exception]
        assert "dataset.options.root" in at.error[0].value and "outside the data directory" in at.error[0].value
        assert not (tmp_path / "victim").exists() and not (tmp_path / "data").exists()
    finally:
        import common
        common.manager().shutdown()
        st.cache_resource.clear()


def test_a_relative_path_of_an_older_command_line_record_is_found_in_the_allowed_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("ENERGYLAB_DATA", str(tmp_path / "data"))
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "x.npy").write_bytes(b"")
    cfg = RunConfig("RBM", DatasetSpec("file", {"path": "x.npy"}))
    assert cfg.checked_dataset_options()["path"] == str(tmp_path / "data" / "x.npy")     # nowhere: data dir
    assert cfg.checked_dataset_options(also=[tmp_path / "work"])["path"] == str(tmp_path / "work" / "x.npy")
    with pytest.raises(ConfigError):
        RunConfig("RBM", DatasetSpec("file", {"path": "../x.npy"})).checked_dataset_options(also=[tmp_path / "work"])
