"""System S1 (seed 001): scenario, IFFT-C2VNN, grid baselines, the experiment and its config errors."""

import json
import math

import pytest
import torch

from isackit.estimators import SearchGrid, angle_angle_delay_bartlett, angle_angle_delay_dml, angle_angle_delay_music
from isackit.learning.c2vnn import (
    C2VNN,
    C2VNNConfig,
    c2vnn_estimate,
    forward_multiplications,
    idft_delay_profile,
    match_windows,
    measured_flops,
    normalise_windows,
    peak_windows,
    train_c2vnn,
)
from isackit.learning.store import ModelStore
from isackit.learning.training import TrainingConfig
from isackit.seeding import make_generator
from isackit.systems.bistatic import ScenarioConfig, arrays, channel, observe, sample_paths
from isackit.systems.bistatic.learned import C2VNNTraining, trained_c2vnn, training_windows

SC = ScenarioConfig()


# ---------------------------------------------------------------------------------------
# scenario
# ---------------------------------------------------------------------------------------
def test_sampler_prior_and_noise_level():
    g = make_generator(0, "test")
    p = sample_paths(SC, 400, g)
    tres = SC.delay_resolution
    d = p.delay / tres
    assert d.min() >= 1.0 and d.max() <= SC.cp_bins - 1
    gaps = (d[:, :, None] - d[:, None, :]).abs() + 100 * torch.eye(3)
    assert gaps.amin((-1, -2)).min() >= SC.min_delay_separation
    assert p.aoa.abs().max() <= math.radians(60) and (p.gain.abs() - 1).abs().max() < 1e-12
    assert p.doppler.abs().max() <= SC.max_doppler
    # LS CSI noise: orthogonal pilots give CN(0, σ²/L) per entry, σ² = M_t K / SNR
    H = channel(SC, p)
    Hhat, X, s2 = observe(SC, H, 10.0, g)
    err = (Hhat - H).abs().square().mean()
    assert abs(float(err) / (SC.noise_variance(10.0) / SC.symbols_per_subframe) - 1) < 0.02
    assert torch.allclose(s2, torch.full_like(s2, SC.noise_variance(10.0)))


@pytest.mark.slow
def test_qpsk_pilots_have_full_rank_and_unbiased_ls():
    sc = SC.model_copy(update={"pilots": "qpsk"})
    g = make_generator(1, "qpsk")
    p = sample_paths(sc, 8, g)
    H = channel(sc, p)
    Hhat, X, _ = observe(sc, H, 200.0, g)
    assert X.shape == (8, 64, 8, 10)
    assert (torch.linalg.eigvalsh(X @ X.mH)[..., 0] > 1e-6).all()
    assert (Hhat - H).abs().max() < 1e-6


def test_per_symbol_doppler_observation():
    """Zero Doppler: the per-symbol grid gives the static channel per sub-frame exactly; with
    Doppler the sub-frame estimate is the pilot-weighted average of the moving channel."""
    from isackit.systems.bistatic import Paths
    from isackit.systems.bistatic.scenario import observe_per_symbol
    g = make_generator(3, "sym")
    p = sample_paths(SC, 2, g)
    still = Paths(p.aoa, p.aod, p.delay, p.gain, torch.zeros_like(p.doppler))
    Hhat, _ = observe_per_symbol(SC, still, 300.0, g)
    H = channel(SC, still, subframes=True)
    assert Hhat.shape == (2, SC.num_subframes, 64, 10, 8)
    assert (Hhat - H).abs().max() < 1e-9 * H.abs().max()


def test_bad_scenarios_are_rejected():
    from pydantic import ValidationError
    with pytest.raises(ValidationError):
        ScenarioConfig(symbols_per_subframe=4)  # L < M_t
    with pytest.raises(ValidationError):
        ScenarioConfig(num_paths=9)  # cannot be 2 T_res apart in [1, 15] T_res


