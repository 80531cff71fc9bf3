"""Tests of isackit.impairments: exact identities and structures, closed-form moments vs
Monte Carlo, derivatives vs finite differences/autograd, gradchecks, batching, dtype/device,
presets and input validation."""

import math

import numpy as np
import pytest
import scipy.special as sps
import scipy.stats as sst
import torch

from isackit._dtypes import tolerance
from isackit.geometry import steering_matrix, ula, ura
from isackit.impairments import (
    SEED004_COUPLING,
    ArrayModel,
    ElementDisplacement,
    GainPhaseDistribution,
    GainPhaseError,
    GaussianPhase,
    LogNormalGain,
    MutualCoupling,
    RicianGain,
    SmoothPhaseError,
    TabulatedPhaseError,
    TimingOffset,
    UniformGain,
    UniformPhase,
    VonMisesPhase,
    hermite_weights,
    list_presets,
    make_chain,
    make_impairment,
    seed004_coefficients,
    toeplitz_coupling_matrix,
)

F64 = torch.float64
M = 5
N_SC = 6


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _zero_chain(dtype=F64):
    grid = torch.linspace(-1.5, 1.5, 31, dtype=F64)
    return [
        ElementDisplacement.zeros(M, dtype=dtype),
        GainPhaseError.identity(M, dtype=dtype),
        MutualCoupling.identity(),
        SmoothPhaseError.sample(M, N_SC, generator=_gen(), dtype=dtype, inner_max_deg=0.0,
                                slope_range=(0.0, 0.0), subcarrier_std=0.0),
        SmoothPhaseError.sample(M, N_SC, generator=_gen(1), dtype=dtype, degree=0.0),  # ρ = 0
        TabulatedPhaseError(grid, torch.zeros(M, N_SC, 31, dtype=dtype)),
        TimingOffset(0.0),
    ]


def _full_chain(gen, dtype=F64, batch=()):
    grid = torch.linspace(-1.2, 1.2, 25, dtype=F64) + 0.01 * torch.rand(25, generator=gen, dtype=F64)
    return [
        ElementDisplacement.gaussian(M, 0.03, batch_shape=batch, generator=gen, dtype=dtype),
        GainPhaseError.rician_von_mises(M, 1.0, 0.2, 5.0, batch_shape=batch, generator=gen, dtype=dtype),
        MutualCoupling(seed004_coefficients(M, zeta=-0.7).to(torch.complex128 if dtype == F64 else torch.complex64)),
        SmoothPhaseError.sample(M, N_SC, batch_shape=batch, generator=gen, dtype=dtype, degree=0.8),
        TabulatedPhaseError(grid, 0.3 * torch.randn(*batch, M, N_SC, 25, generator=gen, dtype=dtype),
                            per_subcarrier=True),
    ]


# -- identities and structures ----------------------------------------------------------------
def test_zero_error_chain_is_exact_identity():
    arr = ula(M, wavelength=0.3)
    az = torch.linspace(-1.2, 1.2, 9, dtype=F64)
    el = torch.linspace(-0.3, 0.3, 9, dtype=F64)
    sc = torch.arange(N_SC)
    model, ideal = ArrayModel(arr, _zero_chain()), ArrayModel(arr)
    # identity up to rounding: the zero errors may take another code path, which can round a
    # phase of size 2π|p|/λ (and its derivative, scaled by the same factor) differently
    eps = torch.finfo(F64).eps
    phase = 2 * torch.pi * float(arr.positions.abs().max()) / arr.wavelength
    tol_a, tol_d = 16 * eps * (1 + phase), 16 * eps * (1 + phase) ** 2
    torch.testing.assert_close(model.steering(az, el, sc), ideal.steering(az, el, sc), rtol=0, atol=tol_a)
    A, dA = model.steering_and_derivatives(az, el, sc)
    A0, dA0 = ideal.steering_and_derivatives(az, el, sc)
    torch.testing.assert_close(A, A0, rtol=0, atol=tol_a)
    for d, d0 in zip(dA, dA0, strict=True):
        torch.testing.assert_close(d, d0, rtol=0, atol=tol_d)
    H = torch.randn(3, N_SC, M, 2, dtype=torch.complex128, generator=_gen())
    torch.testing.assert_close(TimingOffset(0.0).apply_frequency(H, sc * 30e3), H, rtol=0,
                               atol=4 * torch.finfo(F64).eps * float(H.abs().max()))


