r"""Multi-path / multi-target MIMO-OFDM channels and received signals.

Channel (conventions.md; seed 001 eq. for H_n; seed 000 for the monostatic model):

    H[l, n] = Σ_k α_k a_r(θ_k) a_t(φ_k)^T exp(-j 2π n Δf τ_k) exp(+j 2π ν_k l T_sym)

with a_r, a_t the (possibly impaired) responses of two :class:`~isackit.impairments.ArrayModel`
objects (unnormalised, |a_m| = 1 for an ideal array), AoA θ_k at the receiver and AoD φ_k
at the transmitter in each array's local frame, ToA τ_k, Doppler ν_k and complex gain α_k.
A transmitted vector f radiates a_t(φ)^T f towards φ.

Shapes: gains, angles, delays, Dopplers ``(..., K)``; channel ``(..., N, M_r, M_t)``, or
``(..., L, N, M_r, M_t)`` when Dopplers (or ``num_symbols``) are given.  A
subcarrier-dependent impairment (seed 002) gives responses ``(..., N, M, K)``; this is
handled automatically by the ArrayModel-level functions.

Narrowband (no OFDM): :func:`narrowband_channel` h = Σ_k α_k a_k and
:func:`miso_received_signal` y_t = (hᵀ f_t) s_t + w_t for T precoded pilot transmissions to a
single-antenna receiver (seed 004).

Received signal: Y[l, n] = H[l, n] F x[l, n] + W[l, n], W ~ CN(0, σ² I), with transmit
symbols x ``(..., [L,] N, S)`` and a precoder F ``(..., M_t, S)`` (S streams).
:func:`paths_received_signal` computes the same Y without forming H: cost
O(L N K (M_r + M_t)) instead of O(L N M_r M_t K), the form to train through (S0: 64
antennas × 256 subcarriers).

Everything is a batched einsum (no loop over paths, subcarriers or symbols), follows the
dtype/device of the inputs and is differentiable with respect to gains, angles, delays,
Dopplers, array-model parameters, symbols and precoders.
"""

from __future__ import annotations

import torch

from .._checks import check_complex, check_finite, check_positive_int
from ..impairments.base import ArrayModel
from .ofdm import OFDMConfig, _check_config, delay_response, doppler_response
from .random import add_noise
from .._dtypes import complex_dtype

__all__ = [
    "path_coefficients",
    "channel_from_responses",
    "mimo_ofdm_channel",
    "monostatic_channel",
    "bistatic_channel",
    "uplink_channel",
    "downlink_channel",
    "narrowband_channel",
    "miso_received_signal",
    "precode",
    "received_signal",
    "paths_received_signal",
]




def _real(x, name: str, like: torch.Tensor | None = None) -> torch.Tensor:
    t = torch.as_tensor(x)
    if t.is_complex():
        raise TypeError(f"{name} must be real")
    if not t.is_floating_point():
        t = t.to(torch.get_default_dtype() if like is None else like.real.dtype)
    if like is not None:
        t = t.to(device=like.device)
    return check_finite(t, name)


def _gains(gains) -> torch.Tensor:
    g = torch.as_tensor(gains)
    if not g.is_complex():
        g = g.to(complex_dtype(g.dtype if g.is_floating_point() else torch.get_default_dtype()))
    if g.ndim < 1:
        raise ValueError(f"gains must have shape (..., K), got a scalar {g!r}")
    return check_finite(g, "gains")


