r"""Configuration of system S1: bistatic communication-centric ISAC (seed 001).

The seed's extraction lost Table I; the defaults are those of ``shared/design/s1-bistatic.md``
§1.2 (most from the authors' public code for the predecessor paper):

* BS transmit ULA M_t = 8, passive-radar receive ULA M_r = 10, λ/2 spacing, f_c = 30 GHz;
* OFDM N = 64 subcarriers, Δf = 960 kHz (NR numerology μ = 6), CP T_cp = T/4, so
  T_res = 1/(NΔf) = 16.28 ns and the excess delay is at most T_cp = 16 T_res;
* L = 10 OFDM symbols per sub-frame (L ≥ M_t for the LS estimate), S = 10 sub-frames
  (contiguous: T_sf = L T_sym = 13.02 µs) for Doppler;
* K = 3 paths; pilots orthogonal (DFT rows, X X^H = L I, so the LS CSI error is exactly
  CN(0, σ²/L) per entry and the CRB does not depend on a pilot draw).  ``pilots = "qpsk"``
  draws i.i.d. QPSK blocks instead (the spec's default): an 8 × 10 QPSK block is singular with
  probability ≈ 1e-4 (two proportional rows; redrawn) and often badly conditioned, which
  makes the LS noise, and the CRB, vary from draw to draw — use it with per-trial bounds;
* the scene sampler (our documented choice, the seed says "random scatterer locations"):
  θ, φ ~ U[-60°, 60°], τ the excess delay ~ U[T_res, T_cp - T_res] with every pair at least
  ``min_delay_separation`` T_res apart (one path per IDFT peak, as IFFT-C2VNN assumes),
  gains of unit modulus (``amplitude = "unit"``, for every curve with a CRB) or Swerling-I
  |α|² ~ Exp(1) (``"swerling1"``, the seed's training prior), phases U[0, 2π);
  Dopplers ν ~ U[-v_max/λ, v_max/λ] with v_max = 25 m/s (2.5 kHz);
* SNR = M_t Σ_k E|α_k|² / σ² (expected received power per receive element and resource
  element over the noise power, unit-power symbols), so σ² = M_t K / SNR.

Angles are in degrees here (the config edge); the library works in radians.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ..._config import StrictModel
from ...constants import SPEED_OF_LIGHT
from ...conversions import db_to_linear
from ...signals.ofdm import OFDMConfig

__all__ = ["ScenarioConfig"]


class ScenarioConfig(StrictModel):
    """One S1 scenario: arrays, numerology, scene prior and noise (seed 001, Table I)."""

    num_tx: int = Field(8, ge=2)
    num_rx: int = Field(10, ge=2)
    carrier_hz: float = Field(30e9, gt=0)
    num_subcarriers: int = Field(64, ge=4)
    subcarrier_spacing_hz: float = Field(960e3, gt=0)
    cyclic_prefix: float = Field(0.25, gt=0, lt=1)        # T_cp / T
    symbols_per_subframe: int = Field(10, ge=1)            # L
    num_subframes: int = Field(10, ge=2)                   # S (Doppler)
    num_paths: int = Field(3, ge=1)                        # K
    pilots: Literal["orthogonal", "qpsk"] = "orthogonal"
    amplitude: Literal["unit", "swerling1"] = "unit"
    angle_max_deg: float = Field(60.0, gt=0, lt=90)
    min_delay_separation: float = Field(2.0, ge=0)         # in T_res
    max_speed_mps: float = Field(25.0, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> ScenarioConfig:
        if self.symbols_per_subframe < self.num_tx:
            raise ValueError(f"symbols_per_subframe (L = {self.symbols_per_subframe}) must be ≥ num_tx "
                             f"(M_t = {self.num_tx}) for the LS channel estimate")
        lo, hi = self.delay_range
        if hi <= lo:
            raise ValueError("the cyclic prefix leaves no delay range: need T_cp > 2 T_res")
        K, sep = self.num_paths, self.min_delay_separation
        if (K - 1) * sep > hi - lo:
            raise ValueError(f"{K} paths cannot be {sep} T_res apart within [{lo}, {hi}] T_res")
        return self

    # -- derived ------------------------------------------------------------------------
    @property
    def ofdm(self) -> OFDMConfig:
        """Numerology: N, Δf, f_c, L symbols per sub-frame, CP fraction."""
        return OFDMConfig(self.num_subcarriers, self.subcarrier_spacing_hz, self.carrier_hz,
                          num_symbols=self.symbols_per_subframe, cyclic_prefix=self.cyclic_prefix)

    @property
    def wavelength(self) -> float:
        return SPEED_OF_LIGHT / self.carrier_hz

    @property
    def delay_resolution(self) -> float:
        """T_res = 1/(NΔf) in seconds."""
        return 1.0 / (self.num_subcarriers * self.subcarrier_spacing_hz)

    @property
    def cp_bins(self) -> float:
        """T_cp / T_res (= cyclic_prefix · N)."""
        return self.cyclic_prefix * self.num_subcarriers

    @property
    def delay_range(self) -> tuple[float, float]:
        """Excess-delay prior [T_res, T_cp - T_res], in units of T_res."""
        return 1.0, self.cp_bins - 1.0

    @property
    def subframe_period(self) -> float:
        """T_sf = L T_sym (contiguous sub-frames), seconds."""
        return self.symbols_per_subframe * self.ofdm.symbol_duration

    @property
    def max_doppler(self) -> float:
        """ν_max = v_max / λ in Hz."""
        return self.max_speed_mps / self.wavelength

    def noise_variance(self, snr_db: float) -> float:
        """σ² = M_t K E|α|² / SNR (E|α|² = 1 for both amplitude models)."""
        return self.num_tx * self.num_paths / db_to_linear(snr_db)

    def half_power_beamwidth_rx(self) -> float:
        """HPBW of the receive ULA at broadside, radians (≈ 0.886·2/M_r)."""
        from ...geometry import ula
        return ula(self.num_rx).half_power_beamwidth()

    def describe(self) -> str:
        return (f"M_t={self.num_tx}, M_r={self.num_rx}, N={self.num_subcarriers}, "
                f"Δf={self.subcarrier_spacing_hz / 1e3:g} kHz, f_c={self.carrier_hz / 1e9:g} GHz, K={self.num_paths}, "
                f"T_res={self.delay_resolution * 1e9:.2f} ns, "
                f"T_cp={self.cp_bins:g} T_res, L={self.symbols_per_subframe}, S={self.num_subframes}")
