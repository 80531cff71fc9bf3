"""S2 (seed 002, MoD-DNN) speed benchmark: training and inference throughput of every method.

Measures (wall time after one warm-up call, ``--repeats`` timed calls, the median kept):

* ``train``: samples per second of one optimiser step (forward + backward + Adam) of the
  multi-task autoencoder, one subregion's MoDL-SSR, DeepMUSIC and the CNN regressor, at batch
  ``--batch`` (the seed's 64);
* ``inference``: samples per second of each method on a batch of ``--samples`` CSI samples
  (MUSIC / DBF on the 0.1° grid, DeepMUSIC, the CNN, MoD-DNN with branch routing), and the
  latency of ONE sample (ms), Table 4's "test time", as wall time and as process CPU time
  (the latter is the meaningful one on a shared machine);
* ``flops``: FLOPs of one inference (``torch.utils.flop_counter``).

Sizes: the seed's (I = 10 unrolled iterations, DeepMUSIC 256 filters / 1024 hidden, CNN
32-64-128 / 256) by default; ``--quick`` uses the quick profile's (autoencoder d_c = 64, I = 1,
DeepMUSIC 32 / 256, CNN 16-32-32 / 128) and fewer samples.  Weights are untrained (speed does not depend on them).

Usage:
    python benchmarks/bench_direction_finding.py [--quick] [--threads 1] [--out DIR]

Writes JSON lines to stdout and, with ``--out``, ``bench_direction_finding[_quick].json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from isackit.learning.mod_dnn import (
    CNNRegressor,
    DeepMUSIC,
    MoDDNN,
    MultiTaskAutoencoder,
    build_subregion_ssr,
    csi_to_real,
    inference_flops,
    normalize_csi,
)
from isackit.systems.direction_finding import ScenarioConfig, grid_dataset, make_device
from isackit.systems.direction_finding.models import TrainedModels, estimate, subregion_dictionaries


def _time(fn, repeats: int, clock=time.perf_counter) -> float:
    fn()  # warm-up
    ts = []
    for _ in range(repeats):
        t0 = clock()
        fn()
        ts.append(clock() - t0)
    return statistics.median(ts)


def _train_rate(model, loss_fn, batch: int, repeats: int) -> float:
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()

    def step():
        opt.zero_grad()
        loss_fn().backward()
        opt.step()

    return batch / _time(step, repeats)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--samples", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    quick = args.quick
    samples = args.samples or (64 if quick else 512)
    repeats = args.repeats or (2 if quick else 5)
    I = 1 if quick else 10
    sizes = dict(dm=(32, 256) if quick else (256, 1024), cnn=((16, 32, 32), 128) if quick else ((32, 64, 128), 256))
    torch.manual_seed(0)
    sc = ScenarioConfig()
    dev = make_device(sc, 0, 0)
    data = grid_dataset(dev, sc, 1, 10.0, torch.Generator().manual_seed(0), angle_index=torch.randperm(
        1201, generator=torch.Generator().manual_seed(1))[:samples])
    H = normalize_csi(data.csi)
    R = (H @ H.mH / 16)
    dicts, grids = subregion_dictionaries(sc, dev.assumed_array)
    ae = MultiTaskAutoencoder(hidden=64 if quick else 16)
    ssr = build_subregion_ssr(dicts, iterations=I, cg_iterations=10)
    models = TrainedModels(autoencoder=ae, moddnn=MoDDNN(ae, ssr, dicts, grids).eval(),
                           deepmusic=DeepMUSIC(4, [300, 300, 300, 301], *sizes["dm"]).eval(),
                           cnn=CNNRegressor(4, 16, *sizes["cnn"]).eval())
    rows = []

    def emit(**r):
        r.update(profile="quick" if quick else "seed", threads=torch.get_num_threads())
        rows.append(r)
        print(json.dumps(r), flush=True)

    B = min(args.batch, samples)
    x = csi_to_real(H[:B]).float()
    tgt = torch.zeros(B, 4, 16, 8)
    emit(kind="train", model="autoencoder", samples_per_s=_train_rate(
        ae, lambda: ((ae.forward_real(x) - tgt) ** 2).mean(), B, repeats))
    eta = torch.rand(B, 300)
    lab = torch.zeros(B, 300)
    emit(kind="train", model=f"MoDL-SSR (one subregion, I={I})", samples_per_s=_train_rate(
        ssr[1], lambda: ((ssr[1](eta) - lab) ** 2).sum(-1).mean(), B, repeats))
    dm = DeepMUSIC(4, [300, 300, 300, 301], *sizes["dm"])
    Rb = R[:B].to(torch.complex64)
    emit(kind="train", model="DeepMUSIC", samples_per_s=_train_rate(
        dm, lambda: (dm(Rb) ** 2).mean(), B, repeats))
    cnn = CNNRegressor(4, 16, *sizes["cnn"])
    Hb = H[:B].to(torch.complex64)
    emit(kind="train", model="CNN", samples_per_s=_train_rate(cnn, lambda: (cnn(Hb) ** 2).mean(), B, repeats))
    for m in ("MUSIC", "DBF", "DeepMUSIC", "CNN", "MoD-DNN"):
        with torch.no_grad():
            t = _time(lambda m=m: estimate(m, data.csi, sc, dev.assumed_array, models), repeats)
            one = _time(lambda m=m: estimate(m, data.csi[:1], sc, dev.assumed_array, models), repeats)
            one_cpu = _time(lambda m=m: estimate(m, data.csi[:1], sc, dev.assumed_array, models), repeats,
                            time.process_time)
            flops = inference_flops(lambda m=m: estimate(m, data.csi[:1], sc, dev.assumed_array, models))
        emit(kind="inference", model=m, samples_per_s=samples / t, latency_ms=one * 1e3, latency_cpu_ms=one_cpu * 1e3,
             gflops=flops / 1e9)
    out = {"rows": rows, "meta": {"machine": platform.processor() or platform.machine(),
                                  "torch": torch.__version__, "samples": samples, "batch": B, "repeats": repeats}}
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"bench_direction_finding{'_quick' if quick else ''}.json").write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