@pytest.mark.parametrize("m, L", [(7, 5), (3, 5), (6, 1), (6, 6)])
def test_coupling_matrix_is_banded_symmetric_toeplitz(m, L):
    c = torch.randn(L, dtype=torch.complex128, generator=_gen(L))
    B = toeplitz_coupling_matrix(c, m)
    assert B.shape == (m, m)
    for i in range(m):
        for j in range(m):
            want = c[abs(i - j)] if abs(i - j) < L else 0
            assert B[i, j] == want
    assert torch.equal(B, B.transpose(-1, -2))


def test_seed004_preset_and_zeta_renormalisation():
    c = seed004_coefficients()
    np.testing.assert_allclose(c.abs().numpy(), [1, 0.9, 0.75, 0.55, 0.25], atol=1e-15)
    np.testing.assert_allclose(c.angle().numpy(), [0, -math.pi / 3, math.pi / 4, -math.pi / 10, -math.pi / 6],
                               atol=1e-15)
    assert torch.allclose(c, torch.tensor(SEED004_COUPLING, dtype=torch.complex128))
    for m in (8, 32):
        ref = torch.linalg.matrix_norm(toeplitz_coupling_matrix(c, m))
        for zeta in (-2.0, -0.5, 0.0, 0.3):
            cz = seed004_coefficients(m, zeta=zeta)
            torch.testing.assert_close(torch.linalg.matrix_norm(toeplitz_coupling_matrix(cz, m)), ref,
                                       rtol=1e-13, atol=0)
            torch.testing.assert_close(cz.angle()[1:], c.angle()[1:], rtol=0, atol=1e-13)  # phases kept
            ratios = cz.abs()[1:] / cz.abs()[:-1]  # |c_k| ∝ exp(ζ k)
            torch.testing.assert_close(ratios, torch.full_like(ratios, math.exp(zeta)), rtol=1e-12, atol=0)
    imp = MutualCoupling.seed004(8)
    A = ula(8).steering(torch.tensor([0.2]))
    torch.testing.assert_close(imp.apply(A), toeplitz_coupling_matrix(c.to(A.dtype), 8) @ A)


def test_spacing_perturbation_positions():
    lam = 0.0107
    gaps = torch.tensor([1e-4, -2e-4, 3e-4, 0.0], dtype=F64)
    arr = ula(5, wavelength=lam)
    for model, expect in [("gaps", torch.cumsum(gaps, 0)), ("scaled", torch.arange(1, 5, dtype=F64) * gaps)]:
        disp = ElementDisplacement.from_spacing_errors(gaps, model=model)
        pos = ArrayModel(arr, [disp]).positions(torch.zeros((), dtype=F64))
        # (p + c) - p equals c to the rounding of p (|p| ≤ 4·λ/2), not of c
        tol = tolerance(F64, condition=float(pos.abs().max()), factor=10.0)
        torch.testing.assert_close(pos[1:, 1] - arr.positions_like(pos)[1:, 1], expect, rtol=0, atol=tol)
        assert bool((pos[:, [0, 2]] == 0).all())
    d = ArrayModel(arr, [ElementDisplacement.from_spacing_errors(gaps)]).positions(gaps)[:, 1].diff()
    torch.testing.assert_close(d, lam / 2 + gaps, rtol=0, atol=1e-15)  # seed 004 eq. 4: d = λ/2 + γ
    # the sampler's gaps have the requested spread (chi-square: std of s² is σ²√(2/(n-1)))
    n, sigma = 20_000, lam / 100
    disp = ElementDisplacement.spacing_perturbation(n + 1, sigma, generator=_gen(3), dtype=F64)
    g = disp.displacement[:, 1].diff()
    assert abs(float(g.var()) - sigma ** 2) < 5 * sigma ** 2 * math.sqrt(2 / (n - 1))
    assert abs(float(g.mean())) < 5 * sigma / math.sqrt(n)


def test_gain_phase_constructors():
    c = torch.polar(torch.tensor([1.0, 0.5, 2.0], dtype=F64), torch.tensor([0.0, 0.3, -2.0], dtype=F64))
    imp = GainPhaseError.from_coefficients(c)
    torch.testing.assert_close(imp.coefficients(), c, rtol=1e-15, atol=1e-15)
    imp2 = GainPhaseError.from_gains_phases(torch.tensor([0.0, 20.0], dtype=F64),
                                            torch.tensor([90.0, -45.0], dtype=F64),
                                            degrees=True, gain_db=True)
    torch.testing.assert_close(imp2.coefficients(), torch.tensor([1j, 10 * np.exp(-1j * np.pi / 4)]),
                               rtol=1e-14, atol=1e-14)
    A = ula(3).steering(torch.tensor([0.1, 0.5], dtype=F64))
    torch.testing.assert_close(imp.apply(A), torch.diag(c) @ A, rtol=1e-15, atol=1e-15)


