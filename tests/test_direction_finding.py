"""S2 system (seed 002): scenario, devices, subregions, the CRB over tones, determinism of the
data and of training, and the ``direction_finding`` experiment end to end (tiny sizes)."""

import math
import numpy as np
import pytest
import torch

from isackit.bounds import crb_doa_deterministic, crb_doa_tones
from isackit.geometry import ula
from isackit.impairments import ArrayModel
from isackit.learning import ModelStore
from isackit.systems.direction_finding import (
    GridConfig,
    ModelsConfig,
    ScenarioConfig,
    SSRConfig,
    TrainSettings,
    grid_angles,
    grid_dataset,
    make_device,
    simulate_csi,
    subregion_bounds,
    subregion_of,
)
from isackit.systems.direction_finding.models import TrainingData, estimate, train_autoencoder, train_ssr


def test_subregions_follow_the_floor_partition():
    sc = ScenarioConfig()
    assert sc.grid.size == 1201
    b = subregion_bounds(1201, 4)
    assert b == [0, 300, 600, 900, 1201]
    deg = torch.rad2deg(grid_angles(sc))
    edges = [(round(float(deg[b[p]]), 1), round(float(deg[b[p + 1] - 1]), 1)) for p in range(4)]
    assert edges == [(-60.0, -30.1), (-30.0, -0.1), (0.0, 29.9), (30.0, 60.0)]
    sub = subregion_of(grid_angles(sc), sc)
    assert torch.bincount(sub).tolist() == [300, 300, 300, 301]


def test_rho_zero_is_the_ideal_array_and_devices_are_seeded():
    sc = ScenarioConfig()
    th = grid_angles(sc)[::50]
    sc_idx = torch.arange(16)
    ideal = make_device(sc, 0, 0, rho=0.0)
    A0 = ideal.true_array.steering(th, subcarriers=sc_idx)
    assert torch.equal(A0, ideal.assumed_array.steering(th).unsqueeze(-3).expand_as(A0))
    d1, d1b, d2 = make_device(sc, 0, 1), make_device(sc, 0, 1), make_device(sc, 0, 2)
    assert torch.equal(d1.true_array.steering(th, subcarriers=sc_idx), d1b.true_array.steering(th, subcarriers=sc_idx))
    assert not torch.equal(d1.true_array.steering(th, subcarriers=sc_idx), d2.true_array.steering(th, subcarriers=sc_idx))
    # ρ rescales the same draw: ψ(ρ) = ρ ψ(1)
    half = make_device(sc, 0, 1, rho=0.5).true_array.impairments[0]
    full = d1.true_array.impairments[0]
    assert torch.allclose(half.degree * half.phase(th, sc_idx), 0.5 * full.phase(th, sc_idx))


def test_simulated_csi_power_noise_and_determinism():
    sc = ScenarioConfig()
    dev = make_device(sc, 0, 0)
    a = grid_dataset(dev, sc, 3, 10.0, torch.Generator().manual_seed(5))
    b = grid_dataset(dev, sc, 3, 10.0, torch.Generator().manual_seed(5))
    assert a.csi.shape == (3603, 4, 16) and torch.equal(a.csi, b.csi)
    power = (a.clean.abs() ** 2).mean()
    noise = ((a.csi - a.clean).abs() ** 2).mean()
    assert abs(float(power) - 1.0) < 1e-5
    assert abs(float(noise) - 0.1) < 0.005  # 10 dB per element and tone
    assert torch.allclose(torch.rad2deg(a.aoa[:3].double()), torch.full((3,), -60.0, dtype=torch.float64))


def test_wideband_squint_and_mix_reading_of_rho():
    sc = ScenarioConfig(array={"wideband": True})
    dev = make_device(sc, 0, 0, rho=0.0)
    th = torch.tensor([math.radians(60.0)], dtype=torch.float64)
    clean = simulate_csi(dev, th, 30.0, sc, torch.Generator().manual_seed(0)).clean[0]
    rel = clean[3] * clean[0].conj()
    phase = torch.angle(rel / rel[0])  # relative phase change of element 3 over the tones
    expected = 2 * math.pi * 1.5 * math.sin(th) * 15 * 6.12e6 / 4.85e9  # 3·d = 1.5 λ at f_c
    assert abs(float(phase[-1]) - float(expected)) < 1e-4
    mix = ScenarioConfig(impairment={"rho_mode": "mix", "rho": 0.5})
    half = make_device(mix, 0, 0)
    g = torch.Generator().manual_seed(1)
    h = simulate_csi(half, th, 30.0, mix, g).clean
    assert h.shape == (1, 4, 16)


