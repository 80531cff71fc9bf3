r"""Tables from tidy results: the compact headline table, the full wide table (Markdown
for ``summary.md``, rich for ``isackit show``), and axis labels with units.

The tidy table has one row per (sweep point, method, metric) with columns ``method``,
``metric``, ``value``, ``n_trials`` and one column per swept parameter.

* The *compact* table (printed at the end of ``isackit run`` and by ``isackit show``) has one
  row per method and the key metrics as columns, bound rows beside the estimators; it comes
  from the experiment's ``summary(df)`` hook, or :func:`generic_summary`.
* The *full* table (:func:`wide_table`, in ``summary.md``) pivots every row: one row per
  (sweep point, metric), one column per method (estimators first, then bounds).

>>> label("snr_db"), label("rmse_deg"), label("failure_rate"), label("position_rmse_m")
('SNR (dB)', 'RMSE (°)', 'Failure rate', 'Position RMSE (m)')
"""

from __future__ import annotations

import math
import re
from typing import Any

import pandas as pd

__all__ = ["TIDY_COLUMNS", "param_columns", "wide_table", "metric_table", "to_markdown", "label",
           "generic_summary", "summary_markdown", "pick_values"]

#: unit suffix of a column or metric name -> unit shown in labels
UNITS = {"db": "dB", "dbm": "dBm", "deg": "°", "rad": "rad", "m": "m", "mm": "mm", "cm": "cm", "km": "km",
         "s": "s", "ms": "ms", "us": "µs", "ns": "ns", "hz": "Hz", "khz": "kHz", "mhz": "MHz", "ghz": "GHz",
         "mps": "m/s", "pct": "%", "percent": "%", "wavelengths": "λ", "lambda": "λ"}
#: words written in capitals in labels
ACRONYMS = {"snr", "rmse", "mse", "crb", "mcrb", "peb", "gospa", "ber", "ser", "aod", "aoa", "doa", "ula",
            "ura", "mimo", "ofdm", "isac", "ml", "dml", "mvdr", "music", "esprit", "omp", "evm", "sinr", "los",
            "nlos", "ue", "bs", "cfo", "iq", "ap", "mae"}


def label(name: str, labels: dict[str, str] | None = None) -> str:
    """An axis label with its unit for a column or metric ``name`` (``labels`` first; else
    the name with acronyms capitalised and a unit suffix turned into "(unit)")."""
    if labels and name in labels:
        return labels[name]
    words = [w for w in re.split(r"[_\s]+", str(name)) if w]
    if not words:
        return str(name)
    unit = None
    if len(words) > 1 and words[-1].lower() in UNITS:
        unit = UNITS[words.pop().lower()]
    words = [w.upper() if w.lower() in ACRONYMS else w for w in words]
    if words[0].islower():
        words[0] = words[0][0].upper() + words[0][1:]
    text = " ".join(words)
    return f"{text} ({unit})" if unit else text

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


def to_markdown(df: pd.DataFrame, meta: dict[str, Any] | None = None, title: str | None = None,
                headline: str | None = None) -> str:
    """The wide summary as a GitHub-flavoured Markdown table (after ``headline``: the compact
    table of :func:`summary_markdown`, when given)."""
    wide = wide_table(df, meta)
    cols = list(wide.columns)
    lines = []
    if title:
        lines += [f"# {title}", ""]
    if headline:
        lines += ["## Summary", "", headline.rstrip("\n"), "", "## All results", ""]
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


def pick_values(values: list, limit: int = 3) -> list:
    """At most ``limit`` of the sorted distinct ``values``: the first, the last and evenly
    spaced ones between (the x values a compact table shows)."""
    vals = sorted(dict.fromkeys(v for v in values if not (isinstance(v, float) and math.isnan(v))))
    if len(vals) <= limit:
        return vals
    idx = sorted({round(i * (len(vals) - 1) / (limit - 1)) for i in range(limit)})
    return [vals[i] for i in idx]


def _choose_x(df: pd.DataFrame, params: list[str], preferred: str | None) -> str | None:
    if preferred in params:
        return preferred
    for p in params:
        if pd.api.types.is_numeric_dtype(df[p]) and not pd.api.types.is_bool_dtype(df[p]) and df[p].nunique() > 1:
            return p
    return None


