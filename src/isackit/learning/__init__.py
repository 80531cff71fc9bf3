"""Learning layer (layer 6): complex-valued layers, learned models, training utilities."""

from .checkpoint import load_checkpoint, save_checkpoint

__all__ = ["load_checkpoint", "save_checkpoint"]
