"""An exported notebook works offline: `notebooks/build.py html` (`make notebooks-html`) output opened in
Debian's Chromium with every request other than file: and data: blocked. Its formulas must be typeset by
the MathJax copied next to the page and its figures drawn from the static PNGs the committed Plotly outputs
carry; nothing may be fetched from the network. A screenshot goes to test-output/.
"""
import importlib.util
from pathlib import Path

import nbformat
import pytest
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "test-output"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
NOTEBOOK = ROOT / "notebooks" / "01_energy_and_partition_function.ipynb"

pytestmark = pytest.mark.slow


def _build():
    spec = importlib.util.spec_from_file_location("notebooks_build", ROOT / "notebooks" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_exported_notebook_shows_figures_and_formulas_offline(tmp_path):
    assert Path(CHROMIUM).exists(), "Debian chromium is missing: run `make system-deps`"
    build = _build()
    if not (build.MATHJAX / "MathJax.js").exists():
        pytest.fail("MathJax is missing: run `make system-deps` (Debian libjs-mathjax)")
    build.export_html([NOTEBOOK], tmp_path)
    page_path = tmp_path / f"{NOTEBOOK.stem}.html"
    html = page_path.read_text(encoding="utf-8")
    assert "cdn.plot.ly" not in html and "cdnjs.cloudflare.com/ajax/libs/mathjax" not in html
    nb = nbformat.read(NOTEBOOK, as_version=4)
    n_figures = sum("application/vnd.plotly.v1+json" in o.get("data", {})
                    for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert n_figures >= 3

    blocked = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})

        def route(r):
            url = r.request.url
            if url.startswith(("file:", "data:")):
                r.continue_()
            else:
                blocked.append(url)
                r.abort()

        page.route("**/*", route)
        page.goto(page_path.as_uri())
        # MathJax 2 (CHTML output) marks every typeset formula with .mjx-chtml; wait for its queue to drain.
        page.wait_for_function("() => window.MathJax && MathJax.Hub && MathJax.Hub.queue.pending === 0 "
                               "&& document.querySelectorAll('.mjx-chtml').length > 20", timeout=60_000)
        typeset = page.evaluate("() => document.querySelectorAll('.MathJax_CHTML, .mjx-chtml.MathJax_CHTML').length")
        errors = page.evaluate("() => document.querySelectorAll('.mjx-merror, .MathJax_Error').length")
        raw = page.evaluate("() => document.body.innerText.includes('\\\\frac')")
        images = page.evaluate("""() => Array.from(document.images).map(i => ({
            png: i.src.startsWith('data:image/png'), drawn: i.complete && i.naturalWidth > 50}))""")
        page.locator(".jp-OutputArea-output img").nth(0).scroll_into_view_if_needed()
        OUT.mkdir(exist_ok=True)
        page.screenshot(path=str(OUT / "notebook-01-offline.png"), full_page=False)
        browser.close()

    assert not blocked, f"the exported page tried to fetch {blocked[:3]}"
    assert typeset > 20 and not errors and not raw, (typeset, errors, raw)
    drawn = [i for i in images if i["png"] and i["drawn"]]
    assert len(drawn) >= n_figures, f"{len(drawn)} drawn PNG figures for {n_figures} Plotly outputs: {images}"
