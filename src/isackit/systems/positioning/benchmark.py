r"""S4 model-based benchmark (seed 004, Sec. III-C): codebook + CRB-optimal power allocation,
ML AoD estimation and ML positioning from the AoDs.

Precoder (seed eqs. 8-10, after Keskin et al., IEEE TVT 2022): a hybrid codebook of T/2
directional beams and T/2 derivative beams on an evenly spaced grid θ_1..θ_{T/2} of the
sector U = [θ_min, θ_max],

    F_heur = [conj a(θ_1), …, conj a(θ_{T/2}), conj ȧ(θ_1), …, conj ȧ(θ_{T/2})],

each column normalised to unit norm (the library convention radiates aᵀ f, so the beam
towards θ_g is conj a(θ_g); the seed writes a(θ_g)).  With F_b = F_heur diag(√ρ),
‖F_b‖_F² = Σ ρ_t = 1, and the AoD CRB of y = α F_bᵀ a(θ) + n (seed eq. 2) is

    CRB(θ; ρ) = 1 / (2 SNR J(θ; ρ)),   J(θ; ρ) = ‖ḃ‖² - |bᴴḃ|²/‖b‖²,  b = F_bᵀ a, ḃ = F_bᵀ ȧ.

J is the Schur complement of the 2×2 matrix Σ_t ρ_t [ḣ_t, h_t]ᴴ[ḣ_t, h_t] (h_t = f_tᵀ a),
which is linear in ρ, hence J is concave in ρ.  The seed (and Keskin et al.) minimise the
WORST-CASE CRB over the sector; with a fine angle grid θ_1..θ_K of U this is the convex
program

    maximise_{ρ, τ} τ   s.t.  J(θ_k; ρ) ≥ τ (k = 1..K),  Σ_t ρ_t = 1,  ρ ≥ 0,

(the optimum does not depend on the SNR), solved here by SciPy's SLSQP with exact
Jacobians (autograd through the library's :func:`isackit.bounds.crb_single_path`).  The
``"average"`` objective minimises the mean CRB over the grid (also convex: 1/J of a
positive concave J is convex).  The benchmark uses the NOMINAL array (it does not know the
impairments).

ML AoD (seed eq. 11, with arg MAX: the seed prints arg min, but the ML estimate of θ with an
unknown complex gain maximises the normalised matched-filter output):

    θ̂ = argmax_{θ ∈ U} |yᴴ Fᵀ a(θ)|² / ‖Fᵀ a(θ)‖²,

batched: a grid search over U then :func:`isackit.estimators.peaks.refine_parabolic`.

ML position (seed eq. 12): argmin_p Σ_i (θ̂_i + ψ_i - atan2(p - q_i))² / (2σ_i²) with σ_i²
the AoD CRBs; initialised by the weighted linear least-squares intersection of the bearing
lines and refined by Gauss–Newton, batched.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
from scipy.optimize import minimize

from ..._checks import check_last_dims, check_positive_int
from ...bounds import crb_single_path
from ...estimators.peaks import refine_parabolic
from ...geometry.scene import local_angles
from ...impairments.base import ArrayModel

__all__ = [
    "hybrid_codebook",
    "aod_information",
    "optimal_power_allocation",
    "benchmark_precoder",
    "ml_aod_spectrum",
    "ml_aod",
    "ml_position",
    "PowerAllocation",
]


def hybrid_codebook(array: ArrayModel, sector: torch.Tensor, num_transmissions: int) -> torch.Tensor:
    """Directional + derivative beams on T/2 evenly spaced angles of the sector (seed eqs. 8-10).

    Args:
        array: the model the designer uses (the nominal array for the benchmark).
        sector: ``(..., 2)`` = [θ_min, θ_max] radians; the grid includes both end points.
        num_transmissions: T (even).

    Returns:
        ``(..., M, T)`` complex, unit-norm columns (directional first, then derivative).
    """
    check_last_dims(sector, (2,), "sector", "(..., 2)")
    T = check_positive_int(num_transmissions, "num_transmissions")
    if T % 2:
        raise ValueError(f"num_transmissions must be even, got {T}")
    frac = torch.linspace(0.0, 1.0, T // 2, dtype=sector.dtype, device=sector.device)
    grid = sector[..., :1] + (sector[..., 1:] - sector[..., :1]) * frac  # (..., T/2)
    a, (da, _) = array.steering_and_derivatives(grid)
    F = torch.cat([a, da], dim=-1).conj()
    return F / torch.linalg.vector_norm(F, dim=-2, keepdim=True)


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


def benchmark_precoder(array: ArrayModel, sectors: torch.Tensor, num_transmissions: int,
                       num_angles: int = 41, objective: Literal["worst", "average"] = "worst"
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """F_b = F_heur diag(√ρ*) with unit Frobenius norm for each sector.

    Args:
        array: the designer's model (nominal array).
        sectors: ``(S, 2)`` (or ``(2,)``) radians.
    Returns:
        ``(F_b (S, M, T) complex128, ρ (S, T))`` (leading dim dropped for a ``(2,)`` input).
    """
    single = sectors.ndim == 1
    secs = sectors.reshape(-1, 2).to(torch.float64)
    C = hybrid_codebook(array, secs, num_transmissions)
    rhos = torch.stack([optimal_power_allocation(C[s], array, secs[s], num_angles, objective)["rho"]
                        for s in range(secs.shape[0])])
    F = C * torch.sqrt(rhos).unsqueeze(-2).to(C.dtype)
    F = F / torch.linalg.matrix_norm(F, keepdim=True)
    return (F[0], rhos[0]) if single else (F, rhos)


def ml_aod_spectrum(y: torch.Tensor, precoder: torch.Tensor, array: ArrayModel, theta: torch.Tensor
                    ) -> torch.Tensor:
    """P(θ) = |yᴴ Fᵀ a(θ)|² / ‖Fᵀ a(θ)‖² for θ ``(..., G)``, y ``(..., T)``, F ``(..., M, T)``.

    Returns ``(..., G)`` real (the concentrated log-likelihood up to constants).
    """
    a = array.steering(theta).to(precoder.dtype)           # (..., M, G)
    b = precoder.mT @ a                                     # (..., T, G)
    num = (y.to(b.dtype).conj().unsqueeze(-1) * b).sum(-2).abs() ** 2
    return num / (b.abs() ** 2).sum(-2)


def ml_aod(y: torch.Tensor, precoder: torch.Tensor, array: ArrayModel, sector: torch.Tensor,
           grid_size: int = 256, refine_iterations: int = 12) -> torch.Tensor:
    """ML AoD θ̂ = argmax_{θ∈U} P(θ) (seed eq. 11, arg MAX), batched.

    Args:
        y: ``(..., T)`` complex observations.
        precoder: F ``(..., M, T)`` (broadcast against y's batch dims).
        array: the ASSUMED model (nominal array for the benchmark).
        sector: ``(..., 2)`` radians.
        grid_size: points of the coarse grid over the sector (end points included).
        refine_iterations: parabolic refinement steps (bracket shrinks 4× each).

    Returns:
        ``(...)`` estimates in radians, clamped to the sector.

    Low SNR: below the ML threshold (about 10 dB for the seed's 30° position sectors, where
    position RMSE / PEB is ≈ 2 at 5 dB) a few per cent of the estimates land on secondary peaks of
    P(θ) several √CRB away.  They are the ML estimator's own outliers (P(θ̂) ≥ P(θ_true) and equal
    to the sector's fine-grid maximum; ``tests/test_positioning.py``,
    ``benchmarks/positioning_benchmark_low_snr.py``); without them the RMSE meets the CRB.
    """
    check_last_dims(y, (None,), "y", "(..., T)")
    check_last_dims(sector, (2,), "sector", "(..., 2)")
    real = y.real.dtype
    sec = sector.to(real)
    frac = torch.linspace(0.0, 1.0, grid_size, dtype=real, device=y.device)
    grid = sec[..., :1] + (sec[..., 1:] - sec[..., :1]) * frac
    P = ml_aod_spectrum(y, precoder, array, grid)
    idx = P.argmax(-1, keepdim=True)
    theta0 = torch.gather(grid.expand(P.shape), -1, idx).squeeze(-1)
    step = (sec[..., 1] - sec[..., 0]) / (grid_size - 1)
    lo, hi = sec[..., 0], sec[..., 1]

    def func(t):
        t = torch.minimum(torch.maximum(t, lo), hi)
        return ml_aod_spectrum(y, precoder, array, t.unsqueeze(-1)).squeeze(-1)

    # refine_parabolic takes a scalar step: use the largest one and normalise per element
    theta = refine_parabolic(func, theta0, float(step.max()), iterations=refine_iterations)
    return torch.minimum(torch.maximum(theta, lo), hi)


def _regularised(H: torch.Tensor, eps: float) -> torch.Tensor:
    """H + ε·tr(H)·I for ``(..., 2, 2)``, ε ≥ 100 × machine epsilon (guards parallel bearings)."""
    eps = max(eps, 100 * torch.finfo(H.dtype).eps)
    tr = H.diagonal(dim1=-2, dim2=-1).sum(-1)[..., None, None].clamp_min(torch.finfo(H.dtype).tiny)
    return H + eps * tr * torch.eye(H.shape[-1], dtype=H.dtype, device=H.device)


def ml_position(theta_hat: torch.Tensor, variances: torch.Tensor, bs_positions: torch.Tensor,
                orientations: torch.Tensor, iterations: int = 10, box: torch.Tensor | None = None
                ) -> torch.Tensor:
    r"""ML position from AoDs (seed eq. 12): weighted bearing least squares, batched.

    Args:
        theta_hat: ``(..., I)`` AoD estimates (local angles, radians).
        variances: ``(..., I)`` σ_i² (the AoD CRBs).
        bs_positions: ``(I, 2)`` metres; orientations ``(I,)`` radians.
        iterations: Gauss–Newton steps after the linear initialisation.
        box: optional ``(2, 2)`` [[x_min, y_min], [x_max, y_max]] prior region to clamp to.

    Returns:
        ``(..., 2)`` position estimates.
    """
    q = bs_positions.to(theta_hat)
    phi = theta_hat + orientations.to(theta_hat)                # global bearings
    w = 1.0 / variances.to(theta_hat)
    n = torch.stack([torch.sin(phi), -torch.cos(phi)], dim=-1)  # line normals, nᵀ(p - q) = 0
    # linear WLS:  Σ w n nᵀ p = Σ w n nᵀ q
    Amat = (w[..., None, None] * n.unsqueeze(-1) * n.unsqueeze(-2)).sum(-3)
    rhs = (w[..., None] * n * (n * q).sum(-1, keepdim=True)).sum(-2)
    p = torch.linalg.solve(_regularised(Amat, 1e-9), rhs.unsqueeze(-1)).squeeze(-1)
    if box is not None:
        p = torch.minimum(torch.maximum(p, box[0].to(p)), box[1].to(p))
    for _ in range(int(iterations)):
        az, _ = local_angles(p.unsqueeze(-2), q, orientations.to(p))
        r = torch.remainder(theta_hat - az + math.pi, 2 * math.pi) - math.pi  # (..., I)
        d = p.unsqueeze(-2) - q
        G = torch.stack([-d[..., 1], d[..., 0]], dim=-1) / (d ** 2).sum(-1, keepdim=True)  # ∂θ/∂p
        H = (w[..., None, None] * G.unsqueeze(-1) * G.unsqueeze(-2)).sum(-3)
        g = (w[..., None] * G * r.unsqueeze(-1)).sum(-2)
        p = p + torch.linalg.solve(_regularised(H, 1e-12), g.unsqueeze(-1)).squeeze(-1)
        if box is not None:
            p = torch.minimum(torch.maximum(p, box[0].to(p)), box[1].to(p))
    return p
