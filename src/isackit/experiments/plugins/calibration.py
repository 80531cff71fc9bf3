r"""Experiment ``calibration`` (S0, seed 000): every calibration method on impaired ISAC stations.

Work units: one sweep point per ISAC loss weight w; within a point each chunk of ``chunk``
test scenes is one DEVICE — a station whose true Tx/Rx impairments are drawn from the unit's
``"device"`` stream — so the rows of all devices aggregate exactly (sums) into one table row
per metric.  Per device every method of :data:`isackit.systems.calibration.methods.METHODS`
is calibrated on the same training scenes (the unit's ``"calibrate"`` stream) and evaluated
on the same test scenes (its ``"evaluate"`` stream).  At the other w of the trade-off sweep
only ``tradeoff_methods`` (default: ``unsupervised_residual``) are trained.

Metrics (:mod:`isackit.systems.calibration.evaluation`): ``gospa_m`` (RMS over frames),
``rmse_m`` (matched detections), ``pd``, ``false_per_frame``, ``pfa`` (noise-only frames),
``ser``, ``ue_snr_db``, ``phase_err_deg_{tx,rx}``, ``gain_err_db_{tx,rx}``,
``position_err_mm_{tx,rx}``, ``train_s``, ``final_loss``.  Rows also carry, per unit (device)
in their ``extra`` (kept in the run's ``units/*.json``, not in the results table): the
per-frame sums of each evaluated metric (``moments``: Σx, Σy, Σx², Σy², Σxy, n of its ratio
Σx/Σy, for 95 % intervals with :func:`isackit.metrics.ratio_interval`); the learning curve of
each trained method on its ``train_s`` row (``learning_curve``: step, loss, sensing, comm,
detections and the learned-vs-true errors after that step's update; ``initial``: the errors
before training); and the learned and true per-element parameters
(:func:`~isackit.systems.calibration.evaluation.aligned_parameters`) on the
``phase_err_deg_{tx,rx}`` rows.  Figures: :mod:`.calibration_figures`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from pydantic import Field, model_validator

from ...impairments.base import ArrayModel
from ...seeding import derive_seed
from ...systems.calibration.config import (
    CalibrationConfig,
    CalibrationTrainingConfig,
    EvaluationConfig,
    PrecoderConfig,
    ReceiverConfig,
    ScenarioConfig,
    updated,
)
from ...systems.calibration.evaluation import (
    METRIC_RATIOS,
    SensingCommMetrics,
    aligned_parameters,
    evaluate,
    parameter_errors,
)
from ...learning.store import ModelStore, default_model_root
from ...systems.calibration.methods import METHODS, PROPOSED, build_transceiver, calibrate_method
from ...systems.calibration.station import Station
from ...systems.calibration.transceiver import Transceiver
from ..config import ExperimentConfig, RelativePath, inside
from ..registry import Experiment, register_experiment
from ..units import Row, UnitResult, WorkUnit, mean_row

__all__ = ["CalibrationExperimentConfig", "CalibrationExperiment", "SUMMARY_METRICS", "headline_ratios"]

#: the compact summary's columns: (metric, column title).
SUMMARY_METRICS = (("gospa_m", "GOSPA (m)"), ("rmse_m", "RMSE matched (m)"), ("pd", "Pd"),
                   ("false_per_frame", "false / frame"), ("ser", "SER"), ("gain_err_db_rx", "Rx gain err (dB)"),
                   ("phase_err_deg_rx", "Rx phase err (°)"))


class CalibrationExperimentConfig(ExperimentConfig):
    """Spec of the ``calibration`` experiment: the system's configs by concern, and the sweep.

    Attributes:
        scenario, precoder, receiver, training, evaluation: see
            :mod:`isackit.systems.calibration.config` (``training`` is the base the methods'
            overrides apply to; ``training.loss_weight`` is the main weight w).
        methods: the methods run at the main weight.
        tradeoff_weights: extra ISAC loss weights w at which ``tradeoff_methods`` run.
        tradeoff_methods: the methods trained at the extra weights (default: the proposed
            ``unsupervised_residual`` only; add ``unsupervised_max_response`` to draw both
            unsupervised losses' trade-off curves).
        model_dir: if set, a model store inside the model cache
            (:func:`isackit.learning.store.default_model_root`: ``$ISACKIT_MODEL_CACHE``, else
            ``~/.cache/isackit/models``): a learning method's calibration of a device is taken
            from it when it holds one of the same identity, else trained and stored there; the
            run's ``models.json`` lists them.
            (The learning curves record every ``training.log_every`` steps and the last.)
        threads: torch intra-op threads while a unit runs (0: leave torch's setting).  The
            tensors of one step are small: on a loaded machine more threads than free cores
            oversubscribe it, so the default is 1.
    """

    scenario: ScenarioConfig = Field(default_factory=ScenarioConfig)
    precoder: PrecoderConfig = Field(default_factory=PrecoderConfig)
    receiver: ReceiverConfig = Field(default_factory=ReceiverConfig)
    training: CalibrationTrainingConfig = Field(default_factory=CalibrationTrainingConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    methods: list[str] = Field(default_factory=lambda: list(METHODS))
    tradeoff_weights: list[float] = Field(default_factory=lambda: [0.0, 1.0])
    tradeoff_methods: list[str] = Field(default_factory=lambda: [PROPOSED])
    model_dir: RelativePath | None = None
    threads: int = Field(default=1, ge=0)

    @model_validator(mode="after")
    def _check_methods(self):
        """Unknown methods are a one-line error when the spec is read, before any unit runs."""
        for name in ("methods", "tradeoff_methods"):
            bad = [m for m in getattr(self, name) if m not in METHODS]
            if bad:
                raise ValueError(f"{name}: unknown method(s) {', '.join(map(repr, bad))}; "
                                 f"expected one of {', '.join(METHODS)}")
        for w in self.tradeoff_weights:
            if not 0.0 <= w <= 1.0:
                raise ValueError(f"tradeoff_weights must lie in [0, 1], got {w}")
        return self

    def system(self, loss_weight: float | None = None) -> CalibrationConfig:
        """The S0 system of this spec, optionally at another ISAC loss weight w."""
        training = self.training if loss_weight is None else updated(self.training, loss_weight=float(loss_weight))
        return CalibrationConfig(scenario=self.scenario, precoder=self.precoder, receiver=self.receiver,
                                 training=training)


def _rows(method: str, m: SensingCommMetrics, trials: int) -> list[Row]:
    """The evaluated metrics of one device: exact sums (value = Σx/Σy, sqrt of it for the
    RMS metrics), their per-frame moments in ``extra``."""
    rows = []
    for metric, (name, _) in METRIC_RATIOS.items():
        s = m.sums[name]
        extra = {"moments": s.as_list()}
        if metric == "ue_snr_db":   # per device in dB, averaged over devices
            rows.append(replace(mean_row(method, metric, torch.tensor([m.value(metric)]), trials), extra=extra))
        else:
            kind = "rmse" if metric in ("gospa_m", "rmse_m") else "mean"
            rows.append(Row(method, metric, kind, s.sx, int(round(s.sy)), trials, extra=extra))
    return rows


def _error_monitor(true_tx: ArrayModel, true_rx: ArrayModel) -> Callable[[Transceiver], dict[str, float]]:
    """``monitor(transceiver)`` → learned-vs-true errors ``{phase_err_deg_tx, gain_err_db_tx,
    position_err_mm_tx, ..._rx}`` (:func:`parameter_errors`) for the learning curves; it holds
    copies of the truth taken by the experiment, so training itself never reads them."""

    def monitor(tr: Transceiver) -> dict[str, float]:
        out = {}
        for side, learned, true in (("tx", tr.tx, true_tx), ("rx", tr.rx, true_rx)):
            out.update({f"{k}_{side}": v for k, v in parameter_errors(learned, true).items()})
        return out

    return monitor


def _main_weight(df: pd.DataFrame) -> float | None:
    """The w at which the most methods ran (the main weight)."""
    if "w" not in df.columns or df.empty:
        return None
    return float(df.groupby("w", sort=False)["method"].nunique().idxmax())


def headline_ratios(df: pd.DataFrame) -> list[str]:
    """The issue's ratios at the main weight: unsupervised residual vs supervised and
    uncalibrated RMSE of matched detections, and vs perfect-knowledge SER."""
    w = _main_weight(df)
    at = df if w is None else df[df["w"] == w]

    def v(method: str, metric: str) -> float:
        s = at.loc[(at["method"] == method) & (at["metric"] == metric), "value"]
        return float(s.iloc[0]) if len(s) else math.nan

    lines = []
    for ref, metric, what, target, ok in (
            ("supervised", "rmse_m", "RMSE", "≤ 1.25", lambda r: r <= 1.25),
            ("uncalibrated", "rmse_m", "RMSE", "< 0.5", lambda r: r < 0.5),
            ("perfect", "ser", "SER", "", None)):
        r = v(PROPOSED, metric) / v(ref, metric)
        if math.isnan(r):
            continue
        verdict = "" if ok is None else ("  (target " + target + ": " + ("met" if ok(r) else "NOT met") + ")")
        lines.append(f"{PROPOSED} / {ref} {what}: {r:.3f}{verdict}")
    return lines


@register_experiment("calibration", config_model=CalibrationExperimentConfig,
                     description="S0: unsupervised end-to-end array calibration for multi-target ISAC")
class CalibrationExperiment(Experiment):
    x_axis = "w"
    log_y = True

    def points(self, config: CalibrationExperimentConfig) -> list[dict[str, Any]]:
        main = config.training.loss_weight
        ws = [main] + [float(w) for w in config.tradeoff_weights if not math.isclose(w, main)]
        return [{"w": float(w)} for w in ws]

    def summary(self, df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
        """One row per method at the main weight w, the key metrics as columns
        (:data:`SUMMARY_METRICS`), and the headline ratios (:func:`headline_ratios`)."""
        w = _main_weight(df)
        at = df if w is None else df[df["w"] == w]
        table = at.pivot_table(index="method", columns="metric", values="value", aggfunc="first", sort=False)
        table = table.reindex(columns=[m for m, _ in SUMMARY_METRICS])
        table.columns = [title for _, title in SUMMARY_METRICS]
        table = table.reset_index()
        return table, ([f"main weight w = {w:g}"] if w is not None else []) + headline_ratios(df)

    def figures(self, df, meta: dict, out_dir: Path, run_dir: Path | None) -> list[Path]:
        """The experiment's own figures (trade-off, learning curves, learned vs true):
        :mod:`.calibration_figures`."""
        from .calibration_figures import calibration_figures

        return calibration_figures(df, meta, out_dir, run_dir)

    def run_unit(self, config: CalibrationExperimentConfig, unit: WorkUnit, device) -> UnitResult:
        previous = torch.get_num_threads()
        if config.threads:
            torch.set_num_threads(config.threads)
        try:
            return self._run_unit(config, unit, device)
        finally:
            torch.set_num_threads(previous)

    def _run_unit(self, config: CalibrationExperimentConfig, unit: WorkUnit, device) -> UnitResult:
        w = float(unit.point["w"])
        system = config.system(loss_weight=w)
        main = math.isclose(w, config.training.loss_weight)
        methods = config.methods if main else config.tradeoff_methods
        device_seed = derive_seed(unit.seed, "device")
        station = Station(system.scenario, device_seed=device_seed, device=device)
        ttx, trx = station.true_models()     # copies, for the reports only (never the learner's)
        monitor = _error_monitor(ttx, trx)
        initial = monitor(build_transceiver("uncalibrated", system).to(station.device))
        calibrate_seed, evaluate_seed = derive_seed(unit.seed, "calibrate"), derive_seed(unit.seed, "evaluate")
        store = None if config.model_dir is None else ModelStore(inside(default_model_root(), config.model_dir))
        rows: list[Row] = []
        artifacts: list[dict] = []
        for method in methods:
            tr, log, record = calibrate_method(method, system, station, calibrate_seed, monitor=monitor,
                                               progress=unit.progress, store=store,
                                               identity={"device_seed": device_seed})
            if record is not None:
                artifacts.append(dict(record))
            metrics = evaluate(tr, station, unit.trials, evaluate_seed, config.evaluation)
            rows += _rows(method, metrics, unit.trials)
            if method != "perfect":
                for side, learned, true in (("tx", tr.tx, ttx), ("rx", tr.rx, trx)):
                    elements = {k: v.tolist() for k, v in aligned_parameters(learned, true).items()}
                    for k, v in parameter_errors(learned, true).items():
                        row = mean_row(method, f"{k}_{side}", torch.tensor([v], dtype=torch.float64), unit.trials)
                        if k == "phase_err_deg":
                            row = replace(row, extra={"elements": elements})
                        rows.append(row)
            if log is not None:
                curve = {key: [r.get(key, math.nan) for r in log.records] for key in log.records[0]}
                rows.append(Row(method, "train_s", "mean", log.seconds, 1, unit.trials,
                                extra={"learning_curve": curve, "initial": initial}))
                rows.append(mean_row(method, "final_loss", torch.tensor([log.records[-1]["loss"]], dtype=torch.float64),
                                     unit.trials))
        return UnitResult(rows=rows, artifacts=artifacts)
