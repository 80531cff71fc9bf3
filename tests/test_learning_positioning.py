"""Learned AoD / position estimation (learning.positioning, seed 004): networks, hybrid decoders, training."""

import math

import pytest
import torch

from isackit.estimators.positioning import ml_aod
from isackit.learning.positioning import (
    AoDAutoencoder,
    AoDDecoder,
    PositionAutoencoder,
    PositionDecoder,
    PrecoderNet,
    geometric_aods,
    hybrid_from,
    observe,
    train_autoencoder,
)
from isackit.learning.training import TrainingConfig
from isackit.seeding import make_generator
from isackit.systems.positioning.scenario import (
    PositioningConfig,
    build_arrays,
    sample_aod_batch,
    sample_position_batch,
)


@pytest.fixture(scope="module")
def cfg():
    return PositioningConfig()


def _tiny_pair(cfg, seed=0):
    q, psi = cfg.bs_tensor()
    aod = AoDAutoencoder(2, 32, 20, hidden=8, depth=2, generator=make_generator(seed, "aod"))
    pos = PositionAutoencoder(2, 32, 20, cfg.prior_centre, cfg.prior_side, hidden=8, depth=2,
                              generator=make_generator(seed, "pos"))
    return aod, pos, q, psi


def test_precoder_net_shapes_and_unit_norm(gen):
    net = PrecoderNet(32, 20, hidden=8, depth=2, generator=gen)
    xi = torch.randn(4, 3, 3, generator=gen)
    F = net(xi)
    assert F.shape == (4, 3, 32, 20) and F.is_complex()
    assert torch.allclose(torch.linalg.matrix_norm(F), torch.ones(4, 3), atol=10 * torch.finfo(torch.float32).eps)


def test_autoencoder_outputs_stay_in_sector_and_prior(cfg, gen):
    arrays = build_arrays(cfg, "coupling")
    aod, pos, _, _ = _tiny_pair(cfg)
    s, th = sample_aod_batch(cfg, 64, gen)
    est = aod(s, th, arrays, 10.0, gen)
    assert est.shape == (64, 2)
    assert ((est >= s[..., 0] - 1e-6) & (est <= s[..., 1] + 1e-6)).all()
    p, th, s = sample_position_batch(cfg, 64, gen)
    assert pos(s, th, arrays, 10.0, gen).shape == (64, 2)


def test_generator_initialisation_is_reproducible(cfg):
    a1, _, _, _ = _tiny_pair(cfg, seed=3)
    a2, _, _, _ = _tiny_pair(cfg, seed=3)
    a3, _, _, _ = _tiny_pair(cfg, seed=4)
    s1, s2, s3 = a1.state_dict(), a2.state_dict(), a3.state_dict()
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    assert not all(torch.equal(s1[k], s3[k]) for k in s1)


def test_observation_gradcheck_float64(gen):
    """y = Fᵀ(α ã) + n is differentiable in F (the path the precoder is trained through)."""
    F = torch.randn(2, 4, 3, dtype=torch.complex128, generator=gen, requires_grad=True)
    a = torch.randn(2, 4, dtype=torch.complex128, generator=gen)
    alpha = torch.randn(2, dtype=torch.complex128, generator=gen)
    assert torch.autograd.gradcheck(lambda f: observe(f, a, alpha, None), (F,))
    net = PrecoderNet(4, 3, hidden=4, depth=1, generator=gen).double()
    xi = torch.randn(2, 3, dtype=torch.float64, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: torch.view_as_real(net(x)), (xi,))


def test_training_through_fit_decreases_loss_and_is_deterministic(cfg):
    arrays = build_arrays(cfg, "spacing")

    def sample(b, g):
        s, th = sample_aod_batch(cfg, b, g, mode="eval")
        return s, th, th

    tc = TrainingConfig(steps=60, batch_size=256, lr=1e-3, scheduler="cosine", final_lr_fraction=1e-5, log_every=10)
    runs = []
    for _ in range(2):
        ae = AoDAutoencoder(2, 32, 20, hidden=32, depth=2, generator=make_generator(0, "init"))
        log = train_autoencoder(ae, sample, arrays, 20.0, tc, make_generator(0, "data"))
        runs.append((ae.state_dict(), log))
    losses = runs[0][1].column("loss")
    assert len(losses) == 7 and sum(losses[-2:]) / 2 < 0.7 * losses[0]
    assert all(torch.equal(runs[0][0][k], runs[1][0][k]) for k in runs[0][0])
    assert not ae.training


