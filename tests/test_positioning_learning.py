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


# -- hybrid decoder (our deviation: correction around the model-based estimate) ----------------

from isackit.systems.positioning.autoencoder import AoDDecoder, PositionDecoder, geometric_aods, hybrid_from  # noqa: E402
from isackit.systems.positioning.benchmark import ml_aod  # noqa: E402


def _tiny_pair(cfg):
    torch.manual_seed(0)
    q, psi = cfg.bs_tensor()
    aod = AoDAutoencoder(2, 32, 20, hidden=8, depth=2)
    pos = PositionAutoencoder(2, 32, 20, cfg.prior_centre, cfg.prior_side, hidden=8, depth=2)
    return aod, pos, q, psi


def test_hybrid_starts_at_model_based_estimate_and_reaches_truth_at_high_snr(cfg):
    """Zero-initialised correction: θ̂ = ml_aod(y, F, nominal, window); with the window opened to
    the whole sector and 60 dB SNR the ML estimate of an unimpaired array is the true AoD."""
    aod, pos, q, psi = _tiny_pair(cfg)
    arrays = build_arrays(cfg)
    h = hybrid_from(aod, ml_grid=128)
    assert all(torch.equal(a, b) for a, b in zip(h.precoder_nets.state_dict().values(),
                                                   aod.precoder_nets.state_dict().values()))
    h.window = math.pi  # search the whole sector
    g = torch.Generator().manual_seed(2)
    s, th = sample_aod_batch(cfg, 64, g, mode="eval")
    with torch.no_grad():
        est = h(s, th, arrays, 60.0, torch.Generator().manual_seed(3))
        y, F = h.observe_with_precoders(s, th, arrays, 60.0, torch.Generator().manual_seed(3))
    ref = torch.stack([ml_aod(y[:, i], F[:, i], arrays[i].ideal(), s[:, i], 128, 8) for i in range(2)], -1)
    assert torch.equal(est, ref)                     # the library's ML, nothing re-implemented
    assert (est - th).abs().max() < 1e-3             # rad; ≈ 0.06°
    hp = hybrid_from(pos, ml_grid=128, bs_positions=q.tolist(), bs_orientations=psi.tolist())
    hp.window = math.pi
    p, th, s = sample_position_batch(cfg, 64, g)
    with torch.no_grad():
        p_hat = hp(s, th, arrays, 60.0, torch.Generator().manual_seed(4))
    inside = ((p - torch.tensor(cfg.prior_centre)).abs() < 0.45 * cfg.prior_side).all(-1)
    # a ULA sees θ and 180° - θ alike: skip draws whose sector holds both (scenario module doc)
    mirror = math.pi - th
    ambiguous = ((mirror >= s[..., 0]) & (mirror <= s[..., 1]) & ((mirror - th).abs() > 1e-2)).any(-1)
    keep = inside & ~ambiguous
    assert keep.sum() > 32
    assert (p_hat - p)[keep].norm(dim=-1).max() < 0.01   # m: exact bearing intersection


def test_hybrid_requires_geometry_and_guess(cfg):
    aod, pos, q, psi = _tiny_pair(cfg)
    with pytest.raises(ValueError, match="bs_positions"):
        hybrid_from(pos)
    dec = AoDDecoder(20, hidden=4, hybrid=True)
    with pytest.raises(ValueError, match="guess"):
        dec(torch.zeros(3, 20, dtype=torch.complex64), torch.tensor([[0.0, 0.2]]).expand(3, 2), 10.0)


def test_hybrid_decoders_gradcheck_float64(gen):
    dec = AoDDecoder(3, hidden=4, hybrid=True).double()
    torch.nn.init.normal_(dec.net[-1].weight, generator=gen)       # not the zero initialisation
    sec = torch.tensor([[0.1, 0.5], [-0.3, 0.0]], dtype=torch.float64)
    y = torch.randn(2, 3, dtype=torch.complex128, generator=gen, requires_grad=True)
    guess = torch.tensor([0.2, -0.1], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda yy, gg: dec(yy, sec, 10.0, gg), (y, guess))
    pdec = PositionDecoder(2, 3, (0.5, 5.0), 3.0, hidden=4, hybrid=True).double()
    torch.nn.init.normal_(pdec.net[-1].weight, generator=gen)
    yp = torch.randn(4, 2, 3, dtype=torch.complex128, generator=gen, requires_grad=True)
    pg = torch.randn(4, 2, dtype=torch.float64, generator=gen, requires_grad=True)
    u = torch.rand(4, 4, dtype=torch.float64, generator=gen)
    assert torch.autograd.gradcheck(lambda yy, pp: pdec(yy, 10.0, pp, u), (yp, pg))


