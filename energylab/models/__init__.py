"""Models composed from `core` parts: the RBM, its mask policies, the convolutional RBM, the classification RBM, stacks
(DBN, residual DBN, convolutional DBN) and the deep Boltzmann machine."""
