"""Stacks: the named variants `DBN`, `ResidualDBN` and `ConvDBN`, stacks of registered variants built by `make`.

- `DBN` (Hinton, Osindero & Teh 2006; `models/stacks.py`: `Stack`): layer 1 any Bernoulli-hidden
  variant (RBM, a dropout RBM, a Gaussian or sigmoid-visible RBM), the layers above one upper variant.
- `ResidualDBN` (Roder, Passos, Ribeiro, Pereira, Papa & Rossi 2020, ICAISC; `models/residual.py`:
  `ResidualStack`): the same layers; the next layer sees the hidden probabilities reinforced by the
  normalised rectified pre-activation, weighted by `zeta1`, `zeta2`.
- `ConvDBN` (Lee, Grosse, Ranganath & Ng 2009; `models/conv.py`: `ConvStack`): a stack of `ConvRBM`s,
  passing up the (pooled) maps of the layer below.

Here: the schemas, the factories that build the layers and `register`.
"""
from __future__ import annotations

from ..models.conv import ConvStack
from ..models.residual import ResidualStack
from ..models.stacks import Stack
from ..registry import INIT_STD, KindsOf, Param, Registered, Variant, make, register

# First layers whose hidden units are Bernoulli (their means lie in [0, 1], as the next layer needs).
# The choices are looked up when asked (`Registered`): a variant module imported after this one
# still becomes a layer option.
FIRST = ("RBM", "GaussianRBM", "SigmoidRBM", "DropoutRBM", "DropConnectRBM", "EDropoutRBM", "VarianceGaussianRBM")
UPPER = ("RBM", "SigmoidRBM", "DropoutRBM", "DropConnectRBM", "EDropoutRBM")
CONV_FIRST = ("ConvRBM", "GaussianConvRBM")


LAYER_EPOCHS = Param("layer_epochs", "ints", "", "epochs of each layer, e.g. '20,10' (empty: the trainer's "
                     "epochs for every layer)", 1, 10000)
FINE_TUNING = {"fine_tune": ("head", "all")}      # the head's settings apply only with a head
FINE_TUNE = (
    Param("fine_tune", "choice", "off", "supervised softmax head after pretraining: off, head only (frozen "
          "features) or all layers by backpropagation", choices=("off", "head", "all")),
    Param("n_classes", "int", 10, "number of classes of the fine-tuning head", 2, 10000, when=FINE_TUNING),
    Param("fine_tune_epochs", "int", 10, "epochs of supervised fine-tuning", 1, 10000, when=FINE_TUNING),
    Param("fine_tune_lr", "float", 0.3, "learning rate of fine-tuning (SGD, momentum 0.9)", 1e-5, 1.0, log=True,
          when=FINE_TUNING),
)
DENSE = (
    Param("hidden_layers", "ints", "128,64", "hidden units of each layer, bottom to top, e.g. '256,64'", 1, 100000),
    Param("first_layer", "choice", "RBM", "variant of the first layer (it sees the data)", choices=Registered(FIRST)),
    Param("upper_layers", "choice", "RBM", "variant of the layers above the first", choices=Registered(UPPER)),
    INIT_STD, LAYER_EPOCHS,
) + FINE_TUNE


def _sizes(text: str, what: str) -> list:
    sizes = [int(s) for s in text.split(",") if s]
    if not sizes:
        raise ValueError(f"{what} is empty; give at least one number, e.g. '256,64'")
    return sizes


def _epochs(text: str) -> tuple:
    return tuple(int(s) for s in text.split(",") if s)


def _dense_layers(n_visible, hidden_layers, first_layer, upper_layers, init_std):
    layers, n_in = [], n_visible
    for l, n_hidden in enumerate(_sizes(hidden_layers, "hidden_layers")):
        layers.append(make(first_layer if l == 0 else upper_layers, n_in, n_hidden=n_hidden, init_std=init_std))
        n_in = n_hidden
    return layers


def dbn(n_visible, hidden_layers, first_layer, upper_layers, init_std, layer_epochs, fine_tune, n_classes,
        fine_tune_epochs, fine_tune_lr):
    layers = _dense_layers(n_visible, hidden_layers, first_layer, upper_layers, init_std)
    return Stack(layers, _epochs(layer_epochs), fine_tune, n_classes, fine_tune_epochs, fine_tune_lr)


def residual_dbn(n_visible, hidden_layers, first_layer, upper_layers, init_std, layer_epochs, fine_tune, n_classes,
                 fine_tune_epochs, fine_tune_lr, zeta1, zeta2):
    layers = _dense_layers(n_visible, hidden_layers, first_layer, upper_layers, init_std)
    return ResidualStack(layers, zeta1, zeta2, layer_epochs=_epochs(layer_epochs), fine_tune=fine_tune,
                         n_classes=n_classes, fine_tune_epochs=fine_tune_epochs, fine_tune_lr=fine_tune_lr)


