r"""Seed-style figures of the ``positioning`` experiment (S4, seed 004 Figs. 4-10), drawn after
the generic per-metric figures by :func:`isackit.experiments.plotting.plot_results` (``isackit run`` and
``isackit plot``), from the results table alone.

* ``precoder_responses`` — seed Figs. 4a / 5 / 8: the aggregate response ‖Fᵀã(θ)‖² (dB, TRUE
  array) of the benchmark and learned AoD precoders, one row per impairment and one column per
  BS, with the evaluation sector shaded.
* ``rmse_vs_snr_<impairment>`` — seed Figs. 4b-c / 6 / 9: AoD RMSE of BS 1 and BS 2 (deg) and
  position RMSE (m) against the SNR, with the CRB / PEB of each precoder (TRUE array) and,
  under impairments, the benchmark's misspecified bound (MCRB).
* ``position_rmse_vs_sigma`` / ``position_rmse_vs_zeta`` — seed Figs. 7 / 10: position RMSE at
  the sweep SNR against the spacing-error std σ_λ/λ and the coupling decay ζ.

Estimators are solid lines with markers, bounds are dashed (benchmark) / dotted (learned) /
dash-dotted (MCRB) without markers; benchmark and its bounds share one colour, the learned
system and its bounds another.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from ..plotting import save_figure
from ...systems.positioning.scenario import PositioningConfig

__all__ = ["precoder_response_figure", "rmse_vs_snr_figure", "sweep_figure", "positioning_figures"]

#: (method, style) in drawing order; bounds have no markers.
_STYLES = {
    "benchmark": dict(color="C0", marker="o", linestyle="-"),
    "learned": dict(color="C1", marker="s", linestyle="-"),
    "CRB (benchmark)": dict(color="C0", linestyle="--"),
    "CRB (learned)": dict(color="C1", linestyle=":"),
    "PEB (benchmark)": dict(color="C0", linestyle="--"),
    "PEB (learned)": dict(color="C1", linestyle=":"),
    "MCRB (benchmark)": dict(color="C2", linestyle="-."),
}
_IMPAIRMENT_TITLE = {"none": "no impairment", "spacing": "spacing errors", "coupling": "mutual coupling"}
_SEED_FIG = {"none": "Fig. 4b-c", "spacing": "Fig. 6", "coupling": "Fig. 9"}


def _curves(ax, rows: pd.DataFrame, metric: str) -> bool:
    """Draw every method of ``metric`` in ``rows`` (columns x, method, value); True if any."""
    sub = rows[rows["metric"] == metric]
    drawn = False
    for method, style in _STYLES.items():
        m = sub[sub["method"] == method].sort_values("x")
        if m.empty:
            continue
        ax.plot(m["x"], m["value"], label=method, markersize=4, **style)
        drawn = True
    return drawn


def _finish(fig, axes, title: str):
    """Grid, one legend below the panels with every labelled line once, title, layout."""
    by_label: dict[str, Any] = {}
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
        for handle, label in zip(*ax.get_legend_handles_labels()):
            by_label.setdefault(label, handle)
    fig.suptitle(title)
    legend_in = 0.45 if by_label else 0.0      # inches kept free for two legend rows
    rows = math.ceil(len(by_label) / (4 if fig.get_figwidth() > 6 else 2))
    fig.tight_layout(rect=(0, legend_in * max(rows, 1) / 2 / fig.get_figheight(), 1, 1))
    if by_label:
        fig.legend(list(by_label.values()), list(by_label), loc="lower center", fontsize=8,
                   ncol=min(len(by_label), 4 if fig.get_figwidth() > 6 else 2), frameon=False)
    return fig


def precoder_response_figure(df: pd.DataFrame, sectors_deg=None, title: str = "precoder responses"):
    """Seed Figs. 4a / 5 / 8 from the ``pattern`` rows (metric ``beam_gain_bs<i>``, linear)."""
    import matplotlib.pyplot as plt

    rows = df[df["panel"] == "pattern"]
    impairments = [i for i in ("none", "spacing", "coupling") if i in set(rows["impairment"])]
    bss = sorted({int(m.removeprefix("beam_gain_bs")) for m in rows["metric"].unique()})
    sectors_deg = sectors_deg or PositioningConfig().eval_sectors_deg
    fig, axes = plt.subplots(len(impairments), len(bss), figsize=(4.2 * len(bss), 2.6 * len(impairments)),
                             squeeze=False, sharex=True)
    for r, imp in enumerate(impairments):
        for c, bs in enumerate(bss):
            ax = axes[r][c]
            sub = rows[(rows["impairment"] == imp) & (rows["metric"] == f"beam_gain_bs{bs}")]
            for method in ("benchmark", "learned"):
                m = sub[sub["method"] == method].sort_values("x")
                db = [10 * math.log10(max(v, 1e-30)) for v in m["value"]]
                ax.plot(m["x"], db, label=method, color=_STYLES[method]["color"])
            if bs - 1 < len(sectors_deg):
                ax.axvspan(*sectors_deg[bs - 1], color="0.85", zorder=0)
            ax.set_title(f"BS {bs}, {_IMPAIRMENT_TITLE.get(imp, imp)}", fontsize=9)
            ax.set_ylabel("‖Fᵀã(θ)‖² (dB)")
            if r == len(impairments) - 1:
                ax.set_xlabel("angle θ (deg)")
    return _finish(fig, [a for row in axes for a in row], title)


def rmse_vs_snr_figure(df: pd.DataFrame, impairment: str, title: str | None = None):
    """Seed Figs. 4b-c / 6 / 9: AoD RMSE per BS and position RMSE vs SNR with the bounds."""
    import matplotlib.pyplot as plt

    rows = df[(df["panel"] == "snr") & (df["impairment"] == impairment)]
    metrics = [m for m in ("aod_rmse_deg_bs1", "aod_rmse_deg_bs2", "position_rmse_m") if m in set(rows["metric"])]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.4), squeeze=False)
    axes = axes[0]
    for ax, metric in zip(axes, metrics):
        if _curves(ax, rows, metric):
            ax.set_yscale("log")
        ax.set_xlabel("SNR (dB)")
        ax.set_ylabel("position RMSE (m)" if metric.startswith("position") else "AoD RMSE (deg)")
        ax.set_title("position" if metric.startswith("position") else f"AoD, BS {metric[-1]}", fontsize=9)
    title = title or f"{_IMPAIRMENT_TITLE.get(impairment, impairment)} (seed {_SEED_FIG.get(impairment, '')})"
    return _finish(fig, list(axes), title)


def sweep_figure(df: pd.DataFrame, panel: str, title: str | None = None):
    """Seed Fig. 7 (``panel = "sigma"``) or Fig. 10 (``"zeta"``): position RMSE vs the swept value."""
    import matplotlib.pyplot as plt

    rows = df[df["panel"] == panel]
    fig, ax = plt.subplots(figsize=(4.6, 3.4))
    ax.xaxis.set_major_locator(plt.MaxNLocator(5))
    if _curves(ax, rows, "position_rmse_m"):
        ax.set_yscale("log")
    ax.set_xlabel("spacing-error std σ_λ / λ" if panel == "sigma" else "coupling decay ζ  (|c_k| = e^{ζk})")
    ax.set_ylabel("position RMSE (m)")
    seed_fig = "Fig. 7" if panel == "sigma" else "Fig. 10"
    return _finish(fig, [ax], title or f"position RMSE vs {'σ_λ' if panel == 'sigma' else 'ζ'} (seed {seed_fig})")


def positioning_figures(df: pd.DataFrame, meta: dict[str, Any], out_dir: str | Path,
                        run_dir: str | Path | None = None) -> list[Path]:
    """Every seed-style figure the table has data for; returns the written paths."""
    if df.empty or "panel" not in df.columns:
        return []
    out: list[Path] = []
    panels = set(df["panel"].dropna())
    if "pattern" in panels:
        out += save_figure(precoder_response_figure(df), out_dir, "precoder_responses")
    if "snr" in panels:
        for imp in ("none", "spacing", "coupling"):
            if ((df["panel"] == "snr") & (df["impairment"] == imp)).any():
                out += save_figure(rmse_vs_snr_figure(df, imp), out_dir, f"rmse_vs_snr_{imp}")
    for panel in ("sigma", "zeta"):
        if panel in panels:
            out += save_figure(sweep_figure(df, panel), out_dir, f"position_rmse_vs_{panel}")
    return out