def path_coefficients(gains, delays, config: OFDMConfig, dopplers=None,
                      num_symbols: int | None = None, symbol_period: float | None = None) -> torch.Tensor:
    r"""c[..., (l,) n, k] = α_k exp(-j 2π n Δf τ_k) (exp(+j 2π ν_k l T_sym)).

    Args:
        gains: ``(..., K)`` complex α.
        delays: ``(..., K)`` seconds.
        config: OFDM numerology.
        dopplers: ``(..., K)`` Hz or ``None``.  With Dopplers (or ``num_symbols``) the
            output has an OFDM-symbol axis of length ``num_symbols`` (default config.num_symbols).
        symbol_period: the time step T of that axis instead of T_sym (e.g. a sub-frame
            period: one channel per sub-frame, constant within it).

    Returns:
        ``(..., N, K)`` or ``(..., L, N, K)`` complex.
    """
    _check_config(config)
    g = _gains(gains)
    tau = _real(delays, "delays", like=g)
    K = g.shape[-1]
    if tau.ndim < 1 or tau.shape[-1] != K:
        raise ValueError(f"delays must have shape (..., K) with K = {K} like gains, got {tuple(tau.shape)}")
    b = delay_response(tau.to(g.real.dtype), config).to(g.dtype)  # (..., N, K)
    c = g.unsqueeze(-2) * b
    if dopplers is None and num_symbols is None:
        return c
    L = config.num_symbols if num_symbols is None else check_positive_int(num_symbols, "num_symbols")
    if dopplers is None:
        return c.unsqueeze(-3).expand(*c.shape[:-2], L, *c.shape[-2:])
    nu = _real(dopplers, "dopplers", like=g)
    if nu.ndim < 1 or nu.shape[-1] != K:
        raise ValueError(f"dopplers must have shape (..., K) with K = {K}, got {tuple(nu.shape)}")
    d = doppler_response(nu.to(g.real.dtype), config, L, symbol_period).to(g.dtype)  # (..., L, K)
    return c.unsqueeze(-3) * d.unsqueeze(-2)


def _response(a: torch.Tensor, name: str, K: int, per_subcarrier: bool, N: int) -> torch.Tensor:
    check_complex(a, name)
    need = 3 if per_subcarrier else 2
    if a.ndim < need or a.shape[-1] != K:
        what = "(..., N, M, K)" if per_subcarrier else "(..., M, K)"
        raise ValueError(f"{name} must have shape {what} with K = {K}, got {tuple(a.shape)}")
    if per_subcarrier:
        if a.shape[-3] not in (1, N):
            raise ValueError(f"{name} has {a.shape[-3]} subcarriers, expected {N} (or 1)")
        return a
    return a.unsqueeze(-3)  # (..., 1, M, K): broadcast over subcarriers


def channel_from_responses(gains, delays, rx_response: torch.Tensor, tx_response: torch.Tensor,
                           config: OFDMConfig, dopplers=None, num_symbols: int | None = None,
                           per_subcarrier: bool = False, symbol_period: float | None = None) -> torch.Tensor:
    r"""H[l, n] = Σ_k c[l, n, k] a_r,k a_t,k^T from given array responses.

    Args:
        gains: ``(..., K)``; delays, dopplers: ``(..., K)`` (see :func:`path_coefficients`).
        rx_response: ``(..., M_r, K)`` (or ``(..., N, M_r, K)`` with ``per_subcarrier``).
        tx_response: ``(..., M_t, K)`` (or ``(..., N, M_t, K)`` with ``per_subcarrier``).

    Returns:
        ``(..., N, M_r, M_t)`` or ``(..., L, N, M_r, M_t)``.  Differentiable.
    """
    c = path_coefficients(gains, delays, config, dopplers, num_symbols, symbol_period)
    K, N = c.shape[-1], config.num_subcarriers
    ar = _response(rx_response, "rx_response", K, per_subcarrier, N).to(c.dtype)
    at = _response(tx_response, "tx_response", K, per_subcarrier, N).to(c.dtype)
    if dopplers is not None or num_symbols is not None:
        return torch.einsum("...lnk,...nrk,...ntk->...lnrt", c, ar, at)
    return torch.einsum("...nk,...nrk,...ntk->...nrt", c, ar, at)


def _subcarrier_dependent(model: ArrayModel) -> bool:
    return any(getattr(imp, "subcarrier_dependent", False) for imp in model.impairments)


def _responses(rx_array, tx_array, aoa, aod, aoa_elevation, aod_elevation, config, like):
    for name, m in (("rx_array", rx_array), ("tx_array", tx_array)):
        if m is not None and not isinstance(m, ArrayModel):
            raise TypeError(f"{name} must be an ArrayModel, got {type(m).__name__}")
    wide = any(m is not None and _subcarrier_dependent(m) for m in (rx_array, tx_array))
    sc = config.subcarrier_indices(device=like.device) if wide else None

    def one(model, az, el, name):
        if model is None:  # single antenna: response 1 for every path
            return torch.ones(*like.shape[:-1], *((1,) if wide else ()), 1, like.shape[-1],
                              dtype=like.dtype, device=like.device)
        az = _real(az, name, like=like)
        el = None if el is None else _real(el, name + "_elevation", like=like)
        if _subcarrier_dependent(model):
            return model.steering(az, el, subcarriers=sc)
        a = model.steering(az, el)
        return a.unsqueeze(-3) if wide else a

    return one(rx_array, aoa, aoa_elevation, "aoa"), one(tx_array, aod, aod_elevation, "aod"), wide


