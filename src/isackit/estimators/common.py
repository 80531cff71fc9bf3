r"""Shared internals of the estimator families: input checks, covariance helpers, results.

Every estimator module (spectral, subspace, likelihood, sparse, joint, and the estimators
that systems add) builds on these instead of importing another family's private helpers:

* validation: :func:`check_covariance` (complex ``(..., M, M)``), :func:`check_data`
  (complex ``(..., *dims)``), :func:`check_num_sources`;
* degenerate input: non-finite values (NaN, ±inf) are an error (a one-line ``ValueError``:
  they signal a bug upstream, never data); :func:`sanitize_covariance` /
  :func:`sanitize_data` replace all-zero (or rank-deficient) batch elements so that the batch
  runs through, and return a ``valid`` mask (the result is NaN there, never a silently wrong
  number);
* linear algebra: :func:`hermitian`, :func:`loaded_covariance` (R + δI, δ = loading·tr R/M),
  :func:`quadratic_form` (Re a_g^H Q a_g), :func:`signal_subspace` (with the rank test of
  :func:`isackit._dtypes.is_rank_deficient`);
* results: :func:`sort_sources`, :func:`make_result` (NaN rows for sources not found,
  ``count``, ``valid``, back to the caller's batch shape), :func:`flatten_covariance`;
* batching: :func:`batch_chunks` (slices that bound the memory of a grid search).

Shapes follow ``shared/design/conventions.md``: leading dims are batch dims; M elements,
K sources, P parameters per source.
"""

from __future__ import annotations

import math

import torch

from .._checks import check_ndim_at_least, check_positive_int
from .._dtypes import check_supported_dtype, is_rank_deficient
from .base import EstimationResult

__all__ = [
    "batch_chunks",
    "check_covariance",
    "check_data",
    "check_loading",
    "check_num_sources",
    "example_covariance",
    "flatten_covariance",
    "hermitian",
    "loaded_covariance",
    "make_result",
    "quadratic_form",
    "sanitize_covariance",
    "sanitize_data",
    "signal_subspace",
    "sort_sources",
    "ula_spacing_of",
]


# ---------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------
def check_covariance(R: torch.Tensor, num_elements: int | None = None, name: str = "R", *,
                     finite: bool = False) -> torch.Tensor:
    """Check that ``R`` is a complex ``(..., M, M)`` tensor (M = ``num_elements`` if given).

    With ``finite`` every entry must also be finite (functions that cannot flag a degenerate
    batch element per element, e.g. the subspace estimators' preprocessing).
    """
    check_ndim_at_least(R, 2, name, "(..., M, M)")
    if R.shape[-1] != R.shape[-2]:
        raise ValueError(f"{name} must be square (..., M, M), got shape {tuple(R.shape)}")
    if num_elements is not None and R.shape[-1] != num_elements:
        raise ValueError(f"{name} must be (..., {num_elements}, {num_elements}) for this array, "
                         f"got shape {tuple(R.shape)}")
    check_supported_dtype(R, name, complex_only=True)
    if finite and not bool(torch.isfinite(torch.view_as_real(R.resolve_conj())).all()):
        raise ValueError(f"{name} must be finite, but it contains NaN or Inf values")
    return R


def check_data(X: torch.Tensor, dims, name: str, what: str, *, finite: bool = False) -> torch.Tensor:
    """Check that ``X`` is complex with trailing dims ``dims`` (``None`` = any size); ``what``
    names the expected shape, e.g. ``"(..., N, M=8)"``; with ``finite`` also that every entry
    is finite."""
    check_ndim_at_least(X, len(dims), name, what)
    tail = X.shape[X.ndim - len(dims):]
    for got, want in zip(tail, dims, strict=True):
        if want is not None and got != want:
            raise ValueError(f"{name} must have shape {what}, got shape {tuple(X.shape)}")
    check_supported_dtype(X, name, complex_only=True)
    if finite and not bool(torch.isfinite(torch.view_as_real(X.resolve_conj())).all()):
        raise ValueError(f"{name} must be finite, but it contains NaN or Inf values")
    return X


