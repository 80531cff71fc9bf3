"""S0 (seed 000) figures: learning curves, sensing–comm trade-off, learned vs true.

One smoke-size run of the ``calibration`` experiment (2 devices, 2 loss weights, both
unsupervised losses at both) is shared by the figure tests; the figures' data are checked
against the rows of the run (same numbers through different code paths), not images.
"""

from __future__ import annotations

import math

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

from isackit.experiments import resolve_spec, run_experiment  # noqa: E402
from isackit.impairments.base import ArrayModel  # noqa: E402
from isackit.impairments.displacement import ElementDisplacement  # noqa: E402
from isackit.impairments.gain_phase import GainPhaseError  # noqa: E402
from isackit.plotting import experiment_figures, unit_rows  # noqa: E402
from isackit.systems.calibration import figures as F  # noqa: E402
from isackit.systems.calibration.config import CalibrationConfig  # noqa: E402
from isackit.systems.calibration.evaluation import aligned_parameters, parameter_errors  # noqa: E402
from isackit.systems.calibration.experiment import calibrate_method  # noqa: E402
from isackit.systems.calibration.station import Station, impaired_array, learnable_array  # noqa: E402

TRAINED = ["supervised", "true_gradient", "unsupervised_residual", "unsupervised_max_response",
           "unsupervised_max_response_adm"]
STEPS = 3


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cal") / "run"
    spec = resolve_spec("calibration", smoke=True, overrides=[
        ("trials", 16), ("chunk", 8), ("curve_every", 1), ("scenario.steps", STEPS),
        ("tradeoff_methods", list(F.UNSUPERVISED))])
    res = run_experiment(spec, out=out, figures=False)
    # the experiment's own figures, through the hook plot_results calls after the generic ones
    figures = experiment_figures(res.results, res.meta, out / "figures", out)
    return res, unit_rows(out), figures


def _row_value(units, w, device, method, metric):
    for u, rows in units:
        if math.isclose(u.point["w"], w) and u.chunk_index == device:
            (r,) = [r for r in rows if r.method == method and r.metric == metric]
            return r.total / r.count
    raise KeyError((w, device, method, metric))


def test_run_writes_the_calibration_figures(run):
    res, _, paths = run
    names = {p.name for p in paths}
    assert len(names) == len(paths) == 10
    for stem in ("tradeoff", "learning_curves_device0", "learning_curves_device1",
                 "learned_vs_true_device0", "learned_vs_true_device1"):
        for ext in ("png", "svg"):
            assert f"{stem}.{ext}" in names
            assert (res.path / "figures" / f"{stem}.{ext}").stat().st_size > 0


def test_tradeoff_figure_has_one_point_per_w_and_the_references(run):
    res, _, _ = run
    df = res.results
    assert F.main_weight(df) == 0.5
    fig = F.tradeoff_figure(df)
    for ax, metric in zip(fig.axes, ("gospa_m", "rmse_m"), strict=True):
        lines = {ln.get_label(): ln for ln in ax.get_lines()}
        assert set(lines) == {*F.UNSUPERVISED, *F.REFERENCES}
        for m in F.UNSUPERVISED:
            sel = df[(df["method"] == m)]
            expect_x = [float(sel[(sel["metric"] == "ser") & (sel["w"] == w)]["value"].iloc[0]) for w in (0.5, 1.0)]
            expect_y = [float(sel[(sel["metric"] == metric) & (sel["w"] == w)]["value"].iloc[0]) for w in (0.5, 1.0)]
            assert list(lines[m].get_xdata()) == expect_x and list(lines[m].get_ydata()) == expect_y
        for m in F.REFERENCES:
            assert len(lines[m].get_xdata()) == 1
        labels = sorted(t.get_text() for t in ax.texts)
        assert labels == sorted(["w=0.5", "w=1"] * len(F.UNSUPERVISED))
    matplotlib.pyplot.close(fig)


def test_learning_curves_per_device_end_at_the_reported_errors(run):
    _, units, _ = run
    curves = F.learning_curves(units, 0.5)
    assert sorted(curves) == [0, 1]
    for device, by_method in curves.items():
        assert sorted(by_method) == sorted(TRAINED)
        fig = F.learning_curve_figure(by_method)
        assert len(fig.axes) == len(F.CURVE_PANELS)
        for ax, (key, _) in zip(fig.axes, F.CURVE_PANELS, strict=True):
            lines = {ln.get_label(): ln for ln in ax.get_lines()}
            assert set(lines) == set(TRAINED), key
            for method, ln in lines.items():
                ys = list(ln.get_ydata())
                if key in ("loss", "sensing", "comm"):
                    assert list(ln.get_xdata()) == list(range(STEPS))
                    continue
                assert list(ln.get_xdata()) == list(range(STEPS + 1))
                # starts at the uncalibrated model's error and ends at the method's reported one
                assert ys[0] == pytest.approx(_row_value(units, 0.5, device, "uncalibrated", key), rel=1e-9)
                assert ys[-1] == pytest.approx(_row_value(units, 0.5, device, method, key), rel=1e-9)
        loss = [ln for ln in fig.axes[0].get_lines() if ln.get_label() == "unsupervised_residual"][0]
        assert loss.get_ydata()[-1] == pytest.approx(_row_value(units, 0.5, device, "unsupervised_residual",
                                                                "final_loss"), rel=1e-9)
        matplotlib.pyplot.close(fig)


