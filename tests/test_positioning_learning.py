"""System S4 (seed 004): autoencoders, checkpoints and the ``positioning`` experiment (tiny sizes)."""

import math

import pytest
import torch

from isackit.learning.checkpoint import load_checkpoint
from isackit.systems.positioning.autoencoder import (
    AoDAutoencoder,
    PositionAutoencoder,
    PrecoderNet,
    load_autoencoder,
    save_autoencoder,
    train_autoencoder,
)
from isackit.systems.positioning.scenario import (
    PositioningConfig,
    build_arrays,
    observe,
    sample_aod_batch,
    sample_position_batch,
)


@pytest.fixture(scope="module")
def cfg():
    return PositioningConfig()


def test_precoder_net_shapes_and_unit_norm(gen):
    net = PrecoderNet(32, 20, hidden=8, depth=2)
    xi = torch.randn(4, 3, 3, generator=gen)
    F = net(xi)
    assert F.shape == (4, 3, 32, 20) and F.is_complex()
    assert torch.allclose(torch.linalg.matrix_norm(F), torch.ones(4, 3), atol=1e-5)


def test_autoencoder_outputs_stay_in_sector_and_prior(cfg, gen):
    arrays = build_arrays(cfg, "coupling")
    ae = AoDAutoencoder(2, 32, 20, hidden=8, depth=2)
    s, th = sample_aod_batch(cfg, 64, gen)
    est = ae(s, th, arrays, 10.0, gen)
    assert est.shape == (64, 2)
    assert ((est >= s[..., 0] - 1e-6) & (est <= s[..., 1] + 1e-6)).all()
    pe = PositionAutoencoder(2, 32, 20, cfg.prior_centre, cfg.prior_side, hidden=8, depth=2)
    p, th, s = sample_position_batch(cfg, 64, gen)
    assert pe(s, th, arrays, 10.0, gen).shape == (64, 2)


def test_observation_gradcheck_float64(gen):
    """y = α Fᵀ ã + n is differentiable in F (the path the precoder is trained through)."""
    F = torch.randn(2, 4, 3, dtype=torch.complex128, generator=gen, requires_grad=True)
    a = torch.randn(2, 4, dtype=torch.complex128, generator=gen)
    alpha = torch.randn(2, dtype=torch.complex128, generator=gen)
    assert torch.autograd.gradcheck(lambda f: observe(f, a, alpha, None), (F,))
    net = PrecoderNet(4, 3, hidden=4, depth=1).double()
    xi = torch.randn(2, 3, dtype=torch.float64, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: torch.view_as_real(net(x)), (xi,))


def test_training_decreases_loss_and_checkpoint_round_trips(cfg, tmp_path):
    arrays = build_arrays(cfg, "spacing")
    torch.manual_seed(0)
    ae = AoDAutoencoder(2, 32, 20, hidden=32, depth=2)

    def sample(b, g):
        s, th = sample_aod_batch(cfg, b, g, mode="eval")
        return s, th, th

    log = train_autoencoder(ae, sample, arrays, 20.0, steps=60, batch=256,
                            generator=torch.Generator().manual_seed(1), log_every=10)
    first, last = log["losses"][0], sum(log["losses"][-2:]) / 2
    assert last < 0.5 * first
    path = save_autoencoder(tmp_path / "aod", ae, extra={"snr_db": 20.0})
    assert (path / "weights.safetensors").is_file()
    state, meta = load_checkpoint(path)         # safetensors + JSON: no code is unpickled
    assert meta["kind"] == "aod" and meta["extra"]["snr_db"] == 20.0
    # the state dict also loads with torch.load(weights_only=True) semantics
    torch.save(state, tmp_path / "w.pt")
    again = torch.load(tmp_path / "w.pt", weights_only=True)
    assert all(torch.equal(again[k], v) for k, v in state.items())
    ae2, extra = load_autoencoder(path)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    s, th = sample_aod_batch(cfg, 16, torch.Generator().manual_seed(3), mode="eval")
    with torch.no_grad():
        assert torch.equal(ae(s, th, arrays, 20.0, g1), ae2(s, th, arrays, 20.0, g2))


def test_positioning_experiment_tiny(tmp_path):
    from isackit.experiments.registry import resolve_spec
    from isackit.experiments.units import WorkUnit, aggregate_rows

    spec = resolve_spec("positioning", quick=True, overrides=[
        ("hidden", 8), ("depth", 2), ("train_steps", 3), ("train_batch", 32), ("trials", 20), ("chunk", 20),
        ("snr_db", [10.0]), ("train_snr_db", [10.0]), ("impairments", ["coupling"]),
        ("spacing_stds", [0.01]), ("zetas", [-0.5]), ("pattern_step_deg", 90.0),
        ("model_dir", str(tmp_path / "models")), ("bound_angles", 5), ("power_angles", 11), ("ml_grid", 64)])
    exp = spec.experiment()
    pts = exp.points(spec.config)
    assert [p["panel"] for p in pts] == ["pattern"] * 3 + ["snr", "sigma", "zeta"]
    snr_point = pts[3]
    rows = exp.run_unit(spec.config, WorkUnit(3, snr_point, 0, 20, 11), torch.device("cpu"))
    agg = aggregate_rows(rows)
    for metric in ("aod_rmse_deg_bs1", "aod_rmse_deg_bs2", "position_rmse_m"):
        for method in ("benchmark", "learned", "MCRB (benchmark)"):
            assert math.isfinite(agg[(method, metric)][0])
    for name in ("CRB (benchmark)", "CRB (learned)"):
        assert agg[(name, "aod_rmse_deg_bs1")][2] == "bound"
    assert agg[("PEB (learned)", "position_rmse_m")][2] == "bound"
    # trained models were saved once and are reused
    saved = sorted(p.name for p in (tmp_path / "models").iterdir())
    assert len(saved) == 2
    rows2 = exp.run_unit(spec.config, WorkUnit(0, pts[0], 0, 1, 12), torch.device("cpu"))
    assert {r.metric for r in rows2} == {"beam_gain_bs1", "beam_gain_bs2"}
    assert len(sorted((tmp_path / "models").iterdir())) == 2
