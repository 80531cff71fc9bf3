r"""Evaluation of a (calibrated) S0 transceiver on fresh data (seed 000).

Sensing: target positions (x, y) = R (cos θ, sin θ) from the OMP's soft estimates at the
threshold set for P_fa, scored with GOSPA (α = 2, p = 2, cut-off c; :func:`isackit.metrics.gospa`),
the RMSE of the matched detections (pairs closer than c in the GOSPA assignment), the
detection probability (true targets matched within c) and false estimates per frame; the
false-alarm probability is measured on separate noise-only frames.

Communication: the UE equalises with its (perfectly known) effective channel h_n^T f and
takes hard QPSK decisions (:func:`isackit.signals.constellations.detect_symbols`); SER by
simulation.

Every metric is a ratio of per-frame sums (:class:`RatioSums`), so that devices and batches
aggregate exactly and each metric has a 95 % interval over frames
(:func:`isackit.metrics.ratio_interval`).

Calibration accuracy: learned vs true per-element phases (after removing the common phase,
which no observation reveals), gains (after normalising the mean) and positions (after
removing the mean offset), RMS over elements.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ...impairments.base import ArrayModel
from ...impairments.gain_phase import GainPhaseError
from ...conversions import linear_to_db
from ...metrics import gospa, ratio_interval
from ...seeding import make_generator
from ...signals.constellations import detect_symbols
from ...signals.random import awgn
from .config import EvaluationConfig
from .station import Station
from .transceiver import Transceiver

__all__ = ["SensingCommMetrics", "evaluate", "aligned_parameters", "parameter_errors"]


@dataclass
class RatioSums:
    """Per-frame sums of a ratio metric Σ_f x_f / Σ_f y_f: Σx, Σy, Σx², Σy², Σxy over n
    frames — exact to aggregate over batches and devices, and enough for its 95 % interval
    (:func:`isackit.metrics.ratio_interval`, frames as the independent units)."""

    sx: float = 0.0
    sy: float = 0.0
    sxx: float = 0.0
    syy: float = 0.0
    sxy: float = 0.0
    n: int = 0

    def add(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Add frames with values x ``(B,)`` and weights y ``(B,)``."""
        x, y = x.detach().double().reshape(-1), y.detach().double().reshape(-1)
        self.sx += float(x.sum())
        self.sy += float(y.sum())
        self.sxx += float((x * x).sum())
        self.syy += float((y * y).sum())
        self.sxy += float((x * y).sum())
        self.n += int(x.numel())

    @property
    def value(self) -> float:
        return self.sx / self.sy if self.sy else math.nan

    def interval(self, z: float = 1.96) -> tuple[float, float]:
        return ratio_interval(self.sx, self.sy, self.sxx, self.syy, self.sxy, self.n, z)

    def as_list(self) -> list[float]:
        return [self.sx, self.sy, self.sxx, self.syy, self.sxy, self.n]


#: metric → (its ratio's name in :attr:`SensingCommMetrics.sums`, map from the ratio to the metric)
METRIC_RATIOS = {
    "gospa_m": ("gospa_sq", math.sqrt),              # RMS over frames of GOSPA
    "rmse_m": ("matched_sq", math.sqrt),             # Σ d² over matched pairs / pairs
    "pd": ("detected", float),                       # matched / true targets
    "false_per_frame": ("false", float),
    "pfa": ("alarm", float),                         # noise-only frames above the threshold
    "ser": ("symbol_error", float),
    "ue_snr_db": ("ue_snr", lambda v: linear_to_db(max(v, 1e-30))),
}


