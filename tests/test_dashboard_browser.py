"""End to end in a real browser: `streamlit run` on a free loopback port, driven by Debian's
Chromium through Playwright (never `playwright install`; `make test` installs chromium).

Choose a variant, press Train, wait until the curves gain points, move the learning-rate
slider, check the run reports the new value and the curve carries the change marker,
save screenshots into test-output/, stop the run. The page redraws every second, so
every predicate re-queries the DOM (a chart may be re-mounted between two looks) and
every wait has a deadline.
"""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "test-output"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# Points in all plotly traces of the page, and the change-marker labels: read from the
# graph divs plotly decorates (`.data`, `.layout`), re-found at every call.
CURVE_POINTS = """() => Array.from(document.querySelectorAll('.js-plotly-plot'))
    .map(g => (g.data || []).reduce((n, t) => n + ((t.x && t.x.length) || 0), 0))
    .reduce((a, b) => Math.max(a, b), 0)"""
MARKERS = """() => Array.from(document.querySelectorAll('.js-plotly-plot'))
    .flatMap(g => ((g.layout && g.layout.annotations) || []).map(a => a.text || ''))"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except Exception as exc:       # a re-mounted element between two looks: look again
            last = exc
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


def test_train_retune_and_stop_in_chromium(tmp_path):
    assert Path(CHROMIUM).exists(), "Debian chromium is missing: run `make system-deps` (apt-get install chromium)"
    OUT.mkdir(exist_ok=True)
    port = free_port()
    env = dict(os.environ, ENERGYLAB_RUNS_DIR=str(tmp_path / "runs"), ENERGYLAB_MAX_RUNS="1")
    log = open(tmp_path / "server.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard" / "app.py"),
         "--server.address", "127.0.0.1", "--server.port", str(port), "--server.headless", "true",
         "--browser.gatherUsageStats", "false"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200, 60,
                   "the server's health endpoint (it only proves the server is up)")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            # every request the page makes: nothing may leave the machine, no image may fail
            external, failed = [], []
            page.on("request", lambda r: None if r.url.startswith((url, "data:", "blob:")) else external.append(r.url))
            page.on("requestfailed", lambda r: failed.append(r.url))
            page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
            page.goto(url)
            page.get_by_text("What to do").wait_for(timeout=60_000)
            page.screenshot(path=str(OUT / "dashboard-first-screen.png"))

            # choose the variant (the registry's first entry) and start training
            sidebar = page.get_by_test_id("stSidebar")
            sidebar.get_by_test_id("stSelectbox").first.click()
            page.get_by_role("option", name="RBM", exact=True).click()
            sidebar.get_by_role("button", name="Train").click()
            page.get_by_text("running", exact=True).first.wait_for(timeout=90_000)

            first = wait_until(lambda: page.evaluate(CURVE_POINTS), 90, "the curves to appear")
            wait_until(lambda: page.evaluate(CURVE_POINTS) > first, 90, "the curves to gain points")

            # the first screen shows the learning: the weight mosaic and the curves lie within 1440x900
            mosaic = page.locator("img.el-picture").first.bounding_box()
            chart = page.locator(".js-plotly-plot").first.bounding_box()
            assert mosaic and mosaic["y"] + mosaic["height"] <= 900 and mosaic["width"] >= 250, mosaic
            assert chart and chart["y"] + chart["height"] * 0.5 <= 900 and chart["y"] < 400, chart
            page.screenshot(path=str(OUT / "dashboard-first-screen-training.png"))

            # a second page watches the run (its link without the owner's key) for 30 s beside the
            # owner's: it is read-only, and neither page writes anything to the run
            from urllib.parse import parse_qs, urlparse
            run_id = parse_qs(urlparse(page.url).query)["run"][0]
            watcher = browser.new_page(viewport={"width": 1440, "height": 900})
            watcher.goto(f"{url}/?run={run_id}")
            watcher.get_by_text("read-only").first.wait_for(timeout=60_000)
            assert watcher.get_by_test_id("stSidebar").get_by_role("slider").count() == 0
            watcher.locator(".st-key-pause button").first.wait_for(timeout=30_000)
            assert watcher.locator(".st-key-pause button").first.is_disabled()
            time.sleep(30)
            history = tmp_path / "runs" / run_id / "history.json"
            wait_until(lambda: history.is_file(), 30, "the run's history file")
            assert json.loads(history.read_text())["changes"] == [], "watching wrote to the run"
            watcher.screenshot(path=str(OUT / "dashboard-watcher.png"))

            # the owner moves the live learning-rate slider one notch left: 0.1 -> 0.05, once
            page.screenshot(path=str(OUT / "dashboard-owner.png"))
            thumb = page.get_by_test_id("stSidebar").get_by_role("slider").first
            thumb.focus()
            thumb.press("ArrowLeft")
            wait_until(lambda: page.locator("text=/lr 0\\.05/").count() > 0, 60, "the run to report lr 0.05")
            wait_until(lambda: any("lr 0.1→0.05" in t for t in page.evaluate(MARKERS)), 60,
                       "the change marker on the curves")
            wait_until(lambda: watcher.locator("text=/lr 0\\.05/").count() > 0, 60, "the watcher to see it")
            time.sleep(12)                   # the run files are rewritten every 10 s
            changes = json.loads(history.read_text())["changes"]
            assert [(c["name"], c["old"], c["new"]) for c in changes] == [("lr", 0.1, 0.05)], changes
            watcher.close()
            # Streamlit scrolls inside its own container: a tall window shows the whole page
            page.set_viewport_size({"width": 1400, "height": 2400})
            time.sleep(2.0)                  # redraws so the pictures show the new state
            page.screenshot(path=str(OUT / "dashboard-training.png"))

            page.locator(".st-key-stop button").first.click()
            page.get_by_text("stopped", exact=True).first.wait_for(timeout=60_000)

            # the Download menu's files arrive in the browser and are what they say
            got = {}
            for name in ("history.csv", "history.json", "weights.png", "checkpoint.pt"):
                page.get_by_role("button", name="Download").first.click()
                with page.expect_download(timeout=60_000) as download:
                    page.get_by_role("button", name=name, exact=True).click()
                got[name] = Path(download.value.path()).read_bytes()
                page.keyboard.press("Escape")
            header = got["history.csv"].decode().splitlines()[0].split(",")
            assert "step" in header and "recon_error" in header
            records = json.loads(got["history.json"])["records"]
            assert records and records[-1]["step"] > 0
            assert got["weights.png"][:8] == b"\x89PNG\r\n\x1a\n"
            ckpt = tmp_path / "downloaded.pt"
            ckpt.write_bytes(got["checkpoint.pt"])
            import energylab as el
            assert el.load(ckpt).n_hidden > 0                 # the stopped run's model, loadable

            # a second run, then the server is stopped (SIGTERM): the run saves on the way out
            page.get_by_role("button", name="New run").click()
            page.get_by_text("What to do").wait_for(timeout=60_000)
            wait_until(lambda: page.evaluate(ADDRESS_RUN) is None, 30, "'New run' to take ?run= out of the address")
            page.get_by_test_id("stSidebar").get_by_role("button", name="Train").click()
            folders = lambda: [p.name for p in (tmp_path / "runs").iterdir() if p.name != run_id]
            second = wait_until(lambda: folders() and folders()[0], 30, "the second run's folder (the click)")
            wait_until(lambda: page.evaluate(ADDRESS_RUN) == second, 30, f"?run={second} in the address")
            page.get_by_text("running", exact=True).first.wait_for(timeout=90_000)
            assert not external, f"the page fetched from outside the machine: {external[:5]}"
            assert not failed, f"requests failed while training: {failed[:5]}"
            browser.close()
        server.terminate()
        server.wait(60)
        summary = json.loads((tmp_path / "runs" / second / "summary.json").read_text())
        assert (summary["status"], summary["checkpoint"]) == ("stopped", True), summary
        assert "server" in summary["why"] and summary["saved_step"] == summary["step"] > 0
        assert el.Trainer.from_checkpoint(tmp_path / "runs" / second / "checkpoint.pt").step == summary["step"]
        log.close()
        assert "Traceback" not in (tmp_path / "server.log").read_text()
        assert "missing ScriptRunContext" not in (tmp_path / "server.log").read_text()
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
        log.close()


# -- a classifier and a stack on the Train page (issue 13) ------------------------------------------
# The plotly graphs of the page by what they draw: a curve's legend name, a heatmap.
GRAPHS = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(g => {
    const r = g.getBoundingClientRect();
    return {y: r.top, bottom: r.bottom, height: r.height, width: r.width,
            names: (g.data || []).map(t => t.name || ''), types: (g.data || []).map(t => t.type || ''),
            points: (g.data || []).reduce((n, t) => n + ((t.x && t.x.length) || 0), 0)};
})"""


