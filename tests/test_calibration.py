"""System S0 (seed 000): station, OMP receiver and its relaxation, training loop, checkpoints.

Tiny sizes throughout (8 antennas, 16 subcarriers): the statistical outcome is shown by the
``calibration`` experiment, not here.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from isackit.impairments.base import ArrayModel
from isackit.impairments.displacement import ElementDisplacement
from isackit.impairments.gain_phase import GainPhaseError
from isackit.systems.calibration import transceiver as T
from isackit.systems.calibration.config import CalibrationConfig
from isackit.systems.calibration.evaluation import parameter_errors
from isackit.systems.calibration.experiment import calibrate_method, load_calibration, save_calibration
from isackit.systems.calibration.station import Station, learnable_array
from isackit.systems.calibration.training import train_calibration

TINY = dict(num_tx=8, num_rx=8, num_subcarriers=16, num_angle_grid=91, num_range_grid=24,
            max_targets=2, omp_iterations=2, tx_power_dbm=50.0, steps=6, batch_size=8,
            threshold_frames=200, sector_beam_points=4)


def tiny(**kw) -> CalibrationConfig:
    return CalibrationConfig(**{**TINY, **kw})


# ---------------------------------------------------------------------------------- config
def test_config_validates():
    with pytest.raises(ValueError, match="sensing_loss"):
        tiny(sensing_loss="nope")
    with pytest.raises(ValueError, match="min_targets"):
        tiny(min_targets=3, max_targets=2)
    with pytest.raises(ValueError, match="unknown calibration config keys"):
        CalibrationConfig.from_dict({"bogus": 1})
    cfg = tiny()
    assert CalibrationConfig.from_dict(cfg.to_dict()) == cfg
    # σ² = k T NF Δf
    assert math.isclose(cfg.noise_variance, 1.380649e-23 * 290 * 10 ** 0.8 * 240e3, rel_tol=1e-12)


# ---------------------------------------------------------------------------------- station
def test_station_channel_matches_explicit_sum():
    cfg = tiny()
    st = Station(cfg, 3, dtype=torch.float64)
    sc = st.draw_scenes(4, torch.Generator().manual_seed(0))
    tx, rx = st.true_models()
    f = T.isac_precoder(tx, sc, cfg)
    Y = st.sense(f, sc, None)
    n = torch.arange(cfg.num_subcarriers, dtype=torch.float64)
    ref = torch.zeros_like(Y)
    for b in range(4):
        for k in range(cfg.max_targets):
            if not sc.target_mask[b, k]:
                continue
            th = sc.target_angle[b, k].reshape(1)
            at, ar = tx.steering(th)[:, 0], rx.steering(th)[:, 0]
            bvec = torch.exp(-2j * math.pi * n * cfg.subcarrier_spacing * sc.target_delay[b, k])
            ref[b] += sc.target_gain[b, k] * torch.outer(ar, (at @ f[b]) * sc.symbols[b] * bvec)
    torch.testing.assert_close(Y, ref)
    assert torch.allclose(torch.linalg.vector_norm(f, dim=-1), torch.ones(4, dtype=torch.float64))


# ---------------------------------------------------------------------------------- OMP
def _numpy_omp(Y, x, A, Bd, K):
    """Reference OMP with the explicit (G_a G_d × M N) dictionary of normalised atoms."""
    M, N = Y.shape
    atoms = np.einsum("ma,dn->admn", A, x[None, :] * Bd).reshape(A.shape[1] * Bd.shape[0], M * N)
    norms = np.linalg.norm(atoms, axis=1)
    y = Y.reshape(-1)
    r, picked = y.copy(), []
    for _ in range(K):
        c = np.abs(atoms.conj() @ r) / norms
        picked.append(int(np.argmax(c)))
        D = atoms[picked].T
        coef, *_ = np.linalg.lstsq(D, y, rcond=None)
        r = y - D @ coef
    return [(p // Bd.shape[0], p % Bd.shape[0]) for p in picked], np.linalg.norm(r) ** 2


def test_omp_matches_explicit_dictionary_reference():
    cfg = tiny(max_targets=3, omp_iterations=3, num_angle_grid=41, num_range_grid=12,
               sector_width_min_deg=20.0, sector_width_max_deg=20.0)
    st = Station(cfg, 1, dtype=torch.float64)
    sc = st.draw_scenes(3, torch.Generator().manual_seed(2))
    tx, rx = st.true_models()
    f = T.isac_precoder(tx, sc, cfg)
    Y = st.sense(f, sc, torch.Generator().manual_seed(3))
    grid = T.ReceiverGrid.from_config(cfg, dtype=torch.float64)
    start = grid.window_start(sc.sector_center)
    det = T.omp_receiver(Y, sc.symbols, rx, grid, start, 3, 0.0, cfg.noise_variance)
    A = rx.steering(grid.angles).numpy()
    for b in range(3):
        win = slice(int(start[b]), int(start[b]) + grid.window)
        ref, ref_res = _numpy_omp(Y[b].numpy(), sc.symbols[b].numpy(), A[:, win], grid.delay_atoms.numpy(), 3)
        got = list(zip((det.angle_index[b] - start[b]).tolist(), det.delay_index[b].tolist(), strict=True))
        assert got == ref
        assert math.isclose(float(det.residual[b]), ref_res, rel_tol=1e-6)
        # the LS fit at the picked (θ, τ) used by the supervised loss gives the same residual
        res = T.residual_energy(Y[b:b + 1], sc.symbols[b:b + 1], rx, det.angle[b:b + 1], det.delay[b:b + 1],
                                torch.ones(1, 3, dtype=torch.bool), cfg.ofdm)
        assert math.isclose(float(res), ref_res, rel_tol=1e-6)


def test_omp_noise_free_on_grid_target_is_exact():
    cfg = tiny(max_targets=1, min_targets=1, omp_iterations=1)
    st = Station(cfg, 5, dtype=torch.float64)
    grid = T.ReceiverGrid.from_config(cfg, dtype=torch.float64)
    sc = st.draw_scenes(2, torch.Generator().manual_seed(0))
    ia, idl = torch.tensor([30, 60]), torch.tensor([5, 17])
    sc.target_angle[:, 0], sc.target_range[:, 0] = grid.angles[ia], grid.delays[idl] * 299_792_458.0 / 2
    sc.sector_center = sc.target_angle[:, 0].clone()
    tx, rx = st.true_models()
    f = T.isac_precoder(tx, sc, cfg)
    Y = st.sense(f, sc, None)
    det = T.omp_receiver(Y, sc.symbols, rx, grid, grid.window_start(sc.sector_center), 1, 0.0, cfg.noise_variance)
    assert det.angle_index[:, 0].tolist() == ia.tolist() and det.delay_index[:, 0].tolist() == idl.tolist()
    assert (det.residual / Y.abs().pow(2).sum((-2, -1))).max() < 1e-10
    res = T.residual_energy(Y, sc.symbols, rx, sc.target_angle, sc.target_delay, sc.target_mask, cfg.ofdm)
    assert (res / Y.abs().pow(2).sum((-2, -1))).max() < 1e-10


def test_relaxation_gradcheck_float64():
    """Soft OMP estimates and the residual loss w.r.t. Y and the learned Rx gains/phases/positions."""
    cfg = tiny(num_rx=4, num_subcarriers=6, num_angle_grid=31, num_range_grid=8, omp_iterations=2,
               softmax_window=1, softmax_temperature=0.3)
    st = Station(cfg, 2, dtype=torch.float64)
    sc = st.draw_scenes(2, torch.Generator().manual_seed(1))
    tx, rx0 = st.true_models()
    Y0 = st.sense(T.isac_precoder(tx, sc, cfg), sc, torch.Generator().manual_seed(4))
    grid = T.ReceiverGrid.from_config(cfg, dtype=torch.float64)
    start = grid.window_start(sc.sector_center)
    geom = rx0.geometry
    g0 = torch.ones(4, dtype=torch.float64) * 1.1
    p0 = torch.linspace(-0.3, 0.4, 4, dtype=torch.float64)
    d0 = torch.zeros(4, 3, dtype=torch.float64) + 1e-4 * torch.arange(12, dtype=torch.float64).reshape(4, 3)

    scale = float(Y0.abs().max())

    def fn(Yn, gain, phase, disp):  # Y in units of its largest entry (physical Y is ~1e-5)
        Y = Yn * scale
        rx = ArrayModel(geom, [ElementDisplacement(disp), GainPhaseError(gain, phase)])
        soft = T.omp_receiver(Y, sc.symbols, rx, grid, start, 2, 0.0, cfg.noise_variance, 1, 0.3)
        res = T.residual_energy(Y, sc.symbols, rx, soft.angle, soft.delay, soft.detected, cfg.ofdm)
        e = Y0.abs().pow(2).sum()
        return soft.angle, soft.delay * 1e7, soft.energy / e, soft.residual / e, res / e

    inputs = ((Y0 / scale).requires_grad_(True), g0.requires_grad_(True), p0.requires_grad_(True),
              d0.requires_grad_(True))
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-7, atol=1e-5, rtol=1e-4)


def test_threshold_gives_target_false_alarm_rate():
    cfg = tiny(pfa=0.05)
    st = Station(cfg, 0)
    tr = T.Transceiver(cfg, learnable_array(8, cfg), learnable_array(8, cfg))
    thr = T.calibrate_threshold(tr, st.draw_scenes(2000, torch.Generator().manual_seed(0)),
                                torch.Generator().manual_seed(1))
    sc = st.draw_scenes(2000, torch.Generator().manual_seed(2))
    W = st.noise((2000, cfg.num_rx, cfg.num_subcarriers), torch.Generator().manual_seed(3))
    stat = T.omp_receiver(W, sc.symbols, tr.rx, tr.grid, tr.grid.window_start(sc.sector_center), 1, None,
                          cfg.noise_variance).statistic[:, 0]
    pfa = float((stat > thr).double().mean())
    sd = math.sqrt(0.05 * 0.95 / 2000) + math.sqrt(0.05 * 0.95 / 2000)  # quantile + test noise
    assert abs(pfa - 0.05) < 4 * sd


# ---------------------------------------------------------------------------------- training
class SealedStation(Station):
    """A station whose TRUE impairments can be reached only inside its observation calls, and
    whose observation refuses a precoder that carries a gradient (no true-channel gradient)."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.__dict__["_sealed"] = {"tx": self.__dict__.pop("_tx_true"), "rx": self.__dict__.pop("_rx_true")}

    def __getattr__(self, name):
        if name in ("_tx_true", "_rx_true"):
            if not self.__dict__.get("_observing", False):
                raise RuntimeError(f"calibration read the true impairments ({name})")
            return self.__dict__["_sealed"][name[1:3]]
        raise AttributeError(name)

    def sense(self, f, scenes, generator):
        if f.requires_grad:
            raise RuntimeError("calibration differentiated through the true channel")
        self.__dict__["_observing"] = True  # the property-free flag used by __getattr__
        try:
            return super().sense(f, scenes, generator)
        finally:
            self.__dict__["_observing"] = False

    def ue_receive(self, f, scenes, generator):
        if f.requires_grad:
            raise RuntimeError("calibration differentiated through the true channel")
        self.__dict__["_observing"] = True
        try:
            return super().ue_receive(f, scenes, generator)
        finally:
            self.__dict__["_observing"] = False

    def true_models(self):
        raise RuntimeError("calibration read the true impairments (true_models)")


