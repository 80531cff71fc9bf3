"""System S0 (seed 000): unsupervised end-to-end array calibration for multi-target ISAC.

Modules: ``config`` (the system's configs by concern), ``station`` (the physical world: true
impaired arrays and channels), ``transceiver`` (precoder + OMP receiver on the assumed,
learnable models), ``training`` (the calibration step and loop), ``evaluation`` (metrics),
``methods`` (the method table: build, calibrate, save, load).  The lower-layer pieces live
in their layers: :mod:`isackit.signals.precoders`, :mod:`isackit.estimators.omp_detector`,
:mod:`isackit.learning.calibration`; the ``calibration`` experiment is
:mod:`isackit.experiments.plugins.calibration`.
"""

from .config import (
    CalibrationConfig,
    CalibrationTrainingConfig,
    EvaluationConfig,
    PrecoderConfig,
    ReceiverConfig,
    ScenarioConfig,
)
from .evaluation import SensingCommMetrics, aligned_parameters, evaluate, parameter_errors
from .methods import METHODS, build_transceiver, calibrate_method, load_calibration, save_calibration
from .station import Scenes, Station, impaired_array, learnable_array
from .training import train_calibration
from .transceiver import Transceiver, calibrate_threshold

__all__ = ["CalibrationConfig", "ScenarioConfig", "PrecoderConfig", "ReceiverConfig", "CalibrationTrainingConfig",
           "EvaluationConfig", "Scenes", "Station", "Transceiver", "SensingCommMetrics", "METHODS",
           "aligned_parameters", "build_transceiver", "calibrate_method", "calibrate_threshold", "evaluate",
           "impaired_array", "learnable_array", "load_calibration", "parameter_errors", "save_calibration",
           "train_calibration"]
