"""The benchmark scripts run (tiny sizes; no timing assertions — speed is measured, never tested)."""

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_bench_doa_quick_runs(tmp_path):
    bench = _load("bench_doa")
    out = bench.main(["--quick", "--trials", "3", "--snrs", "10", "--out", str(tmp_path)])
    data = json.loads((tmp_path / "bench_doa_quick.json").read_text())
    assert (tmp_path / "bench_doa_quick.csv").exists() and (tmp_path / "bench_doa_quick.md").exists()
    run = {r["estimator"] for r in data["rows"]}
    # every registered estimator is either run or listed as skipped with a reason
    assert run | set(data["meta"]["skipped"]) == set(data["meta"]["registered"])
    assert run, "no estimator could be benchmarked"
    assert data["meta"]["errors"] == [], data["meta"]["errors"]
    for r in out["rows"]:
        assert r["trials"] == 3 and r["trials_per_s"] > 0 and math.isfinite(r["root_crb_deg"])
        assert 0.0 <= r["failure_rate"] <= 1.0


@pytest.mark.slow
def test_bench_mismatch_quick_runs(tmp_path):
    bench = _load("bench_mismatch")
    out = bench.main(["--quick", "--trials", "4", "--snrs", "30", "--out", str(tmp_path)])
    assert (tmp_path / "bench_mismatch_quick.json").exists()
    row = out["rows"][0]
    assert len(row["rmse_dml_deg"]) == 2 and all(math.isfinite(v) for v in row["root_mcrb_plus_bias_deg"])


@pytest.mark.slow
def test_bench_calibration_quick_runs(tmp_path):
    bench = _load("bench_calibration")
    out = bench.main(["--quick", "--threads", "1", "--steps", "1", "--batch", "8", "--cases", "multi,multi_full",
                      "--out", str(tmp_path)])
    assert (tmp_path / "bench_calibration_quick.json").exists()
    rows = {r["case"]: r for r in out["rows"]}
    assert set(rows) == {"multi", "multi_full"}
    assert rows["multi_full"]["window"] == rows["multi_full"]["angle_grid"]  # the whole grid is searched
    assert rows["multi"]["window"] < rows["multi"]["angle_grid"]              # only the prior sector
    assert all(r["scenes_per_s"] > 0 and r["peak_rss_gib"] > 0 for r in rows.values())


def test_positioning_ratios_match_the_results_table(tmp_path, capsys):
    """Ratios of a committed S4 run folder equal RMSE / bound read directly from its rows."""
    import pandas as pd

    ratios = _load("positioning_ratios")
    run = ROOT / "benchmarks" / "results" / "positioning_full_cpu" / "snr"
    table = ratios.main([str(run)])[run]
    df = pd.read_parquet(run / "results.parquet")

    def value(method, impairment="spacing", x=30.0, metric="position_rmse_m"):
        row = df[(df.panel == "snr") & (df.impairment == impairment) & (df.x == x)
                 & (df.metric == metric) & (df.method == method)]
        assert len(row) == 1
        return float(row.value.iloc[0])

    got = table[(table.impairment == "spacing") & (table.x == 30.0) & (table.metric == "position")].iloc[0]
    assert got["learned/own"] == pytest.approx(value("learned") / value("PEB (learned)"))
    assert got["benchmark/MCRB"] == pytest.approx(value("benchmark") / value("MCRB (benchmark)"))
    assert table[table.impairment == "none"]["benchmark/MCRB"].isna().all()  # no mismatch, no MCRB
    assert set(table.panel) == {"snr"} and "| AoD BS1 |" in capsys.readouterr().out


def test_positioning_ratios_missing_run_folder_is_a_user_error(tmp_path, capsys):
    ratios = _load("positioning_ratios")
    with pytest.raises(SystemExit) as exc:
        ratios.main([str(tmp_path)])
    assert exc.value.code == 2 and "no results.parquet" in capsys.readouterr().err


