r"""S2 — MoD-DNN direction finding with a commodity 5G gNB (seed 002).

Thin assembly of the library's layers: the scenario (:mod:`.scenario`: devices with angle-
and subcarrier-dependent phase errors, single-LoS or TR 38.901 CSI, grid datasets per
subregion), the configs (:mod:`.config`).
"""

from .config import CHANNELS, ArrayConfig, ChannelConfig, GridConfig, PhaseErrorConfig, ScenarioConfig
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
    "CSIBatch", "Device", "chamber_surrogate", "grid_angles", "grid_dataset", "make_device", "nearest_grid_index", "ofdm_config",
    "simulate_csi", "subregion_bounds", "subregion_of",
]