@pytest.mark.parametrize("method", ["unsupervised_residual", "unsupervised_max_response",
                                    "unsupervised_max_response_adm", "supervised"])
def test_calibration_never_reads_true_impairments(method):
    cfg = tiny(steps=3)
    st = SealedStation(cfg, 4)
    tr, log = calibrate_method(method, cfg, st, seed=0)
    assert len(log.records) > 0
    # the guard itself works: the baselines that need the truth are refused
    with pytest.raises(RuntimeError, match="true impairments"):
        calibrate_method("perfect", cfg, st, seed=0)
    with pytest.raises(RuntimeError, match="true channel"):
        calibrate_method("true_gradient", cfg, st, seed=0)


def test_training_is_deterministic_on_cpu():
    cfg = tiny(steps=4)
    st = Station(cfg, 7)
    a, _ = calibrate_method("unsupervised_residual", cfg, st, seed=3)
    b, _ = calibrate_method("unsupervised_residual", cfg, st, seed=3)
    c, _ = calibrate_method("unsupervised_residual", cfg, st, seed=4)
    sa, sb, sc_ = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc_[k]) for k in sa if sa[k].is_floating_point())


def test_perfect_model_does_not_drift():
    """Started at the true impairments, training keeps them (drift << the uncalibrated error)."""
    cfg = tiny(steps=20, batch_size=16, learning_rate=2e-2)
    st = Station(cfg, 9)
    ttx, trx = st.true_models()
    tr = T.Transceiver(cfg, learnable_array(8, cfg, name="tx"), learnable_array(8, cfg, name="rx"))
    start_err = parameter_errors(tr.rx, trx)
    state = {**{f"tx.{k}": v for k, v in ttx.state_dict().items()}, **{f"rx.{k}": v for k, v in trx.state_dict().items()}}
    tr.load_state_dict({**tr.state_dict(), **state})
    T.calibrate_threshold(tr, st.draw_scenes(200, torch.Generator().manual_seed(0)), torch.Generator().manual_seed(1))
    train_calibration(tr, st, cfg)
    end_err = parameter_errors(tr.rx, trx)
    assert end_err["phase_err_deg"] < 0.25 * start_err["phase_err_deg"]
    assert end_err["position_err_mm"] < 0.25 * start_err["position_err_mm"]