# -- moments vs Monte Carlo ---------------------------------------------------------------------
def _mc_close(samples, value, name, k=5.0):
    """|sample mean - value| ≤ k · (sample std)/√n, separately for real and imaginary parts."""
    n = samples.numel()
    for part, ref in ((samples.real, value.real), (samples.imag, value.imag)) if samples.is_complex() else (
            (samples, value),):
        tol = k * float(part.std()) / math.sqrt(n) + 1e-12
        assert abs(float(part.mean()) - float(ref)) <= tol, f"{name}: {float(part.mean())} vs {float(ref)} (tol {tol})"


@pytest.mark.parametrize("dist", [
    GainPhaseDistribution(RicianGain(1.0, 0.1), VonMisesPhase(10.0)),
    GainPhaseDistribution(RicianGain(0.5, 0.6), VonMisesPhase(0.7, loc=0.4)),
    GainPhaseDistribution(RicianGain(0.0, 1.0), VonMisesPhase(60.0)),  # Rayleigh gain
    GainPhaseDistribution(LogNormalGain(1.5), GaussianPhase(math.radians(20.0))),
    GainPhaseDistribution(UniformGain(0.8, 1.3), UniformPhase(-0.5, 0.9)),
], ids=["rician-vm", "rician-vm-broad", "rayleigh-vm", "lognormal-gauss", "uniform"])
def test_moments_match_monte_carlo(dist):
    n = 50_000
    g, psi = dist.sample_gain_phase(4, (n // 4,), _gen(7), F64)
    c = torch.polar(g, psi)
    _mc_close(g, dist.gain.mean(), "E[g]")
    _mc_close(g ** 2, dist.gain.second_moment(), "E[g^2]")
    _mc_close(torch.exp(1j * psi), dist.phase.circular_moment(1), "E[e^{jψ}]")
    _mc_close(torch.exp(2j * psi), dist.phase.circular_moment(2), "E[e^{j2ψ}]")
    _mc_close(c, dist.mean(), "E[c]")
    _mc_close(c.abs() ** 2, dist.second_moment(), "E[|c|^2]")
    _mc_close(c ** 2, dist.pseudo_second_moment(), "E[c^2]")
    # element correlation E[c_m c_n^*]: off-diagonal |μ|², diagonal E[g²]
    R = dist.correlation(4)
    _mc_close(c[:, 0] * c[:, 1].conj(), R[0, 1], "E[c0 c1*]")
    _mc_close(c[:, 2] * c[:, 2].conj(), R[2, 2], "E[|c2|^2]")
    torch.testing.assert_close(dist.covariance(4), dist.variance() * torch.eye(4, dtype=torch.complex128))
    assert float(dist.variance()) >= 0


def test_closed_forms_match_scipy():
    for nu, sigma in [(1.0, 0.1), (0.5, 0.6), (0.0, 1.0), (3.0, 0.5)]:
        ref = sst.rice(b=nu / sigma, scale=sigma)
        assert float(RicianGain(nu, sigma).mean()) == pytest.approx(ref.mean(), rel=1e-10)
        assert float(RicianGain(nu, sigma).second_moment()) == pytest.approx(ref.moment(2), rel=1e-10)
    # far beyond where scipy overflows (ν/σ = 1000), the scaled-Bessel form stays finite and
    # matches the high-K expansion E[g] = ν + σ²/(2ν) + O(σ⁴/ν³)
    assert float(RicianGain(100.0, 0.1).mean()) == pytest.approx(100.0 + 0.01 / 200.0, rel=1e-12)
    for kappa in (1e-4, 0.5, 2.0, 50.0, 800.0):
        vm = VonMisesPhase(kappa)
        assert float(vm.circular_moment(1).real) == pytest.approx(sps.ive(1, kappa) / sps.ive(0, kappa), rel=1e-10)
        assert float(vm.circular_moment(2).real) == pytest.approx(sps.ive(2, kappa) / sps.ive(0, kappa), rel=1e-7)
    assert float(LogNormalGain(2.0).mean()) == pytest.approx(
        sst.lognorm(s=2.0 * math.log(10) / 20).mean(), rel=1e-12)


@pytest.mark.parametrize("kappa, loc", [(0.7, 0.4), (10.0, 0.0), (300.0, -0.2)])
def test_von_mises_sampler_matches_scipy_law(kappa, loc):
    # Kolmogorov-Smirnov test against scipy's von Mises CDF; the level 1e-3 is fixed a priori.
    # Samples are wrapped to (-π, π]; scipy's CDF with loc lives on [loc - π, loc + π], so the
    # comparison is made on the circle after removing loc.
    x = VonMisesPhase(kappa, loc).sample(20_000, _gen(21), F64).numpy()
    assert float(np.abs(x).max()) <= math.pi
    centred = np.angle(np.exp(1j * (x - loc)))
    assert sst.kstest(centred, sst.vonmises(kappa).cdf).pvalue > 1e-3


@pytest.mark.parametrize("nu, sigma", [(1.0, 0.1), (0.5, 0.6)])
def test_rician_sampler_matches_scipy_law(nu, sigma):
    x = RicianGain(nu, sigma).sample(20_000, _gen(22), F64).numpy()
    assert sst.kstest(x, sst.rice(b=nu / sigma, scale=sigma).cdf).pvalue > 1e-3


# -- derivatives ------------------------------------------------------------------------------
def _fd_columns(fun, x, h=1e-6):
    return (fun(x + h) - fun(x - h)) / (2 * h)


@pytest.mark.parametrize("which", ["displacement", "gain_phase", "coupling", "smooth", "table", "all"])
def test_derivatives_match_finite_differences_and_autograd(which):
    gen = _gen(11)
    chain = _full_chain(gen)
    pick = {"displacement": [0], "gain_phase": [1], "coupling": [2], "smooth": [3], "table": [4],
            "all": [0, 1, 2, 3, 4]}[which]
    model = ArrayModel(ura(1, M, wavelength=0.5) if which == "all" else ula(M), [chain[i] for i in pick])
    sc = torch.tensor([0, 3, 5])
    az = torch.tensor([-1.0, -0.31, 0.2, 0.77, 1.1], dtype=F64)
    el = torch.tensor([0.1, -0.2, 0.3, 0.0, 0.25], dtype=F64)
    A, (d_az, d_el) = model.steering_and_derivatives(az, el, sc)
    torch.testing.assert_close(A, model.steering(az, el, sc), rtol=0, atol=1e-15)
    fd_az = _fd_columns(lambda t: model.steering(t, el, sc), az)
    fd_el = _fd_columns(lambda t: model.steering(az, t, sc), el)
    torch.testing.assert_close(d_az, fd_az, rtol=0, atol=2e-8)
    torch.testing.assert_close(d_el, fd_el, rtol=0, atol=2e-8)
    # autograd: column k depends only on angle k, so the gradient of Σ_k Re/Im A[n, m, k] is dA/dθ_k
    x = az.clone().requires_grad_(True)
    B = model.steering(x, el, sc)
    for part, ref in ((B.real, d_az.real), (B.imag, d_az.imag)):
        (g,) = torch.autograd.grad(part[1, 2].sum(), x, retain_graph=True)
        torch.testing.assert_close(g, ref[1, 2], rtol=0, atol=1e-12)


def test_smooth_phase_derivative_matches_autograd():
    imp = SmoothPhaseError.sample(M, None, generator=_gen(2), dtype=F64)
    th = torch.linspace(-1.4, 1.4, 41, dtype=F64).requires_grad_(True)
    psi, dpsi = imp._phase_and_derivative(th, None)
    for m in range(M):
        (g,) = torch.autograd.grad(psi[m].sum(), th, retain_graph=True)
        torch.testing.assert_close(g, dpsi[m], rtol=0, atol=1e-12)


# -- gradchecks w.r.t. impairment parameters -------------------------------------------------------
def test_gradcheck_parameters():
    gen = _gen(5)
    arr = ula(4)
    az = torch.tensor([-0.7, 0.1, 0.9], dtype=F64)
    sc = torch.tensor([0, 2])
    A = arr.steering(az)
    g = (1 + 0.1 * torch.randn(4, generator=gen, dtype=F64)).requires_grad_(True)
    p = (0.2 * torch.randn(4, generator=gen, dtype=F64)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda g_, p_: GainPhaseError(g_, p_).apply(A), (g, p))
    d = (0.05 * torch.randn(4, 3, generator=gen, dtype=F64)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda d_: ArrayModel(arr, [ElementDisplacement(d_)]).steering(az), (d,))
    c = torch.randn(3, dtype=torch.complex128, generator=gen).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda c_: MutualCoupling(c_).apply(A), (c,))
    a_, b_ = (0.1 * torch.randn(4, 2, generator=gen, dtype=F64)).requires_grad_(True), \
        (0.1 * torch.randn(4, 2, generator=gen, dtype=F64)).requires_grad_(True)
    sp_, sn_ = torch.randn(4, generator=gen, dtype=F64).requires_grad_(True), \
        torch.randn(4, generator=gen, dtype=F64).requires_grad_(True)
    eta = (0.1 * torch.randn(4, 3, generator=gen, dtype=F64)).requires_grad_(True)
    th = torch.tensor([-0.9, 0.2, 0.7], dtype=F64).requires_grad_(True)

    def smooth(a, b, s1, s2, e, t):
        return ArrayModel(arr, [SmoothPhaseError(a, b, s1, s2, e, degree=0.7)]).steering_and_derivatives(t, None, sc)
    assert torch.autograd.gradcheck(lambda *xs: (smooth(*xs)[0], smooth(*xs)[1][0]), (a_, b_, sp_, sn_, eta, th))
    grid = torch.linspace(-1.5, 1.5, 9, dtype=F64)
    tab = (0.3 * torch.randn(4, 9, generator=gen, dtype=F64)).requires_grad_(True)

    def table(tb, t):
        out = ArrayModel(arr, [TabulatedPhaseError(grid, tb)]).steering_and_derivatives(t)
        return out[0], out[1][0]
    assert torch.autograd.gradcheck(table, (tab, th))
    # δ in units of 1 µs so that gradcheck's finite-difference step is small on the delay scale
    delay_us = torch.tensor([0.1, -0.3], dtype=F64, requires_grad=True)
    H = torch.randn(2, 5, 4, dtype=torch.complex128, generator=gen)
    f = torch.arange(5, dtype=F64) * 30e3
    assert torch.autograd.gradcheck(lambda dl: TimingOffset(dl * 1e-6).apply_frequency(H, f, axis=-2), (delay_us,))


def test_learnable_parameters_and_calibration_step():
    arr = ula(M)
    true = ArrayModel(arr, [GainPhaseError.gaussian(M, 1.0, 20.0, generator=_gen(1), dtype=F64)])
    learned = ArrayModel(arr, [GainPhaseError.identity(M, dtype=F64, learnable=True),
                               MutualCoupling.identity(dtype=torch.complex128, learnable=True),
                               SmoothPhaseError.sample(M, None, generator=_gen(2), dtype=F64, learnable=True)])
    params = dict(learned.named_parameters())
    assert any(k.endswith("gain") for k in params) and any(k.endswith("coefficients_ri") for k in params)
    assert any(k.endswith("ripple_cos") for k in params)
    az = torch.linspace(-1, 1, 11, dtype=F64)
    opt = torch.optim.SGD(learned.parameters(), lr=1e-2)
    losses = []
    for _ in range(3):
        opt.zero_grad()
        loss = (learned.steering(az) - true.steering(az)).abs().pow(2).sum()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]
    # state dicts hold real tensors only (checkpoints stay real-valued)
    assert all(not t.is_complex() for t in learned.state_dict().values())


