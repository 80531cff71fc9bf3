"""System S4 (seed 004): the scenario — config, true arrays, samplers."""

import itertools
import math

import numpy as np
import pytest
import torch

from isackit.learning.positioning import sector_features
from isackit.systems.positioning.scenario import (
    PositioningConfig,
    build_arrays,
    local_aods,
    sample_aod_batch,
    sample_position_batch,
)

from positioning_fixtures import LAM, cfg, nominal  # noqa: F401  (fixtures)
from positioning_fixtures import deg as _deg


def test_config_defaults_are_the_seed(cfg):
    assert cfg.num_bs == 2 and cfg.num_antennas == 32 and cfg.num_transmissions == 20
    assert cfg.bs_positions == [[-5.0, 0.0], [3.0, 0.0]] and cfg.bs_orientations_deg == [0.0, 10.0]
    assert cfg.wavelength == pytest.approx(10.7e-3) and cfg.spacing_std == pytest.approx(0.01)


@pytest.mark.parametrize("bad", [dict(bs_orientations_deg=[0.0]), dict(num_transmissions=7),
                                 dict(eval_sectors_deg=[[10.0, 5.0], [0.0, 1.0]]), dict(impairment="rust"),
                                 dict(prior_centre=[0.5]), dict(wavelength=float("nan")),
                                 dict(sector_width_range_deg=[20.0, 10.0]), dict(num_antennas="32")])
def test_config_rejects_bad_input(bad):
    with pytest.raises(ValueError):
        PositioningConfig(**bad)


def test_local_aods_follow_seed_eq3(cfg):
    q, psi = cfg.bs_tensor()
    p = torch.tensor([[0.5, 5.0], [1.0, 2.0]], dtype=torch.float64)
    th = local_aods(p, q, psi)
    pn, qn = p.numpy(), q.numpy()
    ref = np.arctan2(pn[:, None, 1] - qn[None, :, 1], pn[:, None, 0] - qn[None, :, 0]) - psi.numpy()[None]
    assert torch.allclose(th, torch.as_tensor(ref), atol=1e-12)
    assert math.degrees(th[0, 0]) == pytest.approx(math.degrees(math.atan2(5, 5.5)))


def test_build_arrays_impairments(cfg):
    none, spacing, coupling = (build_arrays(cfg, k) for k in ("none", "spacing", "coupling"))
    th = _deg(20.0)
    assert torch.allclose(none[0].steering(th), none[0].ideal().steering(th))
    like = torch.zeros((), dtype=torch.float64)
    gaps = torch.diff(spacing[0].positions(like)[:, 1])
    err = gaps - LAM / 2
    assert err.abs().max() > 0 and err.std().item() == pytest.approx(cfg.spacing_std * LAM, rel=0.5)
    # same draw on a second call (fixed hardware realisation), rescaled by spacing_std
    again = build_arrays(cfg, "spacing", spacing_std=0.02)
    assert torch.allclose(torch.diff(again[0].positions(like)[:, 1]) - LAM / 2, 2 * err, atol=1e-8)
    # coupling: ã = B a with B banded symmetric Toeplitz from the seed's c
    c = torch.tensor([1, 0.9 * np.exp(-1j * np.pi / 3), 0.75 * np.exp(1j * np.pi / 4),
                      0.55 * np.exp(-1j * np.pi / 10), 0.25 * np.exp(-1j * np.pi / 6)], dtype=torch.complex128)
    B = torch.zeros(32, 32, dtype=torch.complex128)
    for m, n in itertools.product(range(32), range(32)):
        if abs(m - n) < 5:
            B[m, n] = c[abs(m - n)]
    assert torch.allclose(coupling[0].steering(th), B @ none[0].steering(th), atol=1e-12)


def test_training_samplers(cfg, gen):
    s, th = sample_aod_batch(cfg, 500, gen)
    w = torch.rad2deg(s[..., 1] - s[..., 0])
    assert s.shape == (500, 2, 2) and th.shape == (500, 2)
    assert ((w >= 10 - 1e-4) & (w <= 20 + 1e-4)).all()
    assert ((th >= s[..., 0]) & (th <= s[..., 1])).all()
    p, th, s = sample_position_batch(cfg, 500, gen)
    assert ((p - torch.tensor(cfg.prior_centre)).abs() <= cfg.prior_side / 2 + 1e-5).all()
    assert ((th >= s[..., 0]) & (th <= s[..., 1])).all()
    xi = sector_features(s)
    assert torch.allclose(xi[..., 2], (s[..., 1] - s[..., 0]) / 2)


def test_samplers_with_repeats(cfg, gen):
    p, th, s = sample_position_batch(cfg, 25, gen, repeats=10)
    assert p.shape == (25, 2) and torch.equal(p[0], p[9]) and not torch.equal(p[9], p[10])
    assert torch.equal(s[20], s[24])
    s, th = sample_aod_batch(cfg, 25, gen, repeats=5)
    assert torch.equal(s[0], s[4]) and not torch.equal(th[0], th[4])
    assert ((th >= s[..., 0]) & (th <= s[..., 1])).all()
