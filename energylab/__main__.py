"""`python -m energylab ...` is the `energylab` command (see energylab/cli.py)."""
from .cli import main

raise SystemExit(main())
