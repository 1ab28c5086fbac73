"""`energylab dashboard`: start the Streamlit app with the project's settings, from any folder.

    energylab dashboard                          # http://127.0.0.1:8501, runs in ./runs
    energylab dashboard --port 8600 --runs-dir /srv/class/runs
    energylab dashboard --address 0.0.0.0        # the whole network can reach it (a warning says so)

`streamlit run` reads `.streamlit/config.toml` only from the folder it is started in,
so started elsewhere it used to bind every interface and show the Deploy button. This
command passes the settings as flags instead (`SETTINGS`, the same values as the
repository's `.streamlit/config.toml`, which a test keeps in step): loopback only
unless `--address` says otherwise, headless, usage statistics off, the minimal
toolbar (no Deploy button), no garbage collection after every rerun.

The app is `dashboard/app.py` next to the `energylab/` package in a source checkout
(it is not part of the installed package); without it the command stops with one line
that says so. `--runs-dir` becomes `ENERGYLAB_RUNS_DIR` (made absolute) for the app.
"""
from __future__ import annotations

import importlib.util
import ipaddress
import os
import sys
from pathlib import Path

LOOPBACK = "127.0.0.1"
# The project's Streamlit settings (keep in step with .streamlit/config.toml).
SETTINGS = {"server.headless": "true", "browser.gatherUsageStats": "false", "client.toolbarMode": "minimal",
            "runner.postScriptGC": "false"}


def app_path() -> Path:
    """dashboard/app.py of this checkout; FileNotFoundError (one line) when it is not there."""
    app = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
    if not app.is_file():
        raise FileNotFoundError(f"the dashboard is not here ({app} is missing): it ships with the source "
                                "checkout, not the installed package; clone the repository and run "
                                "`energylab dashboard` (or `make dashboard`) from that copy")
    return app


def is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def command(args) -> tuple[list[str], dict]:
    """(argv, environment) of the Streamlit server `energylab dashboard` starts."""
    app = app_path()
    if importlib.util.find_spec("streamlit") is None:      # found, not imported: the engine never imports it
        raise FileNotFoundError("Streamlit is not installed; `pip install -e .` (or `make dashboard`) "
                                "installs it")
    argv = [sys.executable, "-m", "streamlit", "run", str(app), "--server.address", args.address,
            "--server.port", str(args.port)]
    for key, value in SETTINGS.items():
        argv += [f"--{key}", value]
    env = dict(os.environ, ENERGYLAB_RUNS_DIR=str(Path(args.runs_dir).expanduser().resolve()))
    root = str(app.parent.parent)        # the app imports energylab from this checkout
    env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return argv, env


def cmd_dashboard(args) -> int:
    argv, env = command(args)
    if not is_loopback(args.address):
        print(f"energylab dashboard: warning: --address {args.address} exposes the dashboard, every run in "
              f"{env['ENERGYLAB_RUNS_DIR']} and the right to start runs to the network; use it only on a "
              "network you trust", file=sys.stderr)
    print(f"energylab dashboard: http://{'localhost' if is_loopback(args.address) else args.address}:{args.port} "
          f"(runs in {env['ENERGYLAB_RUNS_DIR']})", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os.execve(sys.executable, argv, env)     # the server replaces this process: Ctrl-C and signals reach it
