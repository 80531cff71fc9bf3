"""Tests of isackit.bounds: generic Slepian–Bangs vs closed forms, hand-derived cases, PEB, MCRB."""

import math

import numpy as np
import pytest
import torch

from isackit._dtypes import tolerance
from isackit.bounds import (
    average_crb_doa,
    crb_doa_deterministic,
    crb_doa_stochastic,
    crb_from_fim,
    crb_single_path,
    crb_unknown_gains,
    fisher_deterministic,
    fisher_gaussian,
    fisher_random_gain_phase,
    fisher_stochastic,
    gain_phase_moments,
    mcrb_deterministic,
    mcrb_doa_deterministic,
    peb_aoa,
)
from isackit.geometry import ula
from isackit.impairments import ArrayModel
from isackit.impairments.coupling import MutualCoupling
from isackit.impairments.displacement import ElementDisplacement
from isackit.impairments.gain_phase import GainPhaseError

F64, C128 = torch.float64, torch.complex128


def _models(m, gen):
    geo = ula(m).to(F64)
    gp = GainPhaseError(1 + 0.1 * torch.randn(m, generator=gen, dtype=F64),
                        0.2 * torch.randn(m, generator=gen, dtype=F64))
    mc = MutualCoupling(torch.tensor([1.0, 0.2 - 0.1j, 0.05j], dtype=C128))
    disp = ElementDisplacement(torch.cat([torch.zeros(m, 1, dtype=F64), 0.02 * torch.randn(m, 1, generator=gen, dtype=F64),
                                          torch.zeros(m, 1, dtype=F64)], -1))
    return {"ideal": ArrayModel(geo), "impaired": ArrayModel(geo, [disp, gp, mc])}


def _rel(a, b):
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("which", ["ideal", "impaired"])
@pytest.mark.parametrize("correlated", [False, True])
def test_stochastic_crb_closed_form_equals_slepian_bangs(gen, which, correlated):
    model = _models(7, gen)[which]
    th = torch.tensor([[-0.3, 0.2, 0.5], [0.1, -0.6, 0.25]], dtype=F64)
    if correlated:
        L = torch.randn(3, 3, dtype=C128, generator=gen)
        P = L @ L.mH + 0.1 * torch.eye(3, dtype=C128)
    else:
        P = torch.diag(torch.tensor([1.0, 0.5, 2.0], dtype=F64)).to(C128)
    ref = crb_doa_stochastic(model, th, P, 0.3, 40)
    sb = crb_doa_stochastic(model, th, P, 0.3, 40, method="slepian_bangs")
    assert ref.shape == (2, 3, 3)
    assert _rel(sb, ref) < 1e-8


@pytest.mark.parametrize("which", ["ideal", "impaired"])
def test_deterministic_crb_closed_form_equals_slepian_bangs(gen, which):
    model = _models(6, gen)[which]
    th = torch.tensor([[-0.4, 0.3], [0.05, 0.35]], dtype=F64)
    S = torch.randn(2, 2, 8, dtype=C128, generator=gen)
    S[1, 1] = 0.7 * S[1, 0] + 0.3 * S[1, 1]  # correlated signals in the second batch element
    ref = crb_doa_deterministic(model, th, 0.2, signals=S)
    sb = crb_doa_deterministic(model, th, 0.2, signals=S, method="slepian_bangs")
    assert _rel(sb, ref) < 1e-8
    # the same closed form from P̂ and N
    Phat = S @ S.mH / 8
    assert _rel(crb_doa_deterministic(model, th, 0.2, source_cov=Phat, num_snapshots=8), ref) < 1e-12


