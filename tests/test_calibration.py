"""System S0 (seed 000): config, station, receiver wiring, training, checkpoints, experiment.

Tiny sizes throughout (8 antennas, 16 subcarriers): the statistical outcome is shown by the
``calibration`` experiment, not here.  The lower-layer pieces S0 is built from have their own
tests (``test_signals_precoders.py``, ``test_estimators_omp_detector.py``,
``test_learning_calibration.py``).
"""

from __future__ import annotations

import math

import pytest
import torch
from pydantic import ValidationError

from isackit.estimators.omp_detector import omp_detect, residual_energy
from isackit.impairments.base import ArrayModel
from isackit.impairments.displacement import ElementDisplacement
from isackit.impairments.gain_phase import GainPhaseError
from isackit.signals.precoders import isac_precoder
from isackit.systems.calibration.config import CalibrationConfig, ScenarioConfig, updated
from isackit.systems.calibration.evaluation import aligned_parameters, parameter_errors
from isackit.learning.store import ModelStore
from isackit.learning.training import lr_factor
from isackit.systems.calibration.methods import (
    calibrate_method,
    load_calibration,
    load_stored_calibration,
    save_calibration,
)
from isackit.systems.calibration.station import Station, impaired_array, learnable_array
from isackit.systems.calibration.training import train_calibration
from isackit.systems.calibration.transceiver import Transceiver, calibrate_threshold

TINY = {"scenario": dict(num_tx=8, num_rx=8, num_subcarriers=16, max_targets=2, tx_power_dbm=50.0),
        "precoder": dict(sector_beam_points=4),
        "receiver": dict(num_angle_grid=91, num_range_grid=24, omp_iterations=2, threshold_frames=200),
        "training": dict(steps=6, batch_size=8)}


def tiny(**groups) -> CalibrationConfig:
    """The tiny system with some fields of its groups changed: ``tiny(training={"steps": 3})``."""
    return CalibrationConfig.model_validate({g: {**TINY.get(g, {}), **groups.get(g, {})}
                                             for g in {*TINY, *groups}})


def precoder(tx, sc, cfg: CalibrationConfig):
    p = cfg.precoder
    return isac_precoder(tx, sc.sector_center, sc.sector_width, sc.ue_angle, p.eta, 0.0, p.sector_beam_points)


# ---------------------------------------------------------------------------------- config
def test_config_validates():
    with pytest.raises(ValidationError, match="sensing_loss"):
        tiny(training={"sensing_loss": "nope"})
    with pytest.raises(ValidationError, match="min_targets"):
        tiny(scenario={"min_targets": 3, "max_targets": 2})
    with pytest.raises(ValidationError, match="bogus"):
        tiny(scenario={"bogus": 1})
    with pytest.raises(ValidationError, match="unambiguous range"):
        tiny(scenario={"range_max": 700.0})
    with pytest.raises(ValidationError, match="angle grid"):
        tiny(receiver={"angle_grid_min_deg": -95.0})
    with pytest.raises(ValidationError, match="final_lr_fraction"):
        tiny(training={"final_lr_fraction": 1.5})
    with pytest.raises(ValidationError, match="finite"):
        tiny(scenario={"tx_power_dbm": float("nan")})
    cfg = tiny()
    assert CalibrationConfig.model_validate(cfg.model_dump(mode="json")) == cfg
    assert updated(cfg.training, steps=9).steps == 9 and cfg.training.steps == 6
    with pytest.raises(ValidationError):
        updated(cfg.training, steps=0)
    # σ² = k T NF Δf
    assert math.isclose(cfg.scenario.noise_variance, 1.380649e-23 * 290 * 10 ** 0.8 * 240e3, rel_tol=1e-12)


