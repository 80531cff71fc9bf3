r"""Generic Fisher information by the Slepian–Bangs formula, with autograd Jacobians.

Observation models (circular complex Gaussian, conventions.md):

* **deterministic** (conditional) model: x ~ CN(μ(η), σ² I) with the noise variance σ²
  known (it decouples from η, so it need not be part of η):

      F(η) = (2/σ²) Re(J^H J),   J = ∂μ/∂η^T  (D × P complex Jacobian);

* **stochastic** (unconditional) model: N i.i.d. snapshots x_n ~ CN(0, R(η)):

      F_ij = N tr(R⁻¹ ∂R/∂η_i R⁻¹ ∂R/∂η_j);

* **general Gaussian** model: N independent snapshots x_n ~ CN(μ_n(η), R(η)):

      F_ij = Σ_n 2 Re(∂μ_n^H/∂η_i R⁻¹ ∂μ_n/∂η_j) + N tr(R⁻¹ ∂R/∂η_i R⁻¹ ∂R/∂η_j).

η is a real parameter vector ``(..., P)``; complex nuisance parameters (gains, signals) enter
as their real and imaginary parts, source powers and the noise variance as real entries.
The bound on the parameters of interest is the corresponding block of F⁻¹
(:func:`crb_from_fim`), i.e. the inverse of the Schur complement of the nuisance block, so
nuisance parameters are marginalised correctly.

Jacobians come from :func:`torch.func.jacfwd` applied to a *shift* of the whole batch:
``v ↦ fn(params + v)`` with ``v`` of shape ``(P,)``.  Because every batch element of the
model's output depends only on its own parameters (the user's function must respect this;
all batched library functions do), this gives every per-element Jacobian in one forward-mode
pass of P tangents, without a Python loop over batch elements.

Reference: S. M. Kay, *Fundamentals of Statistical Signal Processing: Estimation Theory*,
§3.9 and §15.7 (Slepian–Bangs); P. Stoica, R. Moses, *Spectral Analysis of Signals*, App. B.

All functions work in the dtype of ``params`` (use float64 for bounds) and are
differentiable in ``params`` (second-order autograd through ``jacfwd``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch.func import jacfwd

from .._checks import check_finite, check_ndim_at_least, check_positive, check_positive_int
from .._dtypes import complex_dtype, is_numerically_singular

__all__ = [
    "check_fim",
    "batched_jacobian",
    "crb_from_fim",
    "fisher_deterministic",
    "fisher_gaussian",
    "fisher_stochastic",
    "merge_complex",
    "split_complex",
]


def _check_params(params) -> torch.Tensor:
    if not isinstance(params, torch.Tensor):
        raise TypeError(f"params must be a real torch.Tensor of shape (..., P), got {type(params).__name__}")
    check_ndim_at_least(params, 1, "params", "(..., P)")
    if not params.is_floating_point():
        raise TypeError(f"params must be a real floating tensor (use float64 for bounds), got {params.dtype}")
    if params.shape[-1] < 1:
        raise ValueError("params must hold at least one parameter (P >= 1)")
    return check_finite(params, "params")


def split_complex(z: torch.Tensor) -> torch.Tensor:
    """Complex ``(..., K)`` → real ``(..., 2K)`` = ``[Re z, Im z]`` (to put complex nuisances in η)."""
    return torch.cat([z.real, z.imag], dim=-1)


def merge_complex(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`split_complex`: real ``(..., 2K)`` → complex ``(..., K)``."""
    if x.shape[-1] % 2:
        raise ValueError(f"merge_complex needs an even last dimension, got {x.shape[-1]}")
    k = x.shape[-1] // 2
    return torch.complex(x[..., :k], x[..., k:])


def batched_jacobian(fn: Callable[[torch.Tensor], torch.Tensor], params: torch.Tensor,
                     event_ndim: int = 1) -> torch.Tensor:
    r"""Per-batch-element Jacobian of ``fn`` at ``params``.

    Args:
        fn: maps ``(..., P)`` real parameters to ``(..., *E)`` outputs (real or complex), where
            batch element b of the output depends only on ``params[b]``.
        params: ``(..., P)`` real.
        event_ndim: number of trailing output dims that are not batch dims (len(E)).

    Returns:
        ``(..., *E, P)`` with ∂fn_e/∂η_p, complex if ``fn`` is complex.  Differentiable.
    """
    params = _check_params(params)
    p = params.shape[-1]
    probe = {}

    def shifted(v):
        out = fn(params + v)
        probe["complex"] = out.is_complex()
        return torch.view_as_real(out) if out.is_complex() else out

    zero = torch.zeros(p, dtype=params.dtype, device=params.device)
    jac = jacfwd(shifted)(zero)  # (..., *E, [2,] P)
    if probe["complex"]:
        jac = torch.complex(jac[..., 0, :], jac[..., 1, :])
    if jac.ndim < params.ndim - 1 + event_ndim + 1:
        raise ValueError(f"fn output has fewer dims than batch + event_ndim={event_ndim}")
    return jac


