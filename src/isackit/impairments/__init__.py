"""Composable, differentiable, learnable hardware impairments (layer 2).

Response maps (A ↦ …): :class:`GainPhaseError`, :class:`MutualCoupling`, the angle- and
subcarrier-dependent :class:`SmoothPhaseError` / :class:`TabulatedPhaseError`; geometry
perturbations: :class:`ElementDisplacement`; frequency-domain: :class:`TimingOffset`.
Random gain-phase laws with closed-form moments live in :mod:`.distributions`; named presets
in :mod:`.presets`.
"""

from .angle_phase import AngleDependentPhaseError, SmoothPhaseError, TabulatedPhaseError, hermite_weights
from .base import ArrayModel, Impairment
from .coupling import SEED004_COUPLING, MutualCoupling, seed004_coefficients, toeplitz_coupling_matrix
from .displacement import ElementDisplacement
from .distributions import (
    ComplexGaussianErrors,
    ElementErrorDistribution,
    ErrorMoments,
    GainDistribution,
    GainPhaseDistribution,
    GaussianPhase,
    LogNormalGain,
    PhaseDistribution,
    RicianGain,
    UniformGain,
    UniformPhase,
    VonMisesPhase,
)
from .gain_phase import GainPhaseError
from .phase_curves import phase_error_curves, tabulate_phase_error, unwrap_phase
from .presets import IDEAL, PRESETS, check_impairment_name, list_presets, make_chain, make_impairment
from .timing import TimingOffset

__all__ = [
    "ArrayModel",
    "Impairment",
    "GainPhaseError",
    "ElementDisplacement",
    "MutualCoupling",
    "toeplitz_coupling_matrix",
    "seed004_coefficients",
    "SEED004_COUPLING",
    "AngleDependentPhaseError",
    "SmoothPhaseError",
    "TabulatedPhaseError",
    "hermite_weights",
    "phase_error_curves",
    "tabulate_phase_error",
    "unwrap_phase",
    "TimingOffset",
    "GainDistribution",
    "PhaseDistribution",
    "GainPhaseDistribution",
    "ElementErrorDistribution",
    "ComplexGaussianErrors",
    "ErrorMoments",
    "RicianGain",
    "LogNormalGain",
    "UniformGain",
    "VonMisesPhase",
    "GaussianPhase",
    "UniformPhase",
    "IDEAL",
    "PRESETS",
    "check_impairment_name",
    "list_presets",
    "make_chain",
    "make_impairment",
]