def test_decoder_finetune_is_deterministic_and_freezes_precoder(cfg, tmp_path):
    arrays = build_arrays(cfg, "coupling")
    aod, pos, q, psi = _tiny_pair(cfg)

    def sample(b, g):
        p, th, s = sample_position_batch(cfg, b, g, repeats=4)
        return s, th, p

    runs = []
    for _ in range(2):
        torch.manual_seed(5)  # initialisation of the correction net (the experiment seeds it per model key)
        h = hybrid_from(pos, ml_grid=32, bs_positions=q.tolist(), bs_orientations=psi.tolist())
        before = {k: v.clone() for k, v in h.state_dict().items()}
        train_autoencoder(h, sample, arrays, 20.0, steps=3, batch=64, generator=torch.Generator().manual_seed(7),
                          train_precoder=False)
        after = h.state_dict()
        for k in before:
            if k.startswith(("precoder_nets", "coarse")):
                assert torch.equal(before[k], after[k]), k      # frozen
        assert not torch.equal(before["decoder.net.0.weight"], after["decoder.net.0.weight"])
        assert all(p.requires_grad for p in h.parameters())     # freezing is undone afterwards
        runs.append(after)
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    path = save_autoencoder(tmp_path / "hyb", h)
    h2, _ = load_autoencoder(path)
    s = sample_position_batch(cfg, 8, torch.Generator().manual_seed(1))
    with torch.no_grad():
        a = h(s[2], s[1], arrays, 20.0, torch.Generator().manual_seed(2))
        b = h2(s[2], s[1], arrays, 20.0, torch.Generator().manual_seed(2))
    assert torch.equal(a, b)


def test_geometric_aods_matches_ml_aod_per_bs(cfg, gen):
    arrays = [a.ideal() for a in build_arrays(cfg)]
    aod, _, _, _ = _tiny_pair(cfg)
    s, th = sample_aod_batch(cfg, 16, gen, mode="eval")
    with torch.no_grad():
        y, F = aod.observe_with_precoders(s, th, arrays, 20.0, gen)
    got = geometric_aods(y, F, arrays, s, 64, 8)
    assert got.shape == (16, 2)
    assert torch.equal(got[:, 1], ml_aod(y[:, 1], F[:, 1], arrays[1], s[:, 1], 64, 8))


def test_positioning_experiment_hybrid_decoder_tiny(tmp_path):
    """``decoder = "hybrid"``: seed model trained first, then a hybrid model saved under its own key."""
    from isackit.experiments.registry import resolve_spec
    from isackit.experiments.units import WorkUnit, aggregate_rows

    spec = resolve_spec("positioning", quick=True, overrides=[
        ("hidden", 8), ("depth", 2), ("train_steps", 3), ("train_batch", 32), ("trials", 20), ("chunk", 20),
        ("snr_db", [20.0]), ("train_snr_db", [20.0]), ("impairments", ["spacing"]), ("panels", ["snr"]),
        ("decoder", "hybrid"), ("finetune_steps", 2), ("hybrid_grid", 16),
        ("model_dir", str(tmp_path / "models")), ("bound_angles", 5), ("power_angles", 11), ("ml_grid", 64)])
    exp = spec.experiment()
    (pt,) = exp.points(spec.config)
    agg = aggregate_rows(exp.run_unit(spec.config, WorkUnit(0, pt, 0, 20, 11), torch.device("cpu")))
    for metric in ("aod_rmse_deg_bs1", "position_rmse_m"):
        assert math.isfinite(agg[("learned", metric)][0])
    names = sorted(p.name.split("-")[0] + ("-hybrid" if "hybrid" in p.name else "")
                   for p in (tmp_path / "models").iterdir())
    assert names == ["aod", "aod-hybrid", "position", "position-hybrid"]


