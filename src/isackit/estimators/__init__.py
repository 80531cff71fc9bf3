"""Classical estimators (layer 4): spectral, subspace, likelihood and sparse methods.

Pure batched functions plus thin registered classes; see :mod:`isackit.estimators.base`.
Importing this package registers every estimator in :data:`ESTIMATORS`.
"""

from .base import ESTIMATORS, EstimationResult, Estimator, get_estimator, register
from .grids import SearchGrid, delay_dictionary, kron_dictionary
from .likelihood import (
    DML,
    alternating_projection,
    dml_cost,
    dml_doa,
    dml_gradient_hessian,
    dml_refine,
    projector,
)
from .peaks import find_peaks, local_maxima, peaks_to_coordinates, refine_parabolic, soft_argmax
from .sparse import OMP, OMPAngleDelay, OMPResult, omp, omp_angle_delay
from .spectral import (
    MUSIC,
    MUSIC2D,
    MVDR,
    Bartlett,
    BartlettAngleDelay,
    QuadraticFormDictionary,
    angle_angle_delay_spectrum,
    angle_delay_spectrum,
    bartlett_doa,
    bartlett_spectrum,
    music2d_doa,
    music_doa,
    music_refine,
    music_spectrum,
    mvdr_doa,
    mvdr_spectrum,
    noise_projector,
    signal_subspace,
)

__all__ = [
    "ESTIMATORS", "EstimationResult", "Estimator", "get_estimator", "register",
    # grids and peaks
    "SearchGrid", "delay_dictionary", "kron_dictionary",
    "find_peaks", "local_maxima", "peaks_to_coordinates", "refine_parabolic", "soft_argmax",
    # spectral
    "bartlett_spectrum", "mvdr_spectrum", "music_spectrum", "signal_subspace", "noise_projector",
    "QuadraticFormDictionary", "music_refine", "bartlett_doa", "mvdr_doa", "music_doa", "music2d_doa",
    "angle_delay_spectrum", "angle_angle_delay_spectrum", "Bartlett", "MVDR", "MUSIC", "MUSIC2D",
    "BartlettAngleDelay",
    # likelihood
    "projector", "dml_cost", "dml_gradient_hessian", "dml_refine", "alternating_projection", "dml_doa", "DML",
    # sparse
    "OMPResult", "omp", "omp_angle_delay", "OMP", "OMPAngleDelay",
]

# --- C2: subspace estimators, preprocessing, model order (C2 appends its exports here) ---
from . import order, preprocessing, subspace  # noqa: E402,F401  (importing registers the estimators)
from .order import aic_order, estimate_order, information_criterion, mdl_order  # noqa: E402
from .preprocessing import forward_backward, real_covariance, spatial_smoothing, unitary_matrix  # noqa: E402
from .subspace import (  # noqa: E402
    EspritLS,
    EspritTLS,
    RootMUSIC,
    RootMUSIC2D,
    UnitaryESPRIT,
    esprit,
    overlap_row_weights,
    root_music,
    root_music_2d,
    shift_invariance_eigenvalues,
    unitary_esprit,
)

__all__ += [
    "aic_order", "estimate_order", "information_criterion", "mdl_order",
    "forward_backward", "real_covariance", "spatial_smoothing", "unitary_matrix",
    "root_music", "esprit", "unitary_esprit", "root_music_2d", "shift_invariance_eigenvalues",
    "overlap_row_weights",
    "RootMUSIC", "EspritLS", "EspritTLS", "UnitaryESPRIT", "RootMUSIC2D",
]

# --- C3: joint angle–delay / angle–angle–delay estimators on OFDM CSI ---
from . import joint  # noqa: E402,F401  (importing registers the estimators)
from .joint import (  # noqa: E402
    BartlettAngleAngleDelay,
    MUSICAngleAngleDelay,
    MUSICAngleDelay,
    MVDRAngleAngleDelay,
    MVDRAngleDelay,
    angle_angle_delay_bartlett,
    angle_angle_delay_music,
    angle_angle_delay_mvdr,
    angle_delay_bartlett,
    angle_delay_music,
    angle_delay_mvdr,
    joint_music_spectrum,
    joint_mvdr_spectrum,
    separable_energy,
    separable_quadratic_form,
    smoothed_covariance,
)

__all__ += [
    "smoothed_covariance", "separable_energy", "separable_quadratic_form", "joint_music_spectrum", "joint_mvdr_spectrum",
    "angle_delay_music", "angle_delay_mvdr", "angle_delay_bartlett",
    "angle_angle_delay_music", "angle_angle_delay_mvdr", "angle_angle_delay_bartlett",
    "MUSICAngleDelay", "MVDRAngleDelay", "MUSICAngleAngleDelay", "MVDRAngleAngleDelay", "BartlettAngleAngleDelay",
]

# --- S3 (seed 003): statistical likelihood of known pilots under random gain-phase errors ---
from . import statistical  # noqa: E402,F401  (importing registers the estimators)
from .statistical import (  # noqa: E402
    AOML,
    GenieML,
    KnownPilots,
    LikelihoodSearch,
    MusicDoppler,
    StatisticalMLE,
    ao_ml,
    music_doppler,
    sequential_init,
    statistical_fim,
    statistical_mle,
    statistical_nll,
)

__all__ += [
    "KnownPilots", "LikelihoodSearch", "statistical_nll", "statistical_fim", "sequential_init", "ao_ml",
    "statistical_mle", "music_doppler", "StatisticalMLE", "AOML", "GenieML", "MusicDoppler",
]