def mimo_ofdm_channel(rx_array: ArrayModel, tx_array: ArrayModel, aoa, aod, delays, gains,
                      config: OFDMConfig, dopplers=None, *, aoa_elevation=None, aod_elevation=None,
                      num_symbols: int | None = None, symbol_period: float | None = None) -> torch.Tensor:
    r"""Bistatic / general MIMO-OFDM channel from path parameters and two array models.

    H[l, n] = Σ_k α_k a_r(θ_k) a_t(φ_k)^T exp(-j2π n Δf τ_k) exp(j2π ν_k l T_sym), with the
    TRUE responses of ``rx_array`` and ``tx_array`` (their impairments included).

    Args:
        rx_array, tx_array: :class:`ArrayModel` of the receiver and the transmitter.
        aoa, aod: ``(..., K)`` azimuths (radians) in the receive / transmit local frames.
        delays: ``(..., K)`` ToA in seconds; gains ``(..., K)`` complex.
        config: OFDM numerology.
        dopplers: ``(..., K)`` Hz; when given (or ``num_symbols``) the output has an L axis.
        aoa_elevation, aod_elevation: ``(..., K)`` or ``None`` (= 0).
        symbol_period: time step of the L axis instead of T_sym (seed 001's sub-frames:
            ``num_symbols = S``, ``symbol_period = T_sf`` gives one channel per sub-frame).

    Impairments of either model that act on the frequency-domain channel (they provide
    ``apply_frequency``, e.g. :class:`~isackit.impairments.TimingOffset`: H_n ← e^{-j2π nΔf δ} H_n)
    are applied to H after the synthesis.

    Returns:
        ``(..., N, M_r, M_t)`` or ``(..., L, N, M_r, M_t)`` complex.  Differentiable.

    Example:
        >>> from isackit.geometry import ula
        >>> cfg = OFDMConfig(16, 30e3, 3.5e9)
        >>> H = mimo_ofdm_channel(ArrayModel(ula(4)), ArrayModel(ula(2)), torch.tensor([0.1]),
        ...                       torch.tensor([-0.2]), torch.tensor([1e-6]), torch.tensor([1 + 0j]), cfg)
        >>> H.shape
        torch.Size([16, 4, 2])
    """
    g = _gains(gains)
    ar, at, wide = _responses(rx_array, tx_array, aoa, aod, aoa_elevation, aod_elevation, config, g)
    H = channel_from_responses(g, delays, ar, at, config, dopplers, num_symbols, per_subcarrier=wide,
                               symbol_period=symbol_period)
    timed = dopplers is not None or num_symbols is not None
    return _frequency_impairments(H, (rx_array, tx_array), config, timed)


def _frequency_impairments(H: torch.Tensor, models, config: OFDMConfig, timed: bool) -> torch.Tensor:
    """Apply impairments that act on the frequency-domain channel rather than on the steering
    matrix (those with an ``apply_frequency(H, subcarrier_frequencies, axis)`` method, e.g. a
    timing offset), along the subcarrier axis of H.  Their parameters broadcast with the
    batch dims, so an OFDM-symbol axis is moved behind the subcarrier axis meanwhile."""
    imps = [imp for model in models if model is not None for imp in model.impairments
            if callable(getattr(imp, "apply_frequency", None))]
    if not imps:
        return H
    f = config.subcarrier_frequencies(dtype=H.real.dtype, device=H.device)
    X = H.movedim(-4, -1) if timed else H  # (..., N, M_r, M_t, L): subcarrier axis -4
    for imp in imps:
        X = imp.apply_frequency(X, f, axis=-4 if timed else -3)
    return X.movedim(-1, -4) if timed else X


def monostatic_channel(rx_array: ArrayModel, tx_array: ArrayModel, angles, delays, gains,
                       config: OFDMConfig, dopplers=None, *, elevation=None,
                       num_symbols: int | None = None) -> torch.Tensor:
    r"""Monostatic radar channel: θ_k = φ_k (co-located Tx and Rx arrays, same local frame).

    H[l, n] = Σ_k β_k a_r(θ_k) a_t(θ_k)^T b(τ_k)_n d(ν_k)_l with τ_k = 2 R_k / c (seed 000).
    Shapes as :func:`mimo_ofdm_channel`.
    """
    return mimo_ofdm_channel(rx_array, tx_array, angles, angles, delays, gains, config, dopplers,
                             aoa_elevation=elevation, aod_elevation=elevation, num_symbols=num_symbols)


