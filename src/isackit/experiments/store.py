r"""Run folders: atomic unit files, the resolved config, the environment, tidy results.

Layout of ``runs/<experiment>/<timestamp>-<hash>/`` (``hash`` = :func:`config_hash`)::

    config.toml        resolved config (re-runnable: ``isackit run path/to/config.toml``)
    env.json           python/torch/isackit/numpy/sionna versions, device, seed, git commit
    units/<id>.json    one file per finished work unit (its rows), written atomically
    results.parquet    tidy: one row per (sweep point, method, metric)
    summary.md         the results as a Markdown table
    figures/*.png|svg  metric vs swept parameter per method (bounds dashed)
    log.txt            one line per finished unit

Every file is written to a temporary name in the same folder and moved into place with
``os.replace`` (atomic on POSIX and Windows), so a run killed at any instant leaves only
whole files behind; ``--resume`` skips the units whose files exist.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .config import ExperimentConfig, ExperimentError, config_hash, read_toml, to_toml
from .units import Row, WorkUnit

__all__ = ["RunStore", "atomic_write_bytes", "atomic_write_text", "environment", "find_run", "load_results"]

from .._io import atomic_write_bytes, atomic_write_text  # noqa: E402  (re-exported)

RESULTS = "results.parquet"
META_KEY = b"isackit"


def _version(dist: str) -> str | None:
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def environment(config: ExperimentConfig, engine: str) -> dict[str, Any]:
    """What produced a run: versions, device, seed, git commit, platform."""
    import numpy
    import torch

    import isackit

    device = config.device
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "isackit": isackit.__version__,
        "numpy": numpy.__version__,
        "sionna": _version("sionna-no-rt") or _version("sionna"),
        "device": device,
        "device_name": None,
        "cuda": torch.version.cuda,
        "seed": config.seed,
        "engine": engine,
        "torch_threads": torch.get_num_threads(),
        "git_commit": _git_commit(),
        "platform": platform.platform(),
        "argv": sys.argv,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["device_name"] = torch.cuda.get_device_name(torch.device(device))
    return info


class RunStore:
    """One run folder (see the module docstring for its layout)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    # ---- creation / resumption -------------------------------------------------------
    @classmethod
    def open(cls, name: str, config: ExperimentConfig, *, out: str | Path | None = None,
             resume: bool = False, runs_dir: str | Path = "runs") -> tuple[RunStore, bool]:
        """Create a run folder or reopen one for ``--resume``.

        Returns ``(store, resumed)``.  Without ``out``, a new folder
        ``runs_dir/<name>/<timestamp>-<hash>`` is made, or with ``resume`` the newest
        existing one with the same config hash is reopened.  With ``out``, that folder is
        used; it must be empty/new unless ``resume`` is given, and a resumed folder must
        hold the same config.
        """
        h = config_hash(config)
        if out is not None:
            store = cls(out)
            if store.config_file.exists():
                if not resume:
                    raise ExperimentError(f"{store.path} already holds a run; pass --resume to continue it "
                                          "or choose another --out")
                store._check_same_config(config)
                store._remove_stale_temp_files()
                return store, True
            if store.path.exists() and any(store.path.iterdir()):
                raise ExperimentError(f"--out {store.path} is not empty and holds no run")
            store._create(config)
            return store, False
        base = Path(runs_dir) / name
        if resume:
            candidates = sorted(p for p in base.glob(f"*-{h}") if (p / "config.toml").exists())
            if candidates:
                store = cls(candidates[-1])
                store._check_same_config(config)
                store._remove_stale_temp_files()
                return store, True
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        path = base / f"{stamp}-{h}"
        n = 1
        while path.exists():
            n += 1
            path = base / f"{stamp}.{n}-{h}"
        store = cls(path)
        store._create(config)
        return store, False

    def _create(self, config: ExperimentConfig) -> None:
        self.units_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.config_file, to_toml(config.model_dump(mode="json")))

    def _remove_stale_temp_files(self) -> None:
        """Temp files of writes cut short by a hard kill (never a stored unit)."""
        for tmp in self.units_dir.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)

    def _check_same_config(self, config: ExperimentConfig) -> None:
        stored = read_toml(self.config_file)
        fresh = json.loads(json.dumps(config.model_dump(mode="json", exclude_none=True)))
        if stored != fresh:
            diff = sorted(k for k in set(stored) | set(fresh) if stored.get(k) != fresh.get(k))
            raise ExperimentError(f"cannot resume {self.path}: its config differs in {', '.join(diff)}")

    # ---- paths -----------------------------------------------------------------------
    @property
    def config_file(self) -> Path:
        return self.path / "config.toml"

    @property
    def units_dir(self) -> Path:
        return self.path / "units"

    @property
    def results_file(self) -> Path:
        return self.path / RESULTS

    @property
    def summary_file(self) -> Path:
        return self.path / "summary.md"

    @property
    def figures_dir(self) -> Path:
        return self.path / "figures"

    # ---- units -----------------------------------------------------------------------
    def unit_file(self, unit: WorkUnit) -> Path:
        return self.units_dir / f"{unit.id}.json"

    def done_ids(self) -> set[str]:
        return {p.stem for p in self.units_dir.glob("*.json")}

    def save_unit(self, unit: WorkUnit, rows: list[Row], seconds: float) -> None:
        payload = {"unit": {"id": unit.id, "point_index": unit.point_index, "point": unit.point,
                            "chunk_index": unit.chunk_index, "trials": unit.trials, "seed": unit.seed},
                   "seconds": seconds, "rows": [r.to_dict() for r in rows]}
        atomic_write_text(self.unit_file(unit), json.dumps(payload, indent=1))
        with (self.path / "log.txt").open("a") as fh:
            fh.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {unit.id} point={json.dumps(unit.point)} "
                     f"trials={unit.trials} {seconds:.2f}s\n")

    def load_unit(self, unit: WorkUnit) -> list[Row]:
        payload = json.loads(self.unit_file(unit).read_text())
        if payload["unit"]["seed"] != unit.seed or payload["unit"]["trials"] != unit.trials:
            raise ExperimentError(f"{self.unit_file(unit)} does not belong to this sweep")
        return [Row.from_dict(r) for r in payload["rows"]]

    # ---- outputs ---------------------------------------------------------------------
    def write_env(self, env: dict[str, Any]) -> None:
        atomic_write_text(self.path / "env.json", json.dumps(env, indent=2, default=str))

    def write_results(self, df: pd.DataFrame, meta: dict[str, Any]) -> None:
        table = pa.Table.from_pandas(df, preserve_index=False)
        md = dict(table.schema.metadata or {})
        md[META_KEY] = json.dumps(meta).encode()
        table = table.replace_schema_metadata(md)
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        atomic_write_bytes(self.results_file, sink.getvalue().to_pybytes())


def load_results(run: str | Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """``(results table, metadata)`` of a finished run folder."""
    path = Path(run) / RESULTS
    if not path.is_file():
        raise ExperimentError(f"no {RESULTS} in {run} (an unfinished run? continue it with --resume)")
    table = pq.read_table(path)
    meta = json.loads((table.schema.metadata or {}).get(META_KEY, b"{}"))
    return table.to_pandas(), meta


def find_run(run: str, runs_dir: str | Path = "runs") -> Path:
    """A run folder from a path, or the newest run of an experiment name under ``runs_dir``."""
    p = Path(run)
    if p.is_dir() and (p / "config.toml").exists():
        return p
    base = Path(runs_dir) / run
    if base.is_dir():
        runs = sorted((q for q in base.iterdir() if (q / "config.toml").exists()), key=lambda q: q.name)
        if runs:
            return runs[-1]
    raise ExperimentError(f"no run folder {run!r} (give a run folder or an experiment name with runs in {runs_dir}/)")
