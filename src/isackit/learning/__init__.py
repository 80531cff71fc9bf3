"""Learning layer (layer 6): complex-valued layers, the training loop, the model store, shared networks.

* :mod:`.complex` — complex-valued linear / convolution layers, activations, normalisation;
* :mod:`.training` — :func:`fit` (the one training loop), :class:`TrainingConfig`, :class:`TrainingLog`;
* :mod:`.store` — :class:`ModelStore` (trained models keyed by everything that determines them);
* :mod:`.checkpoint` — the weights format (safetensors + JSON; nothing is unpickled);
* :mod:`.networks` — shared builders (:func:`mlp`).
"""

from .checkpoint import load_checkpoint, save_checkpoint
from .complex import (
    Cardioid,
    ComplexBatchNorm,
    ComplexConv1d,
    ComplexConv2d,
    ComplexLayerNorm,
    ComplexLinear,
    CReLU,
    ModReLU,
    SplitTanh,
    ZReLU,
    cardioid,
    crelu,
    modrelu,
    split_tanh,
    to_real_features,
    zrelu,
)
from .networks import mlp
from .store import ModelRecord, ModelStore, code_fingerprint
from .training import TrainingConfig, TrainingLog, fit, lr_factor, rich_progress

__all__ = [
    "load_checkpoint",
    "save_checkpoint",
    "ComplexLinear",
    "ComplexConv1d",
    "ComplexConv2d",
    "CReLU",
    "ModReLU",
    "ZReLU",
    "Cardioid",
    "SplitTanh",
    "ComplexBatchNorm",
    "ComplexLayerNorm",
    "crelu",
    "modrelu",
    "zrelu",
    "cardioid",
    "split_tanh",
    "to_real_features",
    "mlp",
    "ModelStore",
    "ModelRecord",
    "code_fingerprint",
    "TrainingConfig",
    "TrainingLog",
    "fit",
    "lr_factor",
    "rich_progress",
]
