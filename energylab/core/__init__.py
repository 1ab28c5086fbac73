"""The parts every model is built from: unit types (Bernoulli, Gaussian, continuous, one-hot, max-pooling) and couplings.

Imports nothing of energylab but `errors`."""
