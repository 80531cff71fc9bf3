"""The S2 benchmark script runs (tiny sizes; speed is measured, never asserted)."""

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_direction_finding_quick_runs(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_direction_finding",
                                                  ROOT / "benchmarks" / "bench_direction_finding.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_direction_finding"] = mod
    spec.loader.exec_module(mod)
    out = mod.main(["--quick", "--samples", "8", "--batch", "8", "--repeats", "1", "--out", str(tmp_path)])
    data = json.loads((tmp_path / "bench_direction_finding_quick.json").read_text())
    kinds = {(r["kind"], r["model"].split(" ")[0]) for r in data["rows"]}
    assert {("train", "autoencoder"), ("train", "MoDL-SSR"), ("train", "DeepMUSIC"), ("train", "CNN")} <= kinds
    assert {m for k, m in kinds if k == "inference"} == {"MUSIC", "DBF", "DeepMUSIC", "CNN", "MoD-DNN"}
    assert all(r["samples_per_s"] > 0 and math.isfinite(r["samples_per_s"]) for r in out["rows"])
