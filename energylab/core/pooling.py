"""Probabilistic max-pooling units: detection maps cut into C x C blocks, at most one unit on per block.

Lee, Grosse, Ranganath & Ng 2009, "Convolutional deep belief networks for scalable
unsupervised learning of hierarchical representations" (ICML), section 3.3. A block B
of detection units h_i (i in B) with inputs z_i = beta (I_i + b) takes one of C^2 + 1
states (one unit on, or all off), following a softmax whose "all off" state has energy 0:

    p(h_i = 1 | I) = exp(z_i) / (1 + sum_{j in B} exp(z_j))
    p(all off | I) =      1   / (1 + sum_{j in B} exp(z_j))

The block adds log(1 + sum_j exp(z_j)) to the log-partition, and the pooling unit above
it is on iff some unit of the block is on: p(pooled on | I) = 1 - p(all off | I).
Going down a stack, a pooling unit that is on switches on one unit of its block (the
units of a block share one bias, so each is equally likely), off switches all off.

See `base.py` for the interface every unit type implements.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import Units, flat_sum, one_hot_from


class ProbMaxPool(Units):
    """Binary detection units in C x C blocks with at most one unit on per block (Lee et al. 2009, 3.3).

    For a block with inputs z_i = beta (I_i + b):
        p(h_i = 1) = exp(z_i) / (1 + sum_j exp(z_j)),  p(all off) = 1 / (1 + sum_j exp(z_j)),
    and the block contributes log(1 + sum_j exp(z_j)) to the log-partition.
    """

    name = "prob-max-pool"
    discrete = True

    def __init__(self, shape: tuple, block: int):
        super().__init__(shape)
        k, h, w = self.shape
        if block < 1 or h % block or w % block:
            raise ValueError(f"probabilistic max-pooling needs hidden maps whose sides are multiples of the "
                             f"pool size; maps are {h}x{w} and pool_size={block}. Change the filter size, "
                             "the image size or pool_size")
        self.block = block

    @property
    def pooled_shape(self) -> tuple:
        """(K, H/C, W/C): one pooling unit per block."""
        k, h, w = self.shape
        return k, h // self.block, w // self.block

    def _blocks(self, x):
        """(batch, K, H, W) -> (batch, K, H/C, W/C, C*C)."""
        k, h, w = self.shape
        c = self.block
        x = x.expand((x.shape[0],) + self.shape) if x.dim() == 4 else x.reshape((-1,) + self.shape)
        return x.reshape(-1, k, h // c, c, w // c, c).permute(0, 1, 2, 4, 3, 5).reshape(-1, k, h // c, w // c, c * c)

    def _unblocks(self, x):
        k, h, w = self.shape
        c = self.block
        return x.reshape(-1, k, h // c, w // c, c, c).permute(0, 1, 2, 4, 3, 5).reshape((-1,) + self.shape)

    def _logits(self, I, bias, beta):
        """Each block's C*C unit logits plus a last, zero logit for "all off"."""
        z = self._blocks(beta * (I + bias))
        return torch.cat([z, torch.zeros_like(z[..., :1])], -1)

    def mean(self, I, bias, beta=1.0):
        return self._unblocks(torch.softmax(self._logits(I, bias, beta), -1)[..., :-1])

    def sample(self, I, bias, beta=1.0, generator=None):
        return self.mean_and_sample(I, bias, beta, generator)[1]

    def mean_and_sample(self, I, bias, beta=1.0, generator=None):
        p = torch.softmax(self._logits(I, bias, beta), -1)
        on = one_hot_from(p, generator)[..., :-1]           # the last state is "all off"
        return self._unblocks(p[..., :-1]), self._unblocks(on)

    def pooled_mean(self, I, bias, beta=1.0):
        """p(pooling unit on) = 1 - p(block all off): shape (batch, K, H/C, W/C)."""
        return 1 - torch.softmax(self._logits(I, bias, beta), -1)[..., -1]

    def unpool(self, pooled, sample: bool = False, generator=None):
        """Pooling units -> detection units of their blocks, shape (batch, K, H, W).

        Sampled: a pooling unit that is on switches on one unit of its block, chosen uniformly.
        Mean: each unit of the block gets 1 / C^2 of the pooling unit's value."""
        c = self.block
        pooled = pooled.reshape((-1,) + self.pooled_shape + (1,))
        if sample:
            pick = torch.randint(c * c, pooled.shape[:-1], generator=generator, device=pooled.device)
            return self._unblocks(F.one_hot(pick, c * c).to(pooled.dtype) * pooled)
        return self._unblocks(pooled.expand(-1, -1, -1, -1, c * c) / (c * c))

    def log_partition(self, I, bias, beta=1.0):
        return flat_sum(torch.logsumexp(self._logits(I, bias, beta), -1))

    def energy(self, x, bias):
        return -flat_sum(x.reshape((-1,) + self.shape) * bias)

    def check(self, x, what="input"):
        value_range = super().check(x, what)
        binary = bool(((x == 0) | (x == 1)).all())
        if not binary or bool((self._blocks(x).sum(-1) > 1).any()):
            raise ValueError(f"{what} must be binary with at most one unit on in each "
                             f"{self.block}x{self.block} pooling block")
        return value_range

    @property
    def n_states(self) -> int:
        return (self.block ** 2 + 1) ** (self.size // self.block ** 2)

    def enumerate(self, dtype=torch.float64, device=None, start=0, stop=None) -> torch.Tensor:
        """Every allowed state (flat rows): block b's digit in base C^2 + 1 says which unit is on (0 = none)."""
        base, n_blocks = self.block ** 2 + 1, self.size // self.block ** 2
        stop = self.n_states if stop is None else stop
        idx = torch.arange(start, stop, device=device)
        powers = base ** torch.arange(n_blocks - 1, -1, -1, device=device)
        digits = (idx[:, None] // powers) % base                          # (states, blocks)
        on = F.one_hot(digits, base)[..., 1:].to(dtype)                  # digit 0 = all off
        return self._unblocks(on.reshape((-1,) + self.pooled_shape + (self.block ** 2,))).flatten(1)