def test_saved_calibration_reloads_with_weights_only(tmp_path):
    cfg = tiny(steps=2)
    st = Station(cfg, 1)
    tr, _ = calibrate_method("unsupervised_residual", cfg, st, seed=0)
    save_calibration(tr, tmp_path / "cal", {"method": "unsupervised_residual"})
    back = load_calibration(tmp_path / "cal")
    assert back.config == tr.config
    for k, v in tr.state_dict().items():
        assert torch.equal(back.state_dict()[k], v), k
    # the .pt form of the same weights loads with weights_only=True
    torch.save(tr.state_dict(), tmp_path / "w.pt")
    state = torch.load(tmp_path / "w.pt", weights_only=True)
    assert set(state) == set(tr.state_dict())
    # the reloaded calibration detects exactly as the original on new data
    sc = st.draw_scenes(4, torch.Generator().manual_seed(5))
    with torch.no_grad():
        Y = st.sense(tr.precoder(sc), sc, torch.Generator().manual_seed(6))
        s1, s2 = tr.detect(Y, sc), back.detect(Y, sc)
    assert torch.equal(s1.angle_index, s2.angle_index) and torch.equal(s1.angle, s2.angle)


@pytest.mark.parametrize("probes", [1, 4])
def test_probe_gradient_estimates_the_true_channel_gradient(probes):
    """E[ĝ] = ∂ℓ/∂f* of the comm loss through the TRUE UE channel (here checked by autograd),
    per scene: two different scenes, each repeated, with ``probes`` pairs per scene."""
    from isackit.systems.calibration.training import probe_gradient

    cfg = tiny(num_tx=4)
    st = Station(cfg, 2, dtype=torch.float64)
    two = st.draw_scenes(2, torch.Generator().manual_seed(0))
    n = 20000 // probes
    sc = two.index(torch.arange(2).repeat_interleave(n))
    tr = T.Transceiver(cfg, learnable_array(4, cfg, dtype=torch.float64), learnable_array(8, cfg, dtype=torch.float64))
    f = tr.precoder(two).detach()
    p_ref = float(st.ue_receive(f, two, None).abs().pow(2).mean())
    fl = f.clone().requires_grad_(True)
    loss = -st.ue_receive(fl, two, None).abs().pow(2).mean(-1).sum() / p_ref   # per-scene losses, summed
    (g_true,) = torch.autograd.grad(loss, fl)
    g_hat = probe_gradient(st, f.repeat_interleave(n, 0), sc, p_ref, 0.2, torch.Generator().manual_seed(1),
                           probes=probes).reshape(2, n, -1).mean(1)
    for b in range(2):
        cos = float((g_hat[b].conj() * g_true[b]).sum().real / (g_hat[b].norm() * g_true[b].norm()))
        assert cos > 0.98, (b, cos)
        assert abs(float(g_hat[b].norm() / g_true[b].norm()) - 1) < 0.05, b
    with pytest.raises(ValueError, match="probes"):
        probe_gradient(st, f, two, p_ref, 0.2, torch.Generator().manual_seed(1), probes=0)


