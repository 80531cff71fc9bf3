r"""Tables from tidy results: the wide summary (Markdown for ``summary.md``, rich for
``isackit show``).

The tidy table has one row per (sweep point, method, metric) with columns ``method``,
``metric``, ``value``, ``n_trials`` and one column per swept parameter.  The summary pivots
it: one row per (sweep point, metric), one column per method (estimators first, then
bounds).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

__all__ = ["TIDY_COLUMNS", "param_columns", "wide_table", "metric_table", "to_markdown"]

TIDY_COLUMNS = ("method", "metric", "value", "n_trials")


def param_columns(df: pd.DataFrame) -> list[str]:
    """The swept-parameter columns of a tidy table (everything but the fixed columns)."""
    return [c for c in df.columns if c not in TIDY_COLUMNS]


def _order_keys(frame: pd.DataFrame, df: pd.DataFrame, cols: list[str]) -> list[pd.Series]:
    """Sort keys that keep each column's first-appearance order in the tidy table.

    A missing value (NaN/None: a swept parameter that some sweep points do not have) is one
    value of its own, ordered where it first appears."""
    keys = []
    for c in cols:
        codes, _ = pd.factorize(pd.concat([df[c], frame[c]], ignore_index=True), sort=False,
                                use_na_sentinel=False)
        keys.append(pd.Series(codes[len(df):], index=frame.index))
    return keys


def _pivot(df: pd.DataFrame, rows: list[str], column: str, column_order: list) -> pd.DataFrame:
    wide = df.set_index(rows + [column])["value"].unstack(column)
    wide = wide.reindex(columns=[c for c in column_order if c in wide.columns]).reset_index()
    wide.columns.name = None
    keys = _order_keys(wide, df, rows)
    tmp = wide.assign(**{f"_k{i}": k for i, k in enumerate(keys)})
    tmp = tmp.sort_values([f"_k{i}" for i in range(len(keys))], kind="stable")
    return tmp.drop(columns=[f"_k{i}" for i in range(len(keys))]).reset_index(drop=True)


def wide_table(df: pd.DataFrame, meta: dict[str, Any] | None = None) -> pd.DataFrame:
    """Pivot to one row per (sweep point, metric) and one column per method (bounds last)."""
    bounds = set((meta or {}).get("bounds", []))
    methods = list(dict.fromkeys(df["method"]))
    methods = [m for m in methods if m not in bounds] + [m for m in methods if m in bounds]
    return _pivot(df, param_columns(df) + ["metric"], "method", methods)


def metric_table(df: pd.DataFrame, meta: dict[str, Any] | None = None) -> pd.DataFrame:
    """One row per (sweep point, method), one column per metric (narrow: for terminals);
    within a point, estimators first, then bounds."""
    bounds = set((meta or {}).get("bounds", []))
    methods = list(dict.fromkeys(df["method"]))
    rank = {m: i for i, m in enumerate([m for m in methods if m not in bounds] + [m for m in methods if m in bounds])}
    ordered = df.assign(_r=df["method"].map(rank)).sort_values("_r", kind="stable").drop(columns="_r")
    return _pivot(ordered, param_columns(df) + ["method"], "metric", list(dict.fromkeys(df["metric"])))


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "–"
        return f"{v:.4g}"
    return str(v)


def to_markdown(df: pd.DataFrame, meta: dict[str, Any] | None = None, title: str | None = None) -> str:
    """The wide summary as a GitHub-flavoured Markdown table."""
    wide = wide_table(df, meta)
    cols = list(wide.columns)
    lines = []
    if title:
        lines += [f"# {title}", ""]
    lines.append("| " + " | ".join(cols) + " |")
    lines.append("|" + "|".join("---:" if pd.api.types.is_numeric_dtype(wide[c]) else "---" for c in cols) + "|")
    for row in wide.itertuples(index=False):
        lines.append("| " + " | ".join(_fmt(v) for v in row) + " |")
    trials = df.loc[df["n_trials"] > 0, "n_trials"]
    if len(trials):
        lines += ["", f"Monte Carlo trials per point: {int(trials.min())}"
                  + (f"–{int(trials.max())}" if trials.max() != trials.min() else "")
                  + ". Bounds are computed, not simulated (n_trials = 0)."]
    return "\n".join(lines) + "\n"
