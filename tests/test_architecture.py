"""The layer order (import-linter contracts in pyproject.toml) and the import-time budget of
the command line."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"

importlinter = pytest.importorskip("importlinter", reason="import-linter is in the test extra")


def test_no_layer_violation_is_exempted():
    """No ``ignore_imports`` exemption is left: no module under systems/ imports experiments."""
    contracts = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["contracts"]
    assert all(not c.get("ignore_imports") for c in contracts)


def test_import_linter_contracts_are_kept(capsys):
    """Data flows down the layers only: a new upward import (e.g. a system importing the
    experiments layer) breaks this test."""
    from importlinter.cli import lint_imports

    code = lint_imports(config_filename=str(PYPROJECT), no_cache=True, no_logo=True)
    out = capsys.readouterr().out
    assert code == 0, out[-4000:]
    assert "BROKEN" not in out and "Contracts: 2 kept, 0 broken." in out


def test_the_layers_name_every_top_level_module():
    """Every module directly under isackit/ sits in a layer (or is a deliberate exception), so
    the contract cannot miss a new package."""
    config = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["contracts"][0]
    named = set()
    for layer in config["layers"]:
        for part in layer.replace("|", ":").split(":"):
            named.add(part.strip().strip("()").removeprefix("isackit."))
    here = {p.stem for p in (ROOT / "src" / "isackit").iterdir()
            if (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists())) and p.stem != "__init__"}
    assert here - named == set()


def _fresh_python(code: str, *flags: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, *flags, "-c", code], capture_output=True, text=True, timeout=300,
                          env=env, cwd=ROOT)


def test_cli_help_does_not_import_torch():
    """`isackit --help` / `--version` stay fast: the CLI module and its help import neither
    torch nor the experiments (the commands import what they need)."""
    code = ("import sys\nfrom isackit.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit as e:\n"
            "    assert e.code in (0, None), e.code\n"
            "heavy = [m for m in ('torch', 'pandas', 'pyarrow', 'matplotlib', 'pydantic', 'isackit.experiments.registry', 'ray') "
            "if m in sys.modules]\nprint('HEAVY', heavy)")
    res = _fresh_python(code)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "HEAVY []" in res.stdout, res.stdout[-2000:]
    assert "run" in res.stdout and "list" in res.stdout


def test_cli_list_does_not_import_torch():
    """`isackit list` reads the catalogue without importing torch or any plug-in."""
    code = ("import sys\nfrom isackit.cli import main\ntry:\n    main(['list'])\nexcept SystemExit as e:\n"
            "    assert e.code in (0, None), e.code\n"
            "heavy = [m for m in ('torch', 'pandas', 'pyarrow', 'matplotlib', 'ray') if m in sys.modules]\n"
            "plugins = [m for m in sys.modules if m.startswith('isackit.experiments.plugins.')]\n"
            "print('HEAVY', heavy, plugins)")
    res = _fresh_python(code)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "HEAVY [] []" in res.stdout, res.stdout[-2000:]
    assert "doa" in res.stdout
