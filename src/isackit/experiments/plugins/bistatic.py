r"""Experiment ``bistatic`` (system S1, seed 001): PARAMING, IFFT-C2VNN, grid baselines, CRB.

Panels (the sweep point's ``panel``; ``x`` is the panel's swept value, ``param`` a second one):

* ``complexity`` (seed Fig. 3) — operation counts vs the number of antennas M = M_t = M_r
  (``x``), :mod:`isackit.systems.bistatic.complexity`; metric ``operations``.
* ``accuracy`` (seed Figs. 4, 5 and 6) — random scenes of the S1 prior at SNR ``x`` (dB): the
  methods in ``methods`` on the LS CSI; metrics ``aoa_mse_rad2``, ``aod_mse_rad2`` (rad²),
  ``delay_mse_tres2`` (T_res²) after optimal assignment to the true paths, ``miss_rate``
  (paths an estimator did not return), ``outlier_rate`` (paths with an angle error above
  ``outlier_angle_deg`` or a ToA error above ``outlier_delay``·T_res, or missed); bound rows ``CRB`` (mean over the scenes of the
  per-path CRB, :func:`isackit.bounds.channel.crb_bistatic`).  Fig. 5 (the SNR-training
  study) reads the ``IFFT-C2VNN (s dB)`` specialists and the mixed model from this panel.
* ``latency`` (seed Table II) — per-scene latency at batch 1 and batched throughput
  (``latency.threads`` threads); metrics ``latency_ms``, ``throughput_per_s``.
* ``timing_offset`` (seed Fig. 7) — the CSI carries a timing offset δ = ``param``·T_res
  (applied to the channel, before the noise); PARAMING and IFFT-C2VNN trained with δ = 0.
  ``delay_bias_tres`` is the mean signed ToA error.
* ``resolution`` (seed Fig. 8) — two paths whose AoAs (or AoDs) differ by ``param``·HPBW_r,
  the other parameters given in ``resolution``; PARAMING against the CRB (averaged over the
  random relative gain phase); ``resolved_rate``: both paths within half the separation.
* ``doppler`` (seed Fig. 9) — S sub-frames with Dopplers ν ~ U[-v_max/λ, v_max/λ];
  PARAMING per sub-frame (the seed), PARAMING with the shared geometry (ours) and IFFT-C2VNN's
  lightweight variant; metrics ``doppler_mse_hz2`` (bound: the Doppler CRB) and
  ``doppler_mae_hz``.

Methods: ``paraming`` → "PARAMING"; ``root_music_2d`` → "RootMUSIC-2D" (angles only);
``bartlett``, ``music``, ``dml`` → "Bartlett (grid)", "MUSIC (grid)", "DML (AP, grid)" — the
seed's grid-only baselines on 1° × 1° × T_res/4 grids (``grids``), MUSIC with
spatial–frequency smoothing, DML the K-source alternating-projection estimator (the seed's
"DML" score is single-source, i.e. Bartlett, for one CSI snapshot);
``ifft_c2vnn`` → "IFFT-C2VNN" (W = ``c2vnn.window``, mixed-SNR training);
``ifft_c2vnn_w3`` → "IFFT-C2VNN (W=3)" (the peak-restricted variant, ``c2vnn.variant_window``);
``ifft_c2vnn_specialists`` → "IFFT-C2VNN (s dB)" for s in ``c2vnn.specialist_snr_db``.
IFFT-C2VNN models are trained once per setting through the model store (``c2vnn.model_dir``)
and reported as the run's artifacts.

All bounds and errors are in radians, T_res and Hz; the figures convert (seed axes: MSE in
rad² for angles, RMSE/T_res for the ToA, MAE in Hz for Doppler).
"""

from __future__ import annotations

import math
import time
from typing import Any, Literal

import torch
from pydantic import Field, field_validator, model_validator

