"""AppTest of the Explore page for every variant family: a run is trained for a moment with the
engine, saved as a checkpoint with its record in a temporary runs folder, and explored.

(The fixture follows tests/test_dashboard_apptest.py: runs go to a tmp runs folder, the server's
run manager is shut down and cleared after every test.)
"""
import sys
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

import energylab as el
from energylab.store.runfolder import RunFolder

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")
sys.path.insert(0, str(Path(APP).parent))       # the pages import `common` as streamlit run does


def saved_run(runs_dir: Path, variant: str, dataset: str, model: dict, steps: int = 40) -> str:
    """Train `steps` mini-batches through the engine and save checkpoint and record; the run's id."""
    data = el.datasets.load(dataset)
    folder = RunFolder.create(runs_dir, variant, dataset)
    folder.write_config({"variant": variant, "dataset": {"name": dataset}, "model": model})
    trainer = el.Trainer(el.make(variant, n_visible=data.n_visible, **model), epochs=100, eval_every=10 ** 6)
    trainer.callbacks.append(type("Stop", (el.Callback,), {
        "on_batch_end": lambda self, t: t.stop() if t.step >= steps else None})())
    trainer.fit(data)
    trainer.save_checkpoint(folder.checkpoint)
    return folder.name


@pytest.fixture
def explore(tmp_path, monkeypatch):
    """An AppTest on the Explore page over a runs folder the test fills first: `explore(run_ids...)`."""
    runs = tmp_path / "runs"
    monkeypatch.setenv("ENERGYLAB_RUNS_DIR", str(runs))
    monkeypatch.setenv("ENERGYLAB_MAX_RUNS", "1")
    st.cache_resource.clear()
    at = AppTest.from_file(APP, default_timeout=60)

    def open_page():
        at.run()
        at.switch_page("explore.py").run()
        assert not at.exception, [e.value for e in at.exception]
        return at
    yield runs, open_page
    import common
    common.manager().shutdown()
    st.cache_resource.clear()


def subheaders(at):
    return [s.value for s in at.subheader]


def captions(at):
    """Caption lines and the captions under pictures (st.image)."""
    pictures = [i.caption for e in at.get("image") for i in e.proto.imgs]
    return "\n".join([c.value for c in at.caption] + pictures)


def test_dense_rbm_chain_buttons_are_independent_and_inpainting_uses_the_engine(explore):
    runs, open_page = explore
    saved_run(runs, "RBM", "digits", {"n_hidden": 16})
    at = open_page()
    assert subheaders(at)[:3] == ["Gibbs chain, step by step", "Inpainting: clamp half the image, let the model "
                                  "fill in the rest", "Hidden units for this input"]
    assert "What to watch" in captions(at) and "strokes" in captions(at)
    at.button(key="chain.step").click().run()
    assert "after 1 Gibbs steps" in captions(at)
    assert at.button(key="chain.20") is not None                  # still drawn after "1 Gibbs step"
    at.button(key="chain.20").click().run()
    assert "after 21 Gibbs steps" in captions(at)
    at.selectbox(key="inpaint.keep").select("left").run()
    assert not at.exception and "8 completions" in captions(at)
    assert len(at.get("plotly_chart")) == 1                        # dense hidden units: one bar chart


def test_conv_rbm_hidden_units_are_feature_map_pictures(explore):
    runs, open_page = explore
    saved_run(runs, "ConvRBM", "digits", {"n_filters": 4})
    at = open_page()
    assert "4 feature maps" in captions(at)
    assert not at.get("plotly_chart"), "feature maps are pictures, not a chart"


def test_classifier_shows_accuracy_confusion_and_class_probabilities(explore):
    runs, open_page = explore
    saved_run(runs, "DiscriminativeRBM", "digits", {"n_hidden": 32}, steps=120)
    at = open_page()
    assert subheaders(at)[0] == "Classification on the test set"
    accuracy = at.metric[0]
    assert accuracy.label == "test accuracy" and float(accuracy.value.rstrip("%")) > 30
    keys = [c.proto.id for c in at.get("plotly_chart")]
    assert len(keys) >= 2
    at.slider(key=next(k for k in at.session_state if k.startswith("explore.class_index"))).set_value(5).run()
    assert not at.exception and "test image 5, true class" in captions(at)


def test_two_dimensional_model_shows_its_landscape(explore):
    runs, open_page = explore
    saved_run(runs, "GaussianMixtureRBM", "gaussian-mixture", {})
    at = open_page()
    assert subheaders(at) == ["Free-energy landscape"]


def test_stack_is_explored_without_error(explore):
    runs, open_page = explore
    saved_run(runs, "DBN", "digits", {"hidden_layers": "16,8", "layer_epochs": "1,1"})
    at = open_page()
    assert "Gibbs chain, step by step" in subheaders(at)
    assert "Classification on the test set" not in subheaders(at)        # no fine-tuned head
