r"""Unit conversions at the library's edges: decibels and degrees.

Inside the library quantities are linear powers/amplitudes and radians; configs, tables and
plots use dB and degrees.  These are the only conversions (no ``10 ** (x / 10)`` spelled
out elsewhere).  Every function accepts a Python number (returns a float) or a tensor
(returns a tensor of the same dtype/device; integer tensors become the default float dtype),
and is differentiable for tensors.

* power:      x_dB = 10 log10(x),   x = 10^(x_dB/10)
* amplitude:  a_dB = 20 log10(|a|), |a| = 10^(a_dB/20)

Example:
    >>> db_to_linear(20.0), linear_to_db(0.5)
    (100.0, -3.010299956639812)
    >>> db_to_amplitude(6.0)
    1.9952623149688795
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "db_to_linear",
    "linear_to_db",
    "db_to_amplitude",
    "amplitude_to_db",
    "deg_to_rad",
    "rad_to_deg",
]


def _float_tensor(x: torch.Tensor) -> torch.Tensor:
    if x.is_complex():
        raise TypeError("a decibel / degree conversion needs a real tensor, got a complex one")
    return x if x.is_floating_point() else x.to(torch.get_default_dtype())


def _number(x, name: str) -> float:
    if isinstance(x, bool) or not isinstance(x, int | float):
        try:
            return float(x)
        except (TypeError, ValueError) as err:
            raise TypeError(f"{name} must be a real number or a tensor, got {type(x).__name__}") from err
    return float(x)


def db_to_linear(x_db):
    """Power ratio 10^(x/10) of a level in dB."""
    if isinstance(x_db, torch.Tensor):
        return torch.pow(10.0, _float_tensor(x_db) / 10.0)
    return 10.0 ** (_number(x_db, "x_db") / 10.0)


def linear_to_db(x):
    """Level 10·log10(x) in dB of a power ratio (x ≥ 0; 0 gives -inf)."""
    if isinstance(x, torch.Tensor):
        return 10.0 * torch.log10(_float_tensor(x))
    v = _number(x, "x")
    if v < 0:
        raise ValueError(f"a power ratio must be >= 0 to convert to dB, got {v}")
    return -math.inf if v == 0 else 10.0 * math.log10(v)


def db_to_amplitude(x_db):
    """Amplitude ratio 10^(x/20) of a level in dB."""
    if isinstance(x_db, torch.Tensor):
        return torch.pow(10.0, _float_tensor(x_db) / 20.0)
    return 10.0 ** (_number(x_db, "x_db") / 20.0)


def amplitude_to_db(a):
    """Level 20·log10(|a|) in dB of an amplitude ratio (complex tensors: of |a|)."""
    if isinstance(a, torch.Tensor):
        return 20.0 * torch.log10(a.abs() if a.is_complex() else _float_tensor(a).abs())
    v = abs(complex(a)) if isinstance(a, complex) else abs(_number(a, "a"))
    return -math.inf if v == 0 else 20.0 * math.log10(v)


def deg_to_rad(x):
    """Degrees → radians."""
    if isinstance(x, torch.Tensor):
        return torch.deg2rad(_float_tensor(x))
    return math.radians(_number(x, "x"))


def rad_to_deg(x):
    """Radians → degrees."""
    if isinstance(x, torch.Tensor):
        return torch.rad2deg(_float_tensor(x))
    return math.degrees(_number(x, "x"))
