r"""Configuration of system S0: unsupervised end-to-end array calibration for multi-target ISAC.

Seed 000 (Mateos-Ramos et al., 2026) gives only its abstract; the defaults below are the
facts from the authors' earlier public work listed in ``shared/design/systems.md`` (S0):
64 Tx / 64 Rx antennas (λ/2 ULAs), 256 subcarriers, Δf = 240 kHz, f_c = 60 GHz, QPSK rotated
π/4, thermal noise k·T·B·NF with NF = 8 dB, CP = 0.07/Δf, ranges in [10, 43.75] m, a prior
angular sector of width 10°–20° with mean in [-60°, 60°], up to 5 targets, Swerling-1 RCS
(exponential, mean 1 m²), radar path loss λ²/((4π)³ R⁴), P_fa = 1e-2.

Choices of ours (documented, not in the seed):

* ``tx_power_dbm`` — total transmit power over the band (split evenly over subcarriers);
  30 dBm gives a post-integration SNR of ≈ 25 dB at 43.75 m for the 64 × 256 default.
* ``ue_snr_db`` — SNR at the UE per subcarrier with the ideal max-response comm beam and all
  power on the comm beam: |α|² M_t / σ² (the UE's distance only enters through it).
* impairment statistics (per element, drawn once per device): gain 10^{N(0, σ_g²)/20} (σ_g in dB),
  phase N(0, σ_ψ²), displacement N(0, σ_δ²) along the array axis (y) and broadside (x).
* ISAC precoder: sensing-energy fraction η and comm-beam phase φ (fixed, not learned).
* impairment magnitudes (σ_g = 1 dB, σ_ψ = 30°, σ_δ = 0.1 λ): the seed's text gives none; these
  are typical of an uncalibrated mmWave array (tens of degrees between RF chains, sub-mm
  placement at λ = 5 mm).  At the seed's sizes they cost 2.5 dB of UE SNR with the nominal model
  and make the impairments, not the resolution, dominate the position error: perfect knowledge
  reaches 0.26–0.43 × the uncalibrated RMSE of matched detections (9 devices, 512 scenes each).
  With 16 × 16 (128 subcarriers) or 32 × 32 (128 subcarriers) antennas the same impairments only
  give 0.86 / 0.66–0.83 ×: the errors are then resolution-limited, so the quick profile keeps the
  seed's 64 × 64 arrays.
* ``probes``: the UE link's gradient is estimated from 2·``probes`` probing transmissions per
  scene and step and the received powers the UE reports (``training.probe_gradient``); the
  estimate's variance falls as 1/probes and the Tx model's final jitter with it (measured UE-SNR
  loss vs perfect knowledge after 200 steps on one device: 0.09 dB with 8 pairs, 0.03 dB with 32).
* ``tx_from_sensing``: whether the sensing loss's learned-model channel path also updates the Tx
  model (see ``training.py``; default False: the Tx is learned from the UE feedback).
* ``lr_final_fraction``: cosine decay of the learning rate (1 = constant, the default).

Angles are in degrees here (config edge); the library converts to radians once.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from ..._checks import check_choice, check_positive, check_positive_int
from ...signals.ofdm import OFDMConfig
from ...signals.targets import thermal_noise_power
from ...constants import ROOM_TEMPERATURE, SPEED_OF_LIGHT

__all__ = ["CalibrationConfig", "SENSING_LOSSES", "GRADIENT_MODES", "COMM_GRADIENT_MODES"]

SENSING_LOSSES = ("residual", "max_response", "max_response_adm", "supervised")
GRADIENT_MODES = ("model", "true", "none")
COMM_GRADIENT_MODES = ("perturbation", "model")


@dataclass(frozen=True)
class CalibrationConfig:
    """All parameters of one S0 scenario, receiver and training run (frozen, validated).

    Derived quantities (wavelength, noise variance, grids, …) are properties.
    """

    # -- arrays and waveform -------------------------------------------------------------
    num_tx: int = 64
    num_rx: int = 64
    num_subcarriers: int = 256
    subcarrier_spacing: float = 240e3
    carrier_frequency: float = 60e9
    cp_fraction: float = 0.07
    noise_figure_db: float = 8.0
    temperature: float = ROOM_TEMPERATURE
    tx_power_dbm: float = 30.0
    # -- scene prior ---------------------------------------------------------------------
    range_min: float = 10.0
    range_max: float = 43.75
    sector_width_min_deg: float = 10.0
    sector_width_max_deg: float = 20.0
    sector_mean_max_deg: float = 60.0
    min_targets: int = 1
    max_targets: int = 5
    rcs_mean: float = 1.0
    # -- UE link -------------------------------------------------------------------------
    ue_snr_db: float = 12.0
    ue_angle_max_deg: float = 60.0
    ue_multipath: bool = False
    ue_num_nlos: int = 2
    ue_nlos_power_db: float = -10.0
    # -- impairments (true values drawn once per device) ---------------------------------
    gain_std_db: float = 1.0
    phase_std_deg: float = 30.0
    displacement_std: float = 0.1  # in wavelengths
    # -- ISAC precoder -------------------------------------------------------------------
    eta: float = 0.5
    comm_phase: float = 0.0
    sector_beam_points: int = 8
    # -- receiver ------------------------------------------------------------------------
    angle_grid_min_deg: float = -75.0
    angle_grid_max_deg: float = 75.0
    num_angle_grid: int = 720
    num_range_grid: int = 200
    search_margin_deg: float = 2.0
    omp_iterations: int = 5
    pfa: float = 1e-2
    softmax_window: int = 2
    softmax_temperature: float = 0.05
    threshold_frames: int = 4000
    # -- training ------------------------------------------------------------------------
    sensing_loss: str = "residual"
    gradient: str = "model"
    comm_gradient: str = "perturbation"   # UE link in "model" mode: two-point probe estimate
    probe_size: float = 0.2
    probes: int = 32                      # probe pairs per scene and step (2·probes UE power reports)
    tx_from_sensing: bool = False         # also update the Tx model from the sensing surrogate (model mode)
    loss_weight: float = 0.5  # w in w·L_sens + (1-w)·L_comm
    steps: int = 300
    batch_size: int = 64
    learning_rate: float = 2e-2
    lr_final_fraction: float = 1.0        # cosine decay of the lr to this fraction (1: constant)
    seed: int = 0

    def __post_init__(self):
        for name in ("num_tx", "num_rx", "num_subcarriers", "max_targets", "min_targets",
                     "num_angle_grid", "num_range_grid", "omp_iterations", "steps", "batch_size",
                     "sector_beam_points", "threshold_frames", "probes"):
            check_positive_int(getattr(self, name), name)
        for name in ("subcarrier_spacing", "carrier_frequency", "temperature", "range_min",
                     "range_max", "rcs_mean", "sector_width_min_deg", "sector_width_max_deg",
                     "learning_rate", "softmax_temperature"):
            check_positive(getattr(self, name), name)
        if self.min_targets > self.max_targets:
            raise ValueError(f"min_targets ({self.min_targets}) must be <= max_targets ({self.max_targets})")
        if self.range_min >= self.range_max:
            raise ValueError(f"range_min ({self.range_min}) must be < range_max ({self.range_max})")
        if self.sector_width_min_deg > self.sector_width_max_deg:
            raise ValueError("sector_width_min_deg must be <= sector_width_max_deg")
        if not 0.0 <= self.eta <= 1.0:
            raise ValueError(f"eta must lie in [0, 1], got {self.eta}")
        if not 0.0 <= self.loss_weight <= 1.0:
            raise ValueError(f"loss_weight must lie in [0, 1], got {self.loss_weight}")
        if not 0.0 < self.pfa < 1.0:
            raise ValueError(f"pfa must lie in (0, 1), got {self.pfa}")
        if self.angle_grid_min_deg >= self.angle_grid_max_deg:
            raise ValueError("angle_grid_min_deg must be < angle_grid_max_deg")
        if max(abs(self.angle_grid_min_deg), abs(self.angle_grid_max_deg)) >= 90.0:
            raise ValueError("the angle grid must lie inside (-90°, 90°)")
        for name in ("gain_std_db", "phase_std_deg", "search_margin_deg", "displacement_std", "cp_fraction", "softmax_window"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be non-negative, got {getattr(self, name)}")
        if self.range_max * 2.0 / SPEED_OF_LIGHT >= 1.0 / self.subcarrier_spacing:
            raise ValueError("range_max exceeds the unambiguous range c/(2Δf)")
        check_choice(self.sensing_loss, SENSING_LOSSES, "sensing_loss")
        check_choice(self.gradient, GRADIENT_MODES, "gradient")
        check_choice(self.comm_gradient, COMM_GRADIENT_MODES, "comm_gradient")
        check_positive(self.probe_size, "probe_size")
        if not 0.0 < self.lr_final_fraction <= 1.0:
            raise ValueError(f"lr_final_fraction must lie in (0, 1], got {self.lr_final_fraction}")

    # -- derived ---------------------------------------------------------------------------
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
        return 10 ** ((self.tx_power_dbm - 30.0) / 10) / self.num_subcarriers

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
    def angle_grid_rad(self) -> tuple[float, float]:
        return math.radians(self.angle_grid_min_deg), math.radians(self.angle_grid_max_deg)

    def with_updates(self, **changes: Any) -> CalibrationConfig:
        """A validated copy with some fields changed."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CalibrationConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown calibration config keys: {sorted(unknown)}; expected a subset of {sorted(known)}")
        return cls(**data)
