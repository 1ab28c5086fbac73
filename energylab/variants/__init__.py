"""Named variants beyond the plain RBM, each registered with its schema on import.

One module per family; every factory composes the engine's parts (units,
couplings, mask policies, objectives, stacks) and calls `registry.register`.
"""
from . import conv, discriminative, dropout, gaussian  # noqa: F401  (registration side effects)
