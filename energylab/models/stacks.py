"""Stacks of RBMs: deep belief networks, trained greedily one layer at a time.

Hinton, Osindero & Teh 2006, "A fast learning algorithm for deep belief nets"
(Neural Computation 18). A DBN with layers l = 1..L is

    p(v, h1, ..., hL) = p(v | h1) p(h1 | h2) ... p(h_{L-2} | h_{L-1}) p(h_{L-1}, hL)

- the top two layers form an RBM (an undirected associative memory), the layers
  below are directed, top-down, with the conditionals p(h_{l-1} | h_l) of RBM l;
- training is greedy (section 4): RBM 1 learns the data, RBM l+1 learns the
  features x_{l+1} = lift_l(x_l) of RBM l (here the mean-field E[h_l | x_l],
  Hinton 2012, section 3.3), each with the engine's ordinary CD / PCD;
- generation (section 4): Gibbs sampling in the top RBM, then one downward pass
  that samples p(h_{l-1} | h_l) layer by layer down to the visible units.

Cost. The features of the whole training set are computed once when a layer has
finished (`layerwise.py`), so RBM l+1 reads them like a dataset: an epoch of the
stack costs the sum of its RBM epochs, not the square of its depth (Learnergy's
DBN pushes every mini-batch through all the layers below again).

Supervised fine-tuning (optional): a softmax head on the top representation,
trained by cross-entropy either alone ("head": logistic regression on frozen
features) or by backpropagation through the deterministic up-pass ("all"), the
discriminative fine-tuning of Hinton & Salakhutdinov 2006 (Science) and Bengio
et al. 2007 (NIPS), not the up-down algorithm of Hinton et al. 2006.

Subclasses change only `lift` (what the next layer sees) and `lower` (the top-down
step): `ResidualStack` (`residual.py`) and `ConvStack` (`conv.py`).
"""
from __future__ import annotations

import copy

import torch
from torch import nn

CHUNK = 4096        # rows per forward pass when whole datasets are lifted