# ---------------------------------------------------------------------------------------
# IFFT-C2VNN
# ---------------------------------------------------------------------------------------
def test_idft_on_grid_delays_gives_k_rows():
    g = make_generator(2, "idft")
    p = sample_paths(SC, 5, g)
    on_grid = p.delay.div(SC.delay_resolution).round().mul(SC.delay_resolution)
    from isackit.systems.bistatic import Paths
    q = Paths(p.aoa, p.aod, on_grid, p.gain, p.doppler)
    G = idft_delay_profile(channel(SC, q))
    power = G.abs().square().sum(-1)  # (B, N)
    rows = (on_grid / SC.delay_resolution).round().long()
    mask = torch.zeros_like(power, dtype=torch.bool).scatter_(1, rows, True)
    assert (power[~mask] < 1e-24 * power.amax()).all()
    assert torch.allclose(power[mask].reshape(5, 3), torch.full((5, 3), 64.0 * 80, dtype=torch.float64))
    win, peaks = peak_windows(G, 3, 3)
    assert torch.equal(peaks, rows.sort(-1).values) and win.shape == (5, 3, 3, 80)
    n = normalise_windows(win)
    assert torch.allclose(torch.linalg.vector_norm(n, dim=(-2, -1)), torch.ones(5, 3, dtype=torch.float64))
    assert (n[..., 1, 0].imag.abs() < 1e-12).all() and (n[..., 1, 0].real > 0).all()


def test_window_matching_wraps_circularly():
    idx, delta, ok = match_windows(torch.tensor([63, 10]), torch.tensor([0.4, 10.3, 30.0]), 64, 1.5)
    assert idx.tolist() == [0, 1] and torch.allclose(delta, torch.tensor([1.4, 0.3])) and ok.all()


def _complex_reference(model: C2VNN, T: torch.Tensor) -> torch.Tensor:
    """The network with native complex conv2d / matmul (independent of the real-block form)."""
    import torch.nn.functional as F

    def conv(layer, z):
        w = layer.weight
        y = F.conv2d(z.real, w.real, None, layer.stride, layer.padding) - F.conv2d(z.imag, w.imag, None, layer.stride, layer.padding)
        yi = F.conv2d(z.real, w.imag, None, layer.stride, layer.padding) + F.conv2d(z.imag, w.real, None, layer.stride, layer.padding)
        return torch.complex(y, yi) + layer.bias[:, None, None]

    def relu(z):
        return torch.complex(z.real.clamp_min(0), z.imag.clamp_min(0))

    z = T.reshape(-1, 1, *T.shape[-2:])
    z = relu(conv(model.conv1, z))
    z = relu(conv(model.conv2, z))
    z = relu(z.flatten(1) @ model.fc1.weight.T + model.fc1.bias)
    return (z @ model.fc2.weight.T + model.fc2.bias).real


def test_c2vnn_equals_complex_reference_and_gradcheck():
    cfg = C2VNNConfig(window=3, conv_channels=[2, 3], hidden=5)
    model = C2VNN(cfg, 6, generator=make_generator(0, "net"), dtype=torch.float64)
    with torch.no_grad():  # non-zero biases so that they are checked too
        for p in model.parameters():
            if p.ndim == 1:
                p.add_(0.1 * torch.randn(p.shape, dtype=p.dtype, generator=make_generator(1, "bias")))
    T = torch.randn(4, 3, 6, dtype=torch.complex128, generator=make_generator(2, "x"))
    assert torch.allclose(model(T), _complex_reference(model, T), atol=1e-12, rtol=0)
    Tg = T[:2].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: model(t), (Tg,))
    from torch.func import functional_call
    names = ["conv1.weight_imag", "conv2.weight_real", "fc1.weight_imag", "fc2.bias_real"]
    state = dict(model.named_parameters())

    def loss_of(*tensors):
        params = {**state, **dict(zip(names, tensors, strict=True))}
        return (functional_call(model, params, (T,)) ** 2).sum()

    inputs = tuple(state[n].detach().clone().requires_grad_(True) for n in names)
    assert torch.autograd.gradcheck(loss_of, inputs)


