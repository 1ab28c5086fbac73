"""Measurements: exact enumeration, pseudo-likelihood, AIS, TAP free energies, monitors, a trained model up close.

They take any model that offers the energy interface (duck-typed), so they sit below `models`."""
