r"""The estimator contract: one result type, thin estimator classes, one registry.

Algorithms live in pure batched functions (``music_spectrum``, ``root_music``, ``omp`` …).
An :class:`Estimator` stores its hyper-parameters unchanged as keyword arguments, calls
those functions in ``__call__`` and returns an :class:`EstimationResult`; it never keeps
state between calls.  Every estimator class is registered with :func:`register` and the
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
    """Base class of the thin estimator wrappers.

    Class attributes describe the input so that generic code (the contract test, the
    experiment runner) can drive any estimator:

    * ``input_kind``: ``"covariance"`` (``(..., M, M)``), ``"snapshots"`` (``(..., M, N)``) or
      ``"csi"`` (``(..., N, M)`` / ``(..., N, M, M_t)`` channel estimates);
    * ``parameters``: the names of the estimated parameters per source.
    """

    name: ClassVar[str] = "estimator"
    input_kind: ClassVar[str] = "covariance"
    parameters: ClassVar[tuple[str, ...]] = ("azimuth",)

    def __call__(self, data: torch.Tensor) -> EstimationResult:  # pragma: no cover - abstract
        raise NotImplementedError

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