# -- known / assumed ---------------------------------------------------------------------------
def test_assumed_keeps_only_known():
    gp = GainPhaseError.rician_von_mises(M, generator=_gen(), dtype=F64, known=True)
    mc = MutualCoupling.seed004(known=False)
    sp = SmoothPhaseError.sample(M, None, generator=_gen(), dtype=F64, known=True)
    model = ArrayModel(ula(M), [gp, mc, sp])
    assumed = model.assumed()
    assert list(assumed.impairments) == [gp, sp]
    az = torch.tensor([0.3, -0.4], dtype=F64)
    phase = 2 * torch.pi * float(ula(M).positions.abs().max()) / ula(M).wavelength
    torch.testing.assert_close(assumed.steering(az), ArrayModel(ula(M), [gp, sp]).steering(az), rtol=0,
                               atol=16 * torch.finfo(F64).eps * (1 + phase) * float(gp.gain.abs().max()))
    assert len(model.ideal().impairments) == 0


# -- batches of draws ----------------------------------------------------------------------------
def test_batch_of_draws_equals_one_at_a_time():
    gen = _gen(9)
    chain = _full_chain(gen, batch=(3,))
    arr = ula(M)
    az = torch.tensor([-0.8, 0.05, 0.6, 1.0], dtype=F64)
    el = torch.tensor([0.0, 0.1, -0.1, 0.2], dtype=F64)
    sc = torch.tensor([1, 4])
    model = ArrayModel(arr, chain)
    A, dA = model.steering_and_derivatives(az, el, sc)
    assert A.shape == (3, 2, M, 4)
    for b in range(3):
        single = [
            ElementDisplacement(chain[0].displacement[b]),
            GainPhaseError(chain[1].gain[b], chain[1].phase[b]),
            chain[2],
            SmoothPhaseError(chain[3].ripple_cos[b], chain[3].ripple_sin[b], chain[3].slope_pos[b],
                             chain[3].slope_neg[b], chain[3].subcarrier_factor[b], degree=chain[3].degree),
            TabulatedPhaseError(chain[4].angle_grid, chain[4].table[b], per_subcarrier=True),
        ]
        A1, dA1 = ArrayModel(arr, single).steering_and_derivatives(az, el, sc)
        torch.testing.assert_close(A[b], A1, rtol=tolerance(F64, condition=M), atol=tolerance(F64, condition=M))
        for d, d1 in zip(dA, dA1, strict=True):
            torch.testing.assert_close(d[b], d1, rtol=tolerance(F64, condition=10 * M), atol=tolerance(F64, condition=10 * M))
    # one draw per trial against a batch of trial angles (B, K)
    azb = torch.stack([az, -az, 0.5 * az])
    Ab = model.steering(azb, None, sc)
    for b in range(3):
        torch.testing.assert_close(Ab[b], model.steering(azb[b], None, sc)[b], rtol=tolerance(F64, condition=M),
                                   atol=tolerance(F64, condition=M))
    # coupling and timing batches
    cb = torch.randn(2, 3, dtype=torch.complex128, generator=gen)
    A0 = arr.steering(az)
    out = MutualCoupling(cb).apply(A0)
    # batched vs single matmuls / exp kernels round differently: eps-relative, not bitwise
    tol = tolerance(F64, condition=M)
    for b in range(2):
        torch.testing.assert_close(out[b], MutualCoupling(cb[b]).apply(A0), rtol=tol, atol=tol)
    delays = torch.tensor([1e-8, 2e-7, -5e-8], dtype=F64)
    H = torch.randn(3, N_SC, M, 2, dtype=torch.complex128, generator=gen)
    f = torch.arange(N_SC, dtype=F64) * 120e3
    Hb = TimingOffset(delays).apply_frequency(H, f)
    for b in range(3):
        phase = 2 * math.pi * float(f.max() * delays.abs().max())  # largest phase of exp(-j2π f δ)
        torch.testing.assert_close(Hb[b], TimingOffset(delays[b]).apply_frequency(H[b], f), rtol=0,
                                   atol=tolerance(F64, condition=max(1.0, phase)) * float(H.abs().max()))