from ..._config import StrictModel
from ...bounds.channel import crb_bistatic
from ...estimators import SearchGrid, root_music_2d
from ...estimators.joint import angle_angle_delay_bartlett, angle_angle_delay_music
from ...estimators.joint_likelihood import angle_angle_delay_dml
from ...estimators.parametric import _check_sizes, paraming, paraming_doppler
from ...learning.c2vnn import C2VNNConfig
from ...learning.store import ModelStore, default_model_root
from ...metrics import assignment_errors
from ...systems.bistatic import ScenarioConfig, arrays, channel, observe, pair_paths, sample_paths
from ...systems.bistatic.scenario import observe_per_symbol
from ...systems.bistatic.complexity import operation_counts
from ...systems.bistatic.learned import C2VNNTraining, c2vnn_doppler, c2vnn_paths, trained_c2vnn
from ..config import ExperimentConfig, RelativePath, inside
from ..registry import Experiment, register_experiment
from ..units import Row, UnitResult, WorkUnit, bound_row, mean_row

__all__ = ["BistaticConfig", "BistaticExperiment", "method_names"]

Panel = Literal["complexity", "accuracy", "latency", "timing_offset", "resolution", "doppler"]
Method = Literal["paraming", "root_music_2d", "bartlett", "music", "dml", "ifft_c2vnn", "ifft_c2vnn_w3",
                 "ifft_c2vnn_specialists"]
PANELS = ("complexity", "accuracy", "latency", "timing_offset", "resolution", "doppler")
CRB_NAME = "CRB"


class ParamingSettings(StrictModel):
    """PARAMING's sub-array sizes (M_r', M_t', N'; default ⌈M/2⌉, ⌈N/2⌉), phase fit and SVD."""

    sub_sizes: list[int] | None = None
    phase_fit: Literal["rank1", "direct"] = "rank1"
    power_iterations: int = Field(4, ge=0)
    oversampling: int = Field(3, ge=0)


class GridSettings(StrictModel):
    """The grid baselines: 1° AoA/AoD grids over ±``angle_max_deg``, ToA step ``delay_step``·T_res
    over [0, T_cp]; MUSIC smoothing windows (M_r', M_t', N'); at most ``max_trials`` scenes per
    unit go through the grid methods (None: all)."""

    angle_step_deg: float = Field(1.0, gt=0)
    angle_max_deg: float = Field(90.0, gt=0, le=90)
    delay_step: float = Field(0.25, gt=0)
    music_windows: list[int] = [5, 4, 16]
    max_trials: int | None = Field(None, ge=1)


class C2VNNSettings(StrictModel):
    """IFFT-C2VNN: architecture (sizes ours), training (seed: Adam, batch 128, 300 epochs)."""

    window: int = Field(7, ge=1)
    variant_window: int = Field(3, ge=1)
    conv_channels: list[int] = [8, 16]
    kernel: int = Field(3, ge=1)
    hidden: int = Field(64, ge=1)
    epochs: int = Field(300, ge=1)
    batch: int = Field(128, ge=1)
    lr: float = Field(3e-4, gt=0)
    train_scenes: int = Field(10_000, ge=1)
    validation_scenes: int = Field(1_000, ge=1)
    train_amplitude: Literal["unit", "swerling1"] = "swerling1"
    mixed_snr_db: list[float] = [-20.0, 30.0]
    specialist_snr_db: list[float] = [-10.0, 0.0, 10.0, 20.0, 30.0]
    model_dir: RelativePath = "bistatic"  # a folder inside the model cache (learning.store.default_model_root)

    def architecture(self, window: int) -> C2VNNConfig:
        return C2VNNConfig(window=window, conv_channels=self.conv_channels, kernel=self.kernel, hidden=self.hidden)

    def training(self, snr_db: list[float]) -> C2VNNTraining:
        return C2VNNTraining(snr_db=snr_db, num_scenes=self.train_scenes, validation_scenes=self.validation_scenes,
                             train_amplitude=self.train_amplitude, epochs=self.epochs, batch=self.batch, lr=self.lr)


class TimingOffsetSettings(StrictModel):
    delta: list[float] = [0.0, 0.5, 1.0, 2.0]          # δ / T_res
    snr_db: list[float] = Field([0.0, 10.0, 20.0, 30.0], min_length=1)


class ResolutionSettings(StrictModel):
    fractions: list[float] = Field([1.0, 0.5, 0.25], min_length=1)   # separation / HPBW_r
    center_deg: float = 10.0
    aod_deg: float = 20.0
    delay: float = Field(8.0, gt=0)          # centre ToA / T_res
    delay_gap: float = Field(0.25, ge=0)     # ToA difference / T_res
    separation: Literal["aoa", "aod"] = "aoa"
    snr_db: list[float] = Field([0.0, 10.0, 20.0, 30.0, 40.0], min_length=1)


