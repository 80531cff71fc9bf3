"""Hostile and mistaken input to the command line (issue 13, item 3 and the Ray and path items).

Every case is one row of one table: the command must print ONE line ``error: ...`` naming
the bad value, exit with code 2, show no traceback, and leave no run folder behind (neither
under ``runs/`` nor at ``--out``).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from isackit.cli import main

LONG = "x" * 300  # a file name longer than NAME_MAX (255)


def _write(tmp: Path, name: str, data: bytes | str) -> str:
    p = tmp / name
    p.write_bytes(data if isinstance(data, bytes) else data.encode())
    return str(p)


def _fake_run(tmp: Path, results: bytes) -> str:
    run = tmp / "oldrun"
    (run / "units").mkdir(parents=True)
    (run / "config.toml").write_text('experiment = "doa"\n')
    (run / "results.parquet").write_bytes(results)
    return str(run)


def _raise_on_write(code: int):
    """A patch that makes every atomic write fail with OSError ``code`` (a full disk, a
    read-only mount: conditions a test cannot create as root)."""
    def patch(monkeypatch):
        from isackit.experiments import store

        def fail(path, data):
            raise OSError(code, os.strerror(code), str(path))

        monkeypatch.setattr(store, "atomic_write_bytes", fail)
        monkeypatch.setattr(store, "atomic_write_text", fail)
        from isackit.experiments import runner

        monkeypatch.setattr(runner, "atomic_write_text", fail)
    return patch


def _raise_on_mkdir(code: int):
    def patch(monkeypatch):
        def fail(self, *a, **k):
            raise OSError(code, os.strerror(code), str(self))

        monkeypatch.setattr(Path, "mkdir", fail)
    return patch


# (id, args — "{tmp}" is replaced by the test folder, a callable(tmp) may build a file —,
#  the text the one-line message must contain, optional monkeypatch)
CASES = [
    # the spec file itself
    ("non-utf8-spec", ["run", lambda t: _write(t, "latin.toml", b'experiment = "doa"\n# caf\xe9\n')],
     "not UTF-8 text (byte 0xe9", None),
    ("binary-spec", ["run", lambda t: _write(t, "bin.toml", b"\x00\xff\xfe\x00")], "not UTF-8 text", None),
    ("unregistered-experiment", ["run", lambda t: _write(t, "w.toml", 'experiment = "warp-drive"\n')],
     "no experiment 'warp-drive' is registered; available: ", None),
    ("spec-names-a-module", ["run", lambda t: _write(t, "m.toml", 'experiment = "doa"\nmodule = "os"\n')],
     'does not name a module to import (found module = "os")', None),
    ("run-folder-config-names-a-module",
     ["run", lambda t: _write(t, "config.toml", 'experiment = "doa"\nmodule = "isackit.experiments.plugins.doa"\n')],
     "does not name a module", None),
    ("experiment-not-a-string", ["run", lambda t: _write(t, "n.toml", "experiment = 3\n")],
     "missing key 'experiment'", None),
    # NaN and ±inf anywhere
    ("nan-snr", ["run", "doa", "--set", "sweep.snr_db=[nan]"], "sweep.snr_db.0 is nan", None),
    ("inf-spacing", ["run", "doa", "--set", "array.spacing=inf"], "array.spacing is inf", None),
    ("-inf-gain", ["run", "doa", "--set", "impairments.gain_std_db=-inf"], "impairments.gain_std_db is -inf",
     None),
    ("nan-coupling", ["run", "doa", "--set", "impairments.coupling_magnitudes=[1.0, nan]"],
     "impairments.coupling_magnitudes.1 is nan", None),
    ("nan-in-free-options", ["run", "doa", "--set", "estimator_options={music = {x = nan}}"],
     "estimator_options.music.x is nan", None),
    ("nan-in-spec-file", ["run", lambda t: _write(t, "n.toml", 'experiment = "doa"\nsnapshots = 16\n'
                                                            'angles_deg = [nan]\n')], "angles_deg.0 is nan", None),
    ("nan-positioning", ["run", "positioning", "--smoke", "--set", "snr_db=[nan]"], "snr_db.0 is nan", None),
    # empty sweeps
    ("empty-snr", ["run", "doa", "--set", "sweep.snr_db=[]"], "sweep.snr_db: Value error, must list at least one",
     None),
    ("empty-panels", ["run", "positioning", "--smoke", "--set", "panels=[]"], "panels", None),
    # absurd sizes: refused up front, with the numbers
    ("trials-1e9-flag", ["run", "doa", "--trials", "1e9"], "Invalid value for '--trials' (got '1e9')", None),
    ("seed-word", ["run", "doa", "--seed=abc"], "Invalid value for '--seed' (got 'abc')", None),
    ("trials-1e9-set", ["run", "doa", "--set", "trials=1000000000"],
     "trials = 1000000000 in chunks of 250 over 32 sweep points makes 128,000,000 work units", None),
    ("snapshots-1e8", ["run", "doa", "--set", "snapshots=100000000"], "snapshots = 100000000", None),
    ("snapshots-float", ["run", "doa", "--set", "snapshots=1e8"], "snapshots: Input should be a valid integer",
     None),
    # the output folder
    ("out-is-a-file", ["run", "doa", "--quick", "--out", lambda t: _write(t, "afile", "x")], "is not a folder",
     None),
    ("out-is-dev-null", ["run", "doa", "--quick", "--out", "/dev/null"], "--out /dev/null is not a folder", None),
    ("out-under-a-file", ["run", "doa", "--quick", "--out", lambda t: _write(t, "f", "x") + "/sub"],
     "Not a directory", None),
    ("out-name-too-long", ["run", "doa", "--quick", "--out", "{tmp}/" + LONG], "File name too long", None),
    ("runs-dir-is-a-file", ["run", "doa", "--quick", "--runs-dir", lambda t: _write(t, "rd", "x")],
     "rd is not a folder", None),
    ("read-only-mount", ["run", "doa", "--quick", "--out", "{tmp}/ro/run"], "Read-only file system",
     _raise_on_mkdir(errno.EROFS)),
    ("disk-full", ["run", "doa", "--quick", "--out", "{tmp}/full"], "No space left on device",
     _raise_on_write(errno.ENOSPC)),
    ("no-permission", ["run", "doa", "--quick", "--out", "{tmp}/perm/run"], "Permission denied",
     _raise_on_mkdir(errno.EACCES)),
    # reading results
    ("corrupt-parquet-show", ["show", lambda t: _fake_run(t, b"PAR1 this is not parquet PAR1")], "is damaged", None),
    ("corrupt-parquet-plot", ["plot", lambda t: _fake_run(t, b"")], "is damaged", None),
    ("truncated-parquet-show", ["show", lambda t: _fake_run(t, b"PAR1\x00\x00")], "--resume", None),
    ("show-unknown", ["show", "no/such/run"], "no run folder", None),
    # engines
    ("ray-address-refused", ["run", "doa", "--quick", "--engine", "ray", "--address", "127.0.0.1:1"],
     "cannot reach the Ray cluster at '127.0.0.1:1'", None),
    ("ray-address-malformed", ["run", "doa", "--quick", "--engine", "ray", "--address", "nowhere"],
     "bad --address 'nowhere'", None),
    ("ray-address-port", ["run", "doa", "--quick", "--engine", "ray", "--address", "host:99999"],
     "bad --address 'host:99999'", None),
]


@pytest.mark.parametrize(("args", "message", "patch"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_leaves_no_folder(args, message, patch, tmp_path, monkeypatch, capsys):
    if any("ray" == a for a in args):
        pytest.importorskip("ray")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    argv = [a(tmp_path) if callable(a) else a.replace("{tmp}", str(tmp_path)) for a in args]
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    if patch is not None:
        patch(monkeypatch)
    with pytest.raises(SystemExit) as exc:
        main(argv)
    monkeypatch.undo()
    out, err = capsys.readouterr()
    assert exc.value.code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err, err
    assert "Traceback" not in out + err
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert after == before, f"left behind: {sorted(set(after) - set(before))}"


def test_spec_named_dots_stays_inside_runs_dir(tmp_path, monkeypatch, capsys):
    """A spec file called ``...toml`` (stem ``..``) names a folder inside runs/, not above it."""
    from isackit.experiments import resolve_spec

    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "...toml"
    spec.write_text('experiment = "doa"\n')
    assert resolve_spec(str(spec)).name == "doa"  # the experiment's name instead of ".."
    from test_experiments_runner import toy_spec

    toy = toy_spec(tmp_path, name="..")
    with pytest.raises(SystemExit) as exc:
        main(["run", str(toy), "--runs-dir", str(tmp_path / "runs"), "--no-plots"])
    assert exc.value.code in (0, None), capsys.readouterr().err
    (folder,) = (tmp_path / "runs").iterdir()
    assert folder.name == "toy" and len(list(folder.iterdir())) == 1


@pytest.mark.parametrize("value", ["/etc/x", "../x", "a/../../x", "~/x", "", "C:\\x"])
def test_relative_path_fields_refuse_escapes(value):
    from pydantic import ValidationError

    from isackit.experiments import ExperimentConfig, RelativePath

    class Cfg(ExperimentConfig):
        model_dir: RelativePath = "models"

    assert Cfg(experiment="x", model_dir="a/b").model_dir == "a/b"
    with pytest.raises(ValidationError):
        Cfg(experiment="x", model_dir=value)


def test_inside_refuses_symlink_escape(tmp_path):
    from isackit.experiments import ExperimentError, inside

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "link").symlink_to(tmp_path)
    assert inside(tmp_path / "run", "a/b") == (tmp_path / "run" / "a" / "b").resolve()
    with pytest.raises(ExperimentError, match="leaves"):
        inside(tmp_path / "run", "link/x")


def test_ray_missing_is_a_clear_error(tmp_path, monkeypatch, capsys):
    import importlib

    real = importlib.import_module

    def no_ray(name, *a, **k):
        if name == "ray":
            raise ImportError("No module named 'ray'")
        return real(name, *a, **k)

    from isackit.experiments import engines

    monkeypatch.setattr(engines.importlib, "import_module", no_ray)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(["run", "doa", "--quick", "--engine", "ray"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and 'pip install "isackit[ray]"' in err and err.count("\n") == 1
    assert not any(tmp_path.iterdir())


def test_ray_unanswered_address_fails_within_the_timeout(monkeypatch):
    """An address that drops packets (no RST) fails after the connect timeout, not never."""
    import socket
    import time

    from isackit.experiments import ExperimentError
    from isackit.experiments.engines import check_reachable

    def hang(addr, timeout=None):
        time.sleep(min(timeout, 0.2))
        raise TimeoutError("timed out")

    monkeypatch.setattr(socket, "create_connection", hang)
    t0 = time.monotonic()
    with pytest.raises(ExperimentError, match=r"no answer within 0.2 s"):
        check_reachable("10.255.255.1:6379", timeout=0.2)
    assert time.monotonic() - t0 < 5
