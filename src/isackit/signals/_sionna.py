"""Lazy, side-effect-free access to Sionna.

Importing Sionna takes seconds and, on first import, re-seeds torch's GLOBAL generators
(``sionna.phy.config`` does so when it initialises).  The library never uses global RNG
state, but users may; so we import Sionna lazily (only in functions that need it) and
restore the global CPU RNG state around the import.
"""

from __future__ import annotations

import importlib

import torch

__all__ = ["sionna_module"]


def sionna_module(name: str):
    """``importlib.import_module(name)`` for a ``sionna.*`` module, keeping torch's global RNG state."""
    if not name.startswith("sionna"):
        raise ValueError(f"not a Sionna module: {name!r}")
    with torch.random.fork_rng(devices=[]):
        return importlib.import_module(name)
