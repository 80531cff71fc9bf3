"""RMSE / own-bound ratios of a ``positioning`` run folder (S4, seed 004), as Markdown tables.

For every ``snr`` point: AoD RMSE / CRB per BS and position RMSE / PEB, for the benchmark and
the learned system (each against the bound of its OWN precoder, TRUE arrays), the learned
bound relative to the benchmark's, and, under impairments, the benchmark's RMSE / MCRB.
For the ``sigma`` and ``zeta`` sweeps the same for the position.  The numbers come from the
run's ``results.parquet`` only (nothing is recomputed).

Usage::

    python benchmarks/positioning_ratios.py RUN_DIR [RUN_DIR ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

METRICS = (("aod_rmse_deg_bs1", "CRB", "AoD BS1"), ("aod_rmse_deg_bs2", "CRB", "AoD BS2"),
           ("position_rmse_m", "PEB", "position"))


def ratios(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (panel, impairment, x) and metric: the ratios described in the module doc."""
    df = df[df["panel"] != "pattern"]
    wide = df.pivot_table(index=["panel", "impairment", "x"], columns=["metric", "method"], values="value")
    out = []
    for metric, bound, name in METRICS:
        if (metric, "learned") not in wide.columns:
            continue
        t = pd.DataFrame({
            "metric": name,
            "learned/own": wide[(metric, "learned")] / wide[(metric, f"{bound} (learned)")],
            "benchmark/own": wide[(metric, "benchmark")] / wide[(metric, f"{bound} (benchmark)")],
            "bound learned/benchmark": wide[(metric, f"{bound} (learned)")] / wide[(metric, f"{bound} (benchmark)")],
        })
        if (metric, "MCRB (benchmark)") in wide.columns:
            t["benchmark/MCRB"] = wide[(metric, "benchmark")] / wide[(metric, "MCRB (benchmark)")]
        out.append(t.dropna(how="all", subset=["learned/own"]))
    if not out:  # e.g. a run of the pattern panel only
        return pd.DataFrame(columns=["panel", "impairment", "x", "metric", "learned/own"])
    return pd.concat(out).reset_index()


def to_markdown(t: pd.DataFrame) -> str:
    cols = list(t.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in t.iterrows():
        lines.append("| " + " | ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in r) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[Path, pd.DataFrame]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path, help="run folders holding a results.parquet")
    tables = {}
    runs = ap.parse_args(argv).runs
    missing = [str(r) for r in runs if not (r / "results.parquet").is_file()]
    if missing:
        ap.error(f"no results.parquet in {', '.join(missing)}")  # one line, exit code 2
    for run in runs:
        t = ratios(pd.read_parquet(run / "results.parquet"))
        if t.empty:
            ap.error(f"{run}: no snr, sigma or zeta rows with learned results")  # one line, exit 2
        t = t.sort_values(["panel", "metric", "impairment", "x"], kind="stable").reset_index(drop=True)
        print(f"## {run}\n\n{to_markdown(t)}\n")
        tables[run] = t
    return tables


if __name__ == "__main__":
    main()
