"""PASCAL (S3, seed 003) benchmark: trials per second of the statistical estimators.

Scenario: the default 4 × 4 horizontal URA (λ/2), K = 2 drones (drones 2 and 3 of the seed's
table, equal power), L_p = 10 QPSK pilots, Rice × von Mises errors (1, 0.1, 10) held over the
frame, SNR 10 dB.  Each estimator runs on one batch of B trials (the batch dimension carries
the Monte Carlo trials); the time of the estimator call only is measured, after one warm-up
call on a small batch, best of ``--repeats``.

* ``MLE (init+music)`` — :func:`isackit.estimators.statistical_mle` with the experiment's
  default starts (sequential initialisation and MUSIC + ML Doppler, joint Fisher scoring);
* ``MLE (aoml+init+music)`` — all three starts (what Fig. 6 runs; it also yields AO-ML);
* ``AO-ML`` — :func:`isackit.estimators.ao_ml` to its stop rule (13);
* ``MUSIC + ML Doppler`` — :func:`isackit.estimators.music_doppler`.

Also reported: the CPU (process) time of the timed call, meaningful on a shared machine with
``--threads 1``, and the RMSE of φ (deg) over the batch and √CRLB, so a speed-up never hides a loss.

Usage:
    python benchmarks/bench_pascal.py                  # B = 200 trials, 1 thread
    python benchmarks/bench_pascal.py --threads 2 --trials 500
    python benchmarks/bench_pascal.py --quick          # tiny (CI plumbing: 2 trials, coarse 8° / 40 Hz
                                                       # grids, at most 3 AO-ML iterations; not a timing)
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import torch

from isackit.estimators import ao_ml, music_doppler, statistical_mle
from isackit.seeding import make_generator
from isackit.systems.pascal import ScenarioConfig, build_world, crlb, pilot_observations


def _time(fn, repeats: int) -> tuple[float, float, object]:
    """Best wall time, the CPU time of that repeat (process time: meaningful on a shared
    machine with ``--threads 1``) and the result."""
    best, cpu, out = math.inf, math.inf, None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall = time.perf_counter() - t0
        if wall < best:
            best, cpu = wall, time.process_time() - c0
    return best, cpu, out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--snr", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="tiny sizes (CI)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args(argv)
    if args.quick:
        args.trials = min(args.trials, 2)
    torch.set_num_threads(args.threads)
    sc = ScenarioConfig()
    if args.quick:
        sc = sc.model_copy(update={"search": sc.search.model_copy(update={
            "azimuth_step_deg": 8.0, "elevation_step_deg": 8.0, "doppler_step_hz": 40.0, "max_iterations": 3})})
    world = build_world(sc, [2, 3])
    L = sc.frame.num_subframes
    g = make_generator(0, "bench_pascal")
    y, _, _ = pilot_observations(world, args.trials, args.snr, L, g)
    kp = world.known_pilots(L, args.snr)
    var = crlb(world, args.snr, L)
    methods = {
        "MLE (init+music)": lambda x: statistical_mle(x, kp, world.search, starts=("init", "music")).estimates,
        "MLE (aoml+init+music)": lambda x: statistical_mle(x, kp, world.search).estimates,
        "AO-ML": lambda x: ao_ml(x, kp, world.search).estimates,
        "MUSIC + ML Doppler": lambda x: music_doppler(x, kp, world.search).estimates,
    }
    rows = []
    for name, fn in methods.items():
        if not args.quick:
            fn(y[:2])  # warm-up (grid dictionaries, lazy imports)
        sec, cpu, est = _time(lambda f=fn: f(y), args.repeats)
        d = est[..., 0] - world.truth[:, 0]
        d = torch.remainder(d + math.pi, 2 * math.pi) - math.pi
        rows.append({"method": name, "trials": args.trials, "seconds": sec, "trials_per_s": args.trials / sec,
                     "cpu_seconds": cpu, "trials_per_cpu_s": args.trials / max(cpu, 1e-9),
                     "rmse_phi_deg": math.degrees(float(d.pow(2).mean().sqrt())),
                     "root_crlb_phi_deg": math.degrees(float(var[:, 0].mean().sqrt()))})
        print(f"{name:24s} {args.trials / sec:8.2f} trials/s   ({sec:.2f} s wall, {cpu:.2f} s CPU for {args.trials})  "
              f"RMSE φ {rows[-1]['rmse_phi_deg']:.3f}° (√CRLB {rows[-1]['root_crlb_phi_deg']:.3f}°)")
    meta = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "torch": torch.__version__,
            "threads": args.threads, "machine": platform.processor() or platform.machine(), "snr_db": args.snr,
            "scenario": "4x4 hURA, drones 2 and 3, L_p = 10, Rice x vM (1, 0.1, 10), frame-coherent"}
    out = {"meta": meta, "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "bench_pascal_quick" if args.quick else "bench_pascal"
    (args.out / f"{stem}.json").write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
