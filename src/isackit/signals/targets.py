r"""Radar targets: Swerling RCS, radar path loss, complex amplitudes, thermal noise.

* Swerling I/II (chi-square with 2 degrees of freedom): the radar cross-section is
  exponential with mean σ̄, pdf p(σ) = exp(-σ/σ̄)/σ̄ (default σ̄ = 1 m², the S0 value).
  Swerling I keeps one draw per target for the whole frame (scan-to-scan fluctuation);
  Swerling II draws a new RCS for every OFDM symbol (pulse-to-pulse fluctuation).
* Radar path loss (two-way free space, isotropic antennas):
  monostatic  G = λ² / ((4π)³ R⁴); bistatic  G = λ² / ((4π)³ R_tx² R_rx²).
* Complex amplitude: β = sqrt(P_t · σ · G) e^{jϕ}, ϕ ~ U[0, 2π) (S0; seed 000).
* Thermal noise power: N = k T B F with F = 10^(NF/10) (kT ≈ -174 dBm/Hz at 290 K).

All functions follow the dtype/device of their tensor inputs and take an explicit generator
where they draw; amplitudes are differentiable in the ranges and powers (reparameterised).
"""

from __future__ import annotations

import math

import torch

from .._checks import as_tensor, check_finite, check_nonnegative, check_positive
from ..constants import BOLTZMANN, ROOM_TEMPERATURE
from ..conversions import db_to_linear
from .random import _check_generator, _shape

__all__ = [
    "swerling_rcs",
    "radar_path_loss",
    "target_amplitudes",
    "random_phases",
    "thermal_noise_power",
]


def swerling_rcs(shape, generator: torch.Generator, mean_rcs=1.0, model: str = "I",
                 num_symbols: int | None = None, dtype: torch.dtype = torch.float32,
                 device=None) -> torch.Tensor:
    r"""Exponential RCS draws σ ~ Exp(mean σ̄) for Swerling I or II targets.

    Args:
        shape: ``(..., K)`` target shape.
        generator: explicit randomness (drawn on its device, then moved to ``device``).
        mean_rcs: σ̄ in m² (float or tensor broadcastable to ``shape``).
        model: ``"I"`` (one RCS per target: output ``shape``) or ``"II"`` (one per OFDM
            symbol: output ``(..., L, K)`` with L = ``num_symbols``).

    Returns:
        Real tensor of RCS values in m².
    """
    _check_generator(generator)
    shp = _shape(shape)
    if model not in ("I", "II"):
        raise ValueError(f"unknown Swerling model {model!r}; expected one of: I, II")
    if model == "II":
        if num_symbols is None or int(num_symbols) < 1:
            raise ValueError("Swerling II needs num_symbols >= 1 (one RCS draw per OFDM symbol)")
        if len(shp) < 1:
            raise ValueError("shape must be (..., K) for Swerling II")
        shp = (*shp[:-1], int(num_symbols), shp[-1])
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    u = torch.rand(shp, generator=generator, dtype=dtype, device=generator.device)
    e = -torch.log1p(-u)  # Exp(1); log1p(-u) is finite for u in [0, 1)
    e = e if device is None else e.to(device)
    mean = as_tensor(mean_rcs, like=e)
    check_positive(mean.detach(), "mean_rcs")
    return e * mean


def radar_path_loss(wavelength, range_tx, range_rx=None) -> torch.Tensor:
    r"""Two-way free-space path loss G = λ² / ((4π)³ R_tx² R_rx²) (power ratio).

    Args:
        wavelength: λ in metres.
        range_tx: ``(...)`` Tx → target distance R_tx (m); monostatic: the range R.
        range_rx: ``(...)`` target → Rx distance (m), or ``None`` for monostatic (R_rx = R_tx,
            giving λ²/((4π)³ R⁴)).

    Returns:
        Real tensor, differentiable in the ranges.
    """
    check_positive(wavelength, "wavelength")
    r_tx = torch.as_tensor(range_tx)
    if not r_tx.is_floating_point():
        r_tx = r_tx.to(torch.get_default_dtype())
    check_positive(r_tx.detach(), "range_tx")
    r_rx = r_tx if range_rx is None else as_tensor(range_rx, like=r_tx)
    check_positive(r_rx.detach(), "range_rx")
    return wavelength**2 / ((4 * math.pi) ** 3 * r_tx**2 * r_rx**2)


def random_phases(shape, generator: torch.Generator, dtype: torch.dtype = torch.float32,
                  device=None) -> torch.Tensor:
    """ϕ ~ U[0, 2π) of the given shape."""
    _check_generator(generator)
    u = torch.rand(_shape(shape), generator=generator, dtype=dtype, device=generator.device)
    u = 2 * math.pi * u
    return u if device is None else u.to(device)


def target_amplitudes(rcs, path_loss, generator: torch.Generator | None = None, transmit_power=1.0,
                      phases=None) -> torch.Tensor:
    r"""β = sqrt(P_t · σ · G) e^{jϕ}.

    Args:
        rcs: ``(...)`` RCS σ in m² (e.g. :func:`swerling_rcs`).
        path_loss: ``(...)`` G (e.g. :func:`radar_path_loss`), broadcastable with ``rcs``.
        generator: draws ϕ ~ U[0, 2π) when ``phases`` is not given.
        transmit_power: P_t in W.
        phases: ``(...)`` given phases ϕ (radians) instead of random ones.

    Returns:
        Complex tensor (complex128 for float64 inputs).  Differentiable in all real inputs.
    """
    s = torch.as_tensor(rcs)
    if not s.is_floating_point():
        s = s.to(torch.get_default_dtype())
    g = as_tensor(path_loss, like=s)
    check_finite(s, "rcs")
    check_nonnegative(s.detach(), "rcs")
    check_nonnegative(g.detach(), "path_loss")
    check_nonnegative(transmit_power, "transmit_power")
    mag = torch.sqrt(transmit_power * s * g)
    if phases is None:
        if generator is None:
            raise ValueError("give phases or a generator to draw them")
        phases = random_phases(mag.shape, generator, mag.dtype, mag.device)
    phi = as_tensor(phases, like=mag)
    return torch.polar(mag, phi.expand_as(mag) if phi.shape != mag.shape else phi)


def thermal_noise_power(bandwidth, noise_figure_db=0.0, temperature=ROOM_TEMPERATURE):
    r"""N = k T B 10^(NF/10) in W (float in, float out; tensors stay tensors)."""
    check_positive(bandwidth, "bandwidth")
    check_positive(temperature, "temperature")
    nf = torch.as_tensor(noise_figure_db)
    if not torch.isfinite(nf).all():
        raise ValueError(f"noise_figure_db must be finite, got {noise_figure_db!r}")
    if isinstance(bandwidth, torch.Tensor) or isinstance(noise_figure_db, torch.Tensor):
        return BOLTZMANN * temperature * torch.as_tensor(bandwidth) * db_to_linear(nf)
    return BOLTZMANN * temperature * float(bandwidth) * db_to_linear(float(noise_figure_db))
