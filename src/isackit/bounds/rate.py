r"""Average sum data rate of MRC with rebuilt channels under random gain-phase errors and
Gaussian angle-estimation errors (seed 003, Sec. V-B/V-C, (31)–(48), Appendix B).

Per user k (:func:`isackit.signals.mrc.mrc_sinr`): γ_k = X_k / Y_k with
X_k = G_k |c_k^T ζ|², Y_k = Σ_{j≠k} G_j |c_j^T ζ|² + M, c_{j,m} = a_m*(θ̂_k) a_m(θ_j) (θ = (φ, ϑ)),
ζ the i.i.d. per-element errors (:class:`~isackit.impairments.distributions.ErrorMoments` μ, v,
p̃, t₃, t₄) and θ̂_k ~ N(θ_k + b_k, diag(s_φ², s_ϑ²)) independent of ζ (the seed: the estimates of
all its algorithms are Gaussian and unbiased; a bias b is accepted for MUSIC).  The Doppler
estimate cancels; the rate is R_k = log2(1 + γ_k), SDR = Σ_k E[R_k].

Moments (:func:`mrc_rate_moments`).  Given θ̂_k, exactly (ours; they replace the seed's
four-index sums (36)–(47)), for weight vectors u, w with S_u = μ Σ u_m, A = Σ|u_m|²,
B = Σ|w_m|², D = Σ|u_m|²|w_m|², P_c = Σ u_m w_m*, P_p = Σ u_m w_m:

    E|u^Tζ|² = |S_u|² + v A,
    E[|u^Tζ|²|w^Tζ|²] = |S_u|²|S_w|² + v(|S_u|² B + |S_w|² A) + 2Re(S_u* S_w v P_c + S_u* S_w* p̃ P_p)
                       + 2Re(S_u* t₃ Σ u_m|w_m|²) + 2Re(S_w* t₃ Σ w_m|u_m|²)
                       + t₄ D + v²(AB − D) + v²(|P_c|² − D) + |p̃|²(|P_p|² − D),

which give E X, E X², E Y, E Y², E XY; they are then averaged over θ̂_k by a tensor
Gauss–Hermite rule (``nodes`` × ``nodes``, probabilists' Hermite, exact for polynomials of
degree < 2·nodes in the standardised errors).

Approximations of E[log2(1 + X/Y)] (:func:`average_rate`):

* first order (33), [27]: log2(1 + E X / E Y);
* second order (34)–(35): with Z = X + Y,
  log2 E Z − Var Z/(2 ln2 (E Z)²) − log2 E Y + Var Y/(2 ln2 (E Y)²) — the bivariate second-order
  Taylor expansion of log2(1 + X/Y) about the means.

:func:`sum_rate_monte_carlo` is the reference (draws of ζ and θ̂).  Everything is batched over
leading dims and differentiable in the angle errors' standard deviations and biases.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .._checks import check_positive_int
from .._dtypes import complex_dtype
from ..estimators.statistical import error_moments
from ..geometry.arrays import ArrayGeometry, steering_matrix
from ..impairments.distributions import ElementErrorDistribution
from ..signals.mrc import mrc_sinr, sum_rate

__all__ = ["RateMoments", "pair_moments", "mrc_rate_moments", "average_rate", "average_sum_rate",
           "sum_rate_monte_carlo"]


@dataclass(frozen=True)
class RateMoments:
    """E X, E X², E Y, E Y², E XY per user, each ``(..., K)``."""

    ex: torch.Tensor
    ex2: torch.Tensor
    ey: torch.Tensor
    ey2: torch.Tensor
    exy: torch.Tensor


def pair_moments(c: torch.Tensor, moments) -> tuple[torch.Tensor, torch.Tensor]:
    r"""e_j = E|c_j^T ζ|² ``(..., J)`` and P_{jj'} = E[|c_j^T ζ|² |c_{j'}^T ζ|²] ``(..., J, J)``.

    Args:
        c: ``(..., J, M)`` complex weight vectors.
        moments: :class:`~isackit.impairments.distributions.ErrorMoments` (or a law).
    """
    m = error_moments(moments)
    cdt = c.dtype
    mu = torch.tensor(m.mean, dtype=cdt, device=c.device)
    pt = torch.tensor(m.pseudo_variance, dtype=cdt, device=c.device)
    t3 = torch.tensor(m.third, dtype=cdt, device=c.device)
    v, t4 = m.variance, m.fourth
    a2 = c.real.square() + c.imag.square()  # (..., J, M)
    S = mu * c.sum(-1)  # (..., J)
    S2 = S.real.square() + S.imag.square()
    A = a2.sum(-1)
    e = S2 + v * A
    D = a2 @ a2.mT  # (..., J, J) real
    Pc = c @ c.mH  # Σ c_j c_j'*
    Pp = c @ c.mT
    T = c @ a2.to(cdt).mT  # T_{jj'} = Σ c_j |c_j'|²
    Sj, Sk = S[..., :, None], S[..., None, :]
    P = (S2[..., :, None] * S2[..., None, :]
         + v * (S2[..., :, None] * A[..., None, :] + S2[..., None, :] * A[..., :, None])
         + 2 * (Sj.conj() * Sk * v * Pc + Sj.conj() * Sk.conj() * pt * Pp).real
         + 2 * (Sj.conj() * t3 * T).real + 2 * (Sk.conj() * t3 * T.mT).real
         + t4 * D + v * v * (A[..., :, None] * A[..., None, :] - D) + v * v * (Pc.real.square() + Pc.imag.square() - D)
         + (pt.real.square() + pt.imag.square()) * (Pp.real.square() + Pp.imag.square() - D))
    return e, P


def _hermite(nodes: int, dtype, device):
    x, w = np.polynomial.hermite_e.hermegauss(check_positive_int(nodes, "nodes"))
    return torch.tensor(x, dtype=dtype, device=device), torch.tensor(w / math.sqrt(2 * math.pi), dtype=dtype,
                                                                       device=device)


def mrc_rate_moments(array: ArrayGeometry, angles: torch.Tensor, snr: torch.Tensor, errors, angle_std: torch.Tensor,
                     angle_bias: torch.Tensor | None = None, nodes: int = 12) -> RateMoments:
    r"""E X, E X², E Y, E Y², E XY of every user's MRC SINR, averaged over ζ and θ̂ (see module doc).

    Args:
        array: the receive array.
        angles: ``(..., K, 2)`` true (φ, ϑ) radians.
        snr: ``(..., K)`` G_k = ρ_k SNR (d_ref/d_k)² (linear).
        errors: error law, its ``ErrorMoments``, or ``None`` (ideal array).
        angle_std: ``(..., K, 2)`` standard deviations (s_φ, s_ϑ) of the estimates (radians).
        angle_bias: ``(..., K, 2)`` mean errors (default 0).
        nodes: Gauss–Hermite nodes per angle.

    Returns:
        :class:`RateMoments`, each ``(..., K)``.
    """
    dt = angles.dtype
    cdt = complex_dtype(dt)
    K = angles.shape[-2]
    x, w = _hermite(nodes, dt, angles.device)
    Q = x.numel()
    bias = torch.zeros_like(angles) if angle_bias is None else angle_bias.to(dt)
    # θ̂ nodes (..., K, Q, Q, 2) → (..., K, Q², 2)
    xa = x[:, None].expand(Q, Q)
    xe = x[None, :].expand(Q, Q)
    std = angle_std.to(dt)
    phi = (angles[..., 0] + bias[..., 0])[..., None, None] + std[..., 0, None, None] * xa
    th = (angles[..., 1] + bias[..., 1])[..., None, None] + std[..., 1, None, None] * xe
    wq = (w[:, None] * w[None, :]).reshape(-1)  # (Q²,)
    pos = array.positions_like(angles)
    Ahat = steering_matrix(pos, phi.flatten(-2), th.flatten(-2), array.wavelength).to(cdt)  # (..., K, M, Q²)
    Atrue = steering_matrix(pos, angles[..., 0], angles[..., 1], array.wavelength).to(cdt)  # (..., M, K)
    # c[..., k, q, j, m] = conj(â_m(θ̂_{k,q})) a_m(θ_j)
    c = Ahat.conj().movedim(-1, -2)[..., :, :, None, :] * Atrue.mT[..., None, None, :, :]
    e, P = pair_moments(c, errors)  # (..., K, Q², K), (..., K, Q², K, K)
    G = snr.to(dt)
    M = array.num_elements
    own = torch.eye(K, dtype=dt, device=angles.device)  # own[k, j] = [j = k]
    other = 1 - own
    e_own = (e * own[:, None, :]).sum(-1)  # e[..., k, q, k]
    P_kk = (P * (own[:, None, :, None] * own[:, None, None, :])).sum((-1, -2))  # P[..., k, q, k, k]
    P_kj = (P * own[:, None, :, None]).sum(-2)  # P[..., k, q, k, j]
    Gk = G[..., :, None]  # (..., K, 1)
    Gj = G[..., None, None, :] * other[:, None, :]  # (..., K, 1, K): G_j for j ≠ k
    ex = Gk * e_own
    ex2 = Gk * Gk * P_kk
    sy = (Gj * e).sum(-1)  # Σ_{j≠k} G_j e_j
    ey = M + sy
    ey2 = M * M + 2 * M * sy + (Gj[..., :, None] * Gj[..., None, :] * P).sum((-1, -2))
    exy = M * ex + (G[..., :, None, None] * Gj * P_kj).sum(-1)
    avg = [(z * wq).sum(-1) for z in (ex, ex2, ey, ey2, exy)]
    return RateMoments(*avg)


def average_rate(moments: RateMoments, order: int = 2) -> torch.Tensor:
    r"""Approximate E[log2(1 + X/Y)] per user, ``(..., K)``: ``order=1`` (33) or ``order=2`` (34)–(35)."""
    if order == 1:
        return torch.log2(1 + moments.ex / moments.ey)
    if order != 2:
        raise ValueError(f"order must be 1 or 2, got {order!r}")
    ez = moments.ex + moments.ey
    var_z = moments.ex2 + 2 * moments.exy + moments.ey2 - ez * ez
    var_y = moments.ey2 - moments.ey * moments.ey
    ln2 = math.log(2.0)
    return torch.log2(ez) - var_z / (2 * ln2 * ez * ez) - torch.log2(moments.ey) + var_y / (2 * ln2 * moments.ey ** 2)


def average_sum_rate(array: ArrayGeometry, angles: torch.Tensor, snr: torch.Tensor, errors, angle_std: torch.Tensor,
                     angle_bias: torch.Tensor | None = None, order: int = 2, nodes: int = 12) -> torch.Tensor:
    r"""Analytic average SDR Σ_k R̄_k (bits/s/Hz), ``(...)``, of the given ``order`` (1 or 2)."""
    mom = mrc_rate_moments(array, angles, snr, errors, angle_std, angle_bias, nodes)
    return average_rate(mom, order).sum(-1)


def sum_rate_monte_carlo(array: ArrayGeometry, angles: torch.Tensor, snr: torch.Tensor,
                         law: ElementErrorDistribution | None, angle_std: torch.Tensor, num_draws: int,
                         generator: torch.Generator, angle_bias: torch.Tensor | None = None) -> torch.Tensor:
    r"""Monte Carlo SDR E[Σ_k log2(1 + γ_k)] over ζ ~ ``law`` and θ̂ ~ N(θ + b, diag s²), ``(...)``.

    The draws run along a leading batch dim of size ``num_draws`` (one batched evaluation)."""
    n = check_positive_int(num_draws, "num_draws")
    dt = angles.dtype
    cdt = complex_dtype(dt)
    M = array.num_elements
    batch = angles.shape[:-2]
    bias = torch.zeros_like(angles) if angle_bias is None else angle_bias.to(dt)
    noise = torch.randn((n, *angles.shape), generator=generator, dtype=dt, device=angles.device)
    est = angles + bias + angle_std.to(dt) * noise  # (n, ..., K, 2)
    if law is None:
        zeta = torch.ones((n, *batch, M), dtype=cdt, device=angles.device)
    else:
        zeta = law.sample(M, (n, *batch), generator, dt, angles.device).to(cdt)
    Ahat = array.steering(est[..., 0], est[..., 1]).to(cdt)  # (n, ..., M, K)
    H = zeta[..., :, None] * array.steering(angles[..., 0], angles[..., 1]).to(cdt)
    return sum_rate(mrc_sinr(Ahat, H, snr.to(dt))).mean(0)
