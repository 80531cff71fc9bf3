"""dtype helpers shared by every layer (the library's dtype rule in one place)."""

from __future__ import annotations

import torch

__all__ = ["complex_dtype"]


def complex_dtype(real_dtype: torch.dtype) -> torch.dtype:
    """The complex dtype paired with a real one: complex128 for float64, complex64 otherwise."""
    return torch.complex128 if real_dtype == torch.float64 else torch.complex64
