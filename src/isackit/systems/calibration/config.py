r"""Configuration of system S0 (seed 000), one frozen model per concern.

* :class:`ScenarioConfig` — the physical world: arrays and waveform, the scene prior, the UE
  link and the impairment statistics (what the station is, never what it knows);
* :class:`PrecoderConfig` — the ISAC precoder (sensing-energy fraction, comm-beam phase);
* :class:`ReceiverConfig` — the OMP receiver: search grid, iterations, P_fa, relaxation;
* :class:`CalibrationTrainingConfig` — the calibration method and its optimisation;
* :class:`EvaluationConfig` — how a calibration is scored;
* :class:`CalibrationConfig` — one S0 system (scenario, precoder, receiver, training): what a
  saved calibration records.

Seed 000 (Mateos-Ramos et al., 2026) gives only its abstract; the defaults are the facts from
the authors' earlier public work listed in ``shared/design/systems.md`` (S0): 64 Tx / 64 Rx
antennas (λ/2 ULAs), 256 subcarriers, Δf = 240 kHz, f_c = 60 GHz, QPSK rotated π/4, thermal
noise k·T·B·NF with NF = 8 dB, CP = 0.07/Δf, ranges in [10, 43.75] m, a prior angular sector
of width 10°–20° with mean in [−60°, 60°], up to 5 targets, Swerling-1 RCS (exponential, mean
1 m²), radar path loss λ²/((4π)³ R⁴), P_fa = 1e-2.

Choices of ours (documented, not in the seed):

* ``tx_power_dbm`` — total transmit power over the band (split evenly over subcarriers);
  30 dBm gives a post-integration SNR of ≈ 25 dB at 43.75 m for the 64 × 256 default.
* ``ue_snr_db`` — SNR at the UE per subcarrier with the ideal max-response comm beam and all
  power on the comm beam: |α|² M_t / σ² (the UE's distance only enters through it).
* impairment statistics (per element, drawn once per device): gain 10^{N(0, σ_g²)/20} (σ_g in
  dB), phase N(0, σ_ψ²), displacement N(0, (σ_δ λ)²) along the array axis (y) and broadside
  (x).  The seed gives no magnitudes; σ_g = 1 dB, σ_ψ = 30°, σ_δ = 0.1 λ are typical of an
  uncalibrated mmWave array (tens of degrees between RF chains, sub-mm placement at
  λ = 5 mm).  With far fewer antennas than the seed's 64 × 64 the position error becomes
  resolution-limited rather than impairment-limited, which is why the quick profile keeps the
  seed's arrays.
* ``probes``: the UE link's gradient is estimated from 2·``probes`` probing transmissions per
  scene and step and the powers the UE reports
  (:func:`isackit.learning.calibration.probe_gradient`); the estimate's variance falls as
  1/probes, and the learned Tx model's final jitter with it.
* ``tx_from_sensing``: whether the sensing loss's learned-model channel path also updates the
  Tx model (default False: the Tx is learned from the UE feedback; see
  :mod:`isackit.learning.calibration`).
* the learning rate is constant by default; ``scheduler = "cosine"`` with
  ``final_lr_fraction`` f decays it to f·lr at the last step.

Angles are in degrees here (the config edge); the library converts to radians once.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from ..._config import StrictModel
from ...constants import ROOM_TEMPERATURE, SPEED_OF_LIGHT
from ...conversions import db_to_linear, deg_to_rad
from ...learning.calibration import SENSING_LOSSES
from ...learning.training import TrainingConfig
from ...signals.ofdm import OFDMConfig
from ...signals.targets import thermal_noise_power

__all__ = ["ScenarioConfig", "PrecoderConfig", "ReceiverConfig", "CalibrationTrainingConfig", "EvaluationConfig",
           "CalibrationConfig", "SENSING_LOSSES", "GRADIENT_MODES", "COMM_GRADIENT_MODES", "updated"]

GRADIENT_MODES = ("model", "true", "none")
COMM_GRADIENT_MODES = ("perturbation", "model")


def updated(model: StrictModel, **changes: Any) -> StrictModel:
    """A validated copy of a frozen config with some fields changed (nested models may be
    given as models or as dicts of their fields)."""
    data = {k: v for k, v in model if k not in changes}
    return type(model).model_validate({**data, **changes})


class ScenarioConfig(StrictModel):
    """The physical world of one S0 station (derived quantities are properties)."""

    # -- arrays and waveform
    num_tx: int = Field(64, ge=1)
    num_rx: int = Field(64, ge=1)
    num_subcarriers: int = Field(256, ge=1)
    subcarrier_spacing: float = Field(240e3, gt=0)
    carrier_frequency: float = Field(60e9, gt=0)
    cp_fraction: float = Field(0.07, ge=0)
    noise_figure_db: float = 8.0
    temperature: float = Field(ROOM_TEMPERATURE, gt=0)
    tx_power_dbm: float = 30.0
    # -- scene prior
    range_min: float = Field(10.0, gt=0)
    range_max: float = Field(43.75, gt=0)
    sector_width_min_deg: float = Field(10.0, gt=0)
    sector_width_max_deg: float = Field(20.0, gt=0)
    sector_mean_max_deg: float = Field(60.0, ge=0)
    min_targets: int = Field(1, ge=1)
    max_targets: int = Field(5, ge=1)
    rcs_mean: float = Field(1.0, gt=0)
    # -- UE link
    ue_snr_db: float = 12.0
    ue_angle_max_deg: float = Field(60.0, ge=0)
    ue_multipath: bool = False
    ue_num_nlos: int = Field(2, ge=0)
    ue_nlos_power_db: float = -10.0
    # -- impairments (true values drawn once per device)
    gain_std_db: float = Field(1.0, ge=0)
    phase_std_deg: float = Field(30.0, ge=0)
    displacement_std: float = Field(0.1, ge=0)  # in wavelengths

    @model_validator(mode="after")
    def _consistent(self):
        if self.min_targets > self.max_targets:
            raise ValueError(f"min_targets ({self.min_targets}) must be <= max_targets ({self.max_targets})")
        if self.range_min >= self.range_max:
            raise ValueError(f"range_min ({self.range_min}) must be < range_max ({self.range_max})")
        if self.sector_width_min_deg > self.sector_width_max_deg:
            raise ValueError("sector_width_min_deg must be <= sector_width_max_deg")
        if self.range_max * 2.0 / SPEED_OF_LIGHT >= 1.0 / self.subcarrier_spacing:
            raise ValueError("range_max exceeds the unambiguous range c/(2Δf)")
        return self

    @property
    def wavelength(self) -> float:
        """λ = c / f_c in metres."""
        return SPEED_OF_LIGHT / self.carrier_frequency

    @property
    def bandwidth(self) -> float:
        """B = N Δf in Hz."""
        return self.num_subcarriers * self.subcarrier_spacing

    @property
    def noise_variance(self) -> float:
        """Noise variance per resource element σ² = k T NF Δf (W)."""
        return thermal_noise_power(self.subcarrier_spacing, self.noise_figure_db, self.temperature)

    @property
    def power_per_subcarrier(self) -> float:
        """Transmit power per subcarrier P_tx / N (W)."""
        return db_to_linear(self.tx_power_dbm - 30.0) / self.num_subcarriers

    @property
    def cyclic_prefix(self) -> float:
        """CP duration T_cp = cp_fraction / Δf (s)."""
        return self.cp_fraction / self.subcarrier_spacing

    @property
    def ofdm(self) -> OFDMConfig:
        """The OFDM numerology (N, Δf, f_c, CP) as the signals layer's config."""
        return OFDMConfig(num_subcarriers=self.num_subcarriers, subcarrier_spacing=self.subcarrier_spacing,
                          carrier_frequency=self.carrier_frequency, cyclic_prefix=self.cp_fraction)

    @property
    def delay_range(self) -> tuple[float, float]:
        """Round-trip delays (2 R_min / c, 2 R_max / c) in seconds."""
        return 2 * self.range_min / SPEED_OF_LIGHT, 2 * self.range_max / SPEED_OF_LIGHT


