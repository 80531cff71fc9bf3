"""Array geometries, steering vectors and scene geometry (layer 1)."""

from .arrays import (
    ArrayGeometry,
    direction_vectors,
    steering_matrix,
    steering_matrix_derivatives,
    ula,
    ura,
)
from .scene import (
    BistaticParameters,
    MonostaticParameters,
    Station,
    StationParameters,
    as_points,
    bistatic_parameters,
    delay_to_range,
    local_angles,
    monostatic_parameters,
    multistation_parameters,
    position_from_angle_range,
    range_to_delay,
    ranges,
    stack_stations,
)

__all__ = [
    "BistaticParameters",
    "MonostaticParameters",
    "Station",
    "StationParameters",
    "as_points",
    "bistatic_parameters",
    "delay_to_range",
    "local_angles",
    "monostatic_parameters",
    "multistation_parameters",
    "position_from_angle_range",
    "range_to_delay",
    "ranges",
    "stack_stations",
    "ArrayGeometry",
    "direction_vectors",
    "steering_matrix",
    "steering_matrix_derivatives",
    "ula",
    "ura",
]
