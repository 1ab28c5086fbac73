"""Every unit type in one place: `from energylab.core.units import Bernoulli, OneHot` (`el.units`).

The interface and the Bernoulli / Gaussian laws are in `base.py` (with its shared helpers), the
continuous and rectified types in `continuous.py`, one-hot (softmax) groups in `onehot.py`,
probabilistic max-pooling blocks in `pooling.py`.
"""
from .base import (  # noqa: F401  (re-exported)
    Bernoulli,
    Gaussian,
    LearnedVarianceGaussian,
    Units,
    bernoulli_from,
    flat_sum,
    normal_like,
    one_hot_from,
    scaled_field,
    softplus_owned,
    uniform_like,
)
from .continuous import (  # noqa: F401  (re-exported)
    SELU,
    NoisyReLU,
    SigmoidMeanField,
    StandardizedGaussian,
    StandardizedLearnedVarianceGaussian,
)
from .onehot import OneHot  # noqa: F401  (re-exported)
from .pooling import ProbMaxPool  # noqa: F401  (re-exported)
