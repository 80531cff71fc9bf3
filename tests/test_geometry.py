"""Tests of isackit.geometry.arrays: closed forms, derivatives, gradients, batching, errors."""

import math

import numpy as np
import pytest
import torch
from scipy.optimize import brentq

from isackit._dtypes import tolerance
from isackit.geometry import (
    ArrayGeometry,
    direction_vectors,
    steering_matrix,
    steering_matrix_derivatives,
    ula,
    ura,
)
from isackit.impairments import ArrayModel, ElementDisplacement, GainPhaseError

F64 = torch.float64


def _angles(gen, k, lo=-1.3, hi=1.3, dtype=F64):
    return lo + (hi - lo) * torch.rand(k, generator=gen, dtype=dtype)


# -- closed forms ------------------------------------------------------------------------------
@pytest.mark.parametrize("spacing, wavelength", [(0.5, 1.0), (0.5, 0.0107), (0.37, 2.0)])
def test_ula_matches_closed_form(gen, spacing, wavelength):
    m = 7
    theta = _angles(gen, 9)
    A = ula(m, spacing=spacing, wavelength=wavelength).steering(theta)
    d = spacing * wavelength
    mm = np.arange(m)[:, None]
    ref = np.exp(1j * 2 * np.pi * mm * d * np.sin(theta.numpy())[None, :] / wavelength)
    assert A.dtype == torch.complex128
    np.testing.assert_allclose(A.numpy(), ref, rtol=0, atol=1e-12)


def test_float64_geometry_is_exact():
    # positions are stored in the default dtype, but float64 computations use exact values
    arr = ula(8, wavelength=0.0107)
    exact = torch.arange(8, dtype=F64) * 0.5 * 0.0107
    assert arr.positions.dtype == torch.get_default_dtype()
    # float64 rounding of the products only (4 ε64 of the aperture); a value that went through
    # the float32 storage would be off by ~ε32 = 1e-7 relative, 10⁸ times more
    tol = 4 * torch.finfo(F64).eps * float(exact.abs().max())
    torch.testing.assert_close(arr.positions_like(torch.zeros((), dtype=F64))[:, 1], exact, rtol=0, atol=tol)
    torch.testing.assert_close(arr.to(F64).positions[:, 1], exact, rtol=0, atol=tol)
    torch.testing.assert_close(ura(2, 3, wavelength=0.0107).positions_like(exact)[:, 2],
                               torch.tensor([0, 1, 2, 0, 1, 2], dtype=F64) * 0.5 * 0.0107, rtol=0, atol=tol)


def test_centered_ula_is_phase_shifted_ula(gen):
    theta = _angles(gen, 5)
    a0 = ula(6).steering(theta)
    ac = ula(6, centered=True).steering(theta)
    shift = torch.exp(-1j * 2 * math.pi * 2.5 * 0.5 * torch.sin(theta))  # centre at 2.5 d
    torch.testing.assert_close(ac, a0 * shift, rtol=0, atol=1e-12)


def test_ura_matches_closed_form(gen):
    my, mz, dy, dz, lam = 3, 4, 0.5, 0.4, 0.7
    az, el = _angles(gen, 6), _angles(gen, 6, -0.6, 0.6)
    A = ura(my, mz, spacing_y=dy, spacing_z=dz, wavelength=lam).steering(az, el)
    azn, eln = az.numpy(), el.numpy()
    ref = np.empty((my * mz, 6), complex)
    for i in range(my):
        for j in range(mz):  # element index i * mz + j (z fastest)
            ph = 2 * np.pi * (i * dy * np.cos(eln) * np.sin(azn) + j * dz * np.sin(eln))
            ref[i * mz + j] = np.exp(1j * ph)
    np.testing.assert_allclose(A.numpy(), ref, rtol=0, atol=1e-12)


def test_direction_vectors_unit_and_convention():
    az = torch.tensor([0.0, math.pi / 2, 0.3], dtype=F64)
    el = torch.tensor([0.0, 0.0, math.pi / 2], dtype=F64)
    u = direction_vectors(az, el)
    torch.testing.assert_close(u[0], torch.tensor([1.0, 0.0, 0.0], dtype=F64))
    torch.testing.assert_close(u[1], torch.tensor([0.0, 1.0, 0.0], dtype=F64), atol=1e-15, rtol=0)
    torch.testing.assert_close(u[2], torch.tensor([0.0, 0.0, 1.0], dtype=F64), atol=1e-15, rtol=0)
    torch.testing.assert_close(u.norm(dim=-1), torch.ones(3, dtype=F64))