def test_hybrid_correction_warm_start_chains_over_training_snrs(tmp_path):
    """``finetune_warm_steps``: the 20 dB correction decoder starts from the 10 dB one (not zeros),
    the coarse decoder and precoders still come from the 20 dB seed model, and each model is
    stored once under its own key."""
    from isackit.experiments.registry import resolve_spec
    from isackit.systems.positioning import experiment as E
    from isackit.systems.positioning.scenario import PositioningConfig

    spec = resolve_spec("positioning", quick=True, overrides=[
        ("hidden", 8), ("depth", 2), ("train_steps", 3), ("warm_steps", 2), ("train_batch", 32),
        ("train_snr_db", [10.0, 20.0]), ("decoder", "hybrid"), ("finetune_steps", 2), ("finetune_warm_steps", 1),
        ("finetune_lr", 1e-2), ("hybrid_grid", 16), ("model_dir", str(tmp_path / "models"))])
    cfg, sc = spec.config, PositioningConfig(impairment="coupling")
    E._MODELS.clear()
    low = E.trained_model(cfg, "aod", sc, 10.0)
    seen = {}
    real_hybrid_from = E.hybrid_from

    def spy(base, *args, correction_from=None, **kw):
        seen["from"] = correction_from
        model = real_hybrid_from(base, *args, correction_from=correction_from, **kw)
        seen["start"] = {k: v.clone() for k, v in model.decoder.state_dict().items()}
        seen["coarse"] = {k: v.clone() for k, v in model.coarse.state_dict().items()}
        return model

    E.hybrid_from = spy
    try:
        high = E.trained_model(cfg, "aod", sc, 20.0)
    finally:
        E.hybrid_from = real_hybrid_from
    assert seen["from"] is low
    assert all(torch.equal(seen["start"][k], v) for k, v in low.decoder.state_dict().items())
    assert any(v.abs().sum() > 0 for k, v in seen["start"].items() if k.endswith("weight"))
    base20 = E._seed_model(cfg, "aod", sc, 20.0)
    assert all(torch.equal(seen["coarse"][k], v) for k, v in base20.decoder.state_dict().items())
    assert all(torch.equal(a, b) for a, b in zip(high.precoder_nets.parameters(), base20.precoder_nets.parameters()))
    assert not torch.equal(high.decoder.net[-1].weight, low.decoder.net[-1].weight)   # it trained further
    hybrids = sorted(p.name for p in (tmp_path / "models").iterdir() if "hybrid" in p.name)
    assert len(hybrids) == 2
    E._MODELS.clear()
    again = E.trained_model(cfg, "aod", sc, 20.0)                 # reloaded from disk, same weights
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), high.state_dict().values()))
    with pytest.raises(ValueError, match="hybrid aod"):
        real_hybrid_from(base20, correction_from=base20)


def test_positioning_figures_from_a_results_table(tmp_path):
    """Seed-style figures: one per precoder-response table, per impairment on the SNR panel and per
    sweep; called by the generic plotting through the experiment's hook; panels without data skipped."""
    import pandas as pd

    import importlib

    importlib.import_module("isackit.systems.positioning.experiment")   # registers the experiment and its hook
    from isackit.plotting import plot_results
    from isackit.systems.positioning.figures import positioning_figures

    recs = []
    for imp in ("none", "coupling"):
        for x in (-90.0, 0.0, 50.0):
            for bs in (1, 2):
                for method in ("benchmark", "learned"):
                    recs.append(dict(panel="pattern", impairment=imp, x=x, method=method,
                                     metric=f"beam_gain_bs{bs}", value=1.0 + bs, n_trials=1))
        for x in (0.0, 10.0):
            for metric, bound in (("aod_rmse_deg_bs1", "CRB"), ("aod_rmse_deg_bs2", "CRB"), ("position_rmse_m", "PEB")):
                for method in ("benchmark", "learned", f"{bound} (benchmark)", f"{bound} (learned)"):
                    recs.append(dict(panel="snr", impairment=imp, x=x, method=method, metric=metric,
                                     value=10.0 ** (-x / 20), n_trials=10))
    recs += [dict(panel="zeta", impairment="coupling", x=z, method=m, metric="position_rmse_m", value=0.1,
                  n_trials=10) for z in (-1.0, -0.5) for m in ("benchmark", "learned", "MCRB (benchmark)")]
    df = pd.DataFrame.from_records(recs)
    names = sorted(p.name for p in positioning_figures(df, {}, tmp_path / "a"))
    assert names == sorted(f"{s}.{e}" for s in ("precoder_responses", "rmse_vs_snr_none", "rmse_vs_snr_coupling",
                                               "position_rmse_vs_zeta") for e in ("png", "svg"))
    assert positioning_figures(df.iloc[:0], {}, tmp_path / "b") == []
    written = {p.name for p in plot_results(df, {"experiment": "positioning", "params": ["panel", "impairment", "x"],
                                                 "bounds": []}, tmp_path / "c")}
    assert {"precoder_responses.png", "position_rmse_vs_zeta.png"} <= written