def test_crb_over_tones_matches_the_deterministic_crb():
    model = ArrayModel(ula(4))
    th = torch.tensor([-0.3, 0.1], dtype=torch.float64)
    ours = crb_doa_tones(model, th, 0.1, num_tones=16)
    ref = torch.stack([crb_doa_deterministic(model, t.view(1), 0.1, source_cov=torch.eye(1, dtype=torch.complex128),
                                             num_snapshots=16)[0, 0] for t in th])
    assert torch.allclose(ours, ref, rtol=1e-10)
    # √CRB at -15°, 10 dB, 16 tones: the design note's 0.47°
    one = crb_doa_tones(model, torch.tensor(math.radians(-15.0), dtype=torch.float64), 0.1, num_tones=16)
    assert abs(math.degrees(math.sqrt(float(one))) - 0.472) < 0.002


def _tiny(tmp_path):
    sc = ScenarioConfig(grid=GridConfig(step_deg=4.0))
    ts = TrainSettings(epochs=1, batch_size=16)
    cfg = ModelsConfig(train_per_angle=2, autoencoder={"training": ts},
                       ssr=SSRConfig(iterations=2, cg_iterations=8, kernel_size=5, training=ts))
    dev = make_device(sc, 0, 0)
    tr = grid_dataset(dev, sc, 2, 10.0, torch.Generator().manual_seed(0))
    return sc, cfg, dev, TrainingData({"test": 1}, tr.csi, tr.aoa, tr.clean)


def test_training_is_deterministic_on_cpu(tmp_path):
    sc, cfg, dev, data = _tiny(tmp_path)
    weights = []
    for run in range(2):
        store = ModelStore(tmp_path / f"store{run}")
        ae, rec, log = train_autoencoder(store, data, sc, cfg, 0)
        ssr, _, _ = train_ssr(store, data, ae, rec, sc, dev.assumed_array, cfg, 0)
        weights.append([ae.state_dict(), *[s.state_dict() for s in ssr]])
        assert len(log["records"]) == math.ceil(data.csi.shape[0] / 16)  # one record per batch
    for a, b in zip(weights[0], weights[1], strict=True):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # the cached model is reused (same key) and gives the same estimates
    store = ModelStore(tmp_path / "store0")
    ae2, rec2, _ = train_autoencoder(store, data, sc, cfg, 0)
    assert all(torch.equal(v, ae2.state_dict()[k]) for k, v in weights[0][0].items())


def test_classical_methods_reach_the_crb_on_the_ideal_array():
    sc = ScenarioConfig()
    dev = make_device(sc, 0, 0, rho=0.0)
    idx = torch.arange(300, 600, 3)  # inner subregion [-30°, 0°)
    val = grid_dataset(dev, sc, 4, 20.0, torch.Generator().manual_seed(3), angle_index=idx)
    from isackit.systems.direction_finding.evaluation import crb_over_angles
    crb = math.degrees(math.sqrt(float(crb_over_angles(dev, sc, val.aoa.double(), 20.0).mean())))
    for m in ("MUSIC", "DBF"):
        e = torch.rad2deg(estimate(m, val.csi, sc, dev.assumed_array).double() - val.aoa.double())
        rmse = float(e.pow(2).mean().sqrt())
        assert rmse <= 1.3 * math.hypot(crb, 0.1 / math.sqrt(12))  # + the 0.1° grid quantisation


# ---------------------------------------------------------------------------------------
# the experiment
# ---------------------------------------------------------------------------------------
def _cli(args, capsys) -> tuple[int, str, str]:
    """The CLI in this process (``isackit.cli.main``): (exit code, stdout, stderr)."""
    from isackit.cli import main

    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(args)
    out, err = capsys.readouterr()
    return (exc.value.code or 0), out, err


def test_cli_rejects_a_bad_data_file_with_exit_code_2(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    np.savez(bad, other=np.zeros(3))
    code, _, err = _cli(["run", "direction_finding", "--smoke", "--set", f'data.path="{bad}"', "--no-plots",
                         "--runs-dir", str(tmp_path / "runs")], capsys)
    assert code == 2, err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "no CSI field 'csi'" in lines[0]
    assert not (tmp_path / "runs").exists()  # rejected before any unit ran


def test_experiment_runs_on_a_measured_file(tmp_path, capsys):
    """The measured panel on a file the test writes (MATLAB v5), the other panels off."""
    from isackit.signals import save_measured_csi
    from isackit.systems.direction_finding import chamber_surrogate

    sc = ScenarioConfig()
    data = chamber_surrogate(make_device(sc, 2, 0), sc, 4, 20.0, torch.Generator().manual_seed(0), step_deg=4.0)
    path = save_measured_csi(data, tmp_path / "chamber.mat")
    code, out, err = _cli(["run", "direction_finding", "--smoke", "--set", 'sweep.panels=["measured"]',
                           "--set", f'data.path="{path}"', "--runs-dir", str(tmp_path / "runs")], capsys)
    assert code == 0, err[-2000:]
    figs = list((tmp_path / "runs").rglob("fig5_measured.png"))
    assert figs and "measured:" in out
