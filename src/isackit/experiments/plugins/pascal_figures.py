r"""Seed-style figures and the headline table of the ``pascal`` experiment (S3, seed 003).

Drawn from the results table alone (``isackit run`` / ``isackit plot``), one file per seed
figure:

* ``fig2_pdfs`` — histograms of the MLE errors of φ, ϑ, f (pooled replicas) with the fitted
  Gaussian N(sample mean, sample variance) and N(0, CRLB) (dashed); the binned Kolmogorov–Smirnov
  distance to the fitted Gaussian in each title;
* ``fig4_gain_phase`` / ``fig8_large_errors`` — RMSE of φ, ϑ (deg) and f (Hz) vs SNR per case,
  √CRLB dashed in the case's colour; SDR simulated (markers) with the analytic 2nd-order
  (dashed) and 1st-order (dotted) curves computed with the CRLB's variances;
* ``fig5_power_split`` — average over the two drones of the azimuth RMSE, and the SDR, vs ρ_1
  per range ratio (simulation markers; CRLB / analytic 2nd order dashed, on the finer grid);
  ``fig5_bounds`` — the bound-only curves at every configured SNR;
* ``fig6_sdr_vs_rmse`` — SDR vs azimuth RMSE, parametric in SNR, per method (simulated solid,
  analytic 2nd order dashed, 1st order dotted, each with the method's own error statistics),
  and the fixed-SNR check: SDR vs angle-error standard deviation (Monte Carlo markers,
  analytic 2nd/1st order dashed/dotted);
* ``fig7_aoml_convergence`` — angle RMSE, mean ℓ and the fraction of converged trials vs the
  AO-ML iteration;
* ``fig9_jldd`` — azimuth RMSE and SER vs SNR of MLE-MLE(n) and MUSIC-MLE(n) per window n,
  and the DLDD AO-ML reference; CRLB with known symbols dashed;
* ``fig10_jldd_errors`` — the same at the longest window, without and with gain-phase errors.

Every label is the ``method`` of the rows drawn (analytic curves carry their order).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..plotting import save_figure

__all__ = ["pascal_figures", "summary_table"]

CRLB = "CRLB"
PARAMS = (("phi", "deg", "φ"), ("theta", "deg", "ϑ"), ("f", "hz", "f"))
UNIT_LABEL = {"deg": "deg", "hz": "Hz"}
COLORS = ("C0", "C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9")


def _panel(df: pd.DataFrame, panel: str) -> pd.DataFrame:
    return df[df["panel"] == panel] if "panel" in df.columns else df.iloc[0:0]


def _series(rows: pd.DataFrame, method: str, metric: str) -> pd.Series:
    sub = rows[(rows["method"] == method) & (rows["metric"] == metric)].sort_values("x")
    return pd.Series(sub["value"].to_numpy(dtype=float), index=sub["x"].to_numpy(dtype=float))


def _value(rows: pd.DataFrame, method: str, metric: str) -> float:
    sub = rows[(rows["method"] == method) & (rows["metric"] == metric)]["value"]
    return float(sub.mean()) if len(sub) else math.nan


def _finish(fig, axes, title: str, out_dir, stem: str) -> list[Path]:
    from matplotlib.ticker import LogFormatter

    for ax in np.ravel(axes):
        if ax.get_visible():
            ax.grid(True, which="both", alpha=0.3)
            for axis, scale in ((ax.xaxis, ax.get_xscale()), (ax.yaxis, ax.get_yscale())):
                if scale == "log":  # plain-text tick labels (1e−02, 2e−02): no mathtext to typeset
                    axis.set_major_formatter(LogFormatter(labelOnlyBase=False))
                    axis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, out_dir, stem)


# ---------------------------------------------------------------------------------------
# Fig. 2
# ---------------------------------------------------------------------------------------
def _fig2(df, out_dir) -> list[Path]:
    import matplotlib.pyplot as plt
    from scipy.stats import norm

    rows = _panel(df, "fig2")
    if rows.empty:
        return []
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, (p, unit, sym) in zip(axes, PARAMS, strict=True):
        bins = sorted({m.split("@")[1] for m in rows["metric"] if m.startswith(f"pdf_{p}@") and m[-1].isdigit()})
        if not bins:
            ax.set_visible(False)
            continue
        frac = np.array([_value(rows, "MLE", f"pdf_{p}@{b}") for b in bins])
        sd = _value(rows, CRLB, f"sd_{p}")
        n = len(bins)
        span = _value(rows, "histogram", f"span_{p}")
        edges = np.linspace(-span, span, n + 1) * sd
        width = edges[1] - edges[0]
        ax.bar(edges[:-1], frac / width, width=width, align="edge", alpha=0.5, label="MLE (histogram)")
        m1 = _value(rows, "MLE", f"mean_err_{p}")
        var = max(_value(rows, "MLE", f"sq_err_{p}") - m1 * m1, 1e-300)
        xs = np.linspace(edges[0], edges[-1], 400)
        ax.plot(xs, norm.pdf(xs, m1, math.sqrt(var)), "k-", lw=1.2, label="N(sample mean, sample var.)")
        ax.plot(xs, norm.pdf(xs, 0.0, sd), "k--", lw=1.0, label="N(0, CRLB)")
        cdf_emp = np.concatenate([[_value(rows, "MLE", f"pdf_{p}@below")], frac]).cumsum()
        ks = float(np.max(np.abs(cdf_emp[1:] - norm.cdf(edges[1:], m1, math.sqrt(var)))))
        u = UNIT_LABEL[unit]
        ax.set_xlabel(f"{sym}̂ − {sym} ({u})")
        ax.set_ylabel(f"PDF (1/{u})")
        ax.set_title(f"{sym}: mean {m1:+.3g} {u}, std {math.sqrt(var):.3g} {u} (√CRLB {sd:.3g}), KS≈{ks:.3f}",
                     fontsize=8)
    axes[0].legend(fontsize=7)
    return _finish(fig, axes, "Fig. 2 — PDFs of the MLE estimates (drone 1, L pilots)", out_dir, "fig2_pdfs")


# ---------------------------------------------------------------------------------------
# Figs. 4 and 8
# ---------------------------------------------------------------------------------------
def _dldd_figure(df, panel: str, title: str, stem: str, out_dir) -> list[Path]:
    import matplotlib.pyplot as plt

    rows = _panel(df, panel)
    if rows.empty:
        return []
    written = []
    for variant, vrows in rows.groupby("variant", sort=False):
        fig, axes = plt.subplots(2, 2, figsize=(10, 7.5))
        cases = list(dict.fromkeys(vrows["case"]))
        for ax, (p, unit, sym) in zip(axes.flat[:3], PARAMS, strict=True):
            for c, case in enumerate(cases):
                crows = vrows[vrows["case"] == case]
                s = _series(crows, "MLE", f"rmse_{p}_{unit}")
                b = _series(crows, CRLB, f"rmse_{p}_{unit}")
                ax.semilogy(s.index, s.values, "o-", color=COLORS[c], label=f"MLE, {case}")
                ax.semilogy(b.index, b.values, "--", color=COLORS[c], label=f"√CRLB, {case}")
            ax.set_xlabel("SNR (dB)")
            ax.set_ylabel(f"RMSE of {sym} ({UNIT_LABEL[unit]})")
        ax = axes.flat[3]
        for c, case in enumerate(cases):
            crows = vrows[vrows["case"] == case]
            s = _series(crows, "MLE", "sdr_bps_hz")
            a2 = _series(crows, "Analytic 2nd order (CRLB)", "sdr_bps_hz")
            a1 = _series(crows, "Analytic 1st order (CRLB)", "sdr_bps_hz")
            ax.plot(s.index, s.values, "o", color=COLORS[c], label=f"simulated, {case}")
            ax.plot(a2.index, a2.values, "--", color=COLORS[c], label=f"analytic 2nd order, {case}")
            ax.plot(a1.index, a1.values, ":", color=COLORS[c], label=f"analytic 1st order, {case}")
        ax.set_xlabel("SNR (dB)")
        ax.set_ylabel("SDR (bit/s/Hz)")
        axes.flat[0].legend(fontsize=6)
        axes.flat[3].legend(fontsize=6)
        written += _finish(fig, axes, f"{title} ({variant})", out_dir, f"{stem}_{variant.replace('=', '')}")
    return written


# ---------------------------------------------------------------------------------------
# Fig. 5
# ---------------------------------------------------------------------------------------
def _drone_methods(rows: pd.DataFrame, prefix: str) -> list[str]:
    return sorted({m for m in rows["method"] if m.startswith(prefix + " (drone")})


def _avg_rmse(rows: pd.DataFrame, prefix: str, metric: str) -> pd.Series:
    ms = _drone_methods(rows, prefix)
    if not ms:
        return pd.Series(dtype=float)
    return pd.concat([_series(rows, m, metric) for m in ms], axis=1).mean(axis=1)


def _fig5(df, out_dir) -> list[Path]:
    import matplotlib.pyplot as plt

    sim, bnd = _panel(df, "fig5"), _panel(df, "fig5_bound")
    written = []
    for variant in list(dict.fromkeys(sim["variant"])) if len(sim) else []:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        for c, case in enumerate(dict.fromkeys(sim["case"])):
            s = sim[(sim["case"] == case) & (sim["variant"] == variant)]
            b = bnd[(bnd["case"] == case) & (bnd["variant"] == variant)]
            r = _avg_rmse(s, "MLE", "rmse_phi_deg")
            axes[0].semilogy(r.index, r.values, "o-", color=COLORS[c], label=f"MLE, {case}")
            rb = _avg_rmse(b if len(b) else s, CRLB, "rmse_phi_deg")
            axes[0].semilogy(rb.index, rb.values, "--", color=COLORS[c], label=f"√CRLB, {case}")
            sd = _series(s, "MLE", "sdr_bps_hz")
            axes[1].plot(sd.index, sd.values, "o-", color=COLORS[c], label=f"simulated, {case}")
            an = _series(b if len(b) else s, "Analytic 2nd order (CRLB)", "sdr_bps_hz")
            axes[1].plot(an.index, an.values, "--", color=COLORS[c], label=f"analytic 2nd order, {case}")
        axes[0].set_xlabel("ρ₁ (power share of drone 1)")
        axes[0].set_ylabel("average over drones of the azimuth RMSE (deg)")
        axes[1].set_xlabel("ρ₁ (power share of drone 1)")
        axes[1].set_ylabel("SDR (bit/s/Hz)")
        axes[0].legend(fontsize=6)
        axes[1].legend(fontsize=6)
        written += _finish(fig, axes, f"Fig. 5 — power split, {variant.replace('snr=', 'SNR = ')} dB", out_dir,
                           f"fig5_power_split_{variant.replace('=', '')}")
    if len(bnd):
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        styles = ["-", "--", ":", "-."]
        for c, case in enumerate(dict.fromkeys(bnd["case"])):
            for k, variant in enumerate(dict.fromkeys(bnd["variant"])):
                b = bnd[(bnd["case"] == case) & (bnd["variant"] == variant)]
                rb = _avg_rmse(b, CRLB, "rmse_phi_deg")
                lab = f"{case}, {variant.replace('snr=', '')} dB"
                axes[0].semilogy(rb.index, rb.values, styles[k % 4], color=COLORS[c], label=f"√CRLB, {lab}")
                an = _series(b, "Analytic 2nd order (CRLB)", "sdr_bps_hz")
                axes[1].plot(an.index, an.values, styles[k % 4], color=COLORS[c], label=f"analytic 2nd order, {lab}")
        axes[0].set_xlabel("ρ₁")
        axes[0].set_ylabel("average √CRLB of the azimuth (deg)")
        axes[1].set_xlabel("ρ₁")
        axes[1].set_ylabel("SDR (bit/s/Hz)")
        axes[0].legend(fontsize=6)
        axes[1].legend(fontsize=6)
        written += _finish(fig, axes, "Fig. 5 — bounds vs power split", out_dir, "fig5_bounds")
    return written


# ---------------------------------------------------------------------------------------
# Fig. 6
# ---------------------------------------------------------------------------------------
def _fig6(df, out_dir) -> list[Path]:
    import matplotlib.pyplot as plt

    rows, fixed = _panel(df, "fig6"), _panel(df, "fig6_fixed")
    if rows.empty and fixed.empty:
        return []
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    ax = axes[0]
    methods = [m for m in dict.fromkeys(rows["method"]) if not (":" in m or m.startswith(("CRLB", "G-ML bound",
                                                                                            "Analytic")))]
    for c, m in enumerate(methods):
        x = _series(rows, m, "rmse_phi_deg")
        y = _series(rows, m, "sdr_bps_hz")
        a2 = _series(rows, f"{m}: analytic 2nd order", "sdr_bps_hz")
        a1 = _series(rows, f"{m}: analytic 1st order", "sdr_bps_hz")
        ax.semilogx(x.values, y.values, "o-", color=COLORS[c], label=f"{m}, simulated")
        ax.semilogx(x.values, a2.reindex(x.index).values, "--", color=COLORS[c], label=f"{m}: analytic 2nd order")
        ax.semilogx(x.values, a1.reindex(x.index).values, ":", color=COLORS[c], label=f"{m}: analytic 1st order")
    ax.set_xlabel("azimuth RMSE (deg), SNR as parameter")
    ax.set_ylabel("SDR (bit/s/Hz)")
    ax.legend(fontsize=6)
    ax = axes[1]
    for c, (key, sub) in enumerate(fixed.groupby(["case", "variant"], sort=False)):
        lab = f"{key[0].replace('snr=', '')} dB, drones {key[1].replace('+', ', ')}"
        mc = _series(sub, "Monte Carlo", "sdr_bps_hz")
        a2 = _series(sub, "Analytic 2nd order", "sdr_bps_hz")
        a1 = _series(sub, "Analytic 1st order", "sdr_bps_hz")
        ax.plot(mc.index, mc.values, "o", color=COLORS[c], label=f"Monte Carlo, {lab}")
        ax.plot(a2.index, a2.values, "--", color=COLORS[c], label=f"analytic 2nd order, {lab}")
        ax.plot(a1.index, a1.values, ":", color=COLORS[c], label=f"analytic 1st order, {lab}")
    ax.set_xlabel("angle-error standard deviation (deg), fixed SNR")
    ax.set_ylabel("SDR (bit/s/Hz)")
    ax.legend(fontsize=6)
    return _finish(fig, axes, "Fig. 6 — SDR vs RMSE (left: parametric in SNR; right: at a fixed SNR)", out_dir,
                   "fig6_sdr_vs_rmse")


# ---------------------------------------------------------------------------------------
# Fig. 7
# ---------------------------------------------------------------------------------------
def _indexed(rows: pd.DataFrame, method: str, base: str) -> pd.Series:
    sub = rows[(rows["method"] == method) & rows["metric"].str.startswith(base + "@")]
    idx = sub["metric"].str.split("@").str[1].astype(int)
    return pd.Series(sub["value"].to_numpy(dtype=float), index=idx.to_numpy()).groupby(level=0).mean().sort_index()


def _fig7(df, out_dir) -> list[Path]:
    import matplotlib.pyplot as plt

    rows = _panel(df, "fig7")
    if rows.empty:
        return []
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for k, (p, sym) in enumerate((("phi", "φ"), ("theta", "ϑ"))):
        s = _indexed(rows, "AO-ML", f"rmse_{p}_deg")
        axes[0].semilogy(s.index, s.values, "o-", color=COLORS[k], label=f"AO-ML, {sym}")
        b = _value(rows, CRLB, f"rmse_{p}_deg")
        axes[0].axhline(b, ls="--", color=COLORS[k], label=f"√CRLB, {sym}")
    axes[0].set_xlabel("AO-ML iteration (0 = initialisation)")
    axes[0].set_ylabel("angle RMSE (deg)")
    axes[0].legend(fontsize=7)
    nll = _indexed(rows, "AO-ML", "nll")
    axes[1].plot(nll.index, nll.values, "o-", label="AO-ML: mean ℓ")
    axes[1].set_xlabel("AO-ML iteration")
    axes[1].set_ylabel("mean negative log-likelihood ℓ")
    axes[1].legend(fontsize=7)
    conv = _indexed(rows, "AO-ML", "converged")
    axes[2].step(conv.index, conv.values, where="post", label="AO-ML: stop rule (13) met")
    axes[2].set_xlabel("AO-ML iteration")
    axes[2].set_ylabel("fraction of trials converged")
    axes[2].set_ylim(0, 1.02)
    axes[2].legend(fontsize=7)
    return _finish(fig, axes, "Fig. 7 — AO-ML convergence (single pilot)", out_dir, "fig7_aoml_convergence")


# ---------------------------------------------------------------------------------------
# Figs. 9 and 10
# ---------------------------------------------------------------------------------------
def _windows(rows: pd.DataFrame, base: str) -> list[int]:
    return sorted({int(m.split("@")[1]) for m in rows["metric"] if m.startswith(base + "@")})


def _jldd_methods(rows: pd.DataFrame) -> list[str]:
    return [m for m in dict.fromkeys(rows["method"]) if not m.startswith("CRLB") and "(DLDD)" not in m]


def _fig9(df, out_dir) -> list[Path]:
    import matplotlib.pyplot as plt

    rows = _panel(df, "jldd")
    rows = rows[rows["case"] == "none"] if len(rows) else rows
    if rows.empty:
        return []
    fig, axes = plt.subplots(1, 2, figsize=(11.5, 4.2))
    wins = _windows(rows, "rmse_phi_deg")
    styles = {"MLE-MLE": "-", "MUSIC-MLE": "--"}
    for m in _jldd_methods(rows):
        for c, n in enumerate(wins):
            s = _series(rows, m, f"rmse_phi_deg@{n:03d}")
            axes[0].semilogy(s.index, s.values, styles.get(m, "-"), marker="o", ms=3, color=COLORS[c],
                             label=f"{m} ({n})")
            if n >= 2:
                e = _series(rows, m, f"ser@{n:03d}")
                e = e[e > 0]
                axes[1].semilogy(e.index, e.values, styles.get(m, "-"), marker="o", ms=3, color=COLORS[c],
                                 label=f"{m} ({n})")
    for m in [m for m in dict.fromkeys(rows["method"]) if "(DLDD)" in m]:
        s = _series(rows, m, "rmse_phi_deg@001")
        axes[0].semilogy(s.index, s.values, "k-.", marker="s", ms=3, label=m)
        e = _series(rows, m, f"ser_cum@{wins[-1]:03d}")
        e = e[e > 0]
        axes[1].semilogy(e.index, e.values, "k-.", marker="s", ms=3, label=f"{m}, all symbols")
    b = _series(rows, "CRLB (known symbols)", f"rmse_phi_deg@{wins[-1]:03d}")
    axes[0].semilogy(b.index, b.values, "k:", label=f"√CRLB, symbols known ({wins[-1]})")
    axes[0].set_xlabel("SNR (dB)")
    axes[0].set_ylabel("azimuth RMSE (deg)")
    axes[1].set_xlabel("SNR (dB)")
    axes[1].set_ylabel("SER (symbols of the last windows up to n)")
    axes[0].legend(fontsize=6, ncol=2)
    axes[1].legend(fontsize=6, ncol=2)
    return _finish(fig, axes, "Fig. 9 — JLDD without gain-phase errors: RMSE and SER vs SNR per window n",
                   out_dir, "fig9_jldd")


def _fig10(df, out_dir) -> list[Path]:
    import matplotlib.pyplot as plt

    rows = _panel(df, "jldd")
    if rows.empty:
        return []
    wins = _windows(rows, "rmse_phi_deg")
    n = wins[-1]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.0))
    for c, m in enumerate(_jldd_methods(rows)):
        ls = "--" if m.endswith("-E") else "-"
        col = COLORS[0] if m.startswith("MLE") else COLORS[1]
        s = _series(rows, m, f"rmse_phi_deg@{n:03d}")
        axes[0].semilogy(s.index, s.values, ls, marker="o", ms=3, color=col, label=m)
        e = _series(rows, m, f"ser@{n:03d}")
        e = e[e > 0]
        axes[1].semilogy(e.index, e.values, ls, marker="o", ms=3, color=col, label=m)
    for tag, ls in (("", ":"), ("-E", "-.")):
        b = _series(rows, f"CRLB{tag} (known symbols)", f"rmse_phi_deg@{n:03d}")
        if len(b):
            axes[0].semilogy(b.index, b.values, ls, color="k", label=f"√CRLB{tag}, symbols known")
    axes[0].set_xlabel("SNR (dB)")
    axes[0].set_ylabel(f"azimuth RMSE at window {n} (deg)")
    axes[1].set_xlabel("SNR (dB)")
    axes[1].set_ylabel(f"SER (windows up to {n})")
    axes[0].legend(fontsize=7)
    axes[1].legend(fontsize=7)
    return _finish(fig, axes, f"Fig. 10 — JLDD at window {n} without and with (-E) gain-phase errors", out_dir,
                   "fig10_jldd_errors")


def pascal_figures(df: pd.DataFrame, meta: dict[str, Any], out_dir) -> list[Path]:
    """Every figure of the run (see the module docstring)."""
    if df.empty or "panel" not in df.columns:
        return []
    out: list[Path] = []
    out += _fig2(df, out_dir)
    out += _dldd_figure(df, "fig4", "Fig. 4 — gain and phase error cases (drones 2, 3)", "fig4_gain_phase", out_dir)
    out += _fig5(df, out_dir)
    out += _fig6(df, out_dir)
    out += _fig7(df, out_dir)
    out += _dldd_figure(df, "fig8", "Fig. 8 — larger errors (ν, κ) = (0.5, 5)", "fig8_large_errors", out_dir)
    out += _fig9(df, out_dir)
    out += _fig10(df, out_dir)
    return out


# ---------------------------------------------------------------------------------------
# headline table
# ---------------------------------------------------------------------------------------
def _sdr_errors(df: pd.DataFrame) -> list[tuple[str, float, float, int]]:
    """(label, max |2nd − sim|/sim, signed 1st-order error of largest magnitude, points)."""
    out = []
    for panel in ("fig4", "fig8", "fig6"):
        rows = _panel(df, panel)
        if rows.empty:
            continue
        e2, e1 = [], []
        keys = ["case", "variant", "x"]
        for _, g in rows.groupby(keys, sort=False):
            sims = g[g["metric"] == "sdr_bps_hz"]
            for m in [m for m in dict.fromkeys(sims["method"]) if ":" not in m and not m.startswith("Analytic")]:
                s = _value(g, m, "sdr_bps_hz")
                a2 = _value(g, f"{m}: analytic 2nd order", "sdr_bps_hz")
                a1 = _value(g, f"{m}: analytic 1st order", "sdr_bps_hz")
                if s > 0 and math.isfinite(a2):
                    e2.append((a2 - s) / s)
                if s > 0 and math.isfinite(a1):
                    e1.append((a1 - s) / s)
        if e2:
            worst1 = max(e1, key=abs) if e1 else math.nan
            out.append((panel, max(abs(v) for v in e2), worst1, len(e2)))
    return out


def _optima(df: pd.DataFrame) -> list[str]:
    sim, bnd = _panel(df, "fig5"), _panel(df, "fig5_bound")
    lines = []
    for case in dict.fromkeys(pd.concat([sim, bnd])["case"]) if len(sim) + len(bnd) else []:
        for variant in dict.fromkeys(pd.concat([sim, bnd])["variant"]):
            parts = []
            s = sim[(sim["case"] == case) & (sim["variant"] == variant)]
            b = bnd[(bnd["case"] == case) & (bnd["variant"] == variant)]
            if len(s):
                r = _avg_rmse(s, "MLE", "rmse_phi_deg").dropna()
                sd = _series(s, "MLE", "sdr_bps_hz").dropna()
                if len(r):
                    parts.append(f"loc. (MLE) {r.idxmin():.2f}")
                if len(sd):
                    parts.append(f"comm. (sim.) {sd.idxmax():.2f}")
            if len(b):
                rb = _avg_rmse(b, CRLB, "rmse_phi_deg").dropna()
                an = _series(b, "Analytic 2nd order (CRLB)", "sdr_bps_hz").dropna()
                if len(rb):
                    parts.append(f"loc. (CRLB) {rb.idxmin():.2f}")
                if len(an):
                    parts.append(f"comm. (analytic) {an.idxmax():.2f}")
            if parts:
                lines.append(f"Fig. 5 optimum ρ₁, {case}, {variant.replace('snr=', 'SNR ')} dB: " + ", ".join(parts))
    return lines


def summary_table(df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Compact table: MLE RMSE / √CRLB per parameter for each error law and SNR (efficiency
    panel); headline lines: SDR approximation errors, Fig. 5 optima, AO-ML convergence, JLDD."""
    records = []
    eff = _panel(df, "efficiency")
    for (law, coh, x), g in eff.groupby(["case", "variant", "x"], sort=False) if len(eff) else []:
        rec = {"errors (MLE, drone 1)": law, "coh.": coh, "SNR dB": x}
        for p, unit, sym in PARAMS:
            r, b = _value(g, "MLE", f"rmse_{p}_{unit}"), _value(g, CRLB, f"rmse_{p}_{unit}")
            rec[f"{sym}: RMSE/√CRLB"] = r / b if b > 0 else math.nan
        records.append(rec)
    table = pd.DataFrame.from_records(records)
    lines = []
    for panel, e2, e1, n in _sdr_errors(df):
        lines.append(f"{panel}: analytic SDR vs simulation over {n} points — 2nd order max |error| {100 * e2:.1f} %, "
                     f"1st order worst {100 * e1:+.1f} %")
    for panel in ("fig4", "fig8"):
        rows = _panel(df, panel)
        if len(rows):
            xmax = rows["x"].max()
            top = rows[rows["x"] == xmax]
            parts = [f"{case}: φ {_value(g, 'MLE', 'rmse_phi_deg'):.3g}° (√CRLB {_value(g, CRLB, 'rmse_phi_deg'):.3g}°), "
                     f"SDR {_value(g, 'MLE', 'sdr_bps_hz'):.3f}"
                     for (case, _v), g in top.groupby(["case", "variant"], sort=False)]
            lines.append(f"{panel} at {xmax:g} dB (ordering of the cases): " + "; ".join(parts))
    lines += _optima(df)
    f7 = _panel(df, "fig7")
    if len(f7):
        conv = _indexed(f7, "AO-ML", "converged")
        med = next((int(i) for i, v in conv.items() if v >= 0.5), None)
        within10 = float(conv.get(10, conv.iloc[-1])) if len(conv) else math.nan
        lines.append(f"AO-ML (fig7): mean iterations {_value(f7, 'AO-ML', 'iterations'):.1f}, median "
                     f"{'>' + str(conv.index.max()) if med is None else med}, converged within 10: "
                     f"{100 * within10:.0f} %, ever: {100 * _value(f7, 'AO-ML', 'converged'):.0f} %")
    jl = _panel(df, "jldd")
    if len(jl):
        xmax = jl["x"].max()
        top = jl[jl["x"] == xmax]
        wins = _windows(top, "rmse_phi_deg")
        n = wins[-1]
        parts = []
        for m in _jldd_methods(top):
            parts.append(f"{m} RMSE φ {_value(top, m, f'rmse_phi_deg@{wins[0]:03d}'):.3g}→"
                         f"{_value(top, m, f'rmse_phi_deg@{n:03d}'):.3g}°, SER {_value(top, m, f'ser@{n:03d}'):.3g}")
        for m in [m for m in dict.fromkeys(top["method"]) if "(DLDD)" in m]:
            parts.append(f"{m} SER {_value(top, m, f'ser_cum@{n:03d}'):.3g}")
        lines.append(f"JLDD at {xmax:g} dB, windows {wins[0]}→{n}: " + "; ".join(parts))
    return table, lines