def test_single_source_ula_textbook_formula():
    # Deterministic, one source, λ/2 ULA: CRB = 6 σ² / (N P M (M² - 1) π² cos² θ).
    M, N, P, s2, th = 10, 50, 2.0, 0.5, 0.4
    crb = crb_doa_deterministic(ArrayModel(ula(M).to(F64)), torch.tensor([th], dtype=F64), s2,
                                source_cov=torch.tensor([[P]], dtype=C128), num_snapshots=N)
    expected = 6 * s2 / (N * P * M * (M**2 - 1) * math.pi**2 * math.cos(th) ** 2)
    assert float(crb[0, 0]) == pytest.approx(expected, rel=1e-12)


def test_single_path_closed_form_equals_generic(gen):
    for model in _models(8, gen).values():
        th = torch.tensor([0.3, -0.7], dtype=F64)
        F = torch.randn(2, 8, 5, dtype=C128, generator=gen)
        s = torch.exp(1j * torch.rand(5, dtype=F64, generator=gen))
        alpha = torch.tensor([0.8 + 0.3j, -0.2 + 1.1j], dtype=C128)
        ref = crb_single_path(model, th, F, alpha, 0.05, pilots=s)
        sb = crb_single_path(model, th, F, alpha, 0.05, pilots=s, method="slepian_bangs")
        assert ref.shape == (2,)
        assert _rel(sb, ref) < 1e-8


def test_crb_unknown_gains_two_paths_matches_deterministic_doa(gen):
    # y = A(θ) α is the deterministic DOA model with one snapshot: both routes must agree.
    model = _models(6, gen)["impaired"]
    th = torch.tensor([-0.2, 0.4], dtype=F64)
    alpha = torch.tensor([1.0 + 0.5j, 0.3 - 0.8j], dtype=C128)
    ref = crb_doa_deterministic(model, th, 0.1, signals=alpha[:, None])
    crb = crb_unknown_gains(lambda t: model.steering(t), th, alpha, 0.1)
    assert _rel(crb, ref) < 1e-8


def test_crb_from_fim_schur_complement_by_hand():
    F = torch.tensor([[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]], dtype=F64)
    a, b, c = F[0, 0], F[0, 1:], F[1:, 1:]
    schur = a - b @ torch.linalg.inv(c) @ b
    tol = tolerance(F64, condition=float(torch.linalg.cond(F)))
    assert float(crb_from_fim(F, [0])[0, 0]) == pytest.approx(float(1 / schur), rel=tol)
    full = np.linalg.inv(F.numpy())
    np.testing.assert_allclose(crb_from_fim(F, [2, 0]).numpy(), full[np.ix_([2, 0], [2, 0])], rtol=1e-12)
    np.testing.assert_allclose(crb_from_fim(F).numpy(), full, rtol=1e-12)
    with pytest.raises(ValueError, match="interest_idx"):
        crb_from_fim(F, [3])
    with pytest.raises(ValueError, match="square"):
        crb_from_fim(F[:2], [0])


def test_fisher_stochastic_scalar_variance():
    # x ~ CN(0, η I_M): F = N M / η².
    fim = fisher_stochastic(lambda e: e[..., None] * torch.eye(3, dtype=C128), torch.tensor([[2.0], [0.5]], dtype=F64), 10)
    np.testing.assert_allclose(fim[..., 0, 0].numpy(), [10 * 3 / 4.0, 10 * 3 / 0.25], rtol=1e-12)


