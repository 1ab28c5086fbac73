"""Every curve a run records, in words a student understands: label, unit, panel, which way is
good, and one line of help (what it measures and what to make of it).

One table for the dashboard's curves, its tooltips, the notebooks' plots and the variants'
`main_metric` (registry.Variant), so a name is explained once. A name not listed (a metric a
user logs themselves) gets a neutral entry from `curve()`, never a KeyError.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Curve:
    label: str           # what the legend says
    unit: str            # what the y axis counts ("" for a pure number)
    help: str            # what it measures, and which way is good
    better: str = ""     # "lower", "higher", or "" (neither: a diagnostic to watch)
    panel: str = ""      # curves sharing a panel share a y axis (same unit, comparable scale)

    @property
    def title(self) -> str:
        """The panel's heading: its name and its unit."""
        return f"{self.panel} ({self.unit})" if self.unit else self.panel


NATS = "nats per example"
CURVES: dict[str, Curve] = {
    "recon_error": Curve(
        "reconstruction error", "mean squared error per pixel",
        "how far v → h → v lands from the input; lower is better, but a model can reconstruct well and "
        "still sample badly (it is not the training objective)", "lower", "reconstruction error"),
    "stack_recon_error": Curve(
        "whole-stack reconstruction (train)", "mean squared error per pixel",
        "data passed up through every layer and back down; lower is better", "lower", "reconstruction error"),
    "stack_recon_error_test": Curve(
        "whole-stack reconstruction (held-out)", "mean squared error per pixel",
        "the same on held-out data; lower is better", "lower", "reconstruction error"),
    "pseudo_log_likelihood": Curve(
        "log pseudo-likelihood (exact)", NATS,
        "sum over pixels of log p(pixel | all other pixels), every pixel flipped in turn; higher (closer to 0) "
        "is better", "higher", "log pseudo-likelihood"),
    "pseudo_log_likelihood_1bit": Curve(
        "log pseudo-likelihood (one-bit estimate)", NATS,
        "the same sum estimated by flipping one random pixel per example (noisy); higher is better",
        "higher", "log pseudo-likelihood"),
    "exact_log_likelihood": Curve(
        "log-likelihood (exact)", NATS,
        "log p(data) computed by summing over every state of the smaller layer: the objective itself; "
        "higher (closer to 0) is better", "higher", "log-likelihood"),
    "ais_log_likelihood": Curve(
        "log-likelihood (AIS estimate)", NATS,
        "log p(data) with log Z estimated by annealed importance sampling; higher is better",
        "higher", "log-likelihood"),
    "exact_kl": Curve(
        "KL(data ‖ model), exact", "nats",
        "how much probability the model puts away from the data's patterns, computed over every "
        "configuration; 0 means the model is the data distribution, lower is better", "lower", "KL divergence"),
    "kl_estimate": Curve(
        "KL(data ‖ model), estimated from samples", "nats",
        "the same divergence estimated from model samples; lower is better", "lower", "KL divergence"),
    "accuracy": Curve(
        "test accuracy", "fraction correct",
        "share of held-out examples whose most probable class is the right one; higher is better",
        "higher", "accuracy"),
    "train_accuracy": Curve(
        "training accuracy", "fraction correct",
        "the same on the training set; higher is better, but far above test accuracy means overfitting",
        "higher", "accuracy"),
    "fine_tune_loss": Curve(
        "fine-tuning loss", "nats per example",
        "cross-entropy of the supervised head; lower is better", "lower", "fine-tuning loss"),
    "free_energy_data": Curve(
        "free energy (data)", "energy units",
        "F(v) = -log of v's unnormalised probability; training pushes it down on the data. Watch it against "
        "the held-out curve", "", "free energy"),
    "free_energy_test": Curve(
        "free energy (held-out)", "energy units",
        "F(v) on data the model never trains on; it should follow the training curve", "", "free energy"),
    "free_energy_model": Curve(
        "free energy (model samples)", "energy units",
        "F(v) at the negative-phase particles; training pushes it up there and down on the data", "",
        "free energy"),
    "free_energy_gap": Curve(
        "free-energy gap (held-out − train)", "energy units",
        "how much more probable the training data are than held-out data; near 0 is better, rising steadily "
        "means the model memorises the training set (overfitting)", "lower", "free-energy gap"),
    "energy_distance": Curve(
        "energy distance, data vs model particles", "squared pixel distance",
        "a distance between two clouds of points (the data and the chains' particles): 0 when they have the "
        "same distribution; lower is better", "lower", "energy distance"),
    "weight_participation": Curve(
        "weight participation ratio", "fraction of pixels",
        "how many pixels each hidden unit uses: 1 = all pixels equally, near 0 = a few pixels (localised "
        "strokes); falling from 1 means filters are forming", "", "weight participation ratio"),
    "weight_square": Curve(
        "mean squared weight", "weight²",
        "the weights' size; steady growth is normal, a blow-up means the learning rate is too high", "",
        "mean squared weight"),
    "weight_norm": Curve("weight norm", "", "L2 norm of all weights", "", "weight norm"),
    "grad_norm": Curve("gradient norm", "", "size of the last update's gradient", "", "gradient norm"),
    "log_partition": Curve("log Z", "nats", "log of the partition function (the normaliser)", "", "log Z"),
    "swap_rate": Curve(
        "tempering swap rate", "fraction accepted",
        "how often neighbouring temperatures exchange states; near 0 means the ladder is too sparse", "",
        "swap rate"),
    "heat_capacity": Curve("heat capacity", "per unit", "variance of the energy of model samples", "",
                           "heat capacity"),
}

# Bookkeeping columns of a history: recorded, but not curves to plot.
NOT_CURVES = frozenset({"epoch", "time", "elapsed", "wall_time", "samples_per_s", "layer"})


def curve(name: str) -> Curve:
    """The entry for `name`; an unknown name gets a neutral one (its own panel, no direction)."""
    return CURVES.get(name) or Curve(name, "", f"{name} (recorded by the run)", "", name)


def label(name: str) -> str:
    return curve(name).label


def is_better(name: str, new: float, old: float) -> bool:
    """Whether `new` is an improvement on `old` for this curve (False where it has no direction)."""
    better = curve(name).better
    return (new < old) if better == "lower" else (new > old) if better == "higher" else False
