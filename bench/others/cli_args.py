"""The command line every other-library timing script shares (they run in their own
environments, without energylab, so this sits beside them and is imported by path)."""
import argparse


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    p.add_argument("data", help="a .npy file of shape (N, D), values in [0, 1]")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.1)
    return p
