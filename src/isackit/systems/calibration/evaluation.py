r"""Evaluation of a (calibrated) S0 transceiver on fresh data (seed 000).

Sensing: target positions (x, y) = R (cos θ, sin θ) from the OMP's soft estimates at the
threshold set for P_fa, scored with GOSPA (α = 2, p = 2, cut-off c; :func:`isackit.metrics.gospa`),
the RMSE of the matched detections (pairs closer than c in the GOSPA assignment), the
detection probability (true targets matched within c) and false estimates per frame; the
false-alarm probability is measured on separate noise-only frames.

Communication: the UE equalises with its (perfectly known) effective channel h_n^T f and
takes hard QPSK decisions (:func:`isackit.signals.constellations.detect_symbols`); SER by
simulation (:func:`isackit.metrics.symbol_error_rate`) with a Wilson 95 % interval.

Calibration accuracy: learned vs true per-element phases (after removing the common phase,
which no observation reveals), gains (after normalising the mean) and positions (after
removing the mean offset), RMS over elements.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ...impairments.base import ArrayModel
from ...metrics import exceedance_probability, gospa, symbol_error_rate
from ...signals.constellations import detect_symbols
from ...signals.random import awgn
from .station import Station
from .transceiver import Transceiver, omp_receiver

__all__ = ["SensingCommMetrics", "evaluate", "aligned_parameters", "parameter_errors", "wilson_interval"]


@dataclass
class SensingCommMetrics:
    """Sums for exact aggregation and the derived metrics (see module doc)."""

    frames: int
    gospa_sq_sum: float        # Σ GOSPA²  (RMS-GOSPA = sqrt(Σ/frames))
    matched_sq_sum: float      # Σ d² over matched pairs
    matched: int
    true_targets: int
    false_estimates: int
    noise_frames: int
    noise_alarms: int
    symbols: int
    symbol_errors: int
    ue_snr_sum: float          # Σ per-frame mean |h^T f|²/σ²

    @property
    def gospa(self) -> float:
        return math.sqrt(self.gospa_sq_sum / max(self.frames, 1))

    @property
    def rmse(self) -> float:
        return math.sqrt(self.matched_sq_sum / self.matched) if self.matched else math.nan

    @property
    def pd(self) -> float:
        return self.matched / max(self.true_targets, 1)

    @property
    def pfa(self) -> float:
        return self.noise_alarms / max(self.noise_frames, 1)

    @property
    def ser(self) -> float:
        return self.symbol_errors / max(self.symbols, 1)

    def as_dict(self) -> dict[str, float]:
        lo, hi = wilson_interval(self.symbol_errors, self.symbols)
        return {"gospa_m": self.gospa, "rmse_m": self.rmse, "pd": self.pd,
                "false_per_frame": self.false_estimates / max(self.frames, 1), "pfa": self.pfa,
                "ser": self.ser, "ser_lo": lo, "ser_hi": hi,
                "ue_snr_db": 10 * math.log10(max(self.ue_snr_sum / max(self.frames, 1), 1e-30))}


def wilson_interval(errors: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion."""
    if n == 0:
        return math.nan, math.nan
    p = errors / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(c - h, 0.0), min(c + h, 1.0)


@torch.no_grad()
def evaluate(transceiver: Transceiver, station: Station, num_scenes: int, seed: int,
             chunk: int = 256, gospa_cutoff: float = 5.0) -> SensingCommMetrics:
    """Sensing and comm metrics of ``transceiver`` on ``num_scenes`` fresh scenes.

    The scenes, noise and noise-only frames come from generators seeded by ``seed``, so every
    method evaluated with the same seed sees the same data.  Batched in chunks of ``chunk``.
    """
    cfg = transceiver.config
    scene_gen = torch.Generator().manual_seed(seed)
    noise_gen = torch.Generator().manual_seed(seed + 1)
    acc = dict(frames=0, gospa_sq_sum=0.0, matched_sq_sum=0.0, matched=0, true_targets=0,
               false_estimates=0, noise_frames=0, noise_alarms=0, symbols=0, symbol_errors=0,
               ue_snr_sum=0.0)
    thr = float(transceiver.threshold)
    done = 0
    while done < num_scenes:
        b = min(chunk, num_scenes - done)
        sc = station.draw_scenes(b, scene_gen)
        f = transceiver.precoder(sc)
        Y = station.sense(f, sc, noise_gen)
        soft = transceiver.detect(Y, sc)
        g = gospa(soft.positions().double(), sc.target_positions().double(), gospa_cutoff, 2.0)
        n_true = sc.target_mask.sum(-1)
        n_match = n_true - g.missed
        acc["frames"] += b
        acc["gospa_sq_sum"] += float((g.distance ** 2).sum())
        acc["matched_sq_sum"] += float(g.localisation.sum())
        acc["matched"] += int(n_match.sum())
        acc["true_targets"] += int(n_true.sum())
        acc["false_estimates"] += int(g.false.sum())
        # noise-only frames: P_fa of the first OMP step at the threshold
        W = awgn(Y.shape, cfg.noise_variance, noise_gen, Y.dtype, Y.device)
        grid = transceiver.grid
        stat = omp_receiver(W, sc.symbols, transceiver.rx, grid, grid.window_start(sc.sector_center), 1, None,
                            cfg.noise_variance).statistic[:, 0]
        acc["noise_frames"] += b
        acc["noise_alarms"] += int(round(float(exceedance_probability(stat, thr)) * b))
        # communication
        h_eff = station.ue_receive(f, sc, None) / sc.symbols                   # (B, N) = h_n^T f
        y = h_eff * sc.symbols + awgn(h_eff.shape, cfg.noise_variance, noise_gen, h_eff.dtype, h_eff.device)
        sent = detect_symbols(sc.symbols, "qpsk")
        got = detect_symbols(y / h_eff, "qpsk")
        acc["symbols"] += sent.numel()
        acc["symbol_errors"] += int(round(float(symbol_error_rate(sent, got)) * sent.numel()))
        acc["ue_snr_sum"] += float((h_eff.abs().pow(2).mean(-1) / cfg.noise_variance).sum())
        done += b
    return SensingCommMetrics(**acc)