def test_positioning_ratios_run_without_ratio_rows_is_a_user_error(tmp_path, capsys):
    import pandas as pd

    ratios = _load("positioning_ratios")
    src = pd.read_parquet(ROOT / "benchmarks" / "results" / "positioning_full_cpu" / "snr" / "results.parquet")
    src[src.panel == "pattern"].to_parquet(tmp_path / "results.parquet")  # pattern panel only
    with pytest.raises(SystemExit) as exc:
        ratios.main([str(tmp_path)])
    assert exc.value.code == 2 and "no snr, sigma or zeta rows" in capsys.readouterr().err


def _calibration_run(folder, frames, fmt_new):
    """A run folder with one unit whose rows carry per-frame moments of GOSPA² and Pd."""
    import torch

    (folder / "units").mkdir(parents=True)
    g = torch.Generator().manual_seed(frames)
    rows = []
    for method, scale in (("uncalibrated", 2.0), ("unsupervised_residual", 1.0)):
        x = scale * torch.rand(frames, generator=g, dtype=torch.float64)
        mom = [float(x.sum()), float(frames), float((x * x).sum()), float(frames), float(x.sum()), frames]
        rows.append({"method": method, "metric": "gospa_m", "kind": "rmse", "total": mom[0], "count": frames,
                     "trials": frames, "extra": {"moments": mom}})
        rows.append({"method": method, "metric": "phase_err_deg_rx", "kind": "mean", "total": 3.0 * scale,
                     "count": 1, "trials": frames, "extra": {}})
    ident = {"point": {"w": 0.5}, "chunk_index": 0}
    unit = {"format": "isackit-unit/2", "identity": ident} if fmt_new else {"unit": ident}
    (folder / "units" / "p0000-c0000.json").write_text(json.dumps({**unit, "rows": rows}))


def test_calibration_compare_reads_both_unit_formats(tmp_path, capsys):
    compare = _load("calibration_compare")
    _calibration_run(tmp_path / "old", 400, fmt_new=False)
    _calibration_run(tmp_path / "new", 401, fmt_new=True)
    out = compare.main([str(tmp_path / "old"), str(tmp_path / "new")])
    assert out["w"] == 0.5 and out["compared"] == 2
    for run in ("old", "new"):
        s = out[run]["unsupervised_residual"]["gospa_m"]
        assert s["lo"] < s["value"] < s["hi"] and math.isclose(s["value"] ** 2, 0.5, rel_tol=0.15)  # x ~ U(0, 1) is GOSPA²
        assert out[run]["uncalibrated"]["phase_err_deg_rx"]["devices"] == [6.0]
    text = capsys.readouterr().out
    assert "| unsupervised_residual | gospa_m |" in text and "differ at the 5 % level" in text
    with pytest.raises(SystemExit):
        compare.main([str(tmp_path / "old"), str(tmp_path / "missing")])


@pytest.mark.slow
def test_bench_pascal_quick_runs(tmp_path):
    bench = _load("bench_pascal")
    out = bench.main(["--quick", "--out", str(tmp_path)])
    assert (tmp_path / "bench_pascal_quick.json").exists()
    assert {r["method"] for r in out["rows"]} == {"MLE (init+music)", "MLE (aoml+init+music)", "AO-ML",
                                                  "MUSIC + ML Doppler"}
    assert all(r["trials_per_s"] > 0 and math.isfinite(r["rmse_phi_deg"]) for r in out["rows"])

@pytest.mark.slow
def test_bench_bistatic_quick_runs(tmp_path):
    bench = _load("bench_bistatic")
    out = bench.main(["--quick", "--threads", "1", "--methods", "PARAMING,IFFT-C2VNN (W=3),Bartlett (grid)",
                      "--out", str(tmp_path)])
    assert (tmp_path / "bench_bistatic_quick.json").exists() and (tmp_path / "bench_bistatic_quick.md").exists()
    rows = {r["method"]: r for r in out["rows"]}
    assert set(rows) == {"PARAMING", "IFFT-C2VNN (W=3)", "Bartlett (grid)"}
    assert all(r["batched_per_s"] > 0 and r["loop_per_s"] > 0 and r["ops_per_scene"] > 0 for r in rows.values())