def test_learning_rate_schedule_is_a_cosine_from_one_to_the_final_fraction():
    from isackit.systems.calibration.training import learning_rate_factor

    fac = [learning_rate_factor(t, 11, 0.1) for t in range(11)]
    assert math.isclose(fac[0], 1.0) and math.isclose(fac[-1], 0.1, abs_tol=1e-12)
    assert math.isclose(fac[5], 0.55)                        # half-way: the mean of the two ends
    assert all(a > b for a, b in zip(fac, fac[1:]))
    assert all(learning_rate_factor(t, 11, 1.0) == 1.0 for t in range(11))
    with pytest.raises(ValueError, match="lr_final_fraction"):
        tiny(lr_final_fraction=0.0)


@pytest.mark.parametrize("tx_from_sensing", [False, True])
def test_sensing_only_training_moves_the_tx_model_only_if_asked(tx_from_sensing):
    """At w = 1 (no comm loss) nothing but the sensing surrogate can move the Tx model."""
    cfg = tiny(steps=5, loss_weight=1.0, tx_from_sensing=tx_from_sensing)
    st = Station(cfg, 3)
    tr, _ = calibrate_method("unsupervised_residual", cfg, st, seed=0)
    nominal = learnable_array(8, cfg, name="tx").state_dict()
    moved = [not torch.equal(v, nominal[k]) for k, v in tr.tx.state_dict().items()]
    assert any(moved) == tx_from_sensing
    rx_nominal = learnable_array(8, cfg, name="rx").state_dict()
    assert any(not torch.equal(v, rx_nominal[k]) for k, v in tr.rx.state_dict().items())   # the Rx did learn


