r"""Figures from tidy result tables (plotting lives here; estimators and bounds never plot).

:func:`plot_results` draws, for every metric, the value against one swept parameter (the
experiment's ``x_axis``, else the first numeric swept parameter), one line per method —
bounds dashed — and one panel per combination of the other swept parameters.  Line labels
are the ``method`` values in the table, i.e. the ``name`` of the estimator or bound object
that produced the numbers; nothing is relabelled here.  Writes PNG and SVG.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["plot_results", "choose_x_axis"]


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


def plot_results(df: pd.DataFrame, meta: dict[str, Any], out_dir: str | Path) -> list[Path]:
    """One figure per metric (PNG + SVG) in ``out_dir``; returns the written paths."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from .experiments.report import param_columns

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    params = param_columns(df)
    x = choose_x_axis(df, params, meta.get("x_axis"))
    bounds = set(meta.get("bounds", []))
    facets = [p for p in params if p != x]
    written: list[Path] = []
    methods = list(dict.fromkeys(df["method"]))
    palette = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    estimators = [m for m in methods if m not in bounds]
    colors = {m: palette[i % len(palette)] for i, m in enumerate(estimators)}
    bound_colors = ["black", "dimgray", "darkred", "navy"]
    colors.update({m: bound_colors[i % len(bound_colors)] for i, m in enumerate(m for m in methods if m in bounds)})
    for metric, mdf in df.groupby("metric", sort=False):
        groups = list(mdf.groupby(facets, sort=False)) if facets else [((), mdf)]
        n = len(groups)
        cols = min(n, 2 if n == 4 else 3)
        rows = math.ceil(n / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.6 * rows), squeeze=False)
        legend: dict[str, Any] = {}
        for ax, (key, gdf) in zip(axes.flat, groups, strict=False):
            key = key if isinstance(key, tuple) else (key,)
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
        stem = _slug(f"{metric}")
        for ext in ("png", "svg"):
            path = out / f"{stem}.{ext}"
            with plt.rc_context({"svg.fonttype": "none"}):  # SVG text stays text (searchable)
                fig.savefig(path, dpi=120, bbox_inches="tight")
            written.append(path)
        plt.close(fig)
    return written
