r"""The sweep runner: plan work units, run the missing ones on an engine, store each as it
finishes, aggregate exactly, and write the run folder's results, summary and figures.

>>> spec = resolve_spec("doa", quick=True)
>>> result = run_experiment(spec)               # doctest: +SKIP
>>> result.results.head()                        # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from .config import ExperimentConfig, ExperimentError, config_hash
from .engines import Engine, InProcessEngine
from .registry import Experiment, ResolvedSpec
from .report import to_markdown
from .store import RunStore, atomic_write_text, environment
from .units import Row, WorkUnit, aggregate_rows, unit_seed

__all__ = ["plan_units", "resolve_device", "aggregate", "run_experiment", "RunResult"]


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


def plan_units(experiment: type[Experiment], config: ExperimentConfig) -> list[WorkUnit]:
    """Sweep points × chunks of ``config.chunk`` trials (the last chunk may be smaller)."""
    points = [_check_point(p, experiment.name) for p in experiment().points(config)]
    chunks = math.ceil(config.trials / config.chunk)
    units = []
    for pi, point in enumerate(points):
        for ci in range(chunks):
            n = min(config.chunk, config.trials - ci * config.chunk)
            units.append(WorkUnit(pi, point, ci, n, unit_seed(config.seed, experiment.name, point, ci)))
    return units


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


@dataclass
class RunResult:
    path: Path
    results: pd.DataFrame
    meta: dict
    computed: int
    reused: int
    figures: list[Path]


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
) -> RunResult:
    """Run (or resume) a resolved spec and write its run folder.

    Finished units are stored one by one as they complete; if anything interrupts the run
    (Ctrl-C, an exception, a kill), those files stay and ``resume=True`` computes only the
    missing units.  Results are identical either way (units are seeded by identity).
    """
    engine = engine or InProcessEngine()
    config = spec.config
    device = resolve_device(config.device) if engine.name == "inprocess" else torch.device(config.device)
    units = plan_units(spec.experiment, config)
    store, resumed = RunStore.open(spec.name, config, out=out, resume=resume, runs_dir=runs_dir)
    done = store.done_ids() if resumed else set()
    todo = [u for u in units if u.id not in done]
    if not resumed:
        store.write_env(environment(config, engine.name))
    if on_start is not None:
        on_start(store, len(units) - len(todo), len(units))

    def on_done(unit: WorkUnit, rows: list[Row], seconds: float) -> None:
        store.save_unit(unit, rows, seconds)
        if bar is not None:
            bar.advance(task)

    bar = task = None
    if todo:
        if progress:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)

            with Progress(TextColumn(f"[bold]{spec.name}[/] units"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                          console=Console(stderr=True)) as bar:
                task = bar.add_task("run", total=len(units), completed=len(units) - len(todo))
                engine.run(spec.experiment, config, todo, device, on_done)
        else:
            engine.run(spec.experiment, config, todo, device, on_done)

    rows_of = {u.id: store.load_unit(u) for u in units}
    df, bounds = aggregate(units, rows_of)
    exp = spec.experiment
    meta = {"experiment": exp.name, "name": spec.name, "bounds": bounds, "x_axis": exp.x_axis,
            "log_y": exp.log_y, "config_hash": config_hash(config), "description": config.description}
    store.write_results(df, meta)
    atomic_write_text(store.summary_file, to_markdown(df, meta, title=f"{spec.name}: {config.description}"))
    figs: list[Path] = []
    if figures:
        from ..plotting import plot_results

        figs = plot_results(df, meta, store.figures_dir, run_dir=store.path)
    return RunResult(store.path, df, meta, computed=len(todo), reused=len(units) - len(todo), figures=figs)