def test_experiment_unit_rows_cover_every_method(tmp_path):
    """The registered experiment at a tiny size: one row per (method, metric), all finite."""
    from isackit.experiments import WorkUnit
    from isackit.experiments.units import aggregate_rows
    from isackit.systems.calibration.experiment import METHODS, CalibrationExperiment, CalibrationExperimentConfig

    cfg = CalibrationExperimentConfig(experiment="calibration", trials=16, chunk=16,
                                      scenario={**TINY, "steps": 2}, save_dir=str(tmp_path))
    exp = CalibrationExperiment()
    assert [p["w"] for p in exp.points(cfg)] == [0.5, 0.0, 1.0]
    rows = exp.run_unit(cfg, WorkUnit(0, {"w": 0.5}, 0, 16, 123), torch.device("cpu"))
    agg = aggregate_rows(rows)
    assert {m for m, _ in agg} == set(METHODS)
    for m in METHODS:
        for metric in ("gospa_m", "pd", "pfa", "ser", "ue_snr_db"):
            assert math.isfinite(agg[(m, metric)][0]), (m, metric)
    assert (tmp_path / "w0.5" / "chunk0" / "unsupervised_residual" / "weights.safetensors").is_file()
    back = load_calibration(tmp_path / "w0.5" / "chunk0" / "unsupervised_residual")
    assert back.config.sensing_loss == "residual"
