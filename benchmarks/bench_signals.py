"""Signals benchmark: MIMO-OFDM channel synthesis and received signal at the S0 size.

S0 trains through the received signal of a monostatic 64-antenna (Tx and Rx) array with
256 subcarriers and up to 5 targets.  This script times, forward and forward+backward:

* ``H``: :func:`isackit.signals.mimo_ofdm_channel` then :func:`received_signal` (forms H);
* ``paths``: :func:`isackit.signals.paths_received_signal` (never forms H);

and checks that both give the same Y.  It also times :func:`tr38901_paths` (Sionna) per call.

Usage:
    python benchmarks/bench_signals.py                 # batch 32, CPU
    python benchmarks/bench_signals.py --device cuda --batch 256
    python benchmarks/bench_signals.py --quick         # tiny sizes (CI)
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from isackit.geometry import ula
from isackit.impairments import ArrayModel
from isackit.signals import (
    OFDMConfig,
    complex_normal,
    mimo_ofdm_channel,
    paths_received_signal,
    random_symbols,
    received_signal,
    tr38901_paths,
)


def _time(fn, device, repeats):
    fn()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / repeats


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--antennas", type=int, default=64)
    ap.add_argument("--subcarriers", type=int, default=256)
    ap.add_argument("--targets", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.batch, args.antennas, args.subcarriers, args.repeats = 2, 8, 16, 1
    dev = torch.device(args.device)
    gen = torch.Generator().manual_seed(0)
    B, M, N, K = args.batch, args.antennas, args.subcarriers, args.targets
    cfg = OFDMConfig(N, 240e3, 60e9)
    arr = ArrayModel(ula(M, wavelength=cfg.wavelength))
    ang = ((torch.rand(B, K, generator=gen) - 0.5) * 2).to(dev).requires_grad_(True)
    tau = (torch.rand(B, K, generator=gen) * 2 * 43.75 / 3e8).to(dev)
    g = complex_normal((B, K), gen, device=dev)
    x, _ = random_symbols("qpsk", (B, N, 1), gen, device=dev)
    f = (complex_normal((B, M, 1), gen, device=dev) / math.sqrt(M)).requires_grad_(True)

    def via_h():
        H = mimo_ofdm_channel(arr, arr, ang, ang, tau, g, cfg)
        return received_signal(H, x, f)

    def via_paths():
        A = arr.steering(ang)
        return paths_received_signal(g, tau, A, A, cfg, x, f)

    err = (via_h() - via_paths()).abs().max().item()
    print(f"device={dev} B={B} M_r=M_t={M} N={N} K={K}  max|Y_H - Y_paths| = {err:.2e}")
    for name, fn in (("H", via_h), ("paths", via_paths)):
        fwd = _time(lambda fn=fn: fn(), dev, args.repeats)
        bwd = _time(lambda fn=fn: fn().abs().pow(2).sum().backward(), dev, args.repeats)
        print(f"  {name:6s} forward {fwd * 1e3:9.2f} ms   forward+backward {bwd * 1e3:9.2f} ms   "
              f"({B / bwd:8.1f} samples/s trained)")
    t0 = time.perf_counter()
    tr38901_paths("umi", gen, bs_position=[0, 0, 10], ut_position=[[30.0, 10.0, 1.5]] * B,
                  carrier_frequency=3.5e9)
    print(f"  tr38901_paths(umi, B={B}) {time.perf_counter() - t0:.2f} s (first call includes the Sionna import)")
    t0 = time.perf_counter()
    tr38901_paths("umi", gen, bs_position=[0, 0, 10], ut_position=[[30.0, 10.0, 1.5]] * B,
                  carrier_frequency=3.5e9)
    print(f"  tr38901_paths(umi, B={B}) {time.perf_counter() - t0:.2f} s (second call)")


if __name__ == "__main__":
    main()