def fisher_deterministic(mean_fn: Callable[[torch.Tensor], torch.Tensor], params: torch.Tensor,
                         noise_var, event_ndim: int = 1) -> torch.Tensor:
    r"""Fisher information of x ~ CN(μ(η), σ² I): F = (2/σ²) Re(J^H J).

    Args:
        mean_fn: ``(..., P)`` → complex mean ``(..., *E)`` (all observations stacked; e.g.
            snapshots ``(..., M, N)`` with ``event_ndim=2``).
        params: η, ``(..., P)`` real (float64 recommended).
        noise_var: σ² > 0, scalar or ``(...)``.
        event_ndim: number of trailing dims of the mean that index observations.

    Returns:
        ``(..., P, P)`` real symmetric FIM; the batch dims are those of the mean (they may
        exceed those of ``params``, e.g. a model with a batch of impairment draws).
        Differentiable.

    Example:
        >>> eta = torch.tensor([0.3], dtype=torch.float64)
        >>> F = fisher_deterministic(lambda t: torch.exp(1j * t * torch.arange(4.)), eta, 1.0)
    """
    check_positive(noise_var, "noise_var")
    J = batched_jacobian(mean_fn, params, event_ndim)  # (..., *E, P); "..." may exceed params' batch
    J = J.flatten(start_dim=J.ndim - 1 - event_ndim, end_dim=-2)  # (..., D, P)
    if not J.is_complex():
        J = J.to(complex_dtype(params.dtype))
    G = (J.mH @ J).real
    s2 = torch.as_tensor(noise_var, dtype=params.dtype, device=params.device)
    return 2.0 * G / s2[..., None, None]


def _cov_term(R: torch.Tensor, dR: torch.Tensor) -> torch.Tensor:
    # R (..., M, M), dR (..., M, M, P) -> (..., P, P) tr(R^-1 dR_i R^-1 dR_j)
    dR = dR.movedim(-1, -3)  # (..., P, M, M)
    Q = torch.linalg.solve(R.unsqueeze(-3), dR)  # R^-1 dR_i
    # tr(Q_i Q_j) = sum_ab Q_i[a,b] Q_j[b,a]
    return torch.einsum("...iab,...jba->...ij", Q, Q).real


def fisher_stochastic(cov_fn: Callable[[torch.Tensor], torch.Tensor], params: torch.Tensor,
                      num_snapshots: int) -> torch.Tensor:
    r"""Fisher information of N i.i.d. snapshots x_n ~ CN(0, R(η)).

    F_ij = N tr(R⁻¹ ∂R/∂η_i R⁻¹ ∂R/∂η_j)  (Slepian–Bangs; Stoica & Moses, App. B).

    Args:
        cov_fn: ``(..., P)`` → Hermitian positive definite ``(..., M, M)``.
        params: η, ``(..., P)`` real (include source powers / noise variance as needed).
        num_snapshots: N.

    Returns:
        ``(..., P, P)`` real FIM.  Differentiable.
    """
    n = check_positive_int(num_snapshots, "num_snapshots")
    params = _check_params(params)
    R = cov_fn(params)
    check_ndim_at_least(R, 2, "cov_fn(params)", "(..., M, M)")
    dR = batched_jacobian(cov_fn, params, event_ndim=2)
    if not dR.is_complex():
        dR = dR.to(complex_dtype(params.dtype))
        R = R.to(dR.dtype)
    return n * _cov_term(R, dR)


