"""S0 (seed 000) figures of the ``calibration`` experiment: learning curves, sensing–comm
trade-off, learned vs true.

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
from isackit.experiments.plugins import calibration_figures as F  # noqa: E402
from isackit.experiments.plotting import experiment_figures, unit_rows  # noqa: E402

TRAINED = ["supervised", "true_gradient", "unsupervised_residual", "unsupervised_max_response",
           "unsupervised_max_response_adm"]
STEPS = 3


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cal") / "run"
    spec = resolve_spec("calibration", smoke=True, overrides=[
        ("trials", 16), ("chunk", 8), ("training.log_every", 1), ("training.steps", STEPS),
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
