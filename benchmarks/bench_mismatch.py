"""Error floor of mismatched DOA estimators vs the misspecified CRB (MCRB).

Data come from a ULA with a FIXED per-element gain-phase error (drawn once from
``GainPhaseError.gaussian``); DML and MUSIC assume the ideal ULA.  Deterministic source
signals (fixed over trials, only the noise is redrawn), so the deterministic-model MCRB of
:func:`isackit.bounds.mcrb_doa_deterministic` applies to DML:
RMSE_DML ≈ sqrt(MCRB + bias²) at every SNR, flooring at |bias| at high SNR, while the CRB of
the true (impaired) model keeps falling.  MUSIC is reported beside it (no MCRB claim).

Usage:
    python benchmarks/bench_mismatch.py              # 2000 trials per SNR
    python benchmarks/bench_mismatch.py --quick      # tiny sizes (CI)
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch

from isackit.bounds import crb_doa_deterministic, mcrb_doa_deterministic
from isackit.estimators import get_estimator
from isackit.estimators.grids import SearchGrid
from isackit.geometry import ula
from isackit.impairments import ArrayModel
from isackit.impairments.gain_phase import GainPhaseError
from isackit.metrics import assignment_errors
from isackit.signals.snapshots import sample_covariance, snapshots


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--trials", type=int, default=None, help="trials per SNR (default 2000, quick: 20)")
    p.add_argument("--elements", type=int, default=8)
    p.add_argument("--angles-deg", type=float, nargs="+", default=[-11.5, 17.2])
    p.add_argument("--snapshots", type=int, default=10)
    p.add_argument("--gain-std-db", type=float, default=1.0)
    p.add_argument("--phase-std-deg", type=float, default=10.0)
    p.add_argument("--snrs", type=float, nargs="+", default=None, help="default 0 ... 40 dB step 10")
    p.add_argument("--seed", type=int, default=5)
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    p.add_argument("--quick", action="store_true")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    trials = args.trials or (20 if args.quick else 2000)
    snrs = args.snrs or ([0.0, 30.0] if args.quick else [0.0, 10.0, 20.0, 30.0, 40.0])
    f64, c128 = torch.float64, torch.complex128
    g = torch.Generator().manual_seed(args.seed)
    m, k, n = args.elements, len(args.angles_deg), args.snapshots
    imp = GainPhaseError.gaussian(m, args.gain_std_db, args.phase_std_deg, generator=g, dtype=f64)
    true = ArrayModel(ula(m).to(f64), [imp])
    ideal = true.ideal()
    th = torch.deg2rad(torch.tensor(args.angles_deg, dtype=f64))
    S = torch.randn(k, n, dtype=c128, generator=g)
    S = S / S.abs().pow(2).mean(-1, keepdim=True).sqrt()  # unit empirical power: SNR = 1/σ²
    A = true.steering(th)
    grid = SearchGrid.degrees(-90.0, 90.0, 0.05)
    estimators = {name: get_estimator(name)(array=ideal, num_sources=k, grid=grid) for name in ("dml", "music")}
    rows = []
    for snr in snrs:
        s2 = 10 ** (-snr / 10)
        bound = mcrb_doa_deterministic(true, ideal, th, S, s2)
        crb = crb_doa_deterministic(true, th, s2, signals=S)
        X = snapshots(A.expand(trials, m, k), g, signals=S.expand(trials, k, n), noise_variance=s2).X
        R = sample_covariance(X)
        row = {"snr_db": snr, "trials": trials,
               "root_mcrb_plus_bias_deg": [math.degrees(math.sqrt(v)) for v in bound.mse_bound.diagonal().tolist()],
               "bias_deg": [math.degrees(v) for v in bound.bias.tolist()],
               "root_crb_true_model_deg": [math.degrees(math.sqrt(v)) for v in crb.diagonal().tolist()]}
        for name, est in estimators.items():
            err = assignment_errors(est(R).estimates, th[:, None])
            row[f"rmse_{name}_deg"] = [math.degrees(v) for v in (err**2).nanmean((0, 2)).sqrt().tolist()]
        rows.append(row)
    meta = {"elements": m, "angles_deg": args.angles_deg, "snapshots": n, "gain_std_db": args.gain_std_db,
            "phase_std_deg": args.phase_std_deg, "seed": args.seed, "torch": torch.__version__}
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "bench_mismatch_quick" if args.quick else "bench_mismatch"
    (args.out / f"{stem}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print_table(rows)
    return {"meta": meta, "rows": rows}


def print_table(rows):
    from rich.console import Console
    from rich.table import Table

    t = Table(title="Mismatched DOA (ideal ULA assumed, gain-phase-impaired data); degrees, per source")
    for col in ("SNR dB", "RMSE DML", "√(MCRB+bias²)", "|bias|", "RMSE MUSIC", "√CRB true model"):
        t.add_column(col, justify="right")

    def fmt(v):
        return " ".join(f"{abs(x):.3g}" for x in v)

    for r in rows:
        t.add_row(f"{r['snr_db']:g}", fmt(r["rmse_dml_deg"]), fmt(r["root_mcrb_plus_bias_deg"]), fmt(r["bias_deg"]),
                  fmt(r["rmse_music_deg"]), fmt(r["root_crb_true_model_deg"]))
    Console(width=140).print(t)


if __name__ == "__main__":
    main(sys.argv[1:])
