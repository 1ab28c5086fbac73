"""The package's layers: every energylab module imports only from layers below its own (or from its
own sub-package), read from the source with `ast`, imports inside functions included. Streamlit
belongs to the dashboard alone.

    errors, curves, progress, version,       words, exceptions and JSON values every layer may use
      jsonvalues
    core, datasets                           unit types and couplings; data
    schema                                   Param (a hyperparameter's record and checks), slider stops, VariantGuide
    registry                                 TRAINING, Variant, VARIANTS, make, size limits (filled in by variants/)
    measures                                 functions of any model with the energy interface
    models                                   RBM, masks, stacks, DBM
    training                                 the trainer and everything it drives
    variants                                 the named variants (factories + register; no model classes)
    viz, notebook                            pictures and figures; the notebooks' helpers
    store                                    run folders on disk
    cli, server                              the command line; the dashboard's background runs
    energylab (the package itself)           the public API
"""
import ast
import importlib
import inspect
from pathlib import Path

from torch import nn

from energylab.core.units import Units

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "energylab"

LAYERS = [
    ("errors", "curves", "progress", "version", "jsonvalues"),
    ("core", "datasets"),
    ("schema",),
    ("registry",),
    ("measures",),
    ("models",),
    ("training",),
    ("variants",),
    ("viz", "notebook"),
    ("store",),
    ("cli", "server"),
    ("__init__", "__main__"),
]
RANK = {group: rank for rank, groups in enumerate(LAYERS) for group in groups}


def module_name(path: Path, root: Path = ROOT) -> tuple[str, bool]:
    parts = list(path.relative_to(root).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts = parts[:-1]
    return ".".join(parts), is_package


def group(module: str) -> str:
    """The layer group of an energylab module: its first name below `energylab`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def is_module(root: Path, name: str) -> bool:
    where = root / Path(*name.split("."))
    return where.with_suffix(".py").exists() or (where / "__init__.py").exists()


def imported(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """(line, absolute module) of every energylab import in the file, wherever it stands."""
    module, is_package = module_name(path, root)
    package = module if is_package else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            # `from energylab import datasets`: the module imported is energylab.datasets
            # a name that is not a module is an attribute of `source`, which is then what is imported
            found += [(node.lineno, f"{source}.{a.name}" if is_module(root, f"{source}.{a.name}") else source)
                      for a in node.names]
    return [(line, m) for line, m in found if m == "energylab" or m.startswith("energylab.")]


def modules():
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_module_belongs_to_a_layer():
    unplaced = [str(p.relative_to(ROOT)) for p in modules() if group(module_name(p)[0]) not in RANK]
    assert not unplaced, f"place these in LAYERS (tests/test_layering.py): {unplaced}"


def test_imports_run_only_downward():
    upward = []
    for path in modules():
        here = group(module_name(path)[0])
        for line, target in imported(path):
            there = group(target)
            if there == here:
                continue                       # within a sub-package
            if target == "energylab" or RANK[there] >= RANK[here]:
                upward.append(f"{path.relative_to(ROOT)}:{line} imports {target} "
                              f"(layer {RANK[here]} -> {RANK.get(there, 'the package')})")
    assert not upward, "imports must only go down a layer:\n" + "\n".join(upward)


def test_the_reader_sees_imports_in_functions_and_resolves_relative_ones(tmp_path):
    core = tmp_path / "energylab" / "core"
    core.mkdir(parents=True)
    (tmp_path / "energylab" / "version.py").write_text("")
    (core / "base.py").write_text("")
    (core / "units.py").write_text("import torch\nfrom . import base\n\n\ndef f():\n"
                                   "    from ..version import __version__\n    from .. import version\n"
                                   "    from energylab.training import trainer\n")
    assert imported(core / "units.py", tmp_path) == [(2, "energylab.core.base"), (6, "energylab.version"),
                                                      (7, "energylab.version"), (8, "energylab.training")]


def test_streamlit_is_imported_only_by_the_dashboard():
    for path in modules():
        text = path.read_text()
        assert "import streamlit" not in text and "from streamlit" not in text, path


def test_variants_hold_factories_and_register_only():
    """A variant's maths lives in core/ (unit types) or models/ (models, stacks); variants/ only composes them."""
    defined = []
    for path in sorted((PACKAGE / "variants").rglob("*.py")):
        name = module_name(path)[0]
        module = importlib.import_module(name)
        defined += [f"{name}.{cls.__name__}" for cls in vars(module).values()
                    if inspect.isclass(cls) and cls.__module__ == name and issubclass(cls, (nn.Module, Units))]
    assert not defined, ("variants/ holds factories, schemas and register(...) only; move these to core/ or "
                         f"models/ and import them: {defined}")
