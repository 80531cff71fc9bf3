"""S4 (seed 004): accuracy of the LEARNED system vs its own bounds at an affordable training size.

Trains (or reloads) the autoencoders needed for the issue's "Must show" claims on the learned
system and evaluates them through the ``positioning`` experiment's own sweep units
(:meth:`PositioningExperiment.run_unit`, panel ``snr``), so the numbers are exactly what the
experiment reports:

* no impairment: learned AoD RMSE / CRB (per BS, θ ~ U(evaluation sector)) and position
  RMSE / PEB (at the evaluation position) at 5, 10, …, 30 dB;
* coupling and spacing errors (σ_λ = λ/100): the same ratios at 30 dB.

Bounds: CRB / PEB of the LEARNED precoder with the TRUE (impaired) arrays; RMSE from
``--trials`` fresh test trials (fresh θ, gains, noise; the unit generators are independent of
every training generator).  Training: the seed's end-to-end autoencoder (``hidden``, batch,
steps below; warm-started along the SNR list for the unimpaired case), then with
``--decoder hybrid`` the precoders are frozen and the hybrid correction decoder (see
``isackit.learning.positioning``) is fine-tuned.  Impaired scenarios are trained at
30 dB only (from scratch).

Usage (one thread, as measured for the report):

    OMP_NUM_THREADS=1 python benchmarks/positioning_learned_accuracy.py \
        --out benchmarks/results/positioning_learned_accuracy

writes ``<out>.json`` (settings, wall times, every row) and ``<out>.csv`` (ratios).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import time
from pathlib import Path

import torch

from isackit.experiments.registry import resolve_spec
from isackit.experiments.units import WorkUnit, aggregate_rows, unit_seed

METRICS = {"aod_bs1": ("aod_rmse_deg_bs1", "CRB (learned)"), "aod_bs2": ("aod_rmse_deg_bs2", "CRB (learned)"),
           "position": ("position_rmse_m", "PEB (learned)")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--snrs", type=float, nargs="+", default=[5.0, 10.0, 15.0, 20.0, 25.0, 30.0])
    ap.add_argument("--impaired-snr", type=float, default=30.0)
    ap.add_argument("--impairments", nargs="+", default=["none", "coupling", "spacing"])
    ap.add_argument("--decoder", choices=["seed", "hybrid"], default="hybrid")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=1000, help="first (from-scratch) model of a chain")
    ap.add_argument("--warm-steps", type=int, default=300, help="each warm-started higher-SNR model")
    ap.add_argument("--finetune-steps", type=int, default=400)
    ap.add_argument("--finetune-batch", type=int, default=1000)
    ap.add_argument("--finetune-lr", type=float, default=3e-4)
    ap.add_argument("--trials", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--model-dir", default="positioning-accuracy", help="folder inside the model cache")
    ap.add_argument("--out", default="benchmarks/results/positioning_learned_accuracy")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    settings = {"training.hidden": args.hidden, "training.batch": args.batch, "training.steps": args.steps,
                "training.warm_steps": args.warm_steps, "training.repeats": 10, "training.sectors": "eval",
                "training.decoder": args.decoder, "training.finetune_steps": args.finetune_steps,
                "training.finetune_batch": args.finetune_batch, "training.finetune_lr": args.finetune_lr,
                "training.model_dir": args.model_dir, "trials": args.trials, "chunk": args.trials,
                "evaluation.panels": ["snr"], "training.warm_start": True}
    table, raw, t_all = [], [], time.perf_counter()
    for imp in args.impairments:
        snrs = args.snrs if imp == "none" else [args.impaired_snr]
        over = dict(settings, **{"evaluation.impairments": [imp], "evaluation.snr_db": snrs, "training.snr_db": snrs})
        spec = resolve_spec("positioning", overrides=list(over.items()))
        exp, cfg = spec.experiment(), spec.config
        for i, pt in enumerate(exp.points(cfg)):
            t0 = time.perf_counter()
            unit = WorkUnit(i, pt, 0, args.trials, unit_seed(cfg.seed, "positioning-accuracy", pt, 0))
            rows = exp.run_unit(cfg, unit, torch.device("cpu"))
            agg = aggregate_rows(rows)
            rec = dict(impairment=imp, snr_db=pt["x"], seconds=round(time.perf_counter() - t0, 1))
            for name, (metric, bound) in METRICS.items():
                rmse, bnd = agg[("learned", metric)][0], agg[(bound, metric)][0]
                rec[f"{name}_rmse"], rec[f"{name}_bound"], rec[f"{name}_ratio"] = rmse, bnd, rmse / bnd
                rec[f"{name}_benchmark_ratio"] = agg[("benchmark", metric)][0] / agg[(bound.replace(
                    "learned", "benchmark"), metric)][0]
            table.append(rec)
            raw += [dict(impairment=imp, snr_db=pt["x"], **r.to_dict()) for r in rows]
            print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in rec.items()}), flush=True)
    wall = time.perf_counter() - t_all
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(dict(settings=vars(args), wall_seconds=wall, table=table,
                                                        rows=raw), indent=1))
    with out.with_suffix(".csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(table[0]))
        w.writeheader()
        w.writerows(table)
    print(f"wall {wall:.0f} s -> {out.with_suffix('.json')}, {out.with_suffix('.csv')}")
    if not all(math.isfinite(r["position_ratio"]) for r in table):
        raise SystemExit("non-finite result")


if __name__ == "__main__":
    main()
