"""The variant registry: named models, each declared once with its hyperparameter schema.

A variant is a thin factory that composes engine parts (units, coupling, ...)
plus a schema of `Param`s. The command line builds its flags from the schema,
the dashboard its sliders, the notebooks their tables: adding a variant is one
`register(...)` call and its tests.

Here: the shared training schema (`TRAINING`), `Variant`, `VARIANTS` with `register` / `get` /
`make` / `from_config`, stack layer choices looked up when asked (`Registered`, `KindsOf`), and
the size limits `make` checks before allocating. `Param` itself is in `schema.py`.
"""
from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Callable

import torch

from . import schema as _schema
from .errors import ConfigError
from .schema import Param  # the hyperparameter record lives in schema.py; `registry.Param` stays its name here

# Conditions (`Param.when`): the sampler's options mean something only when the negative phase samples.
SAMPLING = {"method": ("sampling",)}
PERSISTENT = {**SAMPLING, "sampler": ("pcd", "pt", "driven")}

# Training hyperparameters every variant shares (a variant may override defaults).
TRAINING = (
    Param("lr", "float", 0.1, "learning rate of the weight updates", 1e-5, 1.0, live=True, log=True),
    Param("momentum", "float", 0.5, "momentum of the updates (Hinton's guide: 0.5, later 0.9)", 0.0, 0.99, live=True,
          when={"optimizer": ("sgd", "rmsprop")}),
    Param("weight_decay", "float", 1e-4, "L2 penalty on the weights (not the biases)", 0.0, 0.1, live=True, log=True),
    Param("k", "int", 1, "Gibbs steps per update in the negative phase (CD-k / PCD-k; TAP: relaxation rounds)",
          1, 100, live=True),
    Param("sampler", "choice", "cd", "negative phase: contrastive divergence, persistent chains, parallel "
          "tempering (pt) or the driven sampler", choices=("cd", "pcd", "pt", "driven"), when=SAMPLING),
    Param("n_chains", "int", 0, "persistent chains (pcd / pt / driven); 0 = one per example of a batch", 0, 100000,
          when=PERSISTENT),
    Param("chain_init", "choice", "data", "where persistent chains start: the first batch, or uniform noise",
          choices=("data", "random"), when=PERSISTENT),
    Param("pt_temperatures", "int", 10, "parallel tempering: rungs of the geometric ladder of inverse temperatures",
          2, 256, when={**SAMPLING, "sampler": ("pt",)}),
    Param("pt_min_beta", "float", 0.1, "parallel tempering: inverse temperature of the hottest rung", 0.001, 0.999,
          log=True, when={**SAMPLING, "sampler": ("pt",)}),
    Param("driven_momentum", "float", 0.9, "driven sampler: autocorrelation of each chain's inverse temperature",
          0.0, 0.999, when={**SAMPLING, "sampler": ("driven",)}),
    Param("driven_std", "float", 0.6, "driven sampler: spread of the Gamma-distributed inverse temperatures",
          0.01, 10.0, when={**SAMPLING, "sampler": ("driven",)}),
    Param("method", "choice", "sampling", "negative phase from the sampler above, or without sampling from the "
          "second order TAP free energy (Gabrie et al. 2015; Bernoulli or Gaussian layers)",
          choices=("sampling", "tap")),
    Param("batch_size", "int", 32, "examples per mini-batch", 1, 4096),
    Param("epochs", "int", 10, "passes over the training set", 1, 10000),
    Param("seed", "int", 0, "seed of every random draw of the run (reproducible runs)", 0, 2**31 - 1),
    Param("optimizer", "choice", "sgd", "update rule: SGD with momentum, Adam or RMSProp (torch.optim)",
          choices=("sgd", "adam", "rmsprop")),
    Param("l1", "float", 0.0, "L1 penalty on the weights (pushes weights to exactly zero); 0 = off", 0.0, 0.1,
          live=True, log=True),
    Param("max_norm", "float", 0.0, "largest L2 norm of each hidden unit's incoming weights; 0 = off", 0.0, 100.0,
          live=True),
    Param("sparsity_penalty", "float", 0.0, "weight of the sparsity target on hidden activations (Hinton 2012, "
          "11); 0 = off", 0.0, 10.0, live=True, log=True),
    Param("target_activation", "float", 0.1, "mean hidden activation the sparsity target aims for", 0.001, 0.999,
          live=True, log=True, when={"sparsity_penalty": {"not": (0,)}}),
    Param("freeze", "choice", "none", "parameters kept fixed during training",
          choices=("none", "weights", "visible_bias", "hidden_bias", "biases")),
    Param("sample_temperature", "float", 1.0, "temperature of the chains shown as model samples", 0.2, 5.0, live=True),
)


