"""System S3 (seed 003): PASCAL — pilot-aided simultaneous communication and localisation of
UAVs under random gain-phase errors.

Modules: ``config`` (the scenario: array, drone table, frame, errors, search — the
specification's defaults for the lost Table II) and ``scenario`` (the world of a drone
selection, pilot and subframe observations, DLDD sum rate, bounds).  The algorithms live in
their layers: frames and MRC in :mod:`isackit.signals.frames` / :mod:`isackit.signals.mrc`,
the statistical likelihood, MLE, AO-ML, G-ML and MUSIC + Doppler in
:mod:`isackit.estimators.statistical`, JLDD in :mod:`isackit.estimators.jldd`, the average
CRLB in :mod:`isackit.bounds.statistical`, the average-SDR analysis in
:mod:`isackit.bounds.rate`, the error moments in :mod:`isackit.impairments.distributions`.
"""

from .config import DEFAULT_DRONES, ArrayConfig, DroneConfig, ErrorConfig, FrameConfig, ScenarioConfig, SearchConfig
from .scenario import (
    PascalWorld,
    analytic_sum_rate,
    build_world,
    crlb,
    dldd_sum_rate,
    genie_bound,
    pilot_observations,
    subframe_observations,
)

__all__ = ["DEFAULT_DRONES", "ArrayConfig", "DroneConfig", "ErrorConfig", "FrameConfig", "ScenarioConfig",
           "SearchConfig", "PascalWorld", "analytic_sum_rate", "build_world", "crlb", "dldd_sum_rate",
           "genie_bound", "pilot_observations", "subframe_observations"]
