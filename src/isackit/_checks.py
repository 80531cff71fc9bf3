"""Input validation at the library's boundary.

Every public function checks its arguments with these helpers and raises a
``ValueError`` (or ``TypeError``) whose message says what was expected and what was
received.  They are plain functions, not ``assert`` statements, so they survive ``-O``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = [
    "check_finite",
    "check_positive",
    "check_nonnegative",
    "check_positive_int",
    "check_ndim_at_least",
    "check_last_dims",
    "check_complex",
    "check_choice",
    "as_tensor",
]


def as_tensor(x, *, like: torch.Tensor | None = None, dtype=None, name: str = "input") -> torch.Tensor:
    """Convert ``x`` to a tensor, following ``like``'s device (and dtype if none is given)."""
    if isinstance(x, torch.Tensor):
        t = x
    else:
        try:
            t = torch.as_tensor(x)
        except (TypeError, ValueError, RuntimeError) as err:  # pragma: no cover - message path
            raise TypeError(f"{name} must be array-like numbers, got {type(x).__name__}") from err
    if like is not None:
        t = t.to(device=like.device)
        if dtype is None and t.is_floating_point() and like.is_floating_point():
            t = t.to(like.dtype)
        if dtype is None and not t.is_floating_point() and not t.is_complex():
            t = t.to(like.real.dtype if like.is_complex() else (like.dtype if like.is_floating_point() else torch.get_default_dtype()))
    if dtype is not None:
        t = t.to(dtype)
    return t


def check_finite(x: torch.Tensor, name: str) -> torch.Tensor:
    """Raise if ``x`` holds NaN or infinite entries."""
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} must be finite, but it contains NaN or Inf values")
    return x


def check_positive(x, name: str):
    """Raise unless every entry of ``x`` is > 0 (scalars or tensors)."""
    t = torch.as_tensor(x)
    if t.is_complex() or not bool((t > 0).all()) or not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must be positive and finite, got {_short(x)}")
    return x


def check_nonnegative(x, name: str):
    """Raise unless every entry of ``x`` is >= 0."""
    t = torch.as_tensor(x)
    if t.is_complex() or not bool((t >= 0).all()) or not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must be non-negative and finite, got {_short(x)}")
    return x


def check_positive_int(x, name: str) -> int:
    """Raise unless ``x`` is a positive integer; return it as ``int``."""
    if isinstance(x, bool) or not isinstance(x, int | torch.SymInt) and not (
        hasattr(x, "__index__")
    ):
        raise ValueError(f"{name} must be a positive integer, got {_short(x)}")
    v = int(x)
    if v <= 0:
        raise ValueError(f"{name} must be a positive integer, got {v}")
    return v


def check_ndim_at_least(x: torch.Tensor, ndim: int, name: str, what: str) -> torch.Tensor:
    """Raise unless ``x`` has at least ``ndim`` dimensions; ``what`` names them, e.g. '(..., M, N)'."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape {what}, got {type(x).__name__}")
    if x.ndim < ndim:
        raise ValueError(f"{name} must have shape {what}, got shape {tuple(x.shape)}")
    return x


def check_last_dims(x: torch.Tensor, dims: Sequence[int | None], name: str, what: str) -> torch.Tensor:
    """Raise unless the trailing dims of ``x`` equal ``dims`` (``None`` = any size)."""
    check_ndim_at_least(x, len(dims), name, what)
    tail = x.shape[x.ndim - len(dims):]
    for got, want in zip(tail, dims, strict=True):
        if want is not None and got != want:
            raise ValueError(f"{name} must have shape {what}, got shape {tuple(x.shape)}")
    return x


def check_complex(x: torch.Tensor, name: str) -> torch.Tensor:
    """Raise unless ``x`` is a complex tensor."""
    if not isinstance(x, torch.Tensor) or not x.is_complex():
        raise TypeError(f"{name} must be a complex torch.Tensor, got "
                        f"{x.dtype if isinstance(x, torch.Tensor) else type(x).__name__}")
    return x


def check_choice(value: str, choices: Sequence[str], name: str) -> str:
    """Raise unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; expected one of: {', '.join(map(str, choices))}")
    return value


def _short(x) -> str:
    s = repr(x.tolist() if isinstance(x, torch.Tensor) and x.numel() <= 6 else x)
    return s if len(s) < 80 else s[:77] + "..."
