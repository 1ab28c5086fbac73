"""energylab: energy-based models (RBMs and their relatives) for teaching and research.

    import energylab as el
    data = el.datasets.load("digits")
    model = el.make("RBM", n_visible=data.n_visible, n_hidden=32)
    history = el.Trainer(model, lr=0.05, k=1, epochs=5).fit(data)
    el.metrics.pseudo_log_likelihood(model, el.datasets.binarize(data.test, "threshold"))

The sub-packages are layers, each importing only from those below it (tests/test_layering.py):
core (unit types, couplings) and datasets; schema (Param); registry (VARIANTS, make); measures;
models; training; variants (the named variants, registered on import); viz; store (run folders);
cli and server (the dashboard's background runs).
"""
from . import curves, datasets, notebook, progress, variants, viz  # variants: registers the named variants
from .core import units
from .core.couplings import Dense
from .measures import ais, explore, metrics, monitors, tap
from .models.rbm import RBM
from .registry import VARIANTS, Param, Variant, make, register
from .training import dbm, schedules  # dbm: the DBM model and its training (el.dbm)
from .training.checkpoint import CheckpointError, load
from .training.history import History
from .training.samplers import CD, PCD
from .training.trainer import Callback, Trainer, TrainingDiverged
from .version import __version__

__all__ = ["ais", "curves", "datasets", "explore", "progress", "dbm", "metrics", "notebook", "tap", "schedules",
           "units", "viz", "load", "CheckpointError", "Dense", "History", "RBM", "VARIANTS", "Param", "Variant",
           "make", "register", "CD", "PCD", "Callback", "Trainer", "TrainingDiverged", "__version__"]
