"""Speed and low-SNR failure rates of the subspace estimators (root-MUSIC, ESPRIT, unitary ESPRIT).

D1: ULA M = 16 (λ/2), K = 2 uncorrelated equal-power sources at 10° and 20°, N = 200 snapshots.
D2: ULA M = 8 (λ/2), K = 3 uncorrelated equal-power sources at -20.4°, 0.5°, 9.8°, N = 200.

Speed: trials per second for one batched call (covariance given, and snapshots → covariance →
estimate), complex64 by default.  Failure: after optimal assignment (sorted angles, which is
optimal for scalar angles), a trial fails if any |error| exceeds half the smallest angular
separation of the scenario, or the estimator returned NaN.

    OMP_NUM_THREADS=2 python benchmarks/bench_subspace.py --trials 20000
    python benchmarks/bench_subspace.py --failure --trials 2000
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from isackit.estimators.order import aic_order, mdl_order
from isackit.estimators.subspace import esprit, root_music, unitary_esprit
from isackit.geometry.arrays import ula

SCENARIOS = {
    "D1": (16, (-10.3, 12.7), 200),
    "D2": (8, (-20.4, 0.5, 9.8), 64),
}

ESTIMATORS = {  # (R, K) -> angles (..., K)
    "root_music": lambda R, K: root_music(R, K).estimates[..., 0],
    "esprit_ls": lambda R, K: esprit(R, K, method="ls").estimates[..., 0],
    "esprit_tls": lambda R, K: esprit(R, K, method="tls").estimates[..., 0],
    "esprit_tls_overlap": lambda R, K: esprit(R, K, method="tls", row_weights="overlap").estimates[..., 0],
    "unitary_esprit": lambda R, K: unitary_esprit(R, K).estimates[..., 0],
}


def snapshots(M, angles_deg, N, snr_db, trials, generator, dtype=torch.complex64):
    th = torch.deg2rad(torch.tensor(angles_deg, dtype=torch.float64))
    A = ula(M).steering(th).to(torch.complex128)
    K = len(angles_deg)
    s2 = 10 ** (-snr_db / 10)
    S = torch.randn(trials, K, N, dtype=torch.complex128, generator=generator)  # CN(0, 1)
    W = torch.randn(trials, M, N, dtype=torch.complex128, generator=generator) * math.sqrt(s2)
    return (A @ S + W).to(dtype), th


def covariance(X):
    return X @ X.mH / X.shape[-1]


def _best(fn, repeats):
    """Best wall time and best process CPU time of ``fn()`` over ``repeats`` runs.

    On a shared machine the wall time is inflated by other processes; with one thread the CPU
    time is close to what an idle core would take."""
    wall = cpu = math.inf
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall, cpu = min(wall, time.perf_counter() - t), min(cpu, time.process_time() - c)
    return wall, cpu


def speed(trials, dtype, repeats=3):
    g = torch.Generator().manual_seed(0)
    M, ang, N = SCENARIOS["D1"]
    X, _ = snapshots(M, ang, N, 10.0, trials, g, dtype)
    R = covariance(X)
    print(f"D1 speed, {trials} trials/batch, {dtype}, {torch.get_num_threads()} threads "
          "(trials/s by wall time; by process CPU time in brackets)")
    for name, f in ESTIMATORS.items():
        f(R[:10], 2)
        wr, cr = _best(lambda: f(R, 2), repeats)
        wx, cx = _best(lambda: f(covariance(X), 2), repeats)
        print(f"  {name:18s} from R: {trials / wr:7.0f} [{trials / cr:7.0f}]   "
              f"from snapshots: {trials / wx:7.0f} [{trials / cx:7.0f}]")


def failure(trials, snrs):
    print(f"failure rate (|err| > half the min separation, or NaN), {trials} trials, complex128")
    for scen, (M, ang, N) in SCENARIOS.items():
        K = len(ang)
        sep = min(b - a for a, b in zip(sorted(ang)[:-1], sorted(ang)[1:], strict=True))
        for snr in snrs:
            g = torch.Generator().manual_seed(7)
            X, th = snapshots(M, ang, N, snr, trials, g, torch.complex128)
            R = covariance(X)
            row = []
            for name, f in ESTIMATORS.items():
                est = f(R, K)
                err = (torch.rad2deg(est - th.sort().values)).abs().nan_to_num(nan=math.inf)
                fail = (err > sep / 2).any(-1).double().mean().item()
                row.append(f"{name}={fail:.3f}")
            mdl = (mdl_order(R, N) == K).double().mean().item()
            aic = (aic_order(R, N) == K).double().mean().item()
            print(f"  {scen} SNR {snr:+5.1f} dB: " + " ".join(row) + f"  | P(MDL=K)={mdl:.3f} P(AIC=K)={aic:.3f}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trials", type=int, default=20000)
    p.add_argument("--double", action="store_true", help="complex128 for the speed run")
    p.add_argument("--failure", action="store_true", help="failure rates instead of speed")
    p.add_argument("--snr", type=float, nargs="+", default=[-10.0, -5.0, 0.0])
    a = p.parse_args(argv)
    if a.failure:
        failure(a.trials, a.snr)
    else:
        speed(a.trials, torch.complex128 if a.double else torch.complex64)


if __name__ == "__main__":
    main()
