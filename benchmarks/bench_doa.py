"""DOA benchmark: speed (trials/s), RMSE vs sqrt(CRB) and failure rate of every registered estimator.

Scenarios (the "Classical estimators" issue):

* D1: ULA M = 16 (λ/2), K = 2 uncorrelated equal-power sources at -10.3° and 12.7°, N = 200;
* D2: ULA M = 8 (λ/2), K = 3 uncorrelated equal-power sources at -20.4°, 0.5° and 9.8°, N = 64;

SNR per source and element from -10 to 20 dB; grid methods search [-90°, 90°] with a 0.01° step.
Every estimator in ``isackit.estimators.ESTIMATORS`` that takes a covariance or snapshots and
returns azimuths is run; the others are listed as skipped with the reason.  Constructors come
from ``CONSTRUCTORS`` (name → factory(scenario)) or, for estimators not in the table, from the
keyword names of ``__init__`` (array, num_sources, grid, …).

Trials run through :func:`isackit.montecarlo.monte_carlo` (chunked, seeded per block); the
time of the estimator calls only is measured (after one warm-up call; CUDA is synchronised).
The bound is the stochastic CRB (:func:`isackit.bounds.crb_doa_stochastic`, unknown source
covariance and noise variance), reported as sqrt of its mean diagonal, in degrees.

Usage (see benchmarks/README.md):
    python benchmarks/bench_doa.py                       # full run: 10 000 trials, CPU
    python benchmarks/bench_doa.py --device all          # CPU and CUDA (if available)
    python benchmarks/bench_doa.py --quick               # tiny sizes (CI)
"""

from __future__ import annotations

import argparse
import csv
import inspect
import json
import math
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import torch

import isackit.estimators as estimators_pkg
from isackit.bounds import crb_doa_stochastic
from isackit.estimators import ESTIMATORS, Estimator
from isackit.estimators.grids import SearchGrid
from isackit.geometry import ula
from isackit.impairments import ArrayModel
from isackit.montecarlo import monte_carlo
from isackit.signals.snapshots import sample_covariance, snapshots

# trials per seeded block: fixed, so the trials do not depend on --chunk (chunks are whole blocks)
BLOCK_SIZE = 50


@dataclass(frozen=True)
class Scenario:
    """One DOA benchmark scenario (angles in degrees at this edge only)."""

    name: str
    num_elements: int
    angles_deg: tuple[float, ...]
    num_snapshots: int
    spacing: float = 0.5

    @property
    def num_sources(self) -> int:
        return len(self.angles_deg)

    @property
    def min_separation_deg(self) -> float:
        a = sorted(self.angles_deg)
        return min(b - c for b, c in zip(a[1:], a[:-1], strict=False)) if len(a) > 1 else 180.0


SCENARIOS = {
    "D1": Scenario("D1", 16, (-10.3, 12.7), 200),
    "D2": Scenario("D2", 8, (-20.4, 0.5, 9.8), 64),
}


@dataclass(frozen=True)
class Context:
    """What an estimator factory may use."""

    scenario: Scenario
    model: ArrayModel
    grid: SearchGrid


def _music(ctx: Context):
    # the setting: MUSIC on the benchmark grid (0.01° over [-90°, 90°] by default)
    return ESTIMATORS["music"](array=ctx.model, num_sources=ctx.scenario.num_sources, grid=ctx.grid)


# name -> factory(Context) -> Estimator.  Estimators missing here are built from their
# __init__ keyword names (see _generic_factory); add an entry when that is not enough.
# Other grid estimators keep their own default grids unless --grid-all is given.
CONSTRUCTORS: dict[str, Callable[[Context], Estimator]] = {
    "music": _music,
}

_GENERIC_KWARGS = {
    "num_sources": lambda c: c.scenario.num_sources,
    "array": lambda c: c.model,
}
_GRID_KWARGS = {"grid": lambda c: c.grid, "azimuth_grid": lambda c: c.grid}


def _generic_factory(cls, grid_all: bool = False) -> Callable[[Context], Estimator] | str:
    """A factory from the constructor's keyword names, or the reason why none can be built."""
    try:
        sig = inspect.signature(cls.__init__)
    except (TypeError, ValueError):
        return "constructor signature not inspectable"
    known = {}
    for name, par in list(sig.parameters.items())[1:]:
        if par.kind in (par.VAR_POSITIONAL, par.VAR_KEYWORD):
            continue
        if name in _GENERIC_KWARGS:
            known[name] = _GENERIC_KWARGS[name]
        elif grid_all and name in _GRID_KWARGS:
            known[name] = _GRID_KWARGS[name]
        elif par.default is inspect.Parameter.empty:
            return f"required constructor argument {name!r} unknown to the benchmark (add it to CONSTRUCTORS)"
    return lambda ctx: cls(**{k: f(ctx) for k, f in known.items()})


