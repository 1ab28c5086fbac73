"""Streamlit AppTest for every dashboard page, and a slider that reaches a running run.

The fragment's `run_every` timer does not fire under AppTest, so the tests poll
with `at.run()`. Runs go to a temporary runs folder; the server's run manager
(a `st.cache_resource`) is shut down and cleared after every test.
"""
import sys
import time
from pathlib import Path

import pytest
import streamlit as st
import torch
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")
sys.path.insert(0, str(Path(APP).parent))       # the pages import `common` as streamlit run does
PAGES = ["train.py", "explore.py", "compare.py", "instructor.py", "theory.py"]


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.setenv("ENERGYLAB_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("ENERGYLAB_MAX_RUNS", "1")
    st.cache_resource.clear()
    at = AppTest.from_file(APP, default_timeout=60)
    yield at
    import common
    common.manager().shutdown()
    st.cache_resource.clear()


def poll(at, predicate, timeout=90.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        if predicate(at):
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; markdown: {[m.value for m in at.markdown][:6]}")


def text(at) -> str:
    return "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption])


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_without_a_run(app, page):
    app.run()
    app.switch_page(page).run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.title, "every page has a title"


def test_first_screen_says_what_to_do(app):
    app.run()
    assert "What to do" in text(app) and "▶ Train" in text(app)
    assert app.sidebar.selectbox(key="cfg.variant").value == "RBM"
    assert app.sidebar.selectbox(key="cfg.RBM.dataset").value == "digits"
    lr = app.sidebar.select_slider(key="cfg.RBM.train.lr")
    assert lr.value == 0.1 and "learning rate" in lr.help


def test_train_retune_pause_save_then_every_page(app):
    app.run()
    app.sidebar.selectbox(key="cfg.RBM.dataset").select("bars-and-stripes").run()
    app.sidebar.number_input(key="cfg.RBM.model.n_hidden").set_value(8).run()
    app.sidebar.number_input(key="cfg.RBM.train.epochs").set_value(10000).run()
    app.sidebar.button(key="train").click().run()
    assert not app.exception, [e.value for e in app.exception]
    poll(app, lambda at: "**running**" in text(at), what="the run to report running")
    import common
    run = common.manager().get(app.session_state["run_id"])

    # a live slider reaches the run, and the page shows the value in use
    app.select_slider(key=f"live.{run.id}.lr").set_value(0.01).run()
    poll(app, lambda at: run.snapshot()["params"]["lr"] == 0.01 and "lr **0.01**" in text(at),
         what="lr 0.01 in use")
    assert [(c["name"], c["new"]) for c in run.snapshot()["history"]["changes"]] == [("lr", 0.01)]
    assert "Exact distribution" in text(app)        # the tiny-model panel

    app.button(key="pause").click().run()
    poll(app, lambda at: "**paused**" in text(at), what="paused")
    app.button(key="save").click().run()
    poll(app, lambda at: run.folder.checkpoint.is_file() and "checkpoint saved" in text(at), what="checkpoint")

    for page in ["explore.py", "compare.py", "theory.py", "train.py"]:
        app.switch_page(page).run()
        assert not app.exception, (page, [e.value for e in app.exception])
    app.button(key="stop").click().run()
    poll(app, lambda at: "**stopped**" in text(at), what="stopped")

    # Reset goes back to the first screen, which lists the run; Load continues it from its checkpoint
    app.button(key="reset").click().run()
    assert "What to do" in text(app) and run.id in text(app)
    app.button(key=f"load.{run.id}").click().run()
    poll(app, lambda at: "**paused**" in text(at) and app.session_state["run_id"] != run.id,
         what="the loaded run, paused")
    loaded = common.manager().get(app.session_state["run_id"])
    saved_step = int(torch.load(run.folder.checkpoint, weights_only=True)["position"][0])
    assert loaded.snapshot()["step"] == saved_step
    assert loaded.snapshot()["params"]["lr"] == 0.01


def test_a_diverging_run_shows_its_error_and_the_page_stays_up(app):
    import common
    run = common.manager().start("RBM", "digits", model={"n_hidden": 16}, training={"lr": 1.0}, max_weight=0.5)
    app.query_params["run"] = run.id
    poll(app, lambda at: any("training diverged" in e.value for e in at.error), what="the divergence message")
    assert "**failed**" in text(app) and "Lower the learning rate" in app.error[0].value
    app.switch_page("compare.py").run()
    assert not app.exception


@pytest.mark.parametrize("variant,dataset", [("DBN", "digits"), ("ConvRBM", "digits"), ("DBM", "digits"),
                                             ("GaussianRBM", "two-moons"), ("DiscriminativeRBM", "digits")])
def test_explore_page_works_for_stacks_conv_and_other_models(app, tmp_path, variant, dataset):
    """A checkpoint written by `energylab train` opens on the Explore page: chains step, the
    inpainting and hidden-unit views (images) or the free-energy landscape (2-D) draw."""
    from energylab import cli
    assert cli.main(["train", "--variant", variant, "--dataset", dataset, "--epochs", "1", "--quiet",
                     "--out", str(tmp_path / "runs" / f"{variant}-cli")]) == 0
    app.run()
    app.switch_page("explore.py").run()
    assert not app.exception, [e.value for e in app.exception]
    assert variant in app.caption[0].value
    if dataset == "digits":
        app.button(key="chain.step").click().run()
        assert not app.exception, [e.value for e in app.exception]
        # the chains and the inpainting; a conv model adds its feature maps as a picture, a classifier
        # adds its confusion matrix and p(y|x) to the hidden units' chart
        images, charts = {"ConvRBM": (3, 0), "DiscriminativeRBM": (3, 3)}.get(variant, (2, 1))
        assert len(app.get("image")) == images
        assert len(app.get("plotly_chart")) == charts
    else:
        assert len(app.get("plotly_chart")) == 1           # the landscape


def test_a_stack_on_real_data_offers_a_gaussian_first_layer(app):
    app.run()
    app.sidebar.selectbox(key="cfg.variant").set_value("DBN").run()
    assert "two-moons" in app.sidebar.selectbox(key="cfg.DBN.dataset").options
    app.sidebar.selectbox(key="cfg.DBN.dataset").set_value("two-moons").run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.selectbox(key="cfg.DBN.model.first_layer.real").value == "GaussianRBM"
    app.sidebar.selectbox(key="cfg.DBN.dataset").set_value("digits").run()
    assert app.selectbox(key="cfg.DBN.model.first_layer").value == "RBM"


def test_another_session_watches_read_only_and_cannot_touch(app, monkeypatch):
    """Session A owns a run; session B opens its link: B sees it, with every control disabled and
    no live slider, and B's page never changes the run. A's single change arrives once."""
    import common
    run = common.manager().start("RBM", "bars-and-stripes", model={"n_hidden": 8}, dataset_options={"size": 3},
                                 training={"epochs": 10000, "batch_size": 16}, owner="owner-token-of-session-a",
                                 owner_label="Ada")
    watcher = AppTest.from_file(APP, default_timeout=60)
    watcher.query_params["run"] = run.id
    poll(watcher, lambda at: "**running**" in text(at), what="the watcher to see the run")
    assert "watching **Ada**'s run (read-only)" in text(watcher)
    for key in ("pause", "stop", "save", "step", "resume"):
        assert watcher.button(key=key).disabled, key
    assert not [w for w in watcher.sidebar.select_slider if w.key.startswith("live.")]
    for _ in range(20):
        poll(watcher, lambda at: True)
        time.sleep(0.3)
    assert run.snapshot()["history"]["changes"] == []

    owner = AppTest.from_file(APP, default_timeout=60)
    owner.query_params.update({"run": run.id, "key": "owner-token-of-session-a"})
    poll(owner, lambda at: "**running**" in text(at), what="the owner's page")
    owner.sidebar.select_slider(key=f"live.{run.id}.lr").set_value(0.05).run()
    for _ in range(5):                                    # redraws, on both pages, send nothing more
        owner.run()
        watcher.run()
    wait = time.monotonic() + 60
    while not run.snapshot()["history"]["changes"] and time.monotonic() < wait:
        time.sleep(0.2)
    assert [(c["name"], c["old"], c["new"]) for c in run.snapshot()["history"]["changes"]] == [("lr", 0.1, 0.05)]


def test_the_class_page_needs_the_instructor_key_and_controls_every_run(app, monkeypatch):
    import common
    monkeypatch.setenv("ENERGYLAB_INSTRUCTOR_KEY", "the-teachers-key")
    monkeypatch.setenv("ENERGYLAB_MAX_RUNS", "2")
    st.cache_resource.clear()
    a = common.manager().start("RBM", "bars-and-stripes", owner="token-a-0123456789abcdef", owner_label="Ada",
                               training={"epochs": 10000, "batch_size": 16}, dataset_options={"size": 3})
    app.run()
    app.switch_page("instructor.py").run()
    app.text_input(key="instructor.entry").input("wrong").run()
    assert "not the instructor key" in app.error[0].value
    app.text_input(key="instructor.entry").input("the-teachers-key").run()
    poll(app, lambda at: "Ada" in text(at), timeout=30, what="the class table")
    wait = time.monotonic() + 90
    while a.status != "running" and time.monotonic() < wait:
        time.sleep(0.2)
    app.run()
    app.button(key=f"class.pause.{a.id}").click().run()
    poll(app, lambda at: a.status == "paused", what="the instructor's pause to reach the run")


# -- the Train page's classification view, a stack's layers, the curve chooser ----------------------
def curve_chooser(at):
    return next((m for m in at.multiselect if m.label == "curves to draw"), None)


def progress_bars(at) -> str:
    return "\n".join(p.proto.text for p in at.get("progress"))


def pngs_in(at) -> list:
    """The inline pictures of the page (data URIs in markdown), decoded as grey pixel arrays."""
    import base64
    import io
    import re

    import numpy as np
    from PIL import Image
    found = []
    for m in at.markdown:
        for data in re.findall(r'src="data:image/png;base64,([^"]+)"', m.value):
            found.append(np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("L"), dtype=float) / 255)
    return found


def test_a_classifier_run_shows_accuracy_confusion_matrix_and_p_y_given_x(app):
    import common
    run = common.manager().start("DiscriminativeRBM", "digits", model={"n_hidden": 32},
                                 training={"epochs": 10000}, owner="owner-token-of-the-classifier")
    app.query_params.update({"run": run.id, "key": "owner-token-of-the-classifier"})
    poll(app, lambda at: "Confusion matrix" in text(at) and curve_chooser(at) is not None
         and "**running**" in text(at), what="the classification view")
    assert "p(y | x) for one test image" in text(app)
    assert "Test accuracy" in text(app)
    chooser = curve_chooser(app)
    assert chooser.value == ["accuracy"] and "reconstruction error" in chooser.options   # its main metric first
    charts = app.get("plotly_chart")
    assert len(charts) == 3                           # accuracy, the confusion matrix, the p(y|x) bars
    example = app.selectbox(key=f"train.class_example.{run.id}")
    assert len(example.options) == 20 and "· a 0" in example.options[0]
    example.select_index(5).run()
    assert not app.exception, [e.value for e in app.exception]
    assert "test image" in text(app) and "The model answers" in text(app)
    # no samples or reconstructions for a model that learns only p(y|x); its weights are shown
    assert "Weights" in text(app) and "**Samples**" not in text(app) and "learns only p(y | x)" in text(app)
    snap = run.snapshot()
    assert sum(map(sum, snap["classification"]["counts"])) == 360
    curve_chooser(app).unselect("accuracy").run()          # nothing chosen: the chart says so, no error
    assert not app.exception and curve_chooser(app).value == []
    curve_chooser(app).select("accuracy").run()
    assert curve_chooser(app).value == ["accuracy"]


def test_a_stack_names_the_layer_in_training_and_draws_no_black_pictures(app):
    import common
    run = common.manager().start("DBN", "digits", model={"hidden_layers": "64,32", "layer_epochs": "300,300"},
                                 training={"epochs": 300})
    app.query_params["run"] = run.id
    poll(app, lambda at: "layer 1 of 2" in text(at) and len(pngs_in(at)) >= 3, what="layer 1 in training")
    bars = progress_bars(app)
    assert "**layer 1 · training now** · " in bars and "layer 2 · trains after layer 1" in bars
    assert "layer 2 trains after layer 1: no picture until then" in text(app)
    assert "projected to the pixels" not in text(app)          # no mosaic of the untrained layer 2
    assert "through layer 1 only" in text(app) and "layer 1's RBM alone" in text(app)
    weights, recon, samples = pngs_in(app)[:3]
    half = recon.shape[0] // 2
    assert recon[half:].max() > 0.3 and recon[half:].std() > 0.05, "the reconstructions are black or flat"
    assert samples.std() > 0.05


@pytest.mark.parametrize("variant", ["ConvRBM", "DBM", "DiscriminativeRBM"])
def test_the_curve_chooser_is_never_empty_while_curves_are_drawn(app, variant):
    import common
    run = common.manager().start(variant, "digits", training={"epochs": 10000})
    app.query_params["run"] = run.id
    poll(app, lambda at: len(run.snapshot()["history"]["records"]) >= 2 if run.snapshot() else False,
         what="two records")
    app.run()
    chooser = curve_chooser(app)
    from energylab.viz import label
    assert chooser is not None and chooser.value and {label(n) for n in chooser.value} <= set(chooser.options)


def test_the_curve_chooser_gains_the_curves_that_appear_later_and_keeps_a_choice(app):
    """A stack's fine-tuning accuracy appears only once its head trains: the chooser offers it then
    (and the classification view appears); a curve the student removed stays removed."""
    import common
    from energylab.viz import label
    # Started paused and stepped: the young run is caught in layer 1 whatever the machine's speed (a
    # stack this small runs its 4,500 layer steps in about a second)
    run = common.manager().start("DBN", "digits", training={"epochs": 100}, start_paused=True, model={
        "hidden_layers": "32,16", "layer_epochs": "60,40", "fine_tune": "head", "fine_tune_epochs": 3000})
    app.query_params["run"] = run.id
    poll(app, lambda at: run.snapshot() is not None and run.snapshot()["status"] == "paused", what="the paused run")
    run.step(110)                         # past the first evaluation (every 100 steps)
    poll(app, lambda at: curve_chooser(at) is not None, what="the chooser")
    young = curve_chooser(app)
    assert label("accuracy") not in young.options and young.value
    removed = "free_energy_gap" if "free_energy_gap" in young.value else young.value[-1]
    young.unselect(removed).run()
    run.resume()
    poll(app, lambda at: label("accuracy") in curve_chooser(at).options, timeout=120,
         what="the fine-tuning accuracy")
    chooser = curve_chooser(app)
    assert label("fine_tune_loss") in chooser.options and removed not in chooser.value and chooser.value
    poll(app, lambda at: "Confusion matrix" in text(at), what="the classification view of the head")
    assert "fine-tuning the classifier head" in text(app)