class PrecoderConfig(StrictModel):
    """ISAC precoder f ∝ √η f_s + √(1−η) e^{jφ} f_c (:func:`isackit.signals.precoders.isac_precoder`):
    η ``eta``, φ ``comm_phase_deg``, and the sector beam's ``sector_beam_points`` directions."""

    eta: float = Field(0.5, ge=0, le=1)
    comm_phase_deg: float = 0.0
    sector_beam_points: int = Field(8, ge=1)


class ReceiverConfig(StrictModel):
    """The OMP receiver (:func:`isackit.estimators.omp_detector.omp_detect`).

    Attributes:
        angle_grid_min_deg, angle_grid_max_deg, num_angle_grid: the angle grid.
        num_range_grid: points of the delay grid over the scenario's range span.
        search_margin_deg: the search window covers the widest prior sector plus this margin
            on each side (a margin wider than the grid: the whole grid is searched).
        omp_iterations: K, the largest number of detections per frame.
        pfa: per-frame false-alarm probability the threshold is set for.
        softmax_window, softmax_temperature: the relaxation (± window points, temperature T).
        threshold_frames: noise-only frames used to set the threshold.
    """

    angle_grid_min_deg: float = -75.0
    angle_grid_max_deg: float = 75.0
    num_angle_grid: int = Field(720, ge=1)
    num_range_grid: int = Field(200, ge=1)
    search_margin_deg: float = Field(2.0, ge=0)
    omp_iterations: int = Field(5, ge=1)
    pfa: float = Field(1e-2, gt=0, lt=1)
    softmax_window: int = Field(2, ge=0)
    softmax_temperature: float = Field(0.05, gt=0)
    threshold_frames: int = Field(4000, ge=1)

    @model_validator(mode="after")
    def _grid(self):
        if self.angle_grid_min_deg >= self.angle_grid_max_deg:
            raise ValueError("angle_grid_min_deg must be < angle_grid_max_deg")
        if max(abs(self.angle_grid_min_deg), abs(self.angle_grid_max_deg)) >= 90.0:
            raise ValueError("the angle grid must lie inside (-90°, 90°)")
        return self

    @property
    def angle_range(self) -> tuple[float, float]:
        """The angle grid's span in radians."""
        return deg_to_rad(self.angle_grid_min_deg), deg_to_rad(self.angle_grid_max_deg)