def test_fisher_deterministic_is_differentiable():
    def f(eta):
        return fisher_deterministic(lambda e: torch.exp(1j * e[..., :1] * torch.arange(4, dtype=F64)) * e[..., 1:2],
                                    eta, 0.5).sum()

    eta = torch.tensor([0.3, 1.2], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(f, (eta,))


def test_single_path_crb_gradcheck_in_precoder(gen):
    model = ArrayModel(ula(4).to(F64))
    Fr = torch.randn(4, 3, 2, dtype=F64, generator=gen, requires_grad=True)
    th = torch.tensor(0.2, dtype=F64)
    assert torch.autograd.gradcheck(
        lambda x: crb_single_path(model, th, torch.view_as_complex(x), 1.0 + 0j, 0.1), (Fr,))


def test_batch_equals_one_at_a_time(gen):
    model = ArrayModel(ula(6).to(F64))
    th = torch.tensor([[[-0.3, 0.2]], [[0.1, 0.6]]], dtype=F64)  # (2, 1, 2)
    P = torch.eye(2, dtype=C128)
    batched = crb_doa_stochastic(model, th, P, 0.1, 20, method="slepian_bangs")
    for i in range(2):
        single = crb_doa_stochastic(model, th[i, 0], P, 0.1, 20, method="slepian_bangs")
        # batched and single autograd/solves round differently: κ·eps relative, with κ the
        # condition of the bound (×10 for the coupling to the nuisance parameters)
        tol = tolerance(F64, condition=10 * float(torch.linalg.cond(single)))
        torch.testing.assert_close(batched[i, 0], single, rtol=tol, atol=0)


def test_validation_errors():
    model = ArrayModel(ula(4).to(F64))
    th = torch.tensor([0.1, 0.2], dtype=F64)
    with pytest.raises(ValueError, match="method"):
        crb_doa_stochastic(model, th, torch.eye(2, dtype=C128), 0.1, 10, method="nope")
    with pytest.raises(ValueError, match="source_cov"):
        crb_doa_stochastic(model, th, torch.eye(3, dtype=C128), 0.1, 10)
    with pytest.raises(ValueError, match="noise_var"):
        crb_doa_stochastic(model, th, torch.eye(2, dtype=C128), -1.0, 10)
    with pytest.raises(ValueError, match="signals"):
        crb_doa_deterministic(model, th, 0.1, source_cov=torch.eye(2, dtype=C128), num_snapshots=4,
                              method="slepian_bangs")
    with pytest.raises(TypeError, match="ArrayModel"):
        crb_doa_stochastic(ula(4), th, torch.eye(2, dtype=C128), 0.1, 10)
    with pytest.raises(ValueError, match="finite"):
        crb_doa_stochastic(model, torch.tensor([float("nan"), 0.1], dtype=F64), torch.eye(2, dtype=C128), 0.1, 10)


def test_peb_two_stations_aoa_by_hand():
    # φ_i = atan2(p_y - q_iy, p_x - q_ix) - ψ_i, ∂φ_i/∂p = (-(p_y - q_iy), p_x - q_ix) / r_i².
    q = np.array([[-5.0, 0.0], [3.0, 0.0]])
    psi = np.array([0.0, math.radians(10.0)])
    var = np.array([1e-4, 4e-4])
    p = np.array([1.0, 4.0])
    F = np.zeros((2, 2))
    for i in range(2):
        dx, dy = p - q[i]
        g = np.array([-dy, dx]) / (dx**2 + dy**2)
        F += np.outer(g, g) / var[i]
    expected = math.sqrt(np.trace(np.linalg.inv(F)))
    got = peb_aoa(torch.tensor(p, dtype=F64), torch.tensor(q, dtype=F64), torch.tensor(psi, dtype=F64),
                  torch.tensor(var, dtype=F64))
    assert float(got) == pytest.approx(expected, rel=1e-12)
    # batched over positions
    pts = torch.tensor([[1.0, 4.0], [0.0, 6.0]], dtype=F64)
    both = peb_aoa(pts, torch.tensor(q, dtype=F64), torch.tensor(psi, dtype=F64), torch.tensor(var, dtype=F64))
    assert both.shape == (2,) and float(both[0]) == pytest.approx(expected, rel=1e-12)


def _dml_setup(gen, m=8, n=10):
    geo = ula(m).to(F64)
    c = torch.polar(1 + 0.1 * torch.randn(m, generator=gen, dtype=F64), 0.2 * torch.randn(m, generator=gen, dtype=F64))
    true = ArrayModel(geo, [GainPhaseError.from_coefficients(c / c[0])])
    ideal = true.ideal()

    def response(t):  # B(θ) = I_N ⊗ a(θ) in the (M, N) row-major layout of X.reshape(-1)
        a = ideal.steering(t)[..., :, 0]
        eye = torch.eye(n, dtype=a.dtype, device=a.device)
        return (a[..., :, None, None] * eye).reshape(*a.shape[:-1], m * n, n)

    return true, ideal, response


def test_mcrb_without_mismatch_is_the_crb(gen):
    m, n = 8, 10
    _, ideal, response = _dml_setup(gen, m, n)
    th = torch.tensor([0.3], dtype=F64)
    S = torch.randn(1, n, dtype=C128, generator=gen)
    mu = (ideal.steering(th) @ S).reshape(-1)
    res = mcrb_deterministic(mu, response, th, 0.05)
    crb = crb_doa_deterministic(ideal, th, 0.05, signals=S)
    assert float(res.bias.abs()) < 1e-10
    assert float(res.mcrb[0, 0]) == pytest.approx(float(crb[0, 0]), rel=1e-8)


def test_mcrb_pseudo_true_minimises_the_misfit(gen):
    m, n = 8, 10
    true, ideal, response = _dml_setup(gen, m, n)
    th = torch.tensor([0.3], dtype=F64)
    S = torch.randn(1, n, dtype=C128, generator=gen)
    X = true.steering(th) @ S
    res = mcrb_deterministic(X.reshape(-1), response, th, 0.05)
    # independent check: brute-force grid of the concentrated cost Σ_n |a^H x_n|² / M
    grid = th + torch.linspace(-0.02, 0.02, 40001, dtype=F64)
    cost = ((ideal.steering(grid).mH @ X).abs() ** 2).sum(-1)
    assert float(res.pseudo_true[0]) == pytest.approx(float(grid[cost.argmax()]), abs=2e-6)
    assert abs(float(res.bias[0])) > 1e-4  # the gain-phase error really biases the ideal-array fit
    torch.testing.assert_close(res.mse_bound, res.mcrb + res.bias[:, None] * res.bias[None, :])


@pytest.mark.slow
def test_mcrb_explains_the_floor_of_mismatched_dml():
    """Data from a gain-phase-impaired ULA, DML (engineer C1) assuming the ideal ULA.

    Deterministic signals, fixed over trials; only the noise is redrawn.  The simulated RMSE
    about the TRUE angles must be within 20 % of sqrt(MCRB + bias²), at 10 dB (variance and
    bias both matter) and at 30 dB (bias floor, far above the CRB of the true model).
    """
    from isackit.estimators.grids import SearchGrid
    from isackit.estimators.likelihood import dml_doa
    from isackit.metrics import assignment_errors
    from isackit.signals.snapshots import sample_covariance, snapshots

    g = torch.Generator().manual_seed(5)
    m, n, k = 8, 10, 2
    c = torch.polar(1 + 0.1 * torch.randn(m, generator=g, dtype=F64), 0.2 * torch.randn(m, generator=g, dtype=F64))
    true = ArrayModel(ula(m).to(F64), [GainPhaseError.from_coefficients(c / c[0])])
    ideal = true.ideal()
    th = torch.tensor([-0.2, 0.3], dtype=F64)
    S = torch.randn(k, n, dtype=C128, generator=g)
    S = S / S.abs().pow(2).mean(-1, keepdim=True).sqrt()
    A = true.steering(th)

    def response(t):  # I_N ⊗ A(θ) in the row-major (M, N) layout of X.reshape(-1): (M N, N K)
        a = ideal.steering(t)
        eye = torch.eye(n, dtype=a.dtype)
        return (a[..., :, None, None, :] * eye[:, :, None]).reshape(*a.shape[:-2], m * n, n * k)

    grid = SearchGrid.degrees(-90, 90, 0.5)
    for snr_db in (10.0, 30.0):
        s2 = 10 ** (-snr_db / 10)
        bound = mcrb_deterministic((A @ S).reshape(-1), response, th, s2)
        conv = mcrb_doa_deterministic(true, ideal, th, S, s2)  # the convenience wrapper: same bound
        torch.testing.assert_close(conv.mse_bound, bound.mse_bound, rtol=1e-8, atol=0)
        X = snapshots(A.expand(1000, m, k), g, signals=S.expand(1000, k, n), noise_variance=s2).X
        est = dml_doa(sample_covariance(X), ideal, k, grid).estimates
        rmse = (assignment_errors(est, th[:, None]) ** 2).mean((0, 2)).sqrt()
        root = bound.mse_bound.diagonal().sqrt()
        torch.testing.assert_close(rmse, root, rtol=0.2, atol=0)
        crb = crb_doa_deterministic(true, th, s2, signals=S).diagonal().sqrt()
        if snr_db == 30.0:
            assert bool((rmse > 3 * crb).all())  # a genuine floor, not the CRB


# -- average bounds ---------------------------------------------------------------------------

def test_average_crb_doa_is_the_mean_over_draws(gen):
    m = 6
    imp = GainPhaseError.rician_von_mises(m, nu=1.0, sigma=0.1, kappa=10.0, batch_shape=(3,), generator=gen,
                                          dtype=F64)
    model = ArrayModel(ula(m).to(F64), [imp])
    th = torch.tensor([-0.3, 0.4], dtype=F64)
    P = torch.eye(2, dtype=C128)
    avg = average_crb_doa(model, th, 0.1, source_cov=P, num_snapshots=20)
    singles = [crb_doa_stochastic(ArrayModel(ula(m).to(F64), [GainPhaseError(imp.gain[d], imp.phase[d])]), th, P, 0.1, 20)
               for d in range(3)]
    cond = max(float(torch.linalg.cond(s)) for s in singles)
    torch.testing.assert_close(avg, torch.stack(singles).mean(0), rtol=tolerance(F64, condition=cond), atol=0)


def _dist(kappa=4.0):
    from isackit.impairments.distributions import GainPhaseDistribution, RicianGain, VonMisesPhase

    return GainPhaseDistribution(RicianGain(1.0, 0.3), VonMisesPhase(kappa))


def test_gain_phase_moments_match_sampling(gen):
    dist = _dist()
    u = torch.tensor([1.0 + 0.5j, -0.3 + 2.0j], dtype=C128)
    c = dist.sample(2, (200000,), gen, dtype=F64)
    w = (torch.randn(200000, 2, generator=gen, dtype=F64) + 1j * torch.randn(200000, 2, generator=gen, dtype=F64)) * math.sqrt(0.05)
    y = c * u + w
    z = torch.stack([y.real, y.imag], -1)  # (S, 2, 2)
    mean, cov = gain_phase_moments(u, dist, 0.1)
    torch.testing.assert_close(z.mean(0), mean, atol=0.01, rtol=0)
    emp = torch.einsum("sdi,sdj->dij", z - z.mean(0), z - z.mean(0)) / z.shape[0]
    torch.testing.assert_close(emp, cov, atol=0.02, rtol=0.03)


def test_random_gain_phase_fim_proper_case_equals_complex_slepian_bangs():
    # uniform phase on (-π, π]: E c = 0 and E c² = 0, so y ~ CN(0, v|u|² + σ²) is proper
    from isackit.impairments.distributions import GainPhaseDistribution, RicianGain, UniformPhase

    dist = GainPhaseDistribution(RicianGain(1.0, 0.3), UniformPhase(-math.pi, math.pi))
    model = ArrayModel(ula(5).to(F64))
    eta = torch.tensor([0.3, 1.5], dtype=F64)  # angle, amplitude

    def u_fn(e):
        return model.steering(e[..., :1])[..., 0] * e[..., 1:2]

    F = fisher_random_gain_phase(u_fn, eta, dist, 0.2, event_ndim=1)
    v = float(dist.variance())
    ref = fisher_gaussian(None, lambda e: torch.diag_embed((v * u_fn(e).abs() ** 2 + 0.2).to(C128)), eta, 1)
    torch.testing.assert_close(F, ref, rtol=1e-10, atol=1e-12)


def test_random_gain_phase_fim_equals_score_covariance(gen):
    """FIM = E[score scoreᵀ] under the moment-matched (improper) Gaussian model, by sampling."""
    dist = _dist(kappa=3.0)
    model = ArrayModel(ula(3).to(F64))
    eta = torch.tensor([0.2, 1.0], dtype=F64)

    def u_fn(e):  # amplitude also depends on the angle: a non-zero cross term
        return model.steering(e[..., :1])[..., 0] * (e[..., 1:2] + 2.0 * e[..., :1])

    F = fisher_random_gain_phase(u_fn, eta, dist, 0.3, event_ndim=1)
    mean, cov = gain_phase_moments(u_fn(eta), dist, 0.3)
    L = torch.linalg.cholesky(cov)
    z = mean + (L @ torch.randn(100000, 3, 2, 1, generator=gen, dtype=F64)).squeeze(-1)  # (S, 3, 2)

    def logp(e):  # (S,) log-density of every sample at η = e (batched Jacobian over the shift)
        m, S = gain_phase_moments(u_fn(e), dist, 0.3)
        d = (z - m).unsqueeze(-1)
        quad = (d.mT @ torch.linalg.solve(S, d))[..., 0, 0]
        return (-0.5 * quad - 0.5 * torch.logdet(S)).sum(-1)

    from torch.func import jacfwd

    score = jacfwd(logp)(eta)  # (S, P)
    emp = score.T @ score / score.shape[0]
    # off-diagonal terms are ~0 here: compare on the scale of the diagonal (MC error ~0.5 %)
    torch.testing.assert_close(emp, F, rtol=0.03, atol=0.03 * float(F.diagonal().max()))


def test_mcrb_doa_reduction_to_virtual_snapshots(gen):
    true, ideal, _ = _dml_setup(gen, 6, 1)
    th = torch.tensor([-0.2, 0.35], dtype=F64)
    S = torch.randn(2, 12, dtype=C128, generator=gen)
    full = mcrb_doa_deterministic(true, ideal, th, S, 0.1, reduce=False)
    small = mcrb_doa_deterministic(true, ideal, th, S, 0.1)
    assert small.pseudo_true_gains.shape == (4,) and full.pseudo_true_gains.shape == (24,)
    torch.testing.assert_close(small.mcrb, full.mcrb, rtol=1e-8, atol=0)
    torch.testing.assert_close(small.bias, full.bias, rtol=1e-8, atol=1e-14)


def test_model_batch_dims_are_kept_apart(gen):
    # impairment draws in the model's batch dims, unbatched angles: one CRB per draw
    imp = GainPhaseError.rician_von_mises(5, nu=1.0, sigma=0.2, kappa=5.0, batch_shape=(2,), generator=gen,
                                          dtype=F64)
    model = ArrayModel(ula(5).to(F64), [imp])
    th = torch.tensor([-0.3, 0.3], dtype=F64)
    S = torch.randn(2, 4, dtype=C128, generator=gen)
    det = crb_doa_deterministic(model, th, 0.1, signals=S, method="slepian_bangs")
    sto = crb_doa_stochastic(model, th, torch.eye(2, dtype=C128), 0.1, 10, method="slepian_bangs")
    assert det.shape == sto.shape == (2, 2, 2)
    for d in range(2):
        single = ArrayModel(ula(5).to(F64), [GainPhaseError(imp.gain[d], imp.phase[d])])
        torch.testing.assert_close(det[d], crb_doa_deterministic(single, th, 0.1, signals=S), rtol=1e-8, atol=0)
        torch.testing.assert_close(sto[d], crb_doa_stochastic(single, th, torch.eye(2, dtype=C128), 0.1, 10),
                                   rtol=1e-8, atol=0)
