"""Run the notebooks headless, or export them to HTML that works offline.

    python notebooks/build.py run [NAME ...] [--fast]      # `make notebooks`
    python notebooks/build.py html [NAME ...] [--out DIR]  # `make notebooks-html`

`run` executes each notebook with papermill into a temporary folder (one torch
thread, ``ENERGYLAB_HEADLESS=1`` so slider cells never create widgets) and copies
the result over the committed file only when every cell succeeded; it prints the
wall time of each. `--fast` runs the smoke setting and keeps the committed files.

`html` writes one self-standing HTML page per notebook into DIR (default
``build/notebooks-html``), with MathJax copied next to the pages from Debian's
``libjs-mathjax`` (``make system-deps`` installs it) and no script fetched from a
CDN: formulas are typeset and figures (static PNGs saved with every Plotly output)
drawn with the network off.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
MATHJAX = Path(os.environ.get("MATHJAX_DIR", "/usr/share/javascript/mathjax"))
MATHJAX_CONFIG = "TeX-AMS_CHTML-full,Safe"
EMPTY_SCRIPT = "data:text/javascript,"        # the template's require.js tag: nothing to fetch, nothing needs it


def select(names: list[str]) -> list[Path]:
    chapters = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    solutions = sorted((NOTEBOOKS / "solutions").glob("[0-9][0-9]_*.ipynb"))
    if not names:
        return chapters
    picked = [p for p in chapters if any(p.name.startswith(n) for n in names)]
    picked += [p for p in solutions if any(n.startswith("solutions/") and p.name.startswith(n[len("solutions/"):])
                                           for n in names)]
    if not picked:
        sys.exit(f"no notebook matches {names}")
    return picked


def tidy(executed: Path, target: Path) -> None:
    """Save an executed notebook without machine paths or per-cell timestamps (small, stable diffs)."""
    import nbformat
    nb = nbformat.read(executed, as_version=4)
    meta = nb.metadata.get("papermill", {})
    meta.update(input_path=target.name, output_path=target.name)
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
    nbformat.write(nb, target)


def run(paths: list[Path], fast: bool) -> int:
    import papermill
    os.environ["ENERGYLAB_HEADLESS"] = "1"
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    failed = 0
    for path in paths:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / path.name
            start = time.perf_counter()
            try:
                papermill.execute_notebook(str(path), str(out), parameters={"fast": True} if fast else None,
                                           kernel_name="python3", cwd=tmp, progress_bar=False,
                                           execution_timeout=3600)
            except Exception as exc:          # papermill raises PapermillExecutionError with the cell
                failed += 1
                print(f"{path.relative_to(ROOT)}: FAILED after {time.perf_counter() - start:.0f} s: "
                      f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", flush=True)
                continue
            seconds = time.perf_counter() - start
            if not fast:
                tidy(out, path)
            print(f"{path.relative_to(ROOT)}: {seconds:.0f} s {'(fast, not saved)' if fast else '(saved)'}", flush=True)
    return failed


def export_html(paths: list[Path], out: Path) -> int:
    import nbformat
    from nbconvert import HTMLExporter
    if not (MATHJAX / "MathJax.js").exists():
        sys.exit(f"MathJax not found in {MATHJAX}: `make system-deps` installs Debian's libjs-mathjax "
                 "(or set MATHJAX_DIR to a MathJax 2.7 folder)")
    out.mkdir(parents=True, exist_ok=True)
    target = out / "mathjax"
    if not target.exists():                   # the parts CHTML output needs; symlinks resolved
        shutil.copytree(MATHJAX, target, ignore=shutil.ignore_patterns("unpacked", "test"))
    exporter = HTMLExporter(template_name="lab", mathjax_url=f"mathjax/MathJax.js?config={MATHJAX_CONFIG}",
                            require_js_url=EMPTY_SCRIPT, jquery_url=EMPTY_SCRIPT)
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": path.stem}})
        page = out / f"{path.stem}.html"
        page.write_text(body, encoding="utf-8")
        print(f"{page.relative_to(ROOT) if page.is_relative_to(ROOT) else page}: {len(body) / 1e6:.1f} MB")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="execute notebooks headless (full mode saves their outputs)")
    r.add_argument("names", nargs="*", help="prefixes such as 03 or solutions/03 (default: every chapter)")
    r.add_argument("--fast", action="store_true", help="the smoke setting; the committed files stay as they are")
    h = sub.add_parser("html", help="export notebooks to offline HTML")
    h.add_argument("names", nargs="*")
    h.add_argument("--out", type=Path, default=ROOT / "build" / "notebooks-html")
    args = parser.parse_args(argv)
    if args.command == "run":
        return 1 if run(select(args.names), args.fast) else 0
    return export_html(select(args.names), args.out)


if __name__ == "__main__":
    sys.exit(main())
