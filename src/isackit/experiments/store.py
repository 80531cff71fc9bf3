r"""Run folders: checksummed unit files, a lock, the resolved config, the environment, results.

Layout of ``runs/<name>/<timestamp>-<hash>/`` (``hash`` = :func:`config_hash`)::

    config.toml        resolved config (re-runnable: ``isackit run path/to/config.toml``)
    env.json           python/torch/isackit/numpy/sionna versions, device, seed, git commit
    run.lock           the pid and host of the process working on the folder
    units/<id>.json    one file per finished work unit (rows, model files used, checksum)
    results.parquet    tidy: one row per (sweep point, method, metric)
    models.json        every model file (name, path, SHA-256, cache key) that produced rows
    summary.md         headline table and ratios, then the full results table
    figures/*.png|svg  metric vs swept parameter per method (bounds dashed)
    log.txt            one line per finished unit

Every file is written to a temporary name in the same folder and moved into place with
``os.replace`` (atomic on POSIX and Windows), so a run killed at any instant leaves only
whole files behind.  A unit file carries the SHA-256 of its content together with the
unit's identity (experiment, config hash, sweep point, chunk, trials, seed): on ``--resume`` a
truncated, edited or foreign unit file is reported, set aside as ``<id>.json.rejected`` and
its unit recomputed — never used.  One process at a time works on a folder: a second one is
refused with the first one's pid (an advisory ``flock`` on ``run.lock``, released by the
operating system when the owner dies).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pandas as pd

from .._io import atomic_write_bytes, atomic_write_text
from .config import ExperimentConfig, ExperimentError, config_hash, read_toml, safe_name, to_toml
from .units import Row, UnitResult, WorkUnit, check_artifact

__all__ = ["RunStore", "atomic_write_bytes", "atomic_write_text", "environment", "find_run", "load_results",
           "safe_name", "UNIT_FORMAT"]

RESULTS = "results.parquet"
META_KEY = b"isackit"
UNIT_FORMAT = "isackit-unit/2"
LOCK = "run.lock"
TIDY = ("method", "metric", "value", "n_trials")


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


def _short(path: Path | str, limit: int = 100) -> str:
    text = str(path)
    return text if len(text) <= limit else text[: limit // 2 - 2] + "…" + text[-(limit // 2 - 1):]


def os_error(action: str, path: Path | str, exc: OSError) -> ExperimentError:
    """A one-line :class:`ExperimentError` for an I/O failure on ``path``."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    where = exc.filename if isinstance(exc.filename, str) and exc.filename else path
    return ExperimentError(f"cannot {action} {_short(where)}: {reason}")


def _canonical(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=True).encode()


def _checksum(payload: dict[str, Any]) -> str:
    return hashlib.sha256(_canonical({k: v for k, v in payload.items() if k != "sha256"})).hexdigest()


