"""The `energylab` command line and the run folder it writes.

Commands run in-process through `cli.main([...])` (fast); one test runs the
installed `energylab` script to check the entry point. Numbers are checked
against ground truth: the exact log-likelihood the CLI prints is recomputed by
enumeration, a resumed run must equal an uninterrupted one bit for bit.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import energylab as el
from energylab.training import checkpoint
from energylab import cli
from energylab.store.runfolder import RunFolder

FILES = ["config.json", "history.json", "history.csv", "checkpoint.pt", "weights.png", "samples.png",
         "reconstructions.png", "summary.json"]
# 1437 digits / batch 128 -> 12 steps per epoch
SMALL = ["--variant", "RBM", "--dataset", "digits", "--n-hidden", "8", "--batch-size", "128"]
STEPS_PER_EPOCH = 12


def train(out, *extra):
    return cli.main(["train", *SMALL, "--quiet", "--out", str(out), *extra])


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    assert train(out, "--epochs", "2") == 0
    return out


def test_train_writes_every_file(run_dir):
    for name in FILES:
        assert (run_dir / name).is_file(), name
    history = el.History.from_json((run_dir / "history.json").read_text())
    assert len(history) > 0
    steps = [r["step"] for r in history.records]
    assert steps == sorted(steps) and steps[-1] == 2 * STEPS_PER_EPOCH
    csv_lines = (run_dir / "history.csv").read_text().splitlines()
    assert csv_lines[0].startswith("step,") and len(csv_lines) == len(history) + 1
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["step"] == 2 * STEPS_PER_EPOCH
    assert summary["final"]["recon_error"] == history.last("recon_error")
    assert summary["pseudo_log_likelihood_method"] == "exact"


def test_progress_bar_counts_a_stacks_whole_plan(tmp_path, capsys):
    """A DBN trains 1 + 2 layer-epochs with --epochs 1: the bar says epoch 3/3, never "3/1"."""
    assert cli.main(["train", "--variant", "DBN", "--dataset", "digits", "--hidden-layers", "8,6",
                     "--layer-epochs", "1,2", "--epochs", "1", "--batch-size", "128", "--fine-tune", "off",
                     "--out", str(tmp_path / "dbn")]) == 0
    err = capsys.readouterr().err
    assert "epoch 3/3" in err and "epoch 3/1" not in err


def test_config_round_trips(run_dir):
    config = RunFolder(run_dir).read_config()
    assert config == json.loads((run_dir / "config.json").read_text())
    assert config["variant"] == "RBM" and config["model"] == {"n_hidden": 8, "init_std": 0.01}
    assert config["training"]["batch_size"] == 128 and config["training"]["epochs"] == 2
    assert config["training"]["lr"] == el.VARIANTS["RBM"].param("lr").default
    assert config["dataset"]["name"] == "digits" and config["dataset"]["image_shape"] == [8, 8]
    assert config["seed"] == 0 and config["device"] == "cpu" and config["energylab_version"] == el.__version__
    assert "--n-hidden 8" in config["command"]
    # the config rebuilds the same architecture, and the checkpoint fills it
    rebuilt = el.make(config["variant"], config["n_visible"], **config["model"])
    loaded = el.load(run_dir / "checkpoint.pt")
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == \
        {k: v.shape for k, v in loaded.state_dict().items()}
    assert loaded.config["hparams"] == config["model"]


def test_resume_continues_the_run_bit_for_bit(run_dir, tmp_path, capsys):
    resumed = tmp_path / "resumed"
    shutil.copytree(run_dir, resumed)
    assert cli.main(["train", "--resume", str(resumed), "--epochs", "1"]) == 0
    assert "epoch 3/3" in capsys.readouterr().err           # the progress bar
    straight = tmp_path / "straight"
    assert train(straight, "--epochs", "3") == 0
    a, b = el.load(resumed / "checkpoint.pt"), el.load(straight / "checkpoint.pt")
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), name
    history = RunFolder(resumed).read_history()
    assert [r["step"] for r in history.records] == [r["step"] for r in RunFolder(straight).read_history().records]
    assert history.records[-1]["step"] == 3 * STEPS_PER_EPOCH
    config = RunFolder(resumed).read_config()
    assert config["resumed"][0]["from_step"] == 2 * STEPS_PER_EPOCH

    # a live hyperparameter may change on resume; the change lands in the history
    assert cli.main(["train", "--resume", str(resumed / "checkpoint.pt"), "--epochs", "1", "--lr", "0.02",
                     "--quiet"]) == 0
    payload = checkpoint.read(resumed / "checkpoint.pt")
    assert payload["position"][0] == 4 * STEPS_PER_EPOCH
    history = RunFolder(resumed).read_history()
    assert {"step": 3 * STEPS_PER_EPOCH, "name": "lr", "old": 0.1, "new": 0.02} in history.changes
    assert RunFolder(resumed).read_config()["training"]["lr"] == 0.02

    # nothing left to do without --epochs; fixed hyperparameters cannot change
    assert cli.main(["train", "--resume", str(resumed), "--quiet"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    for bad, word in ((["--n-hidden", "9"], "--n-hidden"), (["--batch-size", "32"], "--batch-size")):
        with pytest.raises(SystemExit) as exc:
            cli.main(["train", "--resume", str(resumed), *bad])
        assert exc.value.code == 2 and word in capsys.readouterr().err


def _exact_test_ll(run_dir):
    """Ground truth: enumerate the 2^8 hidden states on the stochastically binarized test set."""
    model = el.load(run_dir / "checkpoint.pt")
    data = el.datasets.load("digits")
    x = el.datasets.binarize(data.test, "stochastic", torch.Generator().manual_seed(0))
    return el.metrics.exact_log_likelihood(model, x)


def test_evaluate_table_and_json(run_dir, capsys):
    assert cli.main(["evaluate", str(run_dir)]) == 0
    text = capsys.readouterr().out
    for label in ("reconstruction error", "free energy", "pseudo-log-likelihood", "exact log-likelihood",
                  "free-energy gap"):
        assert label in text
    assert cli.main(["evaluate", str(run_dir), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    m = result["metrics"]
    assert result["split"] == "test" and result["n_examples"] == 360
    assert m["pseudo_log_likelihood"]["method"] == "exact"        # 64 visible units: every bit flipped
    assert m["exact_log_likelihood"]["value"] == pytest.approx(_exact_test_ll(run_dir), abs=1e-9)
    # log-probabilities of discrete states, and a squared error
    assert m["exact_log_likelihood"]["value"] < 0
    assert m["pseudo_log_likelihood"]["value"] < 0 and m["reconstruction_error"]["value"] > 0
    assert math.isfinite(m["free_energy_gap"]["value"])

    assert cli.main(["evaluate", str(run_dir), "--json", "--exact-max-units", "4", "--split", "train"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n_examples"] == 1437
    assert result["metrics"]["exact_log_likelihood"]["value"] is None
    assert result["metrics"]["exact_log_likelihood"]["method"].startswith("not computable exactly (")
    # Too large to enumerate at this limit: AIS stands in, and agrees with enumeration of the same model.
    assert cli.main(["evaluate", str(run_dir), "--json", "--exact-max-units", "4"]) == 0
    ais = json.loads(capsys.readouterr().out)["metrics"]["ais_log_likelihood"]
    assert ais["method"].startswith("AIS estimate")
    assert ais["value"] == pytest.approx(_exact_test_ll(run_dir), abs=0.1)


def test_evaluate_reports_ais_bases_that_disagree_once(run_dir, capsys, monkeypatch):
    """When AIS's bases disagree (measures/ais.py), the warning is part of the result: a note in
    the JSON and one `note:` line in the table, not a stray warning beside it."""
    import dataclasses
    import warnings

    from energylab.measures import ais, metrics

    real = metrics.ais_log_likelihood

    def disagreeing(model, v, **kw):
        value, z = real(model, v, **kw)
        z = dataclasses.replace(z, warning="AIS estimates of log Z from different bases disagree (test)")
        warnings.warn(z.warning, ais.AISDisagreement)
        return value, z

    monkeypatch.setattr(metrics, "ais_log_likelihood", disagreeing)
    assert cli.main(["evaluate", str(run_dir), "--json", "--exact-max-units", "4"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [n for n in result["notes"] if "disagree" in n] == ["AIS estimates of log Z from different bases "
                                                               "disagree (test)"]
    assert cli.main(["evaluate", str(run_dir), "--exact-max-units", "4"]) == 0
    out, err = capsys.readouterr()
    assert out.count("disagree") == 1 and "note: AIS estimates" in out and "disagree" not in err


def test_sample_writes_a_png_grid(run_dir, tmp_path, capsys):
    out = tmp_path / "s.png"
    assert cli.main(["sample", str(run_dir), "--n", "16", "--k", "20", "--out", str(out), "--scale", "1"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    image = np.asarray(Image.open(out))
    side = 4 * (8 + 1) + 1                      # 4 x 4 tiles of 8 x 8 pixels, 1-pixel padding
    assert image.shape == (side, side)
    assert set(np.unique(image)) <= {0, 255}    # Bernoulli samples are binary; padding is white
    assert cli.main(["sample", str(run_dir), "--n", "4", "--k", "5"]) == 0
    default = Path(capsys.readouterr().out.strip())
    assert default.parent == run_dir and Image.open(default).size == (4 * (2 * 9 + 1),) * 2   # auto scale 4


def test_variants_and_datasets_tables(capsys):
    assert cli.main(["variants"]) == 0
    text = capsys.readouterr().out
    assert all(name in text for name in el.VARIANTS) and "Hinton 2002" in text
    assert cli.main(["variants", "RBM"]) == 0
    text = capsys.readouterr().out
    for p in el.VARIANTS["RBM"].schema:
        assert p.name in text and p.help in text
    assert cli.main(["variants", "RBM", "--markdown"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| name | type | default | range | live | help |"
    assert "| lr | float | 0.1 | [1e-05, 1] | yes |" in "\n".join(lines)
    assert cli.main(["datasets"]) == 0
    text = capsys.readouterr().out
    assert all(name in text for name in el.datasets.names())
    with pytest.raises(SystemExit) as exc:
        cli.main(["variants", "NoSuchRBM"])
    assert exc.value.code == 2 and "RBM" in capsys.readouterr().err


def _train_parser(variant):
    parser = cli.build_parser(variant)
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return sub.choices["train"]


@pytest.mark.parametrize("variant", list(el.VARIANTS))
def test_generated_flags_match_the_schema(variant):
    parser = _train_parser(variant)
    help_text = " ".join(parser.format_help().split())
    for p in el.VARIANTS[variant].schema:
        option = "--" + p.name.replace("_", "-")
        action = parser._option_string_actions[option]
        assert action.dest == p.name and action.default is None
        assert " ".join(p.help.split()) in help_text and f"default: {p.default}" in help_text
    # values are parsed and validated by the Param itself
    args = parser.parse_args(["--lr", "0.01", "--k", "3", "--sampler", "pcd"])
    assert (args.lr, args.k, args.sampler) == (0.01, 3, "pcd")


@pytest.mark.parametrize("argv, words", [
    (["--lr", "-1"], ["--lr", "'lr'"]),
    (["--k", "0"], ["--k", "'k'"]),
    (["--dataset", "no-such-data"], ["no-such-data", "digits", "bars-and-stripes"]),
    (["--dataset", "two-moons"], ["'real'", "GaussianRBM"]),
    (["--dataset-option", "bogus=1"], ["bogus", "binarize"]),
    (["--dataset-option", "binarize"], ["KEY=VALUE"]),
])
def test_bad_input_exits_2_naming_the_problem(argv, words, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["train", "--epochs", "1", "--out", str(tmp_path / "r"), *argv])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "error:" in err
    for word in words:
        assert word in err
    assert not (tmp_path / "r" / "checkpoint.pt").exists()


def test_run_folder_api(run_dir, tmp_path):
    a = RunFolder.create(tmp_path, "RBM", "digits")
    b = RunFolder.create(tmp_path, "RBM", "digits")           # same second: still a new folder
    assert a.path != b.path and a.path.is_dir() and b.path.is_dir()
    a.write_config({"variant": "RBM", "dataset": {"name": "digits"}, "x": float("nan")})
    assert a.read_config()["x"] == "nan"                      # strict JSON on disk
    assert [r.path for r in RunFolder.list_runs(tmp_path)] == [a.path]  # b has no config yet
    with pytest.raises(FileExistsError, match="--resume"):
        RunFolder.create(out=a.path)
    with pytest.raises(FileNotFoundError, match="not an energylab run folder"):
        RunFolder.open(tmp_path / "nothing")
    everything = RunFolder.open(run_dir / "checkpoint.pt").read()
    assert everything["config"]["variant"] == "RBM" and len(everything["history"]) > 0
    assert {"weights", "samples", "reconstructions"} <= set(everything["images"])


def test_installed_entry_point(run_dir):
    script = shutil.which("energylab", path=str(Path(sys.executable).parent))
    assert script, "the console script is missing: run .venv/bin/pip install -e . --no-deps"
    done = subprocess.run([script, "evaluate", str(run_dir), "--json"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["metrics"]["pseudo_log_likelihood"]["method"] == "exact"


def test_data_kind_decides_what_can_train_and_a_stack_picks_its_first_layer(tmp_path, capsys):
    """An RBM refuses real-valued data, naming the variants that fit; a DBN on real data gets a
    Gaussian first layer unless told otherwise, and a wrong first layer names the right ones."""
    with pytest.raises(SystemExit) as exc:
        cli.main(["train", "--variant", "RBM", "--dataset", "two-moons", "--quiet", "--out", str(tmp_path / "a")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "'real'" in err and "GaussianRBM" in err
    with pytest.raises(SystemExit) as exc:
        cli.main(["train", "--variant", "DBN", "--first-layer", "RBM", "--dataset", "two-moons", "--quiet",
                  "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "first_layer=RBM" in err and "GaussianRBM" in err
    assert cli.main(["train", "--variant", "DBN", "--dataset", "two-moons", "--hidden-layers", "8,4", "--epochs",
                     "1", "--quiet", "--out", str(tmp_path / "c")]) == 0
    config = RunFolder(tmp_path / "c").read_config()
    assert config["model"]["first_layer"] == "GaussianRBM"
    model = el.load(tmp_path / "c" / "checkpoint.pt")
    assert type(model.layers[0].visible).__name__.endswith("Gaussian")
    dbn = el.VARIANTS["DBN"]
    assert "real" in dbn.data_kinds and dbn.kinds_for({"first_layer": "RBM"}) == ("binary", "unit")
    assert dbn.defaults_for_kind("binary") == {} and dbn.defaults_for_kind("real") == {"first_layer": "GaussianRBM"}


# -- one run record: every command on a dashboard run ------------------------------------------
def _dashboard_run(runs_dir: Path, epochs: int = 1) -> Path:
    """A run folder as the dashboard wrote it before schema 2 (config.json: "dataset": "<name>" plus
    "dataset_options", "source": "dashboard"; no image shape), with a checkpoint of a briefly trained
    model made by the engine, history and summary as the worker writes them."""
    folder = RunFolder.create(runs_dir, "RBM", "digits")
    variant = el.VARIANTS["RBM"]
    training = {**variant.defaults("training"), "batch_size": 128, "epochs": epochs}
    (folder.path / "config.json").write_text(json.dumps({
        "id": folder.name, "variant": "RBM", "dataset": "digits", "dataset_options": {},
        "model": {"n_hidden": 8}, "training": training, "device": "auto", "eval_every": 100,
        "source": "dashboard", "resume_from": None, "created": "2024-05-01 12:00:00"}))
    data = el.datasets.load("digits")
    torch.manual_seed(0)
    trainer = el.Trainer(el.make("RBM", data.n_visible, n_hidden=8), device="cpu", **training)
    trainer.fit(data)
    trainer.save_checkpoint(folder.checkpoint)
    folder.write_history(trainer.history)
    folder.write_summary({"status": "stopped", "step": trainer.step, "epoch": trainer.epoch,
                          "final": trainer.history.last() or {}})
    return folder.path


@pytest.fixture
def dashboard_run(tmp_path):
    return _dashboard_run(tmp_path / "runs")


def test_every_command_works_on_a_dashboard_run(dashboard_run, run_dir, tmp_path, capsys):
    runs_dir = dashboard_run.parent
    assert cli.main(["evaluate", str(dashboard_run)]) == 0                  # crashed after computing before
    text = capsys.readouterr().out
    assert "(RBM on digits)" in text and "exact log-likelihood" in text
    assert cli.main(["evaluate", str(dashboard_run), "--json"]) == 0
    m = json.loads(capsys.readouterr().out)["metrics"]
    assert m["exact_log_likelihood"]["value"] == pytest.approx(_exact_test_ll(dashboard_run), abs=1e-9)

    out = tmp_path / "s.png"                                                # no image shape in the record:
    assert cli.main(["sample", str(dashboard_run), "--n", "16", "--k", "5", "--out", str(out),   # the data say
                     "--scale", "1"]) == 0
    assert np.asarray(Image.open(out)).shape == (4 * 9 + 1,) * 2

    shutil.copytree(run_dir, runs_dir / "cli-run")                          # a command-line run beside it
    assert cli.main(["runs", "--runs-dir", str(runs_dir)]) == 0            # AttributeError before
    rows = capsys.readouterr().out.splitlines()
    assert any(dashboard_run.name in r and "RBM" in r and "digits" in r and "stopped" in r for r in rows)
    assert any("cli-run" in r and "finished" in r for r in rows)

    step = checkpoint.read(dashboard_run / "checkpoint.pt")["position"][0]
    assert cli.main(["train", "--resume", str(dashboard_run), "--epochs", "1", "--quiet"]) == 0
    assert checkpoint.read(dashboard_run / "checkpoint.pt")["position"][0] == step + STEPS_PER_EPOCH
    record = RunFolder(dashboard_run).read_record()
    assert record.source == "dashboard" and record.id == dashboard_run.name    # still the dashboard's run
    assert record.resumed[0]["from_step"] == step and record.eval_every == 100
    assert json.loads((dashboard_run / "config.json").read_text())["schema_version"] == 2


@pytest.mark.parametrize("text", ["[]", "null", '"text"', "{not json", '{"variant": "RBM"}',
                                  '{"variant": "RBM", "dataset": {"options": {}}}',
                                  '{"variant": "Nope", "dataset": "digits"}'])
def test_runs_lists_an_unreadable_folder_with_its_reason(text, run_dir, tmp_path, capsys):
    shutil.copytree(run_dir, tmp_path / "good")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text(text)
    assert cli.main(["runs", "--runs-dir", str(tmp_path)]) == 0
    rows = capsys.readouterr().out.splitlines()
    bad = next(r for r in rows if str(tmp_path / "bad") in r)
    assert "unreadable: " in bad and "config.json" in bad and "fix:" in bad
    assert any(str(tmp_path / "good") in r and "finished" in r for r in rows)
    for command in (["evaluate", str(tmp_path / "bad")], ["sample", str(tmp_path / "bad")],
                    ["train", "--resume", str(tmp_path / "bad")]):
        if command[0] == "train":       # a resume needs a checkpoint first
            shutil.copy(run_dir / "checkpoint.pt", tmp_path / "bad" / "checkpoint.pt")
        with pytest.raises(SystemExit) as exc:
            cli.main(command)
        err = capsys.readouterr().err
        assert exc.value.code == 2 and "config.json" in err and "Traceback" not in err, command


def test_dataset_paths_from_a_record_stay_in_the_data_or_working_folder(tmp_path, monkeypatch, capsys):
    """A file dataset typed on the command line is recorded with its absolute path; reading the run
    back works from the folder it was made in (or with ENERGYLAB_DATA holding it), and is refused
    elsewhere, naming the option and the fix."""
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    np.save(project / "bars.npy", el.datasets.load("bars-and-stripes", size=3).train.numpy())
    monkeypatch.setenv("ENERGYLAB_DATA", str(tmp_path / "data"))
    monkeypatch.chdir(project)
    assert cli.main(["train", "--dataset", "file", "--dataset-option", "path=bars.npy", "--n-hidden", "4",
                     "--epochs", "1", "--quiet", "--out", "run"]) == 0
    record = RunFolder(project / "run").read_record()
    assert record.dataset.options["path"] == str(project / "bars.npy")
    assert cli.main(["evaluate", "run", "--json", "--split", "train"]) == 0
    capsys.readouterr()
    monkeypatch.chdir(elsewhere)
    with pytest.raises(SystemExit) as exc:
        cli.main(["evaluate", str(project / "run"), "--split", "train"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "dataset.options.path" in err and "ENERGYLAB_DATA" in err
    monkeypatch.setenv("ENERGYLAB_DATA", str(project))
    assert cli.main(["evaluate", str(project / "run"), "--json", "--split", "train"]) == 0


# -- energylab dashboard -------------------------------------------------------------------------
def test_dashboard_flags_are_the_projects_streamlit_settings():
    import tomllib
    from energylab.cli import dashboard as cli_dashboard
    toml = tomllib.loads((Path(cli.__file__).parents[2] / ".streamlit" / "config.toml").read_text())
    flat = {f"{section}.{key}": str(value).lower() for section, values in toml.items()
            for key, value in values.items()}
    assert flat.pop("server.address") == cli_dashboard.LOOPBACK
    assert flat == cli_dashboard.SETTINGS


def _launch(monkeypatch, argv):
    """Run `energylab dashboard ...` in-process with the exec replaced by a recorder."""
    from energylab.cli import dashboard as cli_dashboard
    seen = {}
    monkeypatch.setattr(cli_dashboard.os, "execve", lambda exe, args, env: seen.update(args=args, env=env))
    assert cli.main(["dashboard", *argv]) == 0
    return seen


def test_dashboard_binds_loopback_unless_told_and_warns_when_told(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    seen = _launch(monkeypatch, ["--runs-dir", "class-runs", "--port", "8600"])
    args = seen["args"]
    option = lambda name: args[args.index(name) + 1]
    assert args[1:4] == ["-m", "streamlit", "run"] and Path(args[4]).name == "app.py" and Path(args[4]).is_file()
    assert option("--server.address") == "127.0.0.1" and option("--server.port") == "8600"
    assert option("--client.toolbarMode") == "minimal" and option("--browser.gatherUsageStats") == "false"
    assert seen["env"]["ENERGYLAB_RUNS_DIR"] == str(tmp_path / "class-runs")
    assert "warning" not in capsys.readouterr().err
    seen = _launch(monkeypatch, ["--address", "0.0.0.0"])
    assert seen["args"][seen["args"].index("--server.address") + 1] == "0.0.0.0"
    assert "warning: --address 0.0.0.0 exposes" in capsys.readouterr().err


def test_dashboard_missing_app_is_one_clear_line(monkeypatch, tmp_path, capsys):
    from energylab.cli import dashboard as cli_dashboard
    monkeypatch.setattr(cli_dashboard, "__file__", str(tmp_path / "site-packages" / "energylab" / "cli" / "dashboard.py"))
    with pytest.raises(SystemExit) as exc:
        cli.main(["dashboard"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and "dashboard" in err[-1] and "app.py is missing" in err[-1]


def test_dashboard_starts_from_any_folder_on_loopback_only(tmp_path):
    import socket
    import time
    import urllib.request

    import psutil
    with socket.socket() as s:                          # a free port
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = Path(cli.__file__).parents[2]
    env = dict(os.environ, PYTHONPATH=str(root))
    server = subprocess.Popen([sys.executable, "-m", "energylab", "dashboard", "--port", str(port),
                               "--runs-dir", "r"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
    try:
        deadline, healthy = time.monotonic() + 90, False
        while time.monotonic() < deadline and server.poll() is None and not healthy:
            try:
                healthy = urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).read() == b"ok"
            except OSError:
                time.sleep(0.5)
        assert healthy, server.stdout.read1().decode() if server.poll() is not None else "no health answer"
        proc = psutil.Process(server.pid)                 # the exec kept the pid: this is the server
        listening = [c.laddr for c in proc.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
        assert listening and all(a.ip == "127.0.0.1" for a in listening), listening
        cmdline = proc.cmdline()
        assert cmdline[cmdline.index("--client.toolbarMode") + 1] == "minimal"      # no Deploy button
        assert proc.environ()["ENERGYLAB_RUNS_DIR"] == str(tmp_path / "r")
    finally:
        server.kill()
        server.wait(10)
