r"""Configuration of system S3: PASCAL — pilot-aided simultaneous communication and localisation
of UAVs under random gain-phase errors (seed 003).

The seed's Table II survives only as three cells "100, 100, 1.6"; the defaults below are the
specification's (``shared/design/s3-pascal.md`` §1.7), each a field:

* base station: a horizontal N_x × N_y URA, λ/2 spacing (4 × 4; the seed used three lost
  sizes), λ = 0.125 m (2.4 GHz; λ only converts speeds to Dopplers);
* drones (the seed's "drone 1/2/3"): (φ, ϑ, v) = (20°, 30°, 10 m/s), (45°, 50°, 15 m/s),
  (70°, 40°, 20 m/s), all at 100 m [S] (Fig. 5 changes drone 1's range), Doppler
  f = v cos ϑ / λ (69.3, 77.1, 122.6 Hz) [S];
* frame: L = 10 subframes of N = 101 signals (1 pilot + 100 data symbols [S via Fig. 9]),
  f_s = 100 kHz, so the Dopplers are inside the pilot ambiguity ±f_s/(2N) = ±495 Hz;
* pilots: unit-modulus QPSK drawn once per drone from ``pilot_seed``; data: 16-PSK [S];
* errors: Rice(ν, σ) gains × von Mises(κ) phases, (ν, σ, κ) = (1, 0.1, 10) (the library preset
  ``seed003-rician-vm``), held over the frame (``coherence = "frame"``, the seed's literal
  model) — or redrawn per signal (``"signal"``); ``law = "gaussian"`` draws the
  moment-matched complex Gaussian CN(μ, v) (the law the statistical likelihood assumes);
* SNR := P β(d_ref)²/σ² with d_ref = 100 m, so drone k's per-element SNR with an ideal element
  is ρ_k SNR (d_ref/d_k)² and its amplitude c_k = √ρ_k d_ref/d_k with σ² = 10^{−SNR/10};
  power split ρ_k = 1/K unless given (Σ ρ_k = 1 [S]).

Surviving Table II cells "100, 100, 1.6": most likely d = 100 m and N − 1 = 100 data symbols,
and 1.6 plausibly the "large" ν of Fig. 4 — a guess recorded here, not a fact.

Angles in degrees at this edge; the library works in radians.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, model_validator

from ..._config import StrictModel
from ...estimators.grids import SearchGrid
from ...estimators.statistical import LikelihoodSearch
from ...impairments.distributions import (
    ComplexGaussianErrors,
    ElementErrorDistribution,
    GainPhaseDistribution,
    RicianGain,
    VonMisesPhase,
)
from ...signals.frames import FrameLayout

__all__ = ["DroneConfig", "ErrorConfig", "ArrayConfig", "FrameConfig", "SearchConfig", "ScenarioConfig",
           "DEFAULT_DRONES"]


class DroneConfig(StrictModel):
    """One drone: azimuth, elevation (degrees, up from the array plane), speed, range."""

    azimuth_deg: float = Field(ge=-180.0, le=180.0)
    elevation_deg: float = Field(ge=0.0, lt=90.0)
    speed_mps: float = 0.0
    range_m: float = Field(100.0, gt=0)


DEFAULT_DRONES = [DroneConfig(azimuth_deg=20.0, elevation_deg=30.0, speed_mps=10.0),
                  DroneConfig(azimuth_deg=45.0, elevation_deg=50.0, speed_mps=15.0),
                  DroneConfig(azimuth_deg=70.0, elevation_deg=40.0, speed_mps=20.0)]


class ErrorConfig(StrictModel):
    """Per-element gain-phase errors: the law drawn, its parameters, their time coherence."""

    law: Literal["rice_von_mises", "gaussian", "none"] = "rice_von_mises"
    nu: float = Field(1.0, ge=0)
    sigma: float = Field(0.1, gt=0)
    kappa: float = Field(10.0, gt=0)
    coherence: Literal["frame", "signal"] = "frame"

    def rice_von_mises(self) -> GainPhaseDistribution:
        return GainPhaseDistribution(RicianGain(self.nu, self.sigma), VonMisesPhase(self.kappa))

    def distribution(self) -> ElementErrorDistribution | None:
        """The law the errors are drawn from (``None``: ideal array)."""
        if self.law == "none":
            return None
        rvm = self.rice_von_mises()
        return rvm if self.law == "rice_von_mises" else ComplexGaussianErrors.matching(rvm)

    def describe(self) -> str:
        if self.law == "none":
            return "no errors"
        law = "Rice×vM" if self.law == "rice_von_mises" else "CN matched"
        return f"{law} (ν={self.nu:g}, σ={self.sigma:g}, κ={self.kappa:g}), {self.coherence}-coherent"


class ArrayConfig(StrictModel):
    """Horizontal URA: N_x × N_y elements, spacing in wavelengths."""

    num_x: int = Field(4, ge=1)
    num_y: int = Field(4, ge=1)
    spacing: float = Field(0.5, gt=0)

    @property
    def num_elements(self) -> int:
        return self.num_x * self.num_y


class FrameConfig(StrictModel):
    """L subframes × N signals (pilot first) at f_s."""

    num_subframes: int = Field(10, ge=1)
    subframe_length: int = Field(101, ge=2)
    sample_rate_hz: float = Field(1e5, gt=0)

    def layout(self) -> FrameLayout:
        return FrameLayout(self.num_subframes, self.subframe_length, self.sample_rate_hz)


class SearchConfig(StrictModel):
    """Coarse grids (refined off-grid) and the AO-ML stop rule (13).  The spec suggested 1° and
    5 Hz; 4° (≥ 6 points in the ≈ 26° beam of the 4 × 4 URA) and 20 Hz (≥ 5 points per Doppler
    resolution cell of 10 pilots) find the same basins at 1/16 and 1/4 of the cost, and every
    search is refined off the grid."""

    azimuth_step_deg: float = Field(4.0, gt=0)
    elevation_step_deg: float = Field(4.0, gt=0)
    elevation_max_deg: float = Field(88.0, gt=0, le=90)
    doppler_step_hz: float = Field(20.0, gt=0)
    max_iterations: int = Field(30, ge=1)
    angle_tol: float = Field(1e-4, gt=0)
    doppler_tol_hz: float = Field(1e-2, gt=0)
    nll_rtol: float = Field(1e-9, gt=0)
    newton_steps: int = Field(12, ge=1)

    def likelihood_search(self, doppler_max_hz: float) -> LikelihoodSearch:
        """Grids: φ ∈ [−180°, 180°), ϑ ∈ [0, ``elevation_max_deg``], f ∈ ±``doppler_max_hz``."""
        fstep = self.doppler_step_hz
        fmax = math.floor(doppler_max_hz / fstep) * fstep
        return LikelihoodSearch(
            azimuth_grid=SearchGrid.degrees(-180.0, 180.0 - self.azimuth_step_deg, self.azimuth_step_deg),
            elevation_grid=SearchGrid.degrees(0.0, self.elevation_max_deg, self.elevation_step_deg, "elevation"),
            doppler_grid=SearchGrid(-fmax, fmax, fstep, "doppler"),
            max_iterations=self.max_iterations, angle_tol=self.angle_tol, doppler_tol=self.doppler_tol_hz,
            nll_rtol=self.nll_rtol, newton_steps=self.newton_steps)


class ScenarioConfig(StrictModel):
    """One PASCAL world: array, drone table, frame, errors, SNR reference, pilots and search."""

    array: ArrayConfig = ArrayConfig()
    wavelength_m: float = Field(0.125, gt=0)
    drones: list[DroneConfig] = Field(default_factory=lambda: list(DEFAULT_DRONES), min_length=1)
    frame: FrameConfig = FrameConfig()
    errors: ErrorConfig = ErrorConfig()
    reference_range_m: float = Field(100.0, gt=0)
    pilot_seed: int = Field(3, ge=0)
    constellation: Literal["psk16", "psk8", "qpsk"] = "psk16"
    search: SearchConfig = SearchConfig()

    @model_validator(mode="after")
    def _consistent(self) -> ScenarioConfig:
        amb = self.frame.layout().doppler_ambiguity
        for i, d in enumerate(self.drones):
            f = self.doppler_hz(i)
            if abs(f) >= amb:
                raise ValueError(f"drone {i + 1}'s Doppler {f:.1f} Hz is outside the pilot ambiguity ±{amb:.1f} Hz "
                                 f"(f_s/(2N)); lower its speed or raise frame.sample_rate_hz")
        return self

    # -- derived ------------------------------------------------------------------------
    def doppler_hz(self, index: int) -> float:
        """f = v cos ϑ / λ of drone ``index`` (0-based)."""
        d = self.drones[index]
        return d.speed_mps * math.cos(math.radians(d.elevation_deg)) / self.wavelength_m

    @property
    def doppler_max_hz(self) -> float:
        """The Doppler search range: 99 % of the pilot ambiguity f_s/(2N)."""
        return 0.99 * self.frame.layout().doppler_ambiguity

    def check_selection(self, drones: list[int], power_split: list[float] | None) -> None:
        """Drone indices (1-based) exist and are distinct, K < M (identifiable; MUSIC has a
        noise subspace), the power split has K positive entries summing to one."""
        K = len(drones)
        if K == 0 or len(set(drones)) != K:
            raise ValueError(f"drones must be distinct, got {drones}")
        for i in drones:
            if not 1 <= i <= len(self.drones):
                raise ValueError(f"drone {i} is not in the scenario's {len(self.drones)}-drone table")
        M = self.array.num_elements
        if K >= M:
            raise ValueError(f"{K} drones cannot be resolved by a {self.array.num_x}×{self.array.num_y} array "
                             f"(need K < M = {M})")
        if power_split is not None:
            if len(power_split) != K or any(r <= 0 for r in power_split):
                raise ValueError(f"power split {power_split} must have {K} positive entries")
            if abs(sum(power_split) - 1.0) > 1e-9:
                raise ValueError(f"power split {power_split} must sum to 1 (got {sum(power_split):.6g})")
