"""Statistical checks of PARAMING and RootMUSIC-2D on the spec's fixed scene "S3" (seed 001).

``shared/design/s1-bistatic.md`` §5.2, checks 8-10 and 12: three unit-gain paths at
(θ, φ, τ/T_res) = (2.3°, -1.4°, 6.35), (31.1°, 27.9°, 12.29), (58.7°, 61.2°, 21.51), gain phases
(0.3, 2.0, -1.1) rad, Table I numerology, orthogonal pilots (LS CSI error CN(0, σ²/L)),
SNR = M_t Σ|α|²/σ².  For each SNR: per-path RMSE/√CRB of θ, φ, τ for PARAMING (both phase
fits) and of θ, φ for RootMUSIC-2D, after matching the estimates to the paths by optimal
assignment.  Prints a table and writes JSON with ``--out``.

    OMP_NUM_THREADS=1 python benchmarks/bistatic_s3_checks.py --trials 300 --snrs -20,-15,-10,0,10,20,30
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch

from isackit.bounds.channel import crb_bistatic
from isackit.estimators import root_music_2d
from isackit.estimators.parametric import paraming
from isackit.metrics import match_estimates
from isackit.seeding import make_generator
from isackit.systems.bistatic import Paths, ScenarioConfig, arrays, channel, observe

S3 = [(2.3, -1.4, 6.35), (31.1, 27.9, 12.29), (58.7, 61.2, 21.51)]
PHASES = [0.3, 2.0, -1.1]


def s3_paths(sc: ScenarioConfig, trials: int) -> Paths:
    d = torch.tensor(S3, dtype=torch.float64)
    g = torch.polar(torch.ones(3, dtype=torch.float64), torch.tensor(PHASES, dtype=torch.float64))
    z = torch.zeros(3, dtype=torch.float64)
    ex = lambda x: x.expand(trials, 3).clone()  # noqa: E731
    return Paths(ex(torch.deg2rad(d[:, 0])), ex(torch.deg2rad(d[:, 1])), ex(d[:, 2] * sc.delay_resolution),
                 ex(g), ex(z))


def run(trials: int, snrs: list[float], seed: int = 0) -> list[dict]:
    sc = ScenarioConfig()
    rx, tx = arrays(sc)
    p = s3_paths(sc, trials)
    H = channel(sc, p)
    truth = p.truth[0].clone()
    truth[:, 2] /= sc.delay_resolution
    w = torch.tensor([20.0, 20.0, 1.0], dtype=torch.float64)
    out = []
    for snr in snrs:
        g = make_generator(seed, "s3", snr)
        Hhat, _, s2 = observe(sc, H, snr, g)
        crb = crb_bistatic(rx, tx, p.aoa[0], p.aod[0], p.delay[0], p.gain[0], sc.ofdm, float(s2[0]),
                           num_pilots=sc.symbols_per_subframe)
        root = torch.stack([crb.variance("aoa"), crb.variance("aod"),
                            crb.variance("delay") / sc.delay_resolution ** 2]).sqrt().T  # (K, 3)
        rec = {"snr_db": snr, "sqrt_crb": root.tolist()}
        for mode in ("rank1", "direct"):
            e = paraming(Hhat, rx, tx, 3, sc.subcarrier_spacing_hz, phase_fit=mode).estimates.clone()
            e[..., 2] /= sc.delay_resolution
            m = match_estimates(e, truth.expand_as(e), weights=w)
            rmse = (m - truth).pow(2).nanmean(0).sqrt()
            rec[f"paraming_{mode}"] = (rmse / root).tolist()
            rec[f"paraming_{mode}_miss"] = float(torch.isnan(m).any(-1).double().mean())
        r = root_music_2d(Hhat, 3).estimates
        m = match_estimates(r, truth[:, :2].expand_as(r), weights=w[:2])
        rec["root_music_2d"] = ((m - truth[:, :2]).pow(2).nanmean(0).sqrt() / root[:, :2]).tolist()
        out.append(rec)
        print(f"{snr:6.1f} dB  PARAMING rank1 θ/φ/τ per path: "
              + "  ".join("/".join(f"{v:.2f}" for v in row) for row in rec["paraming_rank1"])
              + "  | direct: " + "  ".join("/".join(f"{v:.2f}" for v in row) for row in rec["paraming_direct"])
              + "  | RootMUSIC-2D θ/φ: " + "  ".join("/".join(f"{v:.2f}" for v in row) for row in rec["root_music_2d"]),
              flush=True)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=300)
    ap.add_argument("--snrs", default="-20,-15,-10,0,10,20,30")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    rows = run(args.trials, [float(s) for s in args.snrs.split(",")])
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "bistatic_s3_checks.json").write_text(json.dumps({"trials": args.trials, "rows": rows}, indent=1))
    return rows


if __name__ == "__main__":
    main()
