r"""Narrowband multi-user uplink frames with known pilots, per-sample Doppler and random
per-element gain-phase errors (seed 003, PASCAL, Sec. II and (1)–(2)).

Model.  K single-antenna transmitters (drones) with azimuth φ_k, elevation ϑ_k, Doppler f_k
and a known real amplitude c_k (path loss × √(transmit power), e.g. √ρ_k · d_ref/d_k when the
SNR is referenced to a distance d_ref) send symbols s_{k,t} at sample times t.  The receive
array (M elements, e.g. :func:`~isackit.geometry.horizontal_ura`) sees

    y_t = ζ_t ⊙ ũ_t + n_t,    ũ_t = Σ_k a(φ_k, ϑ_k) c_k e^{j2π f_k t} s_{k,t},    n_t ~ CN(0, σ² I),

with ζ the per-element complex gain-phase errors (an
:class:`~isackit.impairments.distributions.ElementErrorDistribution`), held for the whole
frame (``coherence="frame"``, the literal reading of the seed: ζ has no time index) or redrawn
for every signal (``coherence="signal"``).

Frame layout (:class:`FrameLayout`): L subframes of N signals; signal i = 1 of each subframe is
the pilot, i = 2..N are data symbols; sample time t_{l,i} = ((l − 1) N + i) / f_s (i starts at 1
so that a single pilot carries the absolute phase 2π f_k / f_s).

Shapes (batch first): angles, Dopplers, amplitudes ``(..., K)``; symbols ``(..., K, T)`` on a
flat time axis with times ``(T,)`` or ``(..., T)`` seconds (a frame is T = L·N, reshape as
needed); signals ``(..., M, T)``; errors ``(..., M, 1)`` (frame) or ``(..., M, T)`` (signal).
Everything follows the dtype/device of its inputs and is differentiable in the parameters.

Reference: seed 003 (``shared/seeds/003_*``); specification ``shared/design/s3-pascal.md`` §1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .._checks import check_choice, check_positive, check_positive_int
from .._dtypes import complex_dtype
from ..geometry.arrays import ArrayGeometry, steering_matrix
from ..impairments.distributions import ElementErrorDistribution
from .random import awgn

__all__ = ["COHERENCES", "FrameLayout", "uplink_signal", "draw_element_errors", "received_frame"]

#: How long one draw of the gain-phase errors lasts: the whole frame, or one signal.
COHERENCES = ("frame", "signal")


@dataclass(frozen=True)
class FrameLayout:
    """L subframes × N signals (1 pilot + N − 1 data symbols) at sample rate f_s.

    Attributes:
        num_subframes: L (pilots per frame).
        subframe_length: N (signals per subframe, the pilot included).
        sample_rate: f_s in Hz.

    Example:
        >>> lay = FrameLayout(num_subframes=2, subframe_length=3, sample_rate=10.0)
        >>> (lay.times() * lay.sample_rate).round().tolist()     # t · f_s
        [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
        >>> (lay.pilot_times() * lay.sample_rate).round().tolist()
        [1.0, 4.0]
    """

    num_subframes: int = 10
    subframe_length: int = 101
    sample_rate: float = 1e5

    def __post_init__(self):
        check_positive_int(self.num_subframes, "num_subframes")
        check_positive_int(self.subframe_length, "subframe_length")
        check_positive(self.sample_rate, "sample_rate")

    @property
    def num_signals(self) -> int:
        """T = L · N."""
        return self.num_subframes * self.subframe_length

    @property
    def doppler_ambiguity(self) -> float:
        """f_s / (2N): Dopplers are unambiguous over the pilots within ±this (Hz)."""
        return self.sample_rate / (2 * self.subframe_length)

    def times(self, dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
        """t_{l,i} = ((l − 1) N + i) / f_s, ``(L, N)`` seconds."""
        n = torch.arange(1, self.num_signals + 1, dtype=torch.float64) / self.sample_rate
        return n.reshape(self.num_subframes, self.subframe_length).to(dtype=dtype, device=device)

    def pilot_times(self, num_pilots: int | None = None, dtype: torch.dtype = torch.float64,
                    device=None) -> torch.Tensor:
        """Times of the first ``num_pilots`` (default L) pilots, ``(L_p,)``."""
        lp = self.num_subframes if num_pilots is None else check_positive_int(num_pilots, "num_pilots")
        if lp > self.num_subframes:
            raise ValueError(f"num_pilots={lp} exceeds the {self.num_subframes} subframes of the frame")
        return self.times(dtype, device)[:lp, 0]


def uplink_signal(array: ArrayGeometry, azimuth: torch.Tensor, elevation: torch.Tensor, doppler: torch.Tensor,
                  amplitudes: torch.Tensor, symbols: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
    r"""Noise-free ideal-array signal ũ_t = Σ_k a(φ_k, ϑ_k) c_k e^{j2π f_k t} s_{k,t}, ``(..., M, T)``.

    Args:
        array: the receive array (positions in metres, its wavelength).
        azimuth, elevation: ``(..., K)`` radians.  doppler: ``(..., K)`` Hz.
        amplitudes: ``(..., K)`` real (or complex) known amplitudes c_k.
        symbols: ``(..., K, T)`` complex.
        times: ``(T,)`` or ``(..., T)`` seconds.

    Returns:
        ``(..., M, T)`` complex in the symbols' dtype.  Differentiable in every input.
    """
    cdt = symbols.dtype if symbols.is_complex() else complex_dtype(symbols.dtype)
    rdt = torch.float64 if cdt == torch.complex128 else torch.float32
    az = azimuth.to(rdt)
    A = steering_matrix(array.positions_like(az), az, elevation.to(rdt), array.wavelength).to(cdt)  # (..., M, K)
    t = times.to(rdt)
    phase = 2 * math.pi * doppler.to(rdt)[..., :, None] * t[..., None, :]  # (..., K, T)
    wave = torch.polar(torch.ones_like(phase), phase) * symbols.to(cdt) * amplitudes.to(cdt)[..., :, None]
    return A @ wave


def draw_element_errors(law: ElementErrorDistribution, num_elements: int, batch_shape=(), *,
                        coherence: str = "frame", num_signals: int = 1, generator: torch.Generator | None = None,
                        dtype: torch.dtype = torch.complex64, device=None) -> torch.Tensor:
    r"""Per-element errors ζ for a batch of frames.

    Args:
        law: the error law (e.g. Rice × von Mises, or its moment-matched complex Gaussian).
        num_elements: M.  batch_shape: leading dims (Monte Carlo trials).
        coherence: ``"frame"`` — one draw per frame, returned ``(*batch, M, 1)``;
            ``"signal"`` — a fresh draw for every one of ``num_signals`` signals,
            ``(*batch, M, T)``.
        generator: the source of randomness.  dtype: complex dtype of the output.

    Returns:
        ``(*batch, M, 1)`` or ``(*batch, M, T)`` complex, broadcastable against ``(*batch, M, T)``.
    """
    check_choice(coherence, COHERENCES, "coherence")
    if not isinstance(law, ElementErrorDistribution):
        raise TypeError(f"law must be an ElementErrorDistribution, got {type(law).__name__}")
    m = check_positive_int(num_elements, "num_elements")
    t = check_positive_int(num_signals, "num_signals")
    rdt = torch.float64 if dtype == torch.complex128 else torch.float32
    batch = tuple(int(b) for b in batch_shape) if not isinstance(batch_shape, int) else (int(batch_shape),)
    if coherence == "frame":
        z = law.sample(m, batch, generator, rdt, device)[..., None]
    else:
        z = law.sample(m, (*batch, t), generator, rdt, device).transpose(-1, -2)
    return z.to(dtype)


def received_frame(signal: torch.Tensor, errors: torch.Tensor | None, noise_var, generator: torch.Generator
                    ) -> torch.Tensor:
    r"""y = ζ ⊙ ũ + n with n ~ CN(0, σ²): ``signal`` ``(..., M, T)``, ``errors`` broadcastable
    (``None`` = ideal array), ``noise_var`` σ² a float or a tensor matching the leading dims."""
    y = signal if errors is None else errors.to(signal.dtype) * signal
    return y + awgn(y.shape, noise_var, generator, y.dtype, y.device)