def _gain_phase(model: ArrayModel):
    from ...impairments.gain_phase import GainPhaseError

    for imp in model.impairments:
        if isinstance(imp, GainPhaseError):
            return imp.gain.detach().double(), imp.phase.detach().double()
    m = model.num_elements
    return torch.ones(m, dtype=torch.float64), torch.zeros(m, dtype=torch.float64)


def _wrap(phase: torch.Tensor) -> torch.Tensor:
    """Phase wrapped to (-π, π]."""
    return torch.angle(torch.polar(torch.ones_like(phase), phase))


def _circular_mean(phase: torch.Tensor) -> torch.Tensor:
    return torch.angle(torch.polar(torch.ones_like(phase), phase).mean())


@torch.no_grad()
def aligned_parameters(learned: ArrayModel, true: ArrayModel) -> dict[str, torch.Tensor]:
    r"""Per-element learned and true parameters in the frame where they can be compared.

    No observation reveals a common phase, a common gain factor or a common translation of an
    array, so the learned model is aligned to the truth on exactly these before comparing
    (the one implementation behind :func:`parameter_errors` and the learned-vs-true figure):

    * phase: ψ̂_m − φ̄ with φ̄ = arg Σ_m e^{j(ψ̂_m − ψ_m)} (the common phase offset); both
      curves are then shown relative to the truth's circular mean arg Σ_m e^{jψ_m}, wrapped
      to (−180°, 180°];
    * gain (dB): 20 log10|ĝ_m| − mean_m(20 log10|ĝ_m/g_m|);
    * displacement (mm): position minus the nominal ULA position, the learned one shifted by
      the mean of (learned − true) positions.

    Then learned − true is the per-element error whose RMS :func:`parameter_errors` reports.

    Args:
        learned, true: two :class:`ArrayModel` of the same M elements (the S0 arrays:
            displacement then gain-phase; a model without a gain-phase error has unit gains
            and zero phases).

    Returns:
        float64 tensors: ``phase_deg_learned``, ``phase_deg_true``, ``gain_db_learned``,
        ``gain_db_true`` ``(M,)`` and ``displacement_mm_learned``, ``displacement_mm_true``
        ``(M, 3)``.  Not differentiable (evaluation only).
    """
    if learned.num_elements != true.num_elements:
        raise ValueError(f"learned and true arrays differ in size: {learned.num_elements} vs {true.num_elements}")
    gl, pl = _gain_phase(learned)
    gt, pt = _gain_phase(true)
    common = _circular_mean(pl - pt)
    ref = _circular_mean(pt)
    dg = 20 * torch.log10(gl.abs().clamp_min(1e-12) / gt)
    pos_l = learned.positions().detach().double()
    pos_t = true.positions().detach().double()
    nominal = true.geometry.positions.detach().double().to(pos_t.device)
    offset = (pos_l - pos_t).mean(0)
    return {"phase_deg_learned": torch.rad2deg(_wrap(pl - common - ref)),
            "phase_deg_true": torch.rad2deg(_wrap(pt - ref)),
            "gain_db_learned": 20 * torch.log10(gl.abs().clamp_min(1e-12)) - dg.mean(),
            "gain_db_true": 20 * torch.log10(gt),
            "displacement_mm_learned": 1e3 * (pos_l - offset - nominal),
            "displacement_mm_true": 1e3 * (pos_t - nominal)}


@torch.no_grad()
def parameter_errors(learned: ArrayModel, true: ArrayModel) -> dict[str, float]:
    """RMS over elements of learned − true: phase (deg, common phase removed), gain (dB, mean
    removed) and position (mm, mean offset removed) — of :func:`aligned_parameters`."""
    a = aligned_parameters(learned, true)
    dphi = torch.deg2rad(a["phase_deg_learned"] - a["phase_deg_true"])
    dphi = _wrap(dphi)
    dg = a["gain_db_learned"] - a["gain_db_true"]
    dpos = a["displacement_mm_learned"] - a["displacement_mm_true"]
    return {"phase_err_deg": math.degrees(float(dphi.pow(2).mean().sqrt())),
            "gain_err_db": float(dg.pow(2).mean().sqrt()),
            "position_err_mm": float(dpos.pow(2).sum(-1).mean().sqrt())}
