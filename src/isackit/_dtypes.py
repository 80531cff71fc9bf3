"""dtype helpers shared by every layer (the library's dtype rule in one place)."""

from __future__ import annotations

import torch

__all__ = ["complex_dtype", "abs2"]


def complex_dtype(real_dtype: torch.dtype) -> torch.dtype:
    """The complex dtype paired with a real one: complex128 for float64, complex64 otherwise."""
    return torch.complex128 if real_dtype == torch.float64 else torch.complex64


def abs2(z: torch.Tensor) -> torch.Tensor:
    """|z|² as Re(z)² + Im(z)² (real; no square root, so cheaper than ``z.abs() ** 2`` forward
    and backward, and differentiable at 0)."""
    return z.real.square() + z.imag.square()
