"""System S4: spatial signal design for positioning via end-to-end learning (seed 004).

* :mod:`.scenario` — the validated scenario (:class:`PositioningConfig`), true impaired arrays,
  the observation model y = α Fᵀã(θ) + n and training samplers;
* :mod:`.benchmark` — directional + derivative codebook with the CRB-optimal (worst-case)
  power allocation, ML AoD and ML position;
* :mod:`.autoencoder` — learned precoders and AoD / position decoders, training, checkpoints;
* :mod:`.bounds` — AoD CRB, PEB and the benchmark's MCRB, always with the TRUE array;
* :mod:`.experiment` — the ``positioning`` experiment (registered on import).
"""

from .autoencoder import (
    AoDAutoencoder,
    PositionAutoencoder,
    PrecoderNet,
    hybrid_from,
    load_autoencoder,
    save_autoencoder,
    train_autoencoder,
)
from .benchmark import benchmark_precoder, hybrid_codebook, ml_aod, ml_position, optimal_power_allocation
from .bounds import aod_crb, aod_crbs, mcrb_aod, mcrb_position, position_peb
from .scenario import PositioningConfig, build_arrays, observe

__all__ = [
    "PositioningConfig",
    "build_arrays",
    "observe",
    "hybrid_codebook",
    "optimal_power_allocation",
    "benchmark_precoder",
    "ml_aod",
    "ml_position",
    "aod_crb",
    "aod_crbs",
    "position_peb",
    "mcrb_aod",
    "mcrb_position",
    "PrecoderNet",
    "AoDAutoencoder",
    "PositionAutoencoder",
    "train_autoencoder",
    "hybrid_from",
    "save_autoencoder",
    "load_autoencoder",
]
