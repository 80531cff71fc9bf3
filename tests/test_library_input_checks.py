"""Hostile input to the library's lower layers (issue 13 item 7): every case is a one-line
``ValueError``/``TypeError`` naming the bad value at the boundary — never a raw torch/linalg
error and never a silently wrong number — or, where the input is legitimate, a correct answer
(empty batches, coherent sources).
"""

from __future__ import annotations

import math

import pytest
import torch

from isackit.bounds import crb_doa_deterministic, crb_doa_stochastic, crb_from_fim
from isackit.estimators import (
    DML,
    MUSIC,
    MVDR,
    OMP,
    RootMUSIC,
    SearchGrid,
    angle_delay_mvdr,
    dml_cost,
    music_doa,
    music_spectrum,
    mvdr_doa,
    mvdr_spectrum,
    omp,
    omp_angle_delay,
    root_music,
)
from isackit.geometry import steering_matrix, ula
from isackit.impairments import ArrayModel

pytestmark = pytest.mark.filterwarnings("ignore:ComplexHalf support is experimental:UserWarning")

F64, C64, C128 = torch.float64, torch.complex64, torch.complex128
M = 8
MODEL = ArrayModel(ula(M).to(F64))
TH = torch.tensor([-0.3, 0.2], dtype=F64)
GRID = SearchGrid.degrees(-90.0, 90.0, 0.5)


def _cov(dtype=C128):
    A = MODEL.steering(TH)
    return (A @ A.mH + 0.1 * torch.eye(M, dtype=C128)).to(dtype)


def _nan_cov():
    R = _cov()
    R[0, 1] = float("nan")
    return R


def _snapshots(dtype=C128):
    g = torch.Generator().manual_seed(0)
    return (MODEL.steering(TH) @ torch.randn(2, 16, dtype=C128, generator=g)).to(dtype)


EYE2 = torch.eye(2, dtype=C128)

BAD = {
    # bounds
    "crb_det_negative_snapshots": (lambda: crb_doa_deterministic(MODEL, TH, 1.0, source_cov=EYE2, num_snapshots=-5),
                                   ValueError, "num_snapshots"),
    "crb_sto_zero_snapshots": (lambda: crb_doa_stochastic(MODEL, TH, EYE2, 1.0, 0), ValueError, "num_snapshots"),
    "crb_det_K_equals_M": (lambda: crb_doa_deterministic(MODEL, torch.linspace(-1, 1, M, dtype=F64), 1.0,
                                                         source_cov=torch.eye(M, dtype=C128), num_snapshots=10),
                           ValueError, "fewer sources"),
    "crb_sto_K_above_M": (lambda: crb_doa_stochastic(MODEL, torch.linspace(-1, 1, M + 1, dtype=F64),
                                                     torch.eye(M + 1, dtype=C128), 1.0, 10), ValueError, "fewer sources"),
    "crb_zero_power_source": (lambda: crb_doa_stochastic(MODEL, TH, torch.diag(torch.tensor([1.0, 0.0], dtype=C128)),
                                                         1.0, 10), ValueError, "singular"),
    "crb_sto_zero_source_cov_slepian_bangs": (lambda: crb_doa_stochastic(MODEL, TH, torch.zeros(2, 2, dtype=C128), 1.0,
                                                                         10, method="slepian_bangs"),
                                              ValueError, "singular"),
    "crb_equal_angles": (lambda: crb_doa_deterministic(MODEL, torch.tensor([0.1, 0.1], dtype=F64), 1.0,
                                                       source_cov=EYE2, num_snapshots=10), ValueError, "not identifiable"),
    "crb_half_angles": (lambda: crb_doa_stochastic(MODEL, TH.half(), EYE2, 1.0, 10), TypeError, "float16"),
    "crb_from_singular_fim": (lambda: crb_from_fim(torch.tensor([[1.0, 1.0], [1.0, 1.0]], dtype=F64)),
                              ValueError, "singular"),
    # signals
    "snapshots_non_hermitian_source_cov": (lambda: _draw(torch.tensor([[1, 0], [1, 1]], dtype=C128)),
                                           ValueError, "Hermitian"),
    "snapshots_indefinite_source_cov": (lambda: _draw(torch.tensor([[1, 2], [2, 1]], dtype=C128)),
                                        ValueError, "positive semidefinite"),
    # geometry
    "steering_negative_wavelength": (lambda: steering_matrix(ula(4).positions, TH, wavelength=-1.0),
                                     ValueError, "wavelength"),
    "steering_zero_wavelength": (lambda: steering_matrix(ula(4).positions, TH, wavelength=0.0), ValueError, "wavelength"),
    "steering_nan_wavelength": (lambda: steering_matrix(ula(4).positions, TH, wavelength=float("nan")),
                                ValueError, "wavelength"),
    "ula_zero_wavelength": (lambda: ula(4, wavelength=0.0), ValueError, "wavelength"),
    "steering_half_positions": (lambda: steering_matrix(ula(4).positions.half(), TH), TypeError, "float16"),
    # sparse
    "omp_more_atoms_than_measurements": (lambda: omp(_snapshots(), GRID.steering(MODEL, _snapshots()), 12),
                                         ValueError, "max_atoms"),
    "omp_nan_input": (lambda: omp(torch.full((M, 4), float("nan"), dtype=C128), GRID.steering(MODEL, _cov()), 2),
                      ValueError, "finite"),
    "omp_mixed_dtypes": (lambda: omp(_snapshots(C64), GRID.steering(MODEL, _cov()), 2), TypeError, "complex dtype"),
    "omp_angle_delay_too_many_atoms": (lambda: omp_angle_delay(torch.ones(2, 2, dtype=C128), torch.ones(2, 5, dtype=C128),
                                                               torch.ones(2, 3, dtype=C128), 5), ValueError, "max_atoms"),
    "omp_class_nan": (lambda: OMP(MODEL, 2, grid=GRID)(torch.full((M, 4), float("nan"), dtype=C128)),
                      ValueError, "finite"),
    # spectral / subspace / likelihood
    "music_nan": (lambda: MUSIC(MODEL, 2, grid=GRID)(_nan_cov()), ValueError, "finite"),
    "music_doa_nan": (lambda: music_doa(_nan_cov(), MODEL, 2, GRID), ValueError, "finite"),
    "root_music_nan": (lambda: root_music(_nan_cov(), 2), ValueError, "finite"),
    "dml_inf": (lambda: DML(MODEL, 2, grid=GRID)(_cov() * float("inf")), ValueError, "finite"),
    "music_half": (lambda: MUSIC(MODEL, 2)(_cov().real.half()), TypeError, "half precision"),
    "music_complex32": (lambda: MUSIC(MODEL, 2)(_cov().real.half().to(torch.complex32)), TypeError, "half precision"),
    "music_too_many_sources": (lambda: music_doa(_cov(), MODEL, M, GRID), ValueError, "num_sources"),
    "mvdr_nan_loading": (lambda: MVDR(MODEL, 2, grid=GRID, loading=float("nan"))(_cov()), ValueError, "loading"),
    "mvdr_doa_inf_loading": (lambda: mvdr_doa(_cov(), MODEL, 2, GRID, loading=float("inf")), ValueError, "loading"),
    "mvdr_spectrum_negative_loading": (lambda: mvdr_spectrum(_cov(), GRID.steering(MODEL, _cov()), loading=-1.0),
                                       ValueError, "loading"),
    "joint_mvdr_nan_loading": (lambda: angle_delay_mvdr(torch.ones(16, 6, dtype=C128), ula(6), 1,
                                                        loading=float("nan")), ValueError, "loading"),
    "music_spectrum_mixed_dtypes": (lambda: music_spectrum(_cov(C64), GRID.steering(MODEL, _cov()), 2),
                                    TypeError, "complex dtype"),
    "dml_cost_mixed_dtypes": (lambda: dml_cost(_cov(C64), MODEL.steering(TH)), TypeError, "complex dtype"),
    "root_music_impaired_array": (lambda: RootMUSIC(ArrayModel(ula(M), [_coupling()]), 2)(_cov()),
                                  ValueError, "ideal uniform linear array"),
}


