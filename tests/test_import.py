"""`import energylab` stays light: every dashboard worker pays it before its first picture.

Speed itself is measured in `bench/import_time.py`; here only what must not be imported."""
import subprocess
import sys
from pathlib import Path

import torch

from energylab.viz import tile_images

ROOT = Path(__file__).resolve().parents[1]


def test_import_energylab_leaves_torchvision_and_streamlit_out():
    code = ("import sys, energylab; "
            "print(sorted(m for m in ('torchvision', 'streamlit') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_own_grid_lays_tiles_out_as_torchvision_make_grid():
    """Ground truth: torchvision's make_grid (imported here, in the test, only)."""
    from torchvision.utils import make_grid
    g = torch.Generator().manual_seed(0)
    for n, nrow, padding, pad in [(10, 4, 1, 1.0), (6, 3, 2, 0.0), (3, 5, 0, 0.5), (7, 7, 3, 1.0)]:
        x = torch.rand(n, 1, 5, 4, generator=g)
        expected = make_grid(x, nrow=nrow, padding=padding, pad_value=pad)[0]
        assert torch.equal(tile_images(x, nrow=nrow, padding=padding, normalize=None, pad_value=pad), expected)
        rgb = torch.rand(n, 3, 4, 6, generator=g)
        assert torch.equal(tile_images(rgb, nrow=nrow, padding=padding, normalize=None, pad_value=pad),
                           make_grid(rgb, nrow=nrow, padding=padding, pad_value=pad))