class DopplerSettings(StrictModel):
    """``channel = "subframe"``: constant within each sub-frame (the model of the bound);
    ``"symbol"``: Doppler per OFDM symbol, LS per sub-frame (the estimate no longer fits the
    model exactly; the extra error is the model mismatch)."""

    snr_db: list[float] = Field([-10.0, 0.0, 10.0, 20.0, 30.0], min_length=1)
    channel: Literal["subframe", "symbol"] = "subframe"
    methods: list[Literal["per_subframe", "shared_geometry", "ifft_c2vnn"]] = [
        "per_subframe", "shared_geometry", "ifft_c2vnn"]


class LatencySettings(StrictModel):
    batch: int = Field(64, ge=1)
    repeats: int = Field(5, ge=1)
    threads: int = Field(2, ge=1)
    snr_db: float = 20.0


class ComplexitySettings(StrictModel):
    antennas: list[int] = [4, 8, 16, 32, 64]
    windows: list[int] = [3, 5, 7]


class BistaticConfig(ExperimentConfig):
    """Spec of the ``bistatic`` experiment (defaults: the full profile; Table I in ``scenario``)."""

    panels: list[Panel] = list(PANELS)
    snr_db: list[float] = Field([-20.0, -15.0, -10.0, -5.0, 0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0], min_length=1)
    methods: list[Method] = ["paraming", "root_music_2d", "bartlett", "music", "dml", "ifft_c2vnn",
                             "ifft_c2vnn_w3", "ifft_c2vnn_specialists"]
    scenario: ScenarioConfig = ScenarioConfig()
    paraming: ParamingSettings = ParamingSettings()
    grids: GridSettings = GridSettings()
    c2vnn: C2VNNSettings = C2VNNSettings()
    timing_offset: TimingOffsetSettings = TimingOffsetSettings()
    resolution: ResolutionSettings = ResolutionSettings()
    doppler: DopplerSettings = DopplerSettings()
    latency: LatencySettings = LatencySettings()
    complexity: ComplexitySettings = ComplexitySettings()
    outlier_angle_deg: float = Field(5.0, gt=0)     # ≈ HPBW_r / 2 for M_r = 10
    outlier_delay: float = Field(0.5, gt=0)         # in T_res

    @field_validator("panels", "methods")
    @classmethod
    def _unique(cls, v):
        if len(set(v)) != len(v):
            raise ValueError(f"repeated entries in {v}")
        return v

    @model_validator(mode="after")
    def _sizes(self) -> BistaticConfig:
        sc = self.scenario
        subs = self.paraming.sub_sizes
        if subs is not None and len(subs) != 3:
            raise ValueError(f"paraming.sub_sizes must be [M_r', M_t', N'], got {subs}")
        _check_sizes(sc.num_subcarriers, sc.num_rx, sc.num_tx, None if subs is None else tuple(subs), sc.num_paths)
        _check_sizes(sc.num_subcarriers, sc.num_rx, sc.num_tx, None if subs is None else tuple(subs), 2)
        mr, mt, nn = self.grids.music_windows
        if not (1 <= mr <= sc.num_rx and 1 <= mt <= sc.num_tx and 1 <= nn <= sc.num_subcarriers):
            raise ValueError(f"grids.music_windows {self.grids.music_windows} exceed the arrays / subcarriers")
        for w in (self.c2vnn.window, self.c2vnn.variant_window):
            if w % 2 == 0 or w > sc.num_subcarriers:
                raise ValueError(f"IFFT-C2VNN windows must be odd and ≤ N, got {w}")
        return self


# ---------------------------------------------------------------------------------------
# methods
# ---------------------------------------------------------------------------------------
def method_names(config: BistaticConfig) -> dict[str, str]:
    """Result-table names of the configured methods (the labels of every curve)."""
    names = {"paraming": "PARAMING", "root_music_2d": "RootMUSIC-2D", "bartlett": "Bartlett (grid)",
             "music": "MUSIC (grid)", "dml": "DML (AP, grid)", "ifft_c2vnn": "IFFT-C2VNN",
             "ifft_c2vnn_w3": f"IFFT-C2VNN (W={config.c2vnn.variant_window})"}
    out = {m: names[m] for m in config.methods if m in names}
    if "ifft_c2vnn_specialists" in config.methods:
        for s in config.c2vnn.specialist_snr_db:
            out[f"specialist:{s:g}"] = f"IFFT-C2VNN ({s:g} dB)"
    return out


