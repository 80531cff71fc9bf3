"""Signals (layer 3): noise, snapshots, constellations, OFDM, channels, LS estimation,
radar targets and TR 38.901 scenarios.

Sionna is imported lazily by the functions that need it (constellations, ``ResourceGrid.to_sionna``,
TR 38.901), so ``import isackit.signals`` stays fast.
"""

from .channels import (
    bistatic_channel,
    channel_from_responses,
    downlink_channel,
    mimo_ofdm_channel,
    miso_received_signal,
    monostatic_channel,
    narrowband_channel,
    path_coefficients,
    paths_received_signal,
    precode,
    received_signal,
    uplink_channel,
)
from .constellations import (
    CONSTELLATIONS,
    constellation_points,
    detect_symbols,
    random_symbols,
    sionna_constellation,
    symbol_error_rate,
)
from .estimation import ls_channel_estimate, ls_subframe_estimates
from .frames import COHERENCES, FrameLayout, draw_element_errors, received_frame, uplink_signal
from .mrc import mrc_combine, mrc_sinr, rebuilt_channels, sum_rate
from .measured import (
    MeasuredCSI,
    MeasuredDataError,
    estimate_phase_error,
    load_measured_csi,
    save_measured_csi,
)
from .precoders import derivative_codebook
from .ofdm import OFDMConfig, ResourceGrid, delay_response, doppler_response, orthogonal_pilots
from .random import (
    add_noise,
    add_noise_at_snr,
    awgn,
    complex_normal,
    db_to_linear,
    linear_to_db,
    noise_variance_from_snr,
)
from .snapshots import Snapshots, covariance, sample_covariance, snapshots, source_covariance
from .targets import radar_path_loss, random_phases, swerling_rcs, target_amplitudes, thermal_noise_power
from .tr38901 import TR38901_SCENARIOS, TR38901Paths, sionna_to_local, tr38901_channel, tr38901_paths

__all__ = [
    # random
    "complex_normal", "awgn", "add_noise", "add_noise_at_snr", "db_to_linear", "linear_to_db", "noise_variance_from_snr",
    # snapshots
    "Snapshots", "snapshots", "source_covariance", "sample_covariance", "covariance",
    # constellations
    "CONSTELLATIONS", "sionna_constellation", "constellation_points", "random_symbols",
    "detect_symbols", "symbol_error_rate",
    # ofdm
    "OFDMConfig", "ResourceGrid", "delay_response", "doppler_response", "orthogonal_pilots",
    # channels
    "path_coefficients", "channel_from_responses", "mimo_ofdm_channel", "monostatic_channel",
    "bistatic_channel",
    "uplink_channel", "downlink_channel", "precode", "received_signal", "paths_received_signal",
    "narrowband_channel", "miso_received_signal",
    # estimation
    "ls_channel_estimate", "ls_subframe_estimates",
    # PASCAL frames (seed 003) and MRC
    "COHERENCES", "FrameLayout", "uplink_signal", "draw_element_errors", "received_frame",
    "rebuilt_channels", "mrc_combine", "mrc_sinr", "sum_rate",
    # measured CSI files (seed 002)
    "MeasuredCSI", "MeasuredDataError", "load_measured_csi", "save_measured_csi", "estimate_phase_error",
    # precoders
    "derivative_codebook",
    # targets
    "swerling_rcs", "radar_path_loss", "random_phases", "target_amplitudes", "thermal_noise_power",
    # TR 38.901
    "TR38901_SCENARIOS", "TR38901Paths", "sionna_to_local", "tr38901_paths", "tr38901_channel",
]
