"""One contract test suite over every registered estimator (``isackit.estimators.ESTIMATORS``).

Each estimator is built through its ``example()``; the suite checks the constructor
vocabulary (``array``/``rx_array``+``tx_array`` and ``num_sources``), the result type, output
shapes, any number of batch dims (including an empty batch), batch == one-at-a-time, dtype and
device following the input, determinism, recovery of the example's truth, and the handling of
bad input: a one-line ValueError/TypeError (wrong shape, half precision), or for degenerate
values (NaN, inf, all-zero) ``valid = False`` with NaN estimates for that batch element —
never a crash or a silently wrong number.
"""

import inspect
import math
import warnings

import pytest
import torch
from scipy.optimize import linear_sum_assignment

import isackit.estimators as est_pkg
from isackit._dtypes import eps

NAMES = sorted(est_pkg.ESTIMATORS)
DTYPES = [torch.complex64, torch.complex128]
#: tolerance on the example's truth per parameter (radians, seconds, Hz …)
TRUTH_TOL = {"azimuth": 1e-3, "elevation": 1e-3, "aoa": 1e-3, "aod": 1e-3, "delay": 1e-10, "doppler": 1e-3}
#: batch vs one-at-a-time agreement.  Batched and single linear algebra round differently
#: (kernels differ by CPU and thread count); the refined estimators maximise a smooth
#: spectrum, whose maximiser is determined only to O(sqrt(eps)) relative (the spectrum is flat
#: to second order there), so that is the honest tolerance, in the dtype of the input.
BATCH_TOL = {dt: math.sqrt(eps(dt)) for dt in DTYPES}


def _example(name, dtype, device, seed=0):
    cls = est_pkg.get_estimator(name)
    return cls.example(dtype=dtype, device=device, generator=torch.Generator().manual_seed(seed))


def _real(dtype):
    return torch.float64 if dtype == torch.complex128 else torch.float32


def _assert_same(a, b, tol):
    assert a.shape == b.shape
    assert torch.equal(torch.isnan(a), torch.isnan(b)), (a, b)
    fin = ~torch.isnan(a)
    assert torch.allclose(a[fin], b[fin], rtol=tol, atol=tol), (a, b)


def test_registry_is_populated():
    for required in ("bartlett", "mvdr", "music", "music2d", "dml", "omp", "root_music", "esprit_ls"):
        assert required in est_pkg.ESTIMATORS


@pytest.mark.parametrize("name", NAMES)
def test_constructor_vocabulary(name):
    """``array`` (or ``rx_array`` and ``tx_array``) and ``num_sources``; no synonyms."""
    cls = est_pkg.get_estimator(name)
    params = inspect.signature(cls.__init__).parameters
    assert "num_sources" in params, name
    assert "array" in params or {"rx_array", "tx_array"} <= set(params), name
    for synonym in ("num_targets", "num_paths", "spacing", "model", "array_model"):
        assert synonym not in params, (name, synonym)
    assert issubclass(cls, est_pkg.Estimator) and cls.estimate is not est_pkg.Estimator.estimate, name


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_contract(name, dtype, device):
    est, x, truth = _example(name, dtype, device)
    x = x.to(device)
    assert isinstance(est, est_pkg.Estimator)
    assert est.input_kind in ("covariance", "snapshots", "csi")
    res = est(x)
    assert isinstance(res, est_pkg.EstimationResult)
    K, P = truth.shape
    # shapes, dtype, device
    assert res.estimates.shape == (K, P)
    assert res.parameters == tuple(type(est).parameters) and len(res.parameters) == P
    assert res.estimates.dtype == _real(dtype) and res.estimates.device == x.device
    assert res.count.shape == () and res.count.dtype == torch.int64
    assert res.valid.shape == () and res.valid.dtype == torch.bool
    # the example is well posed: valid, all sources found, no NaN
    assert bool(res.valid) and int(res.count) == K
    assert torch.isfinite(res.estimates).all()
    # truth recovered (after optimal assignment)
    tol = torch.tensor([TRUTH_TOL.get(p, 1e-3) for p in res.parameters], dtype=torch.float64)
    e = res.estimates.detach().double().cpu()
    cost = ((e[:, None, :] - truth[None, :, :].double()).abs() / tol).amax(-1)
    rows, cols = linear_sum_assignment(cost.numpy())
    assert float(cost[rows, cols].max()) <= 1.0, (name, e, truth)
    # determinism
    _assert_same(est(x).estimates, res.estimates, 0.0)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_dims_and_batch_equals_single(name, dtype, device):
    est, _, truth = _example(name, dtype, device)
    xs = [_example(name, dtype, device, seed=s)[1].to(device) for s in range(6)]
    singles = [est(x).estimates for x in xs]
    tol = BATCH_TOL[dtype]
    r3 = est(torch.stack(xs[:3]))
    assert r3.estimates.shape == (3, *truth.shape) and r3.count.shape == (3,) and r3.valid.shape == (3,)
    for i in range(3):
        _assert_same(r3.estimates[i], singles[i], tol)
    x23 = torch.stack(xs).reshape(2, 3, *xs[0].shape)
    r23 = est(x23)
    assert r23.estimates.shape == (2, 3, *truth.shape) and r23.count.shape == (2, 3)
    for i in range(6):
        _assert_same(r23.estimates.reshape(6, *truth.shape)[i], singles[i], tol)


