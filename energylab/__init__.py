"""energylab: energy-based models (RBMs and their relatives) for teaching and research.

    import energylab as el
    data = el.datasets.load("digits")
    model = el.make("RBM", n_visible=data.n_visible, n_hidden=32)
    history = el.Trainer(model, lr=0.05, k=1, epochs=5).fit(data)
    el.metrics.pseudo_log_likelihood(model, el.datasets.binarize(data.test, "threshold"))
"""
from . import ais, curves, datasets, dbm, explore, metrics, monitors, notebook, progress, schedules, tap, units, viz
from .checkpoint import CheckpointError, load
from .couplings import Dense
from .history import History
from .rbm import RBM
from .registry import VARIANTS, Param, Variant, make, register
from .samplers import CD, PCD
from .trainer import Callback, Trainer, TrainingDiverged
from . import variants  # noqa: E402,F401  (registers the named variants)

__version__ = "0.1.0"
__all__ = ["ais", "curves", "datasets", "explore", "progress", "dbm", "metrics", "notebook", "tap", "schedules",
           "units", "viz", "load", "CheckpointError", "Dense", "History", "RBM", "VARIANTS", "Param", "Variant",
           "make", "register", "CD", "PCD", "Callback", "Trainer", "TrainingDiverged"]
