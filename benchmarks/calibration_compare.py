"""Compare two runs of the ``calibration`` experiment (S0) metric by metric, with 95 % intervals.

Every evaluated metric of S0 is a ratio of per-frame sums Σx/Σy (GOSPA², matched squared
errors over matched pairs, detections over true targets, false estimates, noise-only alarms,
symbol errors, UE SNR); each unit's rows carry the sums and second moments of its ratio in
``extra["moments"]`` (Σx, Σy, Σx², Σy², Σxy, n).  Summed over the devices (units) of a run they
give the metric and its 95 % interval over frames (:func:`isackit.metrics.ratio_interval`,
delta method; an RMS metric's interval is the square root of its ratio's).  The UE SNR is
compared as 10 log10 of the pooled mean |h^T f|²/σ² (the results table averages the per-device
dB values instead).

For each method and metric at the main weight w the script prints the value and interval of
both runs, whether the second run's value lies inside the first run's interval, and whether
the two runs differ significantly at the 5 % level (|new − old| > 1.96 √(se_old² + se_new²),
se = half the interval / 1.96).  When the two runs draw their test data from different
random streams the new value is itself random: it lies inside the old 95 % interval with
probability P(|Z| < 1.96/√2) ≈ 83 % (equal standard errors) even when nothing changed, so
the two-sample test is the one with a 5 % false-alarm rate per metric.  The
learned-parameter errors (one training per device, no per-frame interval) are printed side by
side without a verdict.  Reads the unit files of both formats (before and after the
checksummed ``isackit-unit/2`` files).

Usage::

    python benchmarks/calibration_compare.py OLD_RUN NEW_RUN [--w 0.5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from isackit.systems.calibration.evaluation import METRIC_RATIOS, RatioSums

PARAMETER_METRICS = ("phase_err_deg_tx", "gain_err_db_tx", "position_err_mm_tx", "phase_err_deg_rx",
                     "gain_err_db_rx", "position_err_mm_rx")


def read_units(run: str | Path) -> list[tuple[dict, list[dict]]]:
    """``[(unit identity, rows)]`` of a run folder (both unit-file formats)."""
    units = []
    files = sorted((Path(run) / "units").glob("*.json"))
    if not files:
        raise SystemExit(f"error: no unit files in {run}/units")
    for path in files:
        data = json.loads(path.read_text())
        ident = data.get("identity") or data.get("unit")
        units.append((ident, data["rows"]))
    return units


def main_weight(units) -> float:
    """The w with the most methods."""
    methods: dict[float, set] = {}
    for ident, rows in units:
        methods.setdefault(float(ident["point"]["w"]), set()).update(r["method"] for r in rows)
    return max(methods, key=lambda w: len(methods[w]))


def summarise(units, w: float) -> dict[str, dict[str, dict]]:
    """``{method: {metric: {"value", "lo", "hi"} or {"devices": [...]}}}`` at weight ``w``."""
    sums: dict[tuple[str, str], RatioSums] = {}
    params: dict[tuple[str, str], list[float]] = {}
    for ident, rows in units:
        if not math.isclose(float(ident["point"]["w"]), w):
            continue
        for r in rows:
            key = (r["method"], r["metric"])
            mom = (r.get("extra") or {}).get("moments")
            if mom is not None:
                s = sums.setdefault(key, RatioSums())
                for name, v in zip(("sx", "sy", "sxx", "syy", "sxy", "n"), mom, strict=True):
                    setattr(s, name, getattr(s, name) + v)
            elif r["metric"] in PARAMETER_METRICS:
                params.setdefault(key, []).append(r["total"] / r["count"])
    out: dict[str, dict[str, dict]] = {}
    for (method, metric), s in sums.items():
        _, fn = METRIC_RATIOS[metric]
        lo, hi = s.interval()
        value = s.value
        out.setdefault(method, {})[metric] = {
            "value": fn(value) if not math.isnan(value) else math.nan,
            "lo": fn(max(lo, 0.0)) if not math.isnan(lo) else math.nan,
            "hi": fn(max(hi, 0.0)) if not math.isnan(hi) else math.nan}
    for (method, metric), vals in params.items():
        out.setdefault(method, {})[metric] = {"devices": vals, "value": sum(vals) / len(vals)}
    return out


def _fmt(v: float) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4g}"


def _significant(a: dict, b: dict) -> bool:
    """The two values differ at the 5 % level (normal approximation, independent runs)."""
    se_a, se_b = (a["hi"] - a["lo"]) / (2 * 1.96), (b["hi"] - b["lo"]) / (2 * 1.96)
    se = math.hypot(se_a, se_b)
    return abs(b["value"] - a["value"]) > 1.96 * se if se > 0 else b["value"] != a["value"]


def compare(old: dict, new: dict) -> tuple[list[str], int, int, int]:
    """Markdown lines, the number of compared metrics, how many are inside the old interval and
    how many differ significantly (5 %)."""
    lines = ["| method | metric | old (95 % CI) | new (95 % CI) | new inside old CI | differ (5 %) |",
             "|---|---|---|---|---|---|"]
    n = inside = differ = 0
    for method in old:
        if method not in new:
            continue
        for metric in [*METRIC_RATIOS, *PARAMETER_METRICS]:
            a, b = old[method].get(metric), new[method].get(metric)
            if a is None or b is None:
                continue
            if "devices" in a:
                lines.append(f"| {method} | {metric} | {' / '.join(_fmt(v) for v in a['devices'])} | "
                             f"{' / '.join(_fmt(v) for v in b['devices'])} | (per device; no frame CI) | |")
                continue
            ok = a["lo"] <= b["value"] <= a["hi"] if not math.isnan(a["lo"]) else (a["value"] == b["value"])
            sig = _significant(a, b) if not (math.isnan(a["lo"]) or math.isnan(b["lo"])) else not ok
            n += 1
            inside += bool(ok)
            differ += bool(sig)
            lines.append(f"| {method} | {metric} | {_fmt(a['value'])} ({_fmt(a['lo'])}–{_fmt(a['hi'])}) | "
                         f"{_fmt(b['value'])} ({_fmt(b['lo'])}–{_fmt(b['hi'])}) | {'yes' if ok else '**no**'} | "
                         f"{'**yes**' if sig else 'no'} |")
    return lines, n, inside, differ


def ratios(summary: dict) -> dict[str, float]:
    """The issue's ratios from a summary: residual / supervised and / uncalibrated RMSE, / perfect SER."""
    def v(m, k):
        return summary.get(m, {}).get(k, {}).get("value", math.nan)

    return {"residual/supervised RMSE": v("unsupervised_residual", "rmse_m") / v("supervised", "rmse_m"),
            "residual/uncalibrated RMSE": v("unsupervised_residual", "rmse_m") / v("uncalibrated", "rmse_m"),
            "residual/perfect SER": v("unsupervised_residual", "ser") / v("perfect", "ser")}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--w", type=float, default=None, help="the weight to compare (default: the main one)")
    ap.add_argument("--json", default=None, help="also write the comparison as JSON here")
    a = ap.parse_args(argv)
    uo, un = read_units(a.old), read_units(a.new)
    w = main_weight(uo) if a.w is None else a.w
    old, new = summarise(uo, w), summarise(un, w)
    if not any("value" in m for d in old.values() for m in d.values() if "lo" in m):
        print(f"error: {a.old} has no per-frame moments in its rows (run it with a version that records them)",
              file=sys.stderr)
        raise SystemExit(2)
    lines, n, inside, differ = compare(old, new)
    print(f"w = {w:g}\n")
    print("\n".join(lines))
    ro, rn = ratios(old), ratios(new)
    print("\n| ratio | old | new |\n|---|---|---|")
    for k in ro:
        print(f"| {k} | {ro[k]:.3f} | {rn[k]:.3f} |")
    print(f"\n{inside} of {n} metrics of the new run lie inside the old run's 95 % interval "
          f"(≈ {0.83 * n:.0f} expected for independent draws of the same distribution); "
          f"{differ} differ at the 5 % level (≈ {0.05 * n:.1f} expected by chance).")
    result = {"w": w, "old": old, "new": new, "inside": inside, "differ": differ, "compared": n,
              "ratios": {"old": ro, "new": rn}}
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
