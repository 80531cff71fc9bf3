r"""Bounds averaged over random impairments.

Two different notions, both used in the seeds:

1. **Expected CRB over impairment draws** (:func:`average_crb_doa`): the impairment is
   random but fixed during an observation and known to the bound, CRB(θ; c) is computed
   with the impaired model of each draw c and averaged, E_c[CRB(θ; c)].  The draws live in
   the leading batch dims of the impairment values (e.g. ``GainPhaseError.sample(...,
   batch_shape=(D,))``), so all draws are computed in one batched call.

2. **CRLB of an average (moment-matched Gaussian) model, per-signal and improper**
   (:func:`fisher_random_gain_phase`): the per-element errors c_{m,l} = g e^{jψ} are redrawn
   for every observation l and unknown, so each entry of the observation
       y_{m,l} = c_{m,l} u_{m,l}(η) + w_{m,l},   w ~ CN(0, σ²),
   is (approximately) Gaussian with the exact first and second moments of c:
       E[y] = μ_c u,  E|y - E y|² = v |u|² + σ²,  E[(y - E y)²] = (E[c²] - μ_c²) u²,
   with μ_c = E[c], v = E|c|² - |μ_c|² (closed forms for Rician gains and von Mises phases
   in :mod:`isackit.impairments.distributions`).  Entries are independent across elements
   and observations, so the Fisher information is a sum over entries of the real
   two-dimensional Gaussian FIM of (Re y, Im y) (the pseudo-covariance is kept, i.e. the
   improper model is exact in its first two moments):
       F_ij = Σ_d [∂m_dᵀ Σ_d⁻¹ ∂m_d + ½ tr(Σ_d⁻¹ ∂_iΣ_d Σ_d⁻¹ ∂_jΣ_d)],
       Σ_d = ½ [[s + Re p, Im p], [Im p, s − Re p]],  s = v|u|² + σ², p = (E c² − μ_c²) u².
   This is **not** seed 003's own bound: the seed's average CRLB is the *proper* Gaussian
   model (no pseudo-covariance) with the errors held over the frame, which is
   :func:`isackit.bounds.statistical.average_crlb` (``coherence="frame"``; its
   ``coherence="signal"`` variant is this model without the pseudo-covariance).  Keeping p
   makes this bound tighter when the errors are improper (a von Mises phase with σ² ≪ 1/κ).

References: Kay, *Estimation Theory*, §3.9 (real Gaussian FIM); seed 003 (average CRLB with
Rician / von Mises gain-phase errors).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .._checks import check_choice, check_positive
from ..impairments.base import ArrayModel
from ..impairments.distributions import ElementErrorDistribution
from .doa import crb_doa_deterministic, crb_doa_stochastic
from .fisher import batched_jacobian

__all__ = ["average_crb_doa", "fisher_random_gain_phase", "fisher_real_gaussian_entries", "gain_phase_moments"]


def average_crb_doa(array_model: ArrayModel, angles, noise_var, *, kind: str = "stochastic",
                    source_cov: torch.Tensor | None = None, num_snapshots: int | None = None,
                    signals: torch.Tensor | None = None, draw_dims: int = 1) -> torch.Tensor:
    r"""E over impairment draws of the DOA CRB computed with each draw's impaired response.

    Args:
        array_model: model whose impairment values carry ``draw_dims`` leading dims of draws.
        angles: ``(K,)`` azimuths (rad), shared by the draws.
        kind: ``"stochastic"`` (needs ``source_cov`` and ``num_snapshots``) or
            ``"deterministic"`` (``signals``, or ``source_cov`` and ``num_snapshots``).

    Returns:
        ``(K, K)`` averaged CRB (rad²).
    """
    check_choice(kind, ("stochastic", "deterministic"), "kind")
    if kind == "stochastic":
        if source_cov is None or num_snapshots is None:
            raise ValueError("kind='stochastic' needs source_cov and num_snapshots")
        crb = crb_doa_stochastic(array_model, angles, source_cov, noise_var, num_snapshots)
    else:
        crb = crb_doa_deterministic(array_model, angles, noise_var, signals=signals, source_cov=source_cov,
                                    num_snapshots=num_snapshots)
    if crb.ndim < 2 + draw_dims:
        raise ValueError(f"expected {draw_dims} leading draw dim(s) in the impairment values, "
                         f"got a CRB of shape {tuple(crb.shape)}")
    return crb.mean(dim=tuple(range(draw_dims)))


def fisher_real_gaussian_entries(mean_fn: Callable[[torch.Tensor], torch.Tensor],
                                 cov_fn: Callable[[torch.Tensor], torch.Tensor], params: torch.Tensor,
                                 event_ndim: int = 1) -> torch.Tensor:
    r"""FIM of independent real Gaussian vectors z_d ~ N(m_d(η), Σ_d(η)), summed over d.

    Args:
        mean_fn: ``(..., P)`` → ``(..., *E, R)`` means (R-dim real vector per entry d ∈ E).
        cov_fn: ``(..., P)`` → ``(..., *E, R, R)`` covariances.
        params: ``(..., P)``.
        event_ndim: len(E), the number of entry dims summed over.

    Returns:
        ``(..., P, P)``.
    """
    S = cov_fn(params)
    Jm = batched_jacobian(mean_fn, params, event_ndim + 1)  # (..., *E, R, P)
    JS = batched_jacobian(cov_fn, params, event_ndim + 2).movedim(-1, -3)  # (..., *E, P, R, R)
    mean_term = Jm.mT @ torch.linalg.solve(S, Jm)  # (..., *E, P, P)
    Q = torch.linalg.solve(S.unsqueeze(-3), JS)  # Σ⁻¹ ∂Σ
    cov_term = 0.5 * torch.einsum("...iab,...jba->...ij", Q, Q)
    F = mean_term + cov_term
    return F.sum(dim=tuple(range(-2 - event_ndim, -2)))


def gain_phase_moments(u: torch.Tensor, distribution: ElementErrorDistribution, noise_var
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Mean ``(..., 2)`` and covariance ``(..., 2, 2)`` of (Re y, Im y) for y = c u + w.

    c ~ ``distribution`` (independent of w ~ CN(0, σ²)), u complex ``(...)``:
    m = (Re μ_c u, Im μ_c u), Σ = ½ [[s + Re p, Im p], [Im p, s − Re p]],
    s = v|u|² + σ², p = (E c² − μ_c²) u².  Differentiable in u.
    """
    check_positive(noise_var, "noise_var")
    real = u.real.dtype
    cplx = u.dtype
    mu = distribution.mean(torch.float64).to(device=u.device, dtype=cplx)
    v = distribution.variance(torch.float64).to(device=u.device, dtype=real)
    pc = (distribution.pseudo_second_moment(torch.float64) - distribution.mean(torch.float64) ** 2).to(
        device=u.device, dtype=cplx)
    s2 = torch.as_tensor(noise_var, dtype=real, device=u.device)
    m = mu * u
    s = v * u.abs() ** 2 + s2
    p = pc * u ** 2
    row0 = torch.stack([s + p.real, p.imag], dim=-1)
    row1 = torch.stack([p.imag, s - p.real], dim=-1)
    return torch.stack([m.real, m.imag], dim=-1), 0.5 * torch.stack([row0, row1], dim=-2)


