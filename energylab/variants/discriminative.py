"""Classification RBMs: the named variants `DiscriminativeRBM` and `HybridDiscriminativeRBM`.

Larochelle & Bengio 2008 (ICML). One model, `models/classifier.py` (`ClassRBM`: the
energy E(y, x, h), p(y | x) in closed form, the joint chain), trained by two objectives
of `training/objectives.py`: `Discriminative` (exact -log p(y | x)) and `Hybrid` (plus
alpha times CD-k on -log p(x, y)). Here: the schema, the factories that attach the
objective, and `register`.
"""
from __future__ import annotations

from ..models.classifier import ClassRBM
from ..registry import INIT_STD, Param, Variant, register
from ..training.objectives import Discriminative, Hybrid

# -- the variants ---------------------------------------------------------------

N_HIDDEN = Param("n_hidden", "int", 100, "number of hidden units", 1, 100000)
N_CLASSES = Param("n_classes", "int", 10, "number of classes (labels 0 .. n_classes - 1)", 2, 10000)
ALPHA = Param("alpha", "float", 0.01, "weight of the generative term -log p(x, y) (Larochelle & Bengio: 0.01 "
              "on MNIST)", 0.0, 100.0, live=True, log=True)
REFERENCE = "Larochelle & Bengio 2008 (ICML), Classification using discriminative RBMs"
# Exact gradients: a larger step and momentum than CD needs (checked on the digits test).
TRAINING = {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.0, "batch_size": 32, "epochs": 20}
# The exact gradient of log p(y | x) needs no negative phase: the sampler's settings mean nothing
# here (the hybrid's generative term runs CD-k on the joint, so it keeps k).
NO_SAMPLER = ("sampler", "n_chains", "chain_init", "pt_temperatures", "pt_min_beta", "driven_momentum",
              "driven_std", "method")
WATCH = ("test accuracy climbs from chance (10 %) towards 95 %; the weights become digit-part detectors. "
         "The confusion matrix beside it shows which classes it still mixes up.")


def _discriminative(n_visible, n_hidden, n_classes, init_std):
    return ClassRBM(n_visible, n_hidden, n_classes, init_std, objective=Discriminative())


def _hybrid(n_visible, n_hidden, n_classes, init_std, alpha):
    return ClassRBM(n_visible, n_hidden, n_classes, init_std, objective=Hybrid(alpha))


register(Variant(
    name="DiscriminativeRBM", factory=_discriminative, params=(N_HIDDEN, N_CLASSES, INIT_STD),
    summary="RBM with softmax class units trained on the exact log p(y | x)",
    visible="Bernoulli + one-hot class", hidden="Bernoulli", method="exact conditional likelihood (autograd)",
    reference=REFERENCE, training_defaults=TRAINING, main_metric="accuracy", unused=NO_SAMPLER + ("k",),
    essentials=("n_hidden", "lr"), what_to_watch=WATCH, dashboard_training={"epochs": 500},
))

register(Variant(
    name="HybridDiscriminativeRBM", factory=_hybrid, params=(N_HIDDEN, N_CLASSES, INIT_STD, ALPHA),
    summary="discriminative RBM plus alpha x the generative log p(x, y) trained by CD on the joint",
    visible="Bernoulli + one-hot class", hidden="Bernoulli", method="exact log p(y | x) + alpha CD-k on (x, y)",
    reference=REFERENCE, training_defaults=TRAINING, main_metric="accuracy", unused=NO_SAMPLER,
    essentials=("n_hidden", "alpha", "lr", "k"), dashboard_training={"epochs": 500},
    what_to_watch=WATCH + " Raise alpha and samples of the digits appear too.",
))
