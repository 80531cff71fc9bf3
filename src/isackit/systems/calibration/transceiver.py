r"""The S0 station's signal processing on its ASSUMED (learnable) array models (seed 000).

Transmitter: the ISAC precoder of :func:`isackit.signals.precoders.isac_precoder` — a
sector beam over the scene's prior sector and a max-response beam towards the (known) UE
direction, built from the LEARNED Tx model â_t, so f is differentiable w.r.t. its gains,
phases and element positions.

Receiver: OMP detection on the angle–delay grid with the LEARNED Rx model
(:func:`isackit.estimators.omp_detector.omp_detect`).  The search covers, per scene, the W
angle-grid points around its prior sector (the widest sector plus a margin on each side) ×
the delay grid of [R_min, R_max].  The statistic is normalised by the Rx atom only: the Tx
factor â_t(θ)^T f of an atom is absorbed by its LS gain.  (Weighting the statistic by the
learned beam pattern |â_t(θ)^T f|², i.e. using the un-normalised atom, biases the angle
estimates towards the beam's maximum.)  The learned Tx model acts on sensing through the
transmitted f, i.e. through the channel.  The threshold is set for a per-frame false-alarm
probability on noise-only frames (:func:`calibrate_threshold`).
"""

from __future__ import annotations

import torch
from torch import nn

from ...conversions import deg_to_rad
from ...estimators.omp_detector import AngleDelayGrid, Detections, omp_detect
from ...impairments.base import ArrayModel
from ...metrics import threshold_for_false_alarm
from ...signals.precoders import isac_precoder
from ...signals.random import awgn
from .config import CalibrationConfig
from .station import Scenes

__all__ = ["receiver_grid", "Transceiver", "calibrate_threshold"]


def receiver_grid(config: CalibrationConfig, dtype: torch.dtype = torch.float32, device=None) -> AngleDelayGrid:
    """The receiver's search grid: the configured angle grid × ``num_range_grid`` delays over
    the scenario's range span; the window spans the widest prior sector + 2 margins."""
    sc, rx = config.scenario, config.receiver
    span = deg_to_rad(sc.sector_width_max_deg + 2 * rx.search_margin_deg)
    return AngleDelayGrid.linear(rx.angle_range, rx.num_angle_grid, sc.delay_range, rx.num_range_grid, sc.ofdm,
                                 window_span=span, dtype=dtype, device=device)


class Transceiver(nn.Module):
    """The station's precoder and receiver on its ASSUMED array models.

    Holds the learnable (or fixed) Tx/Rx :class:`ArrayModel`s, the search grid and the
    detection threshold (a buffer, set by :func:`calibrate_threshold`).  ``state_dict()``
    holds everything a saved calibration needs besides its config.

    Args:
        config: the system (scenario, precoder, receiver; training is recorded, not used).
        tx, rx: the assumed array models.
    """

    def __init__(self, config: CalibrationConfig, tx: ArrayModel, rx: ArrayModel):
        super().__init__()
        self.config = config
        self.tx, self.rx = tx, rx
        self._grid = receiver_grid(config, dtype=rx.geometry.positions.dtype)
        self.register_buffer("threshold", torch.tensor(float("inf"), dtype=torch.float64))

    @property
    def grid(self) -> AngleDelayGrid:
        """The search grid, on the device of the model's parameters/buffers."""
        dev = self.threshold.device
        if self._grid.angles.device != dev:
            self._grid = self._grid.to(dev)
        return self._grid

    def precoder(self, scenes: Scenes) -> torch.Tensor:
        """ISAC precoder ``(B, M_t)`` from the learned Tx model (differentiable)."""
        p = self.config.precoder
        return isac_precoder(self.tx, scenes.sector_center, scenes.sector_width, scenes.ue_angle, p.eta,
                             deg_to_rad(p.comm_phase_deg), p.sector_beam_points)

    def detect(self, Y: torch.Tensor, scenes: Scenes) -> Detections:
        """OMP detection with the calibrated threshold on frames Y ``(B, M_r, N)`` over each
        scene's sector window, with soft (relaxed, differentiable) estimates."""
        rx = self.config.receiver
        grid = self.grid
        return omp_detect(Y, scenes.symbols, self.rx, grid, grid.window_start(scenes.sector_center),
                          rx.omp_iterations, float(self.threshold), self.config.scenario.noise_variance,
                          rx.softmax_window, rx.softmax_temperature)

    def noise_statistic(self, noise: torch.Tensor, scenes: Scenes) -> torch.Tensor:
        """The first OMP step's peak statistic max_{θ, τ} s(θ, τ) ``(B,)`` of noise-only frames
        ``(B, M_r, N)`` searched over each scene's window (H0: what the threshold is set on)."""
        grid = self.grid
        return omp_detect(noise, scenes.symbols, self.rx, grid, grid.window_start(scenes.sector_center), 1, None,
                          self.config.scenario.noise_variance).statistic[:, 0]


@torch.no_grad()
def calibrate_threshold(transceiver: Transceiver, scenes: Scenes, generator: torch.Generator,
                        pfa: float | None = None) -> float:
    r"""Set the detection threshold for a per-frame false-alarm probability by simulation.

    Noise-only frames W ~ CN(0, σ²) (σ² known to the receiver) are searched over each scene's
    sector window; the threshold is the empirical (1 − P_fa) quantile of the first OMP step's
    peak statistic (:meth:`Transceiver.noise_statistic`).  Stored in ``transceiver.threshold``
    and returned.

    Args:
        scenes: supplies the sectors and symbols (their targets are not used).
        pfa: default: the receiver's configured P_fa.
    """
    cfg = transceiver.config
    p = cfg.receiver.pfa if pfa is None else pfa
    B, N = scenes.symbols.shape
    W = awgn((B, cfg.scenario.num_rx, N), cfg.scenario.noise_variance, generator, scenes.symbols.dtype,
             scenes.symbols.device)
    thr = float(threshold_for_false_alarm(transceiver.noise_statistic(W, scenes).double(), p))
    transceiver.threshold.fill_(thr)
    return thr