def test_c2vnn_and_doppler_estimators_batch_equal_one_at_a_time():
    """IFFT-C2VNN inference, its Doppler variant and PARAMING-Doppler on a batch equal the
    same calls scene by scene (the registered estimators are covered by the contract test).
    Tolerance: float64, O(1) outputs after a few hundred operations (tolerance(..., factor=1e4))."""
    from isackit._dtypes import tolerance
    from isackit.estimators.parametric import paraming_doppler
    from isackit.systems.bistatic.learned import c2vnn_doppler
    sc = SC.model_copy(update={"num_subcarriers": 16, "cyclic_prefix": 0.5, "num_tx": 3, "num_rx": 4,
                               "symbols_per_subframe": 4, "num_subframes": 3, "num_paths": 2})
    rx, tx = arrays(sc)
    model = C2VNN(C2VNNConfig(window=3, conv_channels=[2, 3], hidden=5), 12, generator=make_generator(0, "net"),
                  dtype=torch.float64)
    g = make_generator(8, "batch")
    p = sample_paths(sc, 3, g)
    H, _, _ = observe(sc, channel(sc, p), 20.0, g)
    Hs, _, _ = observe(sc, channel(sc, p, subframes=True), 20.0, g)  # (3, S, N, M_r, M_t)
    tol = tolerance(torch.float64, factor=1e4)
    est, peaks = c2vnn_estimate(model, H, 2, sc.delay_resolution)
    dop = c2vnn_doppler(model, Hs, sc)
    pd = paraming_doppler(Hs, rx, tx, 2, sc.subcarrier_spacing_hz, sc.subframe_period, (2, 2, 8)).estimates
    scale = torch.tensor([1.0, 1.0, 1 / sc.delay_resolution, 1 / 1e3], dtype=torch.float64)  # rad, T_res, kHz
    for i in range(3):
        e1, p1 = c2vnn_estimate(model, H[i], 2, sc.delay_resolution)
        assert torch.equal(p1, peaks[i])
        assert torch.allclose(e1 * scale[:3], est[i] * scale[:3], rtol=0, atol=tol)
        assert torch.allclose(c2vnn_doppler(model, Hs[i:i + 1], sc)[0] * scale, dop[i] * scale, rtol=0, atol=tol)
        one = paraming_doppler(Hs[i], rx, tx, 2, sc.subcarrier_spacing_hz, sc.subframe_period, (2, 2, 8)).estimates
        assert torch.allclose(one * scale, pd[i] * scale, rtol=0, atol=100 * tol)


def test_flop_counter_matches_closed_form():
    for w in (3, 7):
        cfg = C2VNNConfig(window=w)
        model = C2VNN(cfg, 80, generator=make_generator(0, "f"))
        assert measured_flops(model) == 2 * forward_multiplications(cfg, 80)["total"]


def test_c2vnn_trains_through_fit_and_the_store(tmp_path):
    sc = SC.model_copy(update={"num_subcarriers": 16, "cyclic_prefix": 0.5, "num_tx": 3, "num_rx": 4,
                               "symbols_per_subframe": 4})
    arch = C2VNNConfig(window=3, conv_channels=[2, 2], hidden=8)
    T, y = training_windows(sc, arch, 64, [20.0, 30.0], seed=3)
    assert T.shape[1:] == (3, 12) and y.shape[1] == 3 and T.shape[0] > 100
    model = C2VNN(arch, 12, generator=make_generator(0, "init"))
    cfg = TrainingConfig(steps=60, batch_size=32, lr=3e-3, log_every=20)
    log = train_c2vnn(model, (T, y), cfg, seed=4, validation=(T[:40], y[:40]))
    assert log.records[-1]["loss"] < log.records[0]["loss"] and "validation" in log.records[-1]
    fresh = C2VNN(arch, 12, generator=make_generator(0, "init"))
    from isackit.systems.bistatic.learned import window_sampler
    log2 = train_c2vnn(fresh, window_sampler(sc, arch, [20.0, 30.0]), cfg, seed=4)
    assert log2.records[-1]["loss"] < log2.records[0]["loss"]
    training = C2VNNTraining(snr_db=[20.0, 30.0], num_scenes=16, validation_scenes=4, epochs=2, batch=16)
    store = ModelStore(tmp_path)
    m1, rec1 = trained_c2vnn(store, sc, arch, training, seed=5)
    m2, rec2 = trained_c2vnn(ModelStore(tmp_path), sc, arch, training, seed=5)  # a new run: loaded, not retrained
    assert rec1 == rec2 and all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))
    assert json.loads((tmp_path / "s1-ifft-c2vnn" / rec1["key"] / "config.json").read_text())
    g = make_generator(6, "x")
    p = sample_paths(sc, 3, g)
    Hhat, _, _ = observe(sc, channel(sc, p), 20.0, g)
    est, peaks = c2vnn_estimate(m1, Hhat, 3, sc.delay_resolution)
    assert est.shape == (3, 3, 3) and torch.isfinite(est).all()


