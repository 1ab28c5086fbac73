"""The version of energylab (`energylab.__version__`), importable by every layer."""
__version__ = "0.1.0"
