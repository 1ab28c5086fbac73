"""Named variants beyond the plain RBM, each registered with its schema on import.

One module per family; every factory composes the engine's parts (units,
couplings, mask policies, objectives, stacks) and calls `registry.register`. The import order
is the registration order, which is the order of every listing (page, CLI, README): not sorted.
"""
# isort: skip_file
from . import rbm  # noqa: F401  (first: the plain RBM heads every listing)
from . import conv, discriminative, dropout, gaussian  # noqa: F401  (registration side effects)
from . import deep  # noqa: F401,E402  (stacks; their layer choices are looked up when asked)
from . import dbm, onehot  # noqa: F401,E402  (deep Boltzmann machine; one-hot hidden units)
