r"""QAM / PSK constellations (points from Sionna), random symbols, hard detection, SER.

The constellation points come from Sionna 2 (``sionna.phy.mapping.Constellation``), with
Sionna's implicit bit labelling (the binary representation of a point's index is its bit
label), so our symbol indices are Sionna's and ``sionna.phy.mapping.Mapper`` /
``Demapper`` built from :func:`sionna_constellation` work on our symbols:

* ``"qam{Q}"`` (Q = 4, 16, 64, 256, ...): ``Constellation("qam", log2 Q)`` (3GPP TS 38.211
  Gray labelling, unit average energy);
* ``"qpsk"``: 4-PSK rotated by π/4, i.e. the points (±1 ± j)/√2 — exactly Sionna's 4-QAM
  (the S0 default);
* ``"bpsk"``: ``Constellation("pam", 1)``, points ±1;
* ``"psk{Q}"`` (Q = 8, 16, ...): Sionna 2.2 has no PSK type, so these are
  ``Constellation("custom", log2 Q, points=...)`` with points exp(j 2π q / Q) Gray
  labelled (the point at angle 2π q/Q has label q XOR (q >> 1)); ``"psk4"`` is the
  unrotated 4-PSK {1, j, -1, -j}.

All have unit average energy E|s|² = 1, so with noise CN(0, σ²) the SNR per symbol is
Es/N0 = 1/σ².

Randomness: Sionna's sources (``BinarySource``, ``QAMSource``) draw from Sionna's own
global generator, so we never use them: indices are drawn with ``torch.randint`` from the
caller's generator and mapped through the Sionna points.

Sionna is imported lazily (it takes seconds to import).
"""

from __future__ import annotations

import functools
import math
import re

import numpy as np
import torch

from .._checks import check_complex, check_finite
from ._sionna import sionna_module
from .random import _check_generator, _shape

__all__ = [
    "CONSTELLATIONS",
    "sionna_constellation",
    "constellation_points",
    "random_symbols",
    "detect_symbols",
    "symbol_error_rate",
]

CONSTELLATIONS = ("bpsk", "qpsk", "psk{Q}", "qam{Q}")
"""Accepted names: ``bpsk``, ``qpsk``, ``psk8``/``8psk``/``8-psk``, ``qam16``/``16qam``/``16-qam``..."""

_DETECT_CHUNK = 2**24  # entries of the distance table computed at once in detect_symbols

_NAME = re.compile(r"^(?:(\d+)-?(psk|qam)|(psk|qam)-?(\d+))$")


def _parse(name: str) -> tuple[str, int]:
    """Normalise a constellation name to (kind, order) with kind in {'bpsk','qpsk','psk','qam'}."""
    if not isinstance(name, str):
        raise ValueError(f"constellation name must be a string, got {type(name).__name__}")
    key = name.strip().lower()
    if key in ("bpsk", "2psk", "psk2"):
        return "bpsk", 2
    if key in ("qpsk", "4qam", "qam4", "4-qam", "qam-4"):
        return "qpsk", 4
    m = _NAME.match(key)
    if m is None:
        raise ValueError(f"unknown constellation {name!r}; expected one of: bpsk, qpsk, "
                         "psk{Q} (e.g. psk8, 16psk), qam{Q} (e.g. qam16, 64qam)")
    kind = m.group(2) or m.group(3)
    order = int(m.group(1) or m.group(4))
    bits = int(round(math.log2(order))) if order > 0 else 0
    if order < 2 or 2**bits != order:
        raise ValueError(f"constellation order must be a power of two >= 2, got {order} in {name!r}")
    if kind == "qam" and bits % 2:
        raise ValueError(f"square QAM needs an even number of bits per symbol, got {order}-QAM")
    if kind == "qam" and order == 4:
        return "qpsk", 4
    if kind == "psk" and order == 2:
        return "bpsk", 2
    return kind, order


def sionna_constellation(name: str, precision: str = "double"):
    """The ``sionna.phy.mapping.Constellation`` for ``name`` (on CPU, given precision).

    Use it to build Sionna ``Mapper``/``Demapper`` blocks consistent with our indices.
    """
    kind, order = _parse(name)
    Constellation = sionna_module("sionna.phy.mapping").Constellation  # lazy: slow import

    bits = int(round(math.log2(order)))
    if kind == "qpsk":
        return Constellation("qam", 2, precision=precision, device="cpu")
    if kind == "qam":
        return Constellation("qam", bits, precision=precision, device="cpu")
    if kind == "bpsk":
        return Constellation("pam", 1, precision=precision, device="cpu")
    q = np.arange(order)
    points = np.empty(order, dtype=np.complex128)
    points[q ^ (q >> 1)] = np.exp(2j * np.pi * q / order)  # Gray labels around the circle
    return Constellation("custom", bits, points=points, normalize=False, center=False,
                         precision=precision, device="cpu")


