r"""Mutual coupling: A ↦ B A with a banded symmetric Toeplitz coupling matrix B.

B_{mn} = c_{|m-n|} for |m - n| < L and 0 otherwise, from a coefficient vector
c = [c_0, c_1, …, c_{L-1}] (complex; c_0 = 1 usually).  This is the model of seed 004
(following its ref. [19]) and the Toeplitz C of seed 002 eq. 6.  "Symmetric" means B = B^T
(not Hermitian: the coefficients are complex).

Seed 004 preset: c = [1, 0.9e^{-jπ/3}, 0.75e^{jπ/4}, 0.55e^{-jπ/10}, 0.25e^{-jπ/6}].
Its coupling sweep (Fig. 10) sets |c_k| = exp(ζ k), k = 0..4, keeps the preset's phases and
renormalises B to the Frobenius norm of the preset's B for the same M; since B is linear in
c this is a rescaling of c by ‖B(c_preset)‖_F / ‖B(c_ζ)‖_F (see :func:`seed004_coefficients`).

Shapes: c ``(..., L)`` complex (leading dims = batch of draws), B ``(..., M, M)``; the map
acts on ``(..., M, K)`` (or ``(..., N, M, K)``).  Differentiable in c and A; with
``learnable=True`` the coefficients are an ``nn.Parameter`` (stored as ``(..., L, 2)`` real
and imaginary parts so that checkpoints stay real-valued).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .._checks import check_finite
from .base import Impairment
from .._dtypes import complex_dtype, real_dtype

__all__ = ["MutualCoupling", "toeplitz_coupling_matrix", "seed004_coefficients", "SEED004_COUPLING"]

#: Seed 004, Sec. IV-A.
SEED004_COUPLING = (1.0 + 0j,
                    0.9 * complex(math.cos(-math.pi / 3), math.sin(-math.pi / 3)),
                    0.75 * complex(math.cos(math.pi / 4), math.sin(math.pi / 4)),
                    0.55 * complex(math.cos(-math.pi / 10), math.sin(-math.pi / 10)),
                    0.25 * complex(math.cos(-math.pi / 6), math.sin(-math.pi / 6)))


def toeplitz_coupling_matrix(coefficients: torch.Tensor, num_elements: int) -> torch.Tensor:
    r"""Banded symmetric Toeplitz B ``(..., M, M)``, B_{mn} = c_{|m-n|} (0 beyond the band).

    Args:
        coefficients: ``(..., L)`` complex c; entries with index ≥ M are ignored.
        num_elements: M.

    Differentiable in ``coefficients``.
    """
    c = torch.as_tensor(coefficients)
    if c.ndim < 1 or c.shape[-1] < 1:
        raise ValueError(f"coefficients must have shape (..., L) with L >= 1, got {tuple(c.shape)}")
    m = int(num_elements)
    if m <= 0:
        raise ValueError(f"num_elements must be a positive integer, got {num_elements}")
    L = c.shape[-1]
    if L < m:
        c = torch.cat([c, torch.zeros((*c.shape[:-1], m - L), dtype=c.dtype, device=c.device)], dim=-1)
    idx = torch.arange(m, device=c.device)
    lag = (idx[:, None] - idx[None, :]).abs()  # (M, M)
    return c[..., lag]


def _frobenius(c: torch.Tensor, m: int) -> torch.Tensor:
    """‖B(c)‖_F for a banded symmetric Toeplitz B: sqrt(M|c_0|² + 2 Σ_{k≥1} (M-k)|c_k|²)."""
    L = min(c.shape[-1], m)
    k = torch.arange(L, device=c.device, dtype=real_dtype(c.dtype))
    w = torch.where(k == 0, torch.full_like(k, m), 2 * (m - k))
    return torch.sqrt((w * c[..., :L].abs() ** 2).sum(-1))


def seed004_coefficients(num_elements: int | None = None, zeta: float | None = None,
                         dtype=torch.complex128, device=None) -> torch.Tensor:
    r"""Seed 004's coupling vector c ``(5,)``, or its ζ-sweep variant.

    With ``zeta``: |c_k| = exp(ζ k) with the preset phases, then c is scaled so that
    ‖B(c)‖_F = ‖B(c_preset)‖_F for M = ``num_elements`` (required with ``zeta``).
    """
    base = torch.tensor(SEED004_COUPLING, dtype=torch.complex128, device=device)
    if zeta is None:
        return base.to(dtype)
    zeta = float(zeta)
    if not math.isfinite(zeta):
        raise ValueError(f"zeta must be finite, got {zeta}")
    if num_elements is None:
        raise ValueError("the zeta sweep renormalises B for a given array size: pass num_elements")
    m = int(num_elements)
    if m <= 0:
        raise ValueError(f"num_elements must be a positive integer, got {num_elements}")
    k = torch.arange(base.shape[0], dtype=torch.float64, device=device)
    c = torch.polar(torch.exp(zeta * k), base.angle())
    c = c * (_frobenius(base, m) / _frobenius(c, m))
    return c.to(dtype)


class MutualCoupling(Impairment):
    r"""Mutual coupling A ↦ B(c) A with B banded symmetric Toeplitz.

    Args:
        coefficients: ``(..., L)`` complex c (c_0 is the self term).
        known: whether the receiver knows B.
        learnable: make the coefficients a parameter.

    Example:
        >>> imp = MutualCoupling.seed004()
        >>> imp.matrix(8).shape
        torch.Size([8, 8])
    """

    def __init__(self, coefficients, known: bool = False, learnable: bool = False):
        super().__init__(known)
        c = torch.as_tensor(coefficients)
        if not c.is_complex():
            c = c.to(complex_dtype(c.dtype))
        if c.ndim < 1 or c.shape[-1] < 1:
            raise ValueError(f"coefficients must have shape (..., L) with L >= 1, got {tuple(c.shape)}")
        r = torch.view_as_real(c.clone()).contiguous()
        check_finite(r, "coefficients")
        self.learnable = bool(learnable)
        if self.learnable:
            self.coefficients_ri = nn.Parameter(r)
        else:
            self.register_buffer("coefficients_ri", r)

    @classmethod
    def seed004(cls, num_elements: int | None = None, zeta: float | None = None, dtype=torch.complex64,
                device=None, **kwargs) -> MutualCoupling:
        """The seed-004 preset, or its ζ sweep (see :func:`seed004_coefficients`)."""
        return cls(seed004_coefficients(num_elements, zeta, dtype, device), **kwargs)

    @classmethod
    def identity(cls, dtype=torch.complex64, device=None, **kwargs) -> MutualCoupling:
        """No coupling: c = [1], B = I."""
        return cls(torch.ones(1, dtype=dtype, device=device), **kwargs)

    @property
    def coefficients(self) -> torch.Tensor:
        """c ``(..., L)`` complex."""
        return torch.view_as_complex(self.coefficients_ri)

    def matrix(self, num_elements: int, like: torch.Tensor | None = None) -> torch.Tensor:
        """B ``(..., M, M)`` (in ``like``'s complex dtype when given)."""
        c = self.coefficients
        if like is not None:
            c = c.to(like.dtype)
        return toeplitz_coupling_matrix(c, num_elements)

    def apply(self, A, azimuth=None, elevation=None, subcarriers=None):
        B = self.matrix(A.shape[-2], like=A)
        if subcarriers is not None:
            B = B.unsqueeze(-3)  # (..., 1, M, M) against (..., N, M, K)
        return B @ A

    def extra_repr(self) -> str:
        return (f"L={self.coefficients_ri.shape[-2]}, batch={tuple(self.coefficients_ri.shape[:-2])}, "
                f"known={self.known}, learnable={self.learnable}")
