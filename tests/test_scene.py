"""Tests of isackit.geometry.scene: hand-computed cases, round trips, bistatic consistency,
batching, gradients and input validation."""

import math

import numpy as np
import pytest
import torch

from isackit._dtypes import tolerance
from isackit.constants import SPEED_OF_LIGHT
from isackit.geometry import (
    Station,
    bistatic_parameters,
    delay_to_range,
    local_angles,
    monostatic_parameters,
    multistation_parameters,
    position_from_angle_range,
    range_to_delay,
    stack_stations,
    ula,
)

F64 = torch.float64


def test_hand_computed_monostatic():
    st = Station(torch.tensor([-5.0, 0.0], dtype=F64), orientation=0.0)
    p = monostatic_parameters(torch.tensor([0.0, 5.0], dtype=F64), st)
    assert float(p.azimuth) == pytest.approx(math.pi / 4, abs=1e-15)
    assert float(p.range) == pytest.approx(5 * math.sqrt(2), abs=1e-14)
    assert float(p.delay) == pytest.approx(2 * 5 * math.sqrt(2) / 299_792_458.0, rel=1e-15)


def test_orientation_subtracts_and_wraps():
    # seed 004: BS 2 at (3, 0) with ψ = 10°; a UE straight ahead along +y has global bearing 90°
    st = Station([3.0, 0.0], orientation=math.radians(10.0))
    az, el = local_angles(torch.tensor([3.0, 4.0], dtype=F64), st)
    assert float(az) == pytest.approx(math.radians(80.0), abs=1e-12)
    assert float(el) == 0.0
    # bearing 179° seen from orientation -10° is 189° → wrapped to -171°
    st2 = Station([0.0, 0.0], orientation=math.radians(-10.0))
    b = math.radians(179.0)
    az2, _ = local_angles(torch.tensor([math.cos(b), math.sin(b)], dtype=F64), st2)
    assert float(az2) == pytest.approx(math.radians(-171.0), abs=1e-12)


def test_elevation_hand_computed():
    st = Station([1.0, 1.0, 0.0], orientation=0.3)
    az, el = local_angles(torch.tensor([1.0, 1.0 + 3.0, 3.0], dtype=F64), st)
    assert float(el) == pytest.approx(math.pi / 4, abs=1e-15)
    assert float(az) == pytest.approx(math.pi / 2 - 0.3, abs=1e-15)


def test_matches_independent_numpy(gen):
    pts = torch.randn(20, 3, generator=gen, dtype=F64) * 10
    q = np.array([1.5, -2.0, 0.5])
    psi = 0.7
    az, el = local_angles(pts, torch.tensor(q), psi)
    d = pts.numpy() - q
    ref_az = np.angle(np.exp(1j * (np.arctan2(d[:, 1], d[:, 0]) - psi)))
    ref_el = np.arcsin(d[:, 2] / np.linalg.norm(d, axis=1))
    np.testing.assert_allclose(az.numpy(), ref_az, atol=1e-12, rtol=0)
    np.testing.assert_allclose(el.numpy(), ref_el, atol=1e-12, rtol=0)


def test_round_trip_position_angle_range(gen):
    st = Station([2.0, -1.0, 0.5], orientation=-0.4)
    pts = torch.randn(4, 5, 3, generator=gen, dtype=F64) * 20
    az, el = local_angles(pts, st)
    r = torch.linalg.vector_norm(pts - st.position.to(F64), dim=-1)
    back = position_from_angle_range(az, el, r, st)
    torch.testing.assert_close(back, pts, rtol=0, atol=1e-12)
    # and the other way: (angle, range) → position → (angle, range)
    az0 = torch.rand(7, generator=gen, dtype=F64) * 2 * math.pi - math.pi
    el0 = torch.rand(7, generator=gen, dtype=F64) * 2.0 - 1.0
    r0 = torch.rand(7, generator=gen, dtype=F64) * 50 + 1
    p = position_from_angle_range(az0, el0, r0, st)
    m = monostatic_parameters(p, st)
    torch.testing.assert_close(m.azimuth, az0, rtol=0, atol=1e-12)
    torch.testing.assert_close(m.range, r0, rtol=0, atol=1e-12)
    torch.testing.assert_close(local_angles(p, st)[1], el0, rtol=0, atol=1e-12)
    torch.testing.assert_close(delay_to_range(m.delay, two_way=True), r0, rtol=1e-15, atol=0)


