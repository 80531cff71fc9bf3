"""Refined estimators on closely spaced sources: statistics against the CRB, fixed seeds.

Case D2 (issue 13 item 9): ULA M = 8 (λ/2), K = 3 uncorrelated equal-power sources at
-20.4°, 0.5°, 9.8° — 0.5° and 9.8° are 9.3° apart, inside the 14° half-power beamwidth —
N = 64 snapshots, complex128, 300 trials per SNR (the RMSE then has a relative standard
deviation of about 1/sqrt(2·900) ≈ 2.4 %).  The bound is the stochastic CRB
(:func:`isackit.bounds.crb_doa_stochastic`), reported as sqrt of its mean diagonal; a trial
fails when a source is missing or off by more than 2°.  Every estimator sees the same
covariances, so failure rates are compared trial by trial on identical data.

* DML (the maximum-likelihood estimator) reaches RMSE/√CRB ≤ 1.1 at 10 and 20 dB and fails no
  more often than MUSIC at any SNR from -10 to 20 dB (before the fix of its initialisation and
  refinement it had 4.7 and 15 × √CRB and 3-7 % failures: ``benchmarks/bench_dml.py``).
* Every registered covariance estimator with an off-grid refinement (``grid_only`` keyword)
  is run on a coarse 0.5° grid with and without the refinement: the refinement never
  increases the RMSE or the failure rate, and the estimators that are consistent on this case
  (MUSIC, DML) get to RMSE/√CRB ≤ 1.1 at 20 dB from that coarse grid.  Bartlett cannot
  resolve 0.5° from 9.8° with 8 elements and MVDR is biased at this N; for them only the
  first property is checked.
* Every registered angle–delay CSI estimator with a refinement, on two paths 0.15 rad apart
  (inside the 0.22 rad beamwidth of 8 elements) and 1.5 delay cells apart, off the grids,
  200 single-snapshot trials at 10 and 20 dB against the deterministic CRB with unknown gains
  (:func:`isackit.bounds.crb_unknown_gains`): no failures, RMSE/√CRB ≤ 1.5 for each parameter
  (smoothing costs aperture) and below the grid-only RMSE.
"""

from __future__ import annotations

import inspect
import math

import pytest
import torch

from isackit.bounds import crb_doa_stochastic
from isackit.estimators import DML, ESTIMATORS, MUSIC, SearchGrid
from isackit.geometry import ula
from isackit.impairments import ArrayModel
from isackit.metrics import assignment_errors
from isackit.seeding import make_generator
from isackit.signals import sample_covariance, snapshots

pytestmark = pytest.mark.slow

ANGLES_DEG = (-20.4, 0.5, 9.8)
M, N, K, TRIALS = 8, 64, 3, 300
FAIL_DEG = 2.0
#: the refined estimators expected to be efficient on this case (RMSE/√CRB bound at 20 dB)
EFFICIENT = {"dml": 1.1, "music": 1.1}


def _case(snr_db: float):
    th = torch.deg2rad(torch.tensor(ANGLES_DEG, dtype=torch.float64))
    model = ArrayModel(ula(M).to(torch.float64))
    A = model.steering(th)
    g = make_generator(2024, "close_sources", float(snr_db))
    R = sample_covariance(snapshots(A.expand(TRIALS, M, K), g, num_snapshots=N, snr_db=snr_db).X)
    P = 10 ** (snr_db / 10) * torch.eye(K, dtype=torch.complex128)
    root_crb = math.sqrt(float(crb_doa_stochastic(model, th, P, 1.0, N).diagonal().mean()))
    return model, th, R, root_crb


def _score(estimates, th, root_crb):
    """(RMSE/√CRB over found sources, per-trial failure (TRIALS,) bool)."""
    err = assignment_errors(estimates, th[:, None])[..., 0]  # (TRIALS, K)
    missing = torch.isnan(err).any(-1)
    fail = missing | (err.nan_to_num(nan=math.inf).abs().amax(-1) > math.radians(FAIL_DEG))
    ok = ~missing
    return float(err[ok].pow(2).mean().sqrt()) / root_crb, fail


@pytest.mark.parametrize("snr_db", [-10.0, -5.0, 0.0, 5.0, 10.0, 15.0, 20.0])
def test_dml_close_sources_efficient_and_fails_no_more_than_music(snr_db):
    model, th, R, root_crb = _case(snr_db)
    ratio, fail = _score(DML(model, K)(R).estimates, th, root_crb)
    _, fail_music = _score(MUSIC(model, K)(R).estimates, th, root_crb)
    assert int(fail.sum()) <= int(fail_music.sum()), (snr_db, float(fail.double().mean()),
                                                       float(fail_music.double().mean()))
    if snr_db >= 10.0:
        assert ratio <= 1.1, (snr_db, ratio)


def _refined_covariance_estimators():
    return sorted(name for name, cls in ESTIMATORS.items()
                  if cls.input_kind == "covariance" and cls.parameters == ("azimuth",)
                  and "grid_only" in inspect.signature(cls.__init__).parameters
                  and "grid" in inspect.signature(cls.__init__).parameters)