@functools.lru_cache(maxsize=32)
def _points_numpy(name: str) -> np.ndarray:
    const = sionna_constellation(name, precision="double")
    pts = const().detach().cpu().numpy().astype(np.complex128)
    pts.setflags(write=False)
    return pts


def constellation_points(name: str, dtype: torch.dtype = torch.complex64, device=None) -> torch.Tensor:
    r"""Points ``(Q,)`` of the named constellation (unit average energy), index = Sionna label.

    Example:
        >>> constellation_points("qpsk")
        tensor([ 0.7071+0.7071j,  0.7071-0.7071j, -0.7071+0.7071j, -0.7071-0.7071j])
    """
    kind, order = _parse(name)
    if dtype not in (torch.complex64, torch.complex128):
        raise ValueError(f"dtype must be complex64 or complex128, got {dtype}")
    pts = _points_numpy(f"{kind}{order}" if kind in ("psk", "qam") else kind)
    return torch.tensor(pts, dtype=dtype, device=device)


def _points(constellation, dtype=torch.complex64, device=None) -> torch.Tensor:
    if isinstance(constellation, str):
        return constellation_points(constellation, dtype, device)
    if not isinstance(constellation, torch.Tensor) or constellation.ndim != 1 or constellation.numel() < 2:
        raise ValueError("constellation must be a name or a (Q,) complex tensor of points with Q >= 2")
    check_complex(constellation, "constellation")
    return constellation


def random_symbols(constellation, shape, generator: torch.Generator,
                   dtype: torch.dtype = torch.complex64, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Uniform i.i.d. symbols from a constellation, drawn with the caller's generator.

    Args:
        constellation: a name (see module doc) or a ``(Q,)`` tensor of points.
        shape: output shape.
        generator: the source of randomness (indices are drawn on its device).
        dtype, device: of the symbols (default device: the generator's).

    Returns:
        ``(symbols, indices)``: ``shape`` complex symbols and ``shape`` int64 indices into the
        points (= Sionna's bit labels as integers).
    """
    _check_generator(generator)
    shp = _shape(shape)
    dev = generator.device if device is None else torch.device(device)
    pts = _points(constellation, dtype, dev)
    idx = torch.randint(0, pts.shape[0], shp, generator=generator, device=generator.device).to(dev)
    return pts.to(device=dev)[idx], idx


def detect_symbols(y: torch.Tensor, constellation) -> torch.Tensor:
    r"""Hard-decision nearest-neighbour detection: î = argmin_q |y - c_q|².

    This is the maximum-likelihood decision for equiprobable symbols in circular Gaussian
    noise (Sionna's ``SymbolDemapper(hard_out=True)`` takes the same decision).

    Args:
        y: ``(...)`` complex equalised samples.
        constellation: a name or a ``(Q,)`` tensor of points.

    Returns:
        ``(...)`` int64 indices.  Not differentiable (a hard decision).
    """
    check_complex(y, "y")
    check_finite(y, "y")
    pts = _points(constellation, y.dtype, y.device).to(device=y.device, dtype=y.dtype)
    flat = y.reshape(-1)
    chunk = max(1, _DETECT_CHUNK // pts.numel())  # bound the (chunk, Q) distance table
    out = [(part.unsqueeze(-1) - pts).abs().argmin(dim=-1) for part in flat.split(chunk)]
    return (torch.cat(out) if out else flat.real.long()).reshape(y.shape)


def symbol_error_rate(detected: torch.Tensor, transmitted: torch.Tensor, dim=None) -> torch.Tensor:
    r"""Fraction of symbols with ``detected != transmitted`` (over ``dim``, default all)."""
    if detected.shape != transmitted.shape:
        raise ValueError(f"detected and transmitted must have the same shape, got "
                         f"{tuple(detected.shape)} and {tuple(transmitted.shape)}")
    err = (detected != transmitted).to(torch.float64)
    return err.mean() if dim is None else err.mean(dim=dim)