class CalibrationTrainingConfig(TrainingConfig):
    """How a calibration method learns (:mod:`isackit.learning.calibration`): the loop's
    settings of :class:`~isackit.learning.training.TrainingConfig` (S0's defaults: 300 Adam
    steps of 64 scenes, lr 2e-2, constant; ``scheduler="cosine"`` with ``final_lr_fraction``
    anneals to the last step) and the method's.

    Attributes:
        sensing_loss: ``residual`` / ``max_response`` / ``max_response_adm`` (unsupervised) or
            ``supervised`` (labelled targets).
        gradient: the channel path of the gradient — ``model`` (the learned model's channel;
            the calibration proper), ``true`` (the simulator's, a baseline) or ``none``.
        comm_gradient: with ``gradient="model"``, the UE link's path: ``perturbation`` (probe
            transmissions and reported powers) or ``model``.
        probe_size, probes: ε and the probe pairs per scene and step.
        tx_from_sensing: the sensing surrogate also updates the Tx model.
        loss_weight: w in w L_sens + (1 − w) L_comm.
        seed: root of the training's random streams (scenes, noise, probes).

    The displacements' parameter group gets lr·λ/(2π) (:func:`~.training.parameter_groups`).
    """

    steps: int = Field(300, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(2e-2, gt=0)
    anneal_to_last_step: bool = True
    sensing_loss: Literal["residual", "max_response", "max_response_adm", "supervised"] = "residual"
    gradient: Literal["model", "true", "none"] = "model"
    comm_gradient: Literal["perturbation", "model"] = "perturbation"
    probe_size: float = Field(0.2, gt=0)
    probes: int = Field(32, ge=1)
    tx_from_sensing: bool = False
    loss_weight: float = Field(0.5, ge=0, le=1)
    seed: int = Field(0, ge=0)


class EvaluationConfig(StrictModel):
    """Scoring (:func:`isackit.systems.calibration.evaluation.evaluate`): GOSPA cut-off c (m,
    also the matching radius) and the scenes simulated per batch."""

    gospa_cutoff: float = Field(5.0, gt=0)
    batch: int = Field(256, ge=1)


class CalibrationConfig(StrictModel):
    """One S0 system: the station's scenario, its precoder, receiver and calibration training."""

    scenario: ScenarioConfig = Field(default_factory=ScenarioConfig)
    precoder: PrecoderConfig = Field(default_factory=PrecoderConfig)
    receiver: ReceiverConfig = Field(default_factory=ReceiverConfig)
    training: CalibrationTrainingConfig = Field(default_factory=CalibrationTrainingConfig)