def test_hybrid_starts_at_model_based_estimate_and_reaches_truth_at_high_snr(cfg):
    """Zero-initialised correction: θ̂ = ml_aod(y, F, nominal, window); with the window opened to
    the whole sector and 60 dB SNR the ML estimate of an unimpaired array is the true AoD."""
    aod, pos, q, psi = _tiny_pair(cfg)
    arrays = build_arrays(cfg)
    h = hybrid_from(aod, ml_grid=128, generator=make_generator(0, "h"))
    assert all(torch.equal(a, b) for a, b in zip(h.precoder_nets.state_dict().values(),
                                                   aod.precoder_nets.state_dict().values(), strict=True))
    h.window = math.pi  # search the whole sector
    g = torch.Generator().manual_seed(2)
    s, th = sample_aod_batch(cfg, 64, g, mode="eval")
    with torch.no_grad():
        est = h(s, th, arrays, 60.0, torch.Generator().manual_seed(3))
        y, F = h.observe_with_precoders(s, th, arrays, 60.0, torch.Generator().manual_seed(3))
    ref = torch.stack([ml_aod(y[:, i], F[:, i], arrays[i].ideal(), s[:, i], 128, 8) for i in range(2)], -1)
    assert torch.equal(est, ref)                     # the library's ML, nothing re-implemented
    assert (est - th).abs().max() < 1e-3             # rad; ≈ 0.06°
    hp = hybrid_from(pos, ml_grid=128, bs_positions=q.tolist(), bs_orientations=psi.tolist(),
                     generator=make_generator(0, "hp"))
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
    with pytest.raises(ValueError, match="hybrid aod"):
        hybrid_from(aod, correction_from=aod)
    dec = AoDDecoder(20, hidden=4, hybrid=True)
    with pytest.raises(ValueError, match="guess"):
        dec(torch.zeros(3, 20, dtype=torch.complex64), torch.tensor([[0.0, 0.2]]).expand(3, 2), 10.0)


def test_hybrid_decoders_gradcheck_float64(gen):
    dec = AoDDecoder(3, hidden=4, hybrid=True, generator=gen).double()
    torch.nn.init.normal_(dec.net[-1].weight, generator=gen)       # not the zero initialisation
    sec = torch.tensor([[0.1, 0.5], [-0.3, 0.0]], dtype=torch.float64)
    y = torch.randn(2, 3, dtype=torch.complex128, generator=gen, requires_grad=True)
    guess = torch.tensor([0.2, -0.1], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda yy, gg: dec(yy, sec, 10.0, gg), (y, guess))
    pdec = PositionDecoder(2, 3, (0.5, 5.0), 3.0, hidden=4, hybrid=True, generator=gen).double()
    torch.nn.init.normal_(pdec.net[-1].weight, generator=gen)
    yp = torch.randn(4, 2, 3, dtype=torch.complex128, generator=gen, requires_grad=True)
    pg = torch.randn(4, 2, dtype=torch.float64, generator=gen, requires_grad=True)
    u = torch.rand(4, 4, dtype=torch.float64, generator=gen)
    assert torch.autograd.gradcheck(lambda yy, pp: pdec(yy, 10.0, pp, u), (yp, pg))


def test_decoder_finetune_is_deterministic_and_freezes_precoder(cfg):
    arrays = build_arrays(cfg, "coupling")
    aod, pos, q, psi = _tiny_pair(cfg)

    def sample(b, g):
        p, th, s = sample_position_batch(cfg, b, g, repeats=4)
        return s, th, p

    tc = TrainingConfig(steps=3, batch_size=64, scheduler="cosine", final_lr_fraction=1e-5)
    runs = []
    for _ in range(2):
        h = hybrid_from(pos, ml_grid=32, bs_positions=q.tolist(), bs_orientations=psi.tolist(),
                        generator=make_generator(5, "init"))
        before = {k: v.clone() for k, v in h.state_dict().items()}
        train_autoencoder(h, sample, arrays, 20.0, tc, make_generator(7, "data"), train_precoder=False)
        after = h.state_dict()
        for k in before:
            if k.startswith(("precoder_nets", "coarse")):
                assert torch.equal(before[k], after[k]), k      # frozen
        assert not torch.equal(before["decoder.net.0.weight"], after["decoder.net.0.weight"])
        assert all(p.requires_grad for p in h.parameters())     # freezing is undone afterwards
        runs.append(after)
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])


def test_geometric_aods_matches_ml_aod_per_bs(cfg, gen):
    arrays = [a.ideal() for a in build_arrays(cfg)]
    aod, _, _, _ = _tiny_pair(cfg)
    s, th = sample_aod_batch(cfg, 16, gen, mode="eval")
    with torch.no_grad():
        y, F = aod.observe_with_precoders(s, th, arrays, 20.0, gen)
    got = geometric_aods(y, F, arrays, s, 64, 8)
    assert got.shape == (16, 2)
    assert torch.equal(got[:, 1], ml_aod(y[:, 1], F[:, 1], arrays[1], s[:, 1], 64, 8))
