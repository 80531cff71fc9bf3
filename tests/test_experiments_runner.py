"""Sweep runner: seeding by unit identity, exact aggregation, atomic storage, kill-and-resume.

A toy experiment (sample mean vs sample median of Gaussian data, with the CRB σ/√n of the
mean) exercises the runner without depending on the physics modules.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from pydantic import BaseModel, ConfigDict, Field

from isackit.experiments import (
    Experiment,
    ExperimentConfig,
    ExperimentError,
    RunStore,
    aggregate,
    bound_row,
    load_results,
    mean_row,
    plan_units,
    register_experiment,
    resolve_spec,
    rmse_row,
    run_experiment,
    unit_seed,
)
from isackit.experiments.store import atomic_write_text
from isackit.experiments.units import Row, aggregate_rows

HERE = Path(__file__).parent
#: a fake installed distribution whose entry point registers ``toy`` (for subprocesses)
ENTRY_POINTS = HERE / "entry_points"


def subprocess_env() -> dict[str, str]:
    """Environment in which a child ``isackit`` finds the toy experiment (through the
    ``isackit.experiments`` entry point of :data:`ENTRY_POINTS`)."""
    path = os.pathsep.join(str(p) for p in (ENTRY_POINTS, HERE, os.environ.get("PYTHONPATH", "")) if str(p))
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}


class ToySweep(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    sigma: list[float] = [0.5, 2.0]
    samples: list[int] = [4, 16]


class ToyConfig(ExperimentConfig):
    sweep: ToySweep = ToySweep()
    mean: float = 1.0
    sleep: float = Field(0.0, ge=0.0)  # seconds per unit (for the kill test)
    gate: str = ""  # if set, every unit waits (up to 120 s) until this file exists (lock tests)


class _Calls:
    """Counts run_unit calls; optionally raises after ``fail_after`` calls."""

    count = 0
    fail_after: int | None = None


@register_experiment("toy", config_model=ToyConfig, description="sample mean vs median of Gaussian data")
class Toy(Experiment):
    x_axis = "samples"

    @staticmethod
    def draw(config, unit, device):
        g = unit.generator(device)
        n = int(unit.point["samples"])
        x = config.mean + unit.point["sigma"] * torch.randn(unit.trials, n, generator=g, device=device,
                                                            dtype=torch.float64)
        return x

    def run_unit(self, config, unit, device):
        if _Calls.fail_after is not None and _Calls.count >= _Calls.fail_after:
            raise RuntimeError("injected failure")
        _Calls.count += 1
        if config.sleep:
            time.sleep(config.sleep)
        deadline = time.monotonic() + 120
        while config.gate and not Path(config.gate).exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        x = self.draw(config, unit, device)
        rows = [
            rmse_row("mean", "rmse", x.mean(-1) - config.mean, unit.trials),
            rmse_row("median", "rmse", x.median(-1).values - config.mean, unit.trials),
            mean_row("mean", "above", (x.mean(-1) > config.mean).double(), unit.trials),
        ]
        if unit.chunk_index == 0:
            rows.append(bound_row("CRB", "rmse", unit.point["sigma"] / math.sqrt(unit.point["samples"])))
        return rows


def toy_spec(tmp_path: Path, body: str = "", name: str = "toy") -> Path:
    p = tmp_path / f"{name}.toml"
    p.write_text(f'experiment = "toy"\ndescription = "toy"\n'
                 f"seed = 7\ntrials = 10\nchunk = 4\n{body}")
    return p


@pytest.fixture(autouse=True)
def _reset_calls():
    _Calls.count, _Calls.fail_after = 0, None
    yield
    _Calls.count, _Calls.fail_after = 0, None


def test_unit_seed_depends_on_identity_only():
    a = unit_seed(1, "toy", {"x": 1.0, "y": "a"}, 0)
    assert a == unit_seed(1, "toy", {"y": "a", "x": 1.0}, 0)  # key order does not matter
    assert len({a, unit_seed(2, "toy", {"x": 1.0, "y": "a"}, 0), unit_seed(1, "toy", {"x": 2.0, "y": "a"}, 0),
                unit_seed(1, "toy", {"x": 1.0, "y": "a"}, 1), unit_seed(1, "other", {"x": 1.0, "y": "a"}, 0)}) == 5
    assert 0 <= a < 2**63


def test_plan_units_chunks_and_points(tmp_path):
    spec = resolve_spec(str(toy_spec(tmp_path)))
    units = plan_units(spec.experiment, spec.config)
    assert len(units) == 4 * 3  # 2 sigmas × 2 sample sizes, 10 trials in chunks of 4
    assert [u.trials for u in units[:3]] == [4, 4, 2]
    assert units[0].point == {"sigma": 0.5, "samples": 4}
    assert len({u.seed for u in units}) == len(units)
    assert len({u.id for u in units}) == len(units)


def test_aggregate_rows_is_exact_over_chunks():
    e1, e2 = torch.tensor([1.0, -2.0, 3.0]), torch.tensor([0.5, float("nan")])
    agg = aggregate_rows([rmse_row("m", "rmse", e1, 3), rmse_row("m", "rmse", e2, 2),
                          bound_row("CRB", "rmse", 0.25), bound_row("CRB", "rmse", 0.25)])
    pooled = torch.tensor([1.0, -2.0, 3.0, 0.5])
    assert agg[("m", "rmse")] == (pytest.approx(math.sqrt(float((pooled ** 2).mean()))), 5, "rmse")
    assert agg[("CRB", "rmse")] == (0.25, 0, "bound")
    with pytest.raises(ValueError, match="both"):
        aggregate_rows([rmse_row("m", "x", e1, 3), mean_row("m", "x", e1, 3)])


def test_results_equal_direct_computation_over_all_trials(tmp_path):
    """The stored RMSE equals sqrt(mean squared error) over every trial of every chunk."""
    spec = resolve_spec(str(toy_spec(tmp_path)))
    res = run_experiment(spec, out=tmp_path / "run", figures=False)
    units = plan_units(spec.experiment, spec.config)
    for pi in {u.point_index for u in units}:
        us = [u for u in units if u.point_index == pi]
        x = torch.cat([Toy.draw(spec.config, u, torch.device("cpu")) for u in us])
        assert x.shape[0] == spec.config.trials
        expect = float(((x.mean(-1) - 1.0) ** 2).mean().sqrt())
        p = us[0].point
        got = res.results.query("sigma == @p['sigma'] and samples == @p['samples'] and method == 'mean' "
                                "and metric == 'rmse'")
        assert len(got) == 1
        assert got["value"].item() == pytest.approx(expect, rel=1e-12)
        assert got["n_trials"].item() == 10


def test_tidy_results_layout_and_outputs(tmp_path):
    spec = resolve_spec(str(toy_spec(tmp_path)))
    res = run_experiment(spec, out=tmp_path / "run")
    df, meta = load_results(res.path)
    assert list(df.columns) == ["sigma", "samples", "method", "metric", "value", "n_trials"]
    assert len(df) == 4 * 4  # 4 points × (mean/rmse, median/rmse, mean/above, CRB/rmse)
    assert meta["bounds"] == ["CRB"] and meta["experiment"] == "toy"
    assert (df.loc[df.method == "CRB", "n_trials"] == 0).all()
    for f in ("config.toml", "env.json", "summary.md", "log.txt", "figures/rmse.png", "figures/rmse.svg",
              "figures/above.png"):
        assert (res.path / f).is_file(), f
    env = json.loads((res.path / "env.json").read_text())
    assert {"python", "torch", "isackit", "numpy", "sionna", "device", "seed", "git_commit"} <= set(env)
    assert env["seed"] == 7
    summary = (res.path / "summary.md").read_text()
    assert "| sigma | samples | metric | mean | median | CRB |" in summary
    # the saved config re-runs to the same numbers
    again = run_experiment(resolve_spec(str(res.path / "config.toml")), out=tmp_path / "again", figures=False)
    pd.testing.assert_frame_equal(again.results, res.results)


def test_statistics_are_sane(tmp_path):
    """Sample mean is efficient for Gaussian data: its RMSE is near σ/√n, median's above."""
    spec = resolve_spec(str(toy_spec(tmp_path)), overrides=[("trials", 400), ("chunk", 200)])
    df = run_experiment(spec, out=tmp_path / "run", figures=False).results
    piv = df[df.metric == "rmse"].pivot_table(index=["sigma", "samples"], columns="method", values="value")
    # RMSE of the mean over 400 trials: relative std ≈ 1/sqrt(2·400) ≈ 3.5 %; allow 4 sigma.
    assert ((piv["mean"] / piv["CRB"] - 1).abs() < 0.15).all()
    assert (piv["median"] > piv["mean"]).all()


