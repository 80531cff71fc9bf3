r"""Figures of the ``direction_finding`` experiment (seed 002): Figs. 1c/4e (spectra), 4a–d
(autoencoder responses), 4f (RMSE vs SNR), 4g (RMSE vs ρ), 4h (training-loss spread),
4i (TR 38.901 channels), Tables 3–4 (complexity, timing) and Fig. 5 (CDF and per-subregion
box plots).  Curves come from the result table and, for per-angle data, from the unit rows'
``extra`` (:func:`isackit.experiments.plotting.unit_rows`).  Every axis carries its unit; the
CRB of the true array is dashed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ..plotting import method_styles, save_figure, unit_rows

__all__ = ["draw_figures"]

METHODS = ["MUSIC", "DBF", "DeepMUSIC", "CNN", "MoD-DNN"]
BOUNDS = ["CRB", "MUSIC noise-free"]


def _styles():
    s = method_styles(METHODS + ["CDBF", "SCG", "AE I", "AE II"] + BOUNDS, BOUNDS)
    s["MUSIC noise-free"] = {**s["MUSIC noise-free"], "linestyle": ":"}
    return s


def _save(fig, out_dir, stem: str) -> list[Path]:
    fig.set_layout_engine("constrained")  # titles, labels and the suptitle never overlap
    fig.get_layout_engine().execute(fig)  # once, not again for each of the PNG and the SVG
    fig.set_layout_engine("none")
    return save_figure(fig, out_dir, stem)


def _log(ax, axis: str = "y") -> None:
    """A logarithmic axis with plain tick labels (0.1, 1, 10, and 2, 5 on a short span: matplotlib's
    LogFormatter, not the mathtext 10^x labels, which cost most of a figure's drawing time)."""
    from matplotlib.ticker import LogFormatter

    (ax.set_yscale if axis == "y" else ax.set_xscale)("log")
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_formatter(LogFormatter())
    target.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))


def _extras(run_dir, panel: str) -> list[tuple[dict, Any]]:
    if run_dir is None:
        return []
    out = []
    for unit, rows in unit_rows(run_dir):
        if unit.point.get("panel") == panel:
            out.append((unit.point, rows))
    return out


def _curve_panel(ax, df, x: str, title: str, styles, metric: str = "rmse_deg"):
    rm = df[df["metric"] == metric]
    per = rm.groupby(["method", x])["value"].mean().reset_index()
    for m in METHODS + BOUNDS:
        sub = per[per["method"] == m].sort_values(x)
        if sub.empty:
            continue
        st = styles[m]
        label = "√CRB (true array)" if m == "CRB" else m
        ax.plot(sub[x], sub["value"], label=label, **st)
    _log(ax)
    ax.set_ylabel("RMSE (°)")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)


