"""The `doa` experiment: its bounds are the right ones and the estimators reach them."""

from __future__ import annotations

import math

import pytest
import torch

from isackit.bounds import mcrb_deterministic
from isackit.experiments import resolve_spec, run_experiment
from isackit.experiments.plugins.doa import DoaExperiment, build_array_model, build_estimator


def _config(**over):
    return resolve_spec("doa", quick=True, overrides=list(over.items())).config


def test_mcrb_with_virtual_snapshots_equals_full_stacking():
    """The experiment computes the MCRB with K virtual snapshots L (L Lᴴ = S Sᴴ); it must
    equal the bound with all N snapshots stacked."""
    config = _config(snapshots=6)
    th = torch.deg2rad(torch.tensor(config.angles_deg, dtype=torch.float64))
    true_model = build_array_model(config, "coupling", torch.float64)
    S = torch.randn(2, 6, dtype=torch.complex128, generator=torch.Generator().manual_seed(1))
    rows = {r.method: r.total for r in DoaExperiment.bounds(config, true_model, th, S)}
    ideal = true_model.ideal()
    eye = torch.eye(6, dtype=torch.complex128)
    mu = (true_model.steering(th) @ S).mT.reshape(-1)
    full = mcrb_deterministic(mu, lambda t: torch.kron(eye, ideal.steering(t)), th, 1.0)
    expect = math.degrees(math.sqrt(float(torch.diagonal(full.mse_bound).sum()) / 2))
    assert rows["MCRB"] == pytest.approx(expect, rel=1e-6)
    assert rows["CRB"] < rows["MCRB"]


def test_ideal_array_has_no_mcrb_and_identity_model():
    config = _config()
    th = torch.deg2rad(torch.tensor(config.angles_deg, dtype=torch.float64))
    model = build_array_model(config, "ideal", torch.float64)
    assert len(model.impairments) == 0
    S = torch.ones(2, 4, dtype=torch.complex128)
    assert [r.method for r in DoaExperiment.bounds(config, model, th, S)] == ["CRB"]


def test_impaired_arrays_are_fixed_realisations_of_the_seed():
    c = _config()
    for imp in ("gain_phase", "coupling", "displacement"):
        a = build_array_model(c, imp, torch.float64).steering(torch.tensor([0.1], dtype=torch.float64))
        b = build_array_model(c, imp, torch.float64).steering(torch.tensor([0.1], dtype=torch.float64))
        ideal = build_array_model(c, "ideal", torch.float64).steering(torch.tensor([0.1], dtype=torch.float64))
        assert torch.equal(a, b) and not torch.allclose(a, ideal)
    other = _config(seed=5)
    assert not torch.equal(build_array_model(other, "gain_phase").steering(torch.tensor([0.1])),
                           build_array_model(c, "gain_phase").steering(torch.tensor([0.1])))


def test_estimators_are_built_from_the_registry():
    c = _config()
    for name in c.estimators:
        est = build_estimator(name, c, build_array_model(c, "ideal").assumed())
        assert est.name == name


@pytest.mark.slow
def test_estimators_reach_crb_ideal_and_mcrb_impaired(tmp_path):
    """30 dB, 200 trials: on the ideal ULA DML and root-MUSIC are efficient (RMSE ≈ CRB);
    with an unknown gain-phase error their RMSE sits on the MCRB floor, far above the CRB.
    Tolerances: the RMSE over 200 trials × 2 sources has a relative std of ≈ 1/sqrt(800)
    = 3.5 %; asymptotic efficiency at N = 64 allows a few % more."""
    spec = resolve_spec("doa", overrides=[("trials", 200), ("chunk", 100), ("estimators", ["dml", "root_music"]),
                                          ("sweep.snr_db", [30.0]), ("sweep.impairment", ["ideal", "gain_phase"])])
    df = run_experiment(spec, out=tmp_path / "run", figures=False).results
    v = df[df.metric == "rmse_deg"].set_index(["impairment", "method"])["value"]
    for m in ("dml", "root_music"):
        assert 0.85 < v["ideal", m] / v["ideal", "CRB"] < 1.2
        assert 0.85 < v["gain_phase", m] / v["gain_phase", "MCRB"] < 1.2
    assert v["gain_phase", "MCRB"] > 10 * v["gain_phase", "CRB"]


def test_unit_reports_progress_per_estimator():
    from isackit.experiments import InProcessEngine, plan_units

    spec = resolve_spec("doa", quick=True, overrides=[("estimators", ["music", "root_music"]),
                                                      ("sweep.snr_db", [10.0]), ("sweep.impairment", ["ideal"])])
    unit = plan_units(spec.experiment, spec.config)[0]
    seen = []
    InProcessEngine().run(spec.experiment, spec.config, [unit], torch.device("cpu"), lambda u, r, s: None,
                          progress_for=lambda u: lambda d, t, w: seen.append((d, t, w)))
    assert seen == [(0, 2, "estimators"), (1, 2, "estimators")]


def test_summary_rows_are_methods_with_bounds_beside(tmp_path):
    spec = resolve_spec("doa", quick=True, overrides=[("estimators", ["music", "root_music"]),
                                                      ("sweep.impairment", ["ideal", "gain_phase"])])
    res = run_experiment(spec, out=tmp_path / "run", figures=False)
    table, lines = res.summary, res.headlines
    assert table["method"].tolist() == ["music", "root_music", "CRB", "MCRB"]
    assert list(table.columns) == ["method", "ideal", "gain_phase", "fail@0dB"]
    rmse = res.results.query("metric == 'rmse_deg' and snr_db == 20 and impairment == 'gain_phase'")
    assert table.set_index("method").loc["MCRB", "gain_phase"] == rmse.set_index("method").loc["MCRB", "value"]
    assert any(line.startswith("gain_phase at 20 dB: best ") and "× MCRB" in line and "× CRB" in line for line in lines)
    assert "## Summary" in (res.path / "summary.md").read_text()