def test_the_registry_has_refined_estimators():
    assert {"bartlett", "mvdr", "music", "dml"} <= set(_refined_covariance_estimators())


@pytest.mark.parametrize("name", _refined_covariance_estimators())
def test_refinement_on_close_sources(name):
    model, th, R, root_crb = _case(20.0)
    coarse = SearchGrid.degrees(-90.0, 90.0, 0.5)
    cls = ESTIMATORS[name]
    ratio, fail = _score(cls(model, K, grid=coarse)(R).estimates, th, root_crb)
    ratio_grid, fail_grid = _score(cls(model, K, grid=coarse, grid_only=True)(R).estimates, th, root_crb)
    assert int(fail.sum()) <= int(fail_grid.sum()), (name, float(fail.double().mean()), float(fail_grid.double().mean()))
    assert ratio <= ratio_grid * 1.02, (name, ratio, ratio_grid)  # 2 %: below the RMSE's sampling error
    if name in EFFICIENT:
        assert ratio <= EFFICIENT[name], (name, ratio)
        assert ratio_grid > 1.3, (name, ratio_grid)  # the coarse grid alone is far from the bound


# ---------------------------------------------------------------------------------------
# refined estimators on single-snapshot OFDM CSI: two paths closer than a beamwidth
# ---------------------------------------------------------------------------------------
CSI_M, CSI_N, CSI_DF, CSI_TRIALS = 8, 16, 250e3, 200
#: two paths 0.15 rad apart (the half-power beamwidth of 8 elements is ≈ 0.22 rad), delays
#: 1.5 resolution cells apart, both off the grids; unequal gains
CSI_TRUTH = torch.tensor([[0.0123, 1.03e-6], [0.1623, 1.03e-6 + 1.5 / (CSI_N * CSI_DF)]], dtype=torch.float64)
#: smoothed single-snapshot MUSIC/MVDR are not efficient: measured RMSE/√CRB 1.07–1.32 at 10 and
#: 20 dB on this case (the sub-band smoothing halves the aperture in delay)
CSI_RATIO = 1.5


def _csi_refined_estimators():
    return sorted(name for name, cls in ESTIMATORS.items()
                  if cls.input_kind == "csi" and cls.parameters == ("azimuth", "delay")
                  and "grid_only" in inspect.signature(cls.__init__).parameters)


def test_the_registry_has_refined_csi_estimators():
    assert {"music_angle_delay", "mvdr_angle_delay"} <= set(_csi_refined_estimators())


@pytest.mark.parametrize("snr_db", [10.0, 20.0])
@pytest.mark.parametrize("name", _csi_refined_estimators())
def test_refined_csi_estimators_on_close_paths(name, snr_db):
    from isackit.bounds import crb_unknown_gains
    from isackit.estimators import delay_dictionary
    from isackit.estimators.grids import default_delay_grid

    arr = ula(CSI_M)

    def response(e):  # η = (θ_1, τ_1, θ_2, τ_2) → atoms vec(b(τ) a(θ)^T) (N·M, K)
        A, B = arr.steering(e[..., 0::2]), delay_dictionary(e[..., 1::2], CSI_DF, CSI_N)
        return (B[..., :, None, :] * A[..., None, :, :]).flatten(-3, -2)

    gains = torch.tensor([1.0, 0.8 * complex(math.cos(1.3), math.sin(1.3))], dtype=torch.complex128)
    noise_var = 10 ** (-snr_db / 10)
    sd = crb_unknown_gains(response, CSI_TRUTH.reshape(-1), gains, noise_var).diagonal().sqrt().reshape(2, 2)
    g = make_generator(2024, "close_paths", float(snr_db))
    H = (response(CSI_TRUTH.reshape(-1)) @ gains).reshape(CSI_N, CSI_M)
    H = H + math.sqrt(noise_var) * torch.randn(CSI_TRIALS, CSI_N, CSI_M, generator=g, dtype=torch.complex128)
    agrid, dgrid = SearchGrid.degrees(-60.0, 60.0, 2.0), default_delay_grid(CSI_N, CSI_DF, 2)
    out = {}
    for grid_only in (False, True):
        est = ESTIMATORS[name](arr, 2, azimuth_grid=agrid, delay_grid=dgrid, subcarrier_spacing=CSI_DF,
                               grid_only=grid_only)
        err = est(H).estimates - CSI_TRUTH  # sorted by azimuth, as the truth is
        fail = torch.isnan(err).any(-1).any(-1) | (err[..., 0].abs() > math.radians(FAIL_DEG)).any(-1)
        out[grid_only] = (err[~fail].square().mean(0).sqrt() / sd, fail)
    (ratio, fail), (ratio_grid, fail_grid) = out[False], out[True]
    assert int(fail.sum()) <= int(fail_grid.sum()) and int(fail.sum()) == 0, name
    assert bool((ratio <= CSI_RATIO).all()), (name, ratio)
    assert bool((ratio < ratio_grid).all()), (name, ratio, ratio_grid)  # the refinement beats the grid
