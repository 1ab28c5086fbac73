"""How long `import energylab` takes next to `import torch`, each in fresh interpreters.

    python -m bench.import_time [--reps 5]

Every worker process of the dashboard imports the engine before its first picture, so the
import is on the path of "press Train, see a mosaic". The target is at most 1.2x `import torch`
(torch is the floor: energylab cannot import faster than its one heavy dependency). Runs
alternate torch / energylab so a noisy neighbour slows both alike; the median of each is taken.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.common import summary

ROOT = Path(__file__).resolve().parents[1]


def import_seconds(module: str) -> float:
    """Wall time of one fresh interpreter that imports `module` and exits (start-up included)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True, env=env, cwd=ROOT)
    return time.perf_counter() - start


def run(reps: int = 5) -> dict:
    times = {"torch": [], "energylab": []}
    for _ in range(reps):
        for module in times:
            times[module].append(import_seconds(module))
    out = {module: summary(t) for module, t in times.items()}
    out["ratio"] = out["energylab"]["median_s"] / out["torch"]["median_s"]
    return out


def markdown(result: dict) -> list[str]:
    return [f"`import torch` {result['torch']['median_s']:.2f} s, `import energylab` "
            f"{result['energylab']['median_s']:.2f} s (median of {result['torch']['reps']} fresh interpreters "
            f"each): ratio {result['ratio']:.2f} (target ≤ 1.2)", ""]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args(argv)
    result = run(args.reps)
    print("\n".join(markdown(result)))
    return result


if __name__ == "__main__":
    main()