def draw_figures(df: pd.DataFrame, meta: dict[str, Any], out_dir, run_dir=None) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: list[Path] = []
    if df.empty or "panel" not in df:
        return written
    styles = _styles()
    panels = set(df["panel"].dropna())

    if "snr" in panels:
        snr = df[df["panel"] == "snr"]
        devs = sorted(snr["device"].dropna().unique())
        fig, axes = plt.subplots(1, len(devs) + 1, figsize=(4.2 * (len(devs) + 1), 3.6), squeeze=False)
        _curve_panel(axes[0, 0], snr, "snr_db", f"mean over {len(devs)} devices", styles)
        for ax, d in zip(axes[0, 1:], devs, strict=True):
            _curve_panel(ax, snr[snr["device"] == d], "snr_db", f"device {int(d)}", styles)
        for ax in axes[0]:
            ax.set_xlabel("SNR per element and tone (dB)")
        axes[0, 0].legend(fontsize=7)
        fig.suptitle("Fig. 4f: RMSE vs SNR (ρ = 1)", fontsize=10)
        written += _save(fig, out_dir, "fig4f_rmse_vs_snr")
        fig, axes = plt.subplots(1, 2, figsize=(8.4, 3.6), squeeze=False)
        for ax, metric, where in ((axes[0, 0], "rmse_inner_deg", "inside ±30°"),
                                  (axes[0, 1], "rmse_outer_deg", "outside ±30°")):
            _curve_panel(ax, snr, "snr_db", f"{where}, mean over {len(devs)} devices", styles, metric)
            ax.set_xlabel("SNR per element and tone (dB)")
        axes[0, 0].legend(fontsize=7)
        fig.suptitle("Fig. 4f by region: the phase errors grow beyond ±30°", fontsize=10)
        written += _save(fig, out_dir, "fig4f_rmse_inner_outer")

    if "rho" in panels:
        rho = df[df["panel"] == "rho"]
        fig, ax = plt.subplots(figsize=(5, 3.6))
        _curve_panel(ax, rho, "rho", "Fig. 4g: RMSE vs degree of impairment", styles)
        ax.set_xlabel("degree of impairment ρ (ψ → ρψ)")
        ax.legend(fontsize=7)
        written += _save(fig, out_dir, "fig4g_rmse_vs_rho")

    if "channels" in panels:
        ch = df[(df["panel"] == "channels") & (df["metric"] == "rmse_deg")]
        chans = list(dict.fromkeys(ch["channel"]))
        fig, ax = plt.subplots(figsize=(6.5, 3.6))
        ms = [m for m in METHODS + ["CRB"] if m in set(ch["method"])]
        w = 0.8 / max(1, len(ms))
        for i, m in enumerate(ms):
            vals = [float(ch[(ch["channel"] == c) & (ch["method"] == m)]["value"].mean()) for c in chans]
            xs = [j + (i - (len(ms) - 1) / 2) * w for j in range(len(chans))]
            if m == "CRB":
                ax.scatter(xs, vals, marker="_", s=200, color="k", label="√CRB (true array)", zorder=4)
            else:
                ax.bar(xs, vals, width=w, label=m, color=styles[m]["color"])
        from ...systems.direction_finding.report import CHANNEL_NAMES
        ax.set_xticks(range(len(chans)), [CHANNEL_NAMES.get(c, c) for c in chans])
        _log(ax)
        ax.set_ylabel("RMSE (°)")
        ax.set_xlabel("TR 38.901 LoS scenario")
        ax.set_title("Fig. 4i: the five channels", fontsize=9)
        ax.legend(fontsize=7, ncol=2)
        written += _save(fig, out_dir, "fig4i_channels")

    for panel, rows in [("spectra", _extras(run_dir, "spectra"))]:
        if not rows:
            continue
        rows = sorted(rows, key=lambda pr: pr[0]["aoa_deg"])
        fig, axes = plt.subplots(1, len(rows), figsize=(4.2 * len(rows), 3.4), squeeze=False)
        for ax, (point, rr) in zip(axes[0], rows, strict=True):
            grid = next((r.extra["grid_deg"] for r in rr if "grid_deg" in r.extra), None)
            for r in rr:
                if r.metric != "fwhm_deg" or "spectrum" not in r.extra or grid is None:
                    continue
                s = r.extra["spectrum"]
                peak = max(abs(v) for v in s) or 1.0
                st = {k: v for k, v in styles.get(r.method, {}).items() if k not in ("marker", "markersize")}
                ax.plot(grid, [v / peak for v in s], label=r.method, **st)
            ax.axvline(point["aoa_deg"], color="k", linestyle="--", linewidth=1, label="true AoA")
            ax.set_xlabel("AoA (°)")
            ax.set_ylabel("normalised spectrum")
            ax.set_title(f"UE at {point['aoa_deg']:g}°", fontsize=9)
        axes[0, 0].legend(fontsize=7)
        fig.suptitle("Figs. 1c / 4e: spatial spectra (device 0)", fontsize=10)
        written += _save(fig, out_dir, "fig1c_4e_spectra")

    ae = _extras(run_dir, "autoencoder")
    if ae:
        variants = [v for v in ("AE I", "AE II") if any(p["variant"] == v for p, _ in ae)]
        fig, axes = plt.subplots(len(variants), 2, figsize=(9, 3.2 * len(variants)), squeeze=False)
        for i, v in enumerate(variants):
            point, rr = next((p, r) for p, r in ae if p["variant"] == v)
            ex = next(r.extra for r in rr if "r_amp" in r.extra)
            for j, (key, name) in enumerate((("r_amp", "amplitude response r_amp"),
                                             ("r_phase", "'phase' response r_phase"))):
                ax = axes[i, j]
                for p, curve in enumerate(ex[key]):
                    ax.plot(ex["grid_deg"], curve, label=f"subregion {p + 1}")
                ax.set_xlabel("true AoA (°)")
                ax.set_ylabel(f"{name} (1)")
                ax.set_title(f"{v}: {name}", fontsize=9)
        axes[0, 0].legend(fontsize=7)
        fig.suptitle("Figs. 4a–d: multi-task autoencoder beamformers", fontsize=10)
        written += _save(fig, out_dir, "fig4a_d_autoencoder")

    ep = _extras(run_dir, "epochs")
    if ep:
        fig, ax = plt.subplots(figsize=(5, 3.6))
        curves: dict[str, list[list[float]]] = {}
        for _, rr in ep:
            for r in rr:
                if "spread" in r.extra:
                    curves.setdefault(r.method, []).append(r.extra["spread"])
        for m, cs in curves.items():
            n = min(len(c) for c in cs)
            mean = [sum(c[e] for c in cs) / len(cs) for e in range(n)]
            st = {k: v for k, v in styles[m].items()}
            ax.plot(range(1, n + 1), mean, label=m, **st)
        ax.axhline(0.1, color="grey", linestyle="--", linewidth=1, label="10 %")
        _log(ax)
        ax.set_xlabel("epoch")
        ax.set_ylabel("batch-loss SD about the final loss, / epoch 1 (1)")
        ax.set_title("Fig. 4h: training-loss convergence", fontsize=9)
        ax.legend(fontsize=7)
        written += _save(fig, out_dir, "fig4h_loss_spread")

    if "complexity" in panels:
        cx = df[df["panel"] == "complexity"]
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
        for ax, metric, unit, paper in ((axes[0], "gflops", "GFLOPs per inference", "[seed Table 3]"),
                                        (axes[1], "test_ms", "CPU test time (ms per sample)", "[seed Table 4]")):
            sub = cx[cx["metric"] == metric]
            ms = [m for m in METHODS if m in set(sub["method"])]
            ours = [float(sub[sub["method"] == m]["value"].mean()) for m in ms]
            theirs = [float(sub[sub["method"] == f"{m} {paper}"]["value"].mean()) if f"{m} {paper}" in
                      set(sub["method"]) else float("nan") for m in ms]
            xs = range(len(ms))
            ax.bar([x - 0.2 for x in xs], ours, width=0.4, label="measured (this run)")
            ax.bar([x + 0.2 for x in xs], theirs, width=0.4, label="seed 002", color="grey")
            ax.set_xticks(list(xs), ms, fontsize=8)
            _log(ax)
            ax.set_ylabel(unit)
        axes[0].legend(fontsize=7)
        fig.suptitle("Tables 3–4: complexity and timing", fontsize=10)
        written += _save(fig, out_dir, "table3_4_complexity")

    meas = _extras(run_dir, "measured")
    if meas:
        _, rr = meas[0]
        data = {r.method: r.extra for r in rr if "abs_errors" in r.extra}
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        floor = 0.01  # errors below 0.01° (exact grid hits) are drawn at 0.01° on the log axes
        for m, ex in data.items():
            e = sorted(max(v, floor) for v in ex["abs_errors"])
            n = len(e)
            st = {k: v for k, v in styles[m].items() if k not in ("marker", "markersize")}
            axes[0].plot(e, [(i + 1) / n for i in range(n)], label=m, **st)
        axes[0].axhline(0.8, color="grey", linestyle=":", linewidth=1)
        _log(axes[0], "x")
        axes[0].set_xlabel("absolute AoA error (°, floored at 0.01°)")
        axes[0].set_ylabel("CDF (1)")
        axes[0].legend(fontsize=7)
        axes[0].set_title("Fig. 5b: error CDF", fontsize=9)
        ms = list(data)
        P = 1 + max(b["subregion"] for ex in data.values() for b in ex["boxes"])
        stats = []
        positions = []
        for p in range(P):
            for i, m in enumerate(ms):
                b = next(b for b in data[m]["boxes"] if b["subregion"] == p and b["rule"] == "seed002")
                stats.append({"med": max(b["median"], floor), "q1": max(b["q1"], floor), "q3": max(b["q3"], floor),
                              "whislo": max(b["whisker_low"], floor), "whishi": max(b["whisker_high"], floor),
                              "label": m if p == 0 else ""})
                positions.append(p * (len(ms) + 1) + i)
        bp = axes[1].bxp(stats, positions=positions, showfliers=False, patch_artist=True)
        for k, box in enumerate(bp["boxes"]):
            box.set_facecolor(styles[ms[k % len(ms)]]["color"])
        _log(axes[1])
        axes[1].set_xticks([p * (len(ms) + 1) + (len(ms) - 1) / 2 for p in range(P)],
                           [f"subregion {p + 1}" for p in range(P)], fontsize=8)
        axes[1].set_ylabel("absolute AoA error (°, floored at 0.01°)")
        axes[1].set_title("Fig. 5c: per subregion (whiskers: seed's 1.5·Q3 rule)", fontsize=9)
        handles = [plt.Rectangle((0, 0), 1, 1, color=styles[m]["color"]) for m in ms]
        axes[1].legend(handles, ms, fontsize=7)
        fig.suptitle("Fig. 5: measured data" if meta.get("config", {}).get("data", {}).get("path")
                     else "Fig. 5: simulated chamber surrogate", fontsize=10)
        written += _save(fig, out_dir, "fig5_measured")
    return written
