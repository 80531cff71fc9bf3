"""System S4: spatial signal design for positioning via end-to-end learning (seed 004).

The system is the scenario: :class:`PositioningConfig` (stations, arrays, sectors, position
prior, impairments), the TRUE impaired arrays (:func:`build_arrays`) and the samplers of
training / evaluation draws.  Everything else comes from the layers below:

* observation y = α Fᵀã(θ) + n: :func:`isackit.learning.positioning.observe` on the signals
  layer's :func:`~isackit.signals.channels.narrowband_channel` and
  :func:`~isackit.signals.channels.miso_received_signal`;
* benchmark precoder: :func:`isackit.signals.precoders.derivative_codebook` with the CRB-optimal
  power allocation :func:`isackit.bounds.aod.crb_optimal_precoder`;
* estimators: :func:`isackit.estimators.positioning.ml_aod` and
  :func:`~isackit.estimators.positioning.ml_position`;
* bounds: :mod:`isackit.bounds.aod` (AoD CRB, PEB, MCRB with the TRUE array);
* learned precoders and decoders: :mod:`isackit.learning.positioning`, trained through
  :func:`isackit.learning.training.fit` and cached in :class:`isackit.learning.store.ModelStore`;
* the ``positioning`` experiment: :mod:`isackit.experiments.plugins.positioning`.
"""

from .scenario import (
    ImpairmentKind,
    PositioningConfig,
    build_arrays,
    local_aods,
    position_sectors,
    sample_aod_batch,
    sample_position_batch,
)

__all__ = [
    "PositioningConfig",
    "ImpairmentKind",
    "build_arrays",
    "local_aods",
    "position_sectors",
    "sample_aod_batch",
    "sample_position_batch",
]