def _grids(config: BistaticConfig) -> tuple[SearchGrid, SearchGrid, SearchGrid]:
    g, sc = config.grids, config.scenario
    a = SearchGrid.degrees(-g.angle_max_deg, g.angle_max_deg, g.angle_step_deg, name="aoa")
    d = SearchGrid.degrees(-g.angle_max_deg, g.angle_max_deg, g.angle_step_deg, name="aod")
    tres = sc.delay_resolution
    t = SearchGrid(0.0, sc.cp_bins * tres, g.delay_step * tres, name="delay")
    return a, d, t


def _paraming_kw(config: BistaticConfig) -> dict[str, Any]:
    p = config.paraming
    return dict(sub_sizes=None if p.sub_sizes is None else tuple(p.sub_sizes), phase_fit=p.phase_fit,
                power_iterations=p.power_iterations, oversampling=p.oversampling)


_STORES: dict[str, ModelStore] = {}


def _c2vnn(config: BistaticConfig, key: str, unit: WorkUnit | None, artifacts: list):
    """The trained IFFT-C2VNN of ``key`` ("mixed", "variant" or "specialist:<snr>")."""
    c = config.c2vnn
    root = inside(default_model_root(), c.model_dir)
    store = _STORES.setdefault(str(root), ModelStore(root))
    if key == "mixed":
        arch, snr, label = c.architecture(c.window), c.mixed_snr_db, "mixed SNR"
    elif key == "variant":
        arch, snr, label = c.architecture(c.variant_window), c.mixed_snr_db, f"mixed SNR, W={c.variant_window}"
    else:
        s = float(key.split(":", 1)[1])
        arch, snr, label = c.architecture(c.window), [s], f"{s:g} dB"
    progress = getattr(unit, "progress", None) if unit is not None else None
    model, record = trained_c2vnn(store, config.scenario, arch, c.training(snr), config.seed, progress=progress,
                                  label=label)
    if dict(record) not in artifacts:
        artifacts.append(dict(record))
    return model


def _estimates(config: BistaticConfig, key: str, Hhat: torch.Tensor, unit, artifacts: list) -> torch.Tensor:
    """``(B, K, 3)`` (θ, φ, τ) or ``(B, K, 2)`` for RootMUSIC-2D; NaN rows = not found."""
    sc = config.scenario
    rx, tx = arrays(sc)
    K, df = sc.num_paths, sc.subcarrier_spacing_hz
    if key == "paraming":
        return paraming(Hhat, rx, tx, K, df, **_paraming_kw(config)).estimates
    if key == "root_music_2d":
        return root_music_2d(Hhat, K).estimates
    if key in ("bartlett", "music", "dml"):
        a, d, t = _grids(config)
        if key == "bartlett":
            return angle_angle_delay_bartlett(Hhat, rx, tx, K, a, d, t, df, grid_only=True).estimates
        if key == "music":
            mr, mt, nn = config.grids.music_windows
            return angle_angle_delay_music(Hhat, rx, tx, K, a, d, t, df, grid_only=True, rx_subarray=mr,
                                           tx_subarray=mt, subband=nn).estimates
        return angle_angle_delay_dml(Hhat, rx, tx, K, a, d, t, df, grid_only=True).estimates
    model_key = {"ifft_c2vnn": "mixed", "ifft_c2vnn_w3": "variant"}.get(key, key)
    return c2vnn_paths(_c2vnn(config, model_key, unit, artifacts), Hhat, sc)


def _errors(est: torch.Tensor, truth: torch.Tensor, tres: float, df: float) -> torch.Tensor:
    """Assignment errors ``(B, K, P)`` with delays in T_res (angles in rad)."""
    P = est.shape[-1]
    e = est.clone()
    t = truth[..., :P].clone()
    if P == 3:
        e[..., 2] = e[..., 2] / tres
        t[..., 2] = t[..., 2] / tres
        weights = torch.tensor([20.0, 20.0, 1.0], dtype=e.dtype)  # 0.05 rad ≈ 1 T_res
        period = torch.tensor([2 * math.pi, 2 * math.pi, 1.0 / (df * tres)], dtype=e.dtype)
    else:
        weights, period = None, 2 * math.pi
    return assignment_errors(e, t, weights=weights, period=period)


