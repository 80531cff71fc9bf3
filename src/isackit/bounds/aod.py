r"""Bounds for AoD positioning with precoded pilots (seed 004), and the CRB-optimal precoder.

Observation of station i (downlink MISO, T transmissions, pilots s = 1, σ² = 1, SNR = |α|²):

    y_i = α_i F_iᵀ ã_i(θ_i) + n_i,   n_i ~ CN(0, I_T),

with ã_i the TRUE (possibly impaired) response of the station's array.  Everything here is
assembled from the generic bounds of this layer — :func:`~isackit.bounds.crb_single_path`
(AoD CRB with an unknown complex gain), :func:`~isackit.bounds.position.peb_aoa` (PEB through
the geometry Jacobian) and :func:`~isackit.bounds.mismatch.mcrb_deterministic` (misspecified
CRB, Fortunati et al., IEEE SPM 2017):

    CRB_i(θ_i) = 1 / (2 SNR J_i(θ_i)),  J = ‖ḃ‖² - |bᴴḃ|²/‖b‖², b = F_iᵀ ã_i(θ_i), ḃ = ∂b/∂θ;
    PEB(p) = sqrt(tr((Σ_i ∇θ_i ∇θ_iᵀ / CRB_i)⁻¹)).

A receiver that assumes the nominal response a(θ) while the data follow ã(θ) estimates the
pseudo-true AoD θ₀; its error is bounded by MCRB + (θ₀ - θ)² (:func:`mcrb_aod`).  For the
position, the bearing intersection (:func:`isackit.estimators.positioning.ml_position`) is
linearised at the pseudo-true bearings: p₀ = ml_position(θ₀), cov = H diag(MCRB_i) Hᵀ with the
weighted-LS gain H = (GᵀWG)⁻¹GᵀW (G = ∂θ/∂p at p₀, W = diag(1/CRB_i) of the assumed model),
bound = sqrt(tr(cov) + ‖p₀ - p‖²) (:func:`mcrb_position`).

CRB-optimal power allocation (seed 004 eqs. 8-10, after Keskin et al., IEEE TVT 2022).  With a
codebook C (unit-norm columns, e.g. :func:`isackit.signals.precoders.derivative_codebook`) and
F = C diag(√ρ), Σρ_t = 1, J(θ; ρ) is the Schur complement of the 2×2 matrix
Σ_t ρ_t [ḣ_t, h_t]ᴴ[ḣ_t, h_t] (h_t = c_tᵀ a), which is linear in ρ, so J is concave in ρ.
Minimising the worst-case CRB over a sector sampled at θ_1..θ_K is the convex program

    maximise_{ρ, τ} τ   s.t.  J(θ_k; ρ) ≥ τ (k = 1..K),  Σ_t ρ_t = 1,  ρ ≥ 0,

(the optimum does not depend on the SNR), solved by SciPy's SLSQP with exact Jacobians
(autograd through :func:`~isackit.bounds.crb_single_path`).  ``objective="average"`` minimises
the mean CRB over the grid (also convex: 1/J of a positive concave J is convex).  The design
lives in the bounds layer because it optimises a bound.

Shapes are batch-first; use float64 for bounds.

Example:
    >>> import torch
    >>> from isackit.geometry import ula
    >>> from isackit.impairments import ArrayModel
    >>> arr = ArrayModel(ula(8, 0.5, 1.0))
    >>> F = arr.steering(torch.tensor([0.0, 0.2], dtype=torch.float64)).conj() / 4
    >>> crb = aod_crb(F, arr, torch.tensor(0.1, dtype=torch.float64), 10.0)
    >>> bool(crb > 0)
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from scipy.optimize import minimize

from .._dtypes import complex_dtype
from ..conversions import db_to_linear
from ..estimators.positioning import ml_position
from ..impairments.base import ArrayModel
from ..signals.precoders import derivative_codebook
from .doa import crb_single_path
from .fisher import batched_jacobian
from .mismatch import mcrb_deterministic
from .position import aoa_map, peb_aoa

__all__ = [
    "aod_crb",
    "aod_crbs",
    "position_peb",
    "mcrb_aod",
    "mcrb_position",
    "aod_information",
    "PowerAllocation",
    "optimal_power_allocation",
    "crb_optimal_precoder",
]


def _snr(snr_db, like: torch.Tensor) -> torch.Tensor:
    return db_to_linear(torch.as_tensor(snr_db, dtype=like.dtype, device=like.device))


def aod_crb(precoder: torch.Tensor, array: ArrayModel, theta: torch.Tensor, snr_db) -> torch.Tensor:
    """AoD CRB (rad²) of y = α Fᵀ ã(θ) + n with SNR = |α|²/σ²: F ``(..., M, T)``, θ ``(...)``."""
    th = torch.as_tensor(theta)
    return crb_single_path(array, th, precoder, torch.sqrt(_snr(snr_db, th)).to(torch.complex128), 1.0)


def aod_crbs(precoders: torch.Tensor, arrays: Sequence[ArrayModel], theta: torch.Tensor, snr_db) -> torch.Tensor:
    """Per-station AoD CRBs: F ``(..., I, M, T)``, θ ``(..., I)`` → ``(..., I)`` rad²."""
    return torch.stack([aod_crb(precoders[..., i, :, :], arr, theta[..., i], snr_db)
                        for i, arr in enumerate(arrays)], dim=-1)


def position_peb(precoders: torch.Tensor, arrays: Sequence[ArrayModel], position: torch.Tensor,
                 bs_positions: torch.Tensor, orientations: torch.Tensor, snr_db) -> torch.Tensor:
    """PEB (m) at p ``(..., 2)`` for precoders ``(..., I, M, T)`` and the TRUE arrays."""
    theta = aoa_map(bs_positions, orientations)(position)
    crb = aod_crbs(precoders, arrays, theta, snr_db)
    return peb_aoa(position, bs_positions.to(position), orientations.to(position), crb)


def mcrb_aod(precoder: torch.Tensor, true_array: ArrayModel, assumed_array: ArrayModel,
             theta: torch.Tensor, snr_db, iterations: int = 30) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """MCRB of the ML AoD of a receiver that assumes ``assumed_array`` while the data follow ``true_array``.

    Args:
        precoder: F ``(..., M, T)`` (complex128 recommended); θ ``(...)`` float64.
    Returns:
        ``(mse_bound, mcrb, bias)`` each ``(...)``: MCRB + bias², the covariance part, θ₀ - θ.
        (The bound does not depend on the phase of α; α = sqrt(SNR) is used.)
    """
    th = torch.as_tensor(theta)
    F = precoder.to(complex_dtype(th.dtype))
    alpha = torch.sqrt(_snr(snr_db, th)).to(F.dtype)
    a_true = true_array.steering(th.unsqueeze(-1))            # (..., M, 1)
    mu = alpha[..., None] * (F.mT @ a_true).squeeze(-1)        # (..., T)

    def response(t):                                           # (..., 1) -> (..., T, 1)
        return F.mT @ assumed_array.steering(t).to(F.dtype)

    res = mcrb_deterministic(mu, response, th.unsqueeze(-1), 1.0, iterations=iterations)
    m, b = res.mcrb[..., 0, 0], res.bias[..., 0]
    return m + b ** 2, m, b


def mcrb_position(precoders: torch.Tensor, true_arrays: Sequence[ArrayModel],
                  assumed_arrays: Sequence[ArrayModel], position: torch.Tensor, bs_positions: torch.Tensor,
                  orientations: torch.Tensor, snr_db) -> torch.Tensor:
    """Misspecified bound (m) on the RMSE of the ML position from mismatched ML AoDs at p ``(..., 2)`` (module doc)."""
    theta = aoa_map(bs_positions, orientations)(position)                # (..., I)
    parts = [mcrb_aod(precoders[..., i, :, :], true_arrays[i], assumed_arrays[i], theta[..., i], snr_db)
             for i in range(len(true_arrays))]
    m = torch.stack([p[1] for p in parts], dim=-1)
    theta0 = theta + torch.stack([p[2] for p in parts], dim=-1)
    w_var = aod_crbs(precoders, assumed_arrays, theta0, snr_db)        # the receiver's weights
    p0 = ml_position(theta0, w_var, bs_positions.to(theta0), orientations.to(theta0))
    G = batched_jacobian(aoa_map(bs_positions, orientations), p0, event_ndim=1)  # (..., I, 2)
    W = torch.diag_embed(1.0 / w_var)
    H = torch.linalg.inv(G.mT @ W @ G) @ G.mT @ W                      # (..., 2, I)
    cov = H @ torch.diag_embed(m) @ H.mT
    return torch.sqrt(torch.diagonal(cov, dim1=-2, dim2=-1).sum(-1) + ((p0 - position) ** 2).sum(-1))


def aod_information(precoder: torch.Tensor, array: ArrayModel, theta: torch.Tensor) -> torch.Tensor:
    """J(θ) = ‖ḃ‖² - |bᴴḃ|²/‖b‖² = 1 / (2 SNR CRB(θ)) for y = α Fᵀ a(θ) + n, ``(...)``.

    Calls :func:`isackit.bounds.crb_single_path` with α = σ² = 1; differentiable in F.
    """
    return 0.5 / crb_single_path(array, theta, precoder, 1.0, 1.0)


class PowerAllocation(dict):
    """Result of :func:`optimal_power_allocation`: keys ``rho`` (T,), ``worst_crb_unit_snr``,
    ``iterations``, ``success``, ``message``."""


def optimal_power_allocation(codebook: torch.Tensor, array: ArrayModel, sector: torch.Tensor,
                             num_angles: int = 41, objective: Literal["worst", "average"] = "worst",
                             tol: float = 1e-10, max_iter: int = 500) -> PowerAllocation:
    r"""CRB-optimal power allocation ρ on the simplex for one codebook and sector (see module doc).

    Args:
        codebook: ``(M, T)`` complex, unit-norm columns.
        array: model used by the designer.
        sector: ``(2,)`` radians; the CRB is evaluated on ``num_angles`` evenly spaced angles.
        objective: ``"worst"`` (seed: worst-case CRB) or ``"average"`` (mean CRB).
        tol: SLSQP ``ftol``; convergence requires SLSQP's KKT test to pass at this tolerance.

    Returns:
        :class:`PowerAllocation` with ``rho`` (float64 tensor, Σρ = 1, ρ ≥ 0) and the worst
        CRB over the grid at SNR = 1 (rad²).  One sector per call (design time, not a hot path).
    """
    if codebook.ndim != 2 or sector.shape != (2,):
        raise ValueError(f"expected codebook (M, T) and sector (2,), got {tuple(codebook.shape)} "
                         f"and {tuple(sector.shape)}")
    if objective not in ("worst", "average"):
        raise ValueError(f"objective must be 'worst' or 'average', got {objective!r}")
    C = codebook.detach().to(torch.complex128)
    T = C.shape[-1]
    sec = sector.detach().to(torch.float64)
    angles = torch.linspace(float(sec[0]), float(sec[1]), int(num_angles), dtype=torch.float64)

    def info(rho: torch.Tensor) -> torch.Tensor:  # (T,) -> (K,)
        F = C * torch.sqrt(rho.clamp_min(0.0)).to(C.dtype)
        return aod_information(F.expand(len(angles), *F.shape), array, angles)

    rho0 = torch.full((T,), 1.0 / T, dtype=torch.float64)
    scale = float(info(rho0).min())  # conditioning: J / J(uniform) is O(1)

    def j_and_grad(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rho = torch.tensor(x, dtype=torch.float64).clamp_min(1e-15)
        jac = torch.autograd.functional.jacobian(lambda r: info(r) / scale, rho)
        return (info(rho) / scale).numpy(), jac.numpy()

    bounds = [(0.0, 1.0)] * T
    if objective == "worst":
        # variables x = (ρ, τ): maximise τ s.t. J_k(ρ) - τ ≥ 0
        x0 = np.concatenate([rho0.numpy(), [0.9 * 1.0]])
        cons = [
            {"type": "eq", "fun": lambda x: np.array([x[:T].sum() - 1.0]),
             "jac": lambda x: np.concatenate([np.ones(T), [0.0]])[None, :]},
            {"type": "ineq", "fun": lambda x: j_and_grad(x[:T])[0] - x[T],
             "jac": lambda x: np.concatenate([j_and_grad(x[:T])[1], -np.ones((len(angles), 1))], axis=1)},
        ]
        res = minimize(lambda x: -x[T], x0, jac=lambda x: np.concatenate([np.zeros(T), [-1.0]]),
                       method="SLSQP", bounds=bounds + [(0.0, None)], constraints=cons,
                       options={"ftol": tol, "maxiter": max_iter})
        rho = res.x[:T]
    else:
        def f(x):
            j, g = j_and_grad(x)
            return float(np.mean(1.0 / j)), -(g / j[:, None] ** 2).mean(0)

        cons = [{"type": "eq", "fun": lambda x: np.array([x.sum() - 1.0]),
                 "jac": lambda x: np.ones((1, T))}]
        res = minimize(f, rho0.numpy(), jac=True, method="SLSQP", bounds=bounds, constraints=cons,
                       options={"ftol": tol, "maxiter": max_iter})
        rho = res.x
    rho = torch.tensor(np.clip(rho, 0.0, None), dtype=torch.float64)
    rho = rho / rho.sum()
    worst = float((0.5 / info(rho)).max())
    return PowerAllocation(rho=rho, worst_crb_unit_snr=worst, iterations=int(res.nit),
                           success=bool(res.success), message=str(res.message))


def crb_optimal_precoder(array: ArrayModel, sectors: torch.Tensor, num_transmissions: int,
                       num_angles: int = 41, objective: Literal["worst", "average"] = "worst"
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """F = C diag(√ρ*) with unit Frobenius norm for each sector, C = :func:`~isackit.signals.precoders.derivative_codebook`.

    Args:
        array: the designer's model (nominal array).
        sectors: ``(S, 2)`` (or ``(2,)``) radians.
    Returns:
        ``(F_b (S, M, T) complex128, ρ (S, T))`` (leading dim dropped for a ``(2,)`` input).
    """
    single = sectors.ndim == 1
    secs = sectors.reshape(-1, 2).to(torch.float64)
    C = derivative_codebook(array, secs, num_transmissions)
    rhos = torch.stack([optimal_power_allocation(C[s], array, secs[s], num_angles, objective)["rho"]
                        for s in range(secs.shape[0])])
    F = C * torch.sqrt(rhos).unsqueeze(-2).to(C.dtype)
    F = F / torch.linalg.matrix_norm(F, keepdim=True)
    return (F[0], rhos[0]) if single else (F, rhos)


