"""Composable, differentiable, learnable hardware impairments (layer 2)."""

from .base import ArrayModel, Impairment

__all__ = ["ArrayModel", "Impairment"]
