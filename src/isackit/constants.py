"""Physical constants used across the library (SI units)."""

SPEED_OF_LIGHT = 299_792_458.0  # m/s
BOLTZMANN = 1.380649e-23  # J/K
ROOM_TEMPERATURE = 290.0  # K, reference for thermal noise kT
