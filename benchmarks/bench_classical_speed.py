"""Speed of the classical estimators at the issue's target sizes (engineer C1).

* D1: ULA M = 16, K = 2 sources at -10.3°, 12.7°, N = 200, SNR 10 dB; MUSIC / DML / Bartlett /
  MVDR on a 0.01° grid over [-90°, 90°] (DML: 0.05° initialisation grid) with off-grid
  refinement, in one batch of B trials (target: MUSIC ≥ 6 000 trials/s on 2 CPU cores);
* S0: separable angle–delay OMP, 5 iterations on a 720 × 200 angle–range grid, 64 antennas,
  256 subcarriers, forward and forward + backward through the dictionary (target ≥ 250
  scenes/s on 2 CPU cores).

Both wall-clock rates and rates per CPU-second of this process are printed (the best of a
few repeats): on a shared machine the wall-clock rate is depressed by other processes, the
CPU-time rate much less.

Usage:
    python benchmarks/bench_classical_speed.py              # B = 2000 trials, 32 scenes
    python benchmarks/bench_classical_speed.py --threads 1 --quick
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from isackit.estimators import DML, MUSIC, MVDR, Bartlett, delay_dictionary, omp_angle_delay
from isackit.geometry import ula
from isackit.geometry.arrays import steering_matrix


def _timed(fn, repeats: int = 3) -> tuple[float, float]:
    wall, cpu = math.inf, math.inf
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall, cpu = min(wall, time.perf_counter() - w0), min(cpu, time.process_time() - c0)
    return wall, cpu


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=2000)
    p.add_argument("--scenes", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="tiny sizes (CI)")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    trials, scenes = (64, 2) if a.quick else (a.trials, a.scenes)
    g = torch.Generator().manual_seed(0)

    arr = ula(16)
    theta = torch.tensor([-10.3, 12.7]).deg2rad()
    A = arr.steering(theta).to(torch.complex64)
    S = torch.randn(trials, 2, 200, dtype=torch.complex64, generator=g) * math.sqrt(10.0)
    X = A @ S + torch.randn(trials, 16, 200, dtype=torch.complex64, generator=g)
    R = X @ X.mH / 200
    for name, est in [("music", MUSIC(arr, 2)), ("music grid_only", MUSIC(arr, 2, grid_only=True)),
                      ("dml", DML(arr, 2)), ("bartlett", Bartlett(arr, 2)), ("mvdr", MVDR(arr, 2))]:
        est(R[:4])  # builds and caches the grid dictionary
        wall, cpu = _timed(lambda est=est: est(R))
        print(f"D1 {name:16s} B={trials}: {trials / wall:9.0f} trials/s wall, "
              f"{trials / cpu:9.0f} trials per CPU-s ({a.threads} threads)")

    M, N, Ga, Gd = (64, 256, 720, 200) if not a.quick else (16, 32, 90, 40)
    pos = ula(M).positions.float().clone().requires_grad_(True)
    az = torch.linspace(-math.pi / 3, math.pi / 3, Ga)
    tau = torch.linspace(2 * 10 / 3e8, 2 * 43.75 / 3e8, Gd)
    B = delay_dictionary(tau, 240e3, N)
    Y = torch.randn(scenes, M, N, dtype=torch.complex64, generator=g)

    def step(backward: bool) -> None:
        res = omp_angle_delay(Y, steering_matrix(pos, az), B, 5, grids=(az, tau), temperature=0.05, window=3)
        loss = res.residual_norms[..., -1].mean() - res.peaks.sum(-1).mean() + res.soft_locations.sum()
        if backward:
            loss.backward()

    step(True)
    for backward in (False, True):
        wall, cpu = _timed(lambda backward=backward: step(backward))
        what = "fwd+bwd" if backward else "fwd    "
        print(f"S0 OMP 5 it {Ga}x{Gd} M={M} N={N} {what}: {scenes / wall:7.1f} scenes/s wall, "
              f"{scenes / cpu:7.1f} per CPU-s")


if __name__ == "__main__":
    main()
