r"""Calibration losses of system S0 (seed 000), per scene ``(B,)``; the training loop averages.

Sensing, unsupervised (no labels):

* ``max_response`` (i): L = -Σ_k 1[k detected] E_k / ||Y||², E_k = |z_k|² / (||â_r||² ||x||²)
  the energy of the residual captured by OMP step k's (normalised) atom at its peak — the
  maximum of the angle-delay map of each OMP iteration, made scale-free by the frame energy;
* ``max_response_adm`` (i, second reading): L = -Σ_k 1[k detected] E⁰_k / ||Y||², E⁰_k the
  angle–delay map of the OBSERVATION (not of OMP's residual) at each detected peak: the
  maximum responses of the one angle–delay map of the frame, found by OMP; it ignores how the
  targets' responses overlap (no LS re-fit enters the loss);
* ``residual`` (ii): L = ||Y - Σ_{k detected} c_k â_r(θ_k)(x ⊙ b(τ_k))^T||² / ||Y||², the OMP
  residual after the detected targets are removed (LS gains of the picked atoms, built from
  the learned Rx model: differentiable w.r.t. it).

How the two differ.  With the LS re-fit of OMP, adding the unit-norm atom a_k to the fit
lowers the residual by |a_k^H R_{k-1}|² / ||P⊥_{k-1} a_k||² (P⊥_{k-1}: projector orthogonal to
the atoms already picked), while (i) counts only the numerator, the map's peak E_k:

    ||R_K||² = ||Y||² - Σ_k E_k / ||P⊥_{k-1} a_k||²,

so the losses differ only through the coherence of the picked atoms (targets closer than about
a resolution cell); both use the same picks, detections and gradients otherwise.  The second
reading, ``max_response_adm``, takes the peaks of the observation's map instead, E⁰_k =
|a_k^H Y|²: where targets' responses overlap (within a resolution cell, or a strong target's
sidelobe on a weak one), maximising E⁰_k rewards a model whose atom at the pick also collects
the neighbours' energy, i.e. one that is biased — which the residual, with the joint LS
re-fit, does not reward.  Measured at the seed's sizes (quick training, 200 steps × 32
scenes, 6 devices × 512 test scenes; mean ± s.e. over devices of the per-device ratio): RMSE
of matched detections residual / max_response 1.01 ± 0.04 and residual / max_response_adm
0.68 ± 0.05; GOSPA 1.000 ± 0.003 and 0.77 ± 0.06.  The seed reports the residual loss
"significantly better": reproduced with the second reading, not with the first.

Sensing, supervised baseline: the same LS residual with the atoms at the LABELLED target
angles and delays (calibration from targets at known positions).

Communication (no label): L = -|y|² / mean_batch(|y|²), y the samples the UE receives
(mean over subcarriers): maximise the received energy |h^T f|², observed as power.

All are differentiable in the observations (Y, y) and the learned Rx model; the Tx model
enters through the precoder, i.e. through the channel (see ``training.py``).
"""

from __future__ import annotations

import torch

from ...impairments.base import ArrayModel
from ...signals.ofdm import OFDMConfig
from .station import Scenes
from .transceiver import SoftDetections, abs2, residual_energy

__all__ = ["max_response_loss", "max_response_adm_loss", "residual_loss", "supervised_loss", "comm_loss", "isac_loss"]


def _frame_energy(Y: torch.Tensor) -> torch.Tensor:
    return abs2(Y).sum((-2, -1)).clamp_min(1e-30)


def max_response_loss(Y: torch.Tensor, soft: SoftDetections) -> torch.Tensor:
    """-Σ_k (detected) E_k / ||Y||²: ``(B,)``."""
    captured = (soft.energy * soft.detected.to(soft.energy.dtype)).sum(-1)
    return -captured / _frame_energy(Y)


def max_response_adm_loss(Y: torch.Tensor, soft: SoftDetections) -> torch.Tensor:
    """-Σ_k (detected) E⁰_k / ||Y||², E⁰_k the observation's angle–delay map at pick k: ``(B,)``."""
    if soft.response is None:
        raise ValueError("the detections carry no map responses (soft.response is None)")
    captured = (soft.response * soft.detected.to(soft.response.dtype)).sum(-1)
    return -captured / _frame_energy(Y)


def residual_loss(Y: torch.Tensor, soft: SoftDetections) -> torch.Tensor:
    """||OMP residual||² / ||Y||² after the detected targets are removed (LS re-fit): ``(B,)``."""
    return soft.residual / _frame_energy(Y)


def supervised_loss(Y: torch.Tensor, scenes: Scenes, rx: ArrayModel, ofdm: OFDMConfig) -> torch.Tensor:
    """LS residual / ||Y||² with atoms at the labelled target angles and delays: ``(B,)``."""
    return residual_energy(Y, scenes.symbols, rx, scenes.target_angle, scenes.target_delay,
                           scenes.target_mask, ofdm) / _frame_energy(Y)


def comm_loss(y: torch.Tensor) -> torch.Tensor:
    """-(mean_n |y_n|²) / (batch mean of the same, detached): ``(B,)``."""
    power = abs2(y).mean(-1)
    return -power / power.detach().mean().clamp_min(1e-30)


def isac_loss(sensing: torch.Tensor, comm: torch.Tensor, weight: float) -> torch.Tensor:
    """w L_sens + (1 - w) L_comm, averaged over the batch (a scalar)."""
    return (weight * sensing + (1.0 - weight) * comm).mean()
