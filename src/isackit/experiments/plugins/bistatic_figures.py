r"""Seed-style figures and the headline table of the ``bistatic`` experiment (S1, seed 001).

Drawn from the results table alone (``isackit run`` / ``isackit plot``):

* ``fig3_complexity`` — operations vs the number of antennas M (log y);
* ``fig4_toa`` — ToA RMSE / T_res vs SNR (log y), √CRB dashed;
* ``fig5_snr_training`` — AoA MSE (rad²) vs SNR of the IFFT-C2VNN specialists and the
  mixed-SNR model;
* ``fig6_angles`` — AoA and AoD MSE (rad²) vs SNR, CRB dashed;
* ``table2_latency`` — per-scene latency at batch 1 and batched throughput (bars, log axis);
  also written as ``table2_latency.md``;
* ``fig7_timing_offset`` — AoA / AoD MSE vs SNR for each timing offset δ (PARAMING solid,
  IFFT-C2VNN dotted), CRB dashed;
* ``fig8_resolution`` — AoA MSE vs SNR for each separation (fraction of the HPBW), PARAMING
  solid with markers and the CRB of the same separation dashed in the same colour;
* ``fig9_doppler`` — Doppler MAE (Hz) vs SNR with √(2/π)·√CRB dashed (the MAE of an efficient
  Gaussian estimator), and Doppler RMSE with √CRB.

Bounds are dashed; every label is the ``method`` of the rows drawn.  Angles: MSE in rad² (the
seed's axes), ToA in T_res, Doppler in Hz.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from ..plotting import save_figure

__all__ = ["bistatic_figures", "summary_table"]

CRB = "CRB"
_GRID = ("Bartlett (grid)", "MUSIC (grid)", "DML (AP, grid)")
_MARKERS = "osD^v<>pX*h"


def _panel(df: pd.DataFrame, panel: str) -> pd.DataFrame:
    return df[df["panel"] == panel] if "panel" in df.columns else df.iloc[0:0]


def _series(rows: pd.DataFrame, method: str, metric: str, transform=None) -> pd.Series:
    sub = rows[(rows["method"] == method) & (rows["metric"] == metric)].sort_values("x")
    s = pd.Series(sub["value"].to_numpy(), index=sub["x"].to_numpy(), dtype=float)
    return s if transform is None else s.map(transform)


def _methods(rows: pd.DataFrame, metric: str) -> list[str]:
    return list(dict.fromkeys(rows[rows["metric"] == metric]["method"]))


def _plot_methods(ax, rows, metric, methods, transform=None):
    drawn = False
    for i, m in enumerate(methods):
        s = _series(rows, m, metric, transform).dropna()
        if s.empty:
            continue
        if m == CRB:
            ax.plot(s.index, s.values, "k--", label=m)
        else:
            ax.plot(s.index, s.values, marker=_MARKERS[i % len(_MARKERS)], ms=4,
                    linestyle=":" if m in _GRID else "-", label=m)
        drawn = True
    return drawn


def _finish(fig, ax, xlabel: str, ylabel: str, title: str, log: bool = True):
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    if log:
        ax.set_yscale("log")
        _plain_log_ticks(ax.yaxis)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)


def _plain_log_ticks(axis) -> None:
    """Plain-text tick labels ("1e-05") on a log axis: matplotlib's default mathtext labels
    are parsed per label and figure size, which made each figure cost seconds to save."""
    from matplotlib.ticker import LogFormatter

    base = axis.get_transform().base
    axis.set_major_formatter(LogFormatter(base=base, labelOnlyBase=True))
    axis.set_minor_formatter(LogFormatter(base=base, labelOnlyBase=False))


def _save(fig, out: Path, stem: str) -> list[Path]:
    # fixed spacing instead of tight_layout (one draw less per figure); save_figure crops
    # to the drawn extent (bbox_inches="tight")
    if len(fig.axes) > 1:
        fig.subplots_adjust(wspace=0.3)
    return save_figure(fig, out, stem)


def _fig3(df, out: Path) -> list[Path]:
    import matplotlib.pyplot as plt
    rows = _panel(df, "complexity")
    if rows.empty:
        return []
    fig, ax = plt.subplots(figsize=(6, 4))
    _plot_methods(ax, rows, "operations", _methods(rows, "operations"))
    ax.set_xscale("log", base=2)
    _plain_log_ticks(ax.xaxis)
    _finish(fig, ax, "antennas M = M_t = M_r", "additions + multiplications", "Computational complexity (seed Fig. 3)")
    return _save(fig, out, "fig3_complexity")


def _accuracy_methods(rows, metric):
    ms = [m for m in _methods(rows, metric) if not m.endswith(" dB)")]
    return [m for m in ms if m != CRB] + ([CRB] if CRB in ms else [])


def _fig4(df, out: Path) -> list[Path]:
    import matplotlib.pyplot as plt
    rows = _panel(df, "accuracy")
    if rows.empty or "delay_mse_tres2" not in set(rows["metric"]):
        return []
    fig, ax = plt.subplots(figsize=(6, 4.2))
    _plot_methods(ax, rows, "delay_mse_tres2", _accuracy_methods(rows, "delay_mse_tres2"), math.sqrt)
    _finish(fig, ax, "SNR (dB)", "ToA RMSE / T_res", "ToA accuracy (seed Fig. 4); CRB: √(mean CRB)")
    return _save(fig, out, "fig4_toa")


def _fig5(df, out: Path) -> list[Path]:
    import matplotlib.pyplot as plt
    rows = _panel(df, "accuracy")
    spec = [m for m in _methods(rows, "aoa_mse_rad2") if m.startswith("IFFT-C2VNN (") and m.endswith(" dB)")]
    if not spec:
        return []
    mixed = [m for m in ("IFFT-C2VNN",) if m in set(rows["method"])]
    fig, ax = plt.subplots(figsize=(6, 4.2))
    _plot_methods(ax, rows, "aoa_mse_rad2", mixed + sorted(spec, key=lambda m: float(m.split("(")[1].split()[0])))
    _finish(fig, ax, "SNR (dB)", "AoA MSE (rad²)", "IFFT-C2VNN: mixed-SNR vs specialists (seed Fig. 5)")
    return _save(fig, out, "fig5_snr_training")


def _fig6(df, out: Path) -> list[Path]:
    import matplotlib.pyplot as plt
    rows = _panel(df, "accuracy")
    if rows.empty:
        return []
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, metric, name in zip(axes, ("aoa_mse_rad2", "aod_mse_rad2"), ("AoA", "AoD"), strict=True):
        _plot_methods(ax, rows, metric, _accuracy_methods(rows, metric))
        _finish(fig, ax, "SNR (dB)", f"{name} MSE (rad²)", f"{name} accuracy (seed Fig. 6{'ab'[name == 'AoD']})")
    return _save(fig, out, "fig6_angles")


def _table2(df, out: Path) -> list[Path]:
    import matplotlib.pyplot as plt
    rows = _panel(df, "latency")
    if rows.empty:
        return []
    lat = rows[rows["metric"] == "latency_ms"].set_index("method")["value"]
    thr = rows[rows["metric"] == "throughput_per_s"].set_index("method")["value"]
    methods = list(lat.index)
    lines = ["| method | latency at batch 1 (ms) | batched throughput (scenes/s) |", "|---|---:|---:|"]
    lines += [f"| {m} | {lat[m]:.3g} | {thr.get(m, float('nan')):.3g} |" for m in methods]
    out.mkdir(parents=True, exist_ok=True)
    md = out / "table2_latency.md"
    md.write_text("\n".join(lines) + "\n")
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    axes[0].barh(methods, [lat[m] for m in methods])
    axes[0].set_xscale("log")
    _plain_log_ticks(axes[0].xaxis)
    axes[0].set_xlabel("latency per scene at batch 1 (ms)")
    axes[1].barh(methods, [thr.get(m, float("nan")) for m in methods])
    axes[1].set_xscale("log")
    _plain_log_ticks(axes[1].xaxis)
    axes[1].set_xlabel("batched throughput (scenes/s)")
    axes[1].set_yticklabels([])
    fig.suptitle("Execution time (seed Table II); CPU, see env.json", fontsize=10)
    return _save(fig, out, "table2_latency") + [md]


def _fig7(df, out: Path) -> list[Path]:
    import matplotlib.pyplot as plt
    rows = _panel(df, "timing_offset")
    if rows.empty:
        return []
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    deltas = sorted(rows["param"].unique())
    for ax, metric, name in zip(axes, ("aoa_mse_rad2", "aod_mse_rad2"), ("AoA", "AoD"), strict=True):
        for i, d in enumerate(deltas):
            sub = rows[rows["param"] == d]
            for method, ls in (("PARAMING", "-"), ("IFFT-C2VNN", ":")):
                s = _series(sub, method, metric).dropna()
                if not s.empty:
                    ax.plot(s.index, s.values, color=f"C{i}", linestyle=ls, marker=_MARKERS[i], ms=4,
                            label=f"{method}, δ = {d:g} T_res")
        crb = _series(rows[rows["param"] == deltas[0]], CRB, metric).dropna()
        if not crb.empty:
            ax.plot(crb.index, crb.values, "k--", label=CRB)
        _finish(fig, ax, "SNR (dB)", f"{name} MSE (rad²)", f"{name} under a timing offset (seed Fig. 7)")
    return _save(fig, out, "fig7_timing_offset")


def _fig8(df, out: Path) -> list[Path]:
    import matplotlib.pyplot as plt
    rows = _panel(df, "resolution")
    if rows.empty:
        return []
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for i, f in enumerate(sorted(rows["param"].unique(), reverse=True)):
        sub = rows[rows["param"] == f]
        s = _series(sub, "PARAMING", "aoa_mse_rad2").dropna()
        c = _series(sub, CRB, "aoa_mse_rad2").dropna()
        ax.plot(s.index, s.values, color=f"C{i}", marker=_MARKERS[i], ms=4, label=f"PARAMING, Δ = {f:g}·HPBW")
        ax.plot(c.index, c.values, color=f"C{i}", linestyle="--", label=f"{CRB}, Δ = {f:g}·HPBW")
    _finish(fig, ax, "SNR (dB)", "AoA MSE (rad²)", "Two-target resolution (seed Fig. 8)")
    return _save(fig, out, "fig8_resolution")


def _fig9(df, out: Path) -> list[Path]:
    import matplotlib.pyplot as plt
    rows = _panel(df, "doppler")
    if rows.empty:
        return []
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    methods = [m for m in _methods(rows, "doppler_mae_hz") if m != CRB]
    _plot_methods(axes[0], rows, "doppler_mae_hz", methods)
    crb = _series(rows, CRB, "doppler_mse_hz2").dropna()
    if not crb.empty:
        axes[0].plot(crb.index, (crb * (2 / math.pi)).map(math.sqrt).values, "k--",
                     label=f"√(2/π)·√{CRB} (MAE of an efficient estimator)")
    _finish(fig, axes[0], "SNR (dB)", "Doppler MAE (Hz)", "Doppler (seed Fig. 9)")
    _plot_methods(axes[1], rows, "doppler_mse_hz2", methods + [CRB], math.sqrt)
    _finish(fig, axes[1], "SNR (dB)", "Doppler RMSE (Hz)", "Doppler RMSE; CRB: √(mean CRB)")
    return _save(fig, out, "fig9_doppler")


def bistatic_figures(df: pd.DataFrame, meta: dict[str, Any], out_dir, run_dir) -> list[Path]:
    """All seed-style figures that the run's panels support (see the module docstring)."""
    from ..plotting import _use_agg

    _use_agg()  # non-interactive backend
    out = Path(out_dir)
    paths: list[Path] = []
    for fig in (_fig3, _fig4, _fig5, _fig6, _table2, _fig7, _fig8, _fig9):
        paths += fig(df, out)
    return paths


