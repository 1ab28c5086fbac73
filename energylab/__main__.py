"""`python -m energylab ...` is the `energylab` command (see energylab/cli/__init__.py)."""
from .cli import main

raise SystemExit(main())