def _num(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def generic_summary(df: pd.DataFrame, bounds: list[str] | None = None, x_axis: str | None = None,
                    max_metrics: int = 3, max_x: int = 3) -> tuple[pd.DataFrame, list[str]]:
    """The default compact table and headline lines of a tidy result table.

    Rows: one per method (estimators, then bounds), repeated per combination of the swept
    parameters other than the x-axis (those lead the row).  Columns: each of the first
    ``max_metrics`` metrics at up to ``max_x`` values of the x-axis (first, last, middle),
    named ``"<metric> @ <x>=<value>"``.  Headlines: for each metric that has a bound, at the
    largest x value, the best estimator's value and its ratio to each bound.
    """
    bounds = list(bounds or [])
    if df.empty:
        return pd.DataFrame(), []
    params = param_columns(df)
    x = _choose_x(df, params, x_axis)
    if x:  # a ragged sweep: the compact table covers the points that have the x parameter
        df = df[df[x].notna()]
    facets = [p for p in params if p != x and df[p].notna().any() and df[p].nunique(dropna=False) > 1]
    metrics = list(dict.fromkeys(df["metric"]))[:max_metrics]
    methods = list(dict.fromkeys(df["method"]))
    order = [m for m in methods if m not in bounds] + [m for m in methods if m in bounds]
    xs = pick_values(df[x].tolist(), max_x) if x else []
    sub = df[df["metric"].isin(metrics)]
    if x:
        sub = sub[sub[x].isin(xs)]
    cols = []
    for metric in metrics:
        for xv in xs or [None]:
            cols.append((metric, xv))
    records = []
    keys = [tuple(k) for k in sub[facets].drop_duplicates().itertuples(index=False)] if facets else [()]
    for key in keys:
        part = sub
        for f, v in zip(facets, key, strict=True):
            part = part[part[f].isna()] if pd.isna(v) else part[part[f] == v]
        for method in order:
            mrows = part[part["method"] == method]
            if mrows.empty:
                continue
            rec: dict[str, Any] = dict(zip(facets, key, strict=True))
            rec["method"] = method
            for metric, xv in cols:
                hit = mrows[mrows["metric"] == metric]
                if xv is not None:
                    hit = hit[hit[x] == xv]
                name = metric if xv is None else f"{metric} @ {x}={_num(xv)}"
                rec[name] = float(hit["value"].iloc[0]) if len(hit) else math.nan
            records.append(rec)
    table = pd.DataFrame.from_records(records)
    table = table.dropna(axis=1, how="all") if len(table) else table
    lines: list[str] = []
    if x:
        xmax = xs[-1]
        for metric in metrics:
            mdf = df[(df["metric"] == metric) & (df[x] == xmax)]
            for key in keys[:4]:
                part = mdf
                for f, v in zip(facets, key, strict=True):
                    part = part[part[f].isna()] if pd.isna(v) else part[part[f] == v]
                est = part[~part["method"].isin(bounds)].dropna(subset=["value"])
                bnd = part[part["method"].isin(bounds)].dropna(subset=["value"])
                if est.empty or bnd.empty:
                    continue
                best = est.loc[est["value"].idxmin()]
                where = ", ".join([f"{x}={_num(xmax)}"] + [f"{f}={_num(v)}" for f, v in zip(facets, key, strict=True)])
                ratios = ", ".join(f"{best['value'] / b['value']:.3g} × {b['method']}"
                                   for _, b in bnd.iterrows() if b["value"] > 0)
                if ratios:
                    lines.append(f"{metric} at {where}: best {best['method']} = {_fmt(float(best['value']))} "
                                 f"= {ratios}")
    return table, lines


def summary_markdown(table: pd.DataFrame, lines: list[str]) -> str:
    """The compact table and headline lines as Markdown."""
    out = []
    if len(table):
        cols = list(table.columns)
        out.append("| " + " | ".join(map(str, cols)) + " |")
        out.append("|" + "|".join("---:" if pd.api.types.is_numeric_dtype(table[c]) else "---" for c in cols) + "|")
        for row in table.itertuples(index=False):
            out.append("| " + " | ".join(_fmt(v) for v in row) + " |")
    if lines:
        out += [""] + [f"- {line}" for line in lines]
    return "\n".join(out) + ("\n" if out else "")
