"""The command line's flags: those generated from a variant's schema, and the argument types.

`add_schema_flags` turns each `Param` of a variant (`energylab.VARIANTS[name].schema`)
into one flag of `energylab train`: `n_hidden` -> `--n-hidden`, with the Param's help,
default, range and whether it is live, and an argparse `type` that validates with the
Param itself, so the command line and the dashboard's sliders accept exactly the
same values. The flags `train` owns (`FIXED`) may not be reused by a Param. The
argument types of the fixed flags (`KEY=VALUE` dataset options, positive numbers,
`--device`) are here too; the parser itself is built in `cli.py`.
"""
from __future__ import annotations

import argparse

import torch

from ..training.trainer import resolve_device

DEFAULT_VARIANT, DEFAULT_DATASET = "RBM", "digits"
# train flags that are not hyperparameters; a variant's Param may not reuse these names
FIXED = {"variant", "dataset", "dataset_option", "device", "resume", "eval_every", "quiet", "out", "runs_dir",
         "restart"}


# -- generated flags ----------------------------------------------------------------------
def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _param_type(p):
    """An argparse `type` that validates with the Param itself (its message names the problem)."""
    def convert(text):
        if p.kind == "choice":       # choices may be numbers: match on their text
            text = next((c for c in p.choices if str(c) == text), text)
        try:
            return p.validate(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    convert.__name__ = p.kind        # argparse names the type in "invalid <type> value"
    return convert


def describe_range(p) -> str:
    """A parameter's allowed values as the help and the `variants` table show them."""
    if p.kind == "choice":
        return " | ".join(map(str, p.choices))
    if p.kind == "bool":
        return "true | false"
    if p.low is None and p.high is None:
        return "any"
    show = (lambda x: str(int(x))) if p.kind == "int" else (lambda x: f"{x:g}")
    return f"[{'-inf' if p.low is None else show(p.low)}, {'inf' if p.high is None else show(p.high)}]"


def add_schema_flags(parser, variant) -> None:
    """One flag per Param: `n_hidden` -> `--n-hidden`, help and default from the schema.

    Abbreviations are off: `--p` must not mean "--pt-temperatures or --pt-min-beta"."""
    parser.allow_abbrev = False
    for title, params in ((f"model hyperparameters of {variant.name}", variant.params),
                          ("training hyperparameters", variant.training)):
        group = parser.add_argument_group(title)
        for p in params:
            if p.name in FIXED:
                raise ValueError(f"variant {variant.name!r} declares a hyperparameter {p.name!r} that clashes "
                                 f"with the command line's own {flag(p.name)}; rename the Param")
            extra = f"; range {describe_range(p)}" if p.kind not in ("choice", "bool") else ""
            text = f"{p.help} (default: {p.default}{extra}{'; live' if p.live else ''})".replace("%", "%%")
            options = dict(dest=p.name, default=None, type=_param_type(p), help=text)
            if p.kind == "choice":
                options["metavar"] = "{" + ",".join(map(str, p.choices)) + "}"
            elif p.kind == "bool":
                options.update(nargs="?", const="true", metavar="BOOL")
            else:
                options["metavar"] = p.kind.upper()
            group.add_argument(flag(p.name), **options)


def name_other_variants(parser, variant_name: str) -> None:
    """Make `parser` say, for an unknown flag another variant has, which variants have it
    (`--p` on RBM: "DropoutRBM, ... have it: pass --variant")."""
    plain = parser.error

    def error(message):
        if message.startswith("unrecognized arguments:"):
            from ..registry import VARIANTS
            for word in message.split(":", 1)[1].split():
                name = word.split("=")[0].lstrip("-").replace("-", "_")
                owners = [v.name for v in VARIANTS.values() if any(p.name == name for p in v.params)]
                if word.startswith("--") and owners:
                    message += (f"; {variant_name} has no hyperparameter {name!r} ({', '.join(owners)} "
                                f"{'has' if len(owners) == 1 else 'have'} it: pass --variant)")
        plain(message)
    parser.error = error


# -- argument types ----------------------------------------------------------------------------
def _dataset_option(text):
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"dataset option {text!r} must look like KEY=VALUE, "
                                         "e.g. binarize=stochastic or size=4")
    key, value = (s.strip() for s in text.split("=", 1))
    low = value.lower()
    if low in ("none", "null"):
        return key.replace("-", "_"), None
    if low in ("true", "false"):
        return key.replace("-", "_"), low == "true"
    for cast in (int, float):
        try:
            return key.replace("-", "_"), cast(value)
        except ValueError:
            pass
    return key.replace("-", "_"), value


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _port(text):
    value = _positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"a port is at most 65535, got {value}")
    return value


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def device_flag(name: str) -> torch.device:
    """The device a `--device` flag names (auto: cuda when there is one), or an error that says why not."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: PyTorch sees no CUDA GPU here; use --device cpu (or auto)")
    return resolve_device(name)
