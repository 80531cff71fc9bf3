r"""Figures from tidy result tables (plotting lives here; estimators and bounds never plot).

:func:`plot_results` draws, for every metric, the value against one swept parameter (the
experiment's ``x_axis``, else the first numeric swept parameter with more than one value),
one line per method and one panel per combination of the other swept parameters:

* axes are labelled with units (:func:`isackit.experiments.report.label`, or the
  experiment's ``labels``);
* every method has its own marker (hollow) and line style, so lines that lie on top of each
  other stay visible; bounds are dashed, without markers, in greys; the legend sits outside
  the axes;
* a panel whose x parameter has a single value is drawn as a dot chart (methods on the
  y-axis, value on the x-axis, bounds as dashed vertical lines), not as dots on a lone x;
* tick labels are short (:func:`readable_axis`: no offset notation such as ``-0.9999999 +
  1e-7``).

Line labels are the ``method`` values in the table, i.e. the ``name`` of the estimator or
bound object that produced the numbers; nothing is relabelled here.  Writes PNG and SVG.

Sweeps whose points do not all have the same parameters (e.g. ``{panel, snr_db}`` and
``{panel, sigma}``) leave NaN in the parameters a point lacks; :func:`panel_groups` splits the
table by which parameters are present, so each panel has its own x-axis and no row is lost.

Experiment-specific figures: if the experiment class (looked up in the registry by the name
in the results' metadata) has a method ``figures(df, meta, out_dir, run_dir) -> [paths]``,
:func:`plot_results` calls it after the generic figures (``run_dir``: the run folder, whose
``units/*.json`` hold the rows' ``extra`` data, or None).  Helpers: :func:`save_figure`,
:func:`unit_rows`, :func:`readable_axis`, :func:`method_styles`.

>>> method_styles(["music", "dml", "CRB"], bounds=["CRB"])["CRB"]["linestyle"]
'--'
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pandas as pd

from .report import label, param_columns
from .units import Row, WorkUnit

__all__ = ["plot_results", "choose_x_axis", "panel_groups", "save_figure", "experiment_figures", "unit_rows",
           "readable_axis", "method_styles"]

MARKERS = ("o", "s", "^", "v", "D", "P", "X", "<", ">", "h", "*", "p")
LINESTYLES = ("-", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 1)))
BOUND_COLORS = ("black", "dimgray", "darkred", "navy")


def choose_x_axis(df: pd.DataFrame, params: list[str], preferred: str | None = None) -> str | None:
    """The swept parameter to put on the x-axis: ``preferred`` if swept, else the first
    numeric parameter with more than one value, else the first parameter."""
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
    try:
        for ext in ("png", "svg"):
            path = out / f"{_slug(stem)}.{ext}"
            with plt.rc_context({"svg.fonttype": "none"}):  # SVG text stays text (searchable)
                fig.savefig(path, dpi=120, bbox_inches="tight")
            written.append(path)
    finally:
        plt.close(fig)
    return written


def _use_agg():
    import matplotlib

    matplotlib.use("Agg", force=False)


def readable_axis(ax, axis: str = "y") -> None:
    """Short tick labels on a linear axis: no offset notation, at most four significant
    digits.  When the data span is tiny next to their size (e.g. a loss of −0.99999990 ±
    1e-8), the ticks show the deviation from a round reference c and the axis label says
    "− (c)", instead of ten-digit labels.  A logarithmic axis is left as it is.  Call it
    after the data and the axis label are set."""
    from matplotlib.ticker import FuncFormatter, ScalarFormatter

    target = ax.yaxis if axis == "y" else ax.xaxis
    scale = ax.get_yscale() if axis == "y" else ax.get_xscale()
    if scale != "linear":
        return
    lim = ax.dataLim
    lo, hi = (lim.y0, lim.y1) if axis == "y" else (lim.x0, lim.x1)
    if not (math.isfinite(lo) and math.isfinite(hi)):  # nothing finite plotted on this axis
        return
    span, centre = abs(hi - lo), (hi + lo) / 2
    if 0 < span < 1e-4 * abs(centre):
        ref = centre
        for digits in range(1, 17):
            ref = float(f"{centre:.{digits}g}")
            if abs(ref - centre) < span:
                break
        target.set_major_formatter(FuncFormatter(lambda v, _pos, c=ref: f"{v - c:.3g}"))
        text = target.get_label().get_text()
        target.set_label_text(f"{text} − ({ref:g})" if text else f"value − ({ref:g})")
        return
    fmt = ScalarFormatter(useOffset=False, useMathText=True)
    fmt.set_powerlimits((-3, 4))
    target.set_major_formatter(fmt)


def method_styles(methods: list[str], bounds: list[str] | set[str] = ()) -> dict[str, dict[str, Any]]:
    """Matplotlib line styles per method: estimators get a colour, a hollow marker and a line
    style of their own (so coinciding curves stay visible); bounds are dashed greys without
    markers."""
    import matplotlib.pyplot as plt

    palette = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    bounds = set(bounds)
    styles: dict[str, dict[str, Any]] = {}
    estimators = [m for m in methods if m not in bounds]
    for i, m in enumerate(estimators):
        styles[m] = dict(color=palette[i % len(palette)], marker=MARKERS[i % len(MARKERS)],
                         linestyle=LINESTYLES[(i // len(palette)) % len(LINESTYLES)] if i >= len(palette)
                         else LINESTYLES[i % 2], markersize=5 + (i % 3), markerfacecolor="none",
                         linewidth=1.3, zorder=3)
    for i, m in enumerate(m for m in methods if m in bounds):
        styles[m] = dict(color=BOUND_COLORS[i % len(BOUND_COLORS)], linestyle="--", linewidth=1.5, marker="",
                         zorder=2)
    return styles


def _dot_chart(ax, gdf: pd.DataFrame, order: list[str], styles, bounds: set[str], xlabel: str) -> dict:
    """One value per method: methods on the y-axis, the value on the x-axis, bounds as
    dashed vertical lines."""
    handles = {}
    est = [m for m in order if m in set(gdf["method"]) and m not in bounds]
    for i, m in enumerate(est):
        v = gdf.loc[gdf["method"] == m, "value"].dropna()
        st = {k: styles[m][k] for k in ("color", "marker", "markerfacecolor")}
        (h,) = ax.plot(v, [i] * len(v), linestyle="none", markersize=7, label=m, **st)
        handles[m] = h
    for m in order:
        if m in bounds and m in set(gdf["method"]):
            for v in gdf.loc[gdf["method"] == m, "value"].dropna():
                handles[m] = ax.axvline(v, color=styles[m]["color"], linestyle="--", linewidth=1.5, label=m)
    ax.set_yticks(range(len(est)), est)
    ax.set_ylim(-0.6, len(est) - 0.4)
    ax.set_xlabel(xlabel)
    return handles


def plot_results(df: pd.DataFrame, meta: dict[str, Any], out_dir: str | Path,
                 run_dir: str | Path | None = None) -> list[Path]:
    """One figure per metric (PNG + SVG) in ``out_dir``, then the experiment's own figures
    (:func:`experiment_figures`); returns the written paths.

    ``run_dir``: the run folder (for the experiment's figures); by default ``out_dir``'s parent
    when that is a run folder (``runs/.../figures``), else None.
    """
    _use_agg()
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    params = param_columns(df)
    preferred = meta.get("x_axis")
    labels = meta.get("labels") or {}
    bounds = set(meta.get("bounds", []))
    written: list[Path] = []
    methods = list(dict.fromkeys(df["method"]))
    order = [m for m in methods if m not in bounds] + [m for m in methods if m in bounds]
    styles = method_styles(methods, bounds)
    exp = _experiment_class(meta)
    generic = df.groupby("metric", sort=False) if getattr(exp, "generic_figures", True) else ()
    for metric, mdf in generic:
        groups = panel_groups(mdf, params, preferred, reference=df)
        n = len(groups)
        cols = min(n, 2 if n == 4 else 3)
        rows = math.ceil(n / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(4.8 * cols, 3.6 * rows), squeeze=False)
        legend: dict[str, Any] = {}
        ylabel = label(str(metric), labels)
        for ax, (x, facets, key, gdf) in zip(axes.flat, groups, strict=False):
            values = gdf["value"].dropna()
            log = meta.get("log_y", True) and len(values) and (values > 0).all()
            if x is None or gdf[x].nunique(dropna=True) <= 1:
                handles = _dot_chart(ax, gdf, order, styles, bounds, ylabel)
                if log:
                    ax.set_xscale("log")
                readable_axis(ax, "x")
                single = "" if x is None else f"{label(x, labels)} = {gdf[x].dropna().iloc[0]:g}" \
                    if pd.api.types.is_numeric_dtype(gdf[x]) else f"{x} = {gdf[x].dropna().iloc[0]}"
                facets_txt = [f"{f}={v}" for f, v in zip(facets, key, strict=True)]
                ax.set_title(", ".join(facets_txt + ([single] if single else [])), fontsize=9)
                ax.grid(True, axis="x", which="both", alpha=0.3)
                for m, h in handles.items():
                    legend.setdefault(m, h)
                continue
            for method, sdf in gdf.groupby("method", sort=False):
                sdf = sdf.sort_values(x)
                st = styles[method]
                if method in bounds:
                    st = {k: v for k, v in st.items() if k != "marker"}
                (line,) = ax.plot(sdf[x], sdf["value"], label=str(method), **st)
                legend.setdefault(str(method), line)
            if log:
                ax.set_yscale("log")
            ax.set_xlabel(label(x, labels))
            ax.set_ylabel(ylabel)
            readable_axis(ax, "y")
            readable_axis(ax, "x")
            if facets:
                ax.set_title(", ".join(f"{f}={v}" for f, v in zip(facets, key, strict=True)), fontsize=9)
            ax.grid(True, which="both", alpha=0.3)
        for ax in list(axes.flat)[n:]:
            ax.set_visible(False)
        present = [m for m in order if m in legend]
        title = meta.get("name") or meta.get("experiment") or ""
        fig.suptitle(f"{title}: {ylabel}" if title else ylabel, fontsize=10)
        fig.tight_layout()
        fig.legend([legend[m] for m in present], present, loc="center left", bbox_to_anchor=(1.0, 0.5),
                   fontsize=8, frameon=False)
        written += save_figure(fig, out, f"{metric}")
    if run_dir is None and (out.parent / "config.toml").is_file():
        run_dir = out.parent
    written += experiment_figures(df, meta, out, run_dir)
    return written


def _experiment_class(meta: dict[str, Any]):
    """The registered experiment named in ``meta`` (None if absent or not available here)."""
    from .config import ExperimentError
    from .registry import get_experiment

    name = meta.get("experiment")
    if not name:
        return None
    try:
        return get_experiment(str(name))
    except ExperimentError:
        return None


def experiment_figures(df: pd.DataFrame, meta: dict[str, Any], out_dir: str | Path,
                       run_dir: str | Path | None = None) -> list[Path]:
    """The figures of the experiment's own ``figures`` hook (none if it has no hook, or if the
    experiment named in ``meta`` is not available here).  The experiment is found through
    the registry only: a run folder never decides which code is imported."""
    from .config import ExperimentError
    from .registry import get_experiment

    name = meta.get("experiment")
    if not name:
        return []
    try:
        exp = get_experiment(str(name))
    except ExperimentError:
        return []
    hook = getattr(exp, "figures", None)
    if hook is None:
        return []
    _use_agg()
    return [Path(p) for p in exp().figures(df, meta, Path(out_dir), None if run_dir is None else Path(run_dir))]


def unit_rows(run_dir: str | Path) -> list[tuple[WorkUnit, list[Row]]]:
    """The sound stored work units of a run folder with their rows (``extra`` included), in
    unit-id order; files that fail their checksum are skipped."""
    from .store import UNIT_FORMAT, RunStore, _checksum

    store = RunStore(run_dir)
    out = []
    for path in sorted(store.units_dir.glob("*.json")):
        try:
            payload = json.loads(path.read_bytes())
        except (OSError, ValueError):
            continue
        if not isinstance(payload, dict) or payload.get("format") != UNIT_FORMAT \
                or payload.get("sha256") != _checksum(payload):
            continue
        info = payload["identity"]
        unit = WorkUnit(int(info["point_index"]), dict(info["point"]), int(info["chunk_index"]),
                        int(info["trials"]), int(info["seed"]))
        out.append((unit, [Row.from_dict(r) for r in payload["rows"]]))
    return out
