"""Speed of the S1 estimators (seed 001 Table II) next to their operation counts.

Scenario: Table I defaults (M_t = 8, M_r = 10, N = 64, K = 3, λ/2 ULAs), LS CSI at 20 dB
(orthogonal pilots), random scenes of the S1 prior.  Methods: PARAMING (FFT-based Hankel
products + block subspace iteration), IFFT-C2VNN inference (W = 7 and the W = 3 variant; the
weights do not change the time, so an untrained network is timed unless ``--model-dir`` holds a
trained one), RootMUSIC-2D, and the grid-only Bartlett / MUSIC / DML (AP) on the seed's
1° × 1° × T_res/4 grids.

For each method:

* ``latency_ms`` — per-scene latency at batch 1 (best of ``--repeats``);
* ``loop_per_s`` — scenes/s of a Python loop of batch-1 calls over ``--batch`` scenes;
* ``batched_per_s`` — scenes/s of one call on ``--batch`` scenes (best of ``--repeats``);
* ``speedup`` = batched_per_s / loop_per_s;
* ``cpu_ms_per_scene`` — process CPU time per scene of the batched call (on a shared machine
  the wall time is inflated by other processes; the CPU time is closer to an idle core's);
* ``ops_per_scene`` — the operation count of :mod:`isackit.systems.bistatic.complexity`.

``--sweep`` adds PARAMING's throughput against the batch size (where batching stops paying).

"PARAMING (full SVD)" is the seed-literal per-scene form (X formed, ``torch.linalg.svd``):
the per-scene loop that the batched PARAMING replaces (skipped with ``--quick``).

Threads: ``--threads`` (default 2).  The grid methods take seconds per scene: they run on
``--grid-batch`` scenes.

    OMP_NUM_THREADS=2 python benchmarks/bench_bistatic.py --out benchmarks/results
    python benchmarks/bench_bistatic.py --quick --out /tmp
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import torch

from isackit.estimators import SearchGrid, root_music_2d
from isackit.estimators.joint import angle_angle_delay_bartlett, angle_angle_delay_music
from isackit.estimators.joint_likelihood import angle_angle_delay_dml
from isackit.estimators.parametric import paraming
from isackit.learning.c2vnn import C2VNN, C2VNNConfig, c2vnn_estimate
from isackit.seeding import make_generator
from isackit.systems.bistatic import ScenarioConfig, arrays, channel, observe, sample_paths
from isackit.systems.bistatic.complexity import (
    bartlett_separable_ops,
    c2vnn_ops,
    dml_ap_ops,
    music_smoothed_ops,
    paraming_ops_implemented,
    root_music_2d_ops,
)


def _timed(fn, repeats: int) -> tuple[float, float]:
    """(best wall seconds, best process CPU seconds) of ``fn()`` after one warm-up call."""
    fn()
    wall = cpu = math.inf
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall, cpu = min(wall, time.perf_counter() - w0), min(cpu, time.process_time() - c0)
    return wall, cpu


def methods(sc: ScenarioConfig, coarse: bool, model_dir: str | None):
    rx, tx = arrays(sc)
    K, df, tres = sc.num_paths, sc.subcarrier_spacing_hz, sc.delay_resolution
    step = 10.0 if coarse else 1.0
    a = SearchGrid.degrees(-90, 90, step, name="aoa")
    d = SearchGrid.degrees(-90, 90, step, name="aod")
    t = SearchGrid(0.0, sc.cp_bins * tres, (2.0 if coarse else 0.25) * tres, name="delay")
    nets = {}
    for w in (7, 3):
        net = C2VNN(C2VNNConfig(window=w), sc.num_rx * sc.num_tx, generator=make_generator(0, "bench", w)).eval()
        nets[w] = net
    del model_dir  # timing does not depend on the weights
    Mt, Mr, N = sc.num_tx, sc.num_rx, sc.num_subcarriers
    G = dict(Gr=a.size, Gt=d.size, Gd=t.size)
    return {
        "PARAMING": (lambda H: paraming(H, rx, tx, K, df), paraming_ops_implemented(Mt, Mr, N, K), False),
        # the seed-literal per-scene form: X formed, full SVD (seconds per scene; not with --quick)
        "PARAMING (full SVD)": (lambda H: paraming(H, rx, tx, K, df, svd="full"), math.nan, True),
        "IFFT-C2VNN (W=7)": (lambda H: c2vnn_estimate(nets[7], H, K, tres), c2vnn_ops(Mt, Mr, N, K, 7), False),
        "IFFT-C2VNN (W=3)": (lambda H: c2vnn_estimate(nets[3], H, K, tres), c2vnn_ops(Mt, Mr, N, K, 3), False),
        "RootMUSIC-2D": (lambda H: root_music_2d(H, K), root_music_2d_ops(Mt, Mr, N, K), False),
        "Bartlett (grid)": (lambda H: angle_angle_delay_bartlett(H, rx, tx, K, a, d, t, df, grid_only=True),
                            bartlett_separable_ops(Mt, Mr, N, **G), True),
        "MUSIC (grid)": (lambda H: angle_angle_delay_music(H, rx, tx, K, a, d, t, df, grid_only=True, rx_subarray=5,
                                                          tx_subarray=4, subband=16),
                         music_smoothed_ops(Mt, Mr, N, K, (5, 4, 16), **G), True),
        "DML (AP, grid)": (lambda H: angle_angle_delay_dml(H, rx, tx, K, a, d, t, df, grid_only=True),
                           dml_ap_ops(Mt, Mr, N, K, 2, **G), True),
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--grid-batch", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--snr", type=float, default=20.0)
    ap.add_argument("--methods", default="all", help="comma-separated names, or 'all'")
    ap.add_argument("--model-dir", default=None)
    ap.add_argument("--quick", action="store_true", help="tiny sizes (CI): coarse grids, batch 4")
    ap.add_argument("--sweep", default="1,4,16,64,256,1024",
                    help="batch sizes for PARAMING's throughput-vs-batch curve (comma-separated; '' to skip)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    sc = ScenarioConfig()
    if args.quick:
        args.batch, args.grid_batch, args.repeats, args.sweep = min(args.batch, 4), 1, 1, "1,4"
    g = make_generator(0, "bench-bistatic")
    p = sample_paths(sc, args.batch, g)
    H, _, _ = observe(sc, channel(sc, p), args.snr, g)
    table = methods(sc, args.quick, args.model_dir)
    names = ([m for m in table if not (args.quick and m == "PARAMING (full SVD)")] if args.methods == "all"
             else [m.strip() for m in args.methods.split(",")])
    rows = []
    for name in names:
        fn, ops, grid = table[name]
        B = args.grid_batch if grid else args.batch
        rep = 1 if grid else args.repeats
        one_wall, one_cpu = _timed(lambda: fn(H[0]), rep)
        loop_wall, _ = _timed(lambda: [fn(H[i]) for i in range(B)], 1)
        many_wall, many_cpu = _timed(lambda: fn(H[:B]), rep)
        row = dict(method=name, batch=B, latency_ms=1e3 * one_wall, latency_cpu_ms=1e3 * one_cpu,
                   loop_per_s=B / loop_wall, batched_per_s=B / many_wall, speedup=loop_wall / many_wall,
                   cpu_ms_per_scene=1e3 * many_cpu / B, ops_per_scene=ops)
        rows.append(row)
        print(f"{name:18s} batch-1 {row['latency_ms']:9.2f} ms  loop {row['loop_per_s']:9.2f}/s  "
              f"batched {row['batched_per_s']:9.2f}/s  x{row['speedup']:5.2f}  cpu {row['cpu_ms_per_scene']:8.2f} ms/scene  "
              f"ops {ops:.3g}", flush=True)
    sweep = []
    sizes = [int(b) for b in args.sweep.split(",") if b.strip()]
    if sizes and "PARAMING" in names:
        # throughput vs batch size: where batching stops paying (one call per size, best of repeats)
        Hs, _, _ = observe(sc, channel(sc, sample_paths(sc, max(sizes), g)), args.snr, g)
        fn = table["PARAMING"][0]
        for b in sizes:
            wall, cpu = _timed(lambda: fn(Hs[:b]), args.repeats)
            sweep.append(dict(batch=b, per_s=b / wall, cpu_ms_per_scene=1e3 * cpu / b))
            print(f"PARAMING batch {b:5d}: {b / wall:9.2f} scenes/s  cpu {1e3 * cpu / b:8.2f} ms/scene", flush=True)
    meta = dict(threads=args.threads, torch=torch.__version__, machine=platform.processor() or platform.machine(),
                scenario=sc.describe(), snr_db=args.snr, quick=args.quick,
                note="wall times on a shared machine are inflated by other processes; cpu_ms_per_scene is process CPU time")
    out = {"meta": meta, "rows": rows, "paraming_batch_sweep": sweep}
    if args.out:
        d = Path(args.out)
        d.mkdir(parents=True, exist_ok=True)
        stem = "bench_bistatic_quick" if args.quick else "bench_bistatic"
        (d / f"{stem}.json").write_text(json.dumps(out, indent=1))
        lines = ["| method | batch | latency batch-1 (ms) | loop (scenes/s) | batched (scenes/s) | speedup | CPU ms/scene | ops/scene |",
                 "|---|---:|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {r['method']} | {r['batch']} | {r['latency_ms']:.3g} | {r['loop_per_s']:.3g} | {r['batched_per_s']:.3g} "
                  f"| {r['speedup']:.2f} | {r['cpu_ms_per_scene']:.3g} | {r['ops_per_scene']:.3g} |" for r in rows]
        if sweep:
            lines += ["", "PARAMING throughput vs batch size:", "",
                      "| batch | scenes/s | CPU ms/scene |", "|---:|---:|---:|"]
            lines += [f"| {r['batch']} | {r['per_s']:.3g} | {r['cpu_ms_per_scene']:.3g} |" for r in sweep]
        (d / f"{stem}.md").write_text("\n".join(lines) + "\n")
    return out


if __name__ == "__main__":
    main()
