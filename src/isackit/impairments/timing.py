r"""Timing offset: a common delay δ that rotates every subcarrier by exp(-j2π f_n δ).

A receiver whose sampling clock / frame start is off by δ seconds sees every path delayed by
δ, so in the frequency domain the whole channel (all elements, all paths) is multiplied by
the phase ramp exp(-j2π f_n δ) with f_n = n Δf the baseband frequency of subcarrier n
(convention: b(τ)_n = exp(-j2π n Δf τ)).  Delay (ToA) estimates are biased by δ while angle
estimates are not (seed 001: PARAMING's angles are invariant to a timing offset).

This is NOT a map of the steering matrix: inside an :class:`~isackit.impairments.ArrayModel`
it is the identity.  The signal layer applies it to frequency-domain channels or received
grids with :meth:`TimingOffset.apply_frequency`, e.g. for MIMO-OFDM CSI ``H (..., N, M, M_t)``:

    H_impaired = offset.apply_frequency(H, torch.arange(N) * delta_f, axis=-3)

Shapes: δ ``(...)`` seconds (one offset per trial); its dims broadcast (right-aligned) with
the dims of ``H`` that precede the subcarrier axis.  Differentiable in δ and H; with
``learnable=True`` δ is an ``nn.Parameter``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .._checks import check_finite
from .base import Impairment

__all__ = ["TimingOffset"]


class TimingOffset(Impairment):
    """A timing offset δ (seconds), applied in the frequency domain.

    Args:
        delay: δ ``(...)`` seconds (may be negative).
        known: whether the receiver knows δ.
        learnable: make δ an ``nn.Parameter``.
    """

    def __init__(self, delay, known: bool = False, learnable: bool = False):
        super().__init__(known)
        # Python numbers are taken in float64 (δ ~ 1e-8 s must not be rounded through float32)
        d = delay if isinstance(delay, torch.Tensor) else torch.as_tensor(delay, dtype=torch.float64)
        if d.is_complex():
            raise TypeError("delay must be real (seconds)")
        if not d.is_floating_point():
            d = d.to(torch.float64)
        check_finite(d, "delay")
        self.learnable = bool(learnable)
        if self.learnable:
            self.delay = nn.Parameter(d.clone())
        else:
            self.register_buffer("delay", d.clone())

    @classmethod
    def uniform(cls, max_delay: float, batch_shape=(), generator: torch.Generator | None = None,
                dtype=torch.float64, device=None, **kwargs) -> TimingOffset:
        """δ ~ U(-max_delay, max_delay) seconds, one per batch entry."""
        m = float(max_delay)
        if not (m >= 0 and math.isfinite(m)):
            raise ValueError(f"max_delay must be non-negative and finite (seconds), got {max_delay}")
        u = torch.rand(tuple(batch_shape), generator=generator, dtype=dtype, device=device)
        return cls((2 * u - 1) * m, **kwargs)

    def phase_ramp(self, subcarrier_frequencies) -> torch.Tensor:
        """exp(-j2π f_n δ) ``(..., N)`` for baseband frequencies ``(N,)`` Hz."""
        f = torch.as_tensor(subcarrier_frequencies)
        if f.ndim != 1:
            raise ValueError(f"subcarrier_frequencies must have shape (N,), got {tuple(f.shape)}")
        if not f.is_floating_point():
            f = f.to(torch.float64)
        check_finite(f, "subcarrier_frequencies")
        d = self.delay
        dtype = torch.promote_types(f.dtype, d.dtype)
        ph = -2 * math.pi * d.to(dtype).unsqueeze(-1) * f.to(dtype)
        return torch.polar(torch.ones_like(ph), ph)

    def apply_frequency(self, H: torch.Tensor, subcarrier_frequencies, axis: int = -3) -> torch.Tensor:
        """Multiply ``H`` along its subcarrier ``axis`` by exp(-j2π f_n δ).

        Args:
            H: complex tensor with the subcarrier axis at ``axis`` (``(..., N, M, M_t)`` CSI:
                axis=-3; ``(..., M, N)`` grids: axis=-1).
            subcarrier_frequencies: ``(N,)`` baseband frequencies n·Δf in Hz.
            axis: the subcarrier axis of ``H`` (negative or non-negative).
        """
        if not isinstance(H, torch.Tensor) or not H.is_complex():
            raise TypeError("H must be a complex torch.Tensor")
        ax = axis if axis < 0 else axis - H.ndim
        if not -H.ndim <= ax < 0:
            raise ValueError(f"axis {axis} out of range for H with {H.ndim} dims")
        ramp = self.phase_ramp(subcarrier_frequencies)
        if ramp.shape[-1] != H.shape[ax]:
            raise ValueError(f"H has {H.shape[ax]} subcarriers on axis {axis}, but "
                             f"{ramp.shape[-1]} frequencies were given")
        ramp = ramp.to(H.dtype).reshape(*ramp.shape, *([1] * (-ax - 1)))
        return ramp * H

    def apply(self, A, azimuth=None, elevation=None, subcarriers=None):
        """Identity: a timing offset does not change the array response (see the module docs)."""
        return A

    def extra_repr(self) -> str:
        return f"batch={tuple(self.delay.shape)}, known={self.known}, learnable={self.learnable}"
