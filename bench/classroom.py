"""A class on one server: memory of the server and of each training process with 12 sessions.

    .venv/bin/python -m bench.classroom [--sessions 12] [--cap 2]

Starts `energylab dashboard` on a free loopback port (cap `--cap`), opens `--sessions`
Chromium pages (one browser session each: its own owner key), presses Train in each
(RBM on digits, the dashboard's defaults), waits until `--cap` runs train and the rest
queue, then samples the resident memory (RSS) of the server process and of each
training process for a few seconds. Prints a table and writes bench/results/classroom.json.
The browser runs on the same machine, so its memory is reported apart.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil
from playwright.sync_api import sync_playwright

from bench.common import dashboard_server, save_json

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_dashboard_browser import ARGS, CHROMIUM, wait_until  # noqa: E402

MB = 1024 * 1024


def workers(server: psutil.Process) -> list[psutil.Process]:
    """The training processes: the server's children that run energylab's worker (spawned)."""
    found = []
    for child in server.children(recursive=True):
        try:
            if "multiprocessing" in " ".join(child.cmdline()) and "resource_tracker" not in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            continue
    return found


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=12)
    parser.add_argument("--cap", type=int, default=2)
    parser.add_argument("--sample-seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    result = {}
    runs = Path(tempfile.mkdtemp(prefix="energylab-classroom-")) / "runs"
    with dashboard_server(runs, args.cap) as (url, server):
        proc = psutil.Process(server.pid)
        idle = proc.memory_info().rss / MB
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            pages = []
            for _ in range(args.sessions):
                context = browser.new_context(viewport={"width": 1440, "height": 900})   # one session each
                page = context.new_page()
                page.goto(url)
                page.get_by_text("What to do").wait_for(timeout=120_000)
                page.get_by_test_id("stSidebar").get_by_role("button", name="Train").click()
                pages.append(page)
            wait_until(lambda: len(workers(proc)) >= args.cap, 180, "the capped runs to start")
            queued = wait_until(lambda: sum(pg.get_by_text("position").count() > 0 for pg in pages)
                                >= args.sessions - args.cap, 180, "the others to queue")
            server_rss, worker_rss = [], []
            deadline = time.monotonic() + args.sample_seconds
            while time.monotonic() < deadline:
                server_rss.append(proc.memory_info().rss / MB)
                worker_rss += [w.memory_info().rss / MB for w in workers(proc)]
                time.sleep(0.5)
            chromium = sum(c.memory_info().rss for c in psutil.Process().children(recursive=True)
                           if "chromium" in c.name()) / MB
            result = {"sessions": args.sessions, "cap": args.cap, "queued_pages": int(queued),
                      "server_idle_mb": round(idle, 1), "server_mb": round(statistics.median(server_rss), 1),
                      "worker_mb_median": round(statistics.median(worker_rss), 1),
                      "worker_mb_max": round(max(worker_rss), 1), "chromium_mb": round(chromium, 1)}
            browser.close()
    print(f"{result['sessions']} sessions, cap {result['cap']}: server {result['server_mb']} MB "
          f"(idle {result['server_idle_mb']} MB); each training process {result['worker_mb_median']} MB "
          f"(max {result['worker_mb_max']} MB); Chromium with {result['sessions']} pages {result['chromium_mb']} MB")
    save_json("classroom", result)
    return result


if __name__ == "__main__":
    main()
