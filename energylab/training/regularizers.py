"""Optimizers and regularisers the trainer applies around every update.

- `make_optimizer`: SGD with momentum (Hinton 2012, section 9), Adam (Kingma & Ba 2015)
  or RMSProp (Tieleman & Hinton 2012), all from `torch.optim`. Weights get the L2
  penalty `weight_decay` through the optimizer; biases are not decayed (Hinton 2012, 10).
- `add_penalties` (before the optimizer step, on the gradients the objective wrote):
  the L1 penalty `l1` * sign(W) on the weights (Hinton 2012, section 10); the sparsity
  target of Hinton 2012, section 11 (Lee, Ekanadham & Ng 2008): the cross-entropy
  penalty `sparsity_penalty` * CE(target_activation, q_j) on each hidden unit's mean
  activation q_j over the batch, whose derivative with respect to the unit's total input
  is q_j - target, applied to the hidden bias and, for a dense coupling, the weights;
  parameter freezing (`freeze`): frozen parameters get no gradient, so no optimizer moves them.
- `apply_constraints` (after the step): max-norm (Srivastava et al. 2014, section 5.1):
  each hidden unit's incoming weight vector is rescaled to L2 norm at most `max_norm`.

Everything is tensor work on the device; a penalty whose weight is 0 costs nothing.
"""
from __future__ import annotations

import torch
import torch.optim.optimizer as _optim

OPTIMIZERS = ("sgd", "adam", "rmsprop")
FREEZE = ("none", "weights", "visible_bias", "hidden_bias", "biases")


def is_weight(name: str) -> bool:
    """Interaction weights (decayed, penalised, max-normed) as opposed to biases and unit parameters."""
    return name.endswith("W") or name.endswith("weight")


class SGD(torch.optim.SGD):
    """`torch.optim.SGD` (momentum without dampening, L2 decay; the same state_dict) with a lean
    `step`. Inside a CD-1 loop of 128 x 784 batches torch's step measured ~80 us per batch here
    (its profiler wrapper, hook chains and generic paths), against ~16 us for the arithmetic
    itself: 12 % of the whole batch. This step does the arithmetic only; registered step hooks,
    a closure, nesterov, dampening or maximize go to torch's own step."""

    def step(self, closure=None):
        hooks = (self._optimizer_step_pre_hooks or self._optimizer_step_post_hooks
                 or _optim._global_optimizer_pre_hooks or _optim._global_optimizer_post_hooks)
        special = any(g["nesterov"] or g["dampening"] or g["maximize"] for g in self.param_groups)
        if closure is not None or hooks or special:
            return super().step(closure)
        with torch.no_grad():
            self._sgd_update()
        return None

    step.hooked = True      # tells torch.optim not to wrap this step in its profiler/hook wrapper

    def _sgd_update(self):
        for group in self.param_groups:
            lr, momentum, decay = group["lr"], group["momentum"], group["weight_decay"]
            for p in group["params"]:
                grad = p.grad
                if grad is None:
                    continue
                if decay:
                    grad = grad.add(p, alpha=decay)
                if momentum:
                    state = self.state[p]
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = state["momentum_buffer"] = torch.clone(grad).detach()
                    else:
                        buf.mul_(momentum).add_(grad)
                    grad = buf
                p.add_(grad, alpha=-lr)
        return None


def make_optimizer(model, name: str, lr: float, momentum: float, weight_decay: float):
    """A torch optimizer with two groups: weights (L2-decayed) first, then everything else."""
    named = list(model.named_parameters())
    groups = [{"params": [p for n, p in named if is_weight(n)], "weight_decay": weight_decay},
              {"params": [p for n, p in named if not is_weight(n)], "weight_decay": 0.0}]
    if name == "sgd":
        return SGD(groups, lr=lr, momentum=momentum)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr)
    if name == "rmsprop":
        return torch.optim.RMSprop(groups, lr=lr, momentum=momentum)
    raise ValueError(f"unknown optimizer {name!r}; choose one of {list(OPTIMIZERS)}")