@dataclass(frozen=True)
class Variant(_schema.VariantGuide):
    """A named model: a factory composing engine parts, and the schema of its hyperparameters.
    `VariantGuide` (schema.py) adds what a UI asks of it: which parameters apply, the live ones,
    the dashboard's defaults, which way the main metric is good, the default dataset."""

    name: str
    factory: Callable[..., torch.nn.Module]     # factory(n_visible, **model hyperparameters) -> model
    params: tuple                   # model hyperparameters (architecture, unit options)
    summary: str
    visible: str
    hidden: str
    method: str
    reference: str
    data_kinds: tuple = ("binary", "unit")        # dataset kinds the visible units accept
    training_defaults: dict = field(default_factory=dict)
    #: a choice hyperparameter naming the variant that sees the data (a stack's "first_layer"): the
    #: kinds accepted then depend on its value, and `data_kinds` lists every kind some choice accepts
    kinds_from: str = ""
    #: a few hyperparameters a first-time user should see (the rest go under "Advanced");
    #: empty: the first model hyperparameter, lr and k
    essentials: tuple = ()
    #: two lines for a student: what the pictures and the main curve should do while it learns
    what_to_watch: str = ("the weights turn from noise into strokes and the reconstruction error falls; "
                          "samples come to look like the data.")
    #: values the dashboard starts from instead of the schema's (training ones, and model ones such as
    #: a stack's `layer_epochs`): long enough to watch, and a stack that reaches its top layer in minutes
    dashboard_training: dict = field(default_factory=lambda: {"epochs": 10000})   # minutes to watch, not seconds
    #: the curve that shows learning best (a name in `curves.CURVES`, which says which way is good)
    main_metric: str = "recon_error"
    #: training hyperparameters this variant ignores (a classifier's exact gradient needs no sampler)
    unused: tuple = ()
    #: the dataset a new run starts on; empty: the first registered dataset of a kind it accepts
    default_dataset: str = ""

    def __post_init__(self):
        if not self.essentials:
            names = [self.params[0].name] if self.params else []
            object.__setattr__(self, "essentials", tuple(names + ["lr", "k"]))

    @property
    def training(self) -> tuple:
        """The shared training schema with this variant's defaults."""
        return tuple(replace(p, default=self.training_defaults[p.name])
                     if p.name in self.training_defaults else p for p in TRAINING)

    @property
    def schema(self) -> tuple:
        return self.params + self.training

    def param(self, name: str) -> Param:
        for p in self.schema:
            if p.name == name:
                return p
        raise KeyError(f"variant {self.name!r} has no hyperparameter {name!r}; "
                       f"it has {[p.name for p in self.schema]}")

    def kinds_for(self, hparams: dict | None = None) -> tuple:
        """The data kinds accepted with these model hyperparameters (a stack: its first layer's)."""
        if not self.kinds_from:
            return self.data_kinds
        choice = (hparams or {}).get(self.kinds_from, self.param(self.kinds_from).default)
        return VARIANTS[choice].data_kinds

    def defaults_for_kind(self, kind: str) -> dict:
        """Model hyperparameters that fit data of `kind` where the defaults do not: a stack on
        real-valued data gets a first layer with Gaussian visible units."""
        if not self.kinds_from or kind in self.kinds_for():
            return {}
        fits = [c for c in self.param(self.kinds_from).choices if kind in VARIANTS[c].data_kinds]
        return {self.kinds_from: fits[0]} if fits else {}

    def check_kind(self, kind: str, dataset: str, hparams: dict | None = None) -> None:
        """A clear error when these hyperparameters cannot model data of `kind`, naming the fix."""
        accepted = self.kinds_for(hparams)
        if kind in accepted:
            return
        if self.kinds_from:
            choice = (hparams or {}).get(self.kinds_from, self.param(self.kinds_from).default)
            fits = [c for c in self.param(self.kinds_from).choices if kind in VARIANTS[c].data_kinds]
            raise ValueError(f"{self.name} with {self.kinds_from}={choice} models {'/'.join(accepted)} data but "
                             f"dataset {dataset!r} is {kind!r}; set {self.kinds_from} to one of {fits}")
        fits = [v.name for v in VARIANTS.values() if kind in v.data_kinds]
        raise ValueError(f"variant {self.name} models {'/'.join(accepted)} data but dataset {dataset!r} is "
                         f"{kind!r}; use a variant for {kind} data ({', '.join(fits) or 'none yet'})")

    def defaults(self, which: str = "all") -> dict:
        params = {"model": self.params, "training": self.training, "all": self.schema}[which]
        return {p.name: p.default for p in params}


VARIANTS: dict[str, Variant] = {}


class Registered(Sequence):
    """Those of `names` that are registered variants, looked up each time they are asked for: a
    stack's layer choices, whatever order the variant modules were imported in."""

    def __init__(self, names):
        self.names = tuple(names)

    def _now(self) -> tuple:
        return tuple(n for n in self.names if n in VARIANTS)

    def __getitem__(self, i):
        return self._now()[i]

    def __len__(self) -> int:
        return len(self._now())

    def __eq__(self, other) -> bool:
        return isinstance(other, Sequence) and tuple(self) == tuple(other)

    def __hash__(self) -> int:
        return hash(self.names)

    def __repr__(self) -> str:
        return repr(self._now())


