"""Classical estimators (layer 4): spectral, subspace, likelihood, sparse and joint CSI methods.

Pure batched functions plus thin registered classes (:mod:`isackit.estimators.base`): every
registered estimator is built from ``array`` (the array the receiver assumes) and
``num_sources`` (K), implements the one hook ``estimate`` and returns an
:class:`EstimationResult`.  Shared internals of the families live in
:mod:`isackit.estimators.common`.  Importing this package registers every estimator in
:data:`ESTIMATORS`.

Families:

* :mod:`.spectral` — Bartlett/DBF, MVDR, MUSIC (1-D, 2-D) on covariances;
* :mod:`.subspace` — root-MUSIC, ESPRIT (LS/TLS), unitary ESPRIT, 2-D root-MUSIC (ULAs);
* :mod:`.likelihood` — deterministic ML (DML);
* :mod:`.sparse` — OMP on snapshots and separable angle–delay OMP on CSI;
* :mod:`.joint` — angle–delay and angle–angle–delay Bartlett/MVDR/MUSIC on OFDM CSI;
* :mod:`.order` — model order by MDL/AIC; :mod:`.preprocessing` — forward–backward
  averaging, spatial smoothing, unitary transform; :mod:`.grids`, :mod:`.peaks` — search
  grids, dictionaries and peak picking.
"""

from . import common
from .base import ESTIMATORS, EstimationResult, Estimator, get_estimator, register
from .grids import QuadraticFormDictionary, SearchGrid, default_delay_grid, delay_dictionary, kron_dictionary
from .joint import (
    BartlettAngleAngleDelay,
    JointSpectrum,
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
from .likelihood import (
    DML,
    alternating_projection,
    dml_cost,
    dml_doa,
    dml_gradient_hessian,
    dml_refine,
    projector,
)
from .order import aic_order, estimate_order, information_criterion, mdl_order
from .peaks import find_peaks, local_maxima, peaks_to_coordinates, refine_parabolic, soft_argmax
from .preprocessing import forward_backward, real_covariance, spatial_smoothing, unitary_matrix
from .sparse import OMP, OMPAngleDelay, OMPResult, omp, omp_angle_delay
from .spectral import (
    MUSIC,
    MUSIC2D,
    MVDR,
    Bartlett,
    BartlettAngleDelay,
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
)
from .common import signal_subspace
from .subspace import (
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

__all__ = [
    "ESTIMATORS", "EstimationResult", "Estimator", "get_estimator", "register", "common",
    # grids and peaks
    "SearchGrid", "QuadraticFormDictionary", "default_delay_grid", "delay_dictionary", "kron_dictionary",
    "find_peaks", "local_maxima", "peaks_to_coordinates", "refine_parabolic", "soft_argmax",
    # spectral
    "bartlett_spectrum", "mvdr_spectrum", "music_spectrum", "signal_subspace", "noise_projector",
    "music_refine", "bartlett_doa", "mvdr_doa", "music_doa", "music2d_doa",
    "angle_delay_spectrum", "angle_angle_delay_spectrum", "Bartlett", "MVDR", "MUSIC", "MUSIC2D",
    "BartlettAngleDelay",
    # likelihood
    "projector", "dml_cost", "dml_gradient_hessian", "dml_refine", "alternating_projection", "dml_doa", "DML",
    # sparse
    "OMPResult", "omp", "omp_angle_delay", "OMP", "OMPAngleDelay",
    # subspace, preprocessing, model order
    "aic_order", "estimate_order", "information_criterion", "mdl_order",
    "forward_backward", "real_covariance", "spatial_smoothing", "unitary_matrix",
    "root_music", "esprit", "unitary_esprit", "root_music_2d", "shift_invariance_eigenvalues",
    "overlap_row_weights",
    "RootMUSIC", "EspritLS", "EspritTLS", "UnitaryESPRIT", "RootMUSIC2D",
    # joint angle–delay / angle–angle–delay on OFDM CSI
    "JointSpectrum", "smoothed_covariance", "separable_energy", "separable_quadratic_form",
    "joint_music_spectrum", "joint_mvdr_spectrum",
    "angle_delay_music", "angle_delay_mvdr", "angle_delay_bartlett",
    "angle_angle_delay_music", "angle_angle_delay_mvdr", "angle_angle_delay_bartlett",
    "MUSICAngleDelay", "MVDRAngleDelay", "MUSICAngleAngleDelay", "MVDRAngleAngleDelay", "BartlettAngleAngleDelay",
]

# --- S2: coarray spectrum, (sparse) conjugate gradient, the SCG estimator (seed 002) ---
from . import scg  # noqa: E402,F401  (importing registers the estimator)
from .coarray import (  # noqa: E402
    CoarrayProjection,
    coarray_manifold,
    coarray_projection,
    coarray_signal,
    coarray_spectrum,
)
from .scg import (  # noqa: E402
    PRINTED_ALGORITHM_1,
    SCG,
    CGResult,
    conjugate_gradient,
    scg_spectrum,
    sparse_conjugate_gradient,
)

__all__ += [
    "CoarrayProjection", "coarray_manifold", "coarray_projection", "coarray_signal", "coarray_spectrum",
    "PRINTED_ALGORITHM_1", "SCG", "CGResult", "conjugate_gradient", "scg_spectrum", "sparse_conjugate_gradient",
]

# --- S1: PARAMING (parametric AoA–AoD–ToA(–Doppler) estimation, seed 001) ---
from . import parametric  # noqa: E402,F401  (importing registers the estimator)
from .parametric import (  # noqa: E402
    PARAMING,
    doppler_from_phases,
    fit_spatial_signatures,
    hankel_block_hankel,
    paraming,
    paraming_delays,
    paraming_doppler,
    path_gains,
    rank_one_phase_fit,
)

__all__ += [
    "PARAMING", "doppler_from_phases", "fit_spatial_signatures", "hankel_block_hankel", "paraming",
    "paraming_delays", "paraming_doppler", "path_gains", "rank_one_phase_fit",
]

# --- S1: K-source DML (alternating projection) on the AoA–AoD–delay grid ---
from . import joint_likelihood  # noqa: E402,F401  (importing registers the estimator)
from .joint_likelihood import DMLAngleAngleDelay, angle_angle_delay_dml, bartlett_correlation  # noqa: E402

__all__ += ["DMLAngleAngleDelay", "angle_angle_delay_dml", "bartlett_correlation"]

# --- AoD positioning from precoded pilots (seed 004) ---
from .positioning import ml_aod, ml_aod_spectrum, ml_position  # noqa: E402

__all__ += ["ml_aod_spectrum", "ml_aod", "ml_position"]

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
