"""Array geometries, steering vectors and scene geometry (layer 1)."""

from .arrays import (
    ArrayGeometry,
    direction_vectors,
    steering_matrix,
    steering_matrix_derivatives,
    ula,
    ura,
)

__all__ = [
    "ArrayGeometry",
    "direction_vectors",
    "steering_matrix",
    "steering_matrix_derivatives",
    "ula",
    "ura",
]
