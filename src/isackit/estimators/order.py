r"""Model-order selection (number of sources) by information criteria: MDL and AIC.

Wax & Kailath (1985): with the eigenvalues λ_1 ≥ … ≥ λ_M of the sample covariance of N
independent snapshots, the log-likelihood ratio of "k sources" against the saturated model
is N (M-k) Λ(k) with

    Λ(k) = log( a(k) / g(k) ),   a(k) = mean_{i>k} λ_i,   g(k) = (Π_{i>k} λ_i)^{1/(M-k)}

(the log of the ratio of the arithmetic to the geometric mean of the M-k smallest
eigenvalues, ≥ 0, = 0 when they are equal), and the criteria are

    AIC(k) = 2 N (M-k) Λ(k) + 2 k (2M - k),
    MDL(k) =   N (M-k) Λ(k) + ½ k (2M - k) log N,

for k = 0 … M-1; the estimate is the minimiser.  MDL is consistent (P(k̂ = K) → 1 as
N → ∞); AIC is not and tends to over-estimate at high SNR / large N; at low SNR both
under-estimate (the source eigenvalues drown in the noise spread).  The free-parameter
count k(2M-k) assumes unstructured complex data; after forward–backward averaging or
spatial smoothing the count changes (Xu, Roy & Kailath 1994) and these penalties are only
approximate.

Reference: M. Wax, T. Kailath, "Detection of signals by information theoretic criteria",
IEEE Trans. ASSP 33(2), 1985.

Not differentiable (integer output); the criterion values are differentiable in R.
"""

from __future__ import annotations

import math

import torch

from .._checks import check_choice, check_positive_int
from .common import check_covariance

__all__ = ["information_criterion", "estimate_order", "mdl_order", "aic_order"]

_CRITERIA = ("mdl", "aic")


def information_criterion(eigenvalues: torch.Tensor, num_snapshots: int, criterion: str = "mdl") -> torch.Tensor:
    r"""MDL or AIC values for k = 0 … M-1 candidate sources.

    Args:
        eigenvalues: ``(..., M)`` real eigenvalues of the sample covariance, any order
            (they are sorted here); non-positive values (a noise-free, rank-deficient R)
            are clamped to ``M · eps · λ_max`` so that the logarithms stay finite.
        num_snapshots: N, the number of snapshots the covariance was formed from.
        criterion: ``"mdl"`` or ``"aic"``.

    Returns:
        ``(..., M)`` real, entry k is the criterion for k sources.
    """
    check_choice(criterion, _CRITERIA, "criterion")
    N = check_positive_int(num_snapshots, "num_snapshots")
    if not isinstance(eigenvalues, torch.Tensor) or eigenvalues.is_complex() or eigenvalues.ndim < 1:
        raise ValueError("eigenvalues must be a real tensor of shape (..., M)")
    if not torch.isfinite(eigenvalues).all():
        raise ValueError("eigenvalues must be finite, but they contain NaN or Inf values")
    lam = eigenvalues.sort(dim=-1, descending=True).values
    M = lam.shape[-1]
    tiny = torch.finfo(lam.dtype).tiny
    floor = (lam[..., :1].clamp_min(0) * (M * torch.finfo(lam.dtype).eps)).clamp_min(tiny)
    lam = torch.maximum(lam, floor)
    # tail sums over i >= k (0-based): entry k covers the M-k smallest eigenvalues
    tail_sum = lam.flip(-1).cumsum(-1).flip(-1)
    tail_log = lam.log().flip(-1).cumsum(-1).flip(-1)
    count = torch.arange(M, 0, -1, dtype=lam.dtype, device=lam.device)  # M-k
    k = torch.arange(M, dtype=lam.dtype, device=lam.device)
    Lam = (torch.log(tail_sum / count) - tail_log / count).clamp_min(0)
    fit = N * count * Lam
    dof = k * (2 * M - k)
    if criterion == "mdl":
        return fit + 0.5 * dof * math.log(N)
    return 2 * fit + 2 * dof


def estimate_order(R: torch.Tensor, num_snapshots: int, criterion: str = "mdl",
                   max_sources: int | None = None) -> torch.Tensor:
    r"""Number of sources by MDL or AIC from a sample covariance (Wax–Kailath).

    Args:
        R: ``(..., M, M)`` complex Hermitian sample covariance of N snapshots.
        num_snapshots: N.
        criterion: ``"mdl"`` (consistent) or ``"aic"``.
        max_sources: largest order considered (default M-1).

    Returns:
        ``(...)`` int64 estimated number of sources in [0, max_sources].

    Example:
        >>> R = torch.eye(4, dtype=torch.complex128)
        >>> int(estimate_order(R, 100))
        0
    """
    check_covariance(R, finite=True)
    M = R.shape[-1]
    kmax = M - 1 if max_sources is None else int(max_sources)
    if isinstance(max_sources, bool) or not 0 <= kmax <= M - 1:
        raise ValueError(f"max_sources must be an integer in [0, M-1] = [0, {M - 1}], got {max_sources!r}")
    crit = information_criterion(torch.linalg.eigvalsh(R), num_snapshots, criterion)
    return crit[..., : kmax + 1].argmin(dim=-1)


def mdl_order(R: torch.Tensor, num_snapshots: int, max_sources: int | None = None) -> torch.Tensor:
    """MDL source count, ``(...)`` int64; see :func:`estimate_order`."""
    return estimate_order(R, num_snapshots, "mdl", max_sources)


def aic_order(R: torch.Tensor, num_snapshots: int, max_sources: int | None = None) -> torch.Tensor:
    """AIC source count, ``(...)`` int64; see :func:`estimate_order`."""
    return estimate_order(R, num_snapshots, "aic", max_sources)
