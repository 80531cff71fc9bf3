"""Every example script runs (tiny sizes), as a user would run it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# tiny arguments per example; a new example must be listed here (checked below)
TINY = {
    "doa_sweep.py": ["--trials", "4", "--snr", "10"],
    "custom_experiment.py": ["--trials", "4"],
}


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(f"example_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # as `python examples/x.py` has it (pydantic resolves names there)
    spec.loader.exec_module(module)
    return module


def test_every_example_is_listed():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(TINY)


@pytest.mark.parametrize("name", sorted(TINY))
def test_example_runs(name, tmp_path, capsys):
    module = _load(EXAMPLES / name)
    module.main([*TINY[name], "--out", str(tmp_path / "run")])
    out = capsys.readouterr().out
    assert "run folder:" in out and "rmse_deg" in out
    assert (tmp_path / "run" / "results.parquet").is_file()
