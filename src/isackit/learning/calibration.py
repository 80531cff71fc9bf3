r"""Unsupervised end-to-end array calibration (seed 000): losses and channel-gradient surrogates.

A base station transmits an ISAC precoder f(ψ) built from its ASSUMED (learnable) Tx array
model, observes the echoes Y at its sensing array and the UE's received samples y (or only
their power), and runs an OMP receiver on its learnable Rx model
(:func:`isackit.estimators.omp_detector.omp_detect`).  ψ are the learned gain-phase errors
and element displacements.  The losses are per scene ``(B,)``; :func:`isac_loss` averages.

Sensing, unsupervised (no labels):

* ``max_response`` (i): L = −Σ_k 1[k detected] E_k / ‖Y‖², E_k = |z_k|² / (‖â_r‖² ‖x‖²) the
  energy of the residual captured by OMP step k's normalised atom at its peak — the maximum
  of the angle–delay map of each OMP iteration, made scale-free by the frame energy;
* ``max_response_adm`` (i, second reading): L = −Σ_k 1[k detected] E⁰_k / ‖Y‖², E⁰_k the
  angle–delay map of the OBSERVATION (not of OMP's residual) at each detected peak;
* ``residual`` (ii): L = ‖Y − Σ_{k detected} c_k â_r(θ_k)(x ⊙ b(τ_k))^T‖² / ‖Y‖², the OMP
  residual after the detected targets are removed (LS gains of the picked atoms, built from
  the learned Rx model).

How they differ.  With OMP's LS re-fit, adding the unit-norm atom a_k lowers the residual by
|a_k^H R_{k−1}|² / ‖P⊥_{k−1} a_k‖² (P⊥_{k−1}: the projector orthogonal to the atoms already
picked), while (i) counts only the numerator, the map's peak E_k:

    ‖R_K‖² = ‖Y‖² − Σ_k E_k / ‖P⊥_{k−1} a_k‖²,

so (i) and (ii) differ only through the coherence of the picked atoms (targets closer than
about a resolution cell).  The second reading takes the peaks of the observation's map,
E⁰_k = |a_k^H Y|²: where targets' responses overlap (within a resolution cell, or a strong
target's sidelobe on a weak one), maximising E⁰_k rewards a model whose atom at the pick also
collects its neighbours' energy — a biased model — which the residual, with the joint LS
re-fit, does not reward.

Sensing, supervised baseline: the same LS residual with the atoms at the LABELLED target
angles and delays (calibration from targets at known positions).

Communication (no label): L = −|y|² / mean_batch(|y|²) (mean over subcarriers): maximise the
received energy |h^T f|², observed as power.

Channel-gradient approximation.  L(Y, y; ψ) depends on ψ through the receiver (directly,
autograd) and through f(ψ) → physical channel → (Y, y), whose Jacobian ∂Y/∂f is unknown.  With
g_Y = ∂L/∂Y* (PyTorch's complex gradient, dL = Re Σ conj(g_Y) dY) the second path is replaced by
the gradient of the surrogate

    S(f) = Re Σ conj(g_Y) Ŷ(f) + Re Σ conj(g_y) ŷ(f)         (g_Y, g_y held constant),

Ŷ, ŷ linear models of the channel in f:

* :func:`model_channel_surrogate` — the learned model's prediction built from the receiver's
  own detections, Ŷ(f) = Σ_k ĉ_k â_r(θ̂_k) (â_t(θ̂_k)^T f / â_t(θ̂_k)^T f_0) (x ⊙ b(τ̂_k))^T with
  the LS gains ĉ_k measured with the transmitted f_0, and ŷ_n(f) = x_n ĥ (â_t(θ_UE)^T f /
  â_t(θ_UE)^T f_0) with ĥ = mean_n y_n conj(x_n).  The measured quantities are constants; the
  numerator â_t(θ)^T f is differentiated in full — through f AND through the learned Tx
  response — so the gradient is that of the learned model's prediction of its observation.
  (Holding â_t fixed, i.e. replacing only ∂Y/∂f, lets the Tx model climb its own objective,
  e.g. bend the sector beam towards the UE.)
* :func:`probe_gradient` / :func:`probe_surrogate` — for the UE link with power-only feedback
  the learned model's Jacobian carries NO information on the Tx errors: for the comm beam
  f = conj(â_t(θ_UE))/‖â_t‖ and ĥ ∝ â_t(θ_UE), ĥ^T f = ‖â_t‖ whatever the learned phases.  The
  station therefore estimates the link's gradient from probing transmissions f ± ε u_i and the
  powers the UE reports (two-point / SPSA-type estimate), never from the channel itself.
* the true channel's Jacobian (a simulation-only baseline) is autograd through the
  simulator; it needs no helper here.

The per-target LS gain absorbs the Tx factor â_t(θ_k)^T f, so the sensing observation carries
almost no information on the Tx errors: the sensing surrogate is best left out of the Tx
update (the system's choice), where an adaptive optimiser would amplify its small,
uninformative gradient into a drift of the Tx gains.

Shapes: batch-first; Y ``(B, M_r, N)``, y ``(B, N)``, f ``(B, M_t)``, x ``(B, N)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .._dtypes import abs2
from ..estimators.omp_detector import Detections, ls_fit, residual_energy
from ..impairments.base import ArrayModel
from ..signals.ofdm import OFDMConfig
from ..signals.random import complex_normal

__all__ = ["frame_energy", "max_response_loss", "max_response_adm_loss", "residual_loss", "supervised_loss",
           "comm_loss", "isac_loss", "model_channel_surrogate", "probe_gradient", "probe_surrogate",
           "SENSING_LOSSES"]

#: the sensing losses by name (``supervised`` needs labels).
SENSING_LOSSES = ("residual", "max_response", "max_response_adm", "supervised")


def frame_energy(Y: torch.Tensor) -> torch.Tensor:
    """‖Y‖² per frame ``(B,)`` (floored at 1e-30)."""
    return abs2(Y).sum((-2, -1)).clamp_min(1e-30)


def max_response_loss(Y: torch.Tensor, det: Detections) -> torch.Tensor:
    """−Σ_k (detected) E_k / ‖Y‖², E_k the peak of OMP step k's residual map: ``(B,)``."""
    captured = (det.energy * det.detected.to(det.energy.dtype)).sum(-1)
    return -captured / frame_energy(Y)