def _draw(P):
    from isackit.signals import snapshots

    return snapshots(MODEL.steering(TH), torch.Generator().manual_seed(0), num_snapshots=4, source_cov=P)


def _coupling():
    from isackit.impairments import MutualCoupling

    return MutualCoupling(torch.tensor([1.0, 0.2], dtype=C128))


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_a_one_line_error(case):
    fn, exc, words = BAD[case]
    with pytest.raises(exc) as info:
        fn()
    msg = str(info.value)
    assert words in msg and "\n" not in msg, msg
    assert type(info.value) in (ValueError, TypeError), type(info.value)  # never a raw linalg error


@pytest.mark.parametrize("batch", [(0,), (3, 0)])
def test_empty_batches_give_empty_results(batch):
    R = _cov().expand(*batch, M, M)
    for est in (MUSIC(MODEL, 2, grid=GRID), DML(MODEL, 2, grid=GRID), RootMUSIC(ula(M), 2)):
        res = est(R)
        assert res.estimates.shape == (*batch, 2, 1) and res.count.shape == batch and res.valid.shape == batch
    assert root_music(R, 2).estimates.shape == (*batch, 2, 1)
    res = omp(torch.zeros(*batch, M, 4, dtype=C128), GRID.steering(MODEL, _cov()), 2)
    assert res.indices.shape == (*batch, 2)
    crb = crb_doa_stochastic(MODEL, TH.expand(*batch, 2), EYE2, 1.0, 10)
    assert crb.shape == (*batch, 2, 2)


def test_singular_source_covariances_are_legitimate_for_snapshots():
    from isackit.signals import snapshots

    for P in (torch.ones(2, 2, dtype=C128), torch.zeros(2, 2, dtype=C128)):  # coherent; silent sources
        snap = snapshots(MODEL.steering(TH), torch.Generator().manual_seed(0), num_snapshots=4, source_cov=P)
        assert bool(torch.isfinite(snap.X).all())


def test_coherent_sources_have_a_finite_crb():
    # a rank-one source covariance (fully coherent sources) is legitimate: the stochastic CRB
    # exists (the Hadamard product with D^H Π⊥ D stays non-singular) and both routes agree
    P = torch.ones(2, 2, dtype=C128)
    a = crb_doa_stochastic(MODEL, TH, P, 1.0, 10)
    b = crb_doa_stochastic(MODEL, TH, P, 1.0, 10, method="slepian_bangs")
    assert bool(torch.isfinite(a).all()) and bool((a.diagonal() > 0).all())
    torch.testing.assert_close(a, b, rtol=1e-8, atol=0)


def test_zero_power_input_is_flagged_not_an_error():
    R = torch.stack([_cov(), torch.zeros(M, M, dtype=C128)])
    res = MUSIC(MODEL, 2, grid=GRID)(R)
    assert res.valid.tolist() == [True, False] and bool(torch.isnan(res.estimates[1]).all())
    assert math.isfinite(float(res.estimates[0].sum()))