def ula_spacing_of(array, what: str) -> float:
    """Spacing d (wavelengths) of the ideal ULA ``array`` assumes (an ``ArrayGeometry``, or an
    ``ArrayModel`` without impairments); anything else raises a one-line ``ValueError`` naming
    ``what`` needs it (the subspace estimators rely on the exact shift invariance of a ULA)."""
    from ..geometry.arrays import ArrayGeometry, ula_spacing

    geometry = array
    if not isinstance(array, ArrayGeometry):
        geometry = getattr(array, "geometry", None)
        if not isinstance(geometry, ArrayGeometry):
            raise TypeError(f"array must be an ArrayGeometry or an ArrayModel, got {type(array).__name__}")
        if len(getattr(array, "impairments", ())):
            raise ValueError(f"{what} needs an ideal uniform linear array; the assumed array model has "
                             f"{len(array.impairments)} impairment(s) (use MUSIC or DML for impaired models)")
    return ula_spacing(geometry)


def check_loading(loading) -> float:
    """Relative diagonal loading: a finite number ≥ 0 (NaN and ±inf are one-line errors)."""
    if isinstance(loading, bool) or not isinstance(loading, int | float) or not math.isfinite(loading) or loading < 0:
        raise ValueError(f"loading must be a finite number >= 0, got {loading!r}")
    return float(loading)


def check_num_sources(num_sources, max_sources: int, what: str) -> int:
    """``num_sources`` as an int in [1, ``max_sources``] (one-line error naming ``what``)."""
    K = check_positive_int(num_sources, "num_sources")
    if K > max_sources:
        raise ValueError(f"num_sources must be at most {max_sources} for {what}, got {K}")
    return K


