"""Time to first picture: from the Train click to the first weight mosaic on the page, in a browser.

    .venv/bin/python -m bench.first_picture [--reps 5]

Starts `energylab dashboard` (which keeps one training process warm: the engine imported
before Train is pressed), opens the page in headless Chromium at 1440x900, and `--reps`
times: press Train (RBM on digits, the dashboard's defaults), wait until the weight mosaic
is drawn, then Stop and New run. Also times
`import torch` and `import energylab` in fresh interpreters (bench/import_time.py).
Prints medians; writes bench/results/first_picture.json.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from bench.common import dashboard_server, save_json

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_dashboard_browser import ARGS, CHROMIUM  # noqa: E402


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args(argv)
    picture = []
    with dashboard_server(Path(tempfile.mkdtemp(prefix="energylab-first-picture-")) / "runs") as (url, _):
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(url)
            page.get_by_text("What to do").wait_for(timeout=120_000)
            time.sleep(15)                       # the first warm process has imported the engine
            for _ in range(args.reps):
                t0 = time.perf_counter()
                page.get_by_test_id("stSidebar").get_by_role("button", name="Train").click()
                page.locator("img.el-picture").first.wait_for(timeout=120_000)
                picture.append(time.perf_counter() - t0)
                page.locator(".st-key-stop button").first.click()
                page.get_by_text("stopped", exact=True).first.wait_for(timeout=60_000)
                page.get_by_role("button", name="New run").click()
                page.get_by_text("What to do").wait_for(timeout=60_000)
                time.sleep(10)                   # the replacement warm process imports the engine
            browser.close()
    from bench import import_time
    imports = import_time.run(args.reps)
    print("\n".join(import_time.markdown(imports)))
    result = {"reps": args.reps, "first_picture_s": [round(x, 2) for x in picture],
              "median_first_picture_s": round(statistics.median(picture), 2), "imports": imports}
    print(f"Train click -> first mosaic on the page: median {result['median_first_picture_s']} s "
          f"{result['first_picture_s']}")
    save_json("first_picture", result)
    return result


if __name__ == "__main__":
    main()
