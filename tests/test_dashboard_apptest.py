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
