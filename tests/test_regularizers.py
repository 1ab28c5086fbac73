"""`freeze` on every model's own parameter names (training/regularizers.py)."""
import pytest
import torch

import energylab as el
from energylab.training import regularizers


def _model(name):
    return el.make(name, n_visible=64)


@pytest.mark.parametrize("name", sorted(el.VARIANTS))
def test_every_freeze_choice_names_parameters_of_every_variant(name):
    model = _model(name)
    params = dict(model.named_parameters())
    named = {choice: {n for n, p in params.items() if any(p is q for q in regularizers.frozen(model, choice))}
             for choice in regularizers.FREEZE}
    assert named["none"] == set()
    for choice in ("weights", "visible_bias", "hidden_bias", "biases"):
        assert named[choice], f"freeze={choice} names nothing in {name}"
    assert named["biases"] == named["visible_bias"] | named["hidden_bias"]
    assert not named["visible_bias"] & named["hidden_bias"]
    assert not named["weights"] & named["biases"]


def test_freeze_biases_keeps_a_dbms_biases_while_its_weights_learn():
    data = el.datasets.load("bars-and-stripes", size=3)
    model = el.make("DBM", n_visible=data.n_visible, hidden_layers="6,4")
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    el.Trainer(model, epochs=2, batch_size=4, lr=0.1, freeze="biases", device="cpu").fit(data)
    after = dict(model.named_parameters())
    for n, p in before.items():
        moved = not torch.equal(p, after[n].detach())
        assert moved == n.startswith("couplings"), n


def test_a_freeze_that_names_nothing_is_an_error():
    class Bare(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.coupling = torch.nn.Linear(2, 2, bias=False)
    with pytest.raises(ValueError, match="names no parameter"):
        regularizers.frozen(Bare(), "biases")
