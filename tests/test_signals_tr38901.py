"""Tests for isackit.signals.tr38901 (Sionna's TR 38.901 rays through our array models)."""

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from isackit.constants import SPEED_OF_LIGHT
from isackit.geometry import ula
from isackit.impairments import ArrayModel
from isackit.signals import (
    TR38901_SCENARIOS,
    OFDMConfig,
    mimo_ofdm_channel,
    sionna_to_local,
    tr38901_channel,
    tr38901_paths,
)

FC = 3.5e9
LAM = SPEED_OF_LIGHT / FC


def test_sionna_to_local_level_array_is_zenith_to_elevation():
    az = torch.tensor([0.3, -2.0, 1.0], dtype=torch.float64)
    zen = torch.tensor([1.2, 1.7, 0.4], dtype=torch.float64)
    la, le = sionna_to_local(az, zen)
    assert torch.allclose(la, az) and torch.allclose(le, math.pi / 2 - zen)
    yaw = 0.25
    la, le = sionna_to_local(az, zen, yaw)
    assert torch.allclose(torch.remainder(la - (az - yaw) + math.pi, 2 * math.pi) - math.pi,
                          torch.zeros(3, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(le, math.pi / 2 - zen)


def test_sionna_to_local_general_rotation_matches_scipy():
    """R = R_z(α) R_y(β) R_x(γ) (TR 38.901 eq. 7.1-4) = scipy's intrinsic 'ZYX' Euler rotation."""
    rng = np.random.default_rng(0)
    az, zen = rng.uniform(-np.pi, np.pi, 20), rng.uniform(0.05, np.pi - 0.05, 20)
    o = rng.uniform(-1, 1, (20, 3))
    la, le = sionna_to_local(torch.tensor(az), torch.tensor(zen), torch.tensor(o))
    u = np.stack([np.sin(zen) * np.cos(az), np.sin(zen) * np.sin(az), np.cos(zen)], -1)
    R = Rotation.from_euler("ZYX", o).as_matrix()
    ul = np.einsum("bji,bj->bi", R, u)  # R^T u
    assert np.allclose(la.numpy(), np.arctan2(ul[:, 1], ul[:, 0]), atol=1e-12)
    assert np.allclose(le.numpy(), np.arcsin(ul[:, 2]), atol=1e-12)


@pytest.mark.parametrize("direction", ["uplink", "downlink"])
def test_los_path_has_geometric_local_angles(gen, direction):
    """A single LoS path from a known position gives the expected local azimuth/elevation."""
    bs = torch.tensor([0.0, 0.0, 10.0])
    ut = torch.tensor([[40.0, 25.0, 1.5], [-15.0, 30.0, 1.5]])
    yaw_bs = 0.3
    p = tr38901_paths("umi", gen, bs_position=bs, ut_position=ut, carrier_frequency=FC,
                      bs_orientation=yaw_bs, direction=direction, dtype=torch.float64)
    ra, re, ta, te = p.local_angles()
    d = ut.double() - bs.double()
    bs_az = torch.atan2(d[:, 1], d[:, 0]) - yaw_bs
    bs_el = torch.atan2(d[:, 2], d[:, :2].norm(dim=-1))
    ut_az = torch.atan2(-d[:, 1], -d[:, 0])
    ut_el = -bs_el
    if direction == "uplink":  # receiver = BS
        got = (ra[:, 0], re[:, 0], ta[:, 0], te[:, 0])
    else:
        got = (ta[:, 0], te[:, 0], ra[:, 0], re[:, 0])
    for g, e in zip(got, (bs_az, bs_el, ut_az, ut_el)):
        assert torch.allclose(torch.remainder(g - e + math.pi, 2 * math.pi) - math.pi,
                              torch.zeros_like(e), atol=1e-6)
    # the LoS path has zero relative delay and the largest single-ray power when K > 1
    assert bool((p.delays[:, 0] == 0).all())
    pa = tr38901_paths("umi", gen, bs_position=bs, ut_position=ut, carrier_frequency=FC,
                       direction=direction, absolute_delays=True, dtype=torch.float64)
    assert torch.allclose(pa.delays[:, 0], d.norm(dim=-1) / SPEED_OF_LIGHT)


@pytest.mark.parametrize("scenario", TR38901_SCENARIOS)
def test_scenarios_shape_and_power(gen, scenario):
    outdoor = scenario in ("umi", "uma", "rma")
    bs = [0.0, 0.0, 10.0 if outdoor else 3.0]
    ut = [[30.0, 10.0, 1.5], [12.0, -8.0, 1.5], [20.0, 5.0, 1.5]]
    p = tr38901_paths(scenario, gen, bs_position=bs, ut_position=ut, carrier_frequency=FC)
    B, P = p.gains.shape
    assert B == 3 and P > 1 and p.gains.dtype == torch.complex64
    for t in (p.delays, p.rx_azimuth, p.rx_zenith, p.tx_azimuth, p.tx_zenith):
        assert t.shape == (B, P) and t.dtype == torch.float32
    # without path loss / shadow fading: Σ_p |g_p|² = K/(K+1) + Σ_n P_n/(K+1), with Σ_n P_n ≤ 1
    # (Sionna drops clusters 25 dB below the strongest), so the power lies in (0.99, 1]
    power = (p.gains.abs() ** 2).sum(-1)
    assert bool((power <= 1 + 1e-5).all()) and bool((power > 0.99).all())
    k = p.k_factor
    assert torch.allclose(p.gains[:, 0].abs() ** 2, k / (k + 1), rtol=1e-5)
    assert bool((p.delays >= 0).all())
    cfg = OFDMConfig(32, 30e3, FC)
    H = tr38901_channel(p, cfg, ArrayModel(ula(4, wavelength=LAM)))
    assert H.shape == (B, 32, 4, 1) and H.dtype == torch.complex64


def test_channel_uses_our_array_and_unnormalised_response(gen):
    """tr38901_channel = our mimo_ofdm_channel with the converted angles; the mean power per
    antenna pair over random ray phases is Σ|g_p|² (no 1/sqrt(M) normalisation)."""
    bs, ut = [0.0, 0.0, 10.0], torch.tensor([[50.0, 20.0, 1.5]]).expand(64, 3)
    p = tr38901_paths("uma", gen, bs_position=bs, ut_position=ut, carrier_frequency=FC, dtype=torch.float64)
    cfg = OFDMConfig(16, 30e3, FC)
    rx = ArrayModel(ula(8, wavelength=LAM))
    H = tr38901_channel(p, cfg, rx)
    ra, re, ta, te = p.local_angles()
    ref = mimo_ofdm_channel(rx, None, ra, None, p.delays, p.gains, cfg, aoa_elevation=re)
    assert torch.allclose(H, ref)
    # over the 64 independent draws of the NLoS ray phases, E|h|² = Σ_p |g_p|²
    per_link = (H.abs() ** 2).mean(dim=(-1, -2, -3))
    expected = (p.gains.abs() ** 2).sum(-1)
    assert abs(per_link.mean().item() / expected.mean().item() - 1) < 0.15


def test_determinism_and_global_rng_untouched():
    kw = dict(bs_position=[0, 0, 10], ut_position=[30.0, 10.0, 1.5], carrier_frequency=FC)
    state = torch.get_rng_state()
    a = tr38901_paths("rma", torch.Generator().manual_seed(5), **kw)
    b = tr38901_paths("rma", torch.Generator().manual_seed(5), **kw)
    c = tr38901_paths("rma", torch.Generator().manual_seed(6), **kw)
    assert torch.equal(state, torch.get_rng_state())
    assert torch.equal(a.gains, b.gains) and torch.equal(a.delays, b.delays)
    assert not torch.equal(a.gains, c.gains)


def test_bad_inputs(gen):
    kw = dict(bs_position=[0, 0, 10], ut_position=[30.0, 10.0, 1.5], carrier_frequency=FC)
    with pytest.raises(ValueError, match="scenario"):
        tr38901_paths("cdl-a", gen, **kw)
    with pytest.raises(ValueError):
        tr38901_paths("umi", gen, direction="sideways", **kw)
    with pytest.raises(ValueError):
        tr38901_paths("umi", gen, bs_position=[0, 0], ut_position=[1.0, 2.0, 3.0], carrier_frequency=FC)
    with pytest.raises(ValueError):
        tr38901_paths("umi", gen, bs_position=[0, 0, 10], ut_position=[1.0, 2.0, 3.0], carrier_frequency=-1.0)
    with pytest.raises(ValueError):
        sionna_to_local(torch.tensor([float("nan")]), torch.tensor([1.0]))
    with pytest.raises(ValueError):
        sionna_to_local(torch.tensor([0.1, 0.2]), torch.tensor([1.0, 1.0]), torch.tensor([0.1, 0.2]))
    with pytest.raises(ValueError):
        tr38901_paths("umi", gen, bs_orientation=torch.zeros(2, 3), **kw)  # B = 1 link
    p = tr38901_paths("umi", gen, **kw)
    with pytest.raises(ValueError):
        tr38901_channel(p, OFDMConfig(8, 30e3, 28e9))


@pytest.mark.parametrize("direction", ["uplink", "downlink"])
def test_rays_of_first_cluster_centre_on_los_at_both_ends(gen, direction):
    """In LoS, TR 38.901 aligns the first cluster with the LoS direction (7.5-10/7.5-15) and the
    20 ray offsets are symmetric, so the rays of the zero-delay cluster are centred on the LoS
    angles at the receiver AND at the transmitter: this checks which end each angle belongs to."""
    B, R = 3, 20
    p = tr38901_paths("umi", gen, bs_position=[0, 0, 10], ut_position=[[40.0, 25.0, 1.5]] * B,
                      carrier_frequency=FC, direction=direction, dtype=torch.float64)
    cl_delay = p.delays[:, 1:].reshape(B, -1, R)[:, :, 0]
    first = (cl_delay == 0).double().argmax(-1)
    for name in ("rx_azimuth", "tx_azimuth", "rx_zenith", "tx_zenith"):
        a = getattr(p, name)
        rays = a[:, 1:].reshape(B, -1, R)[torch.arange(B), first]
        centre = torch.angle(torch.exp(1j * rays).mean(-1))
        assert torch.allclose(torch.angle(torch.exp(1j * (centre - a[:, 0]))), torch.zeros(B, dtype=torch.float64),
                              atol=1e-6), name


def test_los_local_angles_with_tilted_bs(gen):
    """Full orientation (bearing, downtilt, slant): the LoS direction in the BS frame is
    R^T d̂ with R from scipy (independent of sionna_to_local's own rotation code)."""
    bs = np.array([0.0, 0.0, 10.0])
    ut = np.array([[40.0, 25.0, 1.5], [10.0, -30.0, 1.5]])
    o = np.array([0.3, 0.15, -0.05])
    p = tr38901_paths("uma", gen, bs_position=bs, ut_position=ut, carrier_frequency=FC,
                      bs_orientation=torch.tensor(o), dtype=torch.float64)
    ra, re, _, _ = p.local_angles()
    d = ut - bs
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    ul = d @ Rotation.from_euler("ZYX", o).as_matrix()  # rows: (R^T d)^T
    assert np.allclose(ra[:, 0].numpy(), np.arctan2(ul[:, 1], ul[:, 0]), atol=1e-6)
    assert np.allclose(re[:, 0].numpy(), np.arcsin(ul[:, 2]), atol=1e-6)