# ---------------------------------------------------------------------------------- station
def test_station_channel_matches_explicit_sum():
    cfg = tiny()
    sc_cfg = cfg.scenario
    st = Station(sc_cfg, 3, dtype=torch.float64)
    sc = st.draw_scenes(4, torch.Generator().manual_seed(0))
    tx, rx = st.true_models()
    f = precoder(tx, sc, cfg)
    Y = st.sense(f, sc, None)
    y = st.ue_receive(f, sc, None)
    n = torch.arange(sc_cfg.num_subcarriers, dtype=torch.float64)
    ref = torch.zeros_like(Y)
    ref_ue = torch.zeros_like(y)
    for b in range(4):
        for k in range(sc_cfg.max_targets):
            if not sc.target_mask[b, k]:
                continue
            th = sc.target_angle[b, k].reshape(1)
            at, ar = tx.steering(th)[:, 0], rx.steering(th)[:, 0]
            bvec = torch.exp(-2j * math.pi * n * sc_cfg.subcarrier_spacing * sc.target_delay[b, k])
            ref[b] += sc.target_gain[b, k] * torch.outer(ar, (at @ f[b]) * sc.symbols[b] * bvec)
        for p in range(sc.ue_path_angle.shape[-1]):
            at = tx.steering(sc.ue_path_angle[b, p].reshape(1))[:, 0]
            bvec = torch.exp(-2j * math.pi * n * sc_cfg.subcarrier_spacing * sc.ue_path_delay[b, p])
            ref_ue[b] += sc.ue_path_gain[b, p] * (at @ f[b]) * bvec * sc.symbols[b]
    torch.testing.assert_close(Y, ref)
    torch.testing.assert_close(y, ref_ue)
    assert torch.allclose(torch.linalg.vector_norm(f, dim=-1), torch.ones(4, dtype=torch.float64))


def test_threshold_gives_target_false_alarm_rate():
    cfg = tiny(receiver={"pfa": 0.05})
    st = Station(cfg.scenario, 0)
    tr = Transceiver(cfg, learnable_array(8, cfg.scenario), learnable_array(8, cfg.scenario))
    thr = calibrate_threshold(tr, st.draw_scenes(2000, torch.Generator().manual_seed(0)),
                              torch.Generator().manual_seed(1))
    sc = st.draw_scenes(2000, torch.Generator().manual_seed(2))
    W = st.noise((2000, 8, 16), torch.Generator().manual_seed(3))
    stat = tr.noise_statistic(W, sc)
    # the same statistic as the receiver's first OMP step without a threshold
    ref = omp_detect(W, sc.symbols, tr.rx, tr.grid, tr.grid.window_start(sc.sector_center), 1, None,
                     cfg.scenario.noise_variance).statistic[:, 0]
    assert torch.equal(stat, ref)
    pfa = float((stat > thr).double().mean())
    sd = math.sqrt(0.05 * 0.95 / 2000) + math.sqrt(0.05 * 0.95 / 2000)  # quantile + test noise
    assert abs(pfa - 0.05) < 4 * sd


def test_noise_free_on_grid_target_through_the_transceiver():
    """A target on a grid point, no noise: the transceiver's OMP finds it exactly and the
    residual (and the supervised LS residual at the truth) vanishes."""
    cfg = tiny(scenario={"max_targets": 1, "min_targets": 1}, receiver={"omp_iterations": 1})
    st = Station(cfg.scenario, 5, dtype=torch.float64)
    tx, rx = st.true_models()
    tr = Transceiver(cfg, tx, rx)
    grid = tr.grid
    sc = st.draw_scenes(2, torch.Generator().manual_seed(0))
    ia, idl = torch.tensor([30, 60]), torch.tensor([5, 17])
    sc.target_angle[:, 0], sc.target_range[:, 0] = grid.angles[ia], grid.delays[idl] * 299_792_458.0 / 2
    sc.sector_center = sc.target_angle[:, 0].clone()
    Y = st.sense(tr.precoder(sc), sc, None)
    tr.threshold.fill_(0.0)
    det = tr.detect(Y, sc)
    assert det.angle_index[:, 0].tolist() == ia.tolist() and det.delay_index[:, 0].tolist() == idl.tolist()
    energy = Y.abs().pow(2).sum((-2, -1))
    assert (det.residual / energy).max() < 1e-10
    res = residual_energy(Y, sc.symbols, rx, sc.target_angle, sc.target_delay, sc.target_mask, cfg.scenario.ofdm)
    assert (res / energy).max() < 1e-10