def _error_rows(name: str, err: torch.Tensor, trials: int, config: BistaticConfig) -> list[Row]:
    """MSE rows per parameter, the miss rate, and the outlier rate: the fraction of paths with
    an angle error above ``outlier_angle_deg`` or a ToA error above ``outlier_delay`` T_res
    (missed paths count as outliers)."""
    rows = [mean_row(name, "aoa_mse_rad2", err[..., 0] ** 2, trials),
            mean_row(name, "aod_mse_rad2", err[..., 1] ** 2, trials)]
    lim = torch.tensor([math.radians(config.outlier_angle_deg)] * 2 + [config.outlier_delay], dtype=err.dtype)
    P = err.shape[-1]
    if P > 2:
        rows.append(mean_row(name, "delay_mse_tres2", err[..., 2] ** 2, trials))
    rows.append(mean_row(name, "miss_rate", torch.isnan(err).any(-1).double(), trials))
    out = (err.abs() > lim[:P]).any(-1) | torch.isnan(err).any(-1)
    rows.append(mean_row(name, "outlier_rate", out.double(), trials))
    return rows


def _crb_rows(config: BistaticConfig, paths, s2: torch.Tensor, pilots: torch.Tensor | None,
              metrics=("aoa", "aod", "delay")) -> list[Row]:
    sc = config.scenario
    rx, tx = arrays(sc)
    kw = dict(num_pilots=sc.symbols_per_subframe) if sc.pilots == "orthogonal" else dict(pilots=pilots)
    crb = crb_bistatic(rx, tx, paths.aoa, paths.aod, paths.delay, paths.gain, sc.ofdm, s2, **kw)
    out = []
    names = {"aoa": "aoa_mse_rad2", "aod": "aod_mse_rad2", "delay": "delay_mse_tres2"}
    for p in metrics:
        v = crb.variance(p)
        if p == "delay":
            v = v / sc.delay_resolution ** 2
        out.append(bound_row(CRB_NAME, names[p], float(v.mean())))
    return out


def _result(rows: list[Row], artifacts: list) -> UnitResult:
    """The unit's rows and the model files (artifacts) that produced them."""
    return UnitResult(rows=rows, artifacts=artifacts)


# ---------------------------------------------------------------------------------------
# panels
# ---------------------------------------------------------------------------------------
def _accuracy(config: BistaticConfig, unit: WorkUnit, g: torch.Generator):
    sc, B = config.scenario, unit.trials
    snr = float(unit.point["x"])
    paths = sample_paths(sc, B, g)
    Hhat, X, s2 = observe(sc, channel(sc, paths), snr, g)
    rows, artifacts = [], []
    truth = paths.truth
    for key, name in method_names(config).items():
        n = B
        H = Hhat
        if key in ("bartlett", "music", "dml") and config.grids.max_trials is not None:
            n = min(B, config.grids.max_trials)
            H = Hhat[:n]
        est = _estimates(config, key, H, unit, artifacts)
        err = _errors(est, truth[:n], sc.delay_resolution, sc.subcarrier_spacing_hz)
        rows += _error_rows(name, err, n, config)
    rows += _crb_rows(config, paths, s2, X)
    return _result(rows, artifacts)


def _timing_offset(config: BistaticConfig, unit: WorkUnit, g: torch.Generator):
    sc, B = config.scenario, unit.trials
    snr, delta = float(unit.point["x"]), float(unit.point["param"])
    paths = sample_paths(sc, B, g)
    Hhat, X, s2 = observe(sc, channel(sc, paths, timing_offset=delta * sc.delay_resolution), snr, g)
    rows, artifacts = [], []
    names = method_names(config)
    for key in ("paraming", "ifft_c2vnn"):
        if key not in names:
            continue
        est = _estimates(config, key, Hhat, unit, artifacts)
        err = _errors(est, paths.truth, sc.delay_resolution, sc.subcarrier_spacing_hz)
        rows += _error_rows(names[key], err, B, config)
        rows.append(mean_row(names[key], "delay_bias_tres", err[..., 2], B))
    rows += _crb_rows(config, paths, s2, X)
    return _result(rows, artifacts)