class Stack(nn.Module):
    """A deep belief network: a list of RBMs (any registered variants), optionally a softmax head.

    Looks like an RBM to the rest of the engine: `visible` is the first layer's,
    `hidden` the top layer's, `W` the first layer's weights, `p_h` / `p_v` go all
    the way up / down, `reconstruct` and `sample` likewise.
    """

    def __init__(self, layers, layer_epochs=(), fine_tune: str = "off", n_classes: int = 10,
                 fine_tune_epochs: int = 10, fine_tune_lr: float = 0.3):
        super().__init__()
        if not layers:
            raise ValueError("a stack needs at least one layer; give hidden_layers such as '256,64'")
        if layer_epochs and len(layer_epochs) != len(layers):
            raise ValueError(f"layer_epochs has {len(layer_epochs)} entries but the stack has {len(layers)} layers; "
                             "give one number of epochs per layer, or leave it empty to use the trainer's epochs")
        if fine_tune not in ("off", "head", "all"):
            raise ValueError(f"fine_tune must be 'off', 'head' or 'all', got {fine_tune!r}")
        self.layers = nn.ModuleList(layers)
        # An alias, so that `model.W` and the state-dict key "coupling.W" name the first layer's
        # weights exactly as for a single RBM (a checkpoint then holds that tensor twice).
        self.coupling = layers[0].coupling
        self.layer_epochs, self.fine_tune = tuple(layer_epochs), fine_tune
        self.fine_tune_epochs, self.fine_tune_lr = fine_tune_epochs, fine_tune_lr
        self.config: dict = {}
        self.init_lift()
        with torch.no_grad():
            self.top_size = self.features(torch.zeros(1, self.n_visible)).shape[1]
        self.head = nn.Linear(self.top_size, n_classes) if fine_tune != "off" else None

    # -- names users know ------------------------------------------------------------
    @property
    def depth(self) -> int:
        return len(self.layers)

    @property
    def visible(self):
        return self.layers[0].visible

    @property
    def hidden(self):
        return self.layers[-1].hidden

    @property
    def W(self) -> torch.Tensor:
        return self.layers[0].W

    @property
    def a(self) -> torch.Tensor:
        return self.layers[0].a

    @property
    def b(self) -> torch.Tensor:
        return self.layers[-1].b

    @property
    def n_visible(self) -> int:
        return self.layers[0].n_visible

    @property
    def n_hidden(self) -> int:
        return self.layers[-1].n_hidden

    @property
    def device(self) -> torch.device:
        return self.layers[0].device

    @property
    def needs_labels(self) -> bool:
        return self.head is not None

    @property
    def n_classes(self) -> int:
        return 0 if self.head is None else self.head.out_features

    def plan(self, epochs: int) -> list:
        """The phases of training: [(layer index, epochs), ..., ("head", epochs)]."""
        phases = [(l, self.layer_epochs[l] if self.layer_epochs else epochs) for l in range(self.depth)]
        return phases + ([("head", self.fine_tune_epochs)] if self.head is not None else [])

    # -- the up-pass -------------------------------------------------------------------
    def lift(self, l: int, x: torch.Tensor) -> torch.Tensor:
        """What layer l + 1 sees when layer l sees x: the mean-field E[h_l | x] (flat rows)."""
        return self.layers[l].p_h(x).flatten(1)

    def init_lift(self) -> None:
        """Create what `lift` needs besides the layers (none here; see ResidualStack)."""

    def fit_lift(self, l: int, x: torch.Tensor) -> None:
        """Fit constants of `lift` on the whole training input of layer l (none here; see ResidualStack)."""

    def features(self, v: torch.Tensor, depth: int | None = None) -> torch.Tensor:
        """The input of layer `depth` (default: the top representation above the last layer)."""
        for l in range(self.depth if depth is None else depth):
            v = self.lift(l, v)
        return v

    @torch.no_grad()
    def lift_all(self, l: int, x: torch.Tensor) -> torch.Tensor:
        """`lift` over a whole dataset in chunks: the cached features the next layer trains on."""
        return torch.cat([self.lift(l, x[i:i + CHUNK]) for i in range(0, x.shape[0], CHUNK)])

    # -- the down-pass -----------------------------------------------------------------
    def lower(self, l: int, h: torch.Tensor, sample: bool = False, beta=1.0, generator=None) -> torch.Tensor:
        """One top-down step: the state h of layer l's hidden units -> its visible units (mean or sample)."""
        layer = self.layers[l]
        return layer.sample_v(h, beta, generator) if sample else layer.p_v(h, beta)

    # -- the RBM-like interface -----------------------------------------------------------
    def p_h(self, v, beta=1.0):
        """E[h_L | x_L]: the top layer's hidden means, x_L the up-pass of v."""
        return self.layers[-1].p_h(self.features(v, self.depth - 1), beta)

    def p_v(self, h, beta=1.0):
        """The mean-field down-pass from a top hidden state to the visible means."""
        x = self.layers[-1].p_v(h, beta)
        for l in reversed(range(self.depth - 1)):
            x = self.lower(l, x, False, beta)
        return x

    def free_energy(self, v, beta=1.0):
        """The first layer's RBM free energy F_1(v). A DBN's own log p(v) is intractable: F_1 is the
        free energy of the model before the upper layers replaced its prior p(h_1) (Hinton et al. 2006, 4)."""
        return self.layers[0].free_energy(v, beta)

    @torch.no_grad()
    def reconstruct(self, v, sample_hidden: bool = False, generator=None):
        """Up to the top hidden means (or a sample of them) and mean-field back down."""
        h = self.p_h(v)
        if sample_hidden:
            h = self.layers[-1].hidden.sample(self.layers[-1].hidden_field(self.features(v, self.depth - 1)),
                                              self.layers[-1].b, 1.0, generator)
        return self.p_v(h)

    @torch.no_grad()
    def sample(self, n: int, k: int = 1000, beta=1.0, init: torch.Tensor | None = None, generator=None):
        """k Gibbs steps in the top RBM, then one sampled downward pass (Hinton et al. 2006, section 4).

        `init` (visible data) starts the top chain at its up-pass instead of at random.
        """
        start = None if init is None else self.features(self.check_visible(init, "init"), self.depth - 1)
        x = self.layers[-1].sample(n, k, beta, init=start, generator=generator)
        for l in reversed(range(self.depth - 1)):
            x = self.lower(l, x, True, beta, generator)
        return x

    @torch.no_grad()
    def gibbs(self, v, k: int = 1, beta=1.0, generator=None):
        """A visible chain step of the stack: up-pass of v, k Gibbs steps in the top RBM, sampled down-pass.
        (Not an exact Gibbs kernel of the DBN's p(v): the up-pass is the approximate, mean-field inference.)"""
        return self.sample(v.shape[0], k, beta, init=v, generator=generator)

    def check_visible(self, v, what: str = "visible data") -> torch.Tensor:
        return self.layers[0].check_visible(v, what)

    # -- exact likelihood of tiny stacks (ground truth, by enumeration) -------------------
    def _log_p_given_hidden(self, l: int, x, h):
        """log p_l(x | h) of RBM l for every pair: (rows of x) x (rows of h).

        p(x | h) = exp(-E_v(x) + s_v(x) . W s_h(h)) / Z_v(W s_h(h)), the unit type's own log-partition.
        """
        layer = self.layers[l]
        field = layer.visible_field(h)                                      # (n_h, n_visible)
        cross = layer.visible.stat(x).flatten(1) @ field.flatten(1).t()     # (n_x, n_h)
        return (-layer.visible.energy(x, layer.a)[:, None] + cross
                - layer.visible.log_partition(field, layer.a)[None, :])

    @torch.no_grad()
    def exact_log_likelihood(self, v, per_example: bool = False, max_units: int = 16):
        """log p(v) of the DBN in nats, exact: the top RBM's marginal pushed down the directed layers,

            log p(x_i) = logsumexp_{x_{i+1}} [log p_i(x_i | x_{i+1}) + log p(x_{i+1})],  p(x_{L-1}) from the top RBM,

        enumerating every layer between the data and the top RBM (tiny stacks only; float64).
        """
        from ..measures.metrics import exact_log_likelihood, exact_log_partition
        if self.depth == 1:
            return exact_log_likelihood(self.layers[0], v, per_example, max_units)
        sizes = [self.layers[l].n_visible for l in range(1, self.depth)]
        if any(not self.layers[l].visible.discrete or not hasattr(self.layers[l].visible, "enumerate")
               for l in range(1, self.depth)) or any(n > max_units for n in sizes):
            raise ValueError(f"the exact likelihood of a stack enumerates every layer above the data; its layers "
                             f"have {sizes} units (at most {max_units} binary units each allowed)")
        m = copy.deepcopy(self).double()                                    # float64, the model untouched
        top, device = m.layers[-1], self.device
        x = top.visible.enumerate(torch.float64, device)
        log_p = -top.free_energy(x) - exact_log_partition(top, max_units=max_units)   # p(x_{L-1}), every state
        for l in reversed(range(self.depth - 1)):
            below = (m.check_visible(v).double() if l == 0 else m.layers[l].visible.enumerate(torch.float64, device))
            log_p = torch.logsumexp(m._log_p_given_hidden(l, below, x) + log_p[None, :], 1)
            x = below
        return log_p if per_example else log_p.mean().item()

    @torch.no_grad()
    def exact_log_partition(self, beta: float = 1.0, max_units: int = 16) -> float:
        """log Z of the DBN's joint: the top RBM's (the directed layers below are normalised)."""
        from ..measures.metrics import exact_log_partition
        return exact_log_partition(self.layers[-1], beta, max_units)

    # -- the supervised head ------------------------------------------------------------
    def logits(self, v):
        if self.head is None:
            raise ValueError(f"this {self.config.get('variant', 'stack')} has no classifier head; build it with "
                             "fine_tune='head' or 'all' and train it on a labelled dataset to use predict")
        return self.head(self.features(v))

    @torch.no_grad()
    def predict_proba(self, x):
        return torch.softmax(self.logits(self.check_visible(x, "inputs")), -1)

    @torch.no_grad()
    def predict(self, x):
        return self.predict_proba(x).argmax(-1)

    @torch.no_grad()
    def bias_names(self) -> dict:
        """Which parameters `freeze` means: the first layer's visible bias; every other bias (the upper
        layers' own visible biases included: they are hidden layers of the stack) and the head's."""
        biases = {n for n, _ in self.named_parameters() if n.endswith((".a", ".b", ".bias"))}
        return {"visible_bias": {"layers.0.a"}, "hidden_bias": biases - {"layers.0.a"}}

    def objective_value(self, data) -> float:
        """Higher is better: minus the mean squared error of the whole up-down reconstruction (a proxy;
        greedy training maximises each layer's own likelihood, which no single number summarises)."""
        v = self.check_visible(data.train if hasattr(data, "train") else data)
        return -((self.reconstruct(v) - v) ** 2).mean().item()

    # -- training ------------------------------------------------------------------------
    #: `Trainer.fit` trains a stack layer by layer on cached features (training/layerwise.py)
    trains_layerwise = True

    def extra_repr(self) -> str:
        variant = self.config.get("variant")
        return f"variant={variant}, fine_tune={self.fine_tune}" if variant else f"fine_tune={self.fine_tune}"
