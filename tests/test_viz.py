"""viz: grid arithmetic, tile placement, PNG output and the Plotly figures."""
import io
import math
import os

import pytest
import torch
from PIL import Image

from energylab import viz
from energylab.training.history import History
from energylab.viz import (curves_figure, distribution_figure, save_png, tile_images,
                           to_png, weight_mosaic)


def test_tile_images_grid_size_and_range():
    x = torch.randn(4, 64)
    grid = tile_images(x, (8, 8), nrow=2, padding=1)
    # 2 tiles of 8 plus 3 padding lines each way
    assert grid.shape == (19, 19)
    assert grid.min() >= 0 and grid.max() <= 1
    # default nrow: near square, 10 tiles -> 4 per row, 3 rows
    assert tile_images(torch.rand(10, 64), (8, 8)).shape == (3 * 9 + 1, 4 * 9 + 1)


def test_tile_images_accepts_image_stacks_and_colour():
    assert tile_images(torch.rand(4, 1, 8, 8), nrow=2).shape == (19, 19)
    assert tile_images(torch.rand(4, 8, 8), nrow=4, padding=0).shape == (8, 32)
    rgb = tile_images(torch.rand(6, 3 * 5 * 5), (3, 5, 5), nrow=3, padding=2)
    assert rgb.shape == (3, 2 * 7 + 2, 3 * 7 + 2)
    with pytest.raises(ValueError):
        tile_images(torch.rand(4, 63), (8, 8))


def test_tile_of_known_pattern_lands_in_place():
    x = torch.zeros(4, 8, 8)
    x[3, 2, 5] = 1.0  # one bright pixel in the last tile
    grid = tile_images(x, nrow=2, padding=1, normalize=None, pad_value=0.0)
    # tile 3 is row 1, column 1: its top-left corner sits at 1 + 9 = 10
    hot = (grid == 1.0).nonzero().tolist()
    assert hot == [[10 + 2, 10 + 5]]


def test_normalize_modes():
    x = torch.stack([torch.full((4,), 2.0), torch.tensor([0.0, 1.0, 2.0, 4.0])])
    each = tile_images(x, (2, 2), nrow=2, padding=0, normalize="each")
    assert each[:, 2:].max() == 1 and each[:, 2:].min() == 0
    assert torch.all(each[:, :2] == 1)  # a constant tile keeps its own (clamped) value
    joint = tile_images(x, (2, 2), nrow=2, padding=0, normalize="all")
    assert torch.allclose(joint[:, :2], torch.full((2, 2), 0.5))