def fisher_random_gain_phase(signal_fn: Callable[[torch.Tensor], torch.Tensor], params: torch.Tensor,
                             distribution: ElementErrorDistribution, noise_var, event_ndim: int = 2) -> torch.Tensor:
    r"""FIM of y = c ⊙ u(η) + w with i.i.d. random gain-phase errors c redrawn per entry (improper
    moment-matched Gaussian; the seed's own, proper frame-coherent bound is
    :func:`isackit.bounds.statistical.average_crlb`).

    Args:
        signal_fn: η ``(..., P)`` → noise-free IDEAL-array signal u ``(..., *E)`` complex (e.g.
            ``(..., M, L)``: elements × pilots, u = Σ_k a(φ_k, ϑ_k) β_k e^{j2π f_k t_l} √P_k s_kl).
        params: η ``(..., P)`` (angles, Dopplers, Re/Im of gains, …), float64 recommended.
        distribution: law of c (an :class:`~isackit.impairments.distributions.ElementErrorDistribution`,
            e.g. a ``GainPhaseDistribution``).
        noise_var: σ² (a scalar).
        event_ndim: len(E).

    Returns:
        ``(..., P, P)``; take :func:`~.fisher.crb_from_fim` for the bound.
    """
    check_positive(noise_var, "noise_var")
    if not isinstance(distribution, ElementErrorDistribution):
        raise TypeError(f"distribution must be an ElementErrorDistribution, got {type(distribution).__name__}")

    def mean_fn(e):
        return gain_phase_moments(signal_fn(e), distribution, noise_var)[0]

    def cov_fn(e):
        return gain_phase_moments(signal_fn(e), distribution, noise_var)[1]

    return fisher_real_gaussian_entries(mean_fn, cov_fn, params, event_ndim)