CONV = (
    Param("n_filters", "ints", "8,8", "filters (hidden maps) of each layer, bottom to top", 1, 1024),
    Param("filter_sizes", "ints", "3,2", "side of the square filters of each layer", 1, 256),
    Param("first_layer", "choice", "ConvRBM", "variant of the first layer",
          choices=Registered(CONV_FIRST)),
    Param("pooling", "choice", "none", "probabilistic max-pooling in every layer (Lee et al. 2009, 3.3)",
          choices=("none", "probabilistic-max")),
    Param("pool_size", "int", 2, "side C of the C x C pooling blocks (with pooling)", 1, 16,
          when={"pooling": ("probabilistic-max",)}),
    Param("image_height", "int", 0, "image height (0: square, from n_visible / channels)", 0, 4096),
    Param("image_width", "int", 0, "image width (0: square, from n_visible / channels)", 0, 4096),
    Param("channels", "int", 1, "image channels", 1, 64),
    INIT_STD, LAYER_EPOCHS,
) + FINE_TUNE


def conv_dbn(n_visible, n_filters, filter_sizes, first_layer, pooling, pool_size, image_height, image_width,
             channels, init_std, layer_epochs, fine_tune, n_classes, fine_tune_epochs, fine_tune_lr):
    filters, sizes = _sizes(n_filters, "n_filters"), _sizes(filter_sizes, "filter_sizes")
    if len(filters) != len(sizes):
        raise ValueError(f"n_filters has {len(filters)} layers but filter_sizes has {len(sizes)}; give one filter "
                         "size per layer")
    layers, n_in, shape = [], n_visible, dict(channels=channels, image_height=image_height, image_width=image_width)
    for l, (k, size) in enumerate(zip(filters, sizes)):
        layer = make(first_layer if l == 0 else "ConvRBM", n_in, n_filters=k, filter_height=size, filter_width=size,
                     pooling=pooling, pool_size=pool_size, init_std=init_std, **shape)
        k, height, width = layer.hidden.shape
        if pooling != "none":
            height, width = height // pool_size, width // pool_size
        layers.append(layer)
        n_in, shape = k * height * width, dict(channels=k, image_height=height, image_width=width)
    return ConvStack(layers, _epochs(layer_epochs), fine_tune, n_classes, fine_tune_epochs, fine_tune_lr)


STACK_METHOD = "greedy layerwise CD-k / PCD on cached features; optional softmax fine-tuning"
STACK_WATCH = ("layer 1 trains first (its filters turn into strokes), then layer 2 on layer 1's features, and so on: "
               "each layer's reconstruction error falls in its turn; the page names the layer in training.")
# On the dashboard every layer gets a few hundred epochs (about a minute each on the class server), so
# a student sees the stack move through all its layers; the command line keeps the schema's defaults.
DENSE_GUIDE = dict(essentials=("hidden_layers", "layer_epochs", "lr", "k"), what_to_watch=STACK_WATCH,
                   dashboard_training={"epochs": 300, "layer_epochs": "300,300"})

register(Variant(
    name="DBN", factory=dbn, params=DENSE,
    summary="deep belief network: RBMs trained greedily on the cached features of the layer below",
    visible="first layer's", hidden="Bernoulli (top RBM)", method=STACK_METHOD,
    reference="Hinton, Osindero & Teh 2006 (Neural Computation)", data_kinds=KindsOf(FIRST), kinds_from="first_layer",
    **DENSE_GUIDE,
))

register(Variant(
    name="ResidualDBN", factory=residual_dbn,
    params=DENSE + (Param("zeta1", "float", 1.0, "weight of the hidden probabilities passed up", 0.0, 10.0),
                    Param("zeta2", "float", 1.0, "weight of the rectified pre-activation (the residual)", 0.0,
                          10.0)),
    summary="DBN whose layers pass up probabilities reinforced by the normalised rectified pre-activation",
    visible="first layer's", hidden="Bernoulli (top RBM)", method=STACK_METHOD,
    reference="Roder, Passos, Ribeiro, Pereira, Papa & Rossi 2020 (ICAISC)", data_kinds=KindsOf(FIRST),
    kinds_from="first_layer", **DENSE_GUIDE,
))

register(Variant(
    name="ConvDBN", factory=conv_dbn, params=CONV,
    summary="convolutional DBN: ConvRBMs stacked on the (pooled) maps of the layer below",
    visible="first layer's", hidden="Bernoulli maps (top ConvRBM)", method=STACK_METHOD,
    reference="Lee, Grosse, Ranganath & Ng 2009 (ICML)", training_defaults={"lr": 0.01, "batch_size": 32},
    data_kinds=KindsOf(CONV_FIRST), kinds_from="first_layer",
    essentials=("n_filters", "layer_epochs", "lr", "k"), what_to_watch=STACK_WATCH,
    unused=("sparsity_penalty", "target_activation"),
    dashboard_training={"epochs": 300, "layer_epochs": "300,300"},
))
