"""Models composed from `core` parts: the RBM, its mask policies, stacks (DBN family) and the deep Boltzmann machine."""