# ---------------------------------------------------------------------------------------
# grid baselines
# ---------------------------------------------------------------------------------------
def test_grid_only_baselines_return_grid_points():
    sc = SC.model_copy(update={"num_subcarriers": 16, "cyclic_prefix": 0.5, "num_tx": 3, "num_rx": 4,
                               "symbols_per_subframe": 4, "num_paths": 2})
    g = make_generator(7, "grid")
    p = sample_paths(sc, 3, g)
    Hhat, _, _ = observe(sc, channel(sc, p), 20.0, g)
    rx, tx = arrays(sc)
    a = SearchGrid.degrees(-60, 60, 5.0, name="aoa")
    d = SearchGrid.degrees(-60, 60, 5.0, name="aod")
    t = SearchGrid(0.0, 8 * sc.delay_resolution, sc.delay_resolution / 4, name="delay")
    df = sc.subcarrier_spacing_hz
    for est in (angle_angle_delay_bartlett(Hhat, rx, tx, 2, a, d, t, df, grid_only=True),
                angle_angle_delay_music(Hhat, rx, tx, 2, a, d, t, df, grid_only=True, subband=8),
                angle_angle_delay_dml(Hhat, rx, tx, 2, a, d, t, df, grid_only=True)):
        e = est.estimates
        for col, grid in enumerate((a, d, t)):
            pts = grid.points(torch.float64)
            dist = (e[..., col, None] - pts).abs().amin(-1)
            assert (dist <= 1e-12 * max(1.0, float(pts.abs().max()))).all()


def test_dml_beats_bartlett_on_close_paths():
    """Two paths one resolution cell apart: the K-source DML separates them on the grid."""
    from isackit.geometry import ula
    from isackit.impairments import ArrayModel
    from isackit.signals import OFDMConfig, bistatic_channel
    cfg = OFDMConfig(16, 960e3, 30e9)
    rx, tx = ula(6), ula(4)
    aoa = torch.tensor([0.10, 0.30], dtype=torch.float64)
    aod = torch.tensor([0.0, 0.05], dtype=torch.float64)
    tau = torch.tensor([4.0, 5.0], dtype=torch.float64) / (16 * 960e3)
    H = bistatic_channel(ArrayModel(rx), ArrayModel(tx), aoa, aod, tau, torch.tensor([1.0, 0.8j], dtype=torch.complex128), cfg)
    a = SearchGrid(-0.5, 0.5, 0.05, name="aoa")
    d = SearchGrid(-0.5, 0.5, 0.05, name="aod")
    t = SearchGrid(0.0, 10 / (16 * 960e3), 0.5 / (16 * 960e3), name="delay")
    e = angle_angle_delay_dml(H, rx, tx, 2, a, d, t, 960e3, grid_only=True).estimates
    assert torch.allclose(e[:, 0], aoa, atol=1e-12) and torch.allclose(e[:, 2], tau, atol=1e-15)