def applicable(name: str, cls, grid_all: bool = False) -> tuple[Callable[[Context], Estimator] | None, str]:
    """(factory, '') when the estimator fits the 1-D DOA scenarios, else (None, reason)."""
    if cls.input_kind not in ("covariance", "snapshots"):
        return None, f"input_kind {cls.input_kind!r} (needs covariance or snapshots)"
    if tuple(cls.parameters) != ("azimuth",):
        return None, f"estimates {cls.parameters} (needs ('azimuth',))"
    if name in CONSTRUCTORS:
        return CONSTRUCTORS[name], ""
    fac = _generic_factory(cls, grid_all)
    return (None, fac) if isinstance(fac, str) else (fac, "")


def _sync(device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_point(scenario: Scenario, est, input_kind: str, snr_db: float, trials: int, device: torch.device,
              dtype: torch.dtype, seed: int, chunk: int, failure_deg: float, crb_deg: float,
              max_seconds: float | None = None) -> dict:
    """Monte Carlo of one (scenario, estimator, SNR) point; returns a table row."""
    real = torch.float64 if dtype == torch.complex128 else torch.float32
    th = torch.deg2rad(torch.tensor(scenario.angles_deg, dtype=torch.float64))
    model = ArrayModel(ula(scenario.num_elements, scenario.spacing))
    A = model.steering(th.to(real)).to(device=device, dtype=dtype)
    truth = th[:, None].to(device=device, dtype=real)

    def simulate(n, g):
        snap = snapshots(A.expand(n, *A.shape), g, num_snapshots=scenario.num_snapshots, snr_db=snr_db)
        return sample_covariance(snap.X) if input_kind == "covariance" else snap.X

    elapsed = [0.0]

    def timed(data):
        _sync(device)
        t0 = time.perf_counter()
        out = est(data)
        _sync(device)
        elapsed[0] += time.perf_counter() - t0
        return out

    # warm-up (dictionary caches, kernels) outside the timed trials
    warm = torch.Generator(device=device).manual_seed(seed + 1)
    est(simulate(min(4, trials), warm))

    def stop(state):  # time budget per point (estimator time), on whole chunks
        return max_seconds is not None and elapsed[0] > max_seconds

    res = monte_carlo(simulate, timed, trials, truth=truth, seed=seed, chunk_size=chunk, block_size=BLOCK_SIZE,
                      device=device, failure_threshold=math.radians(failure_deg), stop=stop)
    rmse_deg = math.degrees(float(res.rmse[0]))
    trials = res.n_trials
    return {
        "scenario": scenario.name, "estimator": None, "device": str(device), "dtype": str(dtype).replace("torch.", ""),
        "snr_db": snr_db, "trials": trials, "trials_per_s": trials / max(elapsed[0], 1e-12),
        "rmse_deg": rmse_deg, "root_crb_deg": crb_deg, "rmse_over_root_crb": rmse_deg / crb_deg,
        "failure_rate": res.failure_rate, "missing_rate": res.missing_rate, "failure_threshold_deg": failure_deg,
    }


def root_crb_deg(scenario: Scenario, snr_db: float) -> float:
    """sqrt(mean diag of the stochastic CRB) in degrees (σ² = 1, p = 10^(SNR/10), uncorrelated)."""
    model = ArrayModel(ula(scenario.num_elements, scenario.spacing).to(torch.float64))
    th = torch.deg2rad(torch.tensor(scenario.angles_deg, dtype=torch.float64))
    P = 10 ** (snr_db / 10) * torch.eye(scenario.num_sources, dtype=torch.complex128)
    crb = crb_doa_stochastic(model, th, P, 1.0, scenario.num_snapshots)
    return math.degrees(math.sqrt(float(crb.diagonal().mean())))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--trials", type=int, default=None, help="trials per point (default 10000, quick: 8)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, or 'all' (cpu + cuda if available)")
    p.add_argument("--dtype", choices=("complex64", "complex128"), default="complex64")
    p.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=list(SCENARIOS))
    p.add_argument("--snrs", type=float, nargs="+", default=None, help="SNRs in dB (default -10 ... 20 step 5)")
    p.add_argument("--estimators", nargs="+", default=None, help="subset of registered names (default: all)")
    p.add_argument("--grid-step-deg", type=float, default=None,
                   help="MUSIC's grid step (default 0.01°, quick: 0.5°)")
    p.add_argument("--grid-all", action="store_true",
                   help="give every grid estimator the benchmark grid (default: only MUSIC; others keep their defaults)")
    p.add_argument("--failure-deg", type=float, default=None,
                   help="failure threshold on |error| in degrees (default: half the minimum source separation)")
    p.add_argument("--chunk", type=int, default=250,
                   help="trials per estimator call (memory: OMP holds chunk × N × G correlations)")
    p.add_argument("--seed", type=int, default=2024)
    p.add_argument("--max-seconds", type=float, default=None,
                   help="stop a point once its estimator time exceeds this (whole chunks; the row says how many "
                        "trials ran)")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes: 8 trials, SNR -10/10 dB, a 0.5° grid for every grid estimator")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    trials = args.trials or (8 if args.quick else 10_000)
    snrs = args.snrs or ([-10.0, 10.0] if args.quick else [-10.0, -5.0, 0.0, 5.0, 10.0, 15.0, 20.0])
    step = args.grid_step_deg or (0.5 if args.quick else 0.01)
    dtype = getattr(torch, args.dtype)
    if args.device == "all":
        devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    else:
        devices = [torch.device(args.device)]
    names = sorted(ESTIMATORS) if args.estimators is None else args.estimators
    unknown = [n for n in names if n not in ESTIMATORS]
    if unknown:
        raise SystemExit(f"unknown estimator(s) {unknown}; registered: {sorted(ESTIMATORS)}")
    grid = SearchGrid.degrees(-90.0, 90.0, step)

    rows, skipped, errors = [], {}, []
    for sc_name in args.scenarios:
        sc = SCENARIOS[sc_name]
        failure = args.failure_deg or sc.min_separation_deg / 2
        crbs = {snr: root_crb_deg(sc, snr) for snr in snrs}
        for name in names:
            cls = ESTIMATORS[name]
            factory, why = applicable(name, cls, args.grid_all or args.quick)
            if factory is None:
                skipped[name] = why
                continue
            for device in devices:
                model = ArrayModel(ula(sc.num_elements, sc.spacing))
                try:
                    est = factory(Context(sc, model, grid))
                except Exception as err:  # noqa: BLE001  (report, do not hide: the benchmark goes on)
                    skipped[name] = f"construction failed: {type(err).__name__}: {err}"
                    break
                for snr in snrs:
                    try:
                        row = run_point(sc, est, cls.input_kind, snr, trials, device, dtype, args.seed, args.chunk,
                                        failure, crbs[snr], args.max_seconds)
                    except Exception as err:  # noqa: BLE001  (one broken estimator must not stop the benchmark)
                        errors.append({"scenario": sc.name, "estimator": name, "device": str(device),
                                       "snr_db": snr, "error": f"{type(err).__name__}: {err}"})
                        continue
                    row["estimator"] = name
                    g = getattr(est, "grid", None)
                    row["grid_step_deg"] = math.degrees(g.step) if isinstance(g, SearchGrid) else None
                    rows.append(row)
    meta = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform(),
        "threads": torch.get_num_threads(), "trials": trials, "grid_step_deg": step, "snrs_db": snrs,
        "scenarios": {k: asdict(SCENARIOS[k]) for k in args.scenarios}, "seed": args.seed,
        "registered": sorted(ESTIMATORS), "skipped": skipped, "errors": errors, "quick": args.quick,
        "cuda": torch.cuda.get_device_name() if any(d.type == "cuda" for d in devices) else None,
        "estimators_module": estimators_pkg.__name__,
    }
    write_results(rows, meta, args.out, "bench_doa_quick" if args.quick else "bench_doa")
    print_table(rows, skipped, errors)
    return {"rows": rows, "meta": meta}