class KindsOf(Registered):
    """Every data kind one of these (registered) variants accepts, looked up when asked."""

    def _now(self) -> tuple:
        return tuple(dict.fromkeys(k for n in self.names if n in VARIANTS for k in VARIANTS[n].data_kinds))


def register(variant: Variant) -> Variant:
    if variant.name in VARIANTS:
        raise ValueError(f"variant {variant.name!r} is already registered")
    VARIANTS[variant.name] = variant
    return variant


def get(name: str) -> Variant:
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; registered variants: {', '.join(VARIANTS)}")
    return VARIANTS[name]


def make(name: str, n_visible: int | None = None, **hparams) -> torch.nn.Module:
    """Build a registered variant: `make("RBM", n_visible=64, n_hidden=32)`.

    Hyperparameters not given take the schema's defaults; unknown names and
    out-of-range values raise a ValueError naming the problem.
    """
    variant = get(name)
    if n_visible is None:
        raise ValueError(f"make({name!r}) needs n_visible (the number of visible units, "
                         "e.g. dataset.n_visible)")
    n_visible = Param("n_visible", "int", 1, "visible units", 1, MAX_VISIBLE).validate(n_visible)
    known = {p.name: p for p in variant.params}
    unknown = sorted(set(hparams) - set(known))
    if unknown:
        training = {p.name for p in variant.training}
        hint = (" (training hyperparameters such as these belong to the Trainer)"
                if set(unknown) <= training else "")
        raise ValueError(f"variant {name!r} has no model hyperparameter(s) {unknown}{hint}; "
                         f"it takes {sorted(known)}")
    values = {p.name: p.validate(hparams.get(p.name, p.default)) for p in variant.params}
    # a stack's layers are built inside its own check (on "meta"): skip theirs; see also `size_checked`
    if torch.empty(0).device.type != "meta" and not getattr(_TRUSTED, "depth", 0):
        check_size(variant.name, n_visible, values)
    model = variant.factory(n_visible, **values)
    model.config = {"variant": name, "n_visible": n_visible, "hparams": values}
    return model


_TRUSTED = threading.local()     # per thread: how many `size_checked` blocks are open


@contextmanager
def size_checked():
    """Inside, `make` skips `check_size` on this thread: for a caller that checked the size itself.
    The run manager checks in the server process, so a training process never pays for the meta
    device's first operation (it imports torch's compiler stack: ~160 MB and ~2 s)."""
    _TRUSTED.depth = getattr(_TRUSTED, "depth", 0) + 1
    try:
        yield
    finally:
        _TRUSTED.depth -= 1


#: Size limits, checked before anything is allocated (`check_size`): at most MAX_VISIBLE visible units
#: and MAX_PARAMETERS numbers in a model's state (4e8 bytes in float32), and never more than a quarter
#: of the memory free now (training keeps ~4 copies: weights, gradients, momentum, the last good state).
MAX_VISIBLE = 10_000_000
MAX_PARAMETERS = 100_000_000


def _free_memory_bytes() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def shapes_of(name: str, n_visible: int, values: dict) -> dict:
    """{state-dict name: shape} of a variant with these (validated) hyperparameters, computed on
    torch's "meta" device: nothing is allocated and no random number is drawn."""
    with torch.device("meta"):
        model = get(name).factory(n_visible, **values)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def check_size(name: str, n_visible: int, values: dict) -> int:
    """The model's number count, or a ConfigError before any allocation when it exceeds the limits."""
    count = sum(math.prod(s) for s in shapes_of(name, n_visible, values).values())
    free = _free_memory_bytes()
    limit = MAX_PARAMETERS if free is None else min(MAX_PARAMETERS, free // 16)
    if count > limit:
        why = (f"the limit is {MAX_PARAMETERS:,} (energylab.registry.MAX_PARAMETERS)" if limit == MAX_PARAMETERS
               else f"only {free / 2**30:.1f} GiB of memory is free and training needs ~16 bytes a number")
        variant = get(name)
        shown = ", ".join([f"n_visible={n_visible}"] + [f"{k}={v}" for k, v in values.items()
                                                      if v != variant.param(k).default])
        raise ConfigError(f"{name} ({shown}) has {count:,} parameters; {why}",
                          field="model size", value=count, fix="use fewer or smaller layers")
    return count


def from_config(config: dict) -> torch.nn.Module:
    """Rebuild an (untrained) model from `model.config`."""
    return make(config["variant"], config["n_visible"], **config["hparams"])


# -- hyperparameters many variants share (the variants themselves: variants/) -----------------

N_HIDDEN = Param("n_hidden", "int", 64, "number of hidden units", 1, 100000)
INIT_STD = Param("init_std", "float", 0.01, "standard deviation of the initial weights", 1e-4, 1.0, log=True)
