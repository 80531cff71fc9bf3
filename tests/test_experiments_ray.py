"""The Ray engine gives the same results as the in-process engine (local 2-CPU cluster)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from isackit.experiments import RayEngine, resolve_spec, run_experiment

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def ray_cluster():
    # workers import the toy experiment from this folder; the cluster stays on loopback
    here = str(Path(__file__).parent)
    path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH", "")) if p)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             _node_ip_address="127.0.0.1", runtime_env={"env_vars": {"PYTHONPATH": path}})
    yield
    ray.shutdown()


def test_ray_engine_equals_inprocess(tmp_path, ray_cluster):
    from test_experiments_runner import toy_spec

    spec = resolve_spec(str(toy_spec(tmp_path)), overrides=[("sweep.sigma", [1.0]), ("trials", 8)])
    local = run_experiment(spec, out=tmp_path / "local", figures=False)
    remote = run_experiment(spec, engine=RayEngine(), out=tmp_path / "ray", figures=False)
    assert remote.computed == local.computed == 4
    pd.testing.assert_frame_equal(remote.results, local.results)


def test_cli_engine_ray_resumes_an_inprocess_run(tmp_path, ray_cluster, capsys):
    """`--engine ray` from the command line, continuing a run the in-process engine began."""
    from test_experiments_runner import toy_spec

    from isackit.cli import main

    spec_path = toy_spec(tmp_path)
    args = ["run", str(spec_path), "--out", str(tmp_path / "run"), "--no-plots", "--set", "sweep.sigma=[1.0]",
            "--set", "trials=8"]
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code in (0, None)
    first = pd.read_parquet(tmp_path / "run" / "results.parquet")
    for unit in sorted((tmp_path / "run" / "units").glob("*.json"))[:2]:
        unit.unlink()
    with pytest.raises(SystemExit) as exc:
        main([*args, "--engine", "ray", "--resume"])
    out = capsys.readouterr().out
    assert exc.value.code in (0, None)
    assert "computed 2 units, reused 2" in out
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "run" / "results.parquet"), first)


def test_cuda_on_a_cluster_without_gpus_fails_fast(tmp_path, ray_cluster, capsys, monkeypatch):
    """`--device cuda --engine ray` on a cluster that has no GPU is refused at once (it used
    to wait forever at 0 units), before a run folder is made."""
    import torch

    from isackit.cli import main
    from isackit.experiments import ExperimentError

    with pytest.raises(ExperimentError, match="the Ray cluster has no GPU"):
        RayEngine().prepare(torch.device("cuda"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(["run", "doa", "--quick", "--engine", "ray", "--device", "cuda"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "no GPU" in err and err.count("\n") == 1
    assert not any(tmp_path.iterdir())