def fisher_gaussian(mean_fn: Callable[[torch.Tensor], torch.Tensor] | None,
                    cov_fn: Callable[[torch.Tensor], torch.Tensor], params: torch.Tensor,
                    num_snapshots: int, mean_per_snapshot: bool = False) -> torch.Tensor:
    r"""Fisher information of N independent snapshots x_n ~ CN(μ_n(η), R(η)).

    F_ij = Σ_n 2 Re(∂μ_n^H/∂η_i R⁻¹ ∂μ_n/∂η_j) + N tr(R⁻¹ ∂R/∂η_i R⁻¹ ∂R/∂η_j).

    Args:
        mean_fn: ``(..., P)`` → ``(..., M)`` (same mean for every snapshot) or, with
            ``mean_per_snapshot=True``, ``(..., M, N)``; ``None`` for a zero mean.
        cov_fn: ``(..., P)`` → ``(..., M, M)``.
        params: ``(..., P)`` real.
        num_snapshots: N.

    Returns:
        ``(..., P, P)``.  Used e.g. for the average-model CRLB of seed 003 (mean and
        covariance from the moments of random gain-phase errors).
    """
    F = fisher_stochastic(cov_fn, params, num_snapshots)
    if mean_fn is None:
        return F
    R = cov_fn(params)
    if mean_per_snapshot:
        J = batched_jacobian(mean_fn, params, event_ndim=2)  # (..., M, N, P)
        if J.shape[-2] != num_snapshots:
            raise ValueError(f"mean_fn must return (..., M, N={num_snapshots}), got N={J.shape[-2]}")
        J = J.movedim(-2, -3)  # (..., N, M, P)
        W = torch.linalg.solve(R.unsqueeze(-3).to(J.dtype), J)
        return F + 2.0 * (J.mH @ W).real.sum(-3)
    J = batched_jacobian(mean_fn, params, event_ndim=1)  # (..., M, P)
    W = torch.linalg.solve(R.to(J.dtype), J)
    return F + 2.0 * num_snapshots * (J.mH @ W).real


def check_fim(fim: torch.Tensor) -> torch.Tensor:
    r"""Raise a one-line ``ValueError`` if a symmetric FIM ``(..., P, P)`` is numerically singular.

    The test is scale-free: F is first normalised to unit diagonal, F_ij / sqrt(F_ii F_jj)
    (parameters in seconds and in radians differ by many orders of magnitude without the
    problem being ill-posed), then :func:`~isackit._dtypes.is_numerically_singular` is applied
    to its eigenvalues.  A parameter without information (F_ii ≤ 0) is singular too.  A
    singular FIM means some parameter is not identifiable (a source of zero power, two equal
    angles, more sources than the array resolves): the CRB does not exist.
    """
    with torch.no_grad():
        d = torch.diagonal(fim, dim1=-2, dim2=-1)
        if bool((d <= 0).any()):
            raise ValueError("the Fisher information is singular (a parameter carries no information, "
                             "e.g. a source of zero power): the CRB is not defined")
        s = d.rsqrt()
        if bool(is_numerically_singular(torch.linalg.eigvalsh(fim * s[..., :, None] * s[..., None, :])).any()):
            raise ValueError("the Fisher information is numerically singular (a parameter is not identifiable, "
                             "e.g. equal angles or more sources than the array resolves): the CRB is not defined")
    return fim


def crb_from_fim(fim: torch.Tensor, interest_idx: Sequence[int] | slice | None = None) -> torch.Tensor:
    r"""Cramér–Rao bound of the parameters of interest from a full FIM.

    CRB(η_I) = [F⁻¹]_{II} = (F_II - F_IN F_NN⁻¹ F_NI)⁻¹ (the inverse of the Schur
    complement of the nuisance block), so every other parameter is treated as unknown.

    Args:
        fim: ``(..., P, P)`` symmetric positive definite.
        interest_idx: indices (or a slice) of the parameters of interest; ``None`` = all.

    Returns:
        ``(..., I, I)`` covariance bound.  Differentiable.
    """
    check_ndim_at_least(fim, 2, "fim", "(..., P, P)")
    if fim.shape[-1] != fim.shape[-2]:
        raise ValueError(f"fim must be square (..., P, P), got {tuple(fim.shape)}")
    check_finite(fim, "fim")
    p = fim.shape[-1]
    fim = 0.5 * (fim + fim.mT)
    check_fim(fim)
    if interest_idx is None:
        return torch.linalg.inv(fim)
    idx = torch.arange(p)[interest_idx] if isinstance(interest_idx, slice) else torch.as_tensor(list(interest_idx))
    if idx.numel() == 0 or int(idx.min()) < -p or int(idx.max()) >= p:
        raise ValueError(f"interest_idx must index into P={p} parameters, got {interest_idx}")
    idx = idx % p
    mask = torch.ones(p, dtype=torch.bool)
    mask[idx] = False
    nuis = torch.arange(p)[mask]
    idx, nuis = idx.to(fim.device), nuis.to(fim.device)
    F_ii = fim[..., idx[:, None], idx]
    if nuis.numel() == 0:
        return torch.linalg.inv(F_ii)
    F_in = fim[..., idx[:, None], nuis]
    F_nn = fim[..., nuis[:, None], nuis]
    schur = F_ii - F_in @ torch.linalg.solve(F_nn, F_in.mT)
    return torch.linalg.inv(0.5 * (schur + schur.mT))
