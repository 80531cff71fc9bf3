r"""The ISAC base station of system S0 as the physical world sees it (seed 000).

A monostatic base station with a transmit ULA (M_t) and a sensing receive ULA (M_r), both
impaired by per-element gain-phase errors AND element displacements whose TRUE values are
drawn once per device.  One OFDM symbol with N subcarriers carries comm symbols x (QPSK),
precoded by f (M_t,):

    Y = Σ_k β_k a_r(θ_k) a_t(θ_k)^T f (x ⊙ b(τ_k))^T + W        (M_r × N),
    b(τ)_n = exp(-j 2π n Δf τ),   τ_k = 2 R_k / c,   W ~ CN(0, σ² I),
    |β_k|² = P_sub λ² σ_k / ((4π)³ R_k⁴),  σ_k ~ Exp(mean σ̄)  (Swerling 1), arg β_k ~ U(0, 2π),

with a_r, a_t the TRUE impaired responses.  The UE receives
    y_n = h_n^T f x_n + w_n,   h_n = Σ_p α_p a_t(φ_p) exp(-j 2π n Δf τ_p),
a LoS path towards the UE angle (τ_0 = 0) plus, optionally, NLoS paths with delays inside the
cyclic prefix.

The calibration never reads the true impairment values: it only receives the observations
returned by :meth:`Station.sense` and :meth:`Station.ue_receive` (the "world" as a callable).
Only baselines that are defined by knowing the truth (perfect knowledge, true channel
gradient) use :meth:`Station.true_models` or a differentiable observation.

Shapes: batch-first, any number of leading batch dims B; f ``(..., M_t)``; Y ``(..., M_r, N)``;
y ``(..., N)``.  complex64 by default (set ``dtype=torch.float64`` for complex128).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, fields

import torch

from ..._dtypes import complex_dtype
from ...constants import SPEED_OF_LIGHT
from ...geometry.arrays import ula
from ...impairments.base import ArrayModel
from ...conversions import db_to_amplitude, db_to_linear, deg_to_rad
from ...impairments.displacement import ElementDisplacement
from ...impairments.gain_phase import GainPhaseError
from ...impairments.presets import make_impairment
from ...signals.channels import paths_received_signal
from ...signals.constellations import random_symbols
from ...signals.random import awgn
from ...signals.targets import radar_path_loss, swerling_rcs, target_amplitudes
from .config import ScenarioConfig

__all__ = ["Scenes", "Station", "impaired_array", "learnable_array"]


def impaired_array(num_elements: int, scenario: ScenarioConfig, generator: torch.Generator,
                   dtype: torch.dtype = torch.float32, name: str = "array") -> ArrayModel:
    """An ArrayModel whose TRUE displacements and gain-phase errors are drawn from ``generator``.

    The impairment presets ``displacement-gaussian`` (δ_m ~ N(0, (σ_δ λ)²) in x and y, z = 0)
    then ``gain-phase-gaussian`` (gains 10^{N(0, σ_g²)/20}, phases N(0, σ_ψ²)), i.i.d. per
    element (:mod:`isackit.impairments.presets`), drawn in float64.
    """
    m = num_elements
    disp = make_impairment("displacement-gaussian", num_elements=m, std=scenario.displacement_std * scenario.wavelength,
                           axes="xy", generator=generator, dtype=torch.float64)
    gp = make_impairment("gain-phase-gaussian", num_elements=m, gain_std_db=scenario.gain_std_db,
                         phase_std_deg=scenario.phase_std_deg, generator=generator, dtype=torch.float64)
    geom = ula(m, 0.5, scenario.wavelength, name=name).to(dtype)
    return ArrayModel(geom, [disp.to(dtype), gp.to(dtype)])


def learnable_array(num_elements: int, scenario: ScenarioConfig, dtype: torch.dtype = torch.float32,
                    name: str = "array") -> ArrayModel:
    """The assumed (learnable) model before calibration: nominal ULA, unit gains, no displacement.

    Learnable parameters: ``impairments.0.displacement`` (M, 3) metres, ``impairments.1.gain``
    (M,) and ``impairments.1.phase`` (M,) radians.
    """
    geom = ula(num_elements, 0.5, scenario.wavelength, name=name).to(dtype)
    return ArrayModel(geom, [ElementDisplacement.zeros(num_elements, dtype=dtype, learnable=True),
                             GainPhaseError.identity(num_elements, dtype=dtype, learnable=True)])


@dataclass
class Scenes:
    """A batch of sensing scenes (one OFDM frame each) with their UE link.

    Attributes (B = batch shape, K = ``max_targets``, P = UE paths, N = subcarriers):
        sector_center, sector_width: ``(B,)`` prior sector (rad), known to the station.
        target_mask: ``(B, K)`` bool, which target slots are present.
        target_angle, target_range: ``(B, K)`` rad / m (0 where absent).  Labels: used only by
            supervised calibration and by evaluation.
        target_gain: ``(B, K)`` complex β_k (0 where absent).
        ue_angle: ``(B,)`` rad, direction of the UE's LoS path (known to the station).
        ue_path_angle, ue_path_delay, ue_path_gain: ``(B, P)`` UE channel paths.
        symbols: ``(B, N)`` QPSK comm symbols x (known to the station, which sends them).
    """

    sector_center: torch.Tensor
    sector_width: torch.Tensor
    target_mask: torch.Tensor
    target_angle: torch.Tensor
    target_range: torch.Tensor
    target_gain: torch.Tensor
    ue_angle: torch.Tensor
    ue_path_angle: torch.Tensor
    ue_path_delay: torch.Tensor
    ue_path_gain: torch.Tensor
    symbols: torch.Tensor

    @property
    def target_delay(self) -> torch.Tensor:
        return 2.0 * self.target_range / SPEED_OF_LIGHT

    @property
    def num_targets(self) -> torch.Tensor:
        return self.target_mask.sum(-1)

    def target_positions(self) -> torch.Tensor:
        """``(B, K, 2)`` Cartesian positions (x, y) = R (cos θ, sin θ), NaN where absent."""
        pos = torch.stack([self.target_range * torch.cos(self.target_angle),
                           self.target_range * torch.sin(self.target_angle)], dim=-1)
        return pos.masked_fill(~self.target_mask.unsqueeze(-1), float("nan"))

    def index(self, idx) -> Scenes:
        return Scenes(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})


class Station:
    """The physical ISAC base station of one device (true impaired arrays + channels).

    Args:
        scenario: the physical world (arrays, waveform, scene prior, impairment statistics).
        device_seed: seed of this device's TRUE impairment draw.
        dtype: real dtype of the simulation (float32 → complex64).
        device: torch device.
    """

    def __init__(self, scenario: ScenarioConfig, device_seed: int, dtype: torch.dtype = torch.float32,
                 device: torch.device | str = "cpu"):
        self.scenario = scenario
        self.dtype = dtype
        self.device = torch.device(device)
        g = torch.Generator().manual_seed(int(device_seed))
        self._tx_true = impaired_array(scenario.num_tx, scenario, g, dtype, "tx").to(self.device)
        self._rx_true = impaired_array(scenario.num_rx, scenario, g, dtype, "rx").to(self.device)
        self._observing = False

    # -- ground truth, for baselines and reports only -------------------------------------------
    def true_models(self) -> tuple[ArrayModel, ArrayModel]:
        """Deep copies of the TRUE (tx, rx) models: for the perfect-knowledge baseline and reports."""
        return copy.deepcopy(self._tx_true), copy.deepcopy(self._rx_true)

    # -- scenes -----------------------------------------------------------------------------------
    def draw_scenes(self, batch: int, generator: torch.Generator) -> Scenes:
        """Draw ``batch`` independent scenes (targets, RCS, UE channel, symbols) from the prior."""
        cfg, dt, dev = self.scenario, self.dtype, self.device

        def u(*shape):
            return torch.rand(*shape, generator=generator, dtype=dt).to(dev)

        K, N = cfg.max_targets, cfg.num_subcarriers
        deg = deg_to_rad(1.0)
        center = (2 * u(batch) - 1) * cfg.sector_mean_max_deg * deg
        width = (cfg.sector_width_min_deg + u(batch) * (cfg.sector_width_max_deg - cfg.sector_width_min_deg)) * deg
        count = torch.randint(cfg.min_targets, cfg.max_targets + 1, (batch,), generator=generator).to(dev)
        mask = torch.arange(K, device=dev) < count.unsqueeze(-1)
        angle = center.unsqueeze(-1) + (u(batch, K) - 0.5) * width.unsqueeze(-1)
        rng = cfg.range_min + u(batch, K) * (cfg.range_max - cfg.range_min)
        rcs = swerling_rcs((batch, K), generator, cfg.rcs_mean, "I", dtype=dt, device=dev)
        gain = target_amplitudes(rcs, radar_path_loss(cfg.wavelength, rng), generator,
                                 cfg.power_per_subcarrier) * mask
        angle, rng = angle * mask, torch.where(mask, rng, torch.zeros_like(rng))
        ue = (2 * u(batch) - 1) * cfg.ue_angle_max_deg * deg
        # UE channel: LoS (+ NLoS within the CP); |α_LoS|² M_t / σ² = SNR_ue
        sigma2 = cfg.noise_variance
        a_los = math.sqrt(sigma2 * db_to_linear(cfg.ue_snr_db) / cfg.num_tx)
        P = 1 + (cfg.ue_num_nlos if cfg.ue_multipath else 0)
        p_angle = torch.cat([ue.unsqueeze(-1), (2 * u(batch, P - 1) - 1) * 80 * deg], -1)
        p_delay = torch.cat([torch.zeros(batch, 1, dtype=dt, device=dev), u(batch, P - 1) * cfg.cyclic_prefix], -1)
        p_amp = torch.full((batch, P), a_los, dtype=dt, device=dev)
        p_amp[:, 1:] *= db_to_amplitude(cfg.ue_nlos_power_db) * torch.sqrt(-torch.log1p(-u(batch, P - 1)))
        p_phase = 2 * math.pi * u(batch, P)
        p_phase[:, 0] = 0.0
        symbols = random_symbols("qpsk", (batch, N), generator, complex_dtype(dt), dev)[0]
        return Scenes(center, width, mask, angle, rng, gain, ue, p_angle, p_delay,
                      torch.polar(p_amp, p_phase), symbols)

    # -- the world: observations ------------------------------------------------------------------
    def sense(self, f: torch.Tensor, scenes: Scenes, generator: torch.Generator | None) -> torch.Tensor:
        """Received sensing frame Y ``(B, M_r, N)`` for precoders f ``(B, M_t)``
        (:func:`~isackit.signals.channels.paths_received_signal` on the TRUE responses, θ_k the
        AoA and the AoD of target k).

        Differentiable w.r.t. ``f`` (used only by the true-gradient baseline; the calibration
        proper detaches f).  ``generator=None`` gives the noise-free frame.
        """
        self._observing = True
        try:
            A_t = self._tx_true.steering(scenes.target_angle)            # (B, M_t, K)
            A_r = self._rx_true.steering(scenes.target_angle)            # (B, M_r, K)
        finally:
            self._observing = False
        Y = paths_received_signal(scenes.target_gain, scenes.target_delay, A_r, A_t, self.scenario.ofdm,
                                  scenes.symbols.unsqueeze(-1), f.unsqueeze(-1)).transpose(-1, -2)
        if generator is not None:
            Y = Y + self.noise(Y.shape, generator)
        return Y

    def ue_receive(self, f: torch.Tensor, scenes: Scenes, generator: torch.Generator | None) -> torch.Tensor:
        """Received comm samples y ``(B, N)``: y_n = h_n^T f x_n + w_n (differentiable in f), with
        h_n = Σ_p α_p a_t(φ_p) b_n(τ_p) the UE's downlink channel through the TRUE Tx response."""
        self._observing = True
        try:
            A = self._tx_true.steering(scenes.ue_path_angle)             # (B, M_t, P)
        finally:
            self._observing = False
        ones = torch.ones_like(A[..., :1, :])                              # single UE antenna
        y = paths_received_signal(scenes.ue_path_gain, scenes.ue_path_delay, ones, A, self.scenario.ofdm,
                                  scenes.symbols.unsqueeze(-1), f.unsqueeze(-1))[..., 0]
        if generator is not None:
            y = y + self.noise(y.shape, generator)
        return y

    def noise(self, shape, generator: torch.Generator) -> torch.Tensor:
        """CN(0, σ²) noise with σ² = k T NF Δf."""
        return awgn(shape, self.scenario.noise_variance, generator, complex_dtype(self.dtype), self.device)
