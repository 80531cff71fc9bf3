r"""Figures of the ``calibration`` experiment (S0, seed 000), drawn after the generic per-metric
figures by :func:`isackit.experiments.plotting.plot_results` (``isackit run`` and ``isackit plot``).

* ``tradeoff`` — the sensing–communication trade-off: GOSPA and RMSE (m) against the SER,
  one point per ISAC loss weight w (labelled with its value) for each unsupervised loss, with
  the uncalibrated and perfect-knowledge baselines as reference points.  From the results
  table alone.
* ``learning_curves_device<c>`` — per device (chunk c) at the main w: the training losses
  (ISAC, sensing, comm) and the learned-vs-true errors (phase, gain, position; Tx and Rx)
  against the training step, one curve per trained method.  The errors are recorded after the
  update of each logged step s, so they are drawn at s + 1 updates, starting from the nominal
  model's error at 0.
* ``learned_vs_true_device<c>`` — per device at the main w: learned and true per-element gain
  (dB), phase (deg) and displacement (x, y; mm) of the Tx and Rx arrays, aligned on what no
  observation reveals (:func:`isackit.systems.calibration.evaluation.aligned_parameters`).

The last two read the per-unit ``extra`` data of the run folder (``units/*.json``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from ..plotting import readable_axis, save_figure, unit_rows
from ..units import Row, WorkUnit

__all__ = ["UNSUPERVISED", "REFERENCES", "CURVE_PANELS", "ELEMENT_PANELS", "main_weight", "learning_curves",
           "element_parameters", "tradeoff_figure", "learning_curve_figure", "learned_vs_true_figure",
           "calibration_figures"]

#: the unsupervised losses (trade-off curves) and the reference baselines (single points).
UNSUPERVISED = ("unsupervised_residual", "unsupervised_max_response", "unsupervised_max_response_adm")
REFERENCES = ("uncalibrated", "perfect")
#: learning-curve panels: (record key, y label).
CURVE_PANELS = (("loss", "ISAC loss"), ("sensing", "sensing loss"), ("comm", "comm loss"),
                ("phase_err_deg_tx", "Tx phase error (deg)"), ("gain_err_db_tx", "Tx gain error (dB)"),
                ("position_err_mm_tx", "Tx position error (mm)"),
                ("phase_err_deg_rx", "Rx phase error (deg)"), ("gain_err_db_rx", "Rx gain error (dB)"),
                ("position_err_mm_rx", "Rx position error (mm)"))
#: learned-vs-true panels (columns): (aligned_parameters key, component or None, y label).
ELEMENT_PANELS = (("gain_db", None, "gain (dB)"), ("phase_deg", None, "phase (deg)"),
                  ("displacement_mm", 0, "displacement x (mm)"), ("displacement_mm", 1, "displacement y (mm)"))


def main_weight(df: pd.DataFrame) -> float | None:
    """The ISAC weight w at which all methods ran: the w with the most methods in ``df``."""
    if "w" not in df.columns or df.empty:
        return None
    counts = df.groupby("w", sort=False)["method"].nunique()
    return float(counts.idxmax())


def _units_at(units: list[tuple[WorkUnit, list[Row]]], w: float | None):
    return [(u, rows) for u, rows in units if w is None or math.isclose(float(u.point.get("w", math.nan)), w)]


def learning_curves(units: list[tuple[WorkUnit, list[Row]]], w: float | None = None) -> dict[int, dict[str, dict]]:
    """``{device (chunk index): {method: {"curve": {key: [values]}, "initial": {key: value}}}}``
    of the units at weight ``w`` (all units if None)."""
    out: dict[int, dict[str, dict]] = {}
    for unit, rows in _units_at(units, w):
        for r in rows:
            if "learning_curve" in r.extra:
                curve = r.extra["learning_curve"]
                if isinstance(curve, list):     # runs before the curves were tables: [(step, loss)]
                    curve = {"step": [p[0] for p in curve], "loss": [p[1] for p in curve]}
                out.setdefault(unit.chunk_index, {})[r.method] = {"curve": curve, "initial": r.extra.get("initial", {})}
    return out


def element_parameters(units: list[tuple[WorkUnit, list[Row]]], w: float | None = None) -> dict[int, dict]:
    """``{device: {side: {method: aligned parameters (lists)}}}`` of the units at weight ``w``."""
    out: dict[int, dict] = {}
    for unit, rows in _units_at(units, w):
        for r in rows:
            if "elements" in r.extra and r.metric.startswith("phase_err_deg_"):
                side = r.metric.rsplit("_", 1)[-1]
                out.setdefault(unit.chunk_index, {}).setdefault(side, {})[r.method] = r.extra["elements"]
    return out


#: colour order: one colour per method across all figures.
_ORDER = ("uncalibrated", "perfect", "supervised", "true_gradient", "unsupervised_residual",
          "unsupervised_max_response")


def _colors(methods):
    import matplotlib.pyplot as plt

    palette = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    order = list(_ORDER) + [m for m in methods if m not in _ORDER]
    return {m: palette[order.index(m) % len(palette)] for m in methods}


def _value(df: pd.DataFrame, method: str, metric: str, w: float) -> float:
    v = df.loc[(df["method"] == method) & (df["metric"] == metric) & (df["w"] == w), "value"]
    return float(v.iloc[0]) if len(v) else math.nan


def tradeoff_figure(df: pd.DataFrame, title: str = "calibration"):
    """GOSPA and RMSE vs SER: one line per unsupervised loss through its w points (each
    annotated ``w=…``), the references as single markers at the main w.  Returns the figure."""
    import matplotlib.pyplot as plt

    main = main_weight(df)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), squeeze=False)
    present = [m for m in (*UNSUPERVISED, *REFERENCES) if m in set(df["method"])]
    colors = _colors(present)
    for ax, metric, label in zip(axes.flat, ("gospa_m", "rmse_m"), ("GOSPA (m)", "RMSE of matched detections (m)"),
                                 strict=True):
        sers = []
        for method in (m for m in UNSUPERVISED if m in present):
            ws = sorted(float(w) for w in df.loc[df["method"] == method, "w"].unique())
            xs = [_value(df, method, "ser", w) for w in ws]
            ys = [_value(df, method, metric, w) for w in ws]
            ax.plot(xs, ys, marker="o", linestyle="-", color=colors[method], label=method)
            for w, x, y in zip(ws, xs, ys, strict=True):
                ax.annotate(f"w={w:g}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7,
                            color=colors[method])
            sers += xs
        for method, marker in zip(REFERENCES, ("s", "*"), strict=True):
            if method in present and main is not None:
                x, y = _value(df, method, "ser", main), _value(df, method, metric, main)
                ax.plot([x], [y], marker=marker, markersize=9, linestyle="none", color=colors[method], label=method)
                sers.append(x)
        finite = [s for s in sers if math.isfinite(s)]
        if finite and min(finite) > 0 and max(finite) > 10 * min(finite):
            from matplotlib.ticker import NullFormatter

            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("SER")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"{title}: sensing–communication trade-off (ISAC loss weight w)", fontsize=10)
    fig.tight_layout()
    return fig


def learning_curve_figure(curves: dict[str, dict], title: str = ""):
    """The :data:`CURVE_PANELS` of one device, one line per method in ``curves`` (from
    :func:`learning_curves`).  Returns the figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 3, figsize=(13, 9.5), squeeze=False)
    colors = _colors(list(curves))
    for ax, (key, label) in zip(axes.flat, CURVE_PANELS, strict=True):
        monitored = key not in ("loss", "sensing", "comm")
        for method, data in curves.items():
            c = data["curve"]
            if key not in c:
                continue
            steps = [float(s) for s in c["step"]]
            ys = [float(v) for v in c[key]]
            if monitored:   # recorded after the update of step s: s + 1 updates, from the start at 0
                steps = [0.0] + [s + 1 for s in steps]
                ys = [float(data["initial"].get(key, math.nan))] + ys
            ax.plot(steps, ys, marker="o", markersize=2.5, linestyle="-", color=colors[method], label=method)
        ax.set_xlabel("updates" if monitored else "step")
        ax.set_ylabel(label)
        if ax.get_lines():
            readable_axis(ax, "y")
        ax.grid(True, alpha=0.3)
    return _finish(fig, axes, title)


