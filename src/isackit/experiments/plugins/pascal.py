r"""Experiment ``pascal`` (system S3, seed 003): PASCAL — DLDD localisation (MLE, AO-ML, MUSIC,
G-ML) and MRC sum rate under random gain-phase errors, against the average CRLB and the
average-SDR analysis; JLDD over growing windows.

Sweep points ``{panel, case, variant, x}``; panels (one per seed figure, plus the efficiency
table of the specification's B2):

* ``efficiency`` — drone 1 alone, L_p = L pilots: MLE RMSE vs the seed's average CRLB for the
  error laws in ``efficiency.laws`` (``case``: ``gaussian`` = CN(μ, v) with the moments of
  the default law, ``rice_von_mises`` = the default law, ``balanced`` = Rice × von Mises with
  σ = ``efficiency.balanced_sigma``), coherence ``variant``, SNR ``x`` (dB).
* ``fig2`` — histograms of the MLE estimates of drone 1 at ``fig2.snr_db`` (bins in units of
  √CRLB around the truth; ``variant`` = replica, pooled by the figure), with the sample mean
  and variance for the fitted Gaussian.
* ``fig4`` — drones ``fig4.drones``, the four gain/phase cases of ``fig4.cases`` (``case``),
  L_p in ``fig4.num_pilots`` (``variant``), SNR ``x``: MLE RMSE per parameter with the CRLB;
  simulated SDR with the analytic 2nd- and 1st-order SDR (angle errors with the CRLB's
  variances, the seed's "derived" curves) and the 2nd order with the MLE's own error mean and
  variance.
* ``fig5`` — drones ``fig5.drones`` with d_3 = 100 m and d_1 = ratio·100 m (``case``), SNR
  (``variant``), power split ρ_1 = ``x``: per-drone MLE RMSE and CRLB, SDR simulated and
  analytic; ``fig5_bound`` — CRLB and analytic SDR alone on the finer ``fig5.bound_rho``.
* ``fig6`` — drones ``fig6.drones``, SNR ``x``: MLE, AO-ML, MUSIC and G-ML — RMSE, simulated SDR,
  analytic 2nd/1st-order SDR with each method's empirical error mean and variance; CRLB and
  the G-ML bound; ``fig6_fixed`` — analytic and Monte Carlo SDR vs the angle-error standard
  deviation ``x`` (degrees) at a fixed SNR (``case``) (the X4 check).
* ``fig7`` — AO-ML convergence, drones ``fig7.drones``, a single pilot, ``fig7.snr_db``: per
  iteration i the angle RMSE, the mean ℓ and the fraction of trials whose stop rule (13) was
  met (metrics ``…@ii``).
* ``fig8`` — as fig4 with the larger errors ``fig8`` (ν, σ, κ), for the arrays ``fig8.arrays``
  (``case``).
* ``jldd`` (Figs. 9 and 10) — one subframe, drones ``jldd.drones``, errors ``case`` ∈
  {``none``, ``errors``}, SNR ``x``: MLE-MLE and MUSIC-MLE after the windows ``jldd.windows``
  (metrics ``…@nnn``): RMSE, the SER of the symbols detected in the last ``jldd.ser_block``
  windows up to n, the cumulative SER; the DLDD reference AO-ML (single pilot + MRC) and the
  CRLB with the window's symbols known.

Units: angles in degrees, Dopplers in Hz, rates in bits/s/Hz.  Bounds rows: ``CRLB`` (the seed's
average CRLB), ``G-ML bound``; analytic SDR rows are named by their order and by the error
statistics they use.  All randomness comes from the unit's generator.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Literal

import torch
from pydantic import Field, model_validator

from ..._config import StrictModel
from ...bounds.rate import sum_rate_monte_carlo
from ...bounds.statistical import average_crlb
from ...estimators.jldd import mle_mle, mrc_detect, music_mle
from ...estimators.statistical import KnownPilots, ao_ml, music_doppler, statistical_mle
from ...systems.pascal import (
    ScenarioConfig,
    analytic_sum_rate,
    build_world,
    crlb,
    dldd_sum_rate,
    genie_bound,
    pilot_observations,
    subframe_observations,
)
from ..config import ExperimentConfig
from ..registry import Experiment, register_experiment
from ..units import Row, WorkUnit, bound_row, mean_row, rmse_row

__all__ = ["PascalConfig", "PascalExperiment"]

Panel = Literal["efficiency", "fig2", "fig4", "fig5", "fig6", "fig7", "fig8", "jldd"]
PANELS = ("efficiency", "fig2", "fig4", "fig5", "fig6", "fig7", "fig8", "jldd")
Start = Literal["aoml", "init", "music"]
PARAMS = ("phi", "theta", "f")
UNITS = {"phi": "deg", "theta": "deg", "f": "hz"}
CRLB = "CRLB"


class EfficiencySettings(StrictModel):
    drones: list[int] = [1]
    power_split: list[float] | None = None   # ρ_k (default 1/K); Σ ρ_k = 1
    laws: list[Literal["gaussian", "rice_von_mises", "balanced"]] = ["gaussian", "rice_von_mises", "balanced"]
    balanced_sigma: float = Field(0.3, gt=0)
    coherences: list[Literal["frame", "signal"]] = ["frame"]
    snr_db: list[float] = Field([0.0, 10.0, 20.0, 30.0], min_length=1)


class Fig2Settings(StrictModel):
    drones: list[int] = [1]
    snr_db: float = 10.0
    replicas: int = Field(10, ge=1)
    bins: int = Field(40, ge=4)
    span: float = Field(6.0, gt=0)       # half-width of the histogram in √CRLB units


class GainPhaseCase(StrictModel):
    name: str
    nu: float = Field(ge=0)
    sigma: float = Field(gt=0)
    kappa: float = Field(gt=0)


class Fig4Settings(StrictModel):
    drones: list[int] = [2, 3]
    power_split: list[float] | None = None   # ρ_k (default 1/K); Σ ρ_k = 1
    cases: list[GainPhaseCase] = [GainPhaseCase(name="small ν (1.2)", nu=1.2, sigma=0.1, kappa=10.0),
                                  GainPhaseCase(name="large ν (1.6)", nu=1.6, sigma=0.1, kappa=10.0),
                                  GainPhaseCase(name="small κ (5)", nu=1.0, sigma=0.1, kappa=5.0),
                                  GainPhaseCase(name="large κ (20)", nu=1.0, sigma=0.1, kappa=20.0)]
    num_pilots: list[int | None] = [None]      # None: L (all pilots of the frame)


class Fig5Settings(StrictModel):
    drones: list[int] = [1, 3]
    range_ratios: list[float] = [1.0, 3.0, 5.0]   # d_1 / d_3, d_3 = the drone table's range
    snr_db: list[float] = [10.0]
    rho: list[float] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    bound_snr_db: list[float] = [0.0, 10.0, 20.0]
    bound_rho: list[float] = [0.05 * i for i in range(1, 20)]

    @model_validator(mode="after")
    def _rho(self) -> Fig5Settings:
        for r in self.rho + self.bound_rho:
            if not 0 < r < 1:
                raise ValueError(f"fig5 power splits ρ_1 must lie in (0, 1), got {r}")
        return self


class Fig6Settings(StrictModel):
    drones: list[int] = [1, 3]
    power_split: list[float] | None = None   # ρ_k (default 1/K); Σ ρ_k = 1
    methods: list[Literal["mle", "aoml", "music", "genie"]] = ["mle", "aoml", "music", "genie"]
    genie_draws: int = Field(200, ge=1)
    fixed_snr_db: list[float] = [10.0, 30.0]
    fixed_std_deg: list[float] = [0.25, 0.5, 1.0, 2.0, 3.0, 5.0]
    fixed_drones: list[list[int]] = [[1, 3], [2, 3]]
    fixed_draws: int = Field(20000, ge=1)


class Fig7Settings(StrictModel):
    drones: list[int] = [2, 3]
    power_split: list[float] | None = None   # ρ_k (default 1/K); Σ ρ_k = 1
    snr_db: float = 10.0
    num_pilots: int = Field(1, ge=1)


class Fig8Settings(StrictModel):
    drones: list[int] = [2, 3]
    power_split: list[float] | None = None   # ρ_k (default 1/K); Σ ρ_k = 1
    nu: float = Field(0.5, ge=0)
    sigma: float = Field(0.1, gt=0)
    kappa: float = Field(5.0, gt=0)
    arrays: list[list[int]] = [[4, 4], [3, 3]]


class JLDDSettings(StrictModel):
    drones: list[int] = [2, 3]
    power_split: list[float] | None = None   # ρ_k (default 1/K); Σ ρ_k = 1
    snr_db: list[float] = Field([0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0], min_length=1)
    errors: list[Literal["none", "errors"]] = ["none", "errors"]
    windows: list[int] = [1, 11, 31, 71, 101]
    methods: list[Literal["mle_mle", "music_mle"]] = ["mle_mle", "music_mle"]
    ser_block: int = Field(10, ge=1)
    window_iterations: int = Field(2, ge=1)
    window_newton_steps: int = Field(2, ge=1)
    compensation: Literal["pinv", "matched"] = "pinv"
    init_doppler: Literal["prior", "aoml"] = "prior"
    max_trials: int | None = Field(None, ge=1)


class PascalConfig(ExperimentConfig):
    """Spec of the ``pascal`` experiment (defaults: the full profile; the scenario's defaults are
    the specification's, see :mod:`isackit.systems.pascal.config`)."""

    panels: list[Panel] = list(PANELS)
    scenario: ScenarioConfig = ScenarioConfig()
    snr_db: list[float] = Field([-10.0, -5.0, 0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0], min_length=1)
    mle_starts: list[Start] = ["init", "music"]
    efficiency: EfficiencySettings = EfficiencySettings()
    fig2: Fig2Settings = Fig2Settings()
    fig4: Fig4Settings = Fig4Settings()
    fig5: Fig5Settings = Fig5Settings()
    fig6: Fig6Settings = Fig6Settings()
    fig7: Fig7Settings = Fig7Settings()
    fig8: Fig8Settings = Fig8Settings()
    jldd: JLDDSettings = JLDDSettings()

    @model_validator(mode="after")
    def _consistent(self) -> PascalConfig:
        if len(set(self.panels)) != len(self.panels):
            raise ValueError(f"repeated panels in {self.panels}")
        sc = self.scenario
        for part in (self.efficiency, self.fig4, self.fig6, self.fig7, self.fig8, self.jldd):
            sc.check_selection(part.drones, part.power_split)
        for sel in (self.fig2.drones, self.fig5.drones, *self.fig6.fixed_drones):
            sc.check_selection(sel, None)
        if len(self.fig5.drones) != 2:
            raise ValueError("fig5 compares exactly two drones (ρ_2 = 1 − ρ_1)")
        L = sc.frame.num_subframes
        for lp in [*self.fig4.num_pilots, self.fig7.num_pilots]:
            if lp is not None and not 1 <= lp <= L:
                raise ValueError(f"num_pilots {lp} must be between 1 and the frame's L = {L} subframes")
        N = sc.frame.subframe_length
        if any(not 1 <= w <= N for w in self.jldd.windows):
            raise ValueError(f"jldd.windows {self.jldd.windows} must lie in 1..N = {N}")
        for nx_ny in self.fig8.arrays:
            if len(nx_ny) != 2 or min(nx_ny) < 1:
                raise ValueError(f"fig8.arrays entries are [N_x, N_y] ≥ 1, got {nx_ny}")
            if max(len(self.fig8.drones), 1) >= nx_ny[0] * nx_ny[1]:
                raise ValueError(f"{len(self.fig8.drones)} drones cannot be resolved by a {nx_ny[0]}×{nx_ny[1]} array")
        return self


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------
def _errors(est: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Estimation errors ``(B, K, 3)``: azimuth wrapped, angles in degrees, Doppler in Hz."""
    d = est - truth
    d[..., 0] = torch.remainder(d[..., 0] + math.pi, 2 * math.pi) - math.pi
    d[..., :2] = torch.rad2deg(d[..., :2])
    return d


def _rmse_rows(method: str, err: torch.Tensor, trials: int, suffix: str = "") -> list[Row]:
    return [rmse_row(method, f"rmse_{p}_{UNITS[p]}{suffix}", err[..., i], trials) for i, p in enumerate(PARAMS)]


def _bound_rows(name: str, var: torch.Tensor, suffix: str = "") -> list[Row]:
    """√(mean over drones of the variance bound) per parameter (degrees, Hz)."""
    out = []
    for i, p in enumerate(PARAMS):
        v = float(var[..., i].mean())
        sd = math.sqrt(v)
        out.append(bound_row(name, f"rmse_{p}_{UNITS[p]}{suffix}", math.degrees(sd) if i < 2 else sd))
    return out


def _angle_stats(err_deg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Empirical mean and standard deviation of the angle errors per drone, ``(K, 2)`` radians."""
    e = torch.deg2rad(err_deg[..., :2])
    return e.mean(0), e.std(0, unbiased=True) if e.shape[0] > 1 else torch.zeros_like(e[0])


def _scenario_with(config: PascalConfig, **errors) -> ScenarioConfig:
    sc = config.scenario
    return sc.model_copy(update={"errors": sc.errors.model_copy(update=errors)})


def _num_pilots(config: PascalConfig, lp: int | None) -> int:
    return config.scenario.frame.num_subframes if lp is None else int(lp)


def _mle(world, y, snr, starts, search=None):
    kp = world.known_pilots(y.shape[-1], snr)
    return statistical_mle(y, kp, search or world.search, starts=tuple(starts))


def _sdr_rows(world, method: str, est, zs, err, snr, trials, crlb_var=None, analytic_empirical=True) -> list[Row]:
    rows = [mean_row(method, "sdr_bps_hz", dldd_sum_rate(world, est, zs, snr), trials)]
    if analytic_empirical:
        bias, std = _angle_stats(err)
        rows.append(bound_row(f"{method}: analytic 2nd order", "sdr_bps_hz",
                              analytic_sum_rate(world, snr, std, bias, order=2)))
        rows.append(bound_row(f"{method}: analytic 1st order", "sdr_bps_hz",
                              analytic_sum_rate(world, snr, std, bias, order=1)))
    if crlb_var is not None:
        std = crlb_var[:, :2].sqrt()
        rows.append(bound_row("Analytic 2nd order (CRLB)", "sdr_bps_hz", analytic_sum_rate(world, snr, std, order=2)))
        rows.append(bound_row("Analytic 1st order (CRLB)", "sdr_bps_hz", analytic_sum_rate(world, snr, std, order=1)))
    return rows


# ---------------------------------------------------------------------------------------
# panels
# ---------------------------------------------------------------------------------------
def _efficiency(config: PascalConfig, unit: WorkUnit, g) -> list[Row]:
    law, coh, snr = unit.point["case"], unit.point["variant"], float(unit.point["x"])
    e = config.efficiency
    if law == "balanced":
        sc = _scenario_with(config, law="rice_von_mises", sigma=e.balanced_sigma, coherence=coh)
    else:
        sc = _scenario_with(config, law=law, coherence=coh)
    world = build_world(sc, e.drones, e.power_split)
    L, B = sc.frame.num_subframes, unit.trials
    y, _, _ = pilot_observations(world, B, snr, L, g)
    est = _mle(world, y, snr, config.mle_starts).estimates
    rows = _rmse_rows("MLE", _errors(est, world.truth), B)
    if unit.chunk_index == 0:
        rows += _bound_rows(CRLB, crlb(world, snr, L))
    return rows


def _fig2(config: PascalConfig, unit: WorkUnit, g) -> list[Row]:
    f2 = config.fig2
    world = build_world(config.scenario, f2.drones)
    L, B, snr = config.scenario.frame.num_subframes, unit.trials, f2.snr_db
    y, _, _ = pilot_observations(world, B, snr, L, g)
    err = _errors(_mle(world, y, snr, config.mle_starts).estimates, world.truth)[:, 0]  # drone (first) (B, 3)
    var = crlb(world, snr, L)[0]
    sd = torch.stack([var[0].sqrt().rad2deg(), var[1].sqrt().rad2deg(), var[2].sqrt()])
    rows = []
    edges = torch.linspace(-f2.span, f2.span, f2.bins + 1, dtype=torch.float64)
    for i, p in enumerate(PARAMS):
        z = err[:, i] / sd[i]
        b = torch.bucketize(z, edges) - 1  # bin index, −1 below, bins above
        for j in range(f2.bins):
            rows.append(mean_row("MLE", f"pdf_{p}@{j:02d}", (b == j).double(), B))
        rows.append(mean_row("MLE", f"pdf_{p}@below", (b < 0).double(), B))
        rows.append(mean_row("MLE", f"pdf_{p}@above", (b >= f2.bins).double(), B))
        rows.append(mean_row("MLE", f"mean_err_{p}", err[:, i], B))
        rows.append(mean_row("MLE", f"sq_err_{p}", err[:, i] ** 2, B))
        if unit.chunk_index == 0:
            rows.append(bound_row(CRLB, f"sd_{p}", float(sd[i])))
            rows.append(bound_row("histogram", f"span_{p}", f2.span))
    return rows


def _dldd_panel(config: PascalConfig, unit: WorkUnit, g, world, num_pilots: int) -> list[Row]:
    snr, B = float(unit.point["x"]), unit.trials
    y, _, zs = pilot_observations(world, B, snr, num_pilots, g)
    est = _mle(world, y, snr, config.mle_starts).estimates
    err = _errors(est, world.truth)
    var = crlb(world, snr, num_pilots)
    rows = _rmse_rows("MLE", err, B)
    rows += _sdr_rows(world, "MLE", est, zs, err, snr, B, crlb_var=var if unit.chunk_index == 0 else None)
    if unit.chunk_index == 0:
        rows += _bound_rows(CRLB, var)
    return rows


def _fig4(config: PascalConfig, unit: WorkUnit, g) -> list[Row]:
    case = next(c for c in config.fig4.cases if c.name == unit.point["case"])
    sc = _scenario_with(config, nu=case.nu, sigma=case.sigma, kappa=case.kappa)
    lp = int(str(unit.point["variant"]).split("=")[1])
    return _dldd_panel(config, unit, g, build_world(sc, config.fig4.drones, config.fig4.power_split), lp)


def _fig8(config: PascalConfig, unit: WorkUnit, g) -> list[Row]:
    f8 = config.fig8
    nx, ny = (int(v) for v in str(unit.point["case"]).split("x"))
    sc = _scenario_with(config, nu=f8.nu, sigma=f8.sigma, kappa=f8.kappa)
    sc = sc.model_copy(update={"array": sc.array.model_copy(update={"num_x": nx, "num_y": ny})})
    return _dldd_panel(config, unit, g, build_world(sc, f8.drones, f8.power_split), sc.frame.num_subframes)


def _fig5_world(config: PascalConfig, unit: WorkUnit):
    f5 = config.fig5
    ratio = float(str(unit.point["case"]).split("=")[1])
    rho = float(unit.point["x"])
    d_ref = config.scenario.drones[f5.drones[1] - 1].range_m
    return build_world(config.scenario, f5.drones, [rho, 1.0 - rho], [ratio * d_ref, d_ref])


def _fig5_bounds(world, snr, L, drones: list[int]) -> list[Row]:
    var = crlb(world, snr, L)
    rows = []
    for k, d in enumerate(drones):
        rows += _bound_rows(f"{CRLB} (drone {d})", var[k:k + 1])
    std = var[:, :2].sqrt()
    rows.append(bound_row("Analytic 2nd order (CRLB)", "sdr_bps_hz", analytic_sum_rate(world, snr, std, order=2)))
    return rows


def _fig5(config: PascalConfig, unit: WorkUnit, g) -> list[Row]:
    world = _fig5_world(config, unit)
    snr = float(str(unit.point["variant"]).split("=")[1])
    L, B = config.scenario.frame.num_subframes, unit.trials
    if unit.point["panel"] == "fig5_bound":
        return _fig5_bounds(world, snr, L, config.fig5.drones) if unit.chunk_index == 0 else []
    y, _, zs = pilot_observations(world, B, snr, L, g)
    est = _mle(world, y, snr, config.mle_starts).estimates
    err = _errors(est, world.truth)
    rows = []
    for k, d in enumerate(config.fig5.drones):
        rows += _rmse_rows(f"MLE (drone {d})", err[:, k:k + 1], B)
    rows.append(mean_row("MLE", "sdr_bps_hz", dldd_sum_rate(world, est, zs, snr), B))
    if unit.chunk_index == 0:
        rows += _fig5_bounds(world, snr, L, config.fig5.drones)
    return rows


def _fig6(config: PascalConfig, unit: WorkUnit, g) -> list[Row]:
    f6 = config.fig6
    world = build_world(config.scenario, f6.drones, f6.power_split)
    snr, B, L = float(unit.point["x"]), unit.trials, config.scenario.frame.num_subframes
    y, z, zs = pilot_observations(world, B, snr, L, g)
    kp = world.known_pilots(L, snr)
    rows: list[Row] = []
    ests: dict[str, torch.Tensor] = {}
    if "mle" in f6.methods or "aoml" in f6.methods:
        res = statistical_mle(y, kp, world.search, starts=("aoml", "init", "music"))
        ests["MLE"] = res.estimates
        ests["AO-ML"] = res.extras["aoml"]
    if "music" in f6.methods:
        ests["MUSIC"] = music_doppler(y, kp, world.search).estimates
    if "genie" in f6.methods:
        gk = KnownPilots.genie(world.array, kp.waveforms, kp.times, kp.noise_var, z, world.coherence)
        ests["G-ML"] = statistical_mle(y, gk, world.search, starts=("init", "music")).estimates
    names = {"mle": "MLE", "aoml": "AO-ML", "music": "MUSIC", "genie": "G-ML"}
    for key in f6.methods:
        name = names[key]
        err = _errors(ests[name], world.truth)
        rows += _rmse_rows(name, err, B)
        rows += _sdr_rows(world, name, ests[name], zs, err, snr, B)
    if unit.chunk_index == 0:
        var = crlb(world, snr, L)
        rows += _bound_rows(CRLB, var)
        rows.append(bound_row("Analytic 2nd order (CRLB)", "sdr_bps_hz",
                              analytic_sum_rate(world, snr, var[:, :2].sqrt(), order=2)))
        if "genie" in f6.methods:
            rows += _bound_rows("G-ML bound", genie_bound(world, snr, L, f6.genie_draws, g))
    return rows


def _fig6_fixed(config: PascalConfig, unit: WorkUnit, g) -> list[Row]:
    if unit.chunk_index > 0:
        return []
    f6 = config.fig6
    snr = float(str(unit.point["case"]).split("=")[1])
    drones = [int(v) for v in str(unit.point["variant"]).split("+")]
    world = build_world(config.scenario, drones)
    std = torch.full((len(drones), 2), math.radians(float(unit.point["x"])), dtype=torch.float64)
    mc = sum_rate_monte_carlo(world.array, world.truth[:, :2], world.gains(snr), world.law, std, f6.fixed_draws, g)
    return [bound_row("Monte Carlo", "sdr_bps_hz", float(mc)),
            bound_row("Analytic 2nd order", "sdr_bps_hz", analytic_sum_rate(world, snr, std, order=2)),
            bound_row("Analytic 1st order", "sdr_bps_hz", analytic_sum_rate(world, snr, std, order=1))]


def _fig7(config: PascalConfig, unit: WorkUnit, g) -> list[Row]:
    f7 = config.fig7
    world = build_world(config.scenario, f7.drones, f7.power_split)
    B, snr, lp = unit.trials, f7.snr_db, f7.num_pilots
    y, _, _ = pilot_observations(world, B, snr, lp, g)
    res = ao_ml(y, world.known_pilots(lp, snr), world.search)
    he, hn = res.extras["estimate_history"], res.extras["nll_history"]
    iters, conv = res.extras["iterations"], res.extras["converged"]
    rows: list[Row] = []
    for i in range(he.shape[1]):
        err = _errors(he[:, i], world.truth)
        rows.append(rmse_row("AO-ML", f"rmse_phi_deg@{i:02d}", err[..., 0], B))
        rows.append(rmse_row("AO-ML", f"rmse_theta_deg@{i:02d}", err[..., 1], B))
        rows.append(mean_row("AO-ML", f"nll@{i:02d}", hn[:, i], B))
        rows.append(mean_row("AO-ML", f"converged@{i:02d}", (conv & (iters <= i)).double(), B))
    rows.append(mean_row("AO-ML", "iterations", iters.double(), B))
    rows.append(mean_row("AO-ML", "converged", conv.double(), B))
    if unit.chunk_index == 0:
        var = crlb(world, snr, lp)
        rows += _bound_rows(CRLB, var)
    return rows


def _window_bound(world, idx, snr, n) -> torch.Tensor:
    """Average CRLB ``(K, 3)`` of window n with the symbols known (averaged over the trials)."""
    t = world.layout.times()[0][:n]
    sym = world.points[idx[..., :n].clamp(min=0)]
    sym[..., 0] = world.pilots[:, 0]
    wave = sym * world.amplitudes[:, None]
    var = average_crlb(world.array, world.truth.expand(idx.shape[0], -1, -1), wave, t, world.noise_var(snr),
                       world.moments, world.coherence)
    return var.mean(0)


def _jldd(config: PascalConfig, unit: WorkUnit, g) -> list[Row]:
    j = config.jldd
    case, snr = unit.point["case"], float(unit.point["x"])
    sc = config.scenario if case == "errors" else _scenario_with(config, law="none")
    world = build_world(sc, j.drones, j.power_split)
    B = unit.trials if j.max_trials is None else min(unit.trials, j.max_trials)
    y, idx = subframe_observations(world, B, snr, g)
    t = world.layout.times()[0]
    N = t.numel()
    tag = "-E" if case == "errors" else ""
    init = ao_ml(y[..., :1], world.known_pilots(1, snr), world.search).estimates
    kw = dict(errors=world.moments, coherence=world.coherence, search=world.search, init=init,
              init_doppler=j.init_doppler)
    common = (world.array, world.pilots[:, 0], world.amplitudes, t, world.points, world.noise_var(snr))
    runs = {}
    if "mle_mle" in j.methods:
        runs[f"MLE-MLE{tag}"] = mle_mle(y, *common, window_iterations=j.window_iterations,
                                        window_newton_steps=j.window_newton_steps, **kw)
    if "music_mle" in j.methods:
        runs[f"MUSIC-MLE{tag}"] = music_mle(y, *common, compensation=j.compensation, **kw)
    rows: list[Row] = []
    wrong_all = {}
    for name, res in runs.items():
        wrong = (res.symbols != idx).double()  # (B, K, N); column 0 (pilot) is never wrong
        wrong_all[name] = wrong
        for n in j.windows:
            err = _errors(res.estimates[:, n - 1], world.truth)
            rows += _rmse_rows(name, err, B, f"@{n:03d}")
            if n >= 2:
                lo = max(1, n - j.ser_block)
                rows.append(mean_row(name, f"ser@{n:03d}", wrong[..., lo:n], B))
                rows.append(mean_row(name, f"ser_cum@{n:03d}", wrong[..., 1:n], B))
    # the DLDD reference: AO-ML on the single pilot (Doppler at the prior mean, as JLDD starts)
    # and MRC decisions of every data symbol
    ref = init.clone()
    if j.init_doppler == "prior":
        ref[..., 2] = 0.5 * (world.search.doppler_grid.start + world.search.doppler_grid.stop)
    dname = f"AO-ML{tag} (DLDD)"
    derr = _errors(ref, world.truth)
    det = mrc_detect(y, ref, t, world.points, world.array)
    rows += _rmse_rows(dname, derr, B, "@001")
    dwrong = (det[..., 1:] != idx[..., 1:]).double()
    for n in j.windows:
        if n >= 2:
            rows.append(mean_row(dname, f"ser_cum@{n:03d}", dwrong[..., :n - 1], B))
    if unit.chunk_index == 0:
        for n in j.windows:
            rows += _bound_rows(f"CRLB{tag} (known symbols)", _window_bound(world, idx, snr, n), f"@{n:03d}")
    return rows


# ---------------------------------------------------------------------------------------
# the experiment
# ---------------------------------------------------------------------------------------
@register_experiment("pascal", config_model=PascalConfig,
                     description="S3: PASCAL — UAV localisation and data detection under random gain-phase "
                                 "errors (seed 003)")
class PascalExperiment(Experiment):
    """Seed 003 Figs. 2 and 4-10 and the efficiency table (see the module docstring)."""

    x_axis = "x"
    generic_figures = False
    labels = {"x": "SNR (dB)"}

    def points(self, config: PascalConfig) -> list[dict[str, Any]]:
        pts: list[dict[str, Any]] = []
        L = config.scenario.frame.num_subframes

        def add(panel, case, variant, x):
            pts.append(dict(panel=panel, case=str(case), variant=str(variant), x=float(x)))

        for panel in config.panels:
            if panel == "efficiency":
                e = config.efficiency
                for law in e.laws:
                    for coh in e.coherences:
                        for s in e.snr_db:
                            add(panel, law, coh, s)
            elif panel == "fig2":
                for r in range(config.fig2.replicas):
                    add(panel, "default", f"rep{r}", config.fig2.snr_db)
            elif panel == "fig4":
                for c in config.fig4.cases:
                    for lp in config.fig4.num_pilots:
                        for s in config.snr_db:
                            add(panel, c.name, f"Lp={_num_pilots(config, lp)}", s)
            elif panel == "fig5":
                f5 = config.fig5
                for ratio in f5.range_ratios:
                    for s in f5.snr_db:
                        for rho in f5.rho:
                            add(panel, f"d1/d3={ratio:g}", f"snr={s:g}", rho)
                    for s in f5.bound_snr_db:
                        for rho in f5.bound_rho:
                            add("fig5_bound", f"d1/d3={ratio:g}", f"snr={s:g}", round(rho, 6))
            elif panel == "fig6":
                for s in config.snr_db:
                    add(panel, "default", "", s)
                for s in config.fig6.fixed_snr_db:
                    for dr in config.fig6.fixed_drones:
                        for sd in config.fig6.fixed_std_deg:
                            add("fig6_fixed", f"snr={s:g}", "+".join(map(str, dr)), sd)
            elif panel == "fig7":
                add(panel, "default", f"Lp={config.fig7.num_pilots}", config.fig7.snr_db)
            elif panel == "fig8":
                for nx, ny in config.fig8.arrays:
                    for s in config.snr_db:
                        add(panel, f"{nx}x{ny}", f"Lp={L}", s)
            elif panel == "jldd":
                for e in config.jldd.errors:
                    for s in config.jldd.snr_db:
                        add(panel, e, "", s)
        return pts

    def run_unit(self, config: PascalConfig, unit: WorkUnit, device: torch.device):
        g = unit.generator("cpu")
        panel = unit.point["panel"]
        fn = {"efficiency": _efficiency, "fig2": _fig2, "fig4": _fig4, "fig5": _fig5, "fig5_bound": _fig5,
              "fig6": _fig6, "fig6_fixed": _fig6_fixed, "fig7": _fig7, "fig8": _fig8, "jldd": _jldd}[panel]
        with torch.no_grad():
            return fn(config, unit, g)

    def figures(self, df, meta: dict, out_dir, run_dir) -> list:
        """One figure per seed figure (2, 4-10): :mod:`.pascal_figures`."""
        from .pascal_figures import pascal_figures

        return pascal_figures(df, meta, out_dir)

    def summary(self, df):
        """Efficiency (RMSE/√CRLB), SDR approximation errors, Fig. 5 optima, AO-ML convergence,
        JLDD at the longest window: :func:`.pascal_figures.summary_table`."""
        from .pascal_figures import summary_table

        return summary_table(df)