def test_weight_mosaic_dense_and_symmetric():
    W = torch.zeros(64, 10)
    W[:, 1] = torch.linspace(-2, 1, 64)
    W[0, 2] = 0.3
    m = weight_mosaic(W, (8, 8))
    assert m.shape == (3 * 9 + 1, 4 * 9 + 1)
    assert m.min() >= 0 and m.max() <= 1
    tile = lambda j: m[1 + 9 * (j // 4): 9 + 9 * (j // 4), 1 + 9 * (j % 4): 9 + 9 * (j % 4)]
    assert torch.all(tile(0) == 0.5)  # zero weights are mid-grey
    assert tile(1)[0, 0] == 0.0 and tile(1)[-1, -1] == pytest.approx(0.75)
    assert tile(2)[0, 0] == 1.0 and tile(2)[0, 1] == 0.5
    assert weight_mosaic(torch.randn(64, 500), (8, 8), max_tiles=16).shape == (37, 37)


def test_weight_mosaic_conv_filters():
    assert weight_mosaic(torch.randn(9, 1, 5, 5)).shape == (3 * 6 + 1, 3 * 6 + 1)
    # multi-channel filters: one row of channels per filter
    assert weight_mosaic(torch.randn(4, 2, 3, 3)).shape == (4 * 4 + 1, 2 * 4 + 1)


def test_to_png_signature_and_size():
    img = torch.rand(19, 23)
    data = to_png(img, scale=4)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pic = Image.open(io.BytesIO(data))
    assert pic.size == (23 * 4, 19 * 4) and pic.mode == "L"
    # nearest-neighbour: each source pixel becomes a flat 4x4 block
    px = pic.load()
    assert px[0, 0] == px[3, 3] == round(float(img[0, 0]) * 255)
    rgb = Image.open(io.BytesIO(to_png(torch.rand(3, 5, 6))))
    assert rgb.size == (6, 5) and rgb.mode == "RGB"


def test_save_png_is_atomic(tmp_path):
    target = tmp_path / "sub" / "weights.png"
    save_png(torch.rand(8, 8), target, scale=2)
    save_png(torch.rand(8, 8), target, scale=3)  # overwrite in place
    assert Image.open(target).size == (24, 24)
    assert os.listdir(target.parent) == ["weights.png"]


def _history():
    h = History()
    for step in range(0, 3000, 10):
        h.log(step, epoch=step // 1000, recon_error=1 / (step + 1),
              free_energy_data=-step * 0.01)
        if step % 500 == 0:
            h.log(step, pseudo_log_likelihood=-100 + step * 0.01)
    h.change(1000, "learning_rate", 0.1, 0.05)
    h.change(2000, "k", 1, 10)
    return h


def test_curves_figure_traces_and_change_markers():
    h = _history()
    fig = curves_figure(h, title="run")
    names = [t.name for t in fig.data]
    # "epoch" is bookkeeping, not a curve; keys get display names
    assert names == ["reconstruction error", "free energy (data)", "log pseudo-likelihood (exact)"]
    assert len(fig.layout.shapes) == 2
    texts = [a.text for a in fig.layout.annotations]
    assert "lr 0.1→0.05" in texts and "CD-k 1→10" in texts
    assert all(s.x0 in (1000, 2000) and s.line.dash == "dash" for s in fig.layout.shapes)

    fig = curves_figure(h, names=["recon_error", "unknown_metric_x"], max_points=50)
    assert len(fig.data) == 1 and len(fig.data[0].x) <= 50
    assert fig.data[0].x[0] == 0 and fig.data[0].x[-1] == 2990
    # a History serialised to a dict (a run folder) plots the same
    assert len(curves_figure(h.to_dict()).data) == 3
    assert len(curves_figure(History()).data) == 0


def test_free_energy_gap_gets_its_own_row():
    """The gap (near 0) must not share an axis with the free energies (near -50): it would flatten them."""
    h = History()
    for step in range(0, 500, 10):
        h.log(step, free_energy_data=-50 - step * 0.01, free_energy_test=-49.9 - step * 0.01,
              free_energy_gap=0.1 + step * 1e-4)
    fig = curves_figure(h)
    axis = {t.name: t.yaxis for t in fig.data}
    assert axis["free energy (data)"] == axis["free energy (held-out)"]
    assert axis["free-energy gap (held-out − train)"] != axis["free energy (data)"]
    titles = [a.text for a in fig.layout.annotations]
    assert "free energy (energy units)" in titles and "free-energy gap (energy units)" in titles


def test_every_panel_is_titled_with_what_it_holds_and_its_unit():
    """No exact pseudo-likelihood inside a panel titled log-likelihood: a panel holds one kind of measure."""
    h = History()
    for step in range(0, 100, 10):
        h.log(step, pseudo_log_likelihood=-30.0 + step / 10, exact_log_likelihood=-20.0 + step / 20,
              recon_error=0.2 - step / 1000, accuracy=0.5 + step / 400, energy_distance=1.0)
    fig = curves_figure(h)
    panel = {a.text: a.yref for a in fig.layout.annotations}
    row = {t.name: t.yaxis for t in fig.data}
    assert row["log pseudo-likelihood (exact)"] != row["log-likelihood (exact)"]
    assert "log pseudo-likelihood (nats per example)" in panel and "log-likelihood (nats per example)" in panel
    assert "accuracy (fraction correct)" in panel and "reconstruction error (mean squared error per pixel)" in panel
    assert all("better" in t.customdata[0] for t in fig.data if t.name != "energy distance, data vs model particles")


def test_curve_table_explains_every_recorded_name():
    """Every metric the engine records (trainer, stacks, monitors) has a label, a unit and help that says
    which way is good, or says it is a diagnostic; bookkeeping columns are not curves."""
    from energylab import curves
    from energylab.measures import monitors
    recorded = {"recon_error", "free_energy_data", "free_energy_model", "free_energy_test", "free_energy_gap",
                "pseudo_log_likelihood", "pseudo_log_likelihood_1bit", "exact_log_likelihood", "accuracy",
                "swap_rate", "stack_recon_error", "stack_recon_error_test", "fine_tune_loss", "train_accuracy",
                "exact_kl"} | {cls.name for cls in vars(monitors).values()
                                if isinstance(cls, type) and issubclass(cls, monitors.Metric) and cls is not monitors.Metric}
    for name in recorded:
        c = curves.CURVES[name]
        assert c.label and c.help and c.panel and c.better in ("lower", "higher", "")
        if c.better:
            assert "better" in c.help, name
    for name in ("energy_distance", "weight_participation", "free_energy_gap"):
        assert len(curves.CURVES[name].help) > 60, name           # explained, not just named
    assert curves.is_better("recon_error", 0.1, 0.2) and curves.is_better("accuracy", 0.9, 0.8)
    assert not curves.is_better("weight_square", 2.0, 1.0)
    assert curves.curve("my_metric").label == "my_metric" and "layer" in curves.NOT_CURVES


def test_distribution_figure_draws_the_top_configurations_as_pictures():
    n = 3
    configs = viz.binary_configs(n)
    assert configs[6].tolist() == [1, 1, 0] and len(configs) == 8
    model = torch.tensor([0.3, 0.02, 0.02, 0.02, 0.02, 0.02, 0.5, 0.1])
    data = torch.zeros(8)
    data[[1, 6]] = 0.5
    fig = distribution_figure(model, data, configs=configs, title="tiny RBM", top=4, image_shape=(1, 3))
    model_bars, data_bars = fig.data
    # ranked by max(data, model), ties in binary order: 1 (data 0.5), 6 (0.5 both), 0 (model 0.3), 7
    assert list(model_bars.customdata) == ["001", "110", "000", "111"]
    assert list(model_bars.y) == pytest.approx([0.02, 0.5, 0.3, 0.1])
    assert list(data_bars.y) == pytest.approx([0.5, 0.5, 0.0, 0.0])
    # one picture per bar pair, placed at its bar; white pixels where the configuration has ones
    assert [im.x for im in fig.layout.images] == [0, 1, 2, 3]
    import base64

    import numpy as np
    png = base64.b64decode(fig.layout.images[0].source.split(",", 1)[1])
    picture = torch.from_numpy(np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float32)).flatten()
    assert {0, 255} <= set(picture.tolist())              # black and white pixels: 001 drawn
    # KL = 0.5 log(0.5/0.5) + 0.5 log(0.5/0.02) over all 8 configurations, not just the drawn ones
    kl = 0.5 * math.log(0.5 / 0.02)
    assert f"{kl:.3f}" in fig.layout.title.text and "the other 4" in fig.layout.title.text
    assert "p = 0.080" in fig.layout.title.text            # the model's mass outside the four drawn
    assert len(distribution_figure(model, data).layout.images) == 8      # default configs: binary order
    with pytest.raises(ValueError):
        distribution_figure(torch.ones(4) / 4, torch.ones(8) / 8)


def test_layer_weights_draws_every_layer_in_pixel_space():
    import energylab as el
    dbn = el.make("DBN", n_visible=64, hidden_layers="16,8")
    layers = viz.layer_weights(dbn)
    assert [c for c, _ in layers] == ["layer 1", "layer 2, projected to the pixels (W1···W2)"]
    assert torch.equal(layers[1][1], dbn.layers[0].W @ dbn.layers[1].W)
    conv = el.make("ConvRBM", n_visible=64)
    (caption, filters), = viz.layer_weights(conv)
    assert caption == "layer 1 filters" and filters.dim() == 4
    rbm = el.make("RBM", n_visible=64, n_hidden=5)
    assert len(viz.layer_weights(rbm)) == 1 and torch.equal(viz.layer_weights(rbm)[0][1], rbm.W)