def test_interrupt_then_resume_equals_uninterrupted(tmp_path):
    spec = resolve_spec(str(toy_spec(tmp_path)))
    full = run_experiment(spec, out=tmp_path / "full", figures=False)
    total = _Calls.count
    assert total == 12 and full.computed == 12

    _Calls.count, _Calls.fail_after = 0, 5
    with pytest.raises(RuntimeError, match="injected"):
        run_experiment(spec, out=tmp_path / "cut", figures=False)
    stored = sorted((tmp_path / "cut" / "units").glob("*.json"))
    assert len(stored) == 5
    assert not (tmp_path / "cut" / "results.parquet").exists()
    before = {p.name: p.read_bytes() for p in stored}

    _Calls.count, _Calls.fail_after = 0, None
    with pytest.raises(ExperimentError, match="--resume"):
        run_experiment(spec, out=tmp_path / "cut", figures=False)
    resumed = run_experiment(spec, out=tmp_path / "cut", resume=True, figures=False)
    assert _Calls.count == total - 5  # only the unfinished units were computed
    assert (resumed.computed, resumed.reused) == (7, 5)
    assert {p.name: p.read_bytes() for p in stored} == before  # finished units untouched
    pd.testing.assert_frame_equal(resumed.results, full.results)


def test_resume_refuses_another_config(tmp_path):
    spec = resolve_spec(str(toy_spec(tmp_path)))
    run_experiment(spec, out=tmp_path / "run", figures=False)
    other = resolve_spec(str(toy_spec(tmp_path)), overrides=[("seed", 8)])
    with pytest.raises(ExperimentError, match="differs in seed"):
        run_experiment(other, out=tmp_path / "run", resume=True, figures=False)


