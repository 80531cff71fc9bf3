r"""OFDM numerology, delay/Doppler responses and a pilot/data resource grid.

Conventions (``shared/design/conventions.md``):

* N subcarriers with spacing Δf; subcarrier n has baseband frequency n·Δf, n = 0..N-1;
* useful symbol T = 1/Δf, cyclic prefix T_cp, OFDM symbol T_sym = T + T_cp;
* delay response b(τ)_n = exp(-j 2π n Δf τ): unambiguous delay 1/Δf, resolution 1/(N Δf);
* Doppler over OFDM symbols l = 0..L-1: exp(+j 2π ν l T_sym).

Sionna's ``ResourceGrid`` numbers subcarriers 0..N-1 from the lowest frequency
-⌊N/2⌋Δf upwards; our index n is the same ordering with the frequency origin moved to the
first subcarrier (all subcarrier frequencies shifted by ⌊N/2⌋Δf, which multiplies each
path's delay response by the constant phase exp(-j 2π ⌊N/2⌋ Δf τ)).  :meth:`ResourceGrid.to_sionna` builds the equivalent
Sionna grid (same OFDM symbols, same subcarrier ordering, same pilot positions and
symbols, Sionna's type codes 0 = data, 1 = pilot).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from .._checks import check_finite, check_positive, check_positive_int
from ..constants import SPEED_OF_LIGHT

__all__ = [
    "OFDMConfig",
    "delay_response",
    "doppler_response",
    "ResourceGrid",
    "orthogonal_pilots",
]


@dataclass(frozen=True)
class OFDMConfig:
    r"""A frozen, validated OFDM numerology.

    Attributes:
        num_subcarriers: N.
        subcarrier_spacing: Δf in Hz.
        carrier_frequency: f_c in Hz.
        num_symbols: L, OFDM symbols per frame (default 1).
        cyclic_prefix: T_cp as a fraction of the useful symbol T = 1/Δf (default 0.07,
            the S0 value; 5G NR's normal CP is 144/2048 ≈ 0.0703).
        cyclic_prefix_duration: T_cp in seconds, instead of ``cyclic_prefix`` (which is then
            set to T_cp·Δf).  Giving both inconsistently is an error.  After construction both
            fields hold the resolved values.

    Example:
        >>> cfg = OFDMConfig(num_subcarriers=256, subcarrier_spacing=240e3, carrier_frequency=60e9)
        >>> round(cfg.delay_resolution * 1e9, 3)  # ns
        16.276
    """

    num_subcarriers: int
    subcarrier_spacing: float
    carrier_frequency: float
    num_symbols: int = 1
    cyclic_prefix: float | None = None
    cyclic_prefix_duration: float | None = field(default=None, compare=False)

    def __post_init__(self):
        check_positive_int(self.num_subcarriers, "num_subcarriers")
        check_positive_int(self.num_symbols, "num_symbols")
        check_positive(self.subcarrier_spacing, "subcarrier_spacing")
        check_positive(self.carrier_frequency, "carrier_frequency")
        frac = 0.07 if self.cyclic_prefix is None else float(self.cyclic_prefix)
        if self.cyclic_prefix_duration is not None:
            dur = float(self.cyclic_prefix_duration)
            if not math.isfinite(dur) or dur < 0:
                raise ValueError(f"cyclic_prefix_duration must be >= 0 seconds, got {dur}")
            from_dur = dur * float(self.subcarrier_spacing)
            if self.cyclic_prefix is not None and not math.isclose(frac, from_dur, rel_tol=1e-9, abs_tol=1e-15):
                raise ValueError(f"cyclic_prefix={frac} and cyclic_prefix_duration={dur} s disagree "
                                 f"(duration·Δf = {from_dur}); give only one")
            frac = from_dur
        if not math.isfinite(frac) or not 0.0 <= frac < 1.0:
            raise ValueError(f"cyclic_prefix must be a fraction of T in [0, 1), got {frac}")
        object.__setattr__(self, "num_subcarriers", int(self.num_subcarriers))
        object.__setattr__(self, "num_symbols", int(self.num_symbols))
        object.__setattr__(self, "subcarrier_spacing", float(self.subcarrier_spacing))
        object.__setattr__(self, "carrier_frequency", float(self.carrier_frequency))
        object.__setattr__(self, "cyclic_prefix", frac)
        object.__setattr__(self, "cyclic_prefix_duration", frac / float(self.subcarrier_spacing))

    # -- derived quantities ---------------------------------------------------------------
    @property
    def useful_duration(self) -> float:
        """T = 1/Δf (seconds)."""
        return 1.0 / self.subcarrier_spacing

    @property
    def symbol_duration(self) -> float:
        """T_sym = T + T_cp (seconds)."""
        return self.useful_duration + self.cyclic_prefix_duration

    @property
    def bandwidth(self) -> float:
        """N Δf (Hz)."""
        return self.num_subcarriers * self.subcarrier_spacing

    @property
    def wavelength(self) -> float:
        """λ = c / f_c (metres)."""
        return SPEED_OF_LIGHT / self.carrier_frequency

    @property
    def delay_resolution(self) -> float:
        """1/(N Δf) (seconds)."""
        return 1.0 / self.bandwidth

    @property
    def max_unambiguous_delay(self) -> float:
        """1/Δf (seconds)."""
        return 1.0 / self.subcarrier_spacing

    @property
    def range_resolution(self) -> float:
        """Monostatic range resolution c/(2 N Δf) (metres)."""
        return SPEED_OF_LIGHT * self.delay_resolution / 2.0

    @property
    def max_unambiguous_range(self) -> float:
        """Monostatic unambiguous range c/(2 Δf) (metres)."""
        return SPEED_OF_LIGHT * self.max_unambiguous_delay / 2.0

    @property
    def doppler_resolution(self) -> float:
        """1/(L T_sym) (Hz)."""
        return 1.0 / (self.num_symbols * self.symbol_duration)

    @property
    def max_unambiguous_doppler(self) -> float:
        """|ν| < 1/(2 T_sym) (Hz)."""
        return 1.0 / (2.0 * self.symbol_duration)

    def subcarrier_indices(self, device=None) -> torch.Tensor:
        """n = 0..N-1 as int64 ``(N,)``."""
        return torch.arange(self.num_subcarriers, device=device)

    def subcarrier_frequencies(self, dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
        """Baseband frequencies n·Δf ``(N,)`` in Hz."""
        return torch.arange(self.num_subcarriers, dtype=dtype, device=device) * self.subcarrier_spacing

    def subcarrier_wavelengths(self, dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
        """λ_n = c / (f_c + n Δf) ``(N,)`` for the wideband array model (seed 002, eq. 1)."""
        return SPEED_OF_LIGHT / (self.carrier_frequency + self.subcarrier_frequencies(dtype, device))

    def symbol_times(self, dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
        """Start times l·T_sym ``(L,)`` in seconds."""
        return torch.arange(self.num_symbols, dtype=dtype, device=device) * self.symbol_duration


def _real_input(x, name: str) -> torch.Tensor:
    t = torch.as_tensor(x)
    if t.is_complex():
        raise TypeError(f"{name} must be real")
    if not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    return check_finite(t, name)


def _check_config(config) -> OFDMConfig:
    if not isinstance(config, OFDMConfig):
        raise TypeError(f"config must be an OFDMConfig, got {type(config).__name__}")
    return config




def delay_response(delays, config: OFDMConfig) -> torch.Tensor:
    r"""b(τ)_n = exp(-j 2π n Δf τ) for every subcarrier and path.

    Args:
        delays: ``(..., K)`` seconds.
        config: the OFDM numerology (N, Δf).

    Returns:
        ``(..., N, K)`` complex in the delays' precision/device.  Differentiable in τ.
    """
    _check_config(config)
    tau = _real_input(delays, "delays")
    # phase in float64 arithmetic for the product n·Δf (large numbers), then cast back
    f = config.subcarrier_frequencies(dtype=tau.dtype, device=tau.device)
    phase = -2.0 * math.pi * f.unsqueeze(-1) * tau.unsqueeze(-2)
    return torch.polar(torch.ones_like(phase), phase)


def doppler_response(dopplers, config: OFDMConfig, num_symbols: int | None = None,
                     symbol_period: float | None = None) -> torch.Tensor:
    r"""d(ν)_l = exp(+j 2π ν l T) for every time index l and path, T = T_sym by default.

    Args:
        dopplers: ``(..., K)`` Hz.
        config: the OFDM numerology (T_sym and, unless ``num_symbols`` is given, L).
        symbol_period: T in seconds instead of T_sym, e.g. a sub-frame period T_sf for a
            channel that is constant within each sub-frame (seed 001, eq. 9).

    Returns:
        ``(..., L, K)`` complex.  Differentiable in ν.
    """
    _check_config(config)
    nu = _real_input(dopplers, "dopplers")
    L = config.num_symbols if num_symbols is None else check_positive_int(num_symbols, "num_symbols")
    period = config.symbol_duration if symbol_period is None else float(symbol_period)
    if not (math.isfinite(period) and period > 0):
        raise ValueError(f"symbol_period must be a positive number of seconds, got {symbol_period!r}")
    t = torch.arange(L, dtype=nu.dtype, device=nu.device) * period
    phase = 2.0 * math.pi * t.unsqueeze(-1) * nu.unsqueeze(-2)
    return torch.polar(torch.ones_like(phase), phase)


def orthogonal_pilots(num_tx: int, num_pilots: int, dtype: torch.dtype = torch.complex64,
                      device=None) -> torch.Tensor:
    r"""Unit-modulus orthogonal pilots X (M_t × L_p): the first M_t rows of the L_p-point DFT.

    X_{m,p} = exp(-j 2π m p / L_p), so X X^H = L_p I (full row rank, the best-conditioned
    choice for least squares).  Requires L_p ≥ M_t.
    """
    mt = check_positive_int(num_tx, "num_tx")
    lp = check_positive_int(num_pilots, "num_pilots")
    if lp < mt:
        raise ValueError(f"num_pilots (L_p = {lp}) must be >= num_tx (M_t = {mt}) for full row rank")
    m = torch.arange(mt, dtype=torch.float64)
    p = torch.arange(lp, dtype=torch.float64)
    phase = -2.0 * math.pi * torch.outer(m, p) / lp
    return torch.polar(torch.ones_like(phase), phase).to(dtype=dtype, device=device)


@dataclass(frozen=True, eq=False)
class ResourceGrid:
    r"""A single-stream pilot/data resource grid (L OFDM symbols × N subcarriers).

    Pilots occupy the OFDM symbols ``pilot_symbols`` on every ``pilot_spacing``-th subcarrier
    starting at ``pilot_offset`` (a comb; spacing 1 fills the symbol, as Sionna's
    "kronecker" pattern does for one stream); every other resource element carries data.
    The pilot values are given (e.g. from :func:`~isackit.signals.random_symbols` with the
    caller's generator), never drawn here.

    Attributes:
        config: the :class:`OFDMConfig` (N, L).
        pilot_symbols: indices of the OFDM symbols that carry pilots.
        pilot_spacing: comb spacing in subcarriers (≥ 1).
        pilot_offset: first pilot subcarrier (0 ≤ offset < spacing).
    """

    config: OFDMConfig
    pilot_symbols: tuple[int, ...] = (0,)
    pilot_spacing: int = 1
    pilot_offset: int = 0

    def __post_init__(self):
        _check_config(self.config)
        L = self.config.num_symbols
        ps = tuple(int(i) for i in self.pilot_symbols)
        if len(set(ps)) != len(ps) or any(i < 0 or i >= L for i in ps):
            raise ValueError(f"pilot_symbols must be distinct indices in [0, {L}), got {self.pilot_symbols}")
        sp = check_positive_int(self.pilot_spacing, "pilot_spacing")
        off = int(self.pilot_offset)
        if not 0 <= off < sp:
            raise ValueError(f"pilot_offset must lie in [0, pilot_spacing={sp}), got {off}")
        object.__setattr__(self, "pilot_symbols", tuple(sorted(ps)))
        object.__setattr__(self, "pilot_spacing", sp)
        object.__setattr__(self, "pilot_offset", off)

    @property
    def shape(self) -> tuple[int, int]:
        """(L, N)."""
        return (self.config.num_symbols, self.config.num_subcarriers)

    def pilot_mask(self, device=None) -> torch.Tensor:
        """``(L, N)`` bool, True on pilot resource elements."""
        L, N = self.shape
        mask = torch.zeros(L, N, dtype=torch.bool, device=device)
        if self.pilot_symbols:
            rows = torch.tensor(self.pilot_symbols, device=device)
            cols = torch.zeros(N, dtype=torch.bool, device=device)
            cols[self.pilot_offset::self.pilot_spacing] = True
            mask[rows] = cols
        return mask

    def type_grid(self, device=None) -> torch.Tensor:
        """``(L, N)`` int32 with Sionna's codes: 0 data, 1 pilot."""
        return self.pilot_mask(device).to(torch.int32)

    @property
    def num_pilots(self) -> int:
        return int(self.pilot_mask().sum())

    @property
    def num_data(self) -> int:
        L, N = self.shape
        return L * N - self.num_pilots

    def map(self, data: torch.Tensor, pilots: torch.Tensor) -> torch.Tensor:
        r"""Place symbols on the grid: ``data`` ``(..., num_data)`` and ``pilots``
        ``(..., num_pilots)`` (row-major order over (l, n)) → ``(..., L, N)``.  Differentiable."""
        if data.shape[-1:] != (self.num_data,) or pilots.shape[-1:] != (self.num_pilots,):
            raise ValueError(f"data must be (..., {self.num_data}) and pilots (..., {self.num_pilots}), "
                             f"got {tuple(data.shape)} and {tuple(pilots.shape)}")
        mask = self.pilot_mask(data.device).reshape(-1)
        batch = torch.broadcast_shapes(data.shape[:-1], pilots.shape[:-1])
        dtype = torch.promote_types(data.dtype, pilots.dtype)
        grid = torch.zeros(*batch, mask.numel(), dtype=dtype, device=data.device)
        grid = grid.masked_scatter(~mask, data.to(dtype).expand(*batch, -1).contiguous())
        grid = grid.masked_scatter(mask, pilots.to(dtype).expand(*batch, -1).contiguous())
        return grid.reshape(*batch, *self.shape)

    def extract(self, grid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Inverse of :meth:`map`: ``(..., L, N[, ...])`` → (data ``(..., num_data[, ...])``,
        pilots ``(..., num_pilots[, ...])``).  Trailing dims after (L, N) are carried along
        only if ``grid`` is exactly ``(..., L, N)``."""
        if tuple(grid.shape[-2:]) != self.shape:
            raise ValueError(f"grid must have shape (..., {self.shape[0]}, {self.shape[1]}), got {tuple(grid.shape)}")
        flat = grid.reshape(*grid.shape[:-2], -1)
        mask = self.pilot_mask(grid.device).reshape(-1)
        return flat[..., ~mask], flat[..., mask]

    def to_sionna(self, pilots: torch.Tensor):
        """The equivalent ``sionna.phy.ofdm.ResourceGrid`` (1 transmitter, 1 stream, no guard
        or DC carriers, cyclic prefix rounded to samples of an N-point FFT) with a
        ``PilotPattern`` holding our mask and our ``pilots`` ``(num_pilots,)``."""
        from ._sionna import sionna_module

        sofdm = sionna_module("sionna.phy.ofdm")
        PilotPattern, SionnaResourceGrid = sofdm.PilotPattern, sofdm.ResourceGrid

        if pilots.shape != (self.num_pilots,):
            raise ValueError(f"pilots must have shape ({self.num_pilots},), got {tuple(pilots.shape)}")
        precision = "double" if pilots.dtype == torch.complex128 else "single"
        mask = self.pilot_mask().reshape(1, 1, *self.shape).numpy()
        pattern = PilotPattern(mask, pilots.detach().cpu().reshape(1, 1, -1).numpy(), normalize=False,
                               precision=precision, device="cpu")
        return SionnaResourceGrid(
            num_ofdm_symbols=self.config.num_symbols,
            fft_size=self.config.num_subcarriers,
            subcarrier_spacing=self.config.subcarrier_spacing,
            cyclic_prefix_length=int(round(self.config.cyclic_prefix * self.config.num_subcarriers)),
            pilot_pattern=pattern, precision=precision, device="cpu")
