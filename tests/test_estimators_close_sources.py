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
