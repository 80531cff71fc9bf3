"""Add your own experiment through the plug-in API: a config model, a registered
experiment class, and a TOML spec.

This one sweeps the number of ULA elements M at a fixed SNR and compares root-MUSIC's RMSE
for one source with the deterministic CRB, using the library's snapshots, estimator
registry, assignment metric and bound — nothing is re-implemented here.

    python examples/custom_experiment.py --trials 100 --out /tmp/aperture
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import torch
from pydantic import Field

from isackit._config import StrictModel
from isackit.bounds import crb_doa_deterministic
from isackit.estimators import get_estimator
from isackit.experiments import (
    Experiment,
    ExperimentConfig,
    bound_row,
    register_experiment,
    resolve_spec,
    rmse_row,
    run_experiment,
)
from isackit.geometry import ula
from isackit.impairments import ArrayModel
from isackit.metrics import assignment_errors
from isackit.signals.random import complex_normal
from isackit.signals.snapshots import sample_covariance, snapshots


class ApertureSweep(StrictModel):
    elements: list[int] = [4, 8, 16]


class ApertureConfig(ExperimentConfig):
    snr_db: float = 0.0
    angle_deg: float = 20.0
    snapshots: int = Field(32, ge=1)
    sweep: ApertureSweep = ApertureSweep()


@register_experiment("aperture", config_model=ApertureConfig,
                     description="root-MUSIC RMSE vs number of ULA elements, against the CRB")
class Aperture(Experiment):
    x_axis = "elements"

    def run_unit(self, config, unit, device):
        M = int(unit.point["elements"])
        model = ArrayModel(ula(M))
        truth = torch.tensor([math.radians(config.angle_deg)], dtype=torch.float64, device=device)
        A = model.steering(truth)  # (M, 1)
        S = complex_normal((1, config.snapshots), torch.Generator().manual_seed(config.seed), A.dtype)
        snap = snapshots(A.expand(unit.trials, M, 1), unit.generator(device), signals=S.to(device),
                         snr_db=config.snr_db)
        estimator = get_estimator("root_music")(array=model, num_sources=1)
        est = estimator(sample_covariance(snap.X)).estimates  # (B, 1, 1)
        err = assignment_errors(est, truth[:, None])
        rows = [rmse_row(estimator.name, "rmse_deg", torch.rad2deg(err), unit.trials)]
        if unit.chunk_index == 0:
            crb = crb_doa_deterministic(model, truth, 1.0, signals=snap.sources.reshape(-1, 1, config.snapshots)[0])
            rows.append(bound_row("CRB", "rmse_deg", math.degrees(math.sqrt(float(crb[0, 0])))))
        return rows


SPEC = """
experiment = "aperture"
description = "root-MUSIC RMSE vs number of ULA elements, against the CRB"
seed = 1
trials = {trials}
chunk = {chunk}

[sweep]
elements = [4, 8, 16]
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="a custom experiment through the plug-in API")
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "aperture.toml"
        path.write_text(SPEC.format(trials=args.trials, chunk=min(args.trials, 100)))
        spec = resolve_spec(str(path))
    result = run_experiment(spec, out=args.out)
    print(result.results.to_string(index=False))
    print(f"run folder: {result.path}")


if __name__ == "__main__":
    main()