# ---------------------------------------------------------------------------------------
# the experiment: config errors (exit code 2) and a tiny end-to-end run
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("override, needle", [
    ("paraming.sub_sizes=[11, 4, 32]", "M_r' = 11"),        # sub-array larger than the array
    ("paraming.sub_sizes=[10, 8, 63]", "Hankel"),            # K = 3 > what the Hankel sizes allow
    ("snr_db=[]", "snr_db"),                                  # an empty SNR list
    ("trials=-3", "trials"),
])
def test_bad_configs_are_one_line_errors(override, needle):
    from isackit.experiments.config import ExperimentError, parse_override
    from isackit.experiments.registry import resolve_spec
    with pytest.raises(ExperimentError) as err:
        resolve_spec("bistatic", smoke=True, overrides=[parse_override(override)])
    msg = str(err.value)
    assert "\n" not in msg and needle in msg, msg


@pytest.mark.parametrize("override, needle", [
    ("paraming.sub_sizes=[5, 9, 32]", "M_t' = 9"),           # sub-array larger than the array
    ("paraming.sub_sizes=[10, 8, 63]", "Hankel"),            # more paths than the Hankel sizes allow
    ("snr_db=[]", "snr_db"),                                  # no SNR point
])
def test_cli_bad_config_exit_code_2(override, needle, capsys):
    """``isackit run`` (in process: the same entry point as the console script) refuses the
    config before any unit runs: one line on stderr, exit code 2."""
    from isackit.cli import main
    with pytest.raises(SystemExit) as exc:
        main(["run", "bistatic", "--smoke", "--set", override])
    out, err = capsys.readouterr()
    assert exc.value.code == 2, err
    lines = [ln for ln in (err + out).strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and needle in lines[0], err


def test_experiment_points_and_tiny_units(tmp_path):
    from isackit.experiments.registry import resolve_spec
    from isackit.experiments.units import WorkUnit
    spec = resolve_spec("bistatic", smoke=True, overrides=[("c2vnn.model_dir", tmp_path.name),
                                                          ("methods", ["paraming", "root_music_2d", "bartlett"])])
    exp = spec.experiment()
    pts = exp.points(spec.config)
    assert {p["panel"] for p in pts} == {"complexity", "accuracy", "latency", "timing_offset", "resolution",
                                         "doppler"}
    acc = [p for p in pts if p["panel"] == "accuracy"][0]
    out = exp.run_unit(spec.config, WorkUnit(0, acc, 0, 3, 11), torch.device("cpu"))
    rows = getattr(out, "rows", out)
    by = {(r.method, r.metric): r for r in rows}
    assert ("CRB", "aoa_mse_rad2") in by and by[("CRB", "aoa_mse_rad2")].kind == "bound"
    crb = by[("CRB", "aoa_mse_rad2")].total
    par = by[("PARAMING", "aoa_mse_rad2")]
    assert par.total / par.count < 20 * crb  # PARAMING near the bound at 10 dB
    assert ("RootMUSIC-2D", "aod_mse_rad2") in by and ("RootMUSIC-2D", "delay_mse_tres2") not in by


def test_root_music_2d_operation_count_per_order():
    """The count of each rooting order is the mirror image of the other; "both" is the two
    orders plus the null spectrum of the 2K candidate pairs; a bad order is a one-line error."""
    from isackit.systems.bistatic.complexity import CMAC, root_music_2d_ops
    Mt, Mr, N, K = 8, 10, 64, 3
    full = CMAC * (Mr * Mt) ** 2 * N + 36.0 * (Mr * Mt) ** 3
    a, d, both = (root_music_2d_ops(Mt, Mr, N, K, f) for f in ("aoa", "aod", "both"))
    assert math.isclose(both, a + d - full + 2 * CMAC * K * (Mr * Mt * K + Mr * Mt), rel_tol=1e-12)
    assert math.isclose(root_music_2d_ops(Mr, Mt, N, K, "aoa"), d, rel_tol=1e-12)  # swapped arrays
    with pytest.raises(ValueError, match="first"):
        root_music_2d_ops(Mt, Mr, N, K, "rx")
