r"""Coarray spectrum and projection matrix: DOA finding as a linear inverse problem on a grid.

Seed 002 (MoD-DNN, Sec. 3.2, eqs. 11–14).  With an over-complete direction grid
θ_1..θ_L and the ideal (assumed) manifold a_l = a(θ_l) ``(M,)``, a covariance that is a
non-negative combination of grid directions plus white noise,

    R = Σ_l η_l a_l a_lᴴ + σ² I                                                     (11)

vectorises (columns stacked) into the *coarray signal*

    y = vec(R) = Ã η + σ² vec(I),   Ã = [vec(a_1 a_1ᴴ), …, vec(a_L a_Lᴴ)] ∈ C^{M²×L}   (13)

and beamforming on the coarray gives the *coarray spectrum* and the *projection matrix*

    η̂ = Ãᴴ y,  η̂_l = a_lᴴ R a_l          (the Bartlett power pattern, unnormalised a)
    P  = Ãᴴ Ã,  P_{ll'} = |a_lᴴ a_{l'}|²   (real, symmetric, PSD)                    (14)

so that η̂ = P η + σ² (‖a_l‖²)_l.  Closed forms used here (the explicit M²×L dictionary is
never formed except by :func:`coarray_manifold`, for tests):

* η̂ is a quadratic form per grid point: O(M² L) per covariance;
* P has rank ≤ 2M − 1 for a ULA (the lags of the difference coarray), in general ≤ M²:
  with the real feature map of :class:`~isackit.estimators.QuadraticFormDictionary`,
  a_lᴴ Q a_l = c(Q)·φ_l, so P_{ll'} = c(a_{l'} a_{l'}ᴴ)·φ_l and P = Φᵀ Cᵀ = U Vᵀ with
  U = Φᵀ ``(L, D)``, V = C ``(L, D)`` (D = 2M − 1 merged rows for a ULA).
  :class:`CoarrayProjection` keeps that factorisation, so P x costs 2DL instead of L².

Unit-norm convention (``normalized=True``, the default): both η̂ and P are divided by M²,
which is the system obtained with unit-norm steering vectors a/√M for P and a source power
per unit-modulus a: a noise-free single source of power η_0 on grid point l_0 then gives
η̂ = η_0 P e_{l_0} exactly, P_ll = 1, and a regularisation weight λ has the same meaning
for every M.  (Seed 002 leaves the scale open; R̂ is printed without 1/K.)

References: seed 002 (Liu et al., ACM TOSN 2025), eqs. 11–14; Pal & Vaidyanathan, IEEE TSP
2010 (difference coarray).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .._checks import check_last_dims
from .common import check_covariance
from .grids import QuadraticFormDictionary

__all__ = [
    "CoarrayProjection",
    "coarray_signal",
    "coarray_manifold",
    "coarray_spectrum",
    "coarray_projection",
]


def coarray_signal(R: torch.Tensor) -> torch.Tensor:
    """y = vec(R) with the columns of R stacked (eq. 13): ``(..., M, M)`` → ``(..., M²)``."""
    check_covariance(R)
    return R.transpose(-1, -2).reshape(*R.shape[:-2], -1)


def coarray_manifold(A: torch.Tensor, normalized: bool = False) -> torch.Tensor:
    r"""Explicit coarray dictionary Ã = [vec(a_l a_lᴴ)]_l, ``(..., M, L)`` → ``(..., M², L)``.

    With ``normalized`` the columns are divided by M (unit-norm steering vectors).  Meant for
    tests and small problems: the fast paths never build it.
    """
    _check_dictionary(A)
    M = A.shape[-2]
    outer = A.conj().unsqueeze(-2) * A.unsqueeze(-3)  # [n, m, l] = a_m a_n^*: row-major = column-stacked
    out = outer.reshape(*A.shape[:-2], M * M, A.shape[-1])
    return out / M if normalized else out


def _check_dictionary(A: torch.Tensor) -> None:
    if not isinstance(A, torch.Tensor) or not A.is_complex():
        raise TypeError(f"the dictionary A must be a complex tensor (..., M, L), got "
                        f"{A.dtype if isinstance(A, torch.Tensor) else type(A).__name__}")
    if A.ndim < 2:
        raise ValueError(f"the dictionary A must have shape (..., M, L), got {tuple(A.shape)}")


def coarray_spectrum(R: torch.Tensor, A: torch.Tensor | QuadraticFormDictionary, *, normalized: bool = True,
                     subtract_noise: bool = False) -> torch.Tensor:
    r"""Coarray DBF spectrum η̂_l = Re(a_lᴴ R a_l) (eq. 14), divided by M² if ``normalized``.

    Args:
        R: ``(..., M, M)`` Hermitian covariance.
        A: ``(..., M, L)`` dictionary of the ASSUMED array on the grid (broadcasts with R),
            or a :class:`QuadraticFormDictionary` built on it (fast path for large grids).
        normalized: unit-norm convention (module docstring).
        subtract_noise: remove the flat noise floor σ̂²‖a_l‖² with σ̂² = λ_min(R) first.

    Returns:
        ``(..., L)`` real, differentiable in R (and A).

    Example:
        >>> from isackit.geometry import ula
        >>> A = ula(4).steering(torch.linspace(-1.0, 1.0, 5, dtype=torch.float64))
        >>> R = A[:, 2:3] @ A[:, 2:3].mH          # one unit-power source on grid point 2
        >>> coarray_spectrum(R, A)[2].item()      # = P_22 = 1 in the unit-norm convention
        1.0
    """
    if subtract_noise:
        check_covariance(R)
        lam_min = torch.linalg.eigvalsh(R)[..., :1]  # (..., 1)
        eye = torch.eye(R.shape[-1], dtype=R.dtype, device=R.device)
        R = R - lam_min.unsqueeze(-1).to(R.dtype) * eye
    if isinstance(A, QuadraticFormDictionary):
        M = A.num_elements
        check_covariance(R, M)
        return A(R, scale=1.0 / (M * M) if normalized else 1.0)
    _check_dictionary(A)
    M = A.shape[-2]
    check_covariance(R, M)
    eta = (A.conj() * (R @ A)).real.sum(-2)
    return eta / (M * M) if normalized else eta


@dataclass(frozen=True, eq=False)
class CoarrayProjection:
    r"""The projection matrix P = Ãᴴ Ã in factored form P = U Vᵀ (real).

    Attributes:
        left: U ``(L, D)``; right: V ``(L, D)`` (D ≤ M², 2M − 1 for a ULA).

    ``matvec(x)`` computes P x for ``x (..., L)`` in 2DL multiply-adds per vector
    (differentiable in x); ``dense()`` returns the ``(L, L)`` matrix.
    """

    left: torch.Tensor
    right: torch.Tensor

    @property
    def size(self) -> int:
        """L, the number of grid points."""
        return int(self.left.shape[0])

    @property
    def rank_bound(self) -> int:
        """D, the number of factors (an upper bound on rank P)."""
        return int(self.left.shape[1])

    def matvec(self, x: torch.Tensor) -> torch.Tensor:
        """P x for ``x (..., L)`` → ``(..., L)`` (P is symmetric, so also xᵀP)."""
        return (x @ self.right) @ self.left.T

    def dense(self) -> torch.Tensor:
        """P as an ``(L, L)`` tensor."""
        return self.left @ self.right.T

    def diagonal(self) -> torch.Tensor:
        """diag P, ``(L,)``."""
        return (self.left * self.right).sum(-1)

    def to(self, dtype: torch.dtype | None = None, device=None) -> CoarrayProjection:
        """The same operator in another real dtype / on another device."""
        return CoarrayProjection(self.left.to(dtype=dtype, device=device),
                                 self.right.to(dtype=dtype, device=device))


def coarray_projection(A: torch.Tensor, *, normalized: bool = True, dense: bool = False
                       ) -> CoarrayProjection | torch.Tensor:
    r"""Projection matrix P_{ll'} = |a_lᴴ a_{l'}|² (eq. 14), divided by M² if ``normalized``.

    Args:
        A: ``(M, L)`` dictionary of the assumed array on the grid.
        normalized: unit-norm convention (P_ll = 1 for unit-modulus responses).
        dense: return the ``(L, L)`` matrix instead of the factored :class:`CoarrayProjection`.

    Returns:
        :class:`CoarrayProjection` (real dtype of A) or an ``(L, L)`` tensor.

    Example:
        >>> from isackit.geometry import ula
        >>> A = ula(4).steering(torch.linspace(-1.0, 1.0, 201, dtype=torch.float64))
        >>> P = coarray_projection(A)
        >>> P.rank_bound, int(torch.linalg.matrix_rank(P.dense()))   # 2M - 1 coarray lags
        (7, 7)
    """
    _check_dictionary(A)
    if A.ndim != 2:
        raise ValueError(f"coarray_projection takes one (M, L) dictionary, got shape {tuple(A.shape)}")
    M, L = A.shape
    scale = 1.0 / (M * M) if normalized else 1.0
    if dense:
        G = A.mH @ A
        return (G.real ** 2 + G.imag ** 2) * scale
    qf = QuadraticFormDictionary(A)
    outer = A.T.unsqueeze(-1) * A.T.conj().unsqueeze(-2)  # (L, M, M): a_l a_l^H
    C = qf.coefficients(outer)  # (L, D)
    U = qf.basis.T.contiguous()  # (L, D): features φ_l
    return CoarrayProjection(U, (C * scale).contiguous())


def _check_projection_size(P, L: int, name: str = "P") -> None:
    n = P.size if isinstance(P, CoarrayProjection) else P.shape[-1]
    if n != L:
        raise ValueError(f"{name} is {n} × {n} but the spectrum has {L} points")


def check_spectrum(x: torch.Tensor, name: str = "spectrum") -> torch.Tensor:
    """Raise unless ``x`` is a real tensor ``(..., L)``."""
    check_last_dims(x, (None,), name, "(..., L)")
    if x.is_complex():
        raise TypeError(f"{name} must be real, got {x.dtype}")
    return x