# -- derivatives ----------------------------------------------------------------------------
def _columnwise_fd(fun, x, h=1e-6):
    """Central differences; column k of fun depends only on x[..., k]."""
    return (fun(x + h) - fun(x - h)) / (2 * h)


def _columnwise_autograd(fun, x):
    """d column k / d x_k by autograd (real and imaginary parts separately)."""
    x = x.clone().requires_grad_(True)
    A = fun(x)
    out = []
    for part in (A.real, A.imag):
        rows = []
        for m in range(A.shape[-2]):
            (g,) = torch.autograd.grad(part[..., m, :].sum(), x, retain_graph=True)
            rows.append(g)
        out.append(torch.stack(rows, dim=-2))
    return torch.complex(out[0], out[1])


def test_steering_derivatives_match_fd_and_autograd(gen):
    arr = ura(3, 3, spacing_y=0.5, spacing_z=0.45, wavelength=1.3)
    pos = arr.positions.to(F64)
    az, el = _angles(gen, 5), _angles(gen, 5, -0.7, 0.7)
    d_az, d_el = steering_matrix_derivatives(pos, az, el, arr.wavelength)
    fd_az = _columnwise_fd(lambda t: steering_matrix(pos, t, el, arr.wavelength), az)
    fd_el = _columnwise_fd(lambda t: steering_matrix(pos, az, t, arr.wavelength), el)
    torch.testing.assert_close(d_az, fd_az, rtol=0, atol=1e-8)
    torch.testing.assert_close(d_el, fd_el, rtol=0, atol=1e-8)
    ag_az = _columnwise_autograd(lambda t: steering_matrix(pos, t, el, arr.wavelength), az)
    ag_el = _columnwise_autograd(lambda t: steering_matrix(pos, az, t, arr.wavelength), el)
    torch.testing.assert_close(d_az, ag_az, rtol=0, atol=1e-12)
    torch.testing.assert_close(d_el, ag_el, rtol=0, atol=1e-12)


def test_array_model_derivatives_match_geometry(gen):
    arr = ula(6, wavelength=0.5)
    az, el = _angles(gen, 4), _angles(gen, 4, -0.5, 0.5)
    A, (da, de) = ArrayModel(arr).steering_and_derivatives(az, el)
    ra, re = arr.steering_derivatives(az, el)
    # the same maths on two code paths: equal up to the rounding of a phase of size
    # 2π|p|/λ (exp(jφ) moves by ε|φ|) and of its derivative (scaled by the same factor)
    eps = torch.finfo(az.dtype).eps
    phase = 2 * torch.pi * float(arr.positions.abs().max()) / arr.wavelength
    torch.testing.assert_close(A, arr.steering(az, el), rtol=0, atol=16 * eps * (1 + phase))
    torch.testing.assert_close(da, ra, rtol=0, atol=16 * eps * (1 + phase) ** 2)
    torch.testing.assert_close(de, re, rtol=0, atol=16 * eps * (1 + phase) ** 2)


# -- gradients ------------------------------------------------------------------------------
def test_gradcheck_steering_wrt_angles_and_positions(gen):
    pos = (ura(2, 2).positions.to(F64) + 0.05 * torch.randn(4, 3, generator=gen, dtype=F64)).requires_grad_(True)
    az = _angles(gen, 3).requires_grad_(True)
    el = _angles(gen, 3, -0.5, 0.5).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p, a, e: steering_matrix(p, a, e, 0.9), (pos, az, el))
    assert torch.autograd.gradcheck(lambda p, a, e: steering_matrix_derivatives(p, a, e, 0.9), (pos, az, el))


def test_gradients_flow_to_positions_and_gain_phase(gen):
    m = 5
    disp = ElementDisplacement.zeros(m, dtype=F64, learnable=True)
    gp = GainPhaseError.identity(m, dtype=F64, learnable=True)
    model = ArrayModel(ula(m), [disp, gp])
    target = ArrayModel(ula(m), [ElementDisplacement.gaussian(m, 0.05, axes="xy", generator=gen, dtype=F64),
                                 GainPhaseError.gaussian(m, 1.0, 10.0, generator=gen, dtype=F64)])
    az = torch.linspace(-1, 1, 7, dtype=F64)
    loss = (model.steering(az) - target.steering(az)).abs().pow(2).sum()
    loss.backward()
    assert disp.displacement.grad is not None and disp.displacement.grad[:, :2].abs().sum() > 0
    assert gp.gain.grad is not None and gp.gain.grad.abs().sum() > 0
    assert gp.phase.grad is not None and gp.phase.grad.abs().sum() > 0


