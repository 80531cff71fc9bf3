"""S4 (seed 004): the MODEL-BASED benchmark at low SNR — why its RMSE leaves the bound below ~10 dB.

Evaluates the benchmark exactly as the ``positioning`` experiment does (its ``_Setup``: CRB-optimal
codebook precoders for the evaluation sectors / the position sectors θ_i ± 15°, ``ml_aod`` with the
experiment's grid, ``ml_position`` with CRB weights and the prior box), no impairments, and adds
diagnostics of the ML threshold effect:

* per-BS AoD RMSE / CRB, fraction of outliers |θ̂ - θ| > 3 sqrt(CRB), RMSE / CRB without them;
* the exact concentrated likelihood P(θ) = |yᴴFᵀa(θ)|²/‖Fᵀa(θ)‖² (``ml_aod_spectrum``) at the
  estimate vs at the truth (an outlier with P(θ̂) ≥ P(θ) is the ML estimator's own, not a search
  failure) and vs the maximum over a 20 001-point grid of the sector (search failures);
* position RMSE / PEB (the PEB at the same evaluation position as every trial), and the same ratio
  over the trials where neither AoD is an outlier.

Usage:  OMP_NUM_THREADS=2 python benchmarks/positioning_benchmark_low_snr.py --trials 4000 \
            --out benchmarks/results/positioning_benchmark_low_snr.json
``--orientations 90 80`` re-runs the position panel with other BS orientations (degrees).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from isackit.bounds.aod import aod_crbs, position_peb
from isackit.estimators.positioning import ml_aod, ml_aod_spectrum, ml_position
from isackit.experiments.plugins.positioning import PositioningExperimentConfig, _Setup
from isackit.learning.positioning import draw_gains, observe
from isackit.learning.positioning import station_responses as true_steering
from isackit.seeding import make_generator
from isackit.systems.positioning.scenario import PositioningConfig, sample_aod_batch


def _fine_max(y: torch.Tensor, F: torch.Tensor, array, sector: torch.Tensor, points: int = 20001,
              chunk: int = 25) -> torch.Tensor:
    """max over a fine grid of the sector of ml_aod_spectrum (same formula, chunked over trials)."""
    grid = sector[0] + (sector[1] - sector[0]) * torch.linspace(0, 1, points, dtype=torch.float64)
    return torch.cat([ml_aod_spectrum(y[k:k + chunk], F, array, grid).max(-1).values
                      for k in range(0, y.shape[0], chunk)])


def _aod_diagnostics(y, F, array, sector, theta, theta_hat, crb) -> dict:
    err = theta_hat - theta
    out = (err.abs() > 3 * crb.sqrt())
    p_true = ml_aod_spectrum(y, F, array, theta.unsqueeze(-1)).squeeze(-1)
    p_est = ml_aod_spectrum(y, F, array, theta_hat.unsqueeze(-1)).squeeze(-1)
    p_fine = _fine_max(y, F, array, sector)
    inl = err[~out]
    return dict(
        rmse_deg=math.degrees(float(err.pow(2).mean().sqrt())),
        crb_deg=math.degrees(float(crb.mean().sqrt())),
        ratio=float(err.pow(2).mean().sqrt() / crb.mean().sqrt()),
        outlier_fraction=float(out.double().mean()),
        inlier_ratio=float(inl.pow(2).mean().sqrt() / crb[~out].mean().sqrt()) if inl.numel() else float("nan"),
        outliers_with_higher_likelihood_than_truth=float((p_est[out] >= p_true[out]).double().mean())
        if out.any() else float("nan"),
        trials_with_lower_likelihood_than_truth=float((p_est < p_true * (1 - 1e-9)).double().mean()),
        trials_short_of_fine_grid_max_rel_1e6=float(((p_fine - p_est) / p_fine > 1e-6).double().mean()),
        max_relative_shortfall_vs_fine_grid=float(((p_fine - p_est) / p_fine).max()),
        at_sector_edge_fraction=float(((theta_hat - sector[0]).abs() < 1e-9).double().mean()
                                      + ((theta_hat - sector[1]).abs() < 1e-9).double().mean()),
    )


def aod_panel(cfg, setup, snr_db: float, trials: int, g: torch.Generator) -> dict:
    """θ ~ U(evaluation sector) per BS, as ``experiment._aod_rows``; CRB averaged over the draws."""
    sc, I = setup.scenario, setup.scenario.num_bs
    _, theta = sample_aod_batch(sc, trials, g, mode="eval", dtype=torch.float64)
    y = observe(setup.F_aod, true_steering(setup.arrays, theta), draw_gains(snr_db, (trials, I), g, torch.complex128), g)
    th = torch.stack([ml_aod(y[:, i], setup.F_aod[i], setup.ideal[i], setup.aod_sectors[i], cfg.evaluation.ml_grid)
                      for i in range(I)], -1)
    crb = aod_crbs(setup.F_aod.expand(trials, *setup.F_aod.shape), setup.arrays, theta, snr_db)
    return {f"bs{i + 1}": _aod_diagnostics(y[:, i], setup.F_aod[i], setup.ideal[i], setup.aod_sectors[i],
                                            theta[:, i], th[:, i], crb[:, i]) for i in range(I)}


def position_panel(cfg, setup, snr_db: float, trials: int, g: torch.Generator) -> dict:
    """Evaluation position, sectors θ_i ± 15°, as ``experiment._position_rows``."""
    sc, I = setup.scenario, setup.scenario.num_bs
    theta = setup.theta_p.expand(trials, I)
    y = observe(setup.F_pos, true_steering(setup.arrays, theta), draw_gains(snr_db, (trials, I), g, torch.complex128), g)
    th = torch.stack([ml_aod(y[:, i], setup.F_pos[i], setup.ideal[i], setup.pos_sectors[i], cfg.evaluation.ml_grid)
                      for i in range(I)], -1)
    crb = aod_crbs(setup.F_pos, setup.arrays, setup.theta_p, snr_db).expand(trials, I)
    half = sc.prior_side / 2
    c = torch.tensor(sc.prior_centre, dtype=torch.float64)
    box = torch.stack([c - half, c + half])
    p = ml_position(th, aod_crbs(setup.F_pos, setup.ideal, setup.theta_p, snr_db).expand(trials, I),
                    setup.q, setup.psi, box=box)
    e = (p - setup.p).norm(dim=-1)
    peb = float(position_peb(setup.F_pos, setup.arrays, setup.p, setup.q, setup.psi, snr_db))
    clean = ~((th - theta).abs() > 3 * crb.sqrt()).any(-1)
    res = {f"aod_bs{i + 1}": _aod_diagnostics(y[:, i], setup.F_pos[i], setup.ideal[i], setup.pos_sectors[i],
                                              theta[:, i], th[:, i], crb[:, i]) for i in range(I)}
    res.update(position_rmse_m=float(e.pow(2).mean().sqrt()), peb_m=peb, ratio=float(e.pow(2).mean().sqrt()) / peb,
               trials_with_an_outlier=float((~clean).double().mean()),
               ratio_without_outlier_trials=float(e[clean].pow(2).mean().sqrt()) / peb,
               median_error_over_peb=float(e.median()) / peb)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--snrs", type=float, nargs="+", default=[0.0, 5.0, 10.0])
    ap.add_argument("--trials", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--orientations", type=float, nargs="+", default=None, help="BS orientations (deg)")
    ap.add_argument("--panels", nargs="+", default=["aod", "position"])
    ap.add_argument("--out", default="benchmarks/results/positioning_benchmark_low_snr.json")
    args = ap.parse_args()
    cfg = PositioningExperimentConfig(experiment="positioning")
    sc = PositioningConfig() if args.orientations is None else PositioningConfig(
        bs_orientations_deg=list(args.orientations))
    setup = _Setup(cfg, sc)
    info = dict(theta_eval_position_deg=torch.rad2deg(setup.theta_p).tolist(),
                position_sectors_deg=torch.rad2deg(setup.pos_sectors).tolist(),
                aod_sectors_deg=torch.rad2deg(setup.aod_sectors).tolist())
    table, t0 = [], time.perf_counter()
    for snr in args.snrs:
        g = make_generator(args.seed, "positioning_benchmark_low_snr", snr)
        rec = dict(snr_db=snr)
        if "aod" in args.panels:
            rec["aod_panel"] = aod_panel(cfg, setup, snr, args.trials, g)
        if "position" in args.panels:
            rec["position_panel"] = position_panel(cfg, setup, snr, args.trials, g)
        table.append(rec)
        print(json.dumps(rec, indent=None), flush=True)
    out = dict(settings=vars(args), scenario=sc.model_dump(mode="json"), geometry=info, ml_grid=cfg.evaluation.ml_grid,
               wall_seconds=time.perf_counter() - t0, table=table)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
