r"""Experiment ``calibration`` (S0, seed 000): every calibration method on impaired ISAC stations.

Work units: one sweep point per ISAC loss weight w; within a point each chunk of ``chunk``
test scenes is one DEVICE — a station whose true Tx/Rx impairments are drawn from the chunk's
seed — so the rows of all devices aggregate exactly (sums) into one table row per metric.
Per device every method is calibrated on fresh training scenes and evaluated on the same
test scenes:

* ``uncalibrated``: the nominal model (baseline a);
* ``perfect``: the true impairments (baseline d);
* ``supervised``: labelled targets (LS residual at the true positions) (baseline b);
* ``true_gradient``: the residual loss with the real channel's gradient (baseline c);
* ``unsupervised_residual``: the residual loss, learned-model channel gradient (proposed);
* ``unsupervised_max_response``: the max-response loss on OMP's iteration maps (the maps of
  the residual, deflated by the LS re-fit), same gradient (proposed alternative, reading 1);
* ``unsupervised_max_response_adm``: the max-response loss on the observation's own angle–delay
  map at the detected peaks (no deflation), same gradient (proposed alternative, reading 2).
  The seed's "maximise the maximum response of the angle-delay map of the targets" admits
  both; ``losses.py`` explains why reading 1 nearly coincides with the residual loss.

At the other w of the trade-off sweep only ``tradeoff_methods`` (default: ``unsupervised_residual``)
are trained.

Metrics (see ``evaluation.py``): ``gospa_m`` (RMS over frames), ``rmse_m`` (matched
detections), ``pd``, ``false_per_frame``, ``pfa`` (noise-only frames), ``ser``, ``ue_snr_db``,
``phase_err_deg_{tx,rx}``, ``gain_err_db_{tx,rx}``, ``position_err_mm_{tx,rx}``, ``train_s``,
``final_loss``.  Rows also carry, per unit (device) in their ``extra`` (kept in the run's
``units/*.json``, not in the results table): the learning curve of each trained method on its
``train_s`` row (``learning_curve``: step, loss, sensing, comm, detections and the learned-vs-true
errors after that step's update; ``initial``: the errors before training), and the learned and
true per-element parameters (:func:`~.evaluation.aligned_parameters`) on the
``phase_err_deg_{tx,rx}`` rows.  Figures (``figures.py``, drawn by ``isackit run`` / ``isackit
plot``): learning curves and learned-vs-true per device, and the sensing–comm trade-off.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from pydantic import Field, model_validator

from ...experiments import Experiment, ExperimentConfig, Row, mean_row, register_experiment
from ...impairments.base import ArrayModel
from ...learning.checkpoint import load_checkpoint, save_checkpoint
from .config import CalibrationConfig
from .evaluation import aligned_parameters, evaluate, parameter_errors
from .station import Station, learnable_array
from .training import train_calibration
from .transceiver import Transceiver, calibrate_threshold

__all__ = ["METHODS", "CalibrationExperimentConfig", "CalibrationExperiment", "build_transceiver",
           "calibrate_method", "save_calibration", "load_calibration"]

#: method name → training overrides (None: not trained).
METHODS: dict[str, dict[str, str] | None] = {
    "uncalibrated": None,
    "perfect": None,
    "supervised": {"sensing_loss": "supervised", "gradient": "model"},
    "true_gradient": {"sensing_loss": "residual", "gradient": "true"},
    "unsupervised_residual": {"sensing_loss": "residual", "gradient": "model"},
    "unsupervised_max_response": {"sensing_loss": "max_response", "gradient": "model"},
    "unsupervised_max_response_adm": {"sensing_loss": "max_response_adm", "gradient": "model"},
}
PROPOSED = "unsupervised_residual"

Scalar = float | int | str | bool


class CalibrationExperimentConfig(ExperimentConfig):
    """Spec of the ``calibration`` experiment.

    Attributes:
        scenario: overrides of :class:`CalibrationConfig` fields (sizes, training, ...).
        methods: which methods run at the main weight ``scenario.loss_weight``.
        tradeoff_weights: extra ISAC loss weights w at which ``tradeoff_methods`` run.
        tradeoff_methods: the methods trained at the extra weights (default: the proposed
            ``unsupervised_residual`` only; add ``unsupervised_max_response`` to draw both
            unsupervised losses' trade-off curves).
        threshold_frames: noise-only frames used to set the detection threshold.
        gospa_cutoff: GOSPA cut-off c in metres (also the matching radius).
        save_dir: if not empty, trained calibrations are saved under it.
        curve_every: the learning curves record every ``curve_every`` training steps (and the
            last).
        threads: torch intra-op threads while a unit runs (0: leave torch's setting).  The
            tensors of one step are small: on a loaded 2-core machine 2 threads made training
            8x SLOWER than 1 (oversubscription), so the default is 1.
    """

    scenario: dict[str, Scalar] = Field(default_factory=dict)
    methods: list[str] = Field(default_factory=lambda: list(METHODS))
    tradeoff_weights: list[float] = Field(default_factory=lambda: [0.0, 1.0])
    tradeoff_methods: list[str] = Field(default_factory=lambda: [PROPOSED])
    gospa_cutoff: float = Field(default=5.0, gt=0)
    save_dir: str = ""
    threads: int = Field(default=1, ge=0)
    curve_every: int = Field(default=10, ge=1)

    @model_validator(mode="after")
    def _check_methods_and_scenario(self):
        """Reject unknown methods and invalid scenario overrides when the spec is read, so the
        user gets a one-line error before any unit runs (not a traceback from inside a unit)."""
        for field in ("methods", "tradeoff_methods"):
            bad = [m for m in getattr(self, field) if m not in METHODS]
            if bad:
                raise ValueError(f"{field}: unknown method(s) {', '.join(map(repr, bad))}; "
                                 f"expected one of {', '.join(METHODS)}")
        CalibrationConfig.from_dict(dict(self.scenario))  # raises ValueError naming the bad field
        return self


def scenario_config(config: CalibrationExperimentConfig, **changes: Any) -> CalibrationConfig:
    return CalibrationConfig.from_dict({**config.scenario, **changes})


def build_transceiver(method: str, cfg: CalibrationConfig, station: Station | None = None) -> Transceiver:
    """The transceiver a method starts from: nominal learnable arrays, or the truth for ``perfect``."""
    if method not in METHODS:
        raise ValueError(f"unknown calibration method {method!r}; expected one of {', '.join(METHODS)}")
    if method == "perfect":
        if station is None:
            raise ValueError("the perfect-knowledge baseline needs the station")
        tx, rx = station.true_models()
    else:
        tx = learnable_array(cfg.num_tx, cfg, name="tx")
        rx = learnable_array(cfg.num_rx, cfg, name="rx")
    return Transceiver(cfg, tx, rx)


def calibrate_method(method: str, cfg: CalibrationConfig, station: Station, seed: int,
                     monitor: Callable[[Transceiver], dict[str, float]] | None = None, log_every: int = 10):
    """Build, threshold and (if the method learns) train a transceiver; returns (transceiver, log).

    ``monitor`` and ``log_every`` go to :func:`train_calibration` (``monitor`` must not read the
    station: it is the experiment's, holding copies of the truth taken outside the training).
    """
    overrides = METHODS[method]
    if overrides is not None:
        cfg = cfg.with_updates(**overrides, seed=seed)
    tr = build_transceiver(method, cfg, station).to(station.device)
    thr_gen = torch.Generator().manual_seed(seed + 17)
    thr_scenes = lambda: station.draw_scenes(cfg.threshold_frames, torch.Generator().manual_seed(seed + 19))  # noqa: E731
    calibrate_threshold(tr, thr_scenes(), thr_gen)
    log = None
    if overrides is not None:
        log = train_calibration(tr, station, cfg, log_every=log_every, monitor=monitor)
        calibrate_threshold(tr, thr_scenes(), torch.Generator().manual_seed(seed + 17))
    return tr, log


def save_calibration(transceiver: Transceiver, directory: str | Path, extra: dict | None = None) -> Path:
    """Save a calibrated transceiver (learned Tx/Rx parameters, threshold) + its config."""
    cfg = {"calibration_config": transceiver.config.to_dict(), **(extra or {})}
    return save_checkpoint(directory, transceiver.state_dict(), cfg)


def load_calibration(directory: str | Path) -> Transceiver:
    """Rebuild a transceiver saved by :func:`save_calibration` (no code is unpickled)."""
    state, meta = load_checkpoint(directory)
    cfg = CalibrationConfig.from_dict(meta["calibration_config"])
    tr = build_transceiver("uncalibrated", cfg)
    tr.load_state_dict(state)
    return tr


def _rows(method: str, m, trials: int) -> list[Row]:
    d = m.as_dict()
    return [
        Row(method, "gospa_m", "rmse", m.gospa_sq_sum, m.frames, trials),
        Row(method, "rmse_m", "rmse", m.matched_sq_sum, m.matched, trials),
        Row(method, "pd", "mean", float(m.matched), m.true_targets, trials),
        Row(method, "false_per_frame", "mean", float(m.false_estimates), m.frames, trials),
        Row(method, "pfa", "mean", float(m.noise_alarms), m.noise_frames, trials),
        Row(method, "ser", "mean", float(m.symbol_errors), m.symbols, trials),
        mean_row(method, "ue_snr_db", torch.tensor([d["ue_snr_db"]]), trials),
    ]


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


@register_experiment("calibration", config_model=CalibrationExperimentConfig,
                     description="S0: unsupervised end-to-end array calibration for multi-target ISAC")
class CalibrationExperiment(Experiment):
    x_axis = "w"
    log_y = True

    def points(self, config: CalibrationExperimentConfig) -> list[dict[str, Any]]:
        main = scenario_config(config).loss_weight
        ws = [main] + [float(w) for w in config.tradeoff_weights if not math.isclose(w, main)]
        return [{"w": float(w)} for w in ws]

    def figures(self, df, meta: dict, out_dir: Path, run_dir: Path | None) -> list[Path]:
        """The experiment's own figures (trade-off, learning curves, learned vs true): see
        :mod:`.figures`; called by :func:`isackit.plotting.plot_results`."""
        from .figures import calibration_figures

        return calibration_figures(df, meta, out_dir, run_dir)

    def run_unit(self, config: CalibrationExperimentConfig, unit, device) -> list[Row]:
        previous = torch.get_num_threads()
        if config.threads:
            torch.set_num_threads(config.threads)
        try:
            return self._run_unit(config, unit, device)
        finally:
            torch.set_num_threads(previous)

    def _run_unit(self, config: CalibrationExperimentConfig, unit, device) -> list[Row]:
        for m in [*config.methods, *config.tradeoff_methods]:
            if m not in METHODS:
                raise ValueError(f"unknown calibration method {m!r}; expected one of {', '.join(METHODS)}")
        w = float(unit.point["w"])
        cfg = scenario_config(config, loss_weight=w)
        main = math.isclose(w, scenario_config(config).loss_weight)
        methods = config.methods if main else config.tradeoff_methods
        seed = int(unit.seed % (2**31 - 1000))
        station = Station(cfg, device_seed=seed, device=device)
        ttx, trx = station.true_models()     # copies, for the reports only (never the learner's)
        monitor = _error_monitor(ttx, trx)
        initial = monitor(build_transceiver("uncalibrated", cfg).to(station.device))
        rows: list[Row] = []
        for method in methods:
            tr, log = calibrate_method(method, cfg, station, seed + 101, monitor=monitor,
                                       log_every=config.curve_every)
            metrics = evaluate(tr, station, unit.trials, seed + 202, gospa_cutoff=config.gospa_cutoff)
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
                if config.save_dir:
                    save_calibration(tr, Path(config.save_dir) / f"w{w:g}" / f"chunk{unit.chunk_index}" / method,
                                     {"method": method, "device_seed": seed})
        return rows