def max_response_adm_loss(Y: torch.Tensor, det: Detections) -> torch.Tensor:
    """−Σ_k (detected) E⁰_k / ‖Y‖², E⁰_k the observation's angle–delay map at pick k: ``(B,)``."""
    if det.response is None:
        raise ValueError("the detections carry no map responses (det.response is None)")
    captured = (det.response * det.detected.to(det.response.dtype)).sum(-1)
    return -captured / frame_energy(Y)


def residual_loss(Y: torch.Tensor, det: Detections) -> torch.Tensor:
    """‖OMP residual‖² / ‖Y‖² after the detected targets are removed (LS re-fit): ``(B,)``."""
    return det.residual / frame_energy(Y)


def supervised_loss(Y: torch.Tensor, x: torch.Tensor, rx: ArrayModel, angle: torch.Tensor, delay: torch.Tensor,
                    mask: torch.Tensor, ofdm: OFDMConfig) -> torch.Tensor:
    """LS residual / ‖Y‖² with atoms at the labelled target angles and delays ``(B, K)``: ``(B,)``."""
    return residual_energy(Y, x, rx, angle, delay, mask, ofdm) / frame_energy(Y)


def comm_loss(y: torch.Tensor) -> torch.Tensor:
    """−(mean_n |y_n|²) / (batch mean of the same, detached): ``(B,)``."""
    power = abs2(y).mean(-1)
    return -power / power.detach().mean().clamp_min(1e-30)


def isac_loss(sensing: torch.Tensor, comm: torch.Tensor, weight: float) -> torch.Tensor:
    """w L_sens + (1 − w) L_comm, averaged over the batch (a scalar)."""
    return (weight * sensing + (1.0 - weight) * comm).mean()


