"""Tests for isackit.signals.random and isackit.signals.snapshots."""

import math

import pytest
import torch

from isackit.geometry import ula
from isackit.signals import (
    add_noise,
    awgn,
    complex_normal,
    covariance,
    noise_variance_from_snr,
    sample_covariance,
    snapshots,
    source_covariance,
)


def test_complex_normal_moments_and_determinism(gen):
    n = 200_000
    z = complex_normal((n,), gen, torch.complex128)
    assert z.dtype == torch.complex128 and z.shape == (n,)
    # E|z|² = 1 with std 1/sqrt(n); E z = 0; E z² = 0 (circularity); real/imag var 1/2
    tol = 5 / math.sqrt(n)
    assert abs((z.abs() ** 2).mean().item() - 1) < tol
    assert abs(z.mean().item()) < tol
    assert abs((z * z).mean().item()) < tol
    assert abs(z.real.var().item() - 0.5) < tol
    z1 = complex_normal((3, 4), torch.Generator().manual_seed(7))
    z2 = complex_normal((3, 4), torch.Generator().manual_seed(7))
    assert z1.dtype == torch.complex64 and torch.equal(z1, z2)


def test_complex_normal_device(gen, device):
    z = complex_normal((2, 3), gen, torch.complex64, device)
    assert z.device.type == device.type


@pytest.mark.parametrize("bad", [(-1, 3), "abc"])
def test_complex_normal_bad_shape(gen, bad):
    with pytest.raises(ValueError):
        complex_normal(bad, gen)


def test_complex_normal_needs_generator():
    with pytest.raises(TypeError):
        complex_normal((2,), 1234)


def test_awgn_per_batch_variance(gen):
    var = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    w = awgn((3, 4, 20_000), var, gen, torch.complex128)
    measured = (w.abs() ** 2).mean(dim=(-1, -2))
    # each mean of 80k Exp(var) draws has relative std 1/sqrt(80k)
    assert torch.allclose(measured, var, rtol=5 / math.sqrt(80_000))
    with pytest.raises(ValueError):
        awgn((3, 4), -1.0, gen)
    with pytest.raises(ValueError):
        awgn((3, 4), torch.ones(5), gen)


def test_add_noise_keeps_dtype_and_mean(gen):
    x = torch.ones(1000, 50, dtype=torch.complex128)
    y = add_noise(x, 0.1, gen)
    assert y.dtype == x.dtype and y.shape == x.shape
    assert abs(((y - x).abs() ** 2).mean().item() - 0.1) < 0.1 * 5 / math.sqrt(50_000)


def test_noise_variance_from_snr():
    assert noise_variance_from_snr(10.0) == pytest.approx(0.1)
    assert noise_variance_from_snr(0.0, signal_power=2.0) == pytest.approx(2.0)
    t = noise_variance_from_snr(torch.tensor([0.0, 20.0]))
    assert torch.allclose(t, torch.tensor([1.0, 0.01]))
    with pytest.raises(ValueError):
        noise_variance_from_snr(float("nan"))


def _A(M=6, angles=(0.2, -0.5), dtype=torch.float64):
    return ula(M).steering(torch.tensor(angles, dtype=dtype))


def test_source_covariance_structures():
    P = source_covariance(torch.tensor([1.0, 4.0, 9.0], dtype=torch.float64), correlation=0.5)
    assert P.dtype == torch.complex128
    assert torch.allclose(P.diagonal().real, torch.tensor([1.0, 4.0, 9.0], dtype=torch.float64))
    assert P[0, 1].real.item() == pytest.approx(0.5 * 2.0)
    coherent = source_covariance(torch.ones(3, dtype=torch.float64), correlation=1.0)
    assert torch.linalg.matrix_rank(coherent).item() == 1
    with pytest.raises(ValueError):
        source_covariance(torch.ones(3), correlation=1.5)
    with pytest.raises(ValueError):
        source_covariance(torch.tensor([1.0, -1.0]))


def test_snr_definition_per_element(gen):
    """SNR_k = power source k contributes at one element / σ², measured."""
    A = _A()
    snr_db = torch.tensor([0.0, 10.0], dtype=torch.float64)
    snap = snapshots(A, gen, num_snapshots=50_000, snr_db=snr_db, noise_variance=0.5)
    noise_power = (snap.noise.abs() ** 2).mean()
    for k in range(2):
        per_elem = (A[:, k:k + 1] * snap.sources[k:k + 1]).abs().pow(2).mean()
        measured = per_elem / noise_power
        assert measured.item() == pytest.approx(10 ** (snr_db[k].item() / 10), rel=0.03)
    assert snap.X.shape == (6, 50_000) and snap.X.dtype == torch.complex128


@pytest.mark.parametrize("correlation", [0.0, 0.7, 1.0])
def test_sample_covariance_converges(gen, correlation):
    A = _A(M=4)
    N = 40_000
    snap = snapshots(A, gen, num_snapshots=N, snr_db=torch.tensor([3.0, 6.0], dtype=torch.float64),
                     correlation=correlation, noise_variance=0.8)
    R = covariance(A, snap.source_covariance, 0.8)
    Rh = sample_covariance(snap.X)
    # entry (i, j) of R̂ has standard deviation sqrt(R_ii R_jj / N) for Gaussian snapshots
    d = R.diagonal().real
    std = torch.sqrt(d.unsqueeze(0) * d.unsqueeze(1) / N)
    assert bool(((Rh - R).abs() <= 5 * std).all())
    # and the model is the documented closed form
    P = snap.source_covariance
    assert torch.allclose(R, A @ P @ A.conj().T + 0.8 * torch.eye(4, dtype=A.dtype))