def _lock_file(fd: int) -> bool:
    """Try to take an exclusive advisory lock on ``fd``; False if another process holds it."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


class RunStore:
    """One run folder (see the module docstring for its layout)."""

    def __init__(self, path: str | Path, config: ExperimentConfig | None = None):
        self.path = Path(path)
        self.identity_base: dict[str, Any] | None = (
            None if config is None else {"experiment": config.experiment, "config_hash": config_hash(config)})
        self.created = False  # this process made the folder (it removes it again if nothing got stored)
        self._made: list[Path] = []  # the folders this process created, deepest first
        self._lock_fd: int | None = None

    # ---- creation / resumption -------------------------------------------------------
    @classmethod
    def open(cls, name: str, config: ExperimentConfig, *, out: str | Path | None = None,
             resume: bool = False, runs_dir: str | Path = "runs") -> tuple[RunStore, bool]:
        """Create a run folder or reopen one for ``--resume``, and lock it.

        Returns ``(store, resumed)``.  Without ``out``, a new folder
        ``runs_dir/<name>/<timestamp>-<hash>`` is made, or with ``resume`` the newest
        existing one with the same config hash is reopened.  With ``out``, that folder is
        used; it must be empty/new unless ``resume`` is given, and a resumed folder must
        hold the same config.  Every problem (a file where the folder should be, no
        permission, a read-only disk, a name too long, another process on the folder) is an
        :class:`ExperimentError`.
        """
        h = config_hash(config)
        if out is not None:
            store = cls(out, config)
            if store.path.exists() and not store.path.is_dir():
                raise ExperimentError(f"--out {_short(store.path)} is not a folder")
            try:
                has_run = store.config_file.exists()
                nonempty = store.path.is_dir() and any(store.path.iterdir())
            except OSError as exc:
                raise os_error("read the run folder", store.path, exc) from None
            if has_run:
                if not resume:
                    raise ExperimentError(f"{_short(store.path)} already holds a run; pass --resume to continue "
                                          "it or choose another --out")
                store.lock()
                store._check_same_config(config)
                store._remove_stale_temp_files()
                return store, True
            if nonempty:
                raise ExperimentError(f"--out {_short(store.path)} is not empty and holds no run")
            store._create(config)
            return store, False
        if Path(runs_dir).exists() and not Path(runs_dir).is_dir():
            raise ExperimentError(f"--runs-dir {_short(runs_dir)} is not a folder")
        base = Path(runs_dir) / safe_name(name)
        if base.exists() and not base.is_dir():
            raise ExperimentError(f"{_short(base)} is not a folder (--runs-dir {_short(runs_dir)})")
        if resume:
            try:
                candidates = sorted(p for p in base.glob(f"*-{h}") if (p / "config.toml").exists())
            except OSError as exc:
                raise os_error("read", base, exc) from None
            if candidates:
                store = cls(candidates[-1], config)
                store.lock()
                store._check_same_config(config)
                store._remove_stale_temp_files()
                return store, True
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        path = base / f"{stamp}-{h}"
        n = 1
        while path.exists():
            n += 1
            path = base / f"{stamp}.{n}-{h}"
        store = cls(path, config)
        store._create(config)
        return store, False

    def _create(self, config: ExperimentConfig) -> None:
        missing = [p for p in [self.path, *self.path.parents] if not p.exists()]
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            for p in missing:  # a partial mkdir -p: remove what it made
                try:
                    p.rmdir()
                except OSError:
                    pass
            raise os_error("create the run folder", self.path, exc) from None
        self._made = missing
        self.created = bool(missing) or not any(self.path.iterdir())
        try:
            self.lock()
            self.units_dir.mkdir(exist_ok=True)
            atomic_write_text(self.config_file, to_toml(config.model_dump(mode="json")))
        except BaseException as exc:
            self.discard()
            if isinstance(exc, OSError):
                raise os_error("write the run folder", self.path, exc) from None
            raise

    # ---- the lock ----------------------------------------------------------------------
    @property
    def lock_file(self) -> Path:
        return self.path / LOCK

    def lock(self) -> None:
        """Take the folder's lock or raise :class:`ExperimentError` naming the owner."""
        if self._lock_fd is not None:
            return
        try:
            fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise os_error("lock the run folder", self.path, exc) from None
        if not _lock_file(fd):
            os.close(fd)
            try:
                owner = self.lock_file.read_text(encoding="utf-8", errors="replace").split()
            except OSError:
                owner = []
            who = f"process {owner[0]}" + (f" on {owner[1]}" if len(owner) > 1 else "") if owner else "another process"
            raise ExperimentError(f"{_short(self.path)} is in use by {who}; wait for it to finish or stop it "
                                  "(two processes must not work on one run folder)")
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {socket.gethostname()} {datetime.now(UTC).isoformat(timespec='seconds')}\n"
                 .encode())
        self._lock_fd = fd

    def release(self) -> None:
        """Release the lock (the file stays, holding the last owner's pid)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor drops the flock
            self._lock_fd = None

    def discard(self) -> bool:
        """Remove the folder if this process created it and no unit is stored in it (a run
        that failed before finishing anything leaves no folder behind).  Returns whether it
        removed the folder."""
        if not self.created or (self.units_dir.is_dir() and any(self.units_dir.glob("*.json"))):
            return False
        self.release()
        if self.path in self._made:
            shutil.rmtree(self.path, ignore_errors=True)
        else:  # an empty folder the user named with --out: empty it again, keep it
            for child in self.path.iterdir():
                shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)
        for parent in self._made[1:]:  # parents this process created, if they are empty now
            try:
                parent.rmdir()
            except OSError:
                break
        self.created = False
        return True

    def _remove_stale_temp_files(self) -> None:
        """Temp files of writes cut short by a hard kill (called with the lock held)."""
        for folder in (self.path, self.units_dir):
            for tmp in folder.glob(".*.tmp"):
                tmp.unlink(missing_ok=True)

    def _check_same_config(self, config: ExperimentConfig) -> None:
        stored = read_toml(self.config_file)
        fresh = json.loads(json.dumps(config.model_dump(mode="json", exclude_none=True)))
        if stored != fresh:
            diff = sorted(k for k in set(stored) | set(fresh) if stored.get(k) != fresh.get(k))
            raise ExperimentError(f"cannot resume {_short(self.path)}: its config differs in {', '.join(diff)}")

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
    def models_file(self) -> Path:
        return self.path / "models.json"

    @property
    def figures_dir(self) -> Path:
        return self.path / "figures"

    # ---- units -----------------------------------------------------------------------
    def unit_file(self, unit: WorkUnit) -> Path:
        return self.units_dir / f"{unit.id}.json"

    def done_ids(self) -> set[str]:
        """Ids of the unit files present (not yet checked: see :meth:`stored_results`)."""
        return {p.stem for p in self.units_dir.glob("*.json")}

    def _identity(self, unit: WorkUnit) -> dict[str, Any]:
        if self.identity_base is None:
            raise RuntimeError("RunStore was opened without its config; use RunStore.open")
        return {**self.identity_base, **unit.identity()}

    def save_unit(self, unit: WorkUnit, result: UnitResult | list[Row], seconds: float) -> None:
        """Store a finished unit: rows, artifacts, identity and their SHA-256, atomically."""
        if not isinstance(result, UnitResult):
            result = UnitResult(list(result))
        payload = {"format": UNIT_FORMAT, "identity": self._identity(unit), "seconds": float(seconds),
                   "rows": [r.to_dict() for r in result.rows],
                   "artifacts": [check_artifact(a) for a in result.artifacts]}
        payload["sha256"] = _checksum(payload)
        atomic_write_text(self.unit_file(unit), json.dumps(payload, indent=1, allow_nan=True))
        with (self.path / "log.txt").open("a", encoding="utf-8") as fh:
            fh.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {unit.id} point={json.dumps(unit.point)} "
                     f"trials={unit.trials} {seconds:.2f}s\n")

    def check_unit(self, unit: WorkUnit) -> tuple[UnitResult | None, str | None]:
        """``(result, None)`` for a sound unit file of ``unit``; ``(None, reason)`` otherwise
        (missing, unreadable, not JSON, checksum mismatch, or another unit's/run's file)."""
        path = self.unit_file(unit)
        try:
            payload = json.loads(path.read_bytes())
        except FileNotFoundError:
            return None, "missing"
        except OSError as exc:
            return None, f"unreadable ({exc.strerror})"
        except (ValueError, UnicodeDecodeError):
            return None, "not a whole JSON file (truncated or damaged)"
        if not isinstance(payload, dict) or payload.get("format") != UNIT_FORMAT:
            return None, "not an isackit unit file of this version"
        if payload.get("sha256") != _checksum(payload):
            return None, "checksum mismatch (the file was modified)"
        if payload.get("identity") != json.loads(json.dumps(self._identity(unit))):
            return None, "it belongs to another unit or run (identity mismatch)"
        try:
            rows = [Row.from_dict(r) for r in payload["rows"]]
            artifacts = [check_artifact(a) for a in payload.get("artifacts", [])]
        except (TypeError, KeyError) as exc:
            return None, f"malformed rows ({exc})"
        return UnitResult(rows, artifacts), None

    def stored_results(self, units: Iterable[WorkUnit],
                       warn: Callable[[str], None] | None = None) -> dict[str, UnitResult]:
        """The sound stored units among ``units``; every damaged or foreign file is reported
        through ``warn``, renamed to ``<id>.json.rejected`` and left to be recomputed."""
        out: dict[str, UnitResult] = {}
        present = self.done_ids()
        for unit in units:
            if unit.id not in present:
                continue
            result, problem = self.check_unit(unit)
            if result is not None:
                out[unit.id] = result
                continue
            path = self.unit_file(unit)
            rejected = path.with_name(path.name + ".rejected")
            try:
                os.replace(path, rejected)
            except OSError:
                pass
            if warn is not None:
                warn(f"unit file {_short(path)} is not used: {problem}; it was renamed to {rejected.name} "
                     "and the unit is recomputed")
        return out

    # ---- outputs ---------------------------------------------------------------------
    def write_env(self, env: dict[str, Any]) -> None:
        atomic_write_text(self.path / "env.json", json.dumps(env, indent=2, default=str))

    def write_models(self, results: dict[str, UnitResult]) -> list[dict[str, Any]]:
        """``models.json``: the union of the units' artifacts, each with the units it served."""
        models: dict[tuple[str, ...], dict[str, Any]] = {}
        for uid in sorted(results):
            for a in results[uid].artifacts:
                key = tuple(a[k] for k in ("name", "path", "sha256", "key"))
                models.setdefault(key, {**a, "units": []})["units"].append(uid)
        records = list(models.values())
        atomic_write_text(self.models_file, json.dumps({"models": records}, indent=1) + "\n")
        return records

    def write_results(self, df: pd.DataFrame, meta: dict[str, Any]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(df, preserve_index=False)
        md = dict(table.schema.metadata or {})
        md[META_KEY] = json.dumps(meta).encode()
        table = table.replace_schema_metadata(md)
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        atomic_write_bytes(self.results_file, sink.getvalue().to_pybytes())


def load_results(run: str | Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """``(results table, metadata)`` of a finished run folder; a missing or damaged
    ``results.parquet`` is an :class:`ExperimentError` saying how to rebuild it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(run) / RESULTS
    if not path.is_file():
        raise ExperimentError(f"no {RESULTS} in {_short(run)} (an unfinished run? continue it with --resume)")
    rebuild = f"rebuild it from the stored units with: isackit run {_short(Path(run) / 'config.toml')} " \
              f"--out {_short(run)} --resume"
    try:
        table = pq.read_table(path)
        meta = json.loads((table.schema.metadata or {}).get(META_KEY, b"{}"))
        df = table.to_pandas()
    except (pa.ArrowException, OSError, ValueError) as exc:
        reason = " ".join(str(exc).split())[:120] or type(exc).__name__
        raise ExperimentError(f"{_short(path)} is damaged ({reason}); {rebuild}") from None
    missing = [c for c in TIDY if c not in df.columns]
    if missing or not isinstance(meta, dict):
        raise ExperimentError(f"{_short(path)} is not an isackit results table (no column {missing[0]!r}); "
                              f"{rebuild}" if missing else f"{_short(path)} has damaged metadata; {rebuild}")
    return df, meta


def find_run(run: str, runs_dir: str | Path = "runs") -> Path:
    """A run folder from a path, or the newest *finished* run (one with results) of an
    experiment name under ``runs_dir``."""
    p = Path(run)
    if p.is_dir() and (p / "config.toml").exists():
        return p
    base = Path(runs_dir) / safe_name(run)
    if base.is_dir() and safe_name(run) == run:
        runs = sorted((q for q in base.iterdir() if (q / "config.toml").exists()), key=lambda q: q.name)
        finished = [q for q in runs if (q / RESULTS).is_file()]
        if finished:
            return finished[-1]
        if runs:
            raise ExperimentError(f"no finished run of {run!r} in {_short(base)} ({len(runs)} unfinished; "
                                  f"continue the latest with --resume)")
    raise ExperimentError(f"no run folder {run!r} (give a run folder or an experiment name with runs in "
                          f"{_short(runs_dir)}/)")


def _fmt_bytes(n: float) -> str:
    if not math.isfinite(n):
        return str(n)
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} PB"  # pragma: no cover
