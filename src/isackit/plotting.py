r"""Figures from tidy result tables (plotting lives here; estimators and bounds never plot).

:func:`plot_results` draws, for every metric, the value against one swept parameter (the
experiment's ``x_axis``, else the first numeric swept parameter), one line per method —
bounds dashed — and one panel per combination of the other swept parameters.  Line labels
are the ``method`` values in the table, i.e. the ``name`` of the estimator or bound object
that produced the numbers; nothing is relabelled here.  Writes PNG and SVG.

Sweeps whose points do not all have the same parameters (e.g. ``{panel, snr_db}`` and
``{panel, sigma}``) leave NaN in the parameters a point lacks; :func:`panel_groups` splits the
table by which parameters are present, so each panel has its own x-axis and no row is lost.

Experiment-specific figures: if the experiment class (looked up in the registry, importing the
run's ``module`` when needed) has a method ``figures(df, meta, out_dir, run_dir) -> [paths]``,
:func:`plot_results` calls it after the generic figures (``run_dir``: the run folder, whose
``units/*.json`` hold the rows' ``extra`` data, or None).  Helpers: :func:`save_figure`,
:func:`unit_rows`.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pandas as pd

from .experiments.units import Row, WorkUnit

__all__ = ["plot_results", "choose_x_axis", "panel_groups", "save_figure", "experiment_figures", "unit_rows"]


def choose_x_axis(df: pd.DataFrame, params: list[str], preferred: str | None = None) -> str | None:
    """The swept parameter to put on the x-axis."""
    if preferred in params:
        return preferred
    for p in params:
        if pd.api.types.is_numeric_dtype(df[p]) and not pd.api.types.is_bool_dtype(df[p]) and df[p].nunique() > 1:
            return p
    return params[0] if params else None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "figure"


def _present_schemas(df: pd.DataFrame, params: list[str]) -> list[list[str]]:
    """The distinct sets of non-missing swept parameters, in first-appearance order."""
    if not params:
        return [[]]
    present = df[params].notna()
    keys = list(dict.fromkeys(map(tuple, present.to_numpy().tolist())))
    return [[p for p, has in zip(params, key, strict=True) if has] for key in keys]


def _schema_rows(df: pd.DataFrame, params: list[str], cols: list[str]) -> pd.DataFrame:
    mask = pd.Series(True, index=df.index)
    if cols:
        mask &= df[cols].notna().all(axis=1)
    absent = [p for p in params if p not in cols]
    if absent:
        mask &= df[absent].isna().all(axis=1)
    return df[mask]


def panel_groups(df: pd.DataFrame, params: list[str], preferred: str | None = None,
                 reference: pd.DataFrame | None = None):
    """Split a tidy table into plot panels: ``[(x, facets, key, rows)]``.

    Rows are first grouped by which swept parameters they have (not NaN); within a group the
    x-axis is :func:`choose_x_axis` of the group's parameters, evaluated on the same group of
    ``reference`` (the whole table, when ``df`` is one metric's rows; default ``df``), and one
    panel is made per combination of the others (``facets``, with values ``key``).  With no
    missing values this is one group: x from all parameters, one panel per combination of the
    rest.  Every row of ``df`` is in exactly one panel.
    """
    reference = df if reference is None else reference
    out = []
    for cols in _present_schemas(df, params):
        sub = _schema_rows(df, params, cols)
        x = choose_x_axis(_schema_rows(reference, params, cols), cols, preferred)
        facets = [c for c in cols if c != x]
        groups = list(sub.groupby(facets, sort=False)) if facets else [((), sub)]
        for key, gdf in groups:
            out.append((x, facets, key if isinstance(key, tuple) else (key,), gdf))
    return out


def save_figure(fig, out_dir: str | Path, stem: str) -> list[Path]:
    """Save ``fig`` as ``out_dir/stem.png`` and ``.svg`` (text kept as text), close it, return the paths."""
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for ext in ("png", "svg"):
        path = out / f"{_slug(stem)}.{ext}"
        with plt.rc_context({"svg.fonttype": "none"}):  # SVG text stays text (searchable)
            fig.savefig(path, dpi=120, bbox_inches="tight")
        written.append(path)
    plt.close(fig)
    return written


def _use_agg():
    import matplotlib

    matplotlib.use("Agg", force=False)


def plot_results(df: pd.DataFrame, meta: dict[str, Any], out_dir: str | Path,
                 run_dir: str | Path | None = None) -> list[Path]:
    """One figure per metric (PNG + SVG) in ``out_dir``, then the experiment's own figures
    (:func:`experiment_figures`); returns the written paths.

    ``run_dir``: the run folder (for the experiment's figures); by default ``out_dir``'s parent
    when that is a run folder (``runs/.../figures``), else None.
    """
    _use_agg()
    import matplotlib.pyplot as plt

    from .experiments.report import param_columns

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    params = param_columns(df)
    preferred = meta.get("x_axis")
    bounds = set(meta.get("bounds", []))
    written: list[Path] = []
    methods = list(dict.fromkeys(df["method"]))
    palette = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    estimators = [m for m in methods if m not in bounds]
    colors = {m: palette[i % len(palette)] for i, m in enumerate(estimators)}
    bound_colors = ["black", "dimgray", "darkred", "navy"]
    colors.update({m: bound_colors[i % len(bound_colors)] for i, m in enumerate(m for m in methods if m in bounds)})
    for metric, mdf in df.groupby("metric", sort=False):
        groups = panel_groups(mdf, params, preferred, reference=df)
        n = len(groups)
        cols = min(n, 2 if n == 4 else 3)
        rows = math.ceil(n / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.6 * rows), squeeze=False)
        legend: dict[str, Any] = {}
        for ax, (x, facets, key, gdf) in zip(axes.flat, groups, strict=False):
            for method, sdf in gdf.groupby("method", sort=False):
                sdf = sdf.sort_values(x) if x else sdf
                xs = sdf[x] if x else range(len(sdf))
                if method in bounds:
                    style = dict(linestyle="--", linewidth=1.4)
                else:
                    style = dict(linestyle="-", marker="o", markersize=3)
                (line,) = ax.plot(xs, sdf["value"], label=str(method), color=colors[method], **style)
                legend.setdefault(str(method), line)
            values = gdf["value"].dropna()
            if meta.get("log_y", True) and len(values) and (values > 0).all():
                ax.set_yscale("log")
            ax.set_xlabel(x or "point")
            ax.set_ylabel(str(metric))
            if facets:
                ax.set_title(", ".join(f"{f}={v}" for f, v in zip(facets, key, strict=True)), fontsize=9)
            ax.grid(True, which="both", alpha=0.3)
        for ax in list(axes.flat)[n:]:
            ax.set_visible(False)
        order = [m for m in methods if m in legend]
        title = meta.get("name") or meta.get("experiment") or ""
        fig.suptitle(f"{title}: {metric}", fontsize=10)
        fig.tight_layout()
        fig.legend([legend[m] for m in order], order, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8,
                   frameon=False)
        written += save_figure(fig, out, f"{metric}")
    if run_dir is None and (out.parent / "config.toml").is_file():
        run_dir = out.parent
    written += experiment_figures(df, meta, out, run_dir)
    return written


def experiment_figures(df: pd.DataFrame, meta: dict[str, Any], out_dir: str | Path,
                       run_dir: str | Path | None = None) -> list[Path]:
    """The figures of the experiment's own ``figures`` hook (none if it has no hook, or if the
    experiment named in ``meta`` cannot be found)."""
    from .experiments.config import ExperimentError, read_toml
    from .experiments.registry import get_experiment

    name = meta.get("experiment")
    if not name:
        return []
    module = None
    if run_dir is not None and (Path(run_dir) / "config.toml").is_file():
        module = read_toml(Path(run_dir) / "config.toml").get("module")
    try:
        exp = get_experiment(str(name), module if isinstance(module, str) else None)
    except ExperimentError:
        return []
    hook = getattr(exp, "figures", None)
    if hook is None:
        return []
    _use_agg()
    return [Path(p) for p in exp().figures(df, meta, Path(out_dir), None if run_dir is None else Path(run_dir))]


def unit_rows(run_dir: str | Path) -> list[tuple[WorkUnit, list[Row]]]:
    """The stored work units of a run folder with their rows (``extra`` included), in unit-id order."""
    from .experiments.store import RunStore

    store = RunStore(run_dir)
    out = []
    for path in sorted(store.units_dir.glob("*.json")):
        info = json.loads(path.read_text())["unit"]
        unit = WorkUnit(int(info["point_index"]), dict(info["point"]), int(info["chunk_index"]),
                        int(info["trials"]), int(info["seed"]))
        out.append((unit, store.load_unit(unit)))
    return out
