"""Couplings: how the two layers of an RBM talk to each other.

A coupling owns the interaction weights and answers four questions:
`up(sv)` (the field on the hidden layer), `down(sh)` (the field on the visible
layer), `energy(sv, sh)` (the interaction energy -s_v^T W s_h per sample) and
`cd_grad(...)` (the difference of -dE/dW between positive and negative
particles, the statistic contrastive divergence follows). `up` and `down` take
an optional `bias` added to the result, inside the matrix product where the
coupling can (`torch.addmm`: no extra pass over the batch).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Dense(nn.Module):
    """A full weight matrix W of shape (n_visible, n_hidden)."""

    def __init__(self, n_visible: int, n_hidden: int, init_std: float = 0.01,
                 generator: torch.Generator | None = None):
        super().__init__()
        # Hinton 2012, section 8: small random weights N(0, 0.01^2) break the symmetry.
        W = torch.randn(n_visible, n_hidden, generator=generator) * init_std
        self.W = nn.Parameter(W)

    @property
    def visible_shape(self):
        return (self.W.shape[0],)

    @property
    def hidden_shape(self):
        return (self.W.shape[1],)

    def up(self, sv: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        return sv @ self.W if bias is None else torch.addmm(bias, sv, self.W)

    def down(self, sh: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        return sh @ self.W.t() if bias is None else torch.addmm(bias, sh, self.W.t())

    def energy(self, sv: torch.Tensor, sh: torch.Tensor) -> torch.Tensor:
        return -((sv @ self.W) * sh).sum(1)

    def cd_grad(self, sv_pos, sh_pos, sv_neg, sh_neg) -> torch.Tensor:
        """Descent direction for W: -(<sv sh^T>_pos - <sv sh^T>_neg), batch means, two GEMMs.

        The 1/n of the negative term scales the (small) hidden statistic, and the positive term
        accumulates in place: no pass over the (n_visible, n_hidden) result besides the GEMMs."""
        grad = sv_neg.t() @ (sh_neg * (1.0 / sv_neg.shape[0]))
        return grad.addmm_(sv_pos.t(), sh_pos, alpha=-1.0 / sv_pos.shape[0])

    def extra_repr(self) -> str:
        return f"{self.W.shape[0]} x {self.W.shape[1]}"



class Conv2d(nn.Module):
    """Shared 2-D filters `W` of shape (n_filters, channels, filter_height, filter_width).

    Lee, Grosse, Ranganath & Ng 2009, "Convolutional deep belief networks for
    scalable unsupervised learning of hierarchical representations": hidden
    group k sees the *valid* cross-correlation of the image with filter k
    (`up`), and the image sees the *full* convolution of every hidden map with
    its filter (`down`, the adjoint of `up`, so the energy is symmetric).

    The visible layer may be kept flat, (batch, C*H*W), so that datasets and the
    trainer never see images (`flat_visible=True`); the hidden layer is always
    (batch, n_filters, H - fh + 1, W - fw + 1). Hidden *biases* are not this
    class's business: the model ties one bias per filter, shape (n_filters, 1, 1),
    and the unit laws broadcast it over positions.
    """

    def __init__(self, image_shape: tuple, n_filters: int, filter_shape: tuple, init_std: float = 0.01,
                 generator: torch.Generator | None = None, flat_visible: bool = True):
        super().__init__()
        channels, height, width = image_shape
        fh, fw = filter_shape
        if fh > height or fw > width:
            raise ValueError(f"filters of {fh}x{fw} do not fit images of {height}x{width}; "
                             "use smaller filters")
        self.image_shape, self.flat_visible = (channels, height, width), flat_visible
        self.W = nn.Parameter(torch.randn(n_filters, channels, fh, fw, generator=generator) * init_std)

    @property
    def n_filters(self) -> int:
        return self.W.shape[0]

    @property
    def visible_shape(self):
        c, h, w = self.image_shape
        return (c * h * w,) if self.flat_visible else self.image_shape

    @property
    def hidden_shape(self):
        _, h, w = self.image_shape
        return (self.n_filters, h - self.W.shape[2] + 1, w - self.W.shape[3] + 1)

    def up(self, sv: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        out = F.conv2d(sv.reshape((-1,) + self.image_shape), self.W)
        return out if bias is None else out.add_(bias)

    def down(self, sh: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        image = F.conv_transpose2d(sh.reshape((-1,) + self.hidden_shape), self.W)
        image = image.flatten(1) if self.flat_visible else image
        return image if bias is None else image.add_(bias.reshape(image.shape[1:]))

    def energy(self, sv: torch.Tensor, sh: torch.Tensor) -> torch.Tensor:
        return -(self.up(sv) * sh.reshape((-1,) + self.hidden_shape)).flatten(1).sum(1)

    def extra_repr(self) -> str:
        k, c, fh, fw = self.W.shape
        return f"{k} filters of {c}x{fh}x{fw} over {self.image_shape}"
