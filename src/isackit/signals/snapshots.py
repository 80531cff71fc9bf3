r"""Narrowband array snapshots X = A S + W and their covariances.

Model (conventions.md): M receive elements, K far-field sources, N snapshots,

    X = A S + W,   X: (..., M, N),  A: (..., M, K),  S: (..., K, N),  W ~ CN(0, σ² I).

* stochastic sources: the columns of S are i.i.d. CN(0, P) with a K × K source covariance
  P (uncorrelated: diagonal; correlated: P_ij = ρ sqrt(p_i p_j); fully coherent: ρ = 1,
  rank one);
* deterministic sources: S is given.

SNR of source k (per element and per snapshot): SNR_k = p_k / σ², with p_k = P_kk, the
power source k contributes at an element of unit-modulus response.  An impaired A with
gain errors changes the actual per-element power; the SNR refers to the nominal |a_m| = 1.

The theoretical covariance is R = E[x x^H] = A P A^H + σ² I and the sample covariance
R̂ = X X^H / N converges to it as N grows.

Everything is batched over leading dims, follows the dtype/device of ``A`` and is
differentiable with respect to A, the source covariance and σ² (the random draws are
reparameterised: S = P^{1/2} Z with Z ~ CN(0, I)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .._checks import as_tensor, check_complex, check_finite, check_ndim_at_least, check_positive_int
from .random import _pad_right, awgn, complex_normal, db_to_linear
from .._dtypes import complex_dtype, rank_threshold, tolerance

__all__ = [
    "source_covariance",
    "sample_covariance",
    "covariance",
    "Snapshots",
    "snapshots",
]


def source_covariance(powers, correlation: float = 0.0) -> torch.Tensor:
    r"""Source covariance P_ij = sqrt(p_i p_j) · (1 if i = j else ρ).

    Args:
        powers: ``(..., K)`` source powers p_k ≥ 0.
        correlation: ρ ∈ [0, 1]: 0 uncorrelated sources, 1 fully coherent (rank one).
            (A common real coefficient keeps P positive semidefinite for every K.)

    Returns:
        ``(..., K, K)`` complex covariance (complex128 for float64 powers).
    """
    p = as_tensor(powers)
    if not p.is_floating_point():
        p = p.to(torch.get_default_dtype())
    if p.ndim < 1:
        raise ValueError(f"powers must have shape (..., K), got a scalar {p!r}")
    check_finite(p, "powers")
    if bool((p < 0).any()):
        raise ValueError("powers must be non-negative")
    rho = float(correlation)
    if not 0.0 <= rho <= 1.0:
        raise ValueError(f"correlation must lie in [0, 1] (0 uncorrelated, 1 coherent), got {correlation}")
    k = p.shape[-1]
    c = torch.full((k, k), rho, dtype=p.dtype, device=p.device)
    c.fill_diagonal_(1.0)
    sq = torch.sqrt(p)
    P = sq.unsqueeze(-1) * c * sq.unsqueeze(-2)
    return P.to(complex_dtype(p.dtype))


def sample_covariance(X: torch.Tensor) -> torch.Tensor:
    r"""R̂ = X X^H / N for snapshots ``X`` of shape ``(..., M, N)`` → ``(..., M, M)``.

    Differentiable.  Example: ``sample_covariance(torch.ones(3, 5, dtype=torch.cfloat))``.
    """
    check_ndim_at_least(X, 2, "X", "(..., M, N)")
    if X.shape[-1] < 1:
        raise ValueError(f"X must have at least one snapshot, got shape {tuple(X.shape)}")
    return X @ X.conj().transpose(-1, -2) / X.shape[-1]


def covariance(A: torch.Tensor, source_cov: torch.Tensor, noise_variance) -> torch.Tensor:
    r"""Theoretical covariance R = A P A^H + σ² I.

    Args:
        A: ``(..., M, K)`` steering matrix (ideal or impaired).
        source_cov: ``(..., K, K)`` source covariance P (broadcasts with A's batch dims).
        noise_variance: σ², float or tensor matching the leading batch dims.

    Returns:
        ``(..., M, M)``; differentiable in all arguments.
    """
    check_ndim_at_least(A, 2, "A", "(..., M, K)")
    check_complex(A, "A")
    P = as_tensor(source_cov, like=A).to(A.dtype)
    if P.ndim < 2 or P.shape[-1] != P.shape[-2] or P.shape[-1] != A.shape[-1]:
        raise ValueError(f"source_cov must have shape (..., K, K) with K = {A.shape[-1]}, got {tuple(P.shape)}")
    R = A @ P @ A.conj().transpose(-1, -2)
    var = as_tensor(noise_variance, like=A.real)
    eye = torch.eye(A.shape[-2], dtype=A.dtype, device=A.device)
    return R + _pad_right(var, R.ndim, "noise_variance", tuple(R.shape)) * eye


@dataclass(frozen=True)
class Snapshots:
    """Result of :func:`snapshots`.

    Attributes:
        X: ``(..., M, N)`` noisy snapshots A S + W.
        signal: ``(..., M, N)`` the noise-free part A S.
        sources: ``(..., K, N)`` the source signals S.
        noise: ``(..., M, N)`` the noise W.
        source_covariance: ``(..., K, K)`` P (for deterministic sources: the empirical
            S S^H / N).
        noise_variance: σ² (tensor, broadcastable to the batch dims).
    """

    X: torch.Tensor
    signal: torch.Tensor
    sources: torch.Tensor
    noise: torch.Tensor
    source_covariance: torch.Tensor
    noise_variance: torch.Tensor


def _psd_sqrt(P: torch.Tensor) -> torch.Tensor:
    """A factor L with L L^H = P for Hermitian PSD P.

    Cholesky when P is positive definite (differentiable everywhere); otherwise (singular P,
    e.g. coherent sources) the eigendecomposition U Λ^{1/2}.
    """
    scale = P.abs().flatten(-2).amax(-1).clamp_min(torch.finfo(P.real.dtype).tiny)
    if bool(((P - P.mH).abs().flatten(-2).amax(-1) > tolerance(P.dtype, condition=P.shape[-1]) * scale).any()):
        raise ValueError("source_cov must be Hermitian (P = P^H)")
    L, info = torch.linalg.cholesky_ex(P)
    if not bool((info != 0).any()):
        return L
    w, U = torch.linalg.eigh(P)
    # eigenvalues of a PSD matrix are computed to about n·eps·λmax: more negative is indefinite
    if bool((w < -rank_threshold(w.dtype, w.shape[-1]) * w.abs().amax(-1, keepdim=True)).any()):
        raise ValueError("source_cov must be positive semidefinite")
    return U * torch.sqrt(torch.clamp(w, min=0.0)).unsqueeze(-2).to(U.dtype)


def _correlated_sqrt(powers: torch.Tensor, rho: float, dtype: torch.dtype) -> torch.Tensor:
    r"""Closed-form factor of P = D^{1/2} C D^{1/2}, C = (1-ρ) I + ρ 1 1^T:
    L = D^{1/2} C^{1/2} with C^{1/2} = sqrt(1-ρ) I + (sqrt(1-ρ+Kρ) - sqrt(1-ρ))/K · 1 1^T
    (C has eigenvalue 1-ρ+Kρ on 1 and 1-ρ on its complement).  Smooth in the powers, also
    for equal powers and for ρ = 1, where an eigendecomposition's gradient is undefined."""
    K = powers.shape[-1]
    a = math.sqrt(1.0 - rho)
    b = (math.sqrt(1.0 - rho + K * rho) - a) / K
    C_half = a * torch.eye(K, dtype=powers.dtype, device=powers.device) + b
    return (torch.sqrt(powers).unsqueeze(-1) * C_half).to(dtype)


def snapshots(
    A: torch.Tensor,
    generator: torch.Generator,
    *,
    num_snapshots: int | None = None,
    snr_db=None,
    correlation: float = 0.0,
    source_cov: torch.Tensor | None = None,
    signals: torch.Tensor | None = None,
    noise_variance=1.0,
) -> Snapshots:
    r"""Draw narrowband snapshots X = A S + W.

    Exactly one way of specifying the sources:

    * stochastic, by SNR: ``num_snapshots`` and ``snr_db`` (``(..., K)`` or a scalar, per
      source) with ``correlation`` ρ; p_k = σ² 10^(SNR_k/10) and P = :func:`source_covariance`;
    * stochastic, by covariance: ``num_snapshots`` and ``source_cov`` ``(..., K, K)``;
    * deterministic: ``signals`` S ``(..., K, N)``; with ``snr_db`` each row of S is rescaled
      so that its empirical power (1/N)Σ_n |s_kn|² equals σ² 10^(SNR_k/10); without it S is
      used as given.

    Args:
        A: ``(..., M, K)`` complex steering matrix (e.g. ``ArrayModel.steering``), any batch dims.
        generator: explicit source of randomness.
        noise_variance: σ² (float or tensor matching the leading batch dims), default 1.

    Returns:
        :class:`Snapshots` with X ``(..., M, N)`` in A's dtype/device.  Differentiable in A,
        ``source_cov``/``snr_db`` and ``signals``.

    Example:
        >>> from isackit.geometry import ula
        >>> A = ula(8).steering(torch.tensor([0.1, -0.4]))
        >>> snap = snapshots(A, torch.Generator().manual_seed(0), num_snapshots=100, snr_db=10.0)
        >>> snap.X.shape
        torch.Size([8, 100])
    """
    check_ndim_at_least(A, 2, "A", "(..., M, K)")
    check_complex(A, "A")
    check_finite(A, "A")
    M, K = A.shape[-2], A.shape[-1]
    if K < 1 or M < 1:
        raise ValueError(f"A must have M >= 1 rows and K >= 1 columns, got shape {tuple(A.shape)}")
    rdtype = A.real.dtype
    var = as_tensor(noise_variance, like=A.real)
    check_finite(var, "noise_variance")
    if bool((var < 0).any()):
        raise ValueError(f"noise_variance must be non-negative, got {noise_variance!r}")

    def powers_from_snr():
        snr = as_tensor(snr_db, like=A.real)
        check_finite(snr, "snr_db")
        if snr.ndim == 0:
            snr = snr.expand(K)
        if snr.shape[-1] != K:
            raise ValueError(f"snr_db must have shape (..., K) with K = {K} (or be a scalar), "
                             f"got {tuple(snr.shape)}")
        return var.reshape(*var.shape, 1) * db_to_linear(snr)

    if signals is not None:
        if num_snapshots is not None or source_cov is not None:
            raise ValueError("give either signals (deterministic sources) or num_snapshots with "
                             "snr_db/source_cov (stochastic sources), not both")
        S = as_tensor(signals, like=A)
        check_complex(S, "signals")
        check_finite(S, "signals")
        if S.ndim < 2 or S.shape[-2] != K or S.shape[-1] < 1:
            raise ValueError(f"signals must have shape (..., K, N) with K = {K}, N >= 1, got {tuple(S.shape)}")
        S = S.to(A.dtype)
        if snr_db is not None:
            target = powers_from_snr()
            emp = (S.abs() ** 2).mean(-1)
            if bool((emp == 0).any()):
                raise ValueError("a row of signals is all zero; it cannot be scaled to an SNR")
            S = S * torch.sqrt(target / emp).unsqueeze(-1).to(A.dtype)
        P = S @ S.conj().transpose(-1, -2) / S.shape[-1]
        N = S.shape[-1]
    else:
        if num_snapshots is None:
            raise ValueError("num_snapshots is required for stochastic sources (or pass signals=)")
        N = check_positive_int(num_snapshots, "num_snapshots")
        if source_cov is not None:
            if snr_db is not None:
                raise ValueError("give either snr_db (with correlation) or source_cov, not both")
            P = as_tensor(source_cov, like=A).to(A.dtype)
            check_finite(P, "source_cov")
            if P.ndim < 2 or P.shape[-2:] != (K, K):
                raise ValueError(f"source_cov must have shape (..., K, K) with K = {K}, got {tuple(P.shape)}")
            L = _psd_sqrt(P)
        else:
            powers = (powers_from_snr() if snr_db is not None
                      else var.reshape(*var.shape, 1).expand(*var.shape, K))
            P = source_covariance(powers, correlation).to(A.dtype)
            L = _correlated_sqrt(powers, float(correlation), A.dtype)
        batch = torch.broadcast_shapes(A.shape[:-2], P.shape[:-2])
        Z = complex_normal((*batch, K, N), generator, A.dtype, A.device)
        S = L @ Z
    signal = A @ S
    W = awgn(signal.shape, var, generator, A.dtype, A.device)
    return Snapshots(X=signal + W, signal=signal, sources=S, noise=W,
                     source_covariance=P, noise_variance=var)