def test_bistatic_consistency(gen):
    tx = Station([-5.0, 0.0], orientation=0.0, array=ula(8))
    rx = Station([3.0, 0.0], orientation=math.radians(10.0))
    pts = torch.randn(6, 2, generator=gen, dtype=F64) * 4 + torch.tensor([0.0, 6.0], dtype=F64)
    b = bistatic_parameters(pts, tx, rx)
    mt, mr = monostatic_parameters(pts, tx), monostatic_parameters(pts, rx)
    # the same atan2 of the same differences; a different kernel or vector width may still round
    # differently: eps times the conditioning |coordinates| / distance
    tol = tolerance(F64, condition=float(pts.abs().max() + 5.0) / float(torch.minimum(mt.range, mr.range).min()))
    torch.testing.assert_close(b.aod, mt.azimuth, rtol=0, atol=tol)
    torch.testing.assert_close(b.aoa, mr.azimuth, rtol=0, atol=tol)
    torch.testing.assert_close(b.delay, (mt.delay + mr.delay) / 2, rtol=1e-15, atol=0)
    be = bistatic_parameters(pts, tx, rx, excess=True)
    torch.testing.assert_close(be.delay, b.delay - 8.0 / SPEED_OF_LIGHT, rtol=0, atol=1e-20)
    assert bool((be.delay >= 0).all())
    # a point on the baseline has zero excess delay
    on_line = bistatic_parameters(torch.tensor([0.0, 0.0], dtype=F64), tx, rx, excess=True)
    assert float(on_line.delay) == pytest.approx(0.0, abs=1e-22)


def test_multistation_matches_single_and_batches(gen):
    stations = [Station([-5.0, 0.0], 0.0), Station([3.0, 0.0], math.radians(10.0)), Station([0.0, -4.0], 1.0)]
    pts = torch.randn(2, 4, 2, generator=gen, dtype=F64) * 3 + torch.tensor([0.0, 5.0], dtype=F64)
    out = multistation_parameters(pts, stations, two_way=True)
    assert out.azimuth.shape == (2, 4, 3)
    # batched (all stations) and single-station arithmetic round differently: the angles agree
    # to eps times |coordinates| / distance (the conditioning of atan2 of a difference)
    ranges = torch.stack([monostatic_parameters(pts, st).range for st in stations], -1)
    cond = float(pts.abs().max() + 5.0) / float(ranges.min())  # stations lie within 5 m of the origin
    tol = tolerance(F64, condition=cond)
    for s, st in enumerate(stations):
        m = monostatic_parameters(pts, st)
        torch.testing.assert_close(out.azimuth[..., s], m.azimuth, rtol=0, atol=tol)
        torch.testing.assert_close(out.range[..., s], m.range, rtol=tol, atol=0)
        torch.testing.assert_close(out.delay[..., s], m.delay, rtol=tol, atol=0)
    q, psi = stack_stations(stations, like=pts)
    out2 = multistation_parameters(pts, positions=q, orientations=psi)
    torch.testing.assert_close(out2.azimuth, out.azimuth, rtol=0, atol=tol)
    torch.testing.assert_close(out2.delay, range_to_delay(out.range), rtol=tol, atol=0)
    # one point at a time
    torch.testing.assert_close(multistation_parameters(pts[1, 2], stations).azimuth, out.azimuth[1, 2])