def _resolution(config: BistaticConfig, unit: WorkUnit, g: torch.Generator):
    sc0, B = config.scenario, unit.trials
    r = config.resolution
    sc = sc0.model_copy(update={"num_paths": 2})
    snr, frac = float(unit.point["x"]), float(unit.point["param"])
    sep = frac * sc.half_power_beamwidth_rx()
    paths = pair_paths(sc, B, g, sep, math.radians(r.center_deg), math.radians(r.aod_deg),
                       r.delay * sc.delay_resolution, r.delay_gap * sc.delay_resolution, r.separation)
    Hhat, X, s2 = observe(sc, channel(sc, paths), snr, g)
    rx, tx = arrays(sc)
    est = paraming(Hhat, rx, tx, 2, sc.subcarrier_spacing_hz, **_paraming_kw(config)).estimates
    err = _errors(est, paths.truth, sc.delay_resolution, sc.subcarrier_spacing_hz)
    rows = _error_rows("PARAMING", err, B, config)
    col = 0 if r.separation == "aoa" else 1
    rows.append(mean_row("PARAMING", "resolved_rate", (err[..., col].abs() < sep / 2).all(-1).double(), B))
    sub = config.model_copy(update={"scenario": sc})
    rows += _crb_rows(sub, paths, s2, X)
    return rows


def _doppler(config: BistaticConfig, unit: WorkUnit, g: torch.Generator):
    sc, B = config.scenario, unit.trials
    snr = float(unit.point["x"])
    paths = sample_paths(sc, B, g)
    if config.doppler.channel == "subframe":
        Hhat, X, s2 = observe(sc, channel(sc, paths, subframes=True), snr, g)  # (B, S, N, M_r, M_t)
    else:
        Hhat, s2 = observe_per_symbol(sc, paths, snr, g)
        X = None
    rx, tx = arrays(sc)
    truth = torch.cat([paths.truth, paths.doppler[..., None]], -1)
    rows, artifacts = [], []
    labels = {"per_subframe": "PARAMING", "shared_geometry": "PARAMING (shared geometry)",
              "ifft_c2vnn": "IFFT-C2VNN"}
    for m in config.doppler.methods:
        if m == "ifft_c2vnn":
            est = c2vnn_doppler(_c2vnn(config, "mixed", unit, artifacts), Hhat, sc)
        else:
            est = paraming_doppler(Hhat, rx, tx, sc.num_paths, sc.subcarrier_spacing_hz, sc.subframe_period,
                                   method=m, **_paraming_kw(config)).estimates
        # assignment on (θ, φ, τ/T_res); the Doppler error is that of the assigned path
        e = est.clone()
        e[..., 2] = e[..., 2] / sc.delay_resolution
        t = truth.clone()
        t[..., 2] = t[..., 2] / sc.delay_resolution
        w = torch.tensor([20.0, 20.0, 1.0, 0.0], dtype=e.dtype)
        err = assignment_errors(e, t, weights=w)
        nu_err = err[..., 3]
        rows += [mean_row(labels[m], "doppler_mse_hz2", nu_err ** 2, B),
                 mean_row(labels[m], "doppler_mae_hz", nu_err.abs(), B),
                 mean_row(labels[m], "aoa_mse_rad2", err[..., 0] ** 2, B)]
    kw = dict(pilots=X) if (sc.pilots == "qpsk" and X is not None) else dict(num_pilots=sc.symbols_per_subframe)
    crb = crb_bistatic(rx, tx, paths.aoa, paths.aod, paths.delay, paths.gain, sc.ofdm, s2,
                       dopplers=paths.doppler, subframe_period=sc.subframe_period, num_subframes=sc.num_subframes,
                       **kw)
    rows.append(bound_row(CRB_NAME, "doppler_mse_hz2", float(crb.variance("doppler").mean())))
    rows.append(bound_row(CRB_NAME, "aoa_mse_rad2", float(crb.variance("aoa").mean())))
    return _result(rows, artifacts)


def _complexity(config: BistaticConfig, unit: WorkUnit) -> list[Row]:
    M = int(unit.point["x"])
    sc = config.scenario
    c = config.c2vnn
    ops = operation_counts(M, M, sc.num_subcarriers, sc.num_paths, windows=config.complexity.windows,
                           config=c.architecture(c.window))
    return [mean_row(name, "operations", torch.tensor([v], dtype=torch.float64), 1) for name, v in ops.items()]


