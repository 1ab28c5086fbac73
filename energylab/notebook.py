"""What the teaching notebooks share: a reproducible set-up, figures that show everywhere, sliders that never block.

    fast = False                      # the papermill parameters cell
    el.notebook.setup(fast=fast, seed=0)
    el.notebook.explore(draw, beta=el.notebook.slider(1.0, 0.0, 4.0, 0.05))

`setup` runs torch on one thread (a shared machine with torch's default thread
count made one notebook 7x slower), seeds torch, and makes every Plotly figure's
saved output carry a static PNG next to the interactive Plotly data, so GitHub,
nbviewer and an offline HTML export show the picture that JupyterLab draws
interactively. In fast mode it says that the run is a smoke test.

`explore` draws its function once at the controls' initial values, as ordinary
outputs (so a saved or headless notebook shows a picture), and only in a live
kernel adds sliders that redraw those outputs in place (`display_id` updates).
It never captures output into an ipywidgets `Output` widget during execution:
`interact` does, and headless executors (papermill/nbclient) can wait forever on
it (nteract/papermill#723, jupyter/nbclient#312). Headless runs set the
environment variable ``ENERGYLAB_HEADLESS=1`` (the tests and the Makefile do);
fast mode never creates widgets either.

IPython, ipywidgets, plotly and kaleido are imported lazily: the engine does not
need them.
"""
from __future__ import annotations

import atexit
import contextlib
import io
import os
import warnings
from dataclasses import dataclass

import torch

HEADLESS_ENV = "ENERGYLAB_HEADLESS"
SMOKE_NOTE = ("FAST MODE - a smoke test: small data, few epochs and short chains so that the test suite runs "
              "in seconds. The numbers and pictures below are NOT meaningful and may contradict the text; "
              "the text describes the full run (fast = False), whose outputs are the ones committed.")

_state = {"live": False, "static": False}


def headless() -> bool:
    """True when no person is watching: ``ENERGYLAB_HEADLESS`` is set (tests, `make notebooks`)."""
    return os.environ.get(HEADLESS_ENV, "").strip().lower() not in ("", "0", "false", "no")


def _start_static_images() -> str | None:
    """Start one kaleido/Chromium renderer for the session; None when it is unavailable (and why not)."""
    try:
        import kaleido
        warnings.filterwarnings("ignore", message=".*kopts argument is ignored.*")
        kaleido.start_sync_server(silence_warnings=True)
        atexit.register(kaleido.stop_sync_server, silence_warnings=True)
        import plotly.graph_objects as go
        import plotly.io as pio
        pio.to_image(go.Figure(), format="png", width=10, height=10)      # fail here, not at the first figure
        return None
    except Exception as exc:                                              # no kaleido, no Chromium, ...
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def setup(fast: bool = False, seed: int = 0, static_images: bool | None = None) -> None:
    """One torch thread, a seeded torch, Plotly outputs with a static PNG copy, and the fast-mode warning.

    ``static_images`` defaults to ``not fast``: the smoke runs of the test suite skip
    the PNG rendering (about 0.2 s a figure after a 3 s start); committed full runs have it.
    """
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    _state["live"] = not fast and not headless()
    import plotly.io as pio
    renderer = "plotly_mimetype"
    if not fast if static_images is None else static_images:
        problem = _start_static_images()
        if problem is None:
            renderer = "plotly_mimetype+png"
            pio.renderers["png"].scale = 1
        else:
            print(f"note: no static PNG copies of the figures ({problem}); JupyterLab still draws them. "
                  "Install kaleido and Chromium (`make install system-deps`) for figures that show everywhere.")
    pio.renderers.default = renderer
    _state["static"] = renderer.endswith("png")
    if fast:
        print(SMOKE_NOTE)


@dataclass
class Slider:
    """What `explore` needs to build one control, without creating a widget in a headless kernel."""
    value: float
    min: float
    max: float
    step: float | None = None
    label: str | None = None
    log: bool = False

    def widget(self, name: str):
        import ipywidgets as widgets
        label = self.label or name
        if self.log:                      # min and max are exponents of 10, as in ipywidgets.FloatLogSlider
            return widgets.FloatLogSlider(value=self.value, base=10, min=self.min, max=self.max,
                                          step=self.step or 0.1, description=label, continuous_update=False)
        if all(isinstance(x, int) for x in (self.value, self.min, self.max, self.step or 1)):
            return widgets.IntSlider(value=self.value, min=self.min, max=self.max, step=self.step or 1,
                                     description=label, continuous_update=False)
        return widgets.FloatSlider(value=self.value, min=self.min, max=self.max, step=self.step or 0.01,
                                   description=label, continuous_update=False)


def slider(value, min, max, step=None, label=None, log=False) -> Slider:  # noqa: A002 (the widget's own names)
    """A slider for `explore`; ``log=True``: ``min`` and ``max`` are powers of 10, as in ipywidgets."""
    return Slider(value, min, max, step, label, log)


def _outputs(fn, values):
    """fn's return value(s) as displayable objects, followed by anything it printed."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        result = fn(**values)
    items = list(result) if isinstance(result, (list, tuple)) else ([] if result is None else [result])
    from IPython.display import Pretty
    if buffer.getvalue():
        items.append(Pretty(buffer.getvalue().rstrip("\n")))
    return items


def explore(fn, **controls: Slider) -> None:
    """Draw ``fn(**initial values)``; in a live kernel add sliders that redraw it in place.

    ``fn`` returns what to show (a figure, an image, a list of them) and may print;
    it must not call ``display`` or ``.show()`` itself, so that a slider move can
    replace the old outputs instead of appending new ones.
    """
    from IPython.display import display
    values = {name: c.value for name, c in controls.items()}
    handles = [display(item, display_id=True) for item in _outputs(fn, values)]
    if not _state["live"]:
        return
    try:
        import ipywidgets as widgets
    except ImportError:
        print("(install ipywidgets for the sliders)")
        return
    built = {name: c.widget(name) for name, c in controls.items()}

    def redraw(_change=None):
        items = _outputs(fn, {name: w.value for name, w in built.items()})
        for handle, item in zip(handles, items):
            handle.update(item)

    for w in built.values():
        w.observe(redraw, names="value")
    display(widgets.VBox(list(built.values())))
