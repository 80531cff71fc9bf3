r"""S2 scenario: UL-SRS CSI of one UE at a commodity gNB with angle-dependent phase errors.

Seed 002, Secs. 2 and 5.  Per sample (one SRS symbol, a "group of CSI data") the gNB's
M-element ULA observes the channel frequency response on K sampled tones (eqs. 4, 7):

    H = [h(1) … h(K)] ∈ C^{M×K},   h(k) = Σ_p g_p (γ_k(θ_p) ⊙ a(θ_p)) e^{−j2π kΔf τ_p} + n(k),

with the TRUE array of one "device" (ideal ULA ⊙ exp(jρψ_{m,k}(θ)), plus any eq.-6 chain),
n(k) ~ CN(0, σ²I) and SNR = Σ_p |g_p|² / σ² per element and tone (Σ|g_p|² = 1).  The
channel is a single LoS ray (random delay U[0, τ_max] and phase) or a TR 38.901 LoS
scenario (:mod:`isackit.signals.tr38901`, path loss and shadowing off, UE and BS at equal
heights so the LoS elevation is 0 and the label is the LoS azimuth).  ``wideband``
multiplies each tone's response by the beam-squint factor exp(j2π p_m·u (1/λ_k − 1/λ_0))
(exact for the ideal ULA and for element-wise phase errors, eq. 1).

A device is one draw of the phase-error model from ``make_generator(seed, "device", d)``;
the degree ρ rescales the same draw, so devices are comparable across ρ.

Grid and subregions (Sec. 3.1): θ_l = θ_min + lΔθ, l = 0..L−1, and the floor partition
b_p = ⌊Lp/P⌋: subregion p holds l ∈ [b_p, b_{p+1}) — for L = 1201, P = 4 the sizes 300,
300, 300, 301 and [−60.0°, −30.1°], [−30.0°, −0.1°], [0.0°, 29.9°], [30.0°, 60.0°].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..._dtypes import complex_dtype
from ...constants import SPEED_OF_LIGHT
from ...geometry.arrays import ula
from ...impairments.angle_phase import SmoothPhaseError
from ...impairments.base import ArrayModel
from ...impairments.presets import make_chain
from ...seeding import make_generator
from ...signals.channels import uplink_channel
from ...signals.ofdm import OFDMConfig
from ...signals.measured import MeasuredCSI
from ...signals.random import add_noise_at_snr, noise_variance_from_snr
from .config import ScenarioConfig

__all__ = [
    "Device",
    "CSIBatch",
    "make_device",
    "ofdm_config",
    "grid_angles",
    "subregion_bounds",
    "subregion_of",
    "nearest_grid_index",
    "simulate_csi",
    "grid_dataset",
    "chamber_surrogate",
]


def ofdm_config(scenario: ScenarioConfig) -> OFDMConfig:
    """The K sampled tones as an :class:`~isackit.signals.OFDMConfig` (spacing Δf')."""
    a = scenario.array
    return OFDMConfig(a.num_subcarriers, a.subcarrier_spacing, a.carrier_frequency)


def grid_angles(scenario: ScenarioConfig, dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
    """θ_l, ``(L,)`` radians (built in float64 from integers, then cast)."""
    g = scenario.grid
    deg = g.min_deg + g.step_deg * torch.arange(g.size, dtype=torch.float64)
    return torch.deg2rad(deg).to(dtype=dtype, device=device)


def subregion_bounds(num_points: int, num_subregions: int) -> list[int]:
    """b_p = ⌊Lp/P⌋, p = 0..P (subregion p holds the grid indices [b_p, b_{p+1}))."""
    return [(num_points * p) // num_subregions for p in range(num_subregions + 1)]


def nearest_grid_index(aoa: torch.Tensor, scenario: ScenarioConfig) -> torch.Tensor:
    """Index of the nearest grid point, clamped to the grid, ``(...)`` int64."""
    g = scenario.grid
    idx = torch.round((torch.rad2deg(aoa.double()) - g.min_deg) / g.step_deg)
    return idx.clamp(0, g.size - 1).long()


def subregion_of(aoa: torch.Tensor, scenario: ScenarioConfig) -> torch.Tensor:
    """Subregion p ``(...)`` int64 of each AoA (by its nearest grid point)."""
    b = torch.tensor(subregion_bounds(scenario.grid.size, scenario.grid.subregions)[1:-1], device=aoa.device)
    return torch.bucketize(nearest_grid_index(aoa, scenario), b, right=True)


@dataclass(frozen=True, eq=False)
class Device:
    """One simulated gNB: the true (impaired) array and the ideal array the receiver assumes."""

    index: int
    true_array: ArrayModel
    assumed_array: ArrayModel
    rho: float


def make_device(scenario: ScenarioConfig, seed: int, index: int, rho: float | None = None,
                dtype: torch.dtype = torch.float64) -> Device:
    r"""Device ``index`` of the root ``seed``: the phase-error draw (and ``extra`` chain) from
    ``make_generator(seed, "device", index)``; ``rho`` overrides ``impairment.rho``."""
    imp = scenario.impairment
    a = scenario.array
    r = imp.rho if rho is None else float(rho)
    if not 0.0 <= r <= 1.0:
        raise ValueError(f"rho must lie in [0, 1], got {rho}")
    geom = ula(a.num_elements, a.spacing, wavelength=a.wavelength)
    chain = []
    gen = make_generator(seed, "direction_finding", "device", int(index))
    if imp.model == "smooth":
        chain.append(SmoothPhaseError.sample(
            a.num_elements, a.num_subcarriers, generator=gen, dtype=dtype, harmonics=imp.harmonics,
            inner_max_deg=imp.inner_max_deg, slope_range=tuple(imp.slope_range), subcarrier_std=imp.subcarrier_std,
            threshold_deg=imp.threshold_deg, degree=r if imp.rho_mode == "phase" else 1.0))
    if imp.extra:
        chain += make_chain(imp.extra, num_elements=a.num_elements, generator=gen)
    return Device(int(index), ArrayModel(geom, chain), ArrayModel(geom), r)


@dataclass(frozen=True, eq=False)
class CSIBatch:
    """Simulated CSI: ``csi`` ``(B, M, K)`` noisy, ``clean`` noise-free, ``aoa`` ``(B,)`` radians,
    ``noise_variance`` ``(B,)``."""

    csi: torch.Tensor
    clean: torch.Tensor
    aoa: torch.Tensor
    noise_variance: torch.Tensor


def _squint(scenario: ScenarioConfig, array: ArrayModel, aoa: torch.Tensor) -> torch.Tensor:
    """exp(j2π p_m·u (1/λ_k − 1/λ_0)) ``(B, M, K)`` for the wideband model."""
    cfg = ofdm_config(scenario)
    f = cfg.subcarrier_frequencies(torch.float64, aoa.device)
    dk = (cfg.carrier_frequency + f) / SPEED_OF_LIGHT - 1.0 / cfg.wavelength  # (K,)
    y = array.positions(aoa)[..., 1].to(torch.float64)  # (M,) ULA along y
    phase = 2 * math.pi * y[:, None] * torch.sin(aoa.double())[:, None, None] * dk  # (B, M, K)
    return torch.polar(torch.ones_like(phase), phase)


def _los_paths(B: int, scenario: ScenarioConfig, generator: torch.Generator, rdt):
    delays = torch.rand(B, 1, generator=generator, dtype=torch.float64) * scenario.channel.max_delay_ns * 1e-9
    phase = 2 * math.pi * torch.rand(B, 1, generator=generator, dtype=torch.float64)
    return delays.to(rdt), torch.polar(torch.ones_like(phase), phase).to(complex_dtype(rdt))


def _tr38901_channel(arrays: list[ArrayModel], aoa: torch.Tensor, scenario: ScenarioConfig,
                     generator: torch.Generator, cdt) -> list[torch.Tensor]:
    from ...signals.tr38901 import tr38901_channel, tr38901_paths

    ch = scenario.channel
    B = aoa.shape[0]
    indoor = ch.kind in ("inh", "inf")
    lo, hi = ch.distance_range if indoor else ch.outdoor_distance_range
    d = lo + (hi - lo) * torch.rand(B, generator=generator, dtype=torch.float64)
    a = aoa.double().cpu()
    ut = torch.stack([d * torch.cos(a), d * torch.sin(a), torch.full_like(d, ch.height)], -1)
    bs = torch.tensor([0.0, 0.0, ch.height + ch.height_difference], dtype=torch.float64)
    opts = {"inf": {"factory_scenario": ch.inf_subscenario}, "inh": {"indoor_scenario": ch.inh_subscenario}}
    paths = tr38901_paths(ch.kind, generator, bs_position=bs, ut_position=ut,
                          carrier_frequency=scenario.array.carrier_frequency,
                          dtype=torch.float64, device="cpu", **opts.get(ch.kind, {}))
    cfg = ofdm_config(scenario)
    return [tr38901_channel(paths, cfg, rx_array=arr)[..., 0].to(cdt) for arr in arrays]  # (B, K, M)


def simulate_csi(device: Device, aoa: torch.Tensor, snr_db, scenario: ScenarioConfig,
                 generator: torch.Generator) -> CSIBatch:
    r"""CSI of one UE per batch entry at azimuths ``aoa`` ``(B,)`` (radians) through ``device``.

    Args:
        device: :class:`Device` (its true array makes the data).
        aoa: ``(B,)`` LoS azimuths; their dtype (float32/float64) sets the output precision.
        snr_db: scalar or ``(B,)`` SNR per element and tone.
        scenario: the scenario config (channel kind, tones, wideband, ρ mode).
        generator: all randomness (delays, phases, TR 38.901 rays, noise).

    Returns:
        :class:`CSIBatch` with ``(B, M, K)`` tensors on ``aoa``'s device.
    """
    if aoa.ndim != 1:
        raise ValueError(f"aoa must have shape (B,), got {tuple(aoa.shape)}")
    rdt = aoa.dtype if aoa.dtype in (torch.float32, torch.float64) else torch.float32
    cdt = complex_dtype(rdt)
    B = aoa.shape[0]
    mix = scenario.impairment.rho_mode == "mix" and device.rho < 1.0
    arrays = [device.true_array] + ([device.assumed_array] if mix else [])
    if scenario.channel.kind == "los":
        delays, gains = _los_paths(B, scenario, generator, torch.float64)
        cfg = ofdm_config(scenario)
        a64 = aoa.double().cpu()[:, None]
        Hs = [uplink_channel(arr, a64, delays, gains, cfg) for arr in arrays]  # (B, K, M)
    else:
        if scenario.array.wideband:
            raise ValueError("the wideband model is implemented for the single-LoS channel only")
        Hs = [h.to(torch.complex128) for h in _tr38901_channel(arrays, aoa, scenario, generator, torch.complex128)]
    H = Hs[0]
    if mix:  # response (1 − ρ) a + ρ γ⊙a, channel linear in the response
        H = device.rho * Hs[0] + (1.0 - device.rho) * Hs[1]
    H = H.transpose(-1, -2)  # (B, M, K)
    if scenario.array.wideband:
        H = H * _squint(scenario, device.assumed_array, aoa.double().cpu())
    snr = torch.as_tensor(snr_db, dtype=torch.float64).expand(B).contiguous()
    noisy = add_noise_at_snr(H, snr, generator)  # unit power per element and tone (Σ|g_p|² = 1)
    return CSIBatch(csi=noisy.to(cdt).to(aoa.device), clean=H.to(cdt).to(aoa.device), aoa=aoa,
                    noise_variance=noise_variance_from_snr(snr).to(rdt).to(aoa.device))


def grid_dataset(device: Device, scenario: ScenarioConfig, per_angle: int, snr_db, generator: torch.Generator, *,
                 angle_index: torch.Tensor | None = None, dtype: torch.dtype = torch.float32,
                 chunk: int = 4096) -> CSIBatch:
    r"""``per_angle`` samples at every grid angle (or at ``angle_index``), angle-major order
    (sample s is at grid index ``angle_index[s // per_angle]``), simulated in chunks.
    ``snr_db`` is a scalar or a ``[low, high]`` pair (uniform per sample, dB)."""
    theta = grid_angles(scenario, torch.float64)
    idx = torch.arange(theta.numel()) if angle_index is None else torch.as_tensor(angle_index).long()
    aoa = theta[idx].repeat_interleave(int(per_angle)).to(dtype)
    B = aoa.numel()
    if isinstance(snr_db, list | tuple):
        lo, hi = float(snr_db[0]), float(snr_db[1])
        snr = lo + (hi - lo) * torch.rand(B, generator=generator, dtype=torch.float64)
    else:
        snr = torch.full((B,), float(snr_db), dtype=torch.float64)
    if scenario.channel.kind != "los":
        chunk = min(chunk, 512)  # Sionna's ray tensors grow with the batch: bound the memory
    parts = [simulate_csi(device, aoa[s:s + chunk], snr[s:s + chunk], scenario, generator) for s in range(0, B, chunk)]
    return CSIBatch(csi=torch.cat([p.csi for p in parts]), clean=torch.cat([p.clean for p in parts]),
                    aoa=aoa, noise_variance=torch.cat([p.noise_variance for p in parts]))


def chamber_surrogate(device: Device, scenario: ScenarioConfig, per_angle: int, snr_db: float,
                      generator: torch.Generator, step_deg: float = 1.0) -> MeasuredCSI:
    r"""A simulated anechoic-chamber measurement (seed 002, Sec. 6.1) as :class:`MeasuredCSI`:
    the UE on a turntable at θ_min..θ_max in ``step_deg`` steps (121 angles for the seed),
    ``per_angle`` SRS symbols each (the seed: 450, split 400/50), a single LoS ray through the
    device's true array at ``snr_db``; ``group`` = angle step, ``timestamp`` = symbol × 80 ms."""
    g = scenario.grid
    n = int(round((g.max_deg - g.min_deg) / step_deg)) + 1
    deg = g.min_deg + step_deg * torch.arange(n, dtype=torch.float64)
    aoa = torch.deg2rad(deg).repeat_interleave(int(per_angle))
    los = scenario.model_copy(update={"channel": scenario.channel.model_copy(update={"kind": "los"})})
    batch = simulate_csi(device, aoa, float(snr_db), los, generator)
    S = aoa.numel()
    return MeasuredCSI(csi=batch.csi.to(torch.complex64), aoa=aoa.float(),
                       group=torch.arange(n).repeat_interleave(int(per_angle)),
                       subcarrier_index=torch.arange(scenario.array.num_subcarriers),
                       timestamp=(torch.arange(S) % int(per_angle)).double() * 0.08,
                       carrier_frequency=scenario.array.carrier_frequency,
                       subcarrier_spacing=scenario.array.subcarrier_spacing,
                       meta={"source": "simulated chamber surrogate", "device": device.index, "snr_db": float(snr_db)})