# ---------------------------------------------------------------------------------- training
class SealedStation(Station):
    """A station whose TRUE impairments can be reached only inside its observation calls, and
    whose observation refuses a precoder that carries a gradient (no true-channel gradient)."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.__dict__["_sealed"] = {"tx": self.__dict__.pop("_tx_true"), "rx": self.__dict__.pop("_rx_true")}

    def __getattr__(self, name):
        if name in ("_tx_true", "_rx_true"):
            if not self.__dict__.get("_observing", False):
                raise RuntimeError(f"calibration read the true impairments ({name})")
            return self.__dict__["_sealed"][name[1:3]]
        raise AttributeError(name)

    def sense(self, f, scenes, generator):
        if f.requires_grad:
            raise RuntimeError("calibration differentiated through the true channel")
        self.__dict__["_observing"] = True  # the property-free flag used by __getattr__
        try:
            return super().sense(f, scenes, generator)
        finally:
            self.__dict__["_observing"] = False

    def ue_receive(self, f, scenes, generator):
        if f.requires_grad:
            raise RuntimeError("calibration differentiated through the true channel")
        self.__dict__["_observing"] = True
        try:
            return super().ue_receive(f, scenes, generator)
        finally:
            self.__dict__["_observing"] = False

    def true_models(self):
        raise RuntimeError("calibration read the true impairments (true_models)")


@pytest.mark.parametrize("method", ["unsupervised_residual", "unsupervised_max_response",
                                    "unsupervised_max_response_adm", "supervised"])
def test_calibration_never_reads_true_impairments(method):
    cfg = tiny(training={"steps": 3})
    st = SealedStation(cfg.scenario, 4)
    tr, log, _ = calibrate_method(method, cfg, st, seed=0)
    assert len(log.records) > 0
    # the guard itself works: the baselines that need the truth are refused
    with pytest.raises(RuntimeError, match="true impairments"):
        calibrate_method("perfect", cfg, st, seed=0)
    with pytest.raises(RuntimeError, match="true channel"):
        calibrate_method("true_gradient", cfg, st, seed=0)


def test_training_is_deterministic_on_cpu():
    cfg = tiny(training={"steps": 4})
    st = Station(cfg.scenario, 7)
    a = calibrate_method("unsupervised_residual", cfg, st, seed=3).transceiver
    b = calibrate_method("unsupervised_residual", cfg, st, seed=3).transceiver
    c = calibrate_method("unsupervised_residual", cfg, st, seed=4).transceiver
    sa, sb, sc_ = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc_[k]) for k in sa if sa[k].is_floating_point())
    # the method's training config (with its named training seed) is recorded in the transceiver
    assert a.config.training.sensing_loss == "residual" and a.config.training.seed != cfg.training.seed


def test_perfect_model_does_not_drift():
    """Started at the true impairments, training keeps them: with no systematic gradient at
    the truth the parameters only jitter (a random walk of Adam steps), far less than the
    uncalibrated error or the ~20 lr a biased gradient would move them in 20 steps.  Mean
    over three training seeds (the jitter of one run is broad)."""
    cfg = tiny(training={"steps": 20, "batch_size": 16, "lr": 2e-2})
    st = Station(cfg.scenario, 9)
    ttx, trx = st.true_models()
    state = {**{f"tx.{k}": v for k, v in ttx.state_dict().items()}, **{f"rx.{k}": v for k, v in trx.state_dict().items()}}
    start_err = parameter_errors(learnable_array(8, cfg.scenario, name="rx"), trx)
    end = []
    for seed in range(3):
        tr = Transceiver(updated(cfg, training=updated(cfg.training, seed=seed)),
                         learnable_array(8, cfg.scenario, name="tx"), learnable_array(8, cfg.scenario, name="rx"))
        tr.load_state_dict({**tr.state_dict(), **state})
        calibrate_threshold(tr, st.draw_scenes(200, torch.Generator().manual_seed(0)), torch.Generator().manual_seed(1))
        train_calibration(tr, st)
        end.append(parameter_errors(tr.rx, trx))
    assert sum(e["phase_err_deg"] for e in end) / 3 < 0.5 * start_err["phase_err_deg"]
    assert sum(e["position_err_mm"] for e in end) / 3 < 0.3 * start_err["position_err_mm"]


def test_saved_calibration_reloads_with_weights_only(tmp_path):
    cfg = tiny(training={"steps": 2})
    st = Station(cfg.scenario, 1)
    tr = calibrate_method("unsupervised_residual", cfg, st, seed=0).transceiver
    save_calibration(tr, tmp_path / "cal", {"method": "unsupervised_residual"})
    back = load_calibration(tmp_path / "cal")
    assert back.config == tr.config
    for k, v in tr.state_dict().items():
        assert torch.equal(back.state_dict()[k], v), k
    # the .pt form of the same weights loads with weights_only=True
    torch.save(tr.state_dict(), tmp_path / "w.pt")
    state = torch.load(tmp_path / "w.pt", weights_only=True)
    assert set(state) == set(tr.state_dict())
    # the reloaded calibration detects exactly as the original on new data
    sc = st.draw_scenes(4, torch.Generator().manual_seed(5))
    with torch.no_grad():
        Y = st.sense(tr.precoder(sc), sc, torch.Generator().manual_seed(6))
        s1, s2 = tr.detect(Y, sc), back.detect(Y, sc)
    assert torch.equal(s1.angle_index, s2.angle_index) and torch.equal(s1.angle, s2.angle)


def test_learning_rate_schedule_is_constant_or_a_cosine_to_the_last_step():
    """S0's schedule through fit: constant by default; ``scheduler="cosine"`` anneals from lr
    to ``final_lr_fraction``·lr at the LAST step: f + (1 − f)(1 + cos(π t/(T − 1)))/2."""
    const = tiny(training={"steps": 11}).training
    assert all(lr_factor(t, const) == 1.0 for t in range(11))
    cos = tiny(training={"steps": 11, "scheduler": "cosine", "final_lr_fraction": 0.1}).training
    fac = [lr_factor(t, cos) for t in range(11)]
    assert math.isclose(fac[0], 1.0) and math.isclose(fac[-1], 0.1, abs_tol=1e-12)
    assert math.isclose(fac[5], 0.55)                        # half-way: the mean of the two ends
    assert all(a > b for a, b in zip(fac, fac[1:]))
    # ... and the optimiser uses it: the Rx gain group's lr at each logged step
    st = Station(tiny().scenario, 2)
    cfg = tiny(training={"steps": 11, "scheduler": "cosine", "final_lr_fraction": 0.1, "log_every": 1})
    log = calibrate_method("unsupervised_residual", cfg, st, seed=0).log
    assert [r["lr"] for r in log.records] == pytest.approx([2e-2 * f for f in fac], rel=1e-12)


@pytest.mark.parametrize("tx_from_sensing", [False, True])
def test_sensing_only_training_moves_the_tx_model_only_if_asked(tx_from_sensing):
    """At w = 1 (no comm loss) nothing but the sensing surrogate can move the Tx model."""
    cfg = tiny(training={"steps": 5, "loss_weight": 1.0, "tx_from_sensing": tx_from_sensing})
    st = Station(cfg.scenario, 3)
    tr = calibrate_method("unsupervised_residual", cfg, st, seed=0).transceiver
    nominal = learnable_array(8, cfg.scenario, name="tx").state_dict()
    moved = [not torch.equal(v, nominal[k]) for k, v in tr.tx.state_dict().items()]
    assert any(moved) == tx_from_sensing
    rx_nominal = learnable_array(8, cfg.scenario, name="rx").state_dict()
    assert any(not torch.equal(v, rx_nominal[k]) for k, v in tr.rx.state_dict().items())   # the Rx did learn


# ---------------------------------------------------------------------------------- evaluation
def _model(gain, phase, disp, wavelength=0.1):
    from isackit.geometry.arrays import ula

    m = len(gain)
    return ArrayModel(ula(m, 0.5, wavelength).to(torch.float64),
                      [ElementDisplacement(torch.tensor(disp, dtype=torch.float64)),
                       GainPhaseError(torch.tensor(gain, dtype=torch.float64),
                                      torch.tensor(phase, dtype=torch.float64))])


def test_alignment_removes_exactly_the_unidentifiable_common_terms():
    cfg = ScenarioConfig(num_tx=6, num_rx=6)
    true = impaired_array(6, cfg, torch.Generator().manual_seed(3), torch.float64)
    gp = true.impairments[1]
    disp = true.impairments[0].displacement
    # same array up to a common phase (wrapping past ±π), a common gain factor and a translation
    shifted = _model((gp.gain * 1.7).tolist(), (gp.phase + 3.0).tolist(),
                     (disp + torch.tensor([1e-3, -2e-3, 0.0])).tolist(), cfg.wavelength)
    a = aligned_parameters(shifted, true)
    for k in ("phase_deg", "gain_db", "displacement_mm"):
        torch.testing.assert_close(a[f"{k}_learned"], a[f"{k}_true"], atol=1e-9, rtol=0)
    assert all(v < 1e-9 for v in parameter_errors(shifted, true).values())
    # closed form: phases ±a around a common offset, gains ±g dB, displacements ±d
    z = [[0.0, 0.0, 0.0]] * 2
    err = parameter_errors(_model([10 ** (0.5 / 20), 10 ** (-0.5 / 20)], [0.7 + 0.2, 0.7 - 0.2],
                                  [[0.0, 1e-3, 0.0], [0.0, -1e-3, 0.0]]), _model([1.0, 1.0], [0.0, 0.0], z))
    assert err["phase_err_deg"] == pytest.approx(math.degrees(0.2), rel=1e-12)
    assert err["gain_err_db"] == pytest.approx(0.5, rel=1e-12)
    assert err["position_err_mm"] == pytest.approx(1.0, rel=1e-12)
    # the nominal model's aligned parameters: flat gains, zero phases, zero displacement
    nominal = aligned_parameters(learnable_array(6, cfg, torch.float64), true)
    assert float(nominal["phase_deg_learned"].abs().max()) < 1e-9
    assert float(nominal["gain_db_learned"].std()) < 1e-12
    with pytest.raises(ValueError, match="differ in size"):
        aligned_parameters(learnable_array(5, cfg, torch.float64), true)


def test_monitor_records_errors_without_changing_training():
    cfg = tiny(training={"steps": 3})
    st = Station(cfg.scenario, 5)
    ttx, trx = st.true_models()
    calls = []

    def monitor(tr):
        calls.append(1)
        return {"phase_err_deg_rx": parameter_errors(tr.rx, trx)["phase_err_deg"]}

    a, la, _ = calibrate_method("unsupervised_residual", cfg, st, seed=1)
    b, lb, _ = calibrate_method("unsupervised_residual", updated(cfg, training=updated(cfg.training, log_every=1)),
                                st, seed=1, monitor=monitor)
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    assert len(calls) == 3 and [r["step"] for r in lb.records] == [0, 1, 2]
    assert lb.records[-1]["phase_err_deg_rx"] == pytest.approx(parameter_errors(b.rx, trx)["phase_err_deg"])
    assert [r["loss"] for r in la.records] == [lb.records[0]["loss"], lb.records[-1]["loss"]]


# ---------------------------------------------------------------------------------- experiment
def _experiment_config(tmp_path, **kw):
    from isackit.experiments.plugins.calibration import CalibrationExperimentConfig

    return CalibrationExperimentConfig.model_validate(
        {"experiment": "calibration", "trials": 16, "chunk": 16, **TINY, "training": {**TINY["training"], "steps": 2},
         **kw})


def test_experiment_unit_rows_cover_every_method(tmp_path, monkeypatch):
    """The registered experiment at a tiny size: one row per (method, metric), all finite;
    the moments in the rows' extra give the same values and intervals around them; with a
    model store the calibrations are its artifacts, and a second run reuses them."""
    from isackit.experiments import WorkUnit
    from isackit.experiments.plugins.calibration import CalibrationExperiment
    from isackit.experiments.units import aggregate_rows
    from isackit.metrics import ratio_interval
    from isackit.systems.calibration.methods import METHODS

    monkeypatch.setenv("ISACKIT_MODEL_CACHE", str(tmp_path))
    cfg = _experiment_config(tmp_path, model_dir="models")
    exp = CalibrationExperiment()
    assert [p["w"] for p in exp.points(cfg)] == [0.5, 0.0, 1.0]
    steps = []
    unit = WorkUnit(0, {"w": 0.5}, 0, 16, 123, progress=lambda done, total, what: steps.append((what, done, total)))
    result = exp.run_unit(cfg, unit, torch.device("cpu"))
    rows = result.rows
    agg = aggregate_rows(rows)
    assert {m for m, _ in agg} == set(METHODS)
    for m in METHODS:
        for metric in ("gospa_m", "pd", "pfa", "ser", "ue_snr_db"):
            assert math.isfinite(agg[(m, metric)][0]), (m, metric)
    for r in rows:
        if r.metric in ("gospa_m", "rmse_m", "pd", "ser") and r.count:
            sx, sy, *_ = r.extra["moments"]
            value = agg[(r.method, r.metric)][0]
            ratio = sx / sy
            assert math.isclose(value, math.sqrt(ratio) if r.kind == "rmse" else ratio, rel_tol=1e-12)
            lo, hi = ratio_interval(*r.extra["moments"])
            assert lo <= ratio <= hi or math.isnan(lo)
    # the progress moved within the unit, per trained method
    trained = [m for m in METHODS if METHODS[m] is not None]
    assert [s for s in steps if s[1] == 2] == [(m, 2, 2) for m in trained]
    # one stored calibration per trained method, reloadable from its record
    assert sorted(a["name"] for a in result.artifacts) == sorted(f"calibration-{m}" for m in trained)
    record = next(a for a in result.artifacts if a["name"] == "calibration-unsupervised_residual")
    assert (tmp_path / "models").resolve() in __import__("pathlib").Path(record["path"]).resolve().parents
    back = load_stored_calibration(record)
    assert back.config.training.sensing_loss == "residual" and math.isfinite(float(back.threshold))
    # a second run takes the calibrations from the store: the same rows, no training
    steps.clear()
    again = exp.run_unit(cfg, unit, torch.device("cpu"))
    assert steps == [] and again.artifacts == result.artifacts
    assert [(r.method, r.metric, r.total, r.count) for r in again.rows] == \
        [(r.method, r.metric, r.total, r.count) for r in rows]


def test_calibration_through_the_model_store_equals_direct_training(tmp_path):
    cfg = tiny(training={"steps": 2})
    st = Station(cfg.scenario, 1)
    direct = calibrate_method("unsupervised_residual", cfg, st, seed=0)
    stored = calibrate_method("unsupervised_residual", cfg, st, seed=0, store=ModelStore(tmp_path),
                              identity={"device_seed": 1})
    for k, v in direct.transceiver.state_dict().items():
        assert torch.equal(stored.transceiver.state_dict()[k], v), k
    assert [r["loss"] for r in stored.log.records] == [r["loss"] for r in direct.log.records]
    # another device is another model
    other = calibrate_method("unsupervised_residual", cfg, st, seed=0, store=ModelStore(tmp_path),
                             identity={"device_seed": 2})
    assert other.record["key"] != stored.record["key"]


def test_experiment_config_rejects_unknown_methods_and_fields(tmp_path):
    with pytest.raises(ValidationError, match="unknown method"):
        _experiment_config(tmp_path, methods=["bogus"])
    with pytest.raises(ValidationError, match="nonsense"):
        _experiment_config(tmp_path, scenario={"nonsense": 1})
    with pytest.raises(ValidationError, match="tradeoff_weights"):
        _experiment_config(tmp_path, tradeoff_weights=[1.5])
    cfg = _experiment_config(tmp_path, training={"loss_weight": 0.25})
    assert cfg.system().training.loss_weight == 0.25 and cfg.system(0.75).training.loss_weight == 0.75
    assert cfg.system(0.75).scenario == cfg.scenario


def test_summary_table_and_headline_ratios():
    """The summary hook: one row per method at the main weight, and the issue's ratios."""
    import pandas as pd

    from isackit.experiments.plugins.calibration import SUMMARY_METRICS, CalibrationExperiment

    rows = []
    values = {"uncalibrated": (5.6, 0.6, 0.03), "perfect": (3.0, 0.2, 0.004), "supervised": (3.0, 0.22, 0.0038),
              "unsupervised_residual": (3.0, 0.25, 0.0040)}
    for m, (g, r, ser) in values.items():
        rows += [(m, "gospa_m", g, 0.5), (m, "rmse_m", r, 0.5), (m, "ser", ser, 0.5), (m, "pd", 0.9, 0.5)]
    rows += [("unsupervised_residual", "rmse_m", 0.7, 0.0)]   # a trade-off point: not in the table
    df = pd.DataFrame(rows, columns=["method", "metric", "value", "w"]).assign(n_trials=1024)
    table, lines = CalibrationExperiment().summary(df)
    assert list(table["method"]) == list(values)
    assert list(table.columns) == ["method"] + [title for _, title in SUMMARY_METRICS]
    assert table.loc[table["method"] == "unsupervised_residual", "RMSE matched (m)"].item() == 0.25
    text = "\n".join(lines)
    assert "w = 0.5" in text
    assert f"unsupervised_residual / supervised RMSE: {0.25 / 0.22:.3f}  (target ≤ 1.25: met)" in text
    assert f"unsupervised_residual / uncalibrated RMSE: {0.25 / 0.6:.3f}  (target < 0.5: met)" in text
    assert f"unsupervised_residual / perfect SER: {0.004 / 0.004:.3f}" in text