def set_hyperparameters(optimizer, lr: float, momentum: float, weight_decay: float) -> None:
    """Apply live values to every group (momentum only where the optimizer has one)."""
    for i, group in enumerate(optimizer.param_groups):
        group["lr"] = lr
        if "momentum" in group:
            group["momentum"] = momentum
        group["weight_decay"] = weight_decay if i == 0 else 0.0


def bias_names(model) -> dict:
    """{"visible_bias": names, "hidden_bias": names} of the model's parameters: a model whose biases
    are not `a` (visible) and `b` (hidden) says so with `bias_names()` (a DBM, a stack, a classifier)."""
    own = getattr(model, "bias_names", None)
    return own() if own is not None else {"visible_bias": {"a"}, "hidden_bias": {"b"}}


def frozen(model, freeze: str) -> list:
    """The parameters that `freeze` names; a choice that names none of this model's is an error."""
    if freeze not in FREEZE:
        raise ValueError(f"freeze must be one of {list(FREEZE)}, got {freeze!r}")
    if freeze == "none":
        return []
    roles = bias_names(model)
    names = {"visible_bias": roles["visible_bias"], "hidden_bias": roles["hidden_bias"],
             "biases": roles["visible_bias"] | roles["hidden_bias"]}.get(freeze)
    picked = [p for n, p in model.named_parameters() if (is_weight(n) if names is None else n in names)]
    if not picked:
        raise ValueError(f"freeze={freeze} names no parameter of {type(model).__name__} "
                         f"(it has {[n for n, _ in model.named_parameters()]})")
    return picked


@torch.no_grad()
def add_penalties(model, v, l1: float = 0.0, sparsity_penalty: float = 0.0, target_activation: float = 0.1,
                  freeze: str = "none") -> None:
    """Add the L1 and sparsity terms to the gradients the objective wrote; drop frozen parameters' gradients."""
    if l1 > 0:
        for n, p in model.named_parameters():
            if is_weight(n) and p.grad is not None:
                p.grad.add_(torch.sign(p), alpha=l1)
    if sparsity_penalty > 0 and getattr(model, "b", None) is not None and model.b.grad is not None:
        add_sparsity(model, v, sparsity_penalty, target_activation)
    if freeze != "none":
        for p in frozen(model, freeze):
            p.grad = None


@torch.no_grad()
def add_sparsity(model, v, cost: float, target: float) -> None:
    """The sparsity target's gradient (module docstring; the one implementation, also behind the
    convolutional RBM's `objectives.Sparse`): cost * (q_g - target) on the hidden bias, where q_g is
    the mean activation of the units sharing bias g (one filter of a convolution) over the batch
    and positions, and, for a dense coupling, its chain-rule term on the weights."""
    v = v[0] if isinstance(v, (tuple, list)) else v
    p_h = model.p_h(v)
    excess = p_h.mean(0).sum_to_size(model.b.shape) * (model.b.numel() / p_h[0].numel()) - target
    model.b.grad.add_(excess, alpha=cost)
    W = getattr(model, "W", None)
    if isinstance(W, torch.Tensor) and W.dim() == 2 and W.grad is not None and v.dim() == 2:
        W.grad.add_(torch.outer(model.visible.stat(v).mean(0), excess), alpha=cost)


@torch.no_grad()
def apply_constraints(model, max_norm: float = 0.0) -> None:
    """Max-norm: rescale each hidden unit's incoming weights (a column of a dense W, a filter of a
    convolution) to L2 norm at most `max_norm`; 0 switches it off."""
    if max_norm <= 0:
        return
    for n, p in model.named_parameters():
        if not is_weight(n):
            continue
        units = p.t() if p.dim() == 2 else p            # one row per hidden unit / filter
        norms = units.reshape(units.shape[0], -1).norm(dim=1).clamp_min(1e-12)
        scale = (max_norm / norms).clamp_max(1.0)
        units.mul_(scale.reshape((-1,) + (1,) * (units.dim() - 1)))