def _finish(fig, axes, title: str):
    """Title, tight layout and one legend (from the first panel) to the right of the grid."""
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False)
    return fig


def learned_vs_true_figure(elements: dict[str, dict[str, dict]], title: str = ""):
    """Rows: Tx, Rx; columns: :data:`ELEMENT_PANELS`; in each panel the true values (black,
    dashed) and one line per method (from :func:`element_parameters`).  Returns the figure."""
    import matplotlib.pyplot as plt

    sides = [s for s in ("tx", "rx") if s in elements]
    methods = list(dict.fromkeys(m for s in sides for m in elements[s]))
    colors = _colors(methods)
    fig, axes = plt.subplots(len(sides), len(ELEMENT_PANELS), figsize=(4.2 * len(ELEMENT_PANELS), 3.4 * len(sides)),
                             squeeze=False)
    for row, side in zip(axes, sides, strict=True):
        first = next(iter(elements[side].values()))
        for ax, (key, comp, label) in zip(row, ELEMENT_PANELS, strict=True):
            def pick(values, comp=comp):
                return [v[comp] for v in values] if comp is not None else list(values)

            true = pick(first[f"{key}_true"])
            idx = list(range(len(true)))
            ax.plot(idx, true, color="black", linestyle="--", marker="x", markersize=4, label="true")
            for method, par in elements[side].items():
                ax.plot(idx, pick(par[f"{key}_learned"]), marker="o", markersize=2.5, linestyle="-",
                        color=colors[method], label=method, alpha=0.85)
            ax.set_xlabel(f"{side.upper()} element")
            ax.set_ylabel(f"{side.upper()} {label}")
            ax.grid(True, alpha=0.3)
    return _finish(fig, axes, title)


def calibration_figures(df: pd.DataFrame, meta: dict[str, Any], out_dir: str | Path,
                        run_dir: str | Path | None = None) -> list[Path]:
    """Draw and save all of the above (PNG + SVG in ``out_dir``); the per-device figures need
    ``run_dir``.  Returns the written paths."""
    name = meta.get("name") or meta.get("experiment") or "calibration"
    written: list[Path] = []
    if {"gospa_m", "rmse_m", "ser"} <= set(df["metric"]) and "w" in df.columns:
        written += save_figure(tradeoff_figure(df, name), out_dir, "tradeoff")
    if run_dir is None or not (Path(run_dir) / "units").is_dir():
        return written
    units = unit_rows(run_dir)
    w = main_weight(df)
    at = "" if w is None else f", w={w:g}"
    for device, curves in sorted(learning_curves(units, w).items()):
        fig = learning_curve_figure(curves, f"{name}: learning curves, device {device}{at}")
        written += save_figure(fig, out_dir, f"learning_curves_device{device}")
    for device, elements in sorted(element_parameters(units, w).items()):
        fig = learned_vs_true_figure(elements, f"{name}: learned vs true (aligned), device {device}{at}")
        written += save_figure(fig, out_dir, f"learned_vs_true_device{device}")
    return written
