"""System S0 (seed 000): unsupervised end-to-end array calibration for multi-target ISAC.

Modules: ``config`` (scenario), ``station`` (the physical world: true impaired arrays and
channels), ``transceiver`` (precoder + OMP receiver on the assumed, learnable model),
``losses``, ``training`` (one loop for every method), ``evaluation``, ``experiment`` (the
``calibration`` experiment, registered on import).
"""

from .config import CalibrationConfig
from .evaluation import evaluate, parameter_errors
from .station import Scenes, Station, impaired_array, learnable_array
from .training import train_calibration
from .transceiver import Transceiver, calibrate_threshold

__all__ = ["CalibrationConfig", "Scenes", "Station", "Transceiver", "calibrate_threshold", "evaluate",
           "impaired_array", "learnable_array", "parameter_errors", "train_calibration"]