def test_resume_without_out_finds_latest_run_with_same_config(tmp_path):
    spec = resolve_spec(str(toy_spec(tmp_path)))
    _Calls.fail_after = 3
    with pytest.raises(RuntimeError):
        run_experiment(spec, runs_dir=tmp_path / "runs", figures=False)
    _Calls.count, _Calls.fail_after = 0, None
    res = run_experiment(spec, runs_dir=tmp_path / "runs", resume=True, figures=False)
    assert res.reused == 3 and _Calls.count == 9
    assert res.path.parent == tmp_path / "runs" / "toy"


def test_atomic_write_leaves_old_file_or_nothing(tmp_path, monkeypatch):
    target = tmp_path / "units" / "a.json"
    atomic_write_text(target, "old")

    def boom(src, dst):
        raise OSError("disk died")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in target.parent.iterdir()] == ["a.json"]  # no temp file left


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_subprocess_resumes_to_identical_results(tmp_path, sig):
    """Kill a real `isackit run` mid-sweep (SIGKILL: no cleanup at all; SIGTERM: handled
    like Ctrl-C, exit 130); stored units are whole; resume completes it identically."""
    spec_path = toy_spec(tmp_path, "sleep = 0.15\n")
    spec = resolve_spec(str(spec_path))
    full = run_experiment(spec, out=tmp_path / "full", figures=False)
    env = subprocess_env()
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "isackit.cli", "run", str(spec_path), "--out", str(out),
                             "--no-plots"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list((out / "units").glob("*.json"))) < 3:
        time.sleep(0.05)
    proc.send_signal(sig)
    proc.wait(timeout=30)
    stderr = proc.stderr.read().decode()
    stored = list((out / "units").glob("*.json"))
    assert 3 <= len(stored) < 12, stderr[-2000:]
    if sig == signal.SIGTERM:
        assert proc.returncode == 130 and "interrupted:" in stderr and "--resume" in stderr, stderr[-2000:]
        assert not list((out / "units").glob(".*.tmp"))  # no temp file left behind
    store = RunStore(out, spec.config)
    for p in stored:
        json.loads(p.read_text())  # every stored unit is a whole file ...
        unit = next(u for u in plan_units(spec.experiment, spec.config) if u.id == p.stem)
        assert store.check_unit(unit)[1] is None  # ... whose checksum and identity hold
    _Calls.count = 0
    res = run_experiment(spec, out=out, resume=True, figures=False)
    assert _Calls.count == 12 - len(stored)
    pd.testing.assert_frame_equal(res.results, full.results)
    assert not list((out / "units").glob(".*.tmp"))