@pytest.mark.parametrize("dtype, cdtype", [(torch.float32, torch.complex64), (F64, torch.complex128)])
def test_dtype_and_device_follow(device, dtype, cdtype):
    chain = [imp.to(device) for imp in _full_chain(_gen(4), dtype=torch.float32)]
    model = ArrayModel(ula(M), chain)
    az = torch.tensor([0.1, -0.5], dtype=dtype, device=device)
    A, dA = model.steering_and_derivatives(az, None, torch.arange(3, device=device))
    assert A.dtype == cdtype and A.device.type == device.type
    assert all(d.dtype == cdtype for d in dA)
    H = torch.ones(2, N_SC, M, dtype=cdtype, device=device)
    f = torch.arange(N_SC, device=device) * 1e5
    out = TimingOffset(torch.tensor(1e-8, device=device)).apply_frequency(H, f, -2)
    assert out.dtype == cdtype and out.device.type == device.type


# -- angle-dependent models ------------------------------------------------------------------
def test_smooth_phase_follows_seed002_shape():
    imp = SmoothPhaseError.sample(4, 16, batch_shape=(200,), generator=_gen(8), dtype=F64)
    inner = torch.deg2rad(torch.linspace(-30, 30, 241, dtype=F64))
    psi = imp.phase(inner, torch.arange(16))  # (200, 16, 4, 241)
    assert float(psi.abs().max()) < math.radians(20.0)
    assert bool((psi[..., 0, :] == 0).all())  # reference element
    outer = torch.deg2rad(torch.tensor([40.0, 50.0, 60.0], dtype=F64))
    no_sc = SmoothPhaseError(imp.ripple_cos, imp.ripple_sin, imp.slope_pos, imp.slope_neg)
    _, dpsi = no_sc._phase_and_derivative(outer, None)  # steady slope s⁺ beyond 30°
    torch.testing.assert_close(dpsi, no_sc.slope_pos.unsqueeze(-1).expand_as(dpsi), rtol=0, atol=1e-3)
    s = imp.slope_pos[..., 1:].abs()
    assert float(s.min()) >= 0.5 and float(s.max()) <= 1.5
    # degree of impairment: the phase of ã/a is ρψ
    arr = ula(4)
    az = torch.deg2rad(torch.tensor([-50.0, 10.0, 55.0], dtype=F64))
    half = SmoothPhaseError(no_sc.ripple_cos[0], no_sc.ripple_sin[0], no_sc.slope_pos[0],
                            no_sc.slope_neg[0], degree=0.5)
    ratio = ArrayModel(arr, [half]).steering(az) / arr.steering(az)
    torch.testing.assert_close(ratio.angle(), 0.5 * half.phase(az), rtol=0, atol=1e-12)