def _degenerate_inputs(x):
    nan = x.clone()
    nan.view(-1)[0] = complex(float("nan"), 0.0)
    inf = x.clone()
    inf.view(-1)[-1] = complex(float("inf"), 0.0)
    return {"nan": nan, "inf": inf, "zero": torch.zeros_like(x)}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kind", ["nan", "inf", "zero"])
def test_degenerate_input_is_flagged_or_rejected(name, kind, device):
    est, x, _ = _example(name, torch.complex128, device)
    x = x.to(device)
    bad = _degenerate_inputs(x)[kind]
    try:
        res = est(torch.stack([x, bad]))
    except ValueError as err:  # a clear error is acceptable ...
        assert str(err)
        return
    # ... otherwise the bad element is flagged and NaN, the good one unaffected
    assert not bool(res.valid[1]) and torch.isnan(res.estimates[1]).all() and int(res.count[1]) == 0
    assert bool(res.valid[0])
    _assert_same(res.estimates[0], est(x).estimates, BATCH_TOL[torch.complex128])


@pytest.mark.parametrize("name", NAMES)
def test_empty_batch_gives_empty_result(name, device):
    est, x, truth = _example(name, torch.complex128, device)
    x = x.to(device)
    for batch in ((0,), (2, 0)):
        res = est(x.expand(*batch, *x.shape))
        assert res.estimates.shape == (*batch, *truth.shape) and res.estimates.dtype == torch.float64
        assert res.count.shape == batch and res.valid.shape == batch


@pytest.mark.parametrize("name", NAMES)
def test_half_precision_and_real_input_rejected(name, device):
    est, x, _ = _example(name, torch.complex128, device)
    x = x.to(device)
    with warnings.catch_warnings():  # "ComplexHalf support is experimental"
        warnings.simplefilter("ignore", UserWarning)
        chalf = x.to(torch.complex32)
    for bad in (x.real.half(), x.real.double(), chalf):
        with pytest.raises(TypeError) as info:
            est(bad)
        msg = str(info.value)
        assert "\n" not in msg and "complex64" in msg, msg


@pytest.mark.parametrize("name", NAMES)
def test_wrong_shape_raises_clearly(name, device):
    est, x, _ = _example(name, torch.complex128, device)
    with pytest.raises((ValueError, TypeError)):
        est(x.reshape(-1))  # too few dims for any input kind
    if est.input_kind == "covariance":
        with pytest.raises((ValueError, TypeError)):
            est(x[..., :-1, :])  # not square


@pytest.mark.parametrize("name", NAMES)
def test_hyperparameters_stored_unchanged(name):
    est, _, _ = _example(name, torch.complex128, "cpu")
    params = est.get_params()
    clone = type(est)(**params)
    assert clone.get_params().keys() == params.keys()
    for k, v in params.items():
        assert clone.get_params()[k] is v
