"""S4 (seed 004) speed benchmark: benchmark design, ML estimation and autoencoder cost.

Measures (wall time, after one warm-up call):

* ``power_allocation``: CRB-optimal power allocation (SLSQP, worst-case CRB on a 41-angle grid)
  for one 20-beam codebook, seconds per sector;
* ``ml_aod``: batched ML AoD (256-point grid + parabolic refinement), trials per second;
* ``ml_position``: bearing-intersection ML position, trials per second;
* ``aod_crb`` / ``peb``: bounds per second (batched over angles / positions);
* ``ae_train_step``: one Adam step of the AoD and position autoencoders (batch B, hidden H);
* ``ae_finetune_step``: one decoder-only Adam step of the HYBRID AoD and position
  autoencoders (precoder frozen; includes the windowed ML AoD / bearing-intersection guess);
* ``ae_inference``: AoD autoencoder forward pass, trials per second.

Usage:
    python benchmarks/bench_positioning.py                 # H = 256, B = 10 000 (seed sizes)
    python benchmarks/bench_positioning.py --quick         # H = 64, B = 1 000 (CI)
    python benchmarks/bench_positioning.py --device cuda

Writes a JSON line per measurement to stdout (and ``--out FILE`` if given).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from isackit.bounds.aod import aod_crb, crb_optimal_precoder, optimal_power_allocation, position_peb
from isackit.estimators.positioning import ml_aod, ml_position
from isackit.learning.positioning import (
    AoDAutoencoder,
    PositionAutoencoder,
    draw_gains,
    hybrid_from,
    observe,
    train_autoencoder,
)
from isackit.learning.training import TrainingConfig
from isackit.signals.precoders import derivative_codebook
from isackit.systems.positioning.scenario import (
    PositioningConfig,
    build_arrays,
    local_aods,
    sample_aod_batch,
    sample_position_batch,
)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, repeats: int = 3) -> float:
    fn()  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    _sync(device)
    return (time.perf_counter() - t0) / repeats


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    hidden, batch, trials = (64, 1000, 2000) if args.quick else (256, 10_000, 20_000)
    cfg = PositioningConfig()
    arrays = [a.to(device) for a in build_arrays(cfg, "coupling")]
    ideal = arrays[0].ideal()
    sec = cfg.eval_sectors()[0]
    results: list[dict] = []

    def record(name: str, seconds: float, **extra) -> None:
        row = dict(name=name, seconds=seconds, device=str(device), threads=torch.get_num_threads(), **extra)
        results.append(row)
        print(json.dumps(row))

    C = derivative_codebook(ideal, sec, cfg.num_transmissions)
    record("power_allocation", timed(lambda: optimal_power_allocation(C, ideal, sec), device, 2), per="sector")

    F, _ = crb_optimal_precoder(ideal, sec, cfg.num_transmissions)
    F = F.to(device=device, dtype=torch.complex64)
    g = torch.Generator(device=device).manual_seed(0)
    theta = (sec[0] + (sec[1] - sec[0]) * torch.rand(trials, dtype=torch.float64)).float().to(device)
    a = arrays[0].steering(theta.unsqueeze(-1))[..., 0].to(device)
    y = observe(F, a, draw_gains(20.0, (trials,), g, torch.complex64, device), g)
    s = sec.float().to(device)
    t = timed(lambda: ml_aod(y, F, ideal, s), device)
    record("ml_aod", t, trials_per_s=trials / t, trials=trials)

    q, psi = cfg.bs_tensor(torch.float32, device)
    gp = torch.Generator().manual_seed(1)
    pos = torch.tensor(cfg.prior_centre) + cfg.prior_side * (torch.rand(trials, 2, generator=gp) - 0.5)
    th2 = (local_aods(pos, q.cpu(), psi.cpu()) + 1e-3 * torch.randn(trials, 2, generator=gp)).to(device)
    t = timed(lambda: ml_position(th2, torch.full_like(th2, 1e-4), q, psi), device)
    record("ml_position", t, trials_per_s=trials / t, trials=trials)

    F64 = F.to(torch.complex128).cpu()
    th64 = theta.double().cpu()[:1000]
    t = timed(lambda: aod_crb(F64.expand(1000, *F64.shape), arrays[0], th64, 20.0), torch.device("cpu"))
    record("aod_crb", t, per_s=1000 / t)
    q64, psi64 = cfg.bs_tensor()
    P = torch.tensor(cfg.prior_centre, dtype=torch.float64) + torch.rand(200, 2, dtype=torch.float64) - 0.5
    F2 = F64.expand(200, 2, *F64.shape)
    t = timed(lambda: position_peb(F2, arrays, P, q64, psi64, 20.0), torch.device("cpu"))
    record("peb", t, per_s=200 / t)

    for kind in ("aod", "position"):
        if kind == "aod":
            model = AoDAutoencoder(2, cfg.num_antennas, cfg.num_transmissions, hidden).to(device)

            def sample(b, gen):
                sc, th = sample_aod_batch(cfg, b, gen, device=device)
                return sc, th, th
        else:
            model = PositionAutoencoder(2, cfg.num_antennas, cfg.num_transmissions, cfg.prior_centre,
                                        cfg.prior_side, hidden).to(device)

            def sample(b, gen):
                p, th, sc = sample_position_batch(cfg, b, gen, device=device)
                return sc, th, p
        steps = 3
        tc = TrainingConfig(steps=steps, batch_size=batch, scheduler="cosine", final_lr_fraction=1e-5)
        log = train_autoencoder(model, sample, arrays, 20.0, tc, g)
        record(f"ae_train_step_{kind}", log.seconds / steps, hidden=hidden, batch=batch)
        q_, psi_ = cfg.bs_tensor()
        hyb = hybrid_from(model.cpu(), bs_positions=q_.tolist(), bs_orientations=psi_.tolist()).to(device)
        log = train_autoencoder(hyb, sample, arrays, 20.0, tc, g, train_precoder=False)
        record(f"ae_finetune_step_{kind}", log.seconds / steps, hidden=hidden, batch=batch)

    model = AoDAutoencoder(2, cfg.num_antennas, cfg.num_transmissions, hidden).to(device)
    sc, th = sample_aod_batch(cfg, trials, g, device=device)
    with torch.no_grad():
        t = timed(lambda: model(sc, th, arrays, 20.0, g), device)
    record("ae_inference", t, trials_per_s=trials / t, hidden=hidden)
    if args.out:
        args.out.write_text("\n".join(json.dumps(r) for r in results) + "\n")
    return results


if __name__ == "__main__":
    main()