@dataclass
class SensingCommMetrics:
    """The evaluation's per-frame sums (:class:`RatioSums`, by name) and the derived metrics
    (module docstring): ``gospa_sq`` (x = GOSPA², y = 1), ``matched_sq`` (x = Σ d² of the
    frame's matched pairs, y = their number), ``detected`` (x = matched, y = true targets),
    ``false`` (x = false estimates, y = 1), ``alarm`` (x = 1[noise-only frame above the
    threshold], y = 1), ``symbol_error`` (x = symbol errors, y = symbols), ``ue_snr``
    (x = mean_n |h_n^T f|²/σ², y = 1)."""

    sums: dict[str, RatioSums] = field(default_factory=lambda: {name: RatioSums() for name, _ in
                                                                  METRIC_RATIOS.values()})

    @property
    def frames(self) -> int:
        return self.sums["gospa_sq"].n

    def value(self, metric: str) -> float:
        """The metric (a key of :data:`METRIC_RATIOS`)."""
        name, fn = METRIC_RATIOS[metric]
        v = self.sums[name].value
        return math.nan if math.isnan(v) else fn(v)

    def interval(self, metric: str, z: float = 1.96) -> tuple[float, float]:
        """The metric's confidence interval over frames (95 % by default)."""
        name, fn = METRIC_RATIOS[metric]
        lo, hi = self.sums[name].interval(z)
        if math.isnan(lo):
            return lo, hi
        return fn(max(lo, 0.0)), fn(max(hi, 0.0))

    def as_dict(self) -> dict[str, float]:
        return {m: self.value(m) for m in METRIC_RATIOS}


@torch.no_grad()
def evaluate(transceiver: Transceiver, station: Station, num_scenes: int, seed: int,
             evaluation: EvaluationConfig | None = None) -> SensingCommMetrics:
    """Sensing and comm metrics of ``transceiver`` on ``num_scenes`` fresh scenes.

    The scenes and the noise (of the frames, the noise-only frames and the UE) come from the
    named streams ``(seed, "scenes")`` and ``(seed, "noise")``, so every method evaluated with
    the same seed sees the same data.  Batched in ``evaluation.batch`` scenes.
    """
    ev = EvaluationConfig() if evaluation is None else evaluation
    sigma2 = transceiver.config.scenario.noise_variance
    scene_gen = make_generator(seed, "scenes")
    noise_gen = make_generator(seed, "noise")
    out = SensingCommMetrics()
    S = out.sums
    thr = float(transceiver.threshold)
    done = 0
    while done < num_scenes:
        b = min(ev.batch, num_scenes - done)
        one = torch.ones(b, dtype=torch.float64)
        sc = station.draw_scenes(b, scene_gen)
        f = transceiver.precoder(sc)
        Y = station.sense(f, sc, noise_gen)
        det = transceiver.detect(Y, sc)
        g = gospa(det.positions().double(), sc.target_positions().double(), ev.gospa_cutoff, 2.0)
        n_true = sc.target_mask.sum(-1)
        n_match = n_true - g.missed
        S["gospa_sq"].add(g.distance ** 2, one)
        S["matched_sq"].add(g.localisation, n_match)
        S["detected"].add(n_match, n_true)
        S["false"].add(g.false, one)
        # noise-only frames: P_fa of the first OMP step at the threshold
        W = awgn(Y.shape, sigma2, noise_gen, Y.dtype, Y.device)
        S["alarm"].add(transceiver.noise_statistic(W, sc) > thr, one)
        # communication
        h_eff = station.ue_receive(f, sc, None) / sc.symbols                   # (B, N) = h_n^T f
        y = h_eff * sc.symbols + awgn(h_eff.shape, sigma2, noise_gen, h_eff.dtype, h_eff.device)
        sent = detect_symbols(sc.symbols, "qpsk")
        got = detect_symbols(y / h_eff, "qpsk")
        S["symbol_error"].add((sent != got).sum(-1), torch.full((b,), float(sent.shape[-1]), dtype=torch.float64))
        S["ue_snr"].add(h_eff.abs().pow(2).mean(-1) / sigma2, one)
        done += b
    return out


def _gain_phase(model: ArrayModel):
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
