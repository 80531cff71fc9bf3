r"""The sweep runner: plan work units, check the run fits, run the missing units on an engine,
store each as it finishes, aggregate exactly, and write the run folder's results, summary,
model list and figures.

Everything that can be checked before work starts is checked before the run folder is
created (device, engine, an empty sweep, a sweep of absurd size, units that cannot fit in
memory); a run that fails before any unit is stored removes the folder it created.

>>> from isackit.experiments import resolve_spec
>>> spec = resolve_spec("doa", quick=True)
>>> len(plan_units(spec.experiment, spec.config))     # 2 SNRs x 4 impairments x 2 chunks
16
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from .config import ExperimentConfig, ExperimentError, config_hash, flatten
from .engines import Engine, InProcessEngine
from .registry import Experiment, ResolvedSpec
from .report import summary_markdown, to_markdown
from .store import RunStore, _fmt_bytes, atomic_write_text, environment, os_error
from .units import Row, UnitResult, WorkUnit, aggregate_rows, unit_seed

__all__ = ["plan_units", "resolve_device", "aggregate", "run_experiment", "RunResult", "summarize",
           "MAX_UNITS", "memory_limit"]

#: A sweep of more work units than this is refused before it starts (raise ``chunk``).
MAX_UNITS = 100_000


def resolve_device(name: str) -> torch.device:
    """Parse a device name and check it is usable here (clear error otherwise)."""
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ExperimentError(f"unknown device {name!r} (expected e.g. cpu, cuda, cuda:0)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ExperimentError(f"device {name!r} is not available: this torch build sees no CUDA GPU")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ExperimentError(f"device {name!r} is not available: {torch.cuda.device_count()} CUDA device(s)")
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise ExperimentError(f"device {name!r} is not available on this machine")
    elif device.type != "cpu":
        raise ExperimentError(f"unsupported device {name!r} (expected cpu or cuda[:N])")
    return device


def _check_point(point: dict, experiment: str) -> dict:
    if not isinstance(point, dict):
        raise TypeError(f"{experiment}.points() must return dicts, got {type(point).__name__}")
    out = {}
    for k, v in point.items():
        if k in ("method", "metric", "value", "n_trials"):
            raise ValueError(f"{experiment}: swept parameter {k!r} clashes with a result column")
        if hasattr(v, "item") and not isinstance(v, (str, int, float, bool)):
            v = v.item()  # numpy / 0-d torch scalars
        if not isinstance(v, (str, int, float, bool)):
            raise TypeError(f"{experiment}: swept parameter {k!r} must be a scalar, got {type(v).__name__}")
        out[str(k)] = v
    return out


def _empty_lists(config: ExperimentConfig) -> list[str]:
    return [k for k, v in flatten(config.model_dump(mode="json")).items() if v == [] or v == {}]


def plan_units(experiment: type[Experiment], config: ExperimentConfig) -> list[WorkUnit]:
    """Sweep points × chunks of ``config.chunk`` trials (the last chunk may be smaller).

    Refuses (:class:`ExperimentError`) a sweep without points and one of more than
    :data:`MAX_UNITS` units."""
    points = [_check_point(p, experiment.name) for p in experiment().points(config)]
    if not points:
        empty = _empty_lists(config)
        hint = f" (empty: {', '.join(f'{k} = []' for k in empty)})" if empty else ""
        raise ExperimentError(f"{experiment.name}: the sweep has no points{hint}; list at least one value")
    chunks = math.ceil(config.trials / config.chunk)
    if len(points) * chunks > MAX_UNITS:
        raise ExperimentError(f"{experiment.name}: trials = {config.trials} in chunks of {config.chunk} over "
                              f"{len(points)} sweep points makes {len(points) * chunks:,} work units (at most "
                              f"{MAX_UNITS:,}); lower trials or raise chunk")
    units = []
    for pi, point in enumerate(points):
        for ci in range(chunks):
            n = min(config.chunk, config.trials - ci * config.chunk)
            units.append(WorkUnit(pi, point, ci, n, unit_seed(config.seed, experiment.name, point, ci)))
    return units


def memory_limit(device: torch.device) -> float:
    """Bytes one work unit may use on ``device``: the GPU's memory, else the machine's RAM."""
    if device.type == "cuda" and torch.cuda.is_available():
        return float(torch.cuda.get_device_properties(device).total_memory)
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - no sysconf
        return math.inf


def check_size(experiment: type[Experiment], config: ExperimentConfig, device: torch.device) -> None:
    """Refuse a run whose work units cannot fit in memory (from the experiment's
    ``unit_memory`` estimate), before anything is written."""
    estimate = experiment().unit_memory(config)
    if estimate is None:
        return
    need, what = estimate
    limit = memory_limit(device)
    if need > limit:
        raise ExperimentError(f"{experiment.name}: one work unit ({what}, chunk = {config.chunk}) needs about "
                              f"{_fmt_bytes(need)} of memory, more than the {_fmt_bytes(limit)} of {device}; "
                              "lower chunk or the problem size")


def aggregate(units: list[WorkUnit], rows_of: dict[str, list[Row]]) -> tuple[pd.DataFrame, list[str]]:
    """Tidy table from the units' rows, combined per sweep point exactly (see
    :func:`~isackit.experiments.units.aggregate_rows`); also returns the bound methods."""
    by_point: dict[int, list[Row]] = {}
    points: dict[int, dict] = {}
    for u in units:
        by_point.setdefault(u.point_index, []).extend(rows_of[u.id])
        points[u.point_index] = u.point
    records, bounds = [], []
    for pi in sorted(by_point):
        for (method, metric), (value, n, kind) in aggregate_rows(by_point[pi]).items():
            records.append({**points[pi], "method": method, "metric": metric, "value": value, "n_trials": n})
            if kind == "bound" and method not in bounds:
                bounds.append(method)
    df = pd.DataFrame.from_records(records)
    if df.empty:
        df = pd.DataFrame(columns=["method", "metric", "value", "n_trials"])
    df["value"] = df["value"].astype("float64")
    df["n_trials"] = df["n_trials"].astype("int64")
    return df, bounds


def summarize(experiment: type[Experiment] | None, df: pd.DataFrame, meta: dict,
              warn: Callable[[str], None] | None = None) -> tuple[pd.DataFrame, list[str]]:
    """The compact table and headline lines: the experiment's ``summary`` hook, or the
    generic one (:func:`~isackit.experiments.report.generic_summary`) when there is no
    experiment class (a run folder of an experiment that is not installed here) or when the
    hook fails on this table (reported through ``warn``)."""
    from .report import generic_summary

    if experiment is not None:
        try:
            return experiment().summary(df)
        except Exception as exc:  # a plug-in's table must not cost the user the run's results
            if warn is not None:
                warn(f"the summary of {experiment.name!r} failed ({type(exc).__name__}: {exc}); "
                     "showing the generic one")
    return generic_summary(df, bounds=meta.get("bounds", []), x_axis=meta.get("x_axis"))


@dataclass
class RunResult:
    """What :func:`run_experiment` returns: the run folder, the tidy results and their
    metadata, how many units were computed and reused, the figures written, the compact
    table and headline lines, the model files used and the unit files that were rejected."""

    path: Path
    results: pd.DataFrame
    meta: dict
    computed: int
    reused: int
    figures: list[Path]
    summary: pd.DataFrame | None = None
    headlines: list[str] | None = None
    models: list[dict] | None = None
    rejected: list[str] | None = None


def _is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text)


def run_experiment(
    spec: ResolvedSpec,
    *,
    engine: Engine | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    runs_dir: str | Path = "runs",
    progress: bool = False,
    figures: bool = True,
    on_start: Callable[[RunStore, int, int], None] | None = None,
    warn: Callable[[str], None] | None = None,
) -> RunResult:
    """Run (or resume) a resolved spec and write its run folder.

    Finished units are stored one by one as they complete; if anything interrupts the run
    (Ctrl-C, an exception, a kill), those files stay and ``resume=True`` computes only the
    missing units — and the stored ones that fail their checksum or identity check, which
    are reported through ``warn``.  Results are identical either way (units are seeded by
    identity).  ``progress=True`` shows a progress bar (units, and progress within a unit
    through ``unit.progress``).
    """
    engine = engine or InProcessEngine()
    config = spec.config
    exp = spec.experiment
    device = resolve_device(config.device) if engine.name == "inprocess" else torch.device(config.device)
    units = plan_units(exp, config)
    check_size(exp, config, device)
    engine.prepare(device)
    rejected: list[str] = []

    def report(msg: str) -> None:
        rejected.append(msg)
        if warn is not None:
            warn(msg)

    store, resumed = RunStore.open(spec.name, config, out=out, resume=resume, runs_dir=runs_dir)
    try:
        results: dict[str, UnitResult] = store.stored_results(units, report) if resumed else {}
        todo = [u for u in units if u.id not in results]
        try:
            if not resumed:
                store.write_env(environment(config, engine.name))
        except OSError as exc:
            raise os_error("write", store.path, exc) from None
        if on_start is not None:
            on_start(store, len(units) - len(todo), len(units))
        _run_units(spec, engine, todo, units, device, store, results, progress)
        return _finish(spec, store, units, results, len(todo), figures, rejected, warn)
    except BaseException:
        store.discard()
        raise
    finally:
        store.release()


def _run_units(spec, engine, todo, units, device, store, results, progress) -> None:
    config = spec.config
    bar = task = None
    base = {"done": len(units) - len(todo)}

    def on_done(unit: WorkUnit, result: UnitResult, seconds: float) -> None:
        try:
            store.save_unit(unit, result, seconds)
        except OSError as exc:
            n = len(store.done_ids())
            raise ExperimentError(f"cannot store unit {unit.id} in {store.path}: {exc.strerror or exc}; "
                                  f"{n} units are stored — fix that and continue with --resume") from None
        results[unit.id] = result
        base["done"] += 1
        if bar is not None:
            bar.update(task, completed=base["done"], description="units")

    def progress_for(unit: WorkUnit):
        if bar is None:
            return None
        last = [0.0]

        def report(done: int, total: int, what: str) -> None:
            now = time.monotonic()
            if now - last[0] < 0.1 and done < total:
                return
            last[0] = now
            frac = min(max(done / total, 0.0), 1.0) if total else 0.0
            bar.update(task, completed=base["done"] + frac,
                       description=f"unit {unit.id}: {what} {done}/{total}")

        return report

    if not todo:
        return
    try:
        if progress:
            from rich.console import Console
            from rich.progress import (BarColumn, Progress, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)

            with Progress(TextColumn(f"[bold]{spec.name}[/]"), BarColumn(),
                          TextColumn("{task.completed:.1f}/{task.total:.0f} units"), TimeElapsedColumn(),
                          TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.description}"),
                          console=Console(stderr=True)) as bar:
                task = bar.add_task("units", total=len(units), completed=base["done"])
                engine.run(spec.experiment, config, todo, device, on_done, progress_for)
        else:
            engine.run(spec.experiment, config, todo, device, on_done, None)
    except ExperimentError:
        raise
    except Exception as exc:
        if _is_out_of_memory(exc):
            raise ExperimentError(f"{spec.experiment.name}: a work unit ran out of memory on {device} "
                                  f"(chunk = {config.chunk} trials); lower chunk or the problem size") from None
        raise


def _finish(spec, store: RunStore, units, results, computed, figures, rejected, warn) -> RunResult:
    """Aggregate, then write results.parquet and models.json (first: nothing computed is
    lost if a later step fails), the summary and the figures."""
    config = spec.config
    exp = spec.experiment
    rows_of = {u.id: results[u.id].rows for u in units}
    df, bounds = aggregate(units, rows_of)
    meta = {"experiment": exp.name, "name": spec.name, "bounds": bounds, "x_axis": exp.x_axis,
            "log_y": exp.log_y, "config_hash": config_hash(config), "description": config.description,
            "labels": dict(exp.labels)}
    try:
        store.write_results(df, meta)
        models = store.write_models(results)
    except OSError as exc:
        raise os_error("write the results to", store.path, exc) from None
    table, lines = summarize(exp, df, meta, warn)
    try:
        atomic_write_text(store.summary_file, to_markdown(df, meta, title=f"{spec.name}: {config.description}",
                                                          headline=summary_markdown(table, lines)))
    except OSError as exc:
        raise os_error("write the summary to", store.path, exc) from None
    figs: list[Path] = []
    if figures:
        from .plotting import plot_results

        try:
            figs = plot_results(df, meta, store.figures_dir, run_dir=store.path)
        except OSError as exc:
            raise os_error("write the figures to", store.figures_dir, exc) from None
    return RunResult(store.path, df, meta, computed=computed, reused=len(units) - computed, figures=figs,
                     summary=table, headlines=lines, models=models, rejected=rejected)