def _time(fn, repeats: int) -> float:
    fn()  # warm-up (caches, lazy imports)
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _latency(config: BistaticConfig, unit: WorkUnit, g: torch.Generator):
    sc, lat = config.scenario, config.latency
    B = lat.batch
    paths = sample_paths(sc, B, g)
    Hhat, _, _ = observe(sc, channel(sc, paths), lat.snr_db, g)
    rows, artifacts = [], []
    previous = torch.get_num_threads()
    torch.set_num_threads(lat.threads)
    try:
        for key, name in method_names(config).items():
            if key.startswith("specialist:"):
                continue
            grid = key in ("bartlett", "music", "dml")
            nb = min(B, 4) if grid else B  # the grid methods take seconds per scene
            _estimates(config, key, Hhat[:1], unit, artifacts)  # trains / loads a model outside the timing
            one = _time(lambda k=key: _estimates(config, k, Hhat[0], unit, artifacts), 1 if grid else lat.repeats)
            many = _time(lambda k=key, n=nb: _estimates(config, k, Hhat[:n], unit, artifacts),
                         1 if grid else max(1, lat.repeats // 2))
            rows.append(mean_row(name, "latency_ms", torch.tensor([1e3 * one]), 1))
            rows.append(mean_row(name, "throughput_per_s", torch.tensor([nb / many]), 1))
    finally:
        torch.set_num_threads(previous)
    return _result(rows, artifacts)


@register_experiment("bistatic", config_model=BistaticConfig,
                     description="S1: bistatic ISAC — PARAMING, IFFT-C2VNN, grid baselines vs the CRB (seed 001)")
class BistaticExperiment(Experiment):
    """Seed 001 Figs. 3-9 and Table II (see the module docstring)."""

    x_axis = "x"
    generic_figures = False  # the seed-style figures below cover every panel

    def points(self, config: BistaticConfig) -> list[dict[str, Any]]:
        """Points ``{panel, x, param}`` (``x``: SNR in dB, or M for ``complexity``; ``param``:
        δ/T_res for ``timing_offset``, the separation / HPBW for ``resolution``, else 0)."""
        pts: list[dict[str, Any]] = []
        for panel in config.panels:
            if panel == "complexity":
                pts += [dict(panel=panel, x=float(m), param=0.0) for m in config.complexity.antennas]
            elif panel == "accuracy":
                pts += [dict(panel=panel, x=float(s), param=0.0) for s in config.snr_db]
            elif panel == "latency":
                pts.append(dict(panel=panel, x=0.0, param=0.0))
            elif panel == "timing_offset":
                pts += [dict(panel=panel, x=float(s), param=float(d))
                        for d in config.timing_offset.delta for s in config.timing_offset.snr_db]
            elif panel == "resolution":
                pts += [dict(panel=panel, x=float(s), param=float(f))
                        for f in config.resolution.fractions for s in config.resolution.snr_db]
            elif panel == "doppler":
                pts += [dict(panel=panel, x=float(s), param=0.0) for s in config.doppler.snr_db]
        return pts

    def run_unit(self, config: BistaticConfig, unit: WorkUnit, device: torch.device):
        panel = unit.point["panel"]
        if panel in ("complexity", "latency") and unit.chunk_index > 0:
            return []  # computed once per point, not per Monte Carlo chunk
        g = unit.generator("cpu")
        if panel == "complexity":
            return _complexity(config, unit)
        if panel == "latency":
            return _latency(config, unit, g)
        return {"accuracy": _accuracy, "timing_offset": _timing_offset, "resolution": _resolution,
                "doppler": _doppler}[panel](config, unit, g)

    def figures(self, df, meta: dict, out_dir, run_dir) -> list:
        """Seed-style figures (Figs. 3-9, Table II): :mod:`.bistatic_figures`."""
        from .bistatic_figures import bistatic_figures

        return bistatic_figures(df, meta, out_dir, run_dir)

    def summary(self, df):
        """Headline table: per method, RMSE/√CRB per parameter at the accuracy panel's SNRs."""
        from .bistatic_figures import summary_table

        return summary_table(df)