def test_dtype_device_follow_points(device):
    st = Station([0.0, 0.0])
    for dt in (torch.float32, torch.float64):
        p = torch.tensor([[1.0, 2.0]], dtype=dt, device=device)
        m = monostatic_parameters(p, st)
        assert m.azimuth.dtype == dt and m.range.dtype == dt and m.delay.device.type == device.type


def test_gradcheck_scene_maps(gen):
    tx = Station([-5.0, 0.0, 1.0], 0.2)
    rx = Station([3.0, 0.5, 0.0], -0.3)
    pts = (torch.randn(3, 3, generator=gen, dtype=F64) + torch.tensor([0.0, 6.0, 0.0], dtype=F64)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: tuple(monostatic_parameters(p, tx)), (pts,))
    assert torch.autograd.gradcheck(lambda p: tuple(bistatic_parameters(p, tx, rx, excess=True)), (pts,))
    assert torch.autograd.gradcheck(lambda p: local_angles(p, tx), (pts,))
    q = torch.tensor([[-5.0, 0.0], [3.0, 0.0]], dtype=F64, requires_grad=True)
    psi = torch.tensor([0.0, 0.17], dtype=F64, requires_grad=True)
    p2 = pts[:, :2].detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda p, qq, ps: tuple(multistation_parameters(p, positions=qq, orientations=ps)[:1] +
                                multistation_parameters(p, positions=qq, orientations=ps)[2:]), (p2, q, psi))
    az = torch.tensor([0.3, -1.0], dtype=F64, requires_grad=True)
    el = torch.tensor([0.1, 0.2], dtype=F64, requires_grad=True)
    r = torch.tensor([4.0, 9.0], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, e, rr: position_from_angle_range(a, e, rr, tx), (az, el, r))


def test_azimuth_gradient_closed_form():
    # ∂φ/∂p for a point in the plane: (-dy, dx)/R², rotated frame does not matter
    st = Station([1.0, 2.0], orientation=0.5)
    p = torch.tensor([4.0, 6.0], dtype=F64, requires_grad=True)
    az, _ = local_angles(p, st)
    (g,) = torch.autograd.grad(az, p)
    torch.testing.assert_close(g, torch.tensor([-4.0, 3.0, ][:2], dtype=F64) / 25.0, rtol=0, atol=1e-15)


@pytest.mark.parametrize("call, err, match", [
    (lambda: Station([1.0, 2.0, 3.0, 4.0]), ValueError, r"\(\.\.\., 2\) or \(\.\.\., 3\)"),
    (lambda: Station([[0.0, 0.0]]), ValueError, "shape"),
    (lambda: Station([float("nan"), 0.0]), ValueError, "finite"),
    (lambda: Station([0.0, 0.0], orientation=float("inf")), ValueError, "orientation"),
    (lambda: Station([0.0, 0.0], array="ula"), TypeError, "ArrayGeometry"),
    (lambda: local_angles(torch.zeros(3, 4), torch.zeros(3)), ValueError, "points"),
    (lambda: local_angles(torch.tensor([[0.0, float("nan")]]), torch.zeros(2)), ValueError, "finite"),
    (lambda: monostatic_parameters(torch.zeros(2), torch.zeros(2)), TypeError, "Station"),
    (lambda: multistation_parameters(torch.zeros(2)), ValueError, "stations"),
    (lambda: multistation_parameters(torch.zeros(2), positions=torch.zeros(3, 2), orientations=torch.zeros(2)),
     ValueError, "orientations"),
    (lambda: stack_stations([]), ValueError, "non-empty"),
    (lambda: position_from_angle_range(torch.zeros(2), None, -torch.ones(2), Station([0.0, 0.0])),
     ValueError, "non-negative"),
    (lambda: local_angles(torch.zeros(2), Station([0.0, 0.0]), 0.3), ValueError, "orientation"),
])
def test_bad_input(call, err, match):
    with pytest.raises(err, match=match):
        call()
