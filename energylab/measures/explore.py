"""Looking at a trained model up close: inpainting, hidden activity as pictures, a classifier's
confusion matrix and p(y | x), the trained part of a stack. The dashboard's Explore page, the
dashboard's training process (for the Train page) and the notebooks call these; pages only draw.

    known = el.explore.half_mask((8, 8), "top")              # clamp the top half
    completions = el.explore.inpaint(model, x.repeat(8, 1), known, steps=50, generator=g)
"""
from __future__ import annotations

import torch

from ..errors import DataError


def half_mask(image_shape, keep: str = "top") -> torch.Tensor:
    """A flat boolean mask over an image's pixels: True where the pixel is known ("top", "bottom",
    "left" or "right" half kept); every channel alike."""
    *channels, height, width = (int(s) for s in image_shape)
    mask = torch.zeros(height, width, dtype=torch.bool)
    halves = {"top": (slice(0, height // 2), slice(None)), "bottom": (slice(height // 2, None), slice(None)),
              "left": (slice(None), slice(0, width // 2)), "right": (slice(None), slice(width // 2, None))}
    if keep not in halves:
        raise DataError(f"unknown half {keep!r}", field="keep", value=keep, fix=f"use one of {list(halves)}")
    mask[halves[keep]] = True
    return mask.expand(*channels, height, width).flatten() if channels else mask.flatten()


@torch.no_grad()
def inpaint(model, x: torch.Tensor, known_mask: torch.Tensor, steps: int = 50, generator=None,
            beta: float = 1.0) -> torch.Tensor:
    """Fill in the unknown pixels of `x` from the model, keeping the known ones clamped.

    Block Gibbs sampling with the known visible units held at their values: every step samples
    h | v, then v | h, and writes the known pixels back. The chain's stationary distribution is
    the model's conditional p(v_unknown | v_known) (Hinton 2012's "filling in"), so repeated
    rows of `x` give different plausible completions. Unknown pixels start as uniform noise.

    `x` is (batch, n_visible) or one row; `known_mask` a bool tensor broadcastable to it (e.g.
    `half_mask`). Returns the completed (batch, n_visible) states: the known pixels exactly `x`.
    """
    x = model.check_visible(x if x.dim() == 2 else x[None], "images to inpaint")
    known = torch.as_tensor(known_mask, device=x.device)
    if known.dtype != torch.bool:
        raise DataError("the mask must be boolean (True = known pixel)", field="known_mask",
                        value=str(known.dtype), fix="pass e.g. half_mask(image_shape) or x > 0")
    try:
        known = torch.broadcast_to(known, x.shape)
    except RuntimeError:
        raise DataError(f"a mask of shape {tuple(known.shape)} does not fit images of shape {tuple(x.shape)}",
                        field="known_mask", fix="give one flag per visible unit") from None
    if steps < 0:
        raise DataError("must be 0 or more", field="steps", value=steps)
    noise = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    v = torch.where(known, x, noise)
    for _ in range(steps):
        v = torch.where(known, x, model.gibbs(v, 1, beta=beta, generator=generator).to(x.dtype))
    return v


@torch.no_grad()
def hidden_maps(model, x: torch.Tensor) -> torch.Tensor | None:
    """A convolutional model's hidden activity for one input as pictures: (n_filters, H, W) of
    p(h = 1 | v), one feature map per filter (a convolutional stack: its first layer's); None for
    a model whose hidden units have no layout."""
    layers = getattr(model, "layers", None)
    if layers is not None and hasattr(model, "depth"):   # a stack: its first layer's maps (it sees the image)
        model = layers[0]
    shape = getattr(getattr(model, "coupling", None), "hidden_shape", None)
    if shape is None or len(shape) != 3:          # a dense layer's units are a list, not maps
        return None
    x = model.check_visible(x if x.dim() == 2 else x[None], "input")
    return model.p_h(x[:1].to(model.a.dtype)).reshape(tuple(shape))


def is_classifier(model) -> bool:
    """Whether the model predicts classes: a classification RBM, or a stack with a fine-tuned head
    (a stack without one has predict_proba, but it refuses)."""
    has_head = getattr(model, "head", True) is not None
    return callable(getattr(model, "predict_proba", None)) and has_head


@torch.no_grad()
def confusion_matrix(model, x: torch.Tensor, y: torch.Tensor, n_classes: int | None = None) -> torch.Tensor:
    """(n_classes, n_classes) counts: row = true class, column = the model's prediction."""
    if not is_classifier(model):
        raise DataError(f"{type(model).__name__} is not a classifier (it has no predict_proba)",
                        fix="use a DiscriminativeRBM or HybridDiscriminativeRBM run")
    y = torch.as_tensor(y).long().to(model.device)
    n_classes = n_classes or getattr(model, "n_classes", int(y.max()) + 1)
    predicted = model.predict_proba(x.to(model.device)).argmax(-1)
    return torch.bincount(y * n_classes + predicted, minlength=n_classes ** 2).reshape(n_classes, n_classes).cpu()


@torch.no_grad()
def class_probabilities(model, x: torch.Tensor) -> torch.Tensor:
    """p(y | x) for every row of `x` and every class: (batch, n_classes), on the CPU."""
    if not is_classifier(model):
        raise DataError(f"{type(model).__name__} is not a classifier (it has no predict_proba)",
                        fix="use a DiscriminativeRBM or HybridDiscriminativeRBM run")
    return model.predict_proba(x.to(model.device)).cpu()


def examples_per_class(y: torch.Tensor, per_class: int = 2, limit: int = 30) -> torch.Tensor:
    """Indices of the first `per_class` examples of every class, in class order (at most `limit`):
    a small, fixed set of test images that covers every class, to look at one by one."""
    y = torch.as_tensor(y).long().cpu()
    picked = [i for c in torch.unique(y).tolist() for i in (y == c).nonzero().flatten()[:per_class].tolist()]
    return torch.tensor(picked[:limit], dtype=torch.long)


# -- the trained part of a stack ----------------------------------------------------------------
# While a stack trains layer l, the layers above it still hold their random initial weights: a
# reconstruction or a sample through the whole stack passes through them and shows the mean image
# or noise, whatever layer 1 has learnt. These look through layers 1..depth only.
def _is_stack(model) -> bool:
    return hasattr(model, "depth") and hasattr(model, "lower") and hasattr(model, "layers")


@torch.no_grad()
def reconstruct_through(model, v: torch.Tensor, depth: int | None = None) -> torch.Tensor:
    """Mean-field reconstruction of `v` up through the first `depth` layers of a stack and back down
    (None, or a model that is not a stack: its own `reconstruct`)."""
    if not _is_stack(model) or depth is None or depth >= model.depth:
        return model.reconstruct(v)
    depth = max(1, int(depth))
    top = model.layers[depth - 1]
    x = top.p_v(top.p_h(model.features(v, depth - 1)))
    for l in reversed(range(depth - 1)):
        x = model.lower(l, x)
    return x


@torch.no_grad()
def sample_through(model, n: int, k: int = 1, depth: int | None = None, beta: float = 1.0,
                   init: torch.Tensor | None = None, generator=None) -> torch.Tensor:
    """Samples of the first `depth` layers of a stack: k Gibbs steps in RBM `depth` (started at the
    up-pass of `init`, visible data, when given), then one sampled downward pass to the pixels, as
    Hinton et al. 2006 (section 4) sample a whole DBN. Not a stack, or depth None: `model.sample`."""
    if not _is_stack(model) or depth is None or depth >= model.depth:
        return model.sample(n, k=k, beta=beta, init=init, generator=generator)
    depth = max(1, int(depth))
    start = None if init is None else model.features(init, depth - 1)
    x = model.layers[depth - 1].sample(n, k, beta, init=start, generator=generator)
    for l in reversed(range(depth - 1)):
        x = model.lower(l, x, True, beta, generator)
    return x