def test_hermite_interpolation():
    grid = torch.tensor([-1.0, -0.7, -0.1, 0.0, 0.4, 1.2], dtype=F64)  # non-uniform
    lin = 0.3 - 2.0 * grid
    th = torch.linspace(-1.0, 1.2, 57, dtype=F64)
    W, dW = hermite_weights(th, grid)
    torch.testing.assert_close(W @ lin, 0.3 - 2.0 * th, rtol=0, atol=1e-14)  # linear: exact
    torch.testing.assert_close(dW @ lin, torch.full_like(th, -2.0), rtol=0, atol=1e-13)
    Wn, _ = hermite_weights(grid, grid)
    torch.testing.assert_close(Wn, torch.eye(6, dtype=F64), rtol=0, atol=1e-15)  # interpolates the nodes
    # C¹: the derivative is continuous across interior nodes
    y = torch.sin(3 * grid)
    for node in grid[1:-1]:
        _, dl = hermite_weights(node.reshape(1) - 1e-9, grid)
        _, dr = hermite_weights(node.reshape(1) + 1e-9, grid)
        assert abs(float((dl - dr) @ y)) < 1e-6
    # converges to a smooth curve (O(h³) for these tangents)
    fine = torch.linspace(-1, 1, 201, dtype=F64)
    Wf, _ = hermite_weights(th.clamp(-1, 1), fine)
    assert float((Wf @ torch.sin(3 * fine) - torch.sin(3 * th.clamp(-1, 1))).abs().max()) < 1e-5
    # clamped outside the grid, with zero derivative
    Wo, dWo = hermite_weights(torch.tensor([-2.0, 3.0], dtype=F64), grid)
    torch.testing.assert_close(Wo @ y, y[[0, -1]], rtol=0, atol=4 * torch.finfo(F64).eps * float(y.abs().max()))
    assert float(dWo.abs().max()) == 0.0


