"""Classical estimators (layer 4): spectral, subspace, likelihood and sparse methods.

Pure batched functions plus thin registered classes; see :mod:`isackit.estimators.base`.
"""

from .base import ESTIMATORS, EstimationResult, Estimator, get_estimator, register

__all__ = ["ESTIMATORS", "EstimationResult", "Estimator", "get_estimator", "register"]
