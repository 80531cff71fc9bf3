r"""S2 — MoD-DNN direction finding with a commodity 5G gNB (seed 002).

Thin assembly of the library's layers: the configs (:mod:`.config`), the scenario
(:mod:`.scenario`: devices with angle- and subcarrier-dependent phase errors, single-LoS or
TR 38.901 CSI, grid datasets per subregion, the chamber surrogate), the receivers
(:mod:`.models`: training through ``fit`` + ``ModelStore``, evaluation of MUSIC, DBF,
DeepMUSIC, the CNN and MoD-DNN), evaluation helpers (:mod:`.evaluation`) and the summary
(:mod:`.report`).  The networks live in :mod:`isackit.learning.mod_dnn`, the coarray and the
(S)CG solvers in :mod:`isackit.estimators`, the measured-data loader in
:mod:`isackit.signals.measured`.
"""

from .config import (
    CHANNELS,
    ArrayConfig,
    AutoencoderConfig,
    ChannelConfig,
    CNNConfig,
    DeepMUSICConfig,
    GridConfig,
    ModelsConfig,
    PhaseErrorConfig,
    ScenarioConfig,
    SSRConfig,
    TrainSettings,
)
from .scenario import (
    CSIBatch,
    Device,
    chamber_surrogate,
    grid_angles,
    grid_dataset,
    make_device,
    nearest_grid_index,
    ofdm_config,
    simulate_csi,
    subregion_bounds,
    subregion_of,
)

__all__ = [
    "CHANNELS", "ArrayConfig", "ChannelConfig", "GridConfig", "PhaseErrorConfig", "ScenarioConfig",
    "TrainSettings", "AutoencoderConfig", "SSRConfig", "DeepMUSICConfig", "CNNConfig", "ModelsConfig",
    "CSIBatch", "Device", "chamber_surrogate", "grid_angles", "grid_dataset", "make_device", "nearest_grid_index", "ofdm_config",
    "simulate_csi", "subregion_bounds", "subregion_of",
]