def bistatic_channel(rx_array: ArrayModel, tx_array: ArrayModel, aoa, aod, delays, gains,
                     config: OFDMConfig, dopplers=None, *, aoa_elevation=None, aod_elevation=None,
                     num_symbols: int | None = None, symbol_period: float | None = None) -> torch.Tensor:
    r"""Bistatic radar channel (separate Tx and Rx arrays, seed 001): AoA θ_k at the receiver,
    AoD φ_k at the transmitter, τ_k = (R_tx,k + R_rx,k)/c (or the excess delay over the direct
    path where a system says so).  Same maths and shapes as :func:`mimo_ofdm_channel`
    (``symbol_period = T_sf`` with ``num_symbols = S``: one channel per sub-frame)."""
    return mimo_ofdm_channel(rx_array, tx_array, aoa, aod, delays, gains, config, dopplers,
                             aoa_elevation=aoa_elevation, aod_elevation=aod_elevation,
                             num_symbols=num_symbols, symbol_period=symbol_period)


def uplink_channel(rx_array: ArrayModel, aoa, delays, gains, config: OFDMConfig, dopplers=None, *,
                   elevation=None, num_symbols: int | None = None) -> torch.Tensor:
    r"""Single-antenna transmitter → array (M_t = 1): h[l, n] = Σ_k α_k a_r(θ_k) b_n d_l.

    Returns ``(..., N, M_r)`` or ``(..., L, N, M_r)`` (the M_t = 1 axis dropped).
    """
    return mimo_ofdm_channel(rx_array, None, aoa, None, delays, gains, config, dopplers,
                             aoa_elevation=elevation, num_symbols=num_symbols)[..., 0]


def downlink_channel(tx_array: ArrayModel, aod, delays, gains, config: OFDMConfig, dopplers=None, *,
                     elevation=None, num_symbols: int | None = None) -> torch.Tensor:
    r"""Array → single-antenna receiver (M_r = 1): h[l, n] = Σ_k α_k a_t(φ_k) b_n d_l, so that
    the UE receives y = h^T f x + w.

    Returns ``(..., N, M_t)`` or ``(..., L, N, M_t)`` (the M_r = 1 axis dropped).
    """
    return mimo_ofdm_channel(None, tx_array, None, aod, delays, gains, config, dopplers,
                             aod_elevation=elevation, num_symbols=num_symbols)[..., 0, :]


def narrowband_channel(gains, response: torch.Tensor) -> torch.Tensor:
    r"""Narrowband multi-path channel of one array: h = Σ_k α_k a_k.

    Args:
        gains: α ``(..., K)`` complex path gains.
        response: ``(..., M, K)`` the array's (possibly impaired) response towards each path,
            e.g. ``ArrayModel.steering(angles)``.

    Returns:
        ``(..., M)`` (the common complex dtype).  Differentiable.  For a transmitting array
        the receiver sees hᵀ f; for a receiving one, h s.
    """
    check_complex(response, "response")
    g = _gains(gains)
    if response.ndim < 2 or g.shape[-1] != response.shape[-1]:
        raise ValueError(f"gains (..., K) and response (..., M, K) must share K; got {tuple(g.shape)} and "
                         f"{tuple(response.shape)}")
    dtype = torch.promote_types(g.dtype, response.dtype)
    return (response.to(dtype) @ g.to(dtype).unsqueeze(-1)).squeeze(-1)