class Dashboard:
    """`streamlit run` of the app on a free loopback port, for one test; stopped on exit."""

    def __init__(self, tmp_path):
        self.tmp_path, self.port = tmp_path, free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        env = dict(os.environ, ENERGYLAB_RUNS_DIR=str(self.tmp_path / "runs"), ENERGYLAB_MAX_RUNS="1")
        self.log = open(self.tmp_path / "server.log", "w")
        self.server = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard" / "app.py"),
             "--server.address", "127.0.0.1", "--server.port", str(self.port), "--server.headless", "true",
             "--browser.gatherUsageStats", "false"], cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        wait_until(lambda: urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2).status == 200, 60,
                   "the server's health endpoint")
        return self

    def __exit__(self, *exc):
        self.server.terminate()
        try:
            self.server.wait(60)
        except subprocess.TimeoutExpired:
            self.server.kill()
        self.log.close()
        assert "Traceback" not in (self.tmp_path / "server.log").read_text()


def start_training(page, url, variant):
    page.goto(url)
    page.get_by_text("What to do").wait_for(timeout=60_000)
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_test_id("stSelectbox").first.click()
    page.get_by_role("option", name=variant, exact=True).click()
    time.sleep(1.0)                      # the sidebar redraws for the new variant
    sidebar.get_by_role("button", name="Train").click()
    page.get_by_text("running", exact=True).first.wait_for(timeout=90_000)


