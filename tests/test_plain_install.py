"""The plain install (``pip install isackit``, no extras): the console script works end to end,
and every module imports under ``python -OO`` (docstrings stripped).

`.ci/run` runs this file a second time in a separate virtual environment made with
``pip install -e . pytest`` only — no ``ray`` extra, hence no ``click`` — and sets
``ISACKIT_PLAIN_INSTALL=1``, which also checks that those optional packages are indeed
absent there (so the CLI is proven to work without them).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

PLAIN = os.environ.get("ISACKIT_PLAIN_INSTALL") == "1"
EXE = Path(sys.executable).with_name("isackit")


def isackit(*args: str, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run the installed console script (``python -m isackit.cli`` when it is not installed)."""
    cmd = [str(EXE)] if EXE.exists() else [sys.executable, "-m", "isackit.cli"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)


@pytest.mark.skipif(not PLAIN, reason="checks the plain-install environment made by .ci/run")
def test_plain_environment_has_no_optional_packages():
    for name in ("ray", "click"):
        assert importlib.util.find_spec(name) is None, f"{name} is installed: not a plain install"


def test_every_module_imports_under_python_OO():
    """``python -OO`` strips docstrings; no module may depend on its ``__doc__``."""
    code = ("import importlib, pkgutil, isackit\n"
            "names = [m.name for m in pkgutil.walk_packages(isackit.__path__, 'isackit.')]\n"
            "for n in names:\n    importlib.import_module(n)\n"
            "print('imported', len(names))")
    res = subprocess.run([sys.executable, "-OO", "-c", code], capture_output=True, text=True, timeout=600,
                         env={**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"})
    assert res.returncode == 0, res.stderr[-3000:]
    assert "imported" in res.stdout


plain_only = pytest.mark.skipif(not PLAIN, reason="the main suite covers these in tests/test_cli.py; here they "
                                                   "run in the plain-install venv (make test-plain)")


@plain_only
def test_cli_smoke_run_show_plot(tmp_path):
    """The README's commands through the console script, at a tiny size: run, show, plot, list."""
    assert "isackit" in isackit("--version", cwd=tmp_path).stdout
    help_ = isackit("--help", cwd=tmp_path)
    assert help_.returncode == 0 and "run" in help_.stdout
    listing = isackit("list", cwd=tmp_path)
    assert listing.returncode == 0 and "doa" in listing.stdout
    run = isackit("run", "doa", "--quick", "--set", "trials=4", "--set", "chunk=4", "--set", "snapshots=8",
                  "--set", "sweep.snr_db=[10.0, 20.0]", "--set", 'sweep.impairment=["ideal"]',
                  "--set", 'estimators=["music", "root_music"]', "--out", "run", cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "root_music" in run.stdout and "CRB" in run.stdout and "summary.md" in run.stdout
    for f in ("results.parquet", "summary.md", "models.json", "figures/rmse_deg.png"):
        assert (tmp_path / "run" / f).is_file(), f
    show = isackit("show", "run", cwd=tmp_path)
    assert show.returncode == 0 and "root_music" in show.stdout
    plot = isackit("plot", "run", cwd=tmp_path)
    assert plot.returncode == 0 and "rmse_deg.svg" in plot.stdout


@plain_only
def test_cli_smoke_user_error_and_ray_extra(tmp_path):
    bad = isackit("run", "doa", "--set", "sweep.snr_db=[nan]", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and bad.stderr.count("\n") == 1
    assert "Traceback" not in bad.stderr and not any(tmp_path.iterdir())
    if importlib.util.find_spec("ray") is None:
        ray = isackit("run", "doa", "--quick", "--engine", "ray", cwd=tmp_path)
        assert ray.returncode == 2 and 'pip install "isackit[ray]"' in ray.stderr
        assert not any(tmp_path.iterdir())
