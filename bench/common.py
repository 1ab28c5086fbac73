"""Shared pieces of the benchmarks: MNIST-shaped data made offline, timing, result files.

Speed is measured as ratios taken in one run on the same data, never by timed
asserts in tests: these machines are shared and noisy, ratios much less so.
"""
from __future__ import annotations

import contextlib
import json
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import energylab as el

RESULTS = Path(__file__).resolve().parent / "results"


def mnist_like(n: int = 60000, seed: int = 0) -> tuple[torch.Tensor, str]:
    """(n, 784) values in [0, 1]: MNIST itself when its files are present, else bundled digits
    upsampled to 20x20, placed at a random offset in a 28x28 frame, with mild noise."""
    try:
        data = el.datasets.load("mnist", download=False)
        return data.train[:n].contiguous(), "MNIST (train split)"
    except Exception:
        pass
    g = torch.Generator().manual_seed(seed)
    digits = el.datasets.load("digits")
    base = torch.cat([digits.train, digits.test]).reshape(-1, 1, 8, 8)
    big = F.interpolate(base, size=(20, 20), mode="bilinear", align_corners=False)
    pick = torch.randint(len(big), (n,), generator=g)
    out = torch.zeros(n, 1, 28, 28)
    shifts = torch.randint(0, 9, (n, 2), generator=g)
    for dy in range(9):               # place each image at its offset, one offset group at a time
        for dx in range(9):
            rows = ((shifts[:, 0] == dy) & (shifts[:, 1] == dx)).nonzero().flatten()
            out[rows, :, dy:dy + 20, dx:dx + 20] = big[pick[rows]]
    out = (out + 0.05 * torch.rand(out.shape, generator=g)).clamp(0, 1)
    return out.reshape(n, 784).contiguous(), "bundled digits upsampled to 28x28 (MNIST not present)"


def timed(fn, *args, **kwargs) -> float:
    start = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - start


def summary(times: list[float]) -> dict:
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
            "reps": len(times), "all_s": times}


def machine() -> dict:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "torch": torch.__version__, "threads": torch.get_num_threads(), "gpu": gpu,
            "date": time.strftime("%Y-%m-%d %H:%M")}


def write(name: str, result: dict, markdown: str) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2))
    (RESULTS / f"{name}.md").write_text(markdown)


@contextlib.contextmanager
def dashboard_server(runs: Path, max_runs: int = 2):
    """`energylab dashboard` on a free loopback port with its runs in `runs`; yields (url, process).
    The server is stopped (SIGTERM: its runs save) when the block ends."""
    import os
    import subprocess
    import sys
    import urllib.request

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from test_dashboard_browser import free_port, wait_until
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "energylab", "dashboard", "--port", str(port), "--runs-dir",
                               str(runs)], cwd=Path(__file__).resolve().parents[1],
                              env=dict(os.environ, ENERGYLAB_MAX_RUNS=str(max_runs)),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200, 90, "server")
        yield url, server
    finally:
        server.terminate()
        server.wait(60)


def save_json(name: str, result: dict) -> Path:
    """bench/results/<name>.json"""
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    path = out / f"{name}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path