def test_resume_removes_stale_temp_files(tmp_path):
    spec = resolve_spec(str(toy_spec(tmp_path)))
    run_experiment(spec, out=tmp_path / "run", figures=False)
    stale = tmp_path / "run" / "units" / ".p0000-c0000.json.abc.tmp"
    stale.write_text("{half a fi")
    run_experiment(spec, out=tmp_path / "run", resume=True, figures=False)
    assert not stale.exists()


def test_aggregate_without_rows_gives_empty_table():
    df, bounds = aggregate([], {})
    assert df.empty and bounds == []


def test_run_store_rejects_nonempty_foreign_out(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "file").write_text("hi")
    spec = resolve_spec(str(toy_spec(tmp_path)))
    with pytest.raises(ExperimentError, match="not empty"):
        RunStore.open("toy", spec.config, out=tmp_path / "x")


def test_unit_rows_roundtrip():
    r = Row("a", "b", "rmse", 1.5, 3, 3)
    assert Row.from_dict(r.to_dict()) == r


def test_function_experiment_and_numpy_points():
    import numpy as np

    class FnConfig(ExperimentConfig):
        sweep: dict[str, list[float]] = {"a": [1.0, 2.0]}

    @register_experiment("fn-toy", config_model=FnConfig)
    def fn_toy(config, unit, device):
        """A function experiment."""
        x = torch.randn(unit.trials, generator=unit.generator(device), dtype=torch.float64)
        return [mean_row("f", "mean", x + unit.point["a"], unit.trials)]

    assert issubclass(fn_toy, Experiment) and fn_toy.name == "fn-toy" and fn_toy.description == "A function experiment."
    cfg = FnConfig(experiment="fn-toy", trials=5, chunk=5)
    units = plan_units(fn_toy, cfg)
    assert [u.point for u in units] == [{"a": 1.0}, {"a": 2.0}]

    class NumpyPoints(fn_toy):
        def points(self, config):
            return [{"a": np.float64(1.5), "k": np.int64(3)}]

    units = plan_units(NumpyPoints, cfg)
    assert units[0].point == {"a": 1.5, "k": 3} and type(units[0].point["k"]) is int


def test_figures_label_curves_with_the_method_names_and_dash_bounds(tmp_path):
    from isackit.experiments.plotting import plot_results

    spec = resolve_spec(str(toy_spec(tmp_path)))
    res = run_experiment(spec, out=tmp_path / "run", figures=False)
    paths = plot_results(res.results, res.meta, tmp_path / "figs")
    assert sorted(p.name for p in paths) == ["above.png", "above.svg", "rmse.png", "rmse.svg"]
    svg = (tmp_path / "figs" / "rmse.svg").read_text()
    for label in ("mean", "median", "CRB", "Samples", "sigma=0.5", "sigma=2.0"):
        assert label in svg
    assert "stroke-dasharray" in svg  # the bound is dashed
    assert "stroke-dasharray" not in (tmp_path / "figs" / "above.svg").read_text()  # no bound there
