"""Run folders under damage and contention: checksummed unit files, the lock, file modes,
model artifacts (``models.json``), progress inside a unit, and no empty folder after a failure."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from isackit._io import atomic_write_text, current_umask
from isackit.experiments import (
    ExperimentError,
    InProcessEngine,
    RunStore,
    UnitResult,
    plan_units,
    resolve_spec,
    run_experiment,
)
from isackit.experiments.store import LOCK
from isackit.experiments.units import as_unit_result, check_artifact, mean_row

import test_experiments_runner as rt
from test_experiments_runner import subprocess_env, toy_spec


@pytest.fixture(autouse=True)
def _reset():
    rt._Calls.count, rt._Calls.fail_after = 0, None
    yield
    rt._Calls.count, rt._Calls.fail_after = 0, None


def _spec(tmp_path, **over):
    return resolve_spec(str(toy_spec(tmp_path)), overrides=list(over.items()))


# ------------------------------------------------------------------------------ unit files
def _damage_truncate(p: Path):
    p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2])


def _damage_empty(p: Path):
    p.write_bytes(b"")


def _damage_garbage(p: Path):
    p.write_bytes(os.urandom(64))


def _damage_edit(p: Path):
    """A valid JSON file with one number changed (checksum no longer matches)."""
    payload = json.loads(p.read_text())
    payload["rows"][0]["total"] *= 1000.0
    p.write_text(json.dumps(payload))


def _damage_old_format(p: Path):
    payload = json.loads(p.read_text())
    p.write_text(json.dumps({"unit": payload["identity"], "rows": payload["rows"]}))


@pytest.mark.parametrize("damage", [_damage_truncate, _damage_empty, _damage_garbage, _damage_edit,
                                    _damage_old_format], ids=lambda f: f.__name__[8:])
def test_damaged_unit_is_reported_and_recomputed_on_resume(tmp_path, damage):
    spec = _spec(tmp_path)
    full = run_experiment(spec, out=tmp_path / "run", figures=False)
    victim = tmp_path / "run" / "units" / "p0001-c0002.json"
    damage(victim)
    warnings: list[str] = []
    rt._Calls.count = 0
    res = run_experiment(spec, out=tmp_path / "run", resume=True, figures=False, warn=warnings.append)
    assert rt._Calls.count == 1 and (res.computed, res.reused) == (1, 11)
    assert len(warnings) == 1 and "p0001-c0002.json" in warnings[0] and "recomputed" in warnings[0]
    assert (tmp_path / "run" / "units" / "p0001-c0002.json.rejected").is_file()
    pd.testing.assert_frame_equal(res.results, full.results)  # the damaged numbers were never used


def test_foreign_unit_files_are_not_used(tmp_path):
    """A unit file of another unit of the same run, or of the same unit id in a run with
    another config, has a valid checksum but the wrong identity: rejected."""
    spec = _spec(tmp_path)
    full = run_experiment(spec, out=tmp_path / "run", figures=False)
    other = run_experiment(_spec(tmp_path, mean=5.0), out=tmp_path / "other", figures=False)
    assert not other.results.equals(full.results)
    units = tmp_path / "run" / "units"
    (units / "p0000-c0001.json").write_bytes((units / "p0000-c0000.json").read_bytes())   # another unit
    (units / "p0002-c0000.json").write_bytes((tmp_path / "other" / "units" / "p0002-c0000.json").read_bytes())
    warnings: list[str] = []
    res = run_experiment(spec, out=tmp_path / "run", resume=True, figures=False, warn=warnings.append)
    assert res.computed == 2 and all("identity mismatch" in w for w in warnings) and len(warnings) == 2
    pd.testing.assert_frame_equal(res.results, full.results)


def test_unit_file_carries_identity_and_checksum(tmp_path):
    spec = _spec(tmp_path)
    run_experiment(spec, out=tmp_path / "run", figures=False)
    payload = json.loads((tmp_path / "run" / "units" / "p0000-c0000.json").read_text())
    assert payload["format"] == "isackit-unit/2" and len(payload["sha256"]) == 64
    ident = payload["identity"]
    unit = plan_units(spec.experiment, spec.config)[0]
    assert ident["experiment"] == "toy" and ident["seed"] == unit.seed and ident["trials"] == unit.trials
    assert ident["point"] == unit.point and ident["config_hash"]


def test_damaged_unit_seen_by_the_cli(tmp_path, capsys):
    from isackit.cli import main

    spec_path = toy_spec(tmp_path)
    out = tmp_path / "run"
    with pytest.raises(SystemExit):
        main(["run", str(spec_path), "--out", str(out), "--no-plots"])
    (out / "units" / "p0000-c0000.json").write_text("{}")
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["run", str(spec_path), "--out", str(out), "--no-plots", "--resume"])
    cap = capsys.readouterr()
    assert exc.value.code in (0, None)
    assert "warning: unit file" in cap.err and "p0000-c0000.json" in cap.err
    assert "computed 1 units, reused 11" in cap.out


# ------------------------------------------------------------------------------ the lock
def test_second_opener_is_refused_while_the_first_holds_the_lock(tmp_path):
    spec = _spec(tmp_path)
    run_experiment(spec, out=tmp_path / "run", figures=False)
    first, resumed = RunStore.open("toy", spec.config, out=tmp_path / "run", resume=True)
    assert resumed
    try:
        with pytest.raises(ExperimentError, match=rf"in use by process {os.getpid()}"):
            run_experiment(spec, out=tmp_path / "run", resume=True, figures=False)
    finally:
        first.release()
    run_experiment(spec, out=tmp_path / "run", resume=True, figures=False)  # free again
    assert f"{os.getpid()} " in (tmp_path / "run" / LOCK).read_text()


def test_second_process_is_refused_with_the_owners_pid(tmp_path):
    """A slow run in a child process holds the folder; `--resume` from here is refused with
    exit 2 and the child's pid, and the child's run is not disturbed."""
    gate = tmp_path / "gate"
    spec_path = toy_spec(tmp_path, f"gate = {json.dumps(str(gate))}\n")
    out = tmp_path / "run"
    child = subprocess.Popen([sys.executable, "-m", "isackit.cli", "run", str(spec_path), "--out", str(out),
                              "--no-plots"], env=subprocess_env(), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (out / "config.toml").exists():
            time.sleep(0.05)
        second = subprocess.run([sys.executable, "-m", "isackit.cli", "run", str(spec_path), "--out", str(out),
                                 "--no-plots", "--resume"], env=subprocess_env(), capture_output=True, text=True,
                                timeout=120)
        assert second.returncode == 2, second.stderr
        assert f"in use by process {child.pid}" in second.stderr and second.stderr.count("\n") == 1
        gate.touch()
        assert child.wait(timeout=120) == 0, child.stderr.read().decode()[-2000:]
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert len(list((out / "units").glob("*.json"))) == 12


# ------------------------------------------------------------------------------ file modes
def test_run_files_get_normal_permissions(tmp_path):
    res = run_experiment(_spec(tmp_path), out=tmp_path / "run")
    expect = 0o666 & ~current_umask()
    files = [res.path / f for f in ("config.toml", "env.json", "results.parquet", "summary.md", "models.json")]
    files += list((res.path / "units").glob("*.json")) + list((res.path / "figures").glob("*"))
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == expect, f


def test_atomic_write_respects_umask(tmp_path):
    old = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o640
    finally:
        os.umask(old)


# ------------------------------------------------------------------------------ failures leave nothing
def test_failed_run_before_any_unit_leaves_no_folder(tmp_path):
    spec = _spec(tmp_path)
    rt._Calls.fail_after = 0
    with pytest.raises(RuntimeError, match="injected"):
        run_experiment(spec, runs_dir=tmp_path / "runs", figures=False)
    assert not (tmp_path / "runs").exists()
    with pytest.raises(RuntimeError, match="injected"):
        run_experiment(spec, out=tmp_path / "a" / "b" / "run", figures=False)
    assert not (tmp_path / "a").exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(RuntimeError, match="injected"):
        run_experiment(spec, out=tmp_path / "empty", figures=False)
    assert (tmp_path / "empty").is_dir() and not any((tmp_path / "empty").iterdir())


def test_failed_run_after_some_units_keeps_them_for_resume(tmp_path):
    spec = _spec(tmp_path)
    rt._Calls.fail_after = 2
    with pytest.raises(RuntimeError):
        run_experiment(spec, out=tmp_path / "run", figures=False)
    assert len(list((tmp_path / "run" / "units").glob("*.json"))) == 2


def test_show_picks_the_latest_finished_run(tmp_path, capsys):
    from isackit.cli import main
    from isackit.experiments import find_run

    spec = _spec(tmp_path)
    done = run_experiment(spec, runs_dir=tmp_path / "runs", figures=False)
    rt._Calls.count, rt._Calls.fail_after = 0, 3
    with pytest.raises(RuntimeError):
        run_experiment(_spec(tmp_path, seed=9), runs_dir=tmp_path / "runs", figures=False)
    assert len(list((tmp_path / "runs" / "toy").iterdir())) == 2
    assert find_run("toy", tmp_path / "runs") == done.path


# ------------------------------------------------------------------------------ artifacts
def _artifact(i: int) -> dict:
    return {"name": f"net{i}", "path": f"models/net{i}.safetensors", "sha256": f"{i:064x}", "key": f"k{i}"}


def test_unit_artifacts_go_to_unit_files_and_models_json(tmp_path, monkeypatch):
    def run_unit(self, config, unit, device):
        rows = original(self, config, unit, device)
        return UnitResult(rows, [_artifact(unit.point_index % 2)])

    original = rt.Toy.run_unit
    monkeypatch.setattr(rt.Toy, "run_unit", run_unit)
    res = run_experiment(_spec(tmp_path), out=tmp_path / "run", figures=False)
    models = json.loads((res.path / "models.json").read_text())["models"]
    assert [m["name"] for m in models] == ["net0", "net1"] and res.models == models
    assert models[0]["units"] == [u.id for u in plan_units(rt.Toy, _spec(tmp_path).config) if u.point_index % 2 == 0]
    unit = json.loads((res.path / "units" / "p0001-c0000.json").read_text())
    assert unit["artifacts"] == [_artifact(1)]
    # resumed units keep theirs
    (res.path / "units" / "p0000-c0000.json").unlink()
    again = run_experiment(_spec(tmp_path), out=tmp_path / "run", resume=True, figures=False)
    assert json.loads((res.path / "models.json").read_text())["models"] == models and again.computed == 1


def test_runs_without_models_say_so(tmp_path):
    res = run_experiment(_spec(tmp_path), out=tmp_path / "run", figures=False)
    assert json.loads((res.path / "models.json").read_text()) == {"models": []}


@pytest.mark.parametrize("bad", [{"name": "x"}, {"name": 1, "path": "p", "sha256": "s", "key": "k"},
                                 ["name", "path"], {**_artifact(0), "extra": "x"}])
def test_bad_artifacts_are_rejected(bad):
    with pytest.raises(TypeError, match="artifact"):
        check_artifact(bad)
    with pytest.raises(TypeError, match="Row"):
        as_unit_result([1, 2])


# ------------------------------------------------------------------------------ progress in a unit
def test_unit_progress_reaches_the_engine_callback(tmp_path):
    seen: list[tuple] = []

    def run_unit(self, config, unit, device):
        assert unit.progress is not None
        for i in range(3):
            unit.progress(i + 1, 3, "steps")
        return [mean_row("m", "x", rt.torch.zeros(1), 1)]

    class Exp(rt.Toy):
        pass

    Exp.run_unit = run_unit
    spec = _spec(tmp_path)
    units = plan_units(spec.experiment, spec.config)[:2]
    done = []
    InProcessEngine().run(Exp, spec.config, units, rt.torch.device("cpu"),
                          lambda u, r, s: done.append((u.id, u.progress)),
                          progress_for=lambda u: (lambda d, t, w: seen.append((u.id, d, t, w))))
    assert seen == [(u.id, i, 3, "steps") for u in units for i in (1, 2, 3)]
    assert [d[1] for d in done] == [None, None]  # the stored unit carries no callback


def test_unit_progress_is_none_without_a_listener(tmp_path):
    got = []

    def run_unit(self, config, unit, device):
        got.append(unit.progress)
        return [mean_row("m", "x", rt.torch.zeros(1), 1)]

    class Exp(rt.Toy):
        pass

    Exp.run_unit = run_unit
    spec = _spec(tmp_path)
    InProcessEngine().run(Exp, spec.config, plan_units(spec.experiment, spec.config)[:1], rt.torch.device("cpu"),
                          lambda u, r, s: None)
    assert got == [None]


def test_run_with_progress_bar_moves_within_units(tmp_path, monkeypatch, capsys):
    calls = []

    def run_unit(self, config, unit, device):
        for i in range(4):
            if unit.progress is not None:
                unit.progress(i + 1, 4, "steps")
                calls.append(i)
        return original(self, config, unit, device)

    original = rt.Toy.run_unit
    monkeypatch.setattr(rt.Toy, "run_unit", run_unit)
    run_experiment(_spec(tmp_path), out=tmp_path / "run", figures=False, progress=True)
    assert len(calls) == 4 * 12


def test_corrupt_results_are_rebuilt_from_the_units_by_resume(tmp_path, capsys):
    from isackit.cli import main

    res = run_experiment(_spec(tmp_path), out=tmp_path / "run", figures=False)
    (res.path / "results.parquet").write_bytes(b"PAR1 garbage")
    with pytest.raises(SystemExit) as exc:
        main(["show", str(res.path)])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and f"--out {res.path} --resume" in err
    rt._Calls.count = 0
    again = run_experiment(resolve_spec(str(res.path / "config.toml")), out=res.path, resume=True, figures=False)
    assert rt._Calls.count == 0 and again.reused == 12
    pd.testing.assert_frame_equal(again.results, res.results)


def test_a_failing_summary_hook_falls_back_to_the_generic_table(tmp_path, monkeypatch):
    def broken(self, df):
        raise KeyError("no such column")

    monkeypatch.setattr(rt.Toy, "summary", broken, raising=False)
    warnings: list[str] = []
    res = run_experiment(_spec(tmp_path), out=tmp_path / "run", figures=False, warn=warnings.append)
    assert "summary of 'toy' failed" in warnings[0]
    assert res.summary["method"].tolist() == ["mean", "median", "CRB"] * 2 and "sigma" in res.summary.columns
    assert (res.path / "results.parquet").is_file()


def test_disk_full_mid_run_is_one_line_and_keeps_the_stored_units(tmp_path, capsys, monkeypatch):
    import errno

    from isackit.cli import main

    original = RunStore.save_unit

    def save_unit(self, unit, result, seconds):
        if len(self.done_ids()) >= 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.unit_file(unit)))
        return original(self, unit, result, seconds)

    monkeypatch.setattr(RunStore, "save_unit", save_unit)
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exc:
        main(["run", str(toy_spec(tmp_path)), "--out", str(out), "--no-plots"])
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]  # after the progress lines: one error line
    assert exc.value.code == 2 and last.startswith("error: ") and err.count("error:") == 1, err
    assert "Traceback" not in err and "No space left on device" in last and "2 units are stored" in err and "--resume" in err
    assert len(list((out / "units").glob("*.json"))) == 2


def test_out_of_memory_in_a_unit_is_one_line(tmp_path, capsys, monkeypatch):
    from isackit.cli import main

    def run_unit(self, config, unit, device):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: "
                           "you tried to allocate 800000000000 bytes")

    monkeypatch.setattr(rt.Toy, "run_unit", run_unit)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(["run", str(toy_spec(tmp_path)), "--no-plots"])
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert exc.value.code == 2 and last.startswith("error: ") and "Traceback" not in err
    assert "ran out of memory" in last and "chunk = 4" in last
    assert not (tmp_path / "runs").exists()