def test_a_classifier_shows_accuracy_and_confusion_matrix_on_the_first_screen(tmp_path):
    """DiscriminativeRBM at 1440x900: the accuracy chart and the confusion matrix lie within the first
    screen, the p(y|x) bars beside a picture of the chosen test image, the curve chooser not empty."""
    OUT.mkdir(exist_ok=True)
    with Dashboard(tmp_path) as dash, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        start_training(page, dash.url, "DiscriminativeRBM")
        graphs = lambda: page.evaluate(GRAPHS)
        accuracy = lambda: next((g for g in graphs() if "test accuracy" in g["names"] and g["points"] > 1), None)
        confusion = lambda: next((g for g in graphs() if "heatmap" in g["types"]), None)
        wait_until(lambda: accuracy() and confusion(), 90, "the accuracy curve and the confusion matrix")
        a, c = accuracy(), confusion()
        assert 0 < a["y"] and a["bottom"] <= 900 and a["width"] >= 250, a
        assert 0 < c["y"] and c["bottom"] <= 900 and c["width"] >= 250, c
        bars = next(g for g in graphs() if "bar" in g["types"])
        assert bars["bottom"] <= 900, bars
        image = page.locator("img.el-picture").first.bounding_box()     # the chosen test image, beside its bars
        assert image and image["y"] + image["height"] <= 900 and abs(image["y"] - bars["y"]) < 150, (image, bars)
        # the curve chooser shows its choice once the curves are drawn (no reload: it redraws with them),
        # and its popover stays open while the page redraws
        page.get_by_role("button", name="Curves to draw").click()
        chips = page.get_by_test_id("stMultiSelect").first.locator("[data-tag-index]")
        wait_until(lambda: chips.count() >= 1, 30, "the curve chooser's chips")
        assert "test accuracy" in chips.first.inner_text()
        time.sleep(4)                        # the curves redraw every 3 s
        assert chips.count() >= 1 and page.get_by_test_id("stMultiSelect").first.is_visible()
        page.screenshot(path=str(OUT / "train-classifier-curve-chooser.png"))
        page.keyboard.press("Escape")
        # the confusion matrix follows the training (measured again after the first step)
        wait_until(lambda: page.get_by_text("measured at step 0;").count() == 0, 60, "a later confusion matrix")
        page.screenshot(path=str(OUT / "train-classifier-first-screen.png"))
        # another test image: its bars and picture follow, without a reload
        page.get_by_test_id("stSelectbox").filter(has_text="test image").first.click()
        page.get_by_role("option").nth(7).click()
        wait_until(lambda: page.get_by_text("a 3", exact=True).count() > 0, 30, "the eighth image (a 3)")
        time.sleep(3)                    # the accuracy rises over a few redraws
        page.screenshot(path=str(OUT / "train-classifier-later.png"))
        page.locator(".st-key-stop button").first.click()
        page.get_by_text("stopped", exact=True).first.wait_for(timeout=60_000)
        browser.close()