# ---------------------------------------------------------------------------------------
# degenerate batch elements
# ---------------------------------------------------------------------------------------
def sanitize_covariance(R: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(R', valid)``: batch elements of ``R (..., M, M)`` that are not finite or have zero
    power are replaced by I (so that the batch runs through); ``valid (...)`` is False there."""
    finite = torch.isfinite(torch.view_as_real(R.resolve_conj())).reshape(*R.shape[:-2], -1).all(-1)
    R0 = torch.where(finite[..., None, None], R, torch.zeros_like(R))
    power = torch.diagonal(R0, dim1=-2, dim2=-1).real.sum(-1)
    valid = finite & (power > 0)
    eye = torch.eye(R.shape[-1], dtype=R.dtype, device=R.device)
    return torch.where(valid[..., None, None], R0, eye), valid


def sanitize_data(X: torch.Tensor, ndim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(X', valid)`` for data ``X (..., S_1, …, S_ndim)``: batch elements that are not finite
    are zeroed; ``valid (...)`` is False for them and for all-zero elements."""
    batch = X.shape[:X.ndim - ndim]
    flat = torch.view_as_real(X.resolve_conj()).reshape(*batch, -1)
    finite = torch.isfinite(flat).all(-1)
    X0 = torch.where(finite.reshape(*batch, *([1] * ndim)), X, torch.zeros_like(X))
    power = (X0.real.square() + X0.imag.square()).reshape(*batch, -1).sum(-1)
    return X0, finite & (power > 0)


# ---------------------------------------------------------------------------------------
# linear algebra
# ---------------------------------------------------------------------------------------
def hermitian(R: torch.Tensor) -> torch.Tensor:
    """(R + R^H)/2: the Hermitian part (removes the rounding asymmetry of a sample covariance)."""
    return 0.5 * (R + R.mH)


def loaded_covariance(R: torch.Tensor, loading: float) -> torch.Tensor:
    r"""Hermitian part of R plus δI with δ = ``loading``·tr(R)/M (relative diagonal loading ≥ 0)."""
    check_loading(loading)
    M = R.shape[-1]
    delta = loading * torch.diagonal(R, dim1=-2, dim2=-1).real.sum(-1) / M
    return hermitian(R) + delta[..., None, None] * torch.eye(M, dtype=R.dtype, device=R.device)


def quadratic_form(A: torch.Tensor, Q: torch.Tensor) -> torch.Tensor:
    """Re(a_g^H Q a_g) for a dictionary ``A (..., M, G)`` and ``Q (..., M, M)`` → ``(..., G)``."""
    return (A.conj() * (Q @ A)).real.sum(-2)


def signal_subspace(R: torch.Tensor, num_sources: int, *, return_rank_ok: bool = False):
    r"""E_s ``(..., M, K)``: the eigenvectors of the K largest eigenvalues of Hermitian ``R``.

    ``torch.linalg.eigh`` reads one triangle only, so R is taken as Hermitian (real
    symmetric for a real R).  With ``return_rank_ok`` also returns ``ok (...)``: True where
    R has numerical rank ≥ K (:func:`~isackit._dtypes.is_rank_deficient`: the K-th largest
    eigenvalue is above 10·M·ε·λ_max), so that E_s is well defined.
    """
    M = R.shape[-1]
    K = check_num_sources(num_sources, M, f"a signal subspace of an {M} x {M} matrix")
    w, V = torch.linalg.eigh(R)
    Es = V[..., M - K:]
    if not return_rank_ok:
        return Es
    return Es, ~is_rank_deficient(w, K)


# ---------------------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------------------
def sort_sources(estimates: torch.Tensor) -> torch.Tensor:
    """Sort the K rows of ``(..., K, P)`` estimates by their first parameter, NaN rows last."""
    key = torch.nan_to_num(estimates[..., 0], nan=torch.inf)
    order = key.argsort(dim=-1, stable=True)
    return torch.gather(estimates, -2, order[..., None].expand_as(estimates))


def flatten_covariance(R: torch.Tensor, num_elements: int) -> tuple[torch.Size, torch.Tensor, torch.Tensor]:
    """``(batch, R_flat (B, M, M) Hermitian and sanitised, valid (B,))`` for ``R (..., M, M)``
    (finite, else a ``ValueError``; zero-power elements are invalid)."""
    check_covariance(R, num_elements, finite=True)
    batch = R.shape[:-2]
    Rf, valid = sanitize_covariance(R.reshape(-1, *R.shape[-2:]))
    return batch, hermitian(Rf), valid


def make_result(estimates: torch.Tensor, found: torch.Tensor, valid: torch.Tensor, batch: torch.Size,
                parameters: tuple[str, ...], *, spectrum: torch.Tensor | None = None,
                grids: tuple[torch.Tensor, ...] | None = None,
                extras: dict[str, torch.Tensor] | None = None) -> EstimationResult:
    """The :class:`EstimationResult` of flattened estimates ``(B, K, P)``.

    Rows not ``found (B, K)`` and every row of an invalid element (``valid (B,)``) become NaN;
    rows are sorted by the first parameter (NaN last); everything is reshaped to ``batch``.
    ``spectrum (B, …)`` is kept (with ``grids``) only when given.
    """
    K, P = estimates.shape[-2:]
    est = torch.where(valid[:, None, None] & found[..., None], estimates, torch.full_like(estimates, torch.nan))
    est = sort_sources(est)
    count = (~torch.isnan(est).any(-1)).sum(-1)
    return EstimationResult(
        estimates=est.reshape(*batch, K, P), parameters=tuple(parameters), count=count.reshape(batch),
        valid=valid.reshape(batch),
        spectrum=None if spectrum is None else spectrum.reshape(*batch, *spectrum.shape[1:]),
        grid=grids if spectrum is not None else None, extras=extras or {})


def batch_chunks(n: int, size: int):
    """Slices ``[0, size), [size, 2·size), …`` covering ``range(n)`` (grid searches in chunks)."""
    size = max(1, int(size))
    for s in range(0, n, size):
        yield slice(s, min(n, s + size))


def example_covariance(model, azimuth, elevation=None, *, dtype, device, generator, noise=1e-3):
    """R = A diag(p) A^H + σ² I with random powers p in [1, 2] (from ``generator``): the
    well-posed input of the estimators' ``example()``."""
    az = torch.as_tensor(azimuth, dtype=torch.float64)
    el = None if elevation is None else torch.as_tensor(elevation, dtype=torch.float64)
    A = model.steering(az, el).to(dtype=dtype)
    p = 1.0 + torch.rand(az.numel(), generator=generator, dtype=torch.float64)
    R = (A * p.to(dtype)) @ A.mH + noise * torch.eye(A.shape[0], dtype=dtype)
    return R.to(device)