def test_coherent_sources_are_rank_one(gen):
    A = _A(M=5, angles=(0.1, 0.4, -0.3))
    snap = snapshots(A, gen, num_snapshots=200, snr_db=10.0, correlation=1.0)
    sv = torch.linalg.svdvals(snap.sources)
    assert sv[1] / sv[0] < 1e-6


def test_deterministic_signals_scaled_to_snr(gen):
    A = _A()
    S = complex_normal((2, 64), gen, torch.complex128)
    snap = snapshots(A, gen, signals=S, snr_db=torch.tensor([5.0, -3.0], dtype=torch.float64), noise_variance=2.0)
    emp = (snap.sources.abs() ** 2).mean(-1)
    assert torch.allclose(emp, 2.0 * 10 ** (torch.tensor([5.0, -3.0], dtype=torch.float64) / 10), rtol=1e-12)
    snap0 = snapshots(A, gen, signals=S, noise_variance=0.0)
    assert torch.allclose(snap0.X, A @ S)


def test_batch_dims_and_batch_equals_single(gen):
    angles = torch.tensor([[[0.1, -0.3], [0.5, 0.2]], [[-0.7, 0.0], [0.3, 0.35]]], dtype=torch.float64)
    A = ula(5).steering(angles)  # (2, 2, 5, 2)
    S = complex_normal((2, 2, 2, 16), gen, torch.complex128)
    snap = snapshots(A, gen, signals=S, noise_variance=0.0)
    Rb = sample_covariance(snap.X)
    assert Rb.shape == (2, 2, 5, 5)
    for i in range(2):
        for j in range(2):
            one = snapshots(A[i, j], gen, signals=S[i, j], noise_variance=0.0)
            assert torch.allclose(sample_covariance(one.X), Rb[i, j])
    # stochastic draws with batch dims have the right shape and per-batch noise variance
    var = torch.tensor([[0.1, 1.0], [2.0, 4.0]], dtype=torch.float64)
    st = snapshots(A, gen, num_snapshots=3000, snr_db=0.0, noise_variance=var)
    assert st.X.shape == (2, 2, 5, 3000)
    measured = (st.noise.abs() ** 2).mean((-1, -2))
    assert torch.allclose(measured, var, rtol=5 / math.sqrt(15_000))


def test_dtype_follows_input(gen):
    A = _A(dtype=torch.float32)
    assert A.dtype == torch.complex64
    snap = snapshots(A, gen, num_snapshots=10, snr_db=0.0)
    assert snap.X.dtype == torch.complex64
    assert sample_covariance(snap.X).dtype == torch.complex64


def test_snapshots_bad_input(gen):
    A = _A()
    with pytest.raises(ValueError):
        snapshots(A, gen, snr_db=0.0)  # no num_snapshots
    with pytest.raises(ValueError):
        snapshots(A, gen, num_snapshots=-3, snr_db=0.0)
    with pytest.raises(ValueError):
        snapshots(A, gen, num_snapshots=10, snr_db=torch.zeros(3))  # wrong K
    with pytest.raises(ValueError):
        snapshots(A, gen, num_snapshots=10, snr_db=float("nan"))
    bad = A.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError):
        snapshots(bad, gen, num_snapshots=10, snr_db=0.0)
    with pytest.raises(ValueError):
        snapshots(A, gen, signals=torch.ones(3, 4, dtype=A.dtype))
    with pytest.raises(ValueError):
        snapshots(A, gen, num_snapshots=4, source_cov=torch.eye(3, dtype=A.dtype))
    with pytest.raises(ValueError):
        sample_covariance(torch.ones(3, 0, dtype=torch.complex64))


def test_gradcheck_covariance_and_snapshots():
    A = _A(M=3).detach().requires_grad_(True)
    P = source_covariance(torch.tensor([1.0, 2.0], dtype=torch.float64), 0.3)
    assert torch.autograd.gradcheck(lambda a: covariance(a, P, 0.5), (A,))

    def draw(a):
        g = torch.Generator().manual_seed(3)  # same draws each call: reparameterised sampling
        return snapshots(a, g, num_snapshots=4, snr_db=torch.tensor([0.0, 5.0], dtype=torch.float64)).X

    assert torch.autograd.gradcheck(draw, (A,))

    def draw_snr(snr):  # equal SNRs and coherent sources: the source factor stays smooth
        g = torch.Generator().manual_seed(3)
        return snapshots(A.detach(), g, num_snapshots=3, snr_db=snr, correlation=1.0).X

    snr = torch.tensor([2.0, 2.0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(draw_snr, (snr,))


def test_source_factor_reproduces_covariance(gen):
    """The closed-form factor L (L L^H = P) and the Cholesky/eigh fallback for given P."""
    from isackit.signals.snapshots import _correlated_sqrt, _psd_sqrt

    p = torch.tensor([[1.0, 4.0, 2.0]], dtype=torch.float64)
    for rho in (0.0, 0.3, 1.0):
        L = _correlated_sqrt(p, rho, torch.complex128)
        assert torch.allclose(L @ L.mH, source_covariance(p, rho), atol=1e-12)
        Lp = _psd_sqrt(source_covariance(p, rho))
        assert torch.allclose(Lp @ Lp.mH, source_covariance(p, rho), atol=1e-12)
    with pytest.raises(ValueError, match="semidefinite"):
        _psd_sqrt(torch.diag(torch.tensor([1.0, -1.0], dtype=torch.float64)).to(torch.complex128))
