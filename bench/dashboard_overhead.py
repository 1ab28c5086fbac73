"""What does watching cost? Training throughput of one dashboard run with no page, one tab, four tabs.

    .venv/bin/python -m bench.dashboard_overhead [--phase-seconds 25]

Starts `streamlit run` on a free loopback port, presses Train in headless Chromium
(RBM on digits), then measures the *same* run's steps/s in alternating phases:
no tab, one tab, no tab, ... (one tab three times), four tabs (attached to the run by its
id), no tab; each page phase is compared with the no-page phases around it.
The rate comes from the run folder's summary.json, which the training process
rewrites every ~10 s with its step and wall time, so measuring adds no load.
The browser runs on the same machine as the server, as with `make dashboard`. Target: the page costs at most 15 %.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from test_dashboard_browser import ARGS, CHROMIUM, free_port, wait_until  # noqa: E402


def summary(runs: Path) -> tuple[int, float]:
    folder = next(p for p in runs.iterdir() if (p / "config.json").is_file())
    data = json.loads((folder / "summary.json").read_text())
    return data["step"], data["updated"]


def rate(runs: Path, seconds: float) -> float:
    """steps/s between two summary.json writes at least `seconds` apart."""
    first = summary(runs)
    wait_until(lambda: summary(runs)[1] > first[1], 30, "a fresh summary.json")
    start = summary(runs)
    wait_until(lambda: summary(runs)[1] - start[1] >= seconds, seconds + 30, "the phase to end")
    end = summary(runs)
    return (end[0] - start[0]) / (end[1] - start[1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phase-seconds", type=float, default=25.0)
    parser.add_argument("--phases", default="0,1,0,1,0,1,0,4,0",
                        help="tabs open in each phase, comma separated (0 = no page)")
    args = parser.parse_args()
    runs = Path(tempfile.mkdtemp()) / "runs"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard" / "app.py"), "--server.address",
         "127.0.0.1", "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats",
         "false"], cwd=ROOT, env=dict(os.environ, ENERGYLAB_RUNS_DIR=str(runs)),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    phases = []
    try:
        import urllib.request
        wait_until(lambda: urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200, 60, "server")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            sidebar = page.get_by_test_id("stSidebar")
            sidebar.get_by_text("Advanced settings").click()          # open the expander
            epochs = page.locator('[class*="st-key-cfg"][class*="epochs"] input')
            epochs.fill("10000")                                         # long enough for every phase
            epochs.press("Enter")
            batch = page.locator('[class*="st-key-cfg"][class*="batch_size"] input')
            batch.fill("16")                         # 90 steps per epoch: the run outlasts all the phases
            batch.press("Enter")
            sidebar.get_by_text("Architecture").click()
            hidden = page.locator('[class*="st-key-cfg"][class*="n_hidden"] input')
            hidden.fill("512")                       # 8x8 digits, 512 hidden: a run that lasts minutes
            hidden.press("Enter")
            time.sleep(1.0)
            sidebar.get_by_role("button", name="Train").click()
            page.get_by_text("running", exact=True).first.wait_for(timeout=90_000)
            wait_until(lambda: any(runs.glob("*/summary.json")), 60, "the run's first summary")
            run_id = next(runs.glob("*/summary.json")).parent.name

            # Alternate phases: the machine's other load drifts, so each page phase is
            # compared with the mean of the no-page phases on either side of it.
            tabs = [page] + [browser.new_page(viewport={"width": 1400, "height": 1000}) for _ in range(3)]

            def show(n):
                for i, tab in enumerate(tabs):
                    target = f"{url}/?run={run_id}" if i < n else "about:blank"
                    if tab.url != target:
                        tab.goto(target, wait_until="commit", timeout=120_000)
                time.sleep(3.0)                                  # let the pages load before measuring

            for n in [int(x) for x in args.phases.split(",")]:
                show(n)
                phases.append((n, rate(runs, args.phase_seconds)))
                print(f"{n} tab(s): {phases[-1][1]:.0f} steps/s", flush=True)
            browser.close()
    finally:
        server.terminate()
        server.wait(15)
    print(f"\n{'phase':<8} {'steps/s':>8} {'vs neighbouring no-page phases':>32}")
    ratios = {}
    for i, (n, value) in enumerate(phases):
        if n == 0:
            print(f"{'no page':<8} {value:8.0f}")
            continue
        around = [phases[j][1] for j in (i - 1, i + 1) if 0 <= j < len(phases) and phases[j][0] == 0]
        base = sum(around) / len(around)
        ratios.setdefault(n, []).append(value / base)
        print(f"{f'{n} tab(s)':<8} {value:8.0f} {value / base:32.2f}")
    for n, r in ratios.items():
        print(f"throughput with {n} tab(s) open: median {sorted(r)[len(r) // 2]:.2f} x the throughput "
              f"without the page (each: {', '.join(f'{x:.2f}' for x in r)})")
    return phases


if __name__ == "__main__":
    main()
