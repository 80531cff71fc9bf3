r"""The S1 world: bistatic paths, MIMO-OFDM CSI, pilots, noise and LS channel estimates.

Seed 001, §II: H_n^{(s)} = Σ_k α_k e^{j2π ν_k s T_sf} b_n(τ_k) a_r(θ_k) a_t(φ_k)^T
(:func:`~isackit.signals.bistatic_channel`, one channel per sub-frame with
``symbol_period = T_sf``), received pilots Y_n = H_n X_n + W_n with known unprecoded pilots
X_n (M_t × L) and W ~ CN(0, σ²), and the LS estimate Ĥ_n = Y_n X_n^† (eq. 8;
:func:`~isackit.signals.ls_channel_estimate`).  A timing offset δ rotates the CSI,
H_n ← e^{-j2π nΔf δ} H_n (:class:`~isackit.impairments.TimingOffset`).

Everything is batched over scenes (leading dim B) and takes an explicit generator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ...conversions import db_to_linear
from ...geometry import ula
from ...impairments import ArrayModel, TimingOffset
from ...signals import bistatic_channel, ls_channel_estimate, orthogonal_pilots, random_symbols
from .config import ScenarioConfig

__all__ = ["Paths", "arrays", "channel", "observe", "observe_per_symbol", "pair_paths", "sample_paths",
           "transmit_pilots"]


@dataclass(frozen=True)
class Paths:
    """K paths per scene: angles (rad), excess delays (s), complex gains, Dopplers (Hz); ``(B, K)``."""

    aoa: torch.Tensor
    aod: torch.Tensor
    delay: torch.Tensor
    gain: torch.Tensor
    doppler: torch.Tensor

    @property
    def truth(self) -> torch.Tensor:
        """``(B, K, 3)`` (aoa, aod, delay), the layout of the estimators' results."""
        return torch.stack([self.aoa, self.aod, self.delay], -1)


def arrays(config: ScenarioConfig) -> tuple[ArrayModel, ArrayModel]:
    """(receive ULA M_r, transmit ULA M_t), λ/2 spacing, element 0 at the origin."""
    lam = config.wavelength
    return ArrayModel(ula(config.num_rx, 0.5, lam)), ArrayModel(ula(config.num_tx, 0.5, lam))


def _uniform(shape, lo, hi, generator, dtype):
    return lo + (hi - lo) * torch.rand(shape, generator=generator, dtype=dtype)


def _separated_delays(config: ScenarioConfig, batch: int, generator: torch.Generator, dtype) -> torch.Tensor:
    """τ/T_res ~ U[lo, hi] i.i.d. per path, rejected until all pairs are ≥ min separation apart.

    Vectorised: each round draws 16 candidate sets per unfilled scene and keeps the first
    admissible one (the loop runs over rounds, never over scenes)."""
    K, sep = config.num_paths, config.min_delay_separation
    lo, hi = config.delay_range
    out = torch.empty(batch, K, dtype=dtype)
    todo = torch.arange(batch)
    while todo.numel():
        cand = _uniform((todo.numel(), 16, K), lo, hi, generator, dtype)
        if K > 1:
            d = (cand[..., :, None] - cand[..., None, :]).abs()
            d = d + torch.eye(K, dtype=dtype) * (hi - lo + sep + 1)
            ok = d.flatten(-2).amin(-1) >= sep
        else:
            ok = torch.ones(cand.shape[:2], dtype=torch.bool)
        has = ok.any(-1)
        first = ok.to(torch.int8).argmax(-1)
        pick = cand[torch.arange(todo.numel()), first]
        out[todo[has]] = pick[has]
        todo = todo[~has]
    return out


def sample_paths(config: ScenarioConfig, batch: int, generator: torch.Generator,
                 dtype: torch.dtype = torch.float64) -> Paths:
    r"""Random scenes from the §1.3 prior (see :mod:`.config`), ``batch`` of them."""
    K = config.num_paths
    amax = math.radians(config.angle_max_deg)
    aoa = _uniform((batch, K), -amax, amax, generator, dtype)
    aod = _uniform((batch, K), -amax, amax, generator, dtype)
    delay = _separated_delays(config, batch, generator, dtype) * config.delay_resolution
    phase = _uniform((batch, K), 0.0, 2 * math.pi, generator, dtype)
    if config.amplitude == "unit":
        amp = torch.ones(batch, K, dtype=dtype)
    else:  # Swerling I: |α|² ~ Exp(1)
        amp = (-torch.log1p(-torch.rand((batch, K), generator=generator, dtype=dtype))).sqrt()
    nu = _uniform((batch, K), -config.max_doppler, config.max_doppler, generator, dtype)
    return Paths(aoa, aod, delay, torch.polar(amp, phase), nu)


def pair_paths(config: ScenarioConfig, batch: int, generator: torch.Generator, separation: float,
               center: float, aod: float, delay: float, delay_gap: float, mode: str = "aoa",
               dtype: torch.dtype = torch.float64) -> Paths:
    r"""Two paths for the resolution study (seed Fig. 8): θ = center ∓ separation/2 (radians)
    and φ = aod for both (``mode = "aoa"``), or the roles of θ and φ swapped (``"aod"``);
    τ = delay ∓ delay_gap/2 (seconds); unit gains with a random relative phase."""
    half = torch.tensor([-0.5, 0.5], dtype=dtype) * separation
    sep_ang = (center + half).expand(batch, 2)
    fixed = torch.full((batch, 2), float(aod), dtype=dtype)
    aoa, aod_ = (sep_ang, fixed) if mode == "aoa" else (fixed, sep_ang)
    tau = (delay + torch.tensor([-0.5, 0.5], dtype=dtype) * delay_gap).expand(batch, 2)
    phase = _uniform((batch, 2), 0.0, 2 * math.pi, generator, dtype)
    return Paths(aoa.clone(), aod_.clone(), tau.clone(), torch.polar(torch.ones_like(phase), phase),
                 torch.zeros(batch, 2, dtype=dtype))


