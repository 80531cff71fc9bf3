"""Shared fixtures of the S4 positioning tests (imported by the test modules, not collected).

The seed's scenario config and the nominal 32-element λ/2 ULA at the 28 GHz wavelength."""

from __future__ import annotations

import pytest
import torch

from isackit.geometry import ula
from isackit.impairments import ArrayModel
from isackit.systems.positioning.scenario import PositioningConfig

LAM = 10.7e-3


@pytest.fixture(scope="module")
def cfg():
    return PositioningConfig()


@pytest.fixture(scope="module")
def nominal():
    return ArrayModel(ula(32, 0.5, LAM))


def deg(*v):
    """Degrees → a float64 tensor of radians."""
    return torch.deg2rad(torch.tensor(v, dtype=torch.float64))
