r"""Complex Gaussian draws and additive noise at a given variance or SNR.

Conventions (``shared/design/conventions.md``):

* noise is circular complex Gaussian CN(0, σ² I): real and imaginary parts are
  independent N(0, σ²/2);
* SNR is per receive element and per snapshot (or resource element): the power one
  source contributes at one element divided by σ².  With the unnormalised steering
  vectors of the library (|a_m| = 1) a source of power p has SNR = p / σ².

Randomness only comes from the explicit ``torch.Generator`` argument.  Draws are made on
the generator's device and then moved to the requested device, so a seeded CPU generator
gives the same numbers whatever the output device (the moving is the only transfer, and
it is the caller who asked for that device).
"""

from __future__ import annotations

import math

import torch

from .._checks import as_tensor, check_nonnegative
from .._dtypes import COMPLEX_DTYPES, REAL_DTYPES, real_dtype
from ..conversions import db_to_linear, linear_to_db  # noqa: F401  (re-exported)

__all__ = [
    "complex_normal",
    "db_to_linear",
    "linear_to_db",
    "noise_variance_from_snr",
    "awgn",
    "add_noise",
    "add_noise_at_snr",
]



def _check_generator(generator) -> torch.Generator:
    if not isinstance(generator, torch.Generator):
        raise TypeError("generator must be a torch.Generator (randomness is always explicit), "
                        f"got {type(generator).__name__}")
    return generator


def _shape(shape) -> tuple[int, ...]:
    if isinstance(shape, int):
        shape = (shape,)
    try:
        out = tuple(int(s) for s in shape)
    except TypeError as err:
        raise ValueError(f"shape must be a sequence of non-negative ints, got {shape!r}") from err
    if any(s < 0 for s in out):
        raise ValueError(f"shape must have non-negative sizes, got {out}")
    return out


def complex_normal(shape, generator: torch.Generator, dtype: torch.dtype = torch.complex64,
                   device=None) -> torch.Tensor:
    r"""Draw i.i.d. CN(0, 1) entries: real and imaginary parts N(0, 1/2).

    Args:
        shape: output shape (sequence of ints).
        generator: the source of randomness; draws are made on its device.
        dtype: complex64 (default) or complex128 (float32/float64 select the matching
            complex dtype).
        device: output device (default: the generator's device).

    Returns:
        ``shape`` complex tensor with E|z|² = 1.

    Example:
        >>> z = complex_normal((2, 3), torch.Generator().manual_seed(0))
        >>> z.dtype
        torch.complex64
    """
    _check_generator(generator)
    if dtype not in REAL_DTYPES + COMPLEX_DTYPES:
        raise ValueError(f"dtype must be complex64/complex128 (or float32/float64), got {dtype}")
    rdtype = real_dtype(dtype)
    shp = _shape(shape)
    z = torch.randn((*shp, 2), generator=generator, dtype=rdtype, device=generator.device)
    z = torch.view_as_complex(z) * math.sqrt(0.5)
    return z if device is None else z.to(device)


def noise_variance_from_snr(snr_db, signal_power=1.0):
    r"""σ² = P / 10^(SNR/10): the noise variance that gives ``snr_db`` for a per-element
    signal power ``signal_power`` (default 1, e.g. a unit-energy constellation).

    Example:
        >>> noise_variance_from_snr(20.0)
        0.01
    """
    snr = torch.as_tensor(snr_db)
    if snr.is_complex() or not torch.isfinite(snr).all():
        raise ValueError(f"snr_db must be real and finite, got {snr_db!r}")
    check_nonnegative(signal_power, "signal_power")
    out = signal_power / db_to_linear(snr if isinstance(snr_db, torch.Tensor) else float(snr_db))
    return out


def _pad_right(v: torch.Tensor, ndim: int, name: str, shape: tuple[int, ...]) -> torch.Tensor:
    if v.ndim > ndim:
        raise ValueError(f"{name} has shape {tuple(v.shape)}, which has more dims than the "
                         f"signal {shape}; it must match the signal's leading (batch) dims")
    v = v.reshape(*v.shape, *([1] * (ndim - v.ndim)))
    try:
        torch.broadcast_shapes(v.shape, shape)
    except RuntimeError as err:
        raise ValueError(f"{name} of shape {tuple(v.shape[:v.ndim])} does not match the leading "
                         f"dims of the signal {shape}") from err
    return v


def awgn(shape, noise_variance, generator: torch.Generator, dtype: torch.dtype = torch.complex64,
         device=None) -> torch.Tensor:
    r"""Circular complex Gaussian noise W ~ CN(0, σ²).

    Args:
        shape: output shape.
        noise_variance: σ² ≥ 0, a float or a tensor matching the LEADING dims of ``shape``
            (it is right-padded with singleton dims, so a per-trial ``(B,)`` variance
            applies to a ``(B, M, N)`` output).
        generator, dtype, device: see :func:`complex_normal`.

    Returns:
        ``shape`` complex tensor.  Differentiable in ``noise_variance``.
    """
    shp = _shape(shape)
    z = complex_normal(shp, generator, dtype, device)
    var = as_tensor(noise_variance, like=z.real)
    if var.is_complex():
        raise ValueError("noise_variance must be real")
    check_nonnegative(var.detach(), "noise_variance")
    return z * _pad_right(torch.sqrt(var), z.ndim, "noise_variance", shp)


def add_noise(x: torch.Tensor, noise_variance, generator: torch.Generator) -> torch.Tensor:
    r"""Return ``x + W`` with W ~ CN(0, σ²) of ``x``'s shape, dtype and device.

    ``noise_variance`` is a float or a tensor matching the leading (batch) dims of ``x``.
    Differentiable in ``x`` and ``noise_variance``.
    """
    if not isinstance(x, torch.Tensor) or not x.is_complex():
        raise TypeError("x must be a complex torch.Tensor")
    return x + awgn(x.shape, noise_variance, generator, x.dtype, x.device)


def add_noise_at_snr(x: torch.Tensor, snr_db, generator: torch.Generator, signal_power=1.0) -> torch.Tensor:
    r"""Return ``x + W`` with W ~ CN(0, σ²), σ² = P / 10^(SNR/10) (:func:`noise_variance_from_snr`).

    The SNR convention of the library (per receive element and snapshot / resource element):
    ``signal_power`` P is the power one source contributes at one element (1 for unit-modulus
    steering vectors and unit-power sources), not the measured power of ``x``.

    Args:
        x: complex signal, any shape.
        snr_db: SNR in dB, a float or a tensor matching the leading (batch) dims of ``x``.
        generator: explicit source of randomness.
        signal_power: P (float or tensor like ``snr_db``).

    Example:
        >>> x = torch.zeros(4, 1000, dtype=torch.complex128)
        >>> y = add_noise_at_snr(x, 10.0, torch.Generator().manual_seed(0))
        >>> round(float(y.abs().pow(2).mean()), 1)
        0.1
    """
    if not isinstance(x, torch.Tensor) or not x.is_complex():
        raise TypeError("x must be a complex torch.Tensor")
    snr = snr_db if isinstance(snr_db, torch.Tensor) else torch.as_tensor(float(snr_db), dtype=torch.float64)
    var = noise_variance_from_snr(snr.to(device=x.device), signal_power)
    return add_noise(x, var if isinstance(snr_db, torch.Tensor) else float(var), generator)
