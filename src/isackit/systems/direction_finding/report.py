r"""The compact summary of a ``direction_finding`` run: one row per method, the headline
numbers of each panel as columns, the bounds beside them, and the ratios the seed's claims
are about (MoD-DNN vs MUSIC at high SNR, the classical error floor, ρ = 1 vs ρ = 0)."""

from __future__ import annotations

import math

import pandas as pd

__all__ = ["summary_table", "CHANNEL_NAMES"]

#: TR 38.901 LoS scenario names as printed (the config uses lower case)
CHANNEL_NAMES = {"inh": "InH", "inf": "InF", "umi": "UMi", "uma": "UMa", "rma": "RMa"}
_ORDER = ("MUSIC", "DBF", "DeepMUSIC", "CNN", "MoD-DNN", "CRB", "MUSIC noise-free")


def _fmt(v: float) -> str:
    return "nan" if not math.isfinite(v) else f"{v:.3g}"


def summary_table(df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """(table, headline lines) of a tidy ``direction_finding`` result table."""
    if df.empty or "panel" not in df:
        return pd.DataFrame(), []
    cols: dict[str, pd.Series] = {}
    lines: list[str] = []
    rm = df[df["metric"] == "rmse_deg"]
    snr = rm[rm["panel"] == "snr"]
    if not snr.empty:
        per = snr.groupby(["method", "snr_db"])["value"].mean()  # mean over devices
        xs = sorted(snr["snr_db"].unique())
        for x in sorted({xs[0], *(v for v in xs if v == 10.0), xs[-1]}):
            cols[f"RMSE° @{x:g}dB"] = per.xs(x, level="snr_db")
        hi = xs[-1]
        mid = [v for v in xs if v < hi]
        if ("MoD-DNN", hi) in per and ("MUSIC", hi) in per:
            lines.append(f"snr: MoD-DNN / MUSIC RMSE at {hi:g} dB = {_fmt(per['MoD-DNN', hi] / per['MUSIC', hi])} "
                         f"(mean over {snr['device'].nunique()} devices)")
        if mid:
            lo2 = mid[-1]
            for m in ("MUSIC", "DBF", "MoD-DNN", "CNN"):
                if (m, hi) in per and (m, lo2) in per:
                    lines.append(f"snr: {m} RMSE({hi:g} dB) / RMSE({lo2:g} dB) = {_fmt(per[m, hi] / per[m, lo2])}"
                                 + (f", √CRB ratio {_fmt(per[m, hi] / per['CRB', hi])}" if ('CRB', hi) in per else ""))
    rho = rm[rm["panel"] == "rho"]
    if not rho.empty:
        per = rho.groupby(["method", "rho"])["value"].mean()
        rs = sorted(rho["rho"].unique())
        for r in (rs[0], rs[-1]):
            cols[f"RMSE° ρ={r:g}"] = per.xs(r, level="rho")
        for m in ("MUSIC", "MoD-DNN", "CNN"):
            if (m, rs[0]) in per and (m, rs[-1]) in per and per[m, rs[0]] > 0:
                lines.append(f"rho: {m} RMSE(ρ={rs[-1]:g}) / RMSE(ρ={rs[0]:g}) = {_fmt(per[m, rs[-1]] / per[m, rs[0]])}")
    ch = rm[rm["panel"] == "channels"]
    if not ch.empty:
        per = ch.groupby(["method", "channel"])["value"].mean()
        cols["RMSE° TR38.901 mean"] = per.groupby(level="method").mean()
        if "MoD-DNN" in per.index.get_level_values(0):
            m = per["MoD-DNN"]
            lines.append("channels: MoD-DNN RMSE° " + ", ".join(f"{CHANNEL_NAMES.get(c, c)} {_fmt(v)}"
                                                             for c, v in m.items()))
    meas = df[(df["panel"] == "measured") & (df["metric"] == "p80_deg")]
    if not meas.empty:
        p80 = meas.groupby("method")["value"].mean()
        cols["measured p80°"] = p80
        if "MoD-DNN" in p80 and "MUSIC" in p80:
            change = 100 * (1 - p80["MoD-DNN"] / p80["MUSIC"]) if p80["MUSIC"] > 0 else None
            rel = "" if change is None else f" ({_fmt(abs(change))} % {'lower' if change >= 0 else 'higher'})"
            lines.append(f"measured: 80th-percentile error MoD-DNN {_fmt(p80['MoD-DNN'])}° vs MUSIC "
                         f"{_fmt(p80['MUSIC'])}°{rel}")
    cx = df[df["panel"] == "complexity"]
    if not cx.empty:
        for metric, name in (("gflops", "GFLOPs"), ("test_ms", "test ms/sample")):
            v = cx[cx["metric"] == metric].groupby("method")["value"].mean()
            cols[name] = v[[m for m in v.index if "[" not in m]]
    spread = df[(df["panel"] == "epochs") & (df["metric"] == "final_spread")]
    if not spread.empty:  # a method without an epochs_to_10pct row never got below 10 %: NaN here
        ep = df[(df["panel"] == "epochs") & (df["metric"] == "epochs_to_10pct")]
        methods = list(dict.fromkeys(spread["method"]))
        cols["epochs to 10 %"] = ep.groupby("method")["value"].mean().reindex(methods)
        never = [m for m in methods if m not in set(ep["method"])]
        if never:
            lines.append("epochs: loss spread never below 10 % of epoch 1 within the run's epochs: " + ", ".join(never))
    if not cols:
        return pd.DataFrame(), lines
    table = pd.DataFrame(cols)
    order = [m for m in _ORDER if m in table.index] + [m for m in table.index if m not in _ORDER]
    table = table.loc[order].reset_index().rename(columns={"index": "method"})
    return table, lines
