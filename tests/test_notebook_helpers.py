"""el.notebook: the set-up every notebook calls, and slider cells that never block a headless kernel."""
import IPython.display
import plotly.io as pio
import pytest
import torch

import energylab as el


@pytest.fixture
def shown(monkeypatch):
    """Record what `explore` displays instead of sending it to a frontend."""
    calls = []

    def fake_display(obj, display_id=None, **kwargs):
        calls.append(obj)
        return type("Handle", (), {"update": lambda self, new: calls.append(("update", new))})()

    monkeypatch.setattr(IPython.display, "display", fake_display)
    return calls


def test_setup_runs_one_thread_and_announces_fast_mode(capsys, monkeypatch):
    threads = torch.get_num_threads()
    try:
        el.notebook.setup(fast=True, seed=3)
        assert torch.get_num_threads() == 1
        assert "FAST MODE - a smoke test" in capsys.readouterr().out
        assert pio.renderers.default == "plotly_mimetype"          # fast mode: no PNG rendering
        first = torch.rand(3)
        el.notebook.setup(fast=True, seed=3)
        assert torch.equal(first, torch.rand(3))                    # seeded
    finally:
        torch.set_num_threads(threads)


def test_explore_headless_draws_the_default_and_creates_no_widget(shown, monkeypatch):
    monkeypatch.setenv("ENERGYLAB_HEADLESS", "1")
    el.notebook.setup(fast=False, seed=0, static_images=False)
    seen = []

    def draw(beta, k):
        seen.append((beta, k))
        print(f"beta {beta}")
        return "a picture"

    el.notebook.explore(draw, beta=el.notebook.slider(1.5, 0.0, 4.0, 0.1), k=el.notebook.slider(3, 1, 10))
    assert seen == [(1.5, 3)]
    assert shown[0] == "a picture"
    assert isinstance(shown[1], IPython.display.Pretty) and "beta 1.5" in shown[1].data
    assert len(shown) == 2                                           # no widget box displayed


def test_explore_in_a_live_kernel_redraws_in_place(shown, monkeypatch):
    monkeypatch.delenv("ENERGYLAB_HEADLESS", raising=False)
    el.notebook.setup(fast=False, seed=0, static_images=False)
    el.notebook.explore(lambda beta: f"p at {beta}", beta=el.notebook.slider(1.0, 0.0, 4.0, 0.5))
    box = shown[-1]
    slider = box.children[0]
    slider.value = 2.0                                               # what a user's drag does
    assert ("update", "p at 2.0") in shown
    el.notebook.setup(fast=True, seed=0)                             # leave the module headless again


def test_slider_kinds():
    import ipywidgets as widgets
    assert isinstance(el.notebook.slider(3, 1, 10).widget("k"), widgets.IntSlider)
    assert isinstance(el.notebook.slider(0.5, 0.0, 1.0).widget("p"), widgets.FloatSlider)
    assert isinstance(el.notebook.slider(0.01, -3, -1, log=True).widget("lr"), widgets.FloatLogSlider)