def miso_received_signal(channel: torch.Tensor, precoders: torch.Tensor, pilots: torch.Tensor | None = None, *,
                         noise_variance=None, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""T precoded pilot transmissions at a single-antenna receiver: y_t = (hᵀ f_t) s_t + w_t.

    The narrowband downlink of seed 004 (eq. 2): y = (Fᵀ h) ⊙ s + w, w ~ CN(0, σ² I_T), with
    F = [f_1, …, f_T] one precoder per transmission.

    Args:
        channel: h ``(..., M_t)`` (e.g. :func:`narrowband_channel`).
        precoders: F ``(..., M_t, T)`` (broadcast against the channel's batch dims).
        pilots: s ``(..., T)`` or ``None`` (s = 1).
        noise_variance: σ² (float or a tensor matching the batch dims) or ``None`` (noise-free);
            then ``generator`` is required.

    Returns:
        ``(..., T)``.  Differentiable in h, F and s.
    """
    check_complex(channel, "channel")
    check_complex(precoders, "precoders")
    if precoders.ndim < 2 or channel.shape[-1] != precoders.shape[-2]:
        raise ValueError(f"channel (..., M_t) and precoders (..., M_t, T) must share M_t; got "
                         f"{tuple(channel.shape)} and {tuple(precoders.shape)}")
    y = torch.einsum("...mt,...m->...t", precoders, channel.to(precoders.dtype))
    if pilots is not None:
        check_complex(pilots, "pilots")
        y = y * pilots.to(y.dtype)
    return _noise(y, noise_variance, generator)


def precode(precoder: torch.Tensor, symbols: torch.Tensor, grid_dims: int = 1) -> torch.Tensor:
    r"""Transmit vectors F x per resource element.

    Args:
        precoder: ``(..., M_t, S)`` (batch dims only; the same F on every resource element).
        symbols: ``(..., *grid, S)`` with ``grid`` = (N,) (``grid_dims=1``) or (L, N) (2).

    Returns:
        ``(..., *grid, M_t)``.  Differentiable.
    """
    check_complex(precoder, "precoder")
    check_complex(symbols, "symbols")
    if grid_dims not in (1, 2):
        raise ValueError(f"grid_dims must be 1 ((N,)) or 2 ((L, N)), got {grid_dims}")
    if precoder.ndim < 2 or symbols.ndim < grid_dims + 1 or precoder.shape[-1] != symbols.shape[-1]:
        raise ValueError(f"precoder (..., M_t, S) and symbols (..., *grid, S) must share S; got "
                         f"{tuple(precoder.shape)} and {tuple(symbols.shape)}")
    F = precoder.reshape(*precoder.shape[:-2], *([1] * grid_dims), *precoder.shape[-2:])
    return (F @ symbols.unsqueeze(-1).to(F.dtype)).squeeze(-1)


def _noise(y, noise_variance, generator):
    if noise_variance is None:
        return y
    if generator is None:
        raise ValueError("a generator is required to add noise (randomness is explicit)")
    return add_noise(y, noise_variance, generator)


def received_signal(H: torch.Tensor, symbols: torch.Tensor, precoder: torch.Tensor | None = None, *,
                    grid_dims: int = 1, noise_variance=None,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Y[l, n] = H[l, n] F x[l, n] + W[l, n].

    Args:
        H: ``(..., *grid, M_r, M_t)`` with grid (N,) or (L, N) (``grid_dims`` 1 or 2).
        symbols: ``(..., *grid, S)`` transmit symbols; without ``precoder`` they are the
            transmit vectors themselves (S = M_t).
        precoder: ``(..., M_t, S)`` or ``None``.  Its leading dims are BATCH dims (the same F
            on every resource element): a per-trial precoder ``(B, M_t, S)`` goes with
            symbols ``(B, *grid, S)`` (do not insert singleton grid dims yourself).
        noise_variance: σ² (float, or a tensor matching the leading batch dims), or ``None``
            for no noise; then ``generator`` is required.

    Returns:
        ``(..., *grid, M_r)``.  Differentiable in H, symbols, precoder.
    """
    check_complex(H, "H")
    if grid_dims not in (1, 2):
        raise ValueError(f"grid_dims must be 1 ((N,)) or 2 ((L, N)), got {grid_dims}")
    v = symbols if precoder is None else precode(precoder, symbols, grid_dims)
    check_complex(v, "symbols")
    if H.ndim < grid_dims + 2 or v.ndim < grid_dims + 1:
        raise ValueError(f"H must be (..., *grid, M_r, M_t) and symbols (..., *grid, S), got "
                         f"{tuple(H.shape)} and {tuple(symbols.shape)}")
    if tuple(H.shape[-2 - grid_dims:-2]) != tuple(v.shape[-1 - grid_dims:-1]) or H.shape[-1] != v.shape[-1]:
        raise ValueError(f"grid/M_t mismatch: H {tuple(H.shape)} vs transmit vectors {tuple(v.shape)} "
                         f"(grid_dims={grid_dims})")
    y = (H @ v.unsqueeze(-1).to(H.dtype)).squeeze(-1)
    return _noise(y, noise_variance, generator)


def paths_received_signal(gains, delays, rx_response: torch.Tensor, tx_response: torch.Tensor,
                          config: OFDMConfig, symbols: torch.Tensor, precoder: torch.Tensor | None = None,
                          dopplers=None, *, num_symbols: int | None = None, per_subcarrier: bool = False,
                          noise_variance=None, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Y[l, n] = Σ_k c[l, n, k] a_r,k (a_t,k^T F x[l, n]) + W, without forming H.

    Same result as :func:`received_signal` on :func:`channel_from_responses` but with cost
    O(L N K (M_r + M_t)); use it inside training loops.  It takes responses, not array
    models: a frequency-domain impairment such as a timing offset δ is included by adding δ
    to the delays (which is what :func:`mimo_ofdm_channel` does to H).

    Args:
        gains, delays, dopplers: ``(..., K)``; responses as :func:`channel_from_responses`.
        symbols: ``(..., *grid, S)`` (grid = (N,) or, with Dopplers/num_symbols, (L, N)).
        precoder: ``(..., M_t, S)`` or ``None`` (then symbols are transmit vectors, S = M_t).

    Returns:
        ``(..., *grid, M_r)``.  Differentiable.
    """
    c = path_coefficients(gains, delays, config, dopplers, num_symbols)
    K, N = c.shape[-1], config.num_subcarriers
    ar = _response(rx_response, "rx_response", K, per_subcarrier, N).to(c.dtype)
    at = _response(tx_response, "tx_response", K, per_subcarrier, N).to(c.dtype)
    timed = dopplers is not None or num_symbols is not None
    grid_dims = 2 if timed else 1
    if precoder is not None and not per_subcarrier:
        # one F on every resource element: a_t,k^T F x = (a_t,k^T F) x, i.e. the K × S matrix
        # T = A_t^T F once, then T x per resource element — O(K M_t S + N K S), not O(N M_t K)
        check_complex(precoder, "precoder")
        check_complex(symbols, "symbols")
        if precoder.ndim < 2 or precoder.shape[-2] != at.shape[-2] or symbols.ndim < grid_dims + 1 \
                or symbols.shape[-1] != precoder.shape[-1]:
            raise ValueError(f"precoder (..., M_t = {at.shape[-2]}, S) and symbols (..., *grid, S) must "
                             f"match; got {tuple(precoder.shape)} and {tuple(symbols.shape)}")
        T = at[..., 0, :, :].transpose(-1, -2) @ precoder.to(c.dtype)          # (..., K, S)
        if timed:
            T = T.unsqueeze(-3)
        x = symbols.to(c.dtype)
        # one stream (S = 1): z = x T^T is an outer product, not a product with inner dim 1
        z = x * T.transpose(-1, -2) if x.shape[-1] == 1 else x @ T.transpose(-1, -2)   # (..., *grid, K)
        w = c * z
        if ar.shape[-2] == 1:  # one receive antenna (a UE): a sum over the paths
            a = ar[..., 0, 0, :].unsqueeze(-2)
            y = (w * (a.unsqueeze(-3) if timed else a)).sum(-1, keepdim=True)
        elif timed:
            y = torch.einsum("...nrk,...lnk->...lnr", ar, w)
        else:
            # Y^T = A_r W^T: one (batched) product whose result is stored antenna-major, so the
            # returned (..., N, M_r) is a transposed view and a caller that wants (..., M_r, N)
            # gets it contiguous by a transpose, without a copy (the OMP's products fold its
            # batch into one GEMM only for a contiguous observation)
            y = (ar[..., 0, :, :] @ w.transpose(-1, -2)).transpose(-1, -2)
        return _noise(y, noise_variance, generator)
    v = symbols if precoder is None else precode(precoder, symbols, grid_dims)
    check_complex(v, "symbols")
    if v.shape[-1] != at.shape[-2]:
        raise ValueError(f"transmit vectors have {v.shape[-1]} entries but the transmit array has "
                         f"{at.shape[-2]} elements")
    v = v.to(c.dtype)
    if timed:
        z = torch.einsum("...ntk,...lnt->...lnk", at, v)
        y = torch.einsum("...nrk,...lnk->...lnr", ar, c * z)
    else:
        z = torch.einsum("...ntk,...nt->...nk", at, v)
        y = torch.einsum("...nrk,...nk->...nr", ar, c * z)
    return _noise(y, noise_variance, generator)
