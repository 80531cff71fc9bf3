"""Run the `doa` experiment from Python: RMSE vs SNR of classical DOA estimators on an ideal
and a gain-phase-impaired ULA, against the CRB and the MCRB.

    python examples/doa_sweep.py                 # 200 trials per point
    python examples/doa_sweep.py --trials 20 --snr 0 20 --out /tmp/doa

The same run from the command line:
    isackit run doa --trials 200 --set 'sweep.impairment=["ideal","gain_phase"]'
"""

from __future__ import annotations

import argparse

from isackit.experiments import resolve_spec, run_experiment
from isackit.experiments.report import metric_table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=200, help="Monte Carlo trials per sweep point")
    parser.add_argument("--snr", type=float, nargs="+", default=[-5.0, 5.0, 15.0, 25.0], help="SNRs in dB")
    parser.add_argument("--out", default=None, help="run folder (default runs/doa/<time>-<hash>)")
    args = parser.parse_args(argv)

    spec = resolve_spec("doa", overrides=[
        ("trials", args.trials),
        ("chunk", min(args.trials, 100)),
        ("sweep.snr_db", args.snr),
        ("sweep.impairment", ["ideal", "gain_phase"]),
        ("estimators", ["music", "root_music", "esprit_ls", "dml"]),
    ])
    result = run_experiment(spec, out=args.out)
    table = metric_table(result.results, result.meta)
    print(table[["snr_db", "impairment", "method", "rmse_deg"]].to_string(index=False))
    print(f"run folder: {result.path}")


if __name__ == "__main__":
    main()