def test_tabulated_from_smooth_model():
    smooth = SmoothPhaseError.sample(4, 8, generator=_gen(12), dtype=F64)
    grid = torch.deg2rad(torch.arange(-60.0, 60.01, 0.5, dtype=F64))
    tab = TabulatedPhaseError.from_model(smooth, grid)
    assert tab.table.shape == (4, 8, grid.numel()) and tab.subcarrier_dependent
    sc = torch.arange(8)
    torch.testing.assert_close(tab.phase(grid, sc), smooth.phase(grid, sc), rtol=0, atol=1e-12)
    mid = torch.deg2rad(torch.tensor([-47.3, -12.1, 3.3, 29.7, 51.6], dtype=F64))
    torch.testing.assert_close(tab.phase(mid, sc), smooth.phase(mid, sc), rtol=0, atol=1e-4)
    deg = TabulatedPhaseError.from_degrees(torch.rad2deg(grid), torch.rad2deg(tab.table))
    torch.testing.assert_close(deg.phase(mid, sc), tab.phase(mid, sc), rtol=0, atol=1e-12)


# -- timing -----------------------------------------------------------------------------------
def test_timing_offset_shifts_delay_response():
    df, n = 240e3, 16
    f = torch.arange(n, dtype=F64) * df
    tau = torch.tensor([30e-9, 55e-9], dtype=F64)
    delta = 7.5e-9
    b = torch.exp(-2j * math.pi * f[:, None] * tau)  # (N, K) delay responses b(τ)
    shifted = TimingOffset(delta).apply_frequency(b, f, axis=-2)
    torch.testing.assert_close(shifted, torch.exp(-2j * math.pi * f[:, None] * (tau + delta)), rtol=0, atol=1e-13)
    A = ula(4).steering(torch.tensor([0.2]))
    assert TimingOffset(delta).apply(A) is A  # not a steering-vector map


def test_timing_uniform_draws():
    t = TimingOffset.uniform(1e-7, (1000,), generator=_gen(1))
    assert t.delay.shape == (1000,) and float(t.delay.abs().max()) <= 1e-7
    _mc_close(t.delay, torch.tensor(0.0), "E[δ]")


# -- presets -----------------------------------------------------------------------------------
def test_presets_build_and_chain():
    assert {"seed004-coupling", "seed004-spacing", "seed003-rician-vm", "seed002-phase"} <= set(list_presets())
    cp = make_impairment("seed004-coupling", num_elements=32, zeta=-0.5)
    assert isinstance(cp, MutualCoupling)
    chain = make_chain([{"name": "seed004-spacing", "generator": _gen()}, "seed004-coupling",
                        GainPhaseError.identity(32)])
    model = ArrayModel(ula(32, wavelength=10.7e-3), chain)
    assert model.steering(torch.tensor([0.1])).shape == (32, 1)
    gp = make_impairment("seed003-rician-vm", num_elements=8, generator=_gen(), batch_shape=(4,))
    assert gp.gain.shape == (4, 8)
    sp = make_impairment("seed002-phase", generator=_gen())
    assert sp.num_elements == 4 and sp.num_subcarriers == 16