def model_channel_surrogate(tx: ArrayModel, rx: ArrayModel, f: torch.Tensor, x: torch.Tensor,
                            ue_angle: torch.Tensor, Y: torch.Tensor, y: torch.Tensor, gY: torch.Tensor,
                            gy: torch.Tensor, det: Detections, ofdm: OFDMConfig, comm: bool = True) -> torch.Tensor:
    r"""S = Re Σ conj(g_Y) Ŷ(f) (+ Re Σ conj(g_y) ŷ(f) with ``comm``): the learned model's channel.

    Args:
        tx, rx: the learned Tx / Rx array models (ψ).
        f: ``(B, M_t)`` the precoders, a function of ψ (f_0 = f.detach() was transmitted).
        x: ``(B, N)`` symbols; ue_angle: ``(B,)`` the UE direction (rad).
        Y, y: the observations made with f_0; gY, gy: ∂L/∂Y*, ∂L/∂y* (constants).
        det: the receiver's detections on Y (angles, delays and mask are used, detached).
        ofdm: the numerology of the delay atoms.

    Returns:
        A real scalar whose gradient w.r.t. ψ is the learned model's channel path (module
        docstring); its value is meaningless.
    """
    f0 = f.detach()
    with torch.no_grad():
        ang, dly, mask = det.angle.detach(), det.delay.detach(), det.detected
        c, _, a, d = ls_fit(Y, x, rx, ang, dly, mask, ofdm)
        At = tx.steering(ang)                                                      # (B, M_t, K)
        t0 = (At.transpose(-1, -2) @ f0.unsqueeze(-1)).squeeze(-1)                 # (B, K)
        safe = t0.abs() > 1e-12 * t0.abs().amax().clamp_min(1e-30)
        scale = torch.where(safe, c / torch.where(safe, t0, torch.ones_like(t0)), torch.zeros_like(c))
        q = scale * torch.einsum("bmn,bmk,bkn->bk", gY.conj(), a, d)              # (B, K)
        a_ue = tx.steering(ue_angle.unsqueeze(-1))[..., 0]                         # (B, M_t)
        u0 = (a_ue * f0).sum(-1)
        h_eff = (y * x.conj()).mean(-1) / x.abs().pow(2).mean(-1)
        qc = (gy.conj() * x).sum(-1) * h_eff / u0                                  # (B,)
    # the prediction, differentiated through f and through the learned Tx responses
    At = tx.steering(ang)
    a_ue = tx.steering(ue_angle.unsqueeze(-1))[..., 0]
    s = (q * (At.transpose(-1, -2) @ f.unsqueeze(-1)).squeeze(-1)).sum(-1).real.sum()
    return s + (qc * (a_ue * f).sum(-1)).real.sum() if comm else s


def probe_gradient(receive: Callable[[torch.Tensor], torch.Tensor], f: torch.Tensor,
                   reference_power: torch.Tensor | float, size: float, generator: torch.Generator,
                   probes: int = 1) -> torch.Tensor:
    r"""Two-point probe estimate of the comm loss's gradient through an unknown channel.

    Per scene the station transmits f ± ε u, u ~ CN(0, I), and the UE reports its received
    power P± = mean_n |y±_n|².  With ℓ(f) = −P(f)/P_ref (the comm loss),
    D = (ℓ(f + εu) − ℓ(f − εu)) / 2ε is the directional derivative Re(conj(g)^T u) (exact for
    the quadratic P, up to the measurement noise) and E[D u] = g/2 for circular u, so ĝ = 2 D u
    is an unbiased estimate of g = ∂ℓ/∂f* (PyTorch's complex-gradient convention).  With P
    probe pairs per scene (independent u_1..u_P) the estimate is the mean of the P one-pair
    estimates: its variance falls as 1/P (one pair has a relative variance of about M_t, the
    number of complex directions to explore).

    Args:
        receive: ``receive(F)`` → the UE's received samples ``(P·B, N)`` for probe precoders
            F ``(P·B, M_t)``, probe p of scene b in row p·B + b (the system draws the UE's
            receiver noise inside).  Called twice: the + probes, then the − probes.
        f: ``(B, M_t)`` precoders (detached inside); reference_power: P_ref.
        size: ε; generator: draws u; probes: P.

    Returns:
        ĝ ``(B, M_t)`` (no gradient).
    """
    if isinstance(probes, bool) or int(probes) != probes or int(probes) < 1:
        raise ValueError(f"probes must be a positive integer, got {probes!r}")
    P = int(probes)
    with torch.no_grad():
        f0 = f.detach()
        B = f0.shape[0]
        u = complex_normal((P * B, f0.shape[-1]), generator, f0.dtype, f0.device)   # (P·B, M)
        fr = f0.repeat(P, 1)
        p_plus = abs2(receive(fr + size * u)).mean(-1)
        p_minus = abs2(receive(fr - size * u)).mean(-1)
        D = -(p_plus - p_minus) / (2 * size * reference_power)
        return (2 * D.unsqueeze(-1) * u).reshape(P, B, -1).mean(0)


def probe_surrogate(receive: Callable[[torch.Tensor], torch.Tensor], f: torch.Tensor, y: torch.Tensor,
                    weight: float, size: float, generator: torch.Generator, probes: int = 1) -> torch.Tensor:
    """S = Re Σ conj(ĝ)^T f · (1 − w)/B with ĝ from :func:`probe_gradient` and P_ref = mean |y|²:
    the UE link's surrogate of the ISAC loss w L_sens + (1 − w) L_comm (a real scalar)."""
    p_ref = abs2(y).mean(-1).mean().clamp_min(1e-30)
    g_hat = probe_gradient(receive, f, p_ref, size, generator, probes) * ((1.0 - weight) / f.shape[0])
    return (g_hat.conj() * f).sum().real
