r"""Average CRLB of known-pilot localisation under random gain-phase errors (seed 003, Sec. V-A).

Model (:mod:`isackit.estimators.statistical`): y_m = ζ_m ũ_m(η) + n_m with η = (φ_k, ϑ_k, f_k)_k
and i.i.d. per-element errors ζ of mean μ and variance v.  The seed's "average CRLB" is the
Cramér–Rao bound of the **moment-matched proper complex Gaussian** model,
y ~ CN(μ ũ(η), C(η)), i.e. a function of the error statistics (not an average of conditional
bounds over draws):

* ``coherence="frame"`` (ζ held over the frame; the seed's model): C block diagonal over the
  elements, C_m = v ũ_m ũ_m^H + σ² I;
* ``coherence="signal"`` (ζ redrawn per signal): C = diag(v|ũ_{m,t}|² + σ²).

The Fisher information is the Slepian–Bangs formula evaluated in structured form
(:func:`~isackit.estimators.statistical.statistical_fim`: O(M T P²), no M T × M T matrix); the
tests check it against the generic :func:`~isackit.bounds.fisher.fisher_gaussian` on the dense
block covariance.  The bound on η is the full inverse (Doppler is estimated jointly, so the
angle bounds include the Doppler coupling).

Which bound is which:

* :func:`average_crlb` — **the seed's bound** (proper, moment-matched; both coherence models).
* :func:`~isackit.bounds.average.fisher_random_gain_phase` — the library's per-signal bound
  that keeps the pseudo-covariance p̃ ũ² (improper, ``coherence="signal"`` only); it is *not*
  the seed's bound and is tighter when p̃ ≠ 0 (the errors are improper for a von Mises phase).
* :func:`genie_crb` — E_ζ[CRB(η | ζ)], the bound of ML with the realised errors known (G-ML):
  F(ζ) = (2/σ²) Re(J_ζ^H J_ζ), J_ζ = ∂(ζ ⊙ ũ)/∂η, inverted per draw and averaged.

Neither Gaussian bound bounds what the MLE achieves under Rice × von Mises errors: the exact
(non-Gaussian) model carries less information (S3 specification, X12); the gap is measured
by the ``pascal`` experiment.

Shapes: η ``(..., K, 3)``; waveforms ``(..., K, T)`` (amplitude × pilot); times ``(T,)``;
bounds ``(..., K, 3)`` variances (rad², rad², Hz²).  float64 recommended; differentiable.
"""

from __future__ import annotations

import torch

from .._checks import check_choice
from .._dtypes import complex_dtype
from ..estimators.statistical import error_moments, model_jacobian, statistical_fim
from ..geometry.arrays import ArrayGeometry
from ..signals.frames import COHERENCES

__all__ = ["fisher_statistical", "average_crlb", "genie_crb"]


def _as_times(times) -> torch.Tensor:
    return times if isinstance(times, torch.Tensor) else torch.tensor(times, dtype=torch.float64)


def fisher_statistical(array: ArrayGeometry, eta: torch.Tensor, waveforms: torch.Tensor, times, noise_var,
                       errors=None, coherence: str = "frame") -> torch.Tensor:
    r"""FIM ``(..., 3K, 3K)`` of the moment-matched proper Gaussian model (seed 003, (25)–(30)).

    Args:
        array: the receive array.  eta: ``(..., K, 3)`` true (φ, ϑ, f).
        waveforms: ``(..., K, T)`` known amplitude × pilot.  times: ``(T,)`` seconds.
        noise_var: σ².  errors: an error law, its
            :class:`~isackit.impairments.distributions.ErrorMoments`, or ``None`` (ideal array).
        coherence: ``"frame"`` or ``"signal"``.

    Returns:
        ``(..., 3K, 3K)``, parameters ordered (φ_1, ϑ_1, f_1, φ_2, …).
    """
    check_choice(coherence, COHERENCES, "coherence")
    m = error_moments(errors)
    u, J = model_jacobian(array, eta, waveforms, _as_times(times))
    return statistical_fim(u, J, m.mean, m.variance, noise_var, coherence)


def _diag(fim: torch.Tensor, K: int) -> torch.Tensor:
    fim = 0.5 * (fim + fim.mT)
    crb = torch.linalg.inv(fim)
    return torch.diagonal(crb, dim1=-2, dim2=-1).reshape(*fim.shape[:-2], K, 3)


def average_crlb(array: ArrayGeometry, eta: torch.Tensor, waveforms: torch.Tensor, times, noise_var,
                 errors=None, coherence: str = "frame") -> torch.Tensor:
    r"""The seed's average CRLB: diag of the inverse of :func:`fisher_statistical`, ``(..., K, 3)``.

    Example:
        >>> import math
        >>> from isackit.geometry import horizontal_ura
        >>> from isackit.impairments.distributions import GainPhaseDistribution, RicianGain, VonMisesPhase
        >>> eta = torch.tensor([[math.radians(20.0), math.radians(30.0), 69.28]], dtype=torch.float64)
        >>> t = (torch.arange(10, dtype=torch.float64) * 101 + 1) / 1e5
        >>> law = GainPhaseDistribution(RicianGain(1.0, 0.1), VonMisesPhase(10.0))
        >>> crb = average_crlb(horizontal_ura(4, 4, wavelength=0.125), eta, torch.ones(1, 10, dtype=torch.complex128),
        ...                    t, 0.01, law)
        >>> [round(x, 3) for x in (crb[0, 0].sqrt().rad2deg().item(), crb[0, 2].sqrt().item())]
        [1.085, 0.303]
    """
    fim = fisher_statistical(array, eta, waveforms, times, noise_var, errors, coherence)
    return _diag(fim, eta.shape[-2])


def genie_crb(array: ArrayGeometry, eta: torch.Tensor, waveforms: torch.Tensor, times, noise_var,
              realised_errors: torch.Tensor, draw_dims: int = 1) -> torch.Tensor:
    r"""E_ζ[CRB(η | ζ)]: the conditional (errors known) bound averaged over error draws.

    Args:
        realised_errors: ``(*D, ..., M, 1)`` (frame) or ``(*D, ..., M, T)`` (signal) draws of ζ
            (the layout of :func:`~isackit.signals.frames.draw_element_errors`); the first
            ``draw_dims`` dims are the draws averaged over.
        Others as :func:`average_crlb`.

    Returns:
        ``(..., K, 3)`` variances.
    """
    u, J = model_jacobian(array, eta, waveforms.to(complex_dtype(eta.dtype)), _as_times(times))
    z = realised_errors.to(u.dtype)
    fim = statistical_fim(u, J, z, 0.0, noise_var, "signal")  # v = 0: white noise, per-entry mean ζ u
    crb = _diag(fim, eta.shape[-2])
    return crb.mean(dim=tuple(range(draw_dims)))
