"""OMP (isackit.estimators.sparse): NumPy reference, separable == generic, stopping rules,
noise-free recovery, and float64 gradient checks through the dictionary (system S0)."""

import math

import numpy as np
import pytest
import torch

from isackit.estimators import (
    OMP,
    OMPAngleDelay,
    SearchGrid,
    delay_dictionary,
    kron_dictionary,
    omp,
    omp_angle_delay,
)
from isackit.geometry import ula
from isackit.geometry.arrays import steering_matrix

F64, C128 = torch.float64, torch.complex128


def _numpy_omp(y, D, K):
    """Textbook simultaneous OMP with LS re-fit (independent reference)."""
    r, S = y.copy(), []
    norms = [np.linalg.norm(y) ** 2]
    for _ in range(K):
        c = np.sum(np.abs(D.conj().T @ r) ** 2, 1) / np.sum(np.abs(D) ** 2, 0)
        S.append(int(np.argmax(c)))
        g, *_ = np.linalg.lstsq(D[:, S], y, rcond=None)
        r = y - D[:, S] @ g
        norms.append(np.linalg.norm(r) ** 2)
    return S, g, np.array(norms)


def test_omp_matches_numpy_reference(gen):
    D = torch.randn(3, 12, 40, dtype=C128, generator=gen)
    Y = torch.randn(3, 12, 2, dtype=C128, generator=gen)
    res = omp(Y, D, 4)
    for b in range(3):
        S, g, norms = _numpy_omp(Y[b].numpy(), D[b].numpy(), 4)
        assert res.indices[b].tolist() == S
        np.testing.assert_allclose(res.gains[b].numpy(), g, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(res.residual_norms[b].numpy(), norms, rtol=1e-10)
        np.testing.assert_allclose(res.residual[b].numpy(), Y[b].numpy() - D[b].numpy()[:, S] @ g, atol=1e-12)


def _angle_delay_problem(gen, batch=(3,), noise=0.05):
    M, N = 6, 10
    A = steering_matrix(ula(M).positions.to(F64), torch.linspace(-1.0, 1.0, 25, dtype=F64))
    B = delay_dictionary(torch.linspace(0, 0.9e-6, 19, dtype=F64), 1e6, N)
    ia, id_ = torch.tensor([4, 15, 20]), torch.tensor([2, 9, 16])
    gam = torch.tensor([2.0 + 1j, -1.5 + 0.5j, 1.0 - 1.2j], dtype=C128)
    Y = (A[:, ia] * gam) @ B[:, id_].T
    Y = Y + noise * torch.randn(*batch, M, N, dtype=C128, generator=gen)
    return Y, A, B, ia, id_, gam


def test_separable_equals_generic_on_kron_dictionary(gen):
    Y, A, B, *_ = _angle_delay_problem(gen)
    sep = omp_angle_delay(Y, A, B, 4, return_maps=True)
    gen_ = omp(Y.reshape(3, -1, 1), kron_dictionary(A, B), 4, return_maps=True)
    Gd = B.shape[1]
    assert torch.equal(sep.indices[..., 0] * Gd + sep.indices[..., 1], gen_.indices)
    torch.testing.assert_close(sep.gains, gen_.gains[..., 0])
    torch.testing.assert_close(sep.residual_norms, gen_.residual_norms)
    torch.testing.assert_close(sep.residual.reshape(3, -1), gen_.residual[..., 0])
    torch.testing.assert_close(sep.maps.reshape(3, 4, -1), gen_.maps)
    torch.testing.assert_close(sep.peaks, gen_.peaks)
    torch.testing.assert_close(sep.peaks, sep.maps.flatten(-2).amax(-1))


def test_noise_free_recovery_and_gains(gen):
    Y, A, B, ia, id_, gam = _angle_delay_problem(gen, batch=(), noise=0.0)
    res = omp_angle_delay(Y, A, B, 3)
    order = res.indices[:, 0].argsort()
    assert res.indices[order].tolist() == torch.stack([ia, id_], -1).tolist()
    torch.testing.assert_close(res.gains[order], gam)
    assert float(res.residual_norms[-1]) < 1e-20 * float(res.residual_norms[0])


def test_per_element_stopping(gen):
    Y, A, B, *_ = _angle_delay_problem(gen, batch=(2,), noise=0.01)
    Y = torch.stack([Y[0], 0.1 * Y[1]])  # the weak element falls below the threshold earlier
    thr = 0.6 * float(omp_angle_delay(Y[1], A, B, 1).peaks[0])  # weak element: only its strongest
    res = omp_angle_delay(Y, A, B, 5, threshold=thr)
    assert res.picked[0, :3].all() and not res.picked[0, 3:].any()
    assert res.picked[1].tolist() == [True, False, False, False, False]
    k = int(res.picked[1].sum())
    assert (res.indices[1, k:] == -1).all() and (res.gains[1, k:] == 0).all()
    assert torch.all(res.residual_norms[1, k + 1:] == res.residual_norms[1, k])
    # residual-energy rule
    res2 = omp_angle_delay(Y, A, B, 5, tol=1e-3)
    assert not res2.picked[:, 4].any()
    # tensor thresholds per element
    res3 = omp_angle_delay(Y, A, B, 5, threshold=torch.tensor([0.0, thr], dtype=F64))
    assert torch.equal(res3.picked[1], res.picked[1]) and res3.picked[0, :4].all()


def test_gradcheck_through_dictionary(gen):
    """float64 gradients w.r.t. the element positions (what S0 learns) and the data."""
    M, N = 5, 6
    Y0, *_ = _angle_delay_problem(gen, batch=(), noise=0.0)
    az = torch.linspace(-1.0, 1.0, 25, dtype=F64)
    tau = torch.linspace(0, 0.9e-6, 19, dtype=F64)
    B = delay_dictionary(tau, 1e6, N + 4)
    pos0 = ula(M + 1).positions.to(F64)
    Y = (Y0 + 0.05 * torch.randn(Y0.shape, dtype=C128, generator=gen)).detach()

    def f(pos, Yr, Yi):
        A = steering_matrix(pos, az)
        r = omp_angle_delay(torch.complex(Yr, Yi), A, B, 3, grids=(az, tau * 1e6), temperature=0.3, window=2)
        return (r.residual_norms, r.peaks, torch.view_as_real(r.gains), r.soft_locations,
                torch.view_as_real(r.residual))

    pos = (pos0 + 0.01 * torch.randn(pos0.shape, dtype=F64, generator=gen)).requires_grad_(True)
    Yr, Yi = Y.real.clone().requires_grad_(True), Y.imag.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(f, (pos, Yr, Yi), eps=1e-7, atol=1e-5)


def test_generic_omp_gradcheck(gen):
    D0 = torch.randn(8, 15, dtype=C128, generator=gen)
    Y = D0[:, [2, 9]] @ torch.tensor([[1.0 + 1j], [0.5 - 1j]], dtype=C128) + 0.1 * torch.randn(8, 1, dtype=C128,
                                                                                              generator=gen)
    g = torch.linspace(-1, 1, 15, dtype=F64)

    def f(Dr, Di):
        r = omp(Y, torch.complex(Dr, Di), 2, grid=g, temperature=0.5, window=2)
        return r.residual_norms, r.peaks, torch.view_as_real(r.gains), r.soft_locations

    Dr, Di = D0.real.clone().requires_grad_(True), D0.imag.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(f, (Dr, Di), eps=1e-7, atol=1e-6)


def test_validation_errors(gen):
    Y, A, B, *_ = _angle_delay_problem(gen)
    with pytest.raises(ValueError, match="shapes"):
        omp_angle_delay(Y, A[:-1], B, 2)
    with pytest.raises(ValueError, match="max_atoms"):
        omp_angle_delay(Y, A, B, 0)
    with pytest.raises(TypeError):
        omp(Y.real, A, 2)
    with pytest.raises(ValueError, match="threshold"):
        omp(Y, A, 2, threshold=-1.0)
    with pytest.raises(ValueError, match="soft locations"):
        omp_angle_delay(Y, A, B, 2, temperature=0.1)


def test_estimators_recover_on_grid_truth(gen):
    est, X, truth = OMP.example(generator=gen)
    r = est(X)
    torch.testing.assert_close(r.estimates, truth, atol=1e-12, rtol=0)
    assert r.extras["residual_norms"].shape == (3,)
    est2, H, truth2 = OMPAngleDelay.example(generator=gen)
    r2 = est2(H)
    assert r2.parameters == ("azimuth", "delay")
    torch.testing.assert_close(r2.estimates, truth2, atol=1e-12, rtol=0)
    # default delay grid (resolution / 4 over the unambiguous range)
    df = est2.subcarrier_spacing
    r3 = OMPAngleDelay(est2.array, 2, azimuth_grid=est2.azimuth_grid, subcarrier_spacing=df)(H)
    assert (r3.estimates[:, 1] - truth2[:, 1]).abs().max() <= 1 / (8 * H.shape[-2] * df) + 1e-15
    assert math.isfinite(float(r3.estimates.sum()))


def test_grid_object_builds_dictionaries():
    g = SearchGrid.degrees(-10, 10, 0.5)
    assert g.size == 41 and abs(float(g.points()[-1]) - math.radians(10)) < 1e-12
    like = torch.zeros(1, dtype=torch.complex64)
    A1 = g.steering(ula(4), like)
    assert A1.dtype == torch.complex64 and A1.shape == (4, 41)
    assert g.steering(ula(4), like) is not A1  # a new ArrayGeometry object: new entry
    arr = ula(4)
    assert g.steering(arr, like) is g.steering(arr, like)  # cached for the same model
    with pytest.raises(ValueError):
        SearchGrid(1.0, 0.0, 0.1)
    with pytest.raises(ValueError):
        SearchGrid(0.0, 1.0, 0.0)


def test_dictionary_cache_respects_learnable_models():
    from isackit.impairments import ArrayModel, GainPhaseError
    model = ArrayModel(ula(4), [GainPhaseError.identity(4, dtype=F64, learnable=True)])
    g = SearchGrid.degrees(-10, 10, 1.0)
    like = torch.zeros(1, dtype=C128)
    A = g.steering(model, like)
    assert A.requires_grad and g.steering(model, like) is not A  # differentiable, rebuilt
    with torch.no_grad():
        A0 = g.steering(model, like)
        assert g.steering(model, like) is A0  # cached while the parameters do not change
        model.impairments[0].phase.add_(0.1)  # an optimiser step bumps the version
        A1 = g.steering(model, like)
    assert A1 is not A0 and not torch.allclose(A1, A0)


def test_batched_dictionaries_equal_one_at_a_time(gen):
    """Per-scene angle dictionaries (e.g. scaled by a per-scene Tx response a_t^T f)."""
    Y, A, B, *_ = _angle_delay_problem(gen, batch=(3,))
    scale = torch.randn(3, 1, A.shape[1], dtype=C128, generator=gen)
    Ab = A * scale
    az, tau = torch.linspace(-1.0, 1.0, 25, dtype=F64), torch.linspace(0, 0.9, 19, dtype=F64)
    kw = {"grids": (az, tau), "temperature": 0.2, "window": 2}
    batched = omp_angle_delay(Y, Ab, B, 3, **kw)
    for i in range(3):
        one = omp_angle_delay(Y[i], Ab[i], B, 3, **kw)
        assert torch.equal(batched.indices[i], one.indices)
        torch.testing.assert_close(batched.gains[i], one.gains)
        torch.testing.assert_close(batched.residual_norms[i], one.residual_norms)
        torch.testing.assert_close(batched.soft_locations[i], one.soft_locations)


def test_shared_dictionary_equals_expanded_copy_and_gradients_agree(gen):
    """A dictionary without batch dims is indexed, not expanded: same picks, gains, residuals,
    soft locations, and the same gradient w.r.t. the dictionary as a materialised batch copy."""
    Y, A, B, *_ = _angle_delay_problem(gen, batch=(2, 3))
    az, tau = torch.linspace(-1.0, 1.0, 25, dtype=F64), torch.linspace(0, 0.9, 19, dtype=F64)
    kw = {"grids": (az, tau), "temperature": 0.2, "window": 2}
    A1 = A.clone().requires_grad_(True)
    A2 = A.clone().requires_grad_(True)
    shared = omp_angle_delay(Y, A1, B, 3, **kw)
    copied = omp_angle_delay(Y, A2.expand(2, 3, *A.shape).clone(), B, 3, **kw)
    assert torch.equal(shared.indices, copied.indices)
    for f in ("gains", "peaks", "residual_norms", "soft_locations"):
        torch.testing.assert_close(getattr(shared, f), getattr(copied, f), rtol=1e-12, atol=1e-12)
    loss = lambda r: r.residual_norms[..., -1].sum() + r.soft_locations.sum() - r.peaks.sum()  # noqa: E731
    g1, = torch.autograd.grad(loss(shared), A1)
    g2, = torch.autograd.grad(loss(copied), A2)
    torch.testing.assert_close(g1, g2, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("chunk_bytes", [1, 3 * 2 * 25 * 19 * 8, 2**30])
def test_map_search_independent_of_chunking(gen, monkeypatch, chunk_bytes):
    """The cache-blocked map search gives the flat arg max of |C_0 - U V|² for any chunk size."""
    import isackit.estimators.sparse as sp

    C0 = torch.randn(7, 19, 25, dtype=C128, generator=gen)
    U = torch.randn(7, 19, 2, dtype=C128, generator=gen)
    V = torch.randn(7, 2, 25, dtype=C128, generator=gen)
    monkeypatch.setattr(sp, "_MAP_CHUNK_BYTES", chunk_bytes)
    expected = (C0 - U @ V).abs().reshape(7, -1).argmax(-1)
    assert torch.equal(sp._map_argmax(sp._planar(C0), U, V), expected)
    assert torch.equal(sp._map_argmax(sp._planar(C0), None, None), C0.abs().reshape(7, -1).argmax(-1))
    Y, A, B, *_ = _angle_delay_problem(gen, batch=(5,))
    ref = omp_angle_delay(Y, A, B, 3)
    monkeypatch.setattr(sp, "_MAP_CHUNK_BYTES", 2**30)
    assert torch.equal(omp_angle_delay(Y, A, B, 3).indices, ref.indices)


@pytest.mark.parametrize("shared", [True, False])
def test_planar_map_equals_complex_product(gen, shared):
    import isackit.estimators.sparse as sp

    X = torch.randn(2, 3, 6, 19, dtype=C128, generator=gen)
    A = torch.randn(6, 25, dtype=C128, generator=gen) if shared else torch.randn(2, 3, 6, 25, dtype=C128, generator=gen)
    torch.testing.assert_close(sp._planar_map(X, A), sp._planar(X.mT @ A.conj()), rtol=1e-13, atol=1e-13)


def test_responses_are_the_observation_map_at_the_picks(gen):
    """``responses``: |a^H Y b^*|²/(‖a‖²‖b‖²) of each picked atom on Y itself (NumPy reference)."""
    Y, A, B, *_ = _angle_delay_problem(gen, batch=(4,), noise=0.3)
    res = omp_angle_delay(Y, A, B, 3)
    Yn, An, Bn = Y.numpy(), A.numpy(), B.numpy()
    for i in range(4):
        for k in range(3):
            ga, gd = res.indices[i, k].tolist()
            a, b = An[:, ga], Bn[:, gd]
            ref = abs(a.conj() @ Yn[i] @ b.conj()) ** 2 / (np.vdot(a, a).real * np.vdot(b, b).real)
            assert res.responses[i, k].item() == pytest.approx(ref, rel=1e-10)
    # the first pick's response is its peak; later picks see the deflated map in ``peaks``
    torch.testing.assert_close(res.responses[:, 0], res.peaks[:, 0])
