"""The ``pascal`` experiment (S3): config checks, points, units and the headline table."""

import math
import subprocess
import sys

import pandas as pd
import pytest
import torch

from isackit.experiments.config import ExperimentError, parse_override
from isackit.experiments.registry import resolve_spec
from isackit.experiments.units import WorkUnit, aggregate_rows
from isackit.systems.pascal import ScenarioConfig, build_world, crlb


@pytest.mark.parametrize("override,needle", [
    ("scenario.array.num_y=2", "cannot be resolved"),               # K = 2 drones on a 1 × 2 array
    ("fig4.power_split=[0.6, 0.6]", "sum to 1"),                     # ρ not summing to one
    ("fig4.power_split=[1.0]", "2 positive entries"),
    ("scenario.frame.num_subframes=-1", "num_subframes"),            # a negative size
    ("scenario.array.num_x=0", "num_x"),
    ("scenario.errors.law=\"laplace\"", "law"),                      # an unknown error law
    ("scenario.errors.coherence=\"slot\"", "coherence"),
    ("fig4.drones=[2, 5]", "not in the scenario"),
    ("jldd.windows=[1, 500]", "jldd.windows"),
    ("trials=-3", "trials"),
])
def test_bad_configs_are_one_line_errors(override, needle):
    extra = [parse_override("scenario.array.num_x=1")] if override.startswith("scenario.array.num_y") else []
    with pytest.raises(ExperimentError) as err:
        resolve_spec("pascal", smoke=True, overrides=[*extra, parse_override(override)])
    msg = str(err.value)
    assert "\n" not in msg and needle in msg, msg


def test_cli_bad_config_exit_code_2(tmp_path):
    out = subprocess.run([sys.executable, "-m", "isackit.cli", "run", "pascal", "--smoke", "--set",
                          "fig6.power_split=[0.7, 0.7]"], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    lines = [ln for ln in (out.stderr + out.stdout).strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "sum to 1" in lines[0], out.stderr


def test_profiles_and_points():
    full, quick, smoke = (resolve_spec("pascal", quick=q, smoke=s) for q, s in ((False, False), (True, False),
                                                                                 (False, True)))
    assert smoke.config.trials <= quick.config.trials <= full.config.trials
    pts = full.experiment().points(full.config)
    panels = {p["panel"] for p in pts}
    assert panels == {"efficiency", "fig2", "fig4", "fig5", "fig5_bound", "fig6", "fig6_fixed", "fig7", "fig8", "jldd"}
    assert all(set(p) == {"panel", "case", "variant", "x"} for p in pts)
    # the seed's Doppler relation f = v cos ϑ / λ and the scenario defaults
    sc = ScenarioConfig()
    assert [round(sc.doppler_hz(i), 1) for i in range(3)] == [69.3, 77.1, 122.6]


def test_units_emit_rows_with_bounds():
    spec = resolve_spec("pascal", smoke=True)
    exp = spec.experiment()
    pts = {p["panel"]: p for p in exp.points(spec.config)}
    rows = exp.run_unit(spec.config, WorkUnit(0, pts["fig5_bound"], 0, 4, 7), torch.device("cpu"))
    agg = aggregate_rows(rows)
    assert agg[("CRLB (drone 1)", "rmse_phi_deg")][2] == "bound"
    assert agg[("Analytic 2nd order (CRLB)", "sdr_bps_hz")][0] > 0
    rows = exp.run_unit(spec.config, WorkUnit(1, pts["efficiency"], 0, 3, 8), torch.device("cpu"))
    agg = aggregate_rows(rows)
    assert agg[("MLE", "rmse_phi_deg")][1] == 3 and agg[("CRLB", "rmse_phi_deg")][2] == "bound"
    # the bound row is the world's CRLB in degrees
    world = build_world(spec.config.scenario, [1])
    var = crlb(world, float(pts["efficiency"]["x"]), spec.config.scenario.frame.num_subframes)
    assert agg[("CRLB", "rmse_phi_deg")][0] == pytest.approx(math.degrees(float(var[0, 0].sqrt())), rel=1e-12)


def test_summary_table_from_a_results_table():
    from isackit.experiments.plugins.pascal_figures import summary_table

    rec = []
    for x, r in ((10.0, 1.2), (20.0, 1.3)):
        for p, unit in (("phi", "deg"), ("theta", "deg"), ("f", "hz")):
            rec.append(dict(panel="efficiency", case="rice_von_mises", variant="frame", x=x, method="MLE",
                            metric=f"rmse_{p}_{unit}", value=r, n_trials=10))
            rec.append(dict(panel="efficiency", case="rice_von_mises", variant="frame", x=x, method="CRLB",
                            metric=f"rmse_{p}_{unit}", value=1.0, n_trials=0))
    rec.append(dict(panel="fig4", case="a", variant="Lp=10", x=10.0, method="MLE", metric="sdr_bps_hz", value=4.0,
                    n_trials=10))
    rec.append(dict(panel="fig4", case="a", variant="Lp=10", x=10.0, method="MLE: analytic 2nd order",
                    metric="sdr_bps_hz", value=4.1, n_trials=0))
    rec.append(dict(panel="fig4", case="a", variant="Lp=10", x=10.0, method="MLE: analytic 1st order",
                    metric="sdr_bps_hz", value=3.6, n_trials=0))
    table, lines = summary_table(pd.DataFrame.from_records(rec))
    assert list(table["φ: RMSE/√CRLB"]) == [1.2, 1.3]
    assert any("2nd order max |error| 2.5 %" in ln and "-10.0 %" in ln for ln in lines), lines