# -- batching, dtype, device ------------------------------------------------------------------
def test_batch_equals_one_at_a_time(gen):
    pos = ula(4).positions.to(F64) + 0.01 * torch.randn(2, 3, 4, 3, generator=gen, dtype=F64)
    az = _angles(gen, 2 * 3 * 5).reshape(2, 3, 5)
    el = _angles(gen, 2 * 3 * 5, -0.4, 0.4).reshape(2, 3, 5)
    A = steering_matrix(pos, az, el, 1.0)
    dA = steering_matrix_derivatives(pos, az, el, 1.0)
    assert A.shape == (2, 3, 4, 5)
    # Batched and single calls use different matmul/sincos kernels (vector widths and tails
    # depend on the CPU and the shape): they agree to the rounding of the phases 2π p·u/λ,
    # i.e. to eps times the largest phase, not bitwise.
    phase = 2 * math.pi * float(pos.norm(dim=-1).max())
    tol = tolerance(F64, condition=phase, factor=10.0)
    for i in range(2):
        for j in range(3):
            torch.testing.assert_close(A[i, j], steering_matrix(pos[i, j], az[i, j], el[i, j], 1.0), rtol=0, atol=tol)
            for d, d1 in zip(dA, steering_matrix_derivatives(pos[i, j], az[i, j], el[i, j], 1.0), strict=True):
                torch.testing.assert_close(d[i, j], d1, rtol=0, atol=tol * phase)
    # a batch of angles against one geometry broadcasts too
    Ab = ula(4).steering(az.float())
    assert Ab.shape == (2, 3, 4, 5) and Ab.dtype == torch.complex64


@pytest.mark.parametrize("dtype, cdtype", [(torch.float32, torch.complex64), (torch.float64, torch.complex128)])
def test_dtype_and_device_follow_input(device, dtype, cdtype):
    arr = ula(4)
    az = torch.tensor([0.1, -0.3], dtype=dtype, device=device)
    A = arr.steering(az)
    assert A.dtype == cdtype and A.device.type == device.type
    d_az, d_el = arr.steering_derivatives(az)
    assert d_az.dtype == cdtype and d_el.device.type == device.type
    model_A = ArrayModel(arr).steering(az)
    assert model_A.dtype == cdtype and model_A.device.type == device.type


# -- beamwidth ---------------------------------------------------------------------------------
def _numpy_hpbw_broadside(m, spacing):
    """Independent -3 dB width of a uniformly weighted broadside ULA (array factor + brentq)."""
    def power(theta):
        x = np.pi * spacing * np.sin(theta)
        return (np.sin(m * x) / (m * np.sin(x))) ** 2 if abs(x) > 1e-15 else 1.0
    first_null = np.arcsin(min(1.0, 1.0 / (m * spacing)))
    t3 = brentq(lambda t: power(t) - 0.5, 1e-9, first_null - 1e-12, xtol=1e-14)
    return 2 * t3


@pytest.mark.parametrize("m", [8, 16, 32])
def test_half_power_beamwidth(m):
    hpbw = ula(m).half_power_beamwidth()
    ref = _numpy_hpbw_broadside(m, 0.5)
    assert hpbw == pytest.approx(ref, rel=1e-4)
    assert hpbw == pytest.approx(0.886 * 2 / m, rel=0.02)  # the textbook rule of thumb


# -- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize("call, match", [
    (lambda: steering_matrix(torch.zeros(4, 2), torch.zeros(3)), "shape"),
    (lambda: steering_matrix(torch.zeros(4, 3), torch.tensor([0.1, float("nan")])), "finite"),
    (lambda: steering_matrix(torch.full((4, 3), float("inf")), torch.zeros(2)), "finite"),
    (lambda: ula(-2), "positive integer"),
    (lambda: ula(0), "positive integer"),
    (lambda: ula(4, spacing=-0.5), "spacing"),
    (lambda: ula(4, wavelength=0.0), "wavelength"),
    (lambda: ura(2, 0), "positive integer"),
    (lambda: ArrayGeometry(torch.zeros(4, 3, 1)), "shape"),
    (lambda: ArrayGeometry(torch.zeros(0, 3)), "M >= 1"),
    (lambda: ArrayGeometry(torch.zeros(4, 3), wavelength=-1.0), "wavelength"),
    (lambda: ula(4).half_power_beamwidth(plane="diagonal"), "plane"),
])
def test_bad_input_raises_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_complex_angles_rejected():
    with pytest.raises(TypeError, match="real"):
        ula(4).steering(torch.tensor([0.1 + 0.1j]))
