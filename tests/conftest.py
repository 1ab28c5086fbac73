"""Test-wide settings.

One intra-op thread: the tests use tiny tensors, where a second OpenMP thread only
adds synchronisation (measured 6x slower on these 2-core machines under load).
The tests import each other's ground-truth helpers (`from test_exact import ...`).
"""
import torch

torch.set_num_threads(1)
