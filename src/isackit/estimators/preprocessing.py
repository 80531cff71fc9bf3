r"""Covariance preprocessing for subspace estimators: forward–backward averaging,
spatial smoothing and the unitary (real-valued) transform.

All functions take a sample covariance ``R`` of shape ``(..., M, M)`` (Hermitian, complex)
with any number of leading batch dimensions and return tensors of the same dtype/device.
They are linear maps of ``R`` and therefore differentiable.

Conventions (``shared/design/conventions.md``): a ULA element ``m`` has response
``exp(j 2π m d sin θ)``; the exchange matrix ``J`` reverses the element order.

References:
    * S. U. Pillai, B. H. Kwon, "Forward/backward spatial smoothing techniques for coherent
      signal identification", IEEE Trans. ASSP 37(1), 1989.
    * T.-J. Shan, M. Wax, T. Kailath, "On spatial smoothing for direction-of-arrival
      estimation of coherent signals", IEEE Trans. ASSP 33(4), 1985.
    * M. Haardt, J. A. Nossek, "Unitary ESPRIT: how to obtain increased estimation accuracy
      with a reduced computational burden", IEEE Trans. SP 43(5), 1995 (the matrix Q_M).
"""

from __future__ import annotations

import math

import torch

from .._checks import check_positive_int
from .common import check_covariance

__all__ = ["forward_backward", "spatial_smoothing", "unitary_matrix", "real_covariance"]


def forward_backward(R: torch.Tensor) -> torch.Tensor:
    r"""Forward–backward averaged covariance R_fb = (R + J R^* J) / 2.

    ``J`` is the M × M exchange matrix, so ``(J R^* J)[m, n] = conj(R[M-1-m, M-1-n])``.
    For a centro-symmetric array (e.g. a ULA) the backward covariance has the same signal
    subspace as R; averaging decorrelates pairs of coherent sources and makes
    ``Q_M^H R_fb Q_M`` real (see :func:`real_covariance`).

    Args:
        R: ``(..., M, M)`` complex Hermitian covariance.

    Returns:
        ``(..., M, M)`` complex, persymmetric and Hermitian. Differentiable.

    Example:
        >>> R = torch.eye(4, dtype=torch.complex64)
        >>> torch.equal(forward_backward(R), R)
        True
    """
    check_covariance(R, finite=True)
    return 0.5 * (R + R.conj().flip(-2, -1))


def spatial_smoothing(R: torch.Tensor, num_subarrays: int, forward_backward: bool = False) -> torch.Tensor:
    r"""Spatially smoothed covariance of a ULA: the mean of the L overlapping subarray
    covariances of size m = M - L + 1,

        R_ss = (1/L) Σ_{l=0}^{L-1} R[l : l+m, l : l+m],

    optionally followed by forward–backward averaging (R_ss + J R_ss^* J)/2 (FBSS).
    Forward smoothing with L ≥ K (FBSS: L ≥ K/2 in the usual count) restores the rank of
    the source covariance for K fully coherent sources (Shan–Wax–Kailath; Pillai–Kwon),
    at the price of an aperture of m elements.  The subarray steering vector is the first
    m entries of the full-array one, so angle estimators use m elements, same spacing.

    Args:
        R: ``(..., M, M)`` complex Hermitian covariance of a ULA (or any array whose
            element m+1 is element m shifted by one spacing).
        num_subarrays: L, 1 ≤ L ≤ M (L = 1 returns R, or its FB average).
        forward_backward: also apply forward–backward averaging.

    Returns:
        ``(..., m, m)`` complex, m = M - L + 1. Differentiable.
    """
    check_covariance(R, finite=True)
    M = R.shape[-1]
    L = check_positive_int(num_subarrays, "num_subarrays")
    if L > M:
        raise ValueError(f"num_subarrays must be at most M = {M}, got {L}")
    m = M - L + 1
    idx = torch.arange(L, device=R.device)[:, None] + torch.arange(m, device=R.device)[None, :]  # (L, m)
    sub = R[..., idx[:, :, None], idx[:, None, :]]  # (..., L, m, m)
    Rs = sub.mean(dim=-3)
    if forward_backward:
        Rs = 0.5 * (Rs + Rs.conj().flip(-2, -1))
    return Rs


def unitary_matrix(M: int, dtype: torch.dtype = torch.complex128, device=None) -> torch.Tensor:
    r"""The sparse unitary, left-Π-real matrix Q_M of Haardt & Nossek (1995).

    For M = 2n:  Q = (1/√2) [[I_n, j I_n], [J_n, -j J_n]];
    for M = 2n+1: Q = (1/√2) [[I_n, 0, j I_n], [0, √2, 0], [J_n, 0, -j J_n]].
    It satisfies Q^H Q = I and J_M Q^* = Q, so Q^H a is real for a conjugate-centro-symmetric
    vector a (a ULA steering vector with its phase centre at the array centre), and
    Q^H R Q is real for a persymmetric Hermitian R.

    Returns:
        ``(M, M)`` complex.
    """
    M = check_positive_int(M, "M")
    n = M // 2
    Q = torch.zeros(M, M, dtype=torch.complex128)
    eye = torch.eye(n, dtype=torch.complex128)
    exch = eye.flip(0)
    Q[:n, :n] = eye
    Q[:n, M - n:] = 1j * eye
    Q[M - n:, :n] = exch
    Q[M - n:, M - n:] = -1j * exch
    if M % 2:
        Q[n, n] = math.sqrt(2.0)
    Q = Q / math.sqrt(2.0)
    return Q.to(dtype=dtype, device=device)


def real_covariance(R: torch.Tensor) -> torch.Tensor:
    r"""Real-valued covariance Re(Q_M^H R Q_M) = Q_M^H R_fb Q_M (unitary transform).

    Since Q^H (J R^* J) Q = conj(Q^H R Q), the real part of Q^H R Q equals the transform of
    the forward–backward averaged covariance, which is real and symmetric.  Its eigenvectors
    E give the signal subspace Q E of R_fb with a real eigendecomposition.

    Args:
        R: ``(..., M, M)`` complex Hermitian.

    Returns:
        ``(..., M, M)`` real symmetric (float32 for complex64, float64 for complex128).
        Differentiable.
    """
    check_covariance(R, finite=True)
    Q = unitary_matrix(R.shape[-1], dtype=R.dtype, device=R.device)
    return (Q.mH @ R @ Q).real
