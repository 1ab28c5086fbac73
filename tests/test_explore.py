"""explore: inpainting samples the model's exact conditional, hidden maps are the conv units'
probabilities, the confusion matrix counts what the classifier predicts."""
import itertools

import pytest
import torch

import energylab as el
from energylab.errors import DataError
from energylab.measures.explore import confusion_matrix, half_mask, hidden_maps, inpaint


def test_half_masks():
    assert half_mask((2, 4), "top").tolist() == [True] * 4 + [False] * 4
    assert half_mask((2, 2), "left").tolist() == [True, False, True, False]
    assert half_mask((3, 2, 2), "bottom").reshape(3, 4)[:, 2:].all() and half_mask((3, 2, 2)).sum() == 6
    with pytest.raises(DataError):
        half_mask((4, 4), "middle")


def test_inpainting_samples_the_exact_conditional_and_keeps_the_known_pixels():
    """Ground truth by enumeration: p(v_unknown | v_known) ∝ exp(-F(v)) over the 2^2 completions."""
    torch.manual_seed(0)
    model = el.make("RBM", n_visible=4, n_hidden=3)
    with torch.no_grad():
        model.W.copy_(1.5 * torch.randn(4, 3))
        model.a.copy_(torch.tensor([0.5, -1.0, 1.0, -0.5]))
    x = torch.tensor([1.0, 0.0, 0.0, 0.0]).repeat(6000, 1)
    known = torch.tensor([True, True, False, False])
    v = inpaint(model, x, known, steps=25, generator=torch.Generator().manual_seed(1))
    assert torch.equal(v[:, :2], x[:, :2]) and set(v.unique().tolist()) <= {0.0, 1.0}
    completions = torch.tensor(list(itertools.product([0.0, 1.0], repeat=2)))
    full = torch.cat([x[:4, :2], completions], 1)
    with torch.no_grad():
        exact = torch.softmax(-model.free_energy(full.double().to(model.a.dtype)).double(), 0)
    seen = torch.stack([(v[:, 2:] == c).all(1).double().mean() for c in completions])
    assert (exact - seen).abs().sum() / 2 < 0.03, (exact, seen)            # total variation
    assert exact.max() < 0.9                                                 # a conditional worth sampling


def test_inpainting_refuses_a_mask_that_does_not_fit():
    model = el.make("RBM", n_visible=4, n_hidden=2)
    x = torch.zeros(2, 4)
    with pytest.raises(DataError, match="does not fit"):
        inpaint(model, x, torch.ones(3, dtype=torch.bool))
    with pytest.raises(DataError, match="boolean"):
        inpaint(model, x, torch.ones(4))
    assert torch.equal(inpaint(model, x, torch.ones(4, dtype=torch.bool), steps=3), x)   # all known: x back


def test_hidden_maps_are_the_conv_units_probabilities_as_images():
    model = el.make("ConvRBM", n_visible=64, n_filters=3, filter_height=5, filter_width=5)
    x = torch.rand(2, 64).round()
    maps = hidden_maps(model, x)
    assert maps.shape == (3, 4, 4)
    assert torch.allclose(maps.flatten(), model.p_h(x[:1]).flatten())
    assert hidden_maps(el.make("RBM", n_visible=64, n_hidden=5), x) is None
    stack = el.make("ConvDBN", n_visible=64)
    assert torch.allclose(hidden_maps(stack, x).flatten(), stack.layers[0].p_h(x[:1]).flatten())
    assert hidden_maps(el.make("DBN", n_visible=64), x) is None


def test_confusion_matrix_counts_predictions_against_labels():
    data = el.datasets.load("digits")
    model = el.make("DiscriminativeRBM", n_visible=64, n_hidden=32)
    el.Trainer(model, epochs=4, eval_every=10 ** 6).fit(data)
    x, y = data.test[:200], data.test_labels[:200]
    counts = confusion_matrix(model, x, y)
    predicted = model.predict(x)
    assert counts.shape == (10, 10) and counts.sum() == 200
    assert counts[3].sum() == (y == 3).sum() and counts[:, 3].sum() == (predicted == 3).sum()
    assert counts.diagonal().sum() / 200 == pytest.approx(el.metrics.accuracy(model, x, y))
    assert counts.diagonal().sum() > 100                                      # one epoch already classifies
    with pytest.raises(DataError, match="not a classifier"):
        confusion_matrix(el.make("RBM", n_visible=64), x, y)
    assert el.explore.is_classifier(model) and not el.explore.is_classifier(el.make("DBN", n_visible=64))
    assert el.explore.is_classifier(el.make("DBN", n_visible=64, fine_tune="head"))
    fig = el.viz.confusion_figure(counts)
    assert "accuracy" in fig.layout.title.text and fig.data[0].z[3][3] == pytest.approx(
        float(counts[3, 3] / counts[3].sum()))
