r"""The estimator contract: one result type, thin estimator classes, one registry.

Algorithms live in pure batched functions (``music_spectrum``, ``root_music``, ``omp`` …).
An :class:`Estimator` takes the array it assumes (``array``) and the number of sources
(``num_sources``), stores every hyper-parameter unchanged as a keyword argument, calls those
functions in its one hook :meth:`Estimator.estimate` and returns an :class:`EstimationResult`;
it never keeps state between calls.  Shared internals of the families (input checks,
degenerate-input masks, result assembly) live in :mod:`isackit.estimators.common`.  Every estimator class is registered with :func:`register` and the
contract test (``tests/test_estimator_contract.py``) runs over the whole registry, building
each one through :meth:`Estimator.example`.

Shapes: estimates are ``(..., K, P)`` with P the number of parameters per source, named by
``EstimationResult.parameters`` (e.g. ``("azimuth",)`` or ``("azimuth", "delay")``); a source
that was not found is NaN, and ``count`` ``(...)`` says how many were found.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from .._checks import check_ndim_at_least
from .._dtypes import check_supported_dtype

__all__ = ["EstimationResult", "Estimator", "register", "ESTIMATORS", "get_estimator"]


@dataclass(frozen=True)
class EstimationResult:
    """What every estimator returns.

    Attributes:
        estimates: ``(..., K, P)`` real; NaN rows for sources not found.
        parameters: names of the P columns, e.g. ``("azimuth",)``, ``("azimuth", "delay")``.
        count: ``(...)`` int64, number of sources found (non-NaN rows).
        valid: ``(...)`` bool, False where the input was degenerate (rank-deficient, NaN …)
            and the estimates must not be trusted (they are NaN there).
        spectrum: optional ``(..., G)`` / ``(..., G1, G2)`` pseudo-spectrum on ``grid``.
        grid: optional tuple of 1-D grids the spectrum is evaluated on.
        extras: optional named tensors (complex gains, residual norms, …).
    """

    estimates: torch.Tensor
    parameters: tuple[str, ...]
    count: torch.Tensor
    valid: torch.Tensor
    spectrum: torch.Tensor | None = None
    grid: tuple[torch.Tensor, ...] | None = None
    extras: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def batch_shape(self) -> torch.Size:
        return self.estimates.shape[:-2]

    def parameter(self, name: str) -> torch.Tensor:
        """Column ``name`` of the estimates, ``(..., K)``."""
        if name not in self.parameters:
            raise ValueError(f"unknown parameter {name!r}; this result has {self.parameters}")
        return self.estimates[..., self.parameters.index(name)]


ESTIMATORS: dict[str, type[Estimator]] = {}


def register(name: str):
    """Class decorator: add an :class:`Estimator` subclass to the registry under ``name``."""

    def deco(cls):
        if name in ESTIMATORS and ESTIMATORS[name] is not cls:
            raise ValueError(f"an estimator named {name!r} is already registered")
        cls.name = name
        ESTIMATORS[name] = cls
        return cls

    return deco


def get_estimator(name: str) -> type[Estimator]:
    """Look up a registered estimator class by name (clear error for unknown names)."""
    if name not in ESTIMATORS:
        raise ValueError(f"unknown estimator {name!r}; registered: {', '.join(sorted(ESTIMATORS))}")
    return ESTIMATORS[name]


class Estimator:
    """Base class of the thin estimator wrappers: one constructor vocabulary, one hook.

    Constructor vocabulary (every registered estimator): ``array`` — the
    :class:`~isackit.geometry.ArrayGeometry` or :class:`~isackit.impairments.ArrayModel` the
    receiver assumes (``rx_array``/``tx_array`` for bistatic CSI), and ``num_sources`` — K, the
    number of sources/paths/targets estimated; further hyper-parameters are keywords, stored
    unchanged (scikit-learn style, :meth:`get_params`).

    The hook: subclasses implement :meth:`estimate` (``data → EstimationResult``).
    :meth:`__call__` checks what every estimator needs first — a complex64/complex128
    tensor with at least ``input_ndim`` dims — and answers an empty batch with an empty
    result, so :meth:`estimate` only sees a non-empty batch of the right dtype.

    Class attributes describe the input so that generic code (the contract test, the
    experiment runner) can drive any estimator:

    * ``input_kind``: ``"covariance"`` (``(..., M, M)``), ``"snapshots"`` (``(..., M, N)``) or
      ``"csi"`` (``(..., N, M)`` / ``(..., N, M, M_t)`` channel estimates);
    * ``input_ndim``: the number of trailing non-batch dims of the input;
    * ``parameters``: the names of the estimated parameters per source.
    """

    name: ClassVar[str] = "estimator"
    input_kind: ClassVar[str] = "covariance"
    input_ndim: ClassVar[int] = 2
    parameters: ClassVar[tuple[str, ...]] = ("azimuth",)

    def __call__(self, data: torch.Tensor) -> EstimationResult:
        """Check ``data`` (type, dtype, dims), then :meth:`estimate` it."""
        what = {"covariance": "(..., M, M)", "snapshots": "(..., M, N)"}.get(
            self.input_kind, "(..., N, M)" if self.input_ndim == 2 else "(..., N, M_r, M_t)")
        check_ndim_at_least(data, self.input_ndim, "data", what)
        check_supported_dtype(data, "data", complex_only=True)
        if data.numel() == 0 and data.shape[data.ndim - self.input_ndim:].numel() > 0:
            return self.empty_result(data)
        return self.estimate(data)

    def estimate(self, data: torch.Tensor) -> EstimationResult:  # pragma: no cover - abstract
        """The family hook: estimates of a non-empty batch (see :meth:`__call__`)."""
        raise NotImplementedError(f"{type(self).__name__} must implement estimate()")

    def empty_result(self, data: torch.Tensor) -> EstimationResult:
        """The result of an empty batch ``(0, ..., *dims)``: estimates ``(*batch, K, P)``."""
        batch = data.shape[:data.ndim - self.input_ndim]
        K, P = int(self.num_sources), len(self.parameters)
        rdt = data.real.dtype
        return EstimationResult(
            estimates=torch.empty(*batch, K, P, dtype=rdt, device=data.device), parameters=self.parameters,
            count=torch.empty(batch, dtype=torch.int64, device=data.device),
            valid=torch.empty(batch, dtype=torch.bool, device=data.device))

    @classmethod
    def example(cls, dtype: torch.dtype = torch.complex128, device: str | torch.device = "cpu",
                generator: torch.Generator | None = None) -> tuple[Estimator, torch.Tensor, torch.Tensor]:
        """A small, well-posed example: ``(estimator, input, true_parameters (K, P))``.

        Used by the contract test; the input is noise-free or high-SNR so that the
        estimate is close to the truth.
        """
        raise NotImplementedError(f"{cls.__name__} must implement example()")

    def get_params(self) -> dict[str, Any]:
        """The constructor's keyword arguments, as stored (scikit-learn style)."""
        return dict(self.__dict__)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items() if not isinstance(v, torch.Tensor))
        return f"{type(self).__name__}({args})"
