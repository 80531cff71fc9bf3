"""DML on closely spaced sources: RMSE/√CRB, failure rate and how often it stops at a local optimum.

Case (issue 13 item 9; scenario D2 of bench_doa.py): ULA M = 8 (λ/2), K = 3 uncorrelated
equal-power sources at -20.4°, 0.5°, 9.8° (0.5° and 9.8° are closer than the 14° half-power
beamwidth), N = 64 snapshots, complex128.  Per SNR, the same covariances go to DML (each
``--inits`` variant), MUSIC and root-MUSIC.

Columns: RMSE/√CRB (RMSE over trials and sources after optimal assignment; √CRB = sqrt of the
mean diagonal of the stochastic CRB, ``isackit.bounds.crb_doa_stochastic``), failure rate
(any source off by more than ``--failure-deg``), and for DML the "local optimum" rate: the
fraction of trials where refining from the TRUE angles (an oracle start,
``isackit.estimators.dml_refine``) reaches a larger tr(P_A R̂) than the estimate — the
diagnosis of an initialisation or refinement that stops short of the global maximum.

    OMP_NUM_THREADS=1 python benchmarks/bench_dml.py --trials 300
    python benchmarks/bench_dml.py --trials 300 --snrs 10 20 --inits multi ap music
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from isackit.bounds import crb_doa_stochastic
from isackit.estimators import DML, MUSIC, RootMUSIC, dml_cost, dml_refine
from isackit.geometry import ula
from isackit.impairments import ArrayModel
from isackit.metrics import assignment_errors
from isackit.seeding import make_generator
from isackit.signals import sample_covariance, snapshots

ANGLES_DEG = (-20.4, 0.5, 9.8)
M, N = 8, 64


def run(trials: int, snrs, inits, failure_deg: float, seed: int) -> list[dict]:
    th = torch.deg2rad(torch.tensor(ANGLES_DEG, dtype=torch.float64))
    K = th.numel()
    model = ArrayModel(ula(M).to(torch.float64))
    A = model.steering(th)
    estimators = {f"dml[{i}]": DML(model, K, init=i) for i in inits}
    estimators |= {"music": MUSIC(model, K), "root_music": RootMUSIC(ula(M), K)}
    rows = []
    for snr in snrs:
        g = make_generator(seed, "bench_dml", float(snr))
        R = sample_covariance(snapshots(A.expand(trials, M, K), g, num_snapshots=N, snr_db=snr).X)
        P = 10 ** (snr / 10) * torch.eye(K, dtype=torch.complex128)
        root_crb = math.sqrt(float(crb_doa_stochastic(model, th, P, 1.0, N).diagonal().mean()))
        oracle = dml_refine(R, model, th.expand(trials, K).clone())
        c_oracle = dml_cost(R, model.steering(oracle))
        for name, est in estimators.items():
            t0 = time.perf_counter()
            e = est(R).estimates
            seconds = time.perf_counter() - t0
            err = assignment_errors(e, th[:, None])
            row = {"snr_db": snr, "method": name, "trials": trials,
                   "rmse_over_root_crb": float(err.pow(2).mean().sqrt()) / root_crb,
                   "failure_rate": float((err.abs().amax(-1) > math.radians(failure_deg)).double().mean()),
                   "seconds": seconds}
            if name.startswith("dml"):
                c = dml_cost(R, model.steering(e[..., 0]))
                row["local_optimum_rate"] = float(((c_oracle - c) > 1e-9 * c_oracle.abs()).double().mean())
            rows.append(row)
    return rows


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--trials", type=int, default=300)
    p.add_argument("--snrs", type=float, nargs="+", default=[-10.0, -5.0, 0.0, 5.0, 10.0, 15.0, 20.0])
    p.add_argument("--inits", nargs="+", default=["multi"], choices=["multi", "ap", "music"])
    p.add_argument("--failure-deg", type=float, default=2.0)
    p.add_argument("--seed", type=int, default=2024)
    args = p.parse_args(argv)
    rows = run(args.trials, args.snrs, args.inits, args.failure_deg, args.seed)
    print(f"| SNR dB | method | RMSE/√CRB | failure % | local opt. % | time s |  ({args.trials} trials, "
          f"{torch.get_num_threads()} thread(s))")
    print("|---|---|---|---|---|---|")
    for r in rows:
        lo = f"{100 * r['local_optimum_rate']:.1f}" if "local_optimum_rate" in r else ""
        print(f"| {r['snr_db']:g} | {r['method']} | {r['rmse_over_root_crb']:.2f} | {100 * r['failure_rate']:.1f} "
              f"| {lo} | {r['seconds']:.1f} |")
    return rows


if __name__ == "__main__":
    main()
