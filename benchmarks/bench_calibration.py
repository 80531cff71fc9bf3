"""Training throughput and peak memory of S0 calibration at the seed's sizes (64 × 64, N = 256).

One scene = one received OFDM frame with its targets (and the UE link): simulation of the
observation, forward (OMP picks + relaxation + losses), backward and the optimiser step, run
by the training loop the experiment uses (``train_calibration`` → ``isackit.learning.training.fit``),
timed after two warm-up steps.

Cases:
* ``single``: 1 target, 1 OMP iteration, 100 × 100 searched angle × range points;
* ``multi``: 1–5 targets, 5 OMP iterations, a 720-point angle grid over [-75°, 75°] (0.21°)
  searched over the prior sector (+2° margins) × 200 range points (the receiver's default);
* ``multi_full``: the same with every one of the 720 × 200 grid points searched in every
  OMP iteration (the receiver ignores the prior sector).

Each case runs in a fresh subprocess so that its peak RSS (``resource.getrusage``; torch's
allocations are invisible to tracemalloc) is its own.  Targets from the task: ≥ 450 scenes/s
(single), ≥ 250 scenes/s and < 4 GiB at 128 scenes per batch (multi), on 2 CPU cores.

Usage::

    python benchmarks/bench_calibration.py [--threads 2] [--batch 128] [--steps 10]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def case_config(name: str, batch: int, quick: bool = False):
    from isackit.systems.calibration.config import CalibrationConfig

    if quick:  # a smoke-test size (CI): the code path, not the figures
        multi = name != "single"
        return CalibrationConfig.model_validate({
            "scenario": {"num_tx": 8, "num_rx": 8, "num_subcarriers": 16, "max_targets": 3 if multi else 1},
            "receiver": {"threshold_frames": 64, "omp_iterations": 3 if multi else 1, "num_angle_grid": 61,
                         "num_range_grid": 16, "search_margin_deg": 180.0 if name == "multi_full" else 2.0},
            "training": {"batch_size": batch}})
    scenario = {"num_tx": 64, "num_rx": 64, "num_subcarriers": 256}
    if name == "single":
        # W = 100 searched angles: the window spans 24° => step 24°/99 over a 150° grid
        return CalibrationConfig.model_validate({
            "scenario": {**scenario, "min_targets": 1, "max_targets": 1},
            "receiver": {"threshold_frames": 256, "omp_iterations": 1,
                         "num_angle_grid": int(round(150 / (24 / 99))) + 1, "num_range_grid": 100},
            "training": {"batch_size": batch}})
    # multi_full: a search margin wider than the grid: the window is the whole grid
    return CalibrationConfig.model_validate({
        "scenario": {**scenario, "min_targets": 1, "max_targets": 5},
        "receiver": {"threshold_frames": 256, "omp_iterations": 5, "num_angle_grid": 720, "num_range_grid": 200,
                     "search_margin_deg": 180.0 if name == "multi_full" else 2.0},
        "training": {"batch_size": batch}})


class _PreDrawn:
    """The station as the learner's world, with the scenes of every step drawn beforehand (the
    benchmark times simulation + forward + backward + optimiser step, not the prior draws)."""

    def __init__(self, station, scenes):
        self.station, self.scenes = station, list(scenes)

    def draw_scenes(self, batch, generator):
        return self.scenes.pop(0)

    def sense(self, f, scenes, generator):
        return self.station.sense(f, scenes, generator)

    def ue_receive(self, f, scenes, generator):
        return self.station.ue_receive(f, scenes, generator)


def child(name: str, threads: int, batch: int, steps: int, quick: bool = False) -> None:
    import torch

    torch.set_num_threads(threads)
    from isackit.systems.calibration.config import updated
    from isackit.systems.calibration.methods import build_transceiver
    from isackit.systems.calibration.station import Station
    from isackit.systems.calibration.training import train_calibration
    from isackit.systems.calibration.transceiver import calibrate_threshold

    cfg = case_config(name, batch, quick)
    warm = 2
    cfg = updated(cfg, training=updated(cfg.training, steps=steps + warm, log_every=steps + warm))
    st = Station(cfg.scenario, 0)
    tr = build_transceiver("unsupervised_residual", cfg)
    calibrate_threshold(tr, st.draw_scenes(256, torch.Generator().manual_seed(0)), torch.Generator().manual_seed(1))
    gen = torch.Generator().manual_seed(2)
    world = _PreDrawn(st, [st.draw_scenes(batch, gen) for _ in range(steps + warm)])
    stamps = {}

    def progress(done, total, what):   # the time after the warm-up steps and after the last
        if done in (warm, total):
            stamps[done] = time.perf_counter()

    train_calibration(tr, world, progress=progress)       # the one loop (fit), as the experiment runs it
    dt = stamps[steps + warm] - stamps[warm]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB (Linux)
    print(json.dumps({"case": name, "quick": quick, "threads": threads, "batch": batch, "steps": steps,
                      "window": tr.grid.window, "range_points": cfg.receiver.num_range_grid,
                      "angle_grid": cfg.receiver.num_angle_grid, "scenes_per_s": batch * steps / dt,
                      "peak_rss_gib": rss}))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--cases", default="single,multi,multi_full")
    ap.add_argument("--quick", action="store_true", help="tiny sizes (smoke test; figures meaningless)")
    ap.add_argument("--out", default=None, help="folder for bench_calibration[_quick].json")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        child(a.child, a.threads, a.batch, a.steps, a.quick)
        return {}
    targets = {"single": (450.0, None), "multi": (250.0, 4.0), "multi_full": (250.0, 4.0)}
    rows = []
    for name in a.cases.split(","):
        cmd = [sys.executable, __file__, "--child", name, "--threads", str(a.threads), "--batch", str(a.batch),
               "--steps", str(a.steps)] + (["--quick"] if a.quick else [])
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        tput, mem = targets[name]
        r.update(target_scenes_per_s=tput, target_peak_rss_gib=mem)
        rows.append(r)
        print(f"{name:10s}: {r['scenes_per_s']:7.1f} scenes/s (target >= {tput:g}), peak RSS "
              f"{r['peak_rss_gib']:.2f} GiB" + (f" (target < {mem:g})" if mem else "")
              + f"; searched {r['window']} of {r['angle_grid']} angles x {r['range_points']} ranges,"
              f" batch {r['batch']}, {r['threads']} threads" + (" [quick]" if a.quick else ""))
    result = {"rows": rows}
    if a.out:
        from pathlib import Path

        d = Path(a.out)
        d.mkdir(parents=True, exist_ok=True)
        (d / f"bench_calibration{'_quick' if a.quick else ''}.json").write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