def test_learned_vs_true_figure_matches_the_reported_errors(run):
    _, units, _ = run
    params = F.element_parameters(units, 0.5)
    assert sorted(params) == [0, 1]
    methods = ["uncalibrated", *TRAINED]
    for device, elements in params.items():
        fig = F.learned_vs_true_figure(elements)
        assert len(fig.axes) == 2 * len(F.ELEMENT_PANELS)
        for ax in fig.axes:
            lines = {ln.get_label(): ln for ln in ax.get_lines()}
            assert set(lines) == {"true", *methods}
            assert all(len(ln.get_xdata()) == 8 for ln in lines.values())
        for row, side in enumerate(("tx", "rx")):
            phase_ax = fig.axes[row * len(F.ELEMENT_PANELS) + 1]
            lines = {ln.get_label(): ln for ln in phase_ax.get_lines()}
            true = torch.tensor(lines["true"].get_ydata(), dtype=torch.float64)
            for m in methods:
                d = torch.deg2rad(torch.tensor(lines[m].get_ydata(), dtype=torch.float64) - true)
                rms = math.degrees(float(torch.angle(torch.polar(torch.ones_like(d), d)).pow(2).mean().sqrt()))
                assert rms == pytest.approx(_row_value(units, 0.5, device, m, f"phase_err_deg_{side}"), rel=1e-6)
        matplotlib.pyplot.close(fig)


# ---------------------------------------------------------------------------------- alignment
def _model(gain, phase, disp, wavelength=0.1):
    from isackit.geometry.arrays import ula

    m = len(gain)
    return ArrayModel(ula(m, 0.5, wavelength).to(torch.float64),
                      [ElementDisplacement(torch.tensor(disp, dtype=torch.float64)),
                       GainPhaseError(torch.tensor(gain, dtype=torch.float64),
                                      torch.tensor(phase, dtype=torch.float64))])


def test_alignment_removes_exactly_the_unidentifiable_common_terms():
    cfg = CalibrationConfig(num_tx=6, num_rx=6)
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
    cfg = CalibrationConfig(num_tx=8, num_rx=8, num_subcarriers=16, num_angle_grid=91, num_range_grid=24,
                            max_targets=2, omp_iterations=2, tx_power_dbm=50.0, steps=3, batch_size=8,
                            threshold_frames=200, sector_beam_points=4)
    st = Station(cfg, 5)
    ttx, trx = st.true_models()
    calls = []

    def monitor(tr):
        calls.append(1)
        return {"phase_err_deg_rx": parameter_errors(tr.rx, trx)["phase_err_deg"]}

    a, la = calibrate_method("unsupervised_residual", cfg, st, seed=1)
    b, lb = calibrate_method("unsupervised_residual", cfg, st, seed=1, monitor=monitor, log_every=1)
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    assert len(calls) == STEPS and [r["step"] for r in lb.records] == [0, 1, 2]
    assert lb.records[-1]["phase_err_deg_rx"] == pytest.approx(parameter_errors(b.rx, trx)["phase_err_deg"])
    assert [r["loss"] for r in la.records] == [lb.records[0]["loss"], lb.records[-1]["loss"]]


def test_learning_curves_read_the_older_pair_format():
    from isackit.experiments import WorkUnit
    from isackit.experiments.units import Row

    unit = WorkUnit(0, {"w": 0.5}, 3, 8, 1)
    row = Row("unsupervised_residual", "train_s", "mean", 1.0, 1, 8, extra={"learning_curve": [[0, -0.4], [2, -0.5]]})
    curves = F.learning_curves([(unit, [row])], 0.5)
    assert curves == {3: {"unsupervised_residual": {"curve": {"step": [0, 2], "loss": [-0.4, -0.5]}, "initial": {}}}}
    fig = F.learning_curve_figure(curves[3])
    assert [len(ax.get_lines()) for ax in fig.axes] == [1] + [0] * (len(F.CURVE_PANELS) - 1)
    matplotlib.pyplot.close(fig)
