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


@pytest.mark.slow
def test_bench_pascal_quick_runs(tmp_path):
    bench = _load("bench_pascal")
    out = bench.main(["--quick", "--out", str(tmp_path)])
    assert (tmp_path / "bench_pascal_quick.json").exists()
    assert {r["method"] for r in out["rows"]} == {"MLE (init+music)", "MLE (aoml+init+music)", "AO-ML",
                                                  "MUSIC + ML Doppler"}
    assert all(r["trials_per_s"] > 0 and math.isfinite(r["rmse_phi_deg"]) for r in out["rows"])