@pytest.mark.parametrize("call, err, match", [
    (lambda: make_impairment("seed999"), ValueError, "seed004-coupling"),
    (lambda: make_impairment("coupling", bogus=1), ValueError, "bad arguments"),
    (lambda: make_chain([{"zeta": 1.0}]), ValueError, "name"),
    (lambda: make_chain([3]), ValueError, "spec"),
    (lambda: GainPhaseError(torch.tensor([1.0 + 1j])), TypeError, "real"),
    (lambda: GainPhaseError(torch.tensor([1.0, float("nan")])), ValueError, "finite"),
    (lambda: GainPhaseError(torch.ones(3), torch.zeros(4)), ValueError, "broadcastable"),
    (lambda: GainPhaseError.identity(3).apply(ula(4).steering(torch.zeros(1))), ValueError, "M = 3"),
    (lambda: GainPhaseError.identity(0), ValueError, "positive"),
    (lambda: MutualCoupling(torch.zeros(0, dtype=torch.complex64)), ValueError, "L >= 1"),
    (lambda: seed004_coefficients(zeta=-1.0), ValueError, "num_elements"),
    (lambda: ElementDisplacement(torch.zeros(4, 4)), ValueError, r"\(\.\.\., M, 3\)"),
    (lambda: ElementDisplacement.gaussian(4, -1.0), ValueError, "std"),
    (lambda: ElementDisplacement.gaussian(4, 1.0, axes="xw"), ValueError, "axes"),
    (lambda: ElementDisplacement.spacing_offsets(torch.zeros(3), "wiggly"), ValueError, "gaps, scaled"),
    (lambda: ElementDisplacement.zeros(3).perturb_positions(torch.zeros(4, 3)), ValueError, "M = 3"),
    (lambda: RicianGain(1.0, 0.0), ValueError, "sigma"),
    (lambda: VonMisesPhase(-1.0), ValueError, "kappa"),
    (lambda: UniformGain(2.0, 1.0), ValueError, "low <= high"),
    (lambda: GainPhaseDistribution(RicianGain(), VonMisesPhase()).sample(-2), ValueError, "num_elements"),
    (lambda: SmoothPhaseError.sample(4, 8, generator=_gen(), degree=1.5), ValueError, "rho"),
    (lambda: ArrayModel(ula(4), [SmoothPhaseError.sample(4, 8, generator=_gen())]).steering(torch.zeros(2)),
     ValueError, "subcarriers"),
    (lambda: ArrayModel(ula(4), [SmoothPhaseError.sample(4, 8, generator=_gen())]).steering(
        torch.zeros(2), None, torch.tensor([0, 8])), ValueError, r"\[0, 7\]"),
    (lambda: TabulatedPhaseError(torch.tensor([0.0, 0.0, 1.0]), torch.zeros(4, 3)), ValueError, "increasing"),
    (lambda: TabulatedPhaseError(torch.tensor([0.0, 1.0]), torch.zeros(4, 3)), ValueError, "G = 2"),
    (lambda: TimingOffset(float("nan")), ValueError, "finite"),
    (lambda: TimingOffset(0.0).apply_frequency(torch.ones(2, 3, dtype=torch.complex64), torch.arange(4.0), -1),
     ValueError, "3 subcarriers"),
    (lambda: TimingOffset(0.0).apply_frequency(torch.ones(2, 3), torch.arange(3.0), -1), TypeError, "complex"),
])
def test_bad_input(call, err, match):
    with pytest.raises(err, match=match):
        call()


def test_steering_matrix_reference_for_displacement():
    # the displaced model equals the steering matrix of the displaced positions, computed directly
    disp = ElementDisplacement.gaussian(M, 0.02, generator=_gen(6), dtype=F64)
    az = torch.tensor([0.4, -0.2], dtype=F64)
    arr = ula(M, wavelength=0.7)
    direct = steering_matrix(arr.positions_like(az) + disp.displacement, az, None, 0.7)
    phase = 2 * torch.pi * float((arr.positions_like(az) + disp.displacement).abs().max()) / 0.7
    torch.testing.assert_close(ArrayModel(arr, [disp]).steering(az), direct, rtol=0,
                               atol=16 * torch.finfo(F64).eps * (1 + phase))