def ratio_table(df: pd.DataFrame, panel: str = "accuracy") -> pd.DataFrame:
    """RMSE/√CRB per method, parameter and SNR: columns method, parameter, x, rmse, sqrt_crb, ratio."""
    rows = _panel(df, panel)
    recs = []
    for metric, par in (("aoa_mse_rad2", "aoa"), ("aod_mse_rad2", "aod"), ("delay_mse_tres2", "delay")):
        crb = _series(rows, CRB, metric)
        for m in _methods(rows, metric):
            if m == CRB:
                continue
            for x, v in _series(rows, m, metric).items():
                c = crb.get(x, float("nan"))
                recs.append(dict(method=m, parameter=par, x=x, rmse=math.sqrt(v), sqrt_crb=math.sqrt(c),
                                 ratio=math.sqrt(v / c) if c > 0 else float("nan")))
    return pd.DataFrame(recs)


def summary_table(df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """One row per method of the accuracy panel at its reference SNR (20 dB if swept, else the
    highest): RMSE per parameter (deg, deg, T_res) and RMSE/√CRB; lines with PARAMING's ratios
    per SNR and its breakdown SNR (the highest SNR at which a ratio exceeds 2)."""
    r = ratio_table(df)
    if r.empty:
        return pd.DataFrame(), ["no accuracy panel in this run"]
    xs = sorted(r["x"].unique())
    ref = 20.0 if 20.0 in xs else xs[-1]
    at = r[r["x"] == ref]
    table = []
    for m in dict.fromkeys(at["method"]):
        row: dict[str, Any] = {"method": m}
        for par, unit, scale in (("aoa", "deg", 180 / math.pi), ("aod", "deg", 180 / math.pi), ("delay", "T_res", 1.0)):
            sub = at[(at["method"] == m) & (at["parameter"] == par)]
            if not sub.empty:
                row[f"{par} RMSE ({unit})"] = float(sub["rmse"].iloc[0]) * scale
                row[f"{par} /√CRB"] = float(sub["ratio"].iloc[0])
        table.append(row)
    crb = {"method": CRB}
    for par, unit, scale in (("aoa", "deg", 180 / math.pi), ("aod", "deg", 180 / math.pi), ("delay", "T_res", 1.0)):
        sub = at[at["parameter"] == par]
        if not sub.empty:
            crb[f"{par} RMSE ({unit})"] = float(sub["sqrt_crb"].iloc[0]) * scale
    table.append(crb)
    lines = [f"accuracy at {ref:g} dB (random scenes of the S1 prior; CRB = √(mean CRB))"]
    p = r[r["method"] == "PARAMING"]
    if not p.empty:
        for par in ("aoa", "aod", "delay"):
            s = p[p["parameter"] == par].sort_values("x")
            lines.append(f"PARAMING {par} RMSE/√CRB: " + ", ".join(f"{x:g} dB: {v:.2f}" for x, v in zip(s["x"], s["ratio"])))
        worst = p.groupby("x")["ratio"].max()
        broken = [x for x, v in worst.items() if not v <= 2.0]
        lines.append("PARAMING breakdown (max ratio > 2): " + (f"at and below {max(broken):g} dB" if broken else "none in the sweep"))
    return pd.DataFrame(table), lines