def write_results(rows: list[dict], meta: dict, out: Path, stem: str):
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    if rows:
        with open(out / f"{stem}.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    lines = [(f"# DOA benchmark ({meta['created']}, torch {meta['torch']}, {meta['trials']} trials/point, "
              f"grid {meta['grid_step_deg']}°)"), "",
             ("| scenario | estimator | grid (°) | device | SNR (dB) | trials | trials/s | RMSE (°) | √CRB (°) "
              "| RMSE/√CRB | failure rate | missing |"),
             "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['scenario']} | {r['estimator']} | {r['grid_step_deg'] or '-'} | {r['device']} | {r['snr_db']:g} | {r['trials']} | {r['trials_per_s']:.3g} | "
              f"{r['rmse_deg']:.3g} | {r['root_crb_deg']:.3g} | {r['rmse_over_root_crb']:.3g} | "
              f"{r['failure_rate']:.3f} | {r['missing_rate']:.3f} |" for r in rows]
    lines += ["", *(f"- skipped `{k}`: {v}" for k, v in meta["skipped"].items())]
    lines += [f"- ERROR `{e['estimator']}` ({e['scenario']}, {e['snr_db']:g} dB): {e['error']}" for e in meta["errors"]]
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")


def print_table(rows: list[dict], skipped: dict, errors: list[dict] = ()):
    from rich.console import Console
    from rich.table import Table

    table = Table(title="DOA benchmark (RMSE and sqrt(CRB) in degrees; speed: estimator calls only)")
    for col in ("scenario", "estimator", "device", "SNR dB", "trials/s", "RMSE", "√CRB", "RMSE/√CRB", "fail"):
        table.add_column(col, justify="right" if col not in ("scenario", "estimator", "device") else "left")
    for r in rows:
        table.add_row(r["scenario"], r["estimator"], r["device"], f"{r['snr_db']:g}", f"{r['trials_per_s']:.3g}",
                      f"{r['rmse_deg']:.3g}", f"{r['root_crb_deg']:.3g}", f"{r['rmse_over_root_crb']:.3g}",
                      f"{r['failure_rate']:.3f}")
    console = Console(width=max(120, Console().width))
    console.print(table)
    for name, why in skipped.items():
        console.print(f"skipped {name}: {why}")
    for e in errors:
        console.print(f"[red]error[/red] {e['estimator']} ({e['scenario']}, {e['snr_db']:g} dB, {e['device']}): {e['error']}")


if __name__ == "__main__":
    main(sys.argv[1:])
