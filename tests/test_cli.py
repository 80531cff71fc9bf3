"""The command line: commands, the run folder they write, and one-line user errors (exit 2)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from isackit import __version__
from isackit.cli import main
from isackit.experiments import default_experiment, load_results, resolve_spec
from isackit.experiments.registry import FALLBACK_EXPERIMENT, HEADLINE_EXPERIMENT, catalogue

HERE = Path(__file__).parent


def cli(capsys, *args: str) -> tuple[int, str, str]:
    """Run ``isackit ARGS`` in-process: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    code = exc.value.code
    return (0 if code is None else int(code)), out, err


@pytest.fixture
def toy(tmp_path):
    from test_experiments_runner import toy_spec

    return toy_spec(tmp_path)


def test_version_and_help(capsys):
    code, out, _ = cli(capsys, "--version")
    assert code == 0 and out.strip() == f"isackit {__version__}"
    code, out, _ = cli(capsys, "--help")
    assert code == 0
    for command in ("run", "list", "show", "plot"):
        assert command in out


def test_console_script_subprocess(tmp_path):
    """The installed entry point works as a program (exit codes included)."""
    exe = Path(sys.executable).with_name("isackit")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "isackit.cli"]
    ok = subprocess.run([*cmd, "--version"], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and __version__ in ok.stdout
    bad = subprocess.run([*cmd, "run", "no-such-experiment"], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "unknown experiment 'no-such-experiment'" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_list_names_every_catalogue_entry(capsys):
    code, out, _ = cli(capsys, "list")
    assert code == 0
    for name in catalogue():
        assert name in out
    assert "(default)" in out


def test_default_experiment_is_headline_when_catalogued():
    expected = HEADLINE_EXPERIMENT if HEADLINE_EXPERIMENT in catalogue() else FALLBACK_EXPERIMENT
    assert default_experiment() == expected
    assert resolve_spec(None, quick=True).name == expected


def test_run_show_plot_on_a_spec_file(capsys, toy, tmp_path):
    out_dir = tmp_path / "run"
    code, out, err = cli(capsys, "run", toy, "--out", out_dir, "--set", "trials=6", "--seed", "3")
    assert code == 0, err
    assert "median" in out and "CRB" in out and str(out_dir) in out.replace("\n", "")
    df, meta = load_results(out_dir)
    assert set(df["n_trials"][df.method != "CRB"]) == {6}
    assert "seed = 3" in (out_dir / "config.toml").read_text()
    code, out2, _ = cli(capsys, "show", out_dir)
    assert code == 0 and "median" in out2
    code, out3, _ = cli(capsys, "plot", out_dir)
    assert code == 0 and "rmse.svg" in out3


def test_run_into_runs_dir_and_resume(capsys, toy, tmp_path):
    runs = tmp_path / "runs"
    code, _, err = cli(capsys, "run", toy, "--runs-dir", runs, "--no-plots")
    assert code == 0, err
    (folder,) = list((runs / "toy").iterdir())
    first = pd.read_parquet(folder / "results.parquet")
    unit = sorted((folder / "units").iterdir())[0]
    unit.unlink()  # as if the run had been killed before this unit was stored
    (folder / "results.parquet").unlink()
    code, out, err = cli(capsys, "run", toy, "--runs-dir", runs, "--resume", "--no-plots")
    assert code == 0, err
    assert "computed 1 units, reused 11" in out
    assert list((runs / "toy").iterdir()) == [folder]
    pd.testing.assert_frame_equal(pd.read_parquet(folder / "results.parquet"), first)
    code, out, _ = cli(capsys, "show", "toy", "--runs-dir", runs)  # by experiment name: latest run
    assert code == 0 and "median" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "no-such-experiment"], "unknown experiment 'no-such-experiment'"),
        (["run", "doa", "--set", "foo=1"], "unknown key 'foo'"),
        (["run", "doa", "--set", "array.colour=1"], "unknown key 'array.colour'"),
        (["run", "doa", "--set", "snapshots=\"many\""], "snapshots: Input should be a valid integer"),
        (["run", "doa", "--set", "snapshots=2.5"], "snapshots"),
        (["run", "doa", "--trials", "-5"], "trials: Input should be greater than or equal to 1"),
        (["run", "doa", "--trials", "abc"], "'--trials'"),
        (["run", "missing/spec.toml"], "spec file not found"),
        (["run", "doa", "--set", "snapshots"], "bad --set 'snapshots': expected KEY=VALUE"),
        (["run", "doa", "--set", "=3"], "bad --set"),
        (["run", "doa", "--set", "sweep.snr_db=[0,"], "is not a TOML value"),
        (["run", "doa", "--set", "trials.x=1"], "'trials' is a value, not a table"),
        (["run", "doa", "--set", "estimators=[\"nope\"]"], "unknown estimator(s) nope"),
        (["run", "doa", "--set", "sweep.impairment=[\"rust\"]"], "sweep.impairment.0"),
        (["run", "doa", "--engine", "spark"], "unknown engine 'spark'"),
        (["run", "doa", "--address", "1.2.3.4:6379"], "--address is only used with --engine ray"),
        (["run", "doa", "--device", "tpu"], "device 'tpu'"),
        (["run", "calibration", "--smoke", "--set", "methods=[\"bogus\"]"], "unknown method(s) 'bogus'"),
        (["run", "calibration", "--smoke", "--set", "training.sensing_loss=\"foo\""], "training.sensing_loss: Input should be"),
        (["run", "calibration", "--smoke", "--set", "scenario.nonsense=1"], "unknown key 'scenario.nonsense'"),
        (["run", "positioning", "--smoke", "--set", "training.decoder=\"foo\""], "decoder: Input should be"),
        (["show", "no/such/run"], "no run folder"),
        (["bogus-command"], "No such command"),
    ],
)
def test_user_errors_exit_2_with_one_line(capsys, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(capsys, *args)
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err
    assert "Traceback" not in err + out


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_unavailable_cuda_is_a_user_error(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(capsys, "run", "doa", "--quick", "--device", "cuda")
    assert code == 2 and "device 'cuda' is not available" in err and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()  # nothing was started


def test_bad_spec_file_contents(capsys, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("experiment = \n")
    code, _, err = cli(capsys, "run", bad)
    assert code == 2 and "invalid TOML" in err and err.count("\n") == 1
    bad.write_text('experiment = "doa"\nsnapshots = -1\n')
    code, _, err = cli(capsys, "run", bad)
    assert code == 2 and "snapshots: Input should be greater than or equal to 1" in err
    bad.write_text('experiment = "warp-drive"\n')
    code, _, err = cli(capsys, "run", bad)
    assert code == 2 and "no experiment 'warp-drive' is registered" in err


def test_user_error_never_touches_finished_units(capsys, toy, tmp_path):
    out_dir = tmp_path / "run"
    assert cli(capsys, "run", toy, "--out", out_dir, "--no-plots")[0] == 0
    before = {p.name: p.read_bytes() for p in (out_dir / "units").iterdir()}
    code, _, err = cli(capsys, "run", toy, "--out", out_dir)  # forgot --resume
    assert code == 2 and "--resume" in err
    code, _, err = cli(capsys, "run", toy, "--out", out_dir, "--resume", "--seed", "99")  # other config
    assert code == 2 and "differs in seed" in err
    assert {p.name: p.read_bytes() for p in (out_dir / "units").iterdir()} == before


def test_interrupted_run_exits_130_and_keeps_units(capsys, toy, tmp_path, monkeypatch):
    import test_experiments_runner as runner_tests

    def interrupt_after_three(self, config, unit, device):
        if runner_tests._Calls.count >= 3:
            raise KeyboardInterrupt
        return original(self, config, unit, device)  # counts the call

    original = runner_tests.Toy.run_unit
    runner_tests._Calls.count = 0
    monkeypatch.setattr(runner_tests.Toy, "run_unit", interrupt_after_three)
    out_dir = tmp_path / "run"
    code, _, err = cli(capsys, "run", toy, "--out", out_dir, "--no-plots")
    assert code == 130
    assert "3/12 units are stored" in err and f"continue with: isackit run {toy} --out {out_dir} --no-plots --resume" in err
    assert len(list((out_dir / "units").iterdir())) == 3
    monkeypatch.setattr(runner_tests.Toy, "run_unit", original)
    code, out, _ = cli(capsys, "run", toy, "--out", out_dir, "--resume", "--no-plots")
    assert code == 0 and "computed 9 units, reused 3" in out