def test_a_stack_in_its_first_layer_names_it_and_draws_no_black_picture(tmp_path):
    """DBN at 1440x900 while layer 1 trains: the layer in training and each layer's progress on the
    first screen, layer 2 named as waiting instead of a mosaic of random weights."""
    OUT.mkdir(exist_ok=True)
    with Dashboard(tmp_path) as dash, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        start_training(page, dash.url, "DBN")
        page.get_by_text("training now").first.wait_for(timeout=60_000)
        wait_until(lambda: page.evaluate(CURVE_POINTS) > 1, 90, "the curves")
        bar = page.get_by_test_id("stProgress").first.bounding_box()
        assert bar and bar["y"] + bar["height"] <= 900, bar
        assert page.get_by_text("layer 2 · trains after layer 1").count() == 1
        assert page.get_by_text("layer 2 trains after layer 1: no picture until then").count() == 1
        page.screenshot(path=str(OUT / "train-dbn-layer1.png"))
        page.set_viewport_size({"width": 1440, "height": 1800})
        time.sleep(2.0)
        page.screenshot(path=str(OUT / "train-dbn-layer1-whole.png"))
        page.locator(".st-key-stop button").first.click()
        page.get_by_text("stopped", exact=True).first.wait_for(timeout=60_000)
        browser.close()


# -- the address and the Train click after "New run" (issue 13) ---------------------------------------
# Read the address with `location.search` through `page.evaluate`: Playwright's sync `page.url` is the
# last navigation event it has dispatched, and it dispatches events only inside an API call, so a loop
# of `page.url` and `time.sleep` keeps reading the address of before a pushState (measured: 3 of 3
# "missing ?run=" that way, 0 of 25 through `location.search`). The address may also change a moment
# after the new run's page shows (one 0.25 s poll later, 4 times in 25), so it is awaited, never read once.
ADDRESS_RUN = "() => new URLSearchParams(location.search).get('run')"


def test_new_run_then_train_puts_the_new_run_in_the_address_at_every_click(tmp_path):
    """Three times in one tab, with no pause between the clicks: Train starts a run at once (its folder
    appears), the address says ?run=<that run>, Stop, then "New run" takes ?run= out of the address."""
    runs = tmp_path / "runs"
    folders = lambda: {p.name for p in runs.iterdir()} if runs.is_dir() else set()
    with Dashboard(tmp_path) as dash:
        url = dash.url
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(url)
            page.get_by_text("What to do").wait_for(timeout=60_000)
            seen, step = set(), "start"
            try:
                for attempt in range(1, 4):
                    step = f"click {attempt}: Train"
                    before = folders()
                    page.get_by_test_id("stSidebar").get_by_role("button", name="Train").click(timeout=60_000)
                    new = wait_until(lambda: folders() - before, 30, f"{step}: the run's folder (the click "
                                                                     "reached the server)")
                    assert len(new) == 1, new
                    run_id = new.pop()
                    wait_until(lambda: page.evaluate(ADDRESS_RUN) == run_id, 30, f"{step}: ?run={run_id}")
                    step = f"click {attempt}: the run trains"
                    page.get_by_text("running", exact=True).first.wait_for(timeout=90_000)
                    assert page.evaluate(ADDRESS_RUN) == run_id
                    seen.add(run_id)
                    step = f"click {attempt}: Stop"
                    page.locator(".st-key-stop button").first.click(timeout=60_000)
                    page.get_by_text("stopped", exact=True).first.wait_for(timeout=60_000)
                    step = f"click {attempt}: New run"
                    page.get_by_role("button", name="New run").click(timeout=60_000)
                    page.get_by_text("What to do").wait_for(timeout=60_000)
                    wait_until(lambda: page.evaluate(ADDRESS_RUN) is None, 30, f"{step}: ?run= cleared")
            except Exception as exc:
                OUT.mkdir(exist_ok=True)
                page.screenshot(path=str(OUT / "dashboard-new-run-failure.png"))
                raise AssertionError(f"at {step} (address {page.evaluate('location.search')}, folders "
                                     f"{sorted(folders())}): {exc}") from exc
            assert len(seen) == 3 and folders() == seen
            # a reload of the start page attaches no run: the address no longer names the last one
            page.reload()
            page.get_by_text("What to do").wait_for(timeout=60_000)
            browser.close()