def channel(config: ScenarioConfig, paths: Paths, *, subframes: bool = False, timing_offset: float = 0.0
            ) -> torch.Tensor:
    r"""True CSI ``(B, N, M_r, M_t)``, or ``(B, S, N, M_r, M_t)`` per sub-frame (Dopplers)
    with ``subframes=True``; a timing offset δ (seconds) rotates subcarrier n by e^{-j2π nΔf δ}."""
    rx, tx = arrays(config)
    cfg = config.ofdm
    if subframes:
        H = bistatic_channel(rx, tx, paths.aoa, paths.aod, paths.delay, paths.gain, cfg, paths.doppler,
                             num_symbols=config.num_subframes, symbol_period=config.subframe_period)
    else:
        H = bistatic_channel(rx, tx, paths.aoa, paths.aod, paths.delay, paths.gain, cfg)
    if timing_offset:
        f = cfg.subcarrier_frequencies(dtype=H.real.dtype, device=H.device)
        H = TimingOffset(timing_offset).apply_frequency(H, f, axis=-3)
    return H


def transmit_pilots(config: ScenarioConfig, shape: tuple[int, ...], generator: torch.Generator,
                    dtype: torch.dtype = torch.complex128) -> torch.Tensor:
    """Known pilots X ``(*shape, N, M_t, L)``: i.i.d. QPSK (blocks of full row rank), or DFT
    rows (X X^H = L I)."""
    N, Mt, L = config.num_subcarriers, config.num_tx, config.symbols_per_subframe
    if config.pilots == "orthogonal":
        return orthogonal_pilots(Mt, L, dtype).expand(*shape, N, Mt, L)
    X = random_symbols("qpsk", (*shape, N, Mt, L), generator, dtype=dtype)[0]
    # a random QPSK block is singular with probability ≈ 1e-4 (two proportional rows): redraw
    # the blocks whose Gram matrix is numerically singular (vectorised rounds, not a loop over blocks)
    flat = X.reshape(-1, Mt, L)
    while True:
        bad = torch.linalg.eigvalsh(flat @ flat.mH)[:, 0] < 1e-6 * L
        if not bool(bad.any()):
            return flat.reshape(X.shape)
        flat[bad] = random_symbols("qpsk", (int(bad.sum()), Mt, L), generator, dtype=dtype)[0]


def observe(config: ScenarioConfig, H: torch.Tensor, snr_db, generator: torch.Generator
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""LS CSI estimates from noisy pilots: Y = H X + W, Ĥ = Y X^† (seed eqs. 6, 8, 9).

    Args:
        H: ``(B, [S,] N, M_r, M_t)`` true CSI.
        snr_db: a float or ``(B,)`` tensor (per-scene SNR, e.g. mixed-SNR training).

    Returns:
        ``(Ĥ like H, pilots (B, [S,] N, M_t, L), σ² (B,))``.
    """
    B = H.shape[0]
    X = transmit_pilots(config, tuple(H.shape[:-3]), generator, H.dtype)
    snr = torch.as_tensor(snr_db, dtype=H.real.dtype).expand(B)
    s2 = config.num_tx * config.num_paths / db_to_linear(snr)
    W = torch.randn((*H.shape[:-1], config.symbols_per_subframe, 2), generator=generator, dtype=H.real.dtype)
    W = torch.view_as_complex(W) * (s2 / 2).sqrt().reshape(B, *([1] * (H.ndim - 1)))
    Y = H @ X + W
    return ls_channel_estimate(Y, X), X, s2


def observe_per_symbol(config: ScenarioConfig, paths: Paths, snr_db, generator: torch.Generator
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Per-sub-frame LS CSI when the channel moves within a sub-frame (Doppler per OFDM symbol).

    H[l, n] = Σ_k α_k e^{j2π ν_k l T_sym} b_n(τ_k) a_r a_t^T for the S·L symbols, y_{l,n} =
    H[l, n] x_{l,n} + w, and Ĥ_n^{(s)} = Y_n^{(s)} X_n^{(s)†} per sub-frame
    (:func:`~isackit.signals.ls_subframe_estimates`).  The LS estimate then no longer fits the
    model of :func:`channel` (``subframes=True``) exactly: each sub-frame's estimate is a
    pilot-weighted average of the moving channel (seed §III-D; the bias of ``shared/design``
    §5.1 check 7).

    Returns:
        ``(Ĥ (B, S, N, M_r, M_t), σ² (B,))``.
    """
    from ...signals import ls_subframe_estimates, received_signal

    rx, tx = arrays(config)
    S, L = config.num_subframes, config.symbols_per_subframe
    H = bistatic_channel(rx, tx, paths.aoa, paths.aod, paths.delay, paths.gain, config.ofdm, paths.doppler,
                         num_symbols=S * L)  # (B, S·L, N, M_r, M_t)
    B = H.shape[0]
    X = transmit_pilots(config, (B, S), generator, H.dtype)  # (B, S, N, M_t, L)
    Xg = X.permute(0, 1, 4, 2, 3).reshape(B, S * L, config.num_subcarriers, config.num_tx)  # (B, S·L, N, M_t)
    snr = torch.as_tensor(snr_db, dtype=H.real.dtype).expand(B)
    s2 = config.num_tx * config.num_paths / db_to_linear(snr)
    Y = received_signal(H, Xg, grid_dims=2, noise_variance=s2.reshape(B, 1, 1, 1), generator=generator)
    return ls_subframe_estimates(Y, Xg, L), s2
