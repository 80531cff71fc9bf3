"""Tests for isackit.signals.ofdm and isackit.signals.channels."""

import math

import numpy as np
import pytest
import torch

from isackit.constants import SPEED_OF_LIGHT
from isackit.geometry import ula, ura
from isackit.impairments import ArrayModel, Impairment
from isackit.signals import (
    OFDMConfig,
    bistatic_channel,
    ResourceGrid,
    channel_from_responses,
    complex_normal,
    delay_response,
    doppler_response,
    downlink_channel,
    mimo_ofdm_channel,
    monostatic_channel,
    orthogonal_pilots,
    paths_received_signal,
    received_signal,
    uplink_channel,
)

C128 = torch.complex128


class _GainPhase(Impairment):
    """Test-local gain-phase impairment: A -> diag(g) A."""

    def __init__(self, g):
        super().__init__(known=False)
        self.g = g

    def apply(self, A, azimuth, elevation, subcarriers=None):
        return self.g.to(A.dtype).unsqueeze(-1) * A


class _SubcarrierPhase(Impairment):
    """Test-local subcarrier-dependent phase: element m, subcarrier n gets exp(j c m n)."""

    subcarrier_dependent = True

    def __init__(self, c=0.01):
        super().__init__(known=False)
        self.c = c

    def apply(self, A, azimuth, elevation, subcarriers=None):
        m = torch.arange(A.shape[-2], device=A.device, dtype=A.real.dtype)
        n = subcarriers.to(A.real.dtype)
        ph = self.c * n.reshape(-1, 1, 1) * m.reshape(1, -1, 1)  # (N, M, 1)
        return A * torch.polar(torch.ones_like(ph), ph)


def _cfg(N=8, L=3):
    return OFDMConfig(num_subcarriers=N, subcarrier_spacing=120e3, carrier_frequency=28e9, num_symbols=L)


# ---------------------------------------------------------------------------- OFDMConfig
def test_config_derived_quantities():
    cfg = OFDMConfig(256, 240e3, 60e9, num_symbols=14, cyclic_prefix=0.07)
    assert cfg.useful_duration == pytest.approx(1 / 240e3)
    assert cfg.cyclic_prefix_duration == pytest.approx(0.07 / 240e3)
    assert cfg.symbol_duration == pytest.approx(1.07 / 240e3)
    assert cfg.delay_resolution == pytest.approx(1 / (256 * 240e3))
    assert cfg.max_unambiguous_delay == pytest.approx(1 / 240e3)
    assert cfg.range_resolution == pytest.approx(SPEED_OF_LIGHT / (2 * 256 * 240e3))
    assert cfg.wavelength == pytest.approx(SPEED_OF_LIGHT / 60e9)
    assert cfg.doppler_resolution == pytest.approx(1 / (14 * cfg.symbol_duration))
    f = cfg.subcarrier_frequencies()
    assert f.shape == (256,) and f[3].item() == pytest.approx(3 * 240e3)
    lam = cfg.subcarrier_wavelengths()
    assert lam[5].item() == pytest.approx(SPEED_OF_LIGHT / (60e9 + 5 * 240e3))
    same = OFDMConfig(256, 240e3, 60e9, num_symbols=14, cyclic_prefix_duration=0.07 / 240e3)
    assert same.cyclic_prefix == pytest.approx(0.07)


@pytest.mark.parametrize("kwargs", [
    dict(num_subcarriers=0, subcarrier_spacing=1e3, carrier_frequency=1e9),
    dict(num_subcarriers=-4, subcarrier_spacing=1e3, carrier_frequency=1e9),
    dict(num_subcarriers=4, subcarrier_spacing=-1e3, carrier_frequency=1e9),
    dict(num_subcarriers=4, subcarrier_spacing=float("nan"), carrier_frequency=1e9),
    dict(num_subcarriers=4, subcarrier_spacing=1e3, carrier_frequency=1e9, cyclic_prefix=1.5),
    dict(num_subcarriers=4, subcarrier_spacing=1e3, carrier_frequency=1e9, num_symbols=0),
    dict(num_subcarriers=4, subcarrier_spacing=1e3, carrier_frequency=1e9, cyclic_prefix=0.1,
         cyclic_prefix_duration=1e-3),
])
def test_config_validation(kwargs):
    with pytest.raises(ValueError):
        OFDMConfig(**kwargs)


def test_config_is_frozen():
    cfg = _cfg()
    with pytest.raises(AttributeError):
        cfg.num_subcarriers = 3


def test_delay_and_doppler_responses():
    cfg = _cfg(N=16, L=4)
    tau = torch.tensor([[1e-7, 3.3e-7]], dtype=torch.float64)
    b = delay_response(tau, cfg)
    n = np.arange(16)[:, None]
    ref = np.exp(-2j * np.pi * n * 120e3 * tau.numpy()[0][None, :])
    assert b.shape == (1, 16, 2) and np.allclose(b[0].numpy(), ref, atol=1e-12)
    nu = torch.tensor([500.0, -1200.0], dtype=torch.float64)
    d = doppler_response(nu, cfg)
    l = np.arange(4)[:, None]
    assert np.allclose(d.numpy(), np.exp(2j * np.pi * nu.numpy()[None] * l * cfg.symbol_duration), atol=1e-12)
    # unambiguous delay 1/Δf: a delay shifted by 1/Δf gives the same response
    assert torch.allclose(delay_response(tau + 1 / 120e3, cfg), b, atol=1e-9)
    assert delay_response(tau.float(), cfg).dtype == torch.complex64


def test_orthogonal_pilots():
    X = orthogonal_pilots(3, 5, C128)
    assert torch.allclose(X @ X.conj().T, 5 * torch.eye(3, dtype=C128))
    assert torch.allclose(X.abs(), torch.ones(3, 5, dtype=torch.float64))
    with pytest.raises(ValueError):
        orthogonal_pilots(4, 3)


# --------------------------------------------------------------------------- resource grid
def test_resource_grid_map_extract_and_sionna(gen):
    cfg = OFDMConfig(12, 30e3, 3.5e9, num_symbols=5)
    rg = ResourceGrid(cfg, pilot_symbols=(1, 3), pilot_spacing=3, pilot_offset=1)
    assert rg.num_pilots == 2 * 4 and rg.num_data == 60 - 8
    mask = rg.pilot_mask()
    assert mask[1, 1] and mask[3, 10] and not mask[1, 0] and not mask[0].any()
    data = complex_normal((2, rg.num_data), gen)
    pilots = complex_normal((rg.num_pilots,), gen)
    grid = rg.map(data, pilots)
    assert grid.shape == (2, 5, 12)
    d, p = rg.extract(grid)
    assert torch.equal(d, data) and torch.equal(p, pilots.expand(2, -1))
    srg = rg.to_sionna(pilots)
    assert torch.equal(srg.build_type_grid()[0, 0].to(torch.int32), rg.type_grid())
    assert torch.allclose(srg.pilot_pattern.pilots[0, 0].to(torch.complex64), pilots)
    with pytest.raises(ValueError):
        ResourceGrid(cfg, pilot_symbols=(7,))
    with pytest.raises(ValueError):
        ResourceGrid(cfg, pilot_spacing=2, pilot_offset=2)
    with pytest.raises(ValueError):
        rg.map(data[..., :-1], pilots)


# ------------------------------------------------------------------------------- channels
def _reference_channel(g, ar, at, tau, nu, cfg, per_subcarrier=False):
    """Loop reference: H[l, n, r, t] = Σ_k g_k ar[(n,) r, k] at[(n,) t, k] e^{-j2πnΔfτ} e^{j2πν l T_sym}."""
    g, ar, at, tau, nu = (x.detach().numpy() for x in (g, ar, at, tau, nu))
    L, N = cfg.num_symbols, cfg.num_subcarriers
    Mr, Mt = ar.shape[-2], at.shape[-2]
    H = np.zeros((L, N, Mr, Mt), dtype=complex)
    for l in range(L):
        for n in range(N):
            for r in range(Mr):
                for t in range(Mt):
                    for k in range(len(g)):
                        a_r = ar[n, r, k] if per_subcarrier else ar[r, k]
                        a_t = at[n, t, k] if per_subcarrier else at[t, k]
                        H[l, n, r, t] += (g[k] * a_r * a_t * np.exp(-2j * np.pi * n * cfg.subcarrier_spacing * tau[k])
                                          * np.exp(2j * np.pi * nu[k] * l * cfg.symbol_duration))
    return H


def _paths(gen, K=3, B=()):
    aoa = (torch.rand(*B, K, generator=gen, dtype=torch.float64) - 0.5) * 2
    aod = (torch.rand(*B, K, generator=gen, dtype=torch.float64) - 0.5) * 2
    tau = torch.rand(*B, K, generator=gen, dtype=torch.float64) * 2e-6
    nu = (torch.rand(*B, K, generator=gen, dtype=torch.float64) - 0.5) * 4e3
    g = complex_normal((*B, K), gen, C128)
    return aoa, aod, tau, nu, g


def test_channel_matches_loop_reference_with_impaired_arrays(gen):
    cfg = _cfg(N=6, L=3)
    gains_rx = torch.polar(torch.tensor([1.0, 0.8, 1.2, 0.9], dtype=torch.float64),
                           torch.tensor([0.0, 0.3, -0.2, 1.0], dtype=torch.float64))
    rx = ArrayModel(ula(4), [_GainPhase(gains_rx)])
    tx = ArrayModel(ura(1, 3))
    aoa, aod, tau, nu, g = _paths(gen)
    H = mimo_ofdm_channel(rx, tx, aoa, aod, tau, g, cfg, nu)
    assert H.shape == (3, 6, 4, 3) and H.dtype == C128
    ref = _reference_channel(g, rx.steering(aoa), tx.steering(aod), tau, nu, cfg)
    assert np.allclose(H.numpy(), ref, rtol=1e-12, atol=1e-12)
    # without Dopplers the L axis is dropped and equals the l = 0 slice
    H0 = mimo_ofdm_channel(rx, tx, aoa, aod, tau, g, cfg)
    assert H0.shape == (6, 4, 3) and torch.allclose(H0, H[0])


def test_channel_subcarrier_dependent_impairment(gen):
    cfg = _cfg(N=5, L=2)
    rx = ArrayModel(ula(3), [_SubcarrierPhase(0.05)])
    tx = ArrayModel(ula(2))
    aoa, aod, tau, nu, g = _paths(gen, K=2)
    H = mimo_ofdm_channel(rx, tx, aoa, aod, tau, g, cfg, nu)
    ar = rx.steering(aoa, subcarriers=torch.arange(5))
    at = tx.steering(aod).unsqueeze(0).expand(5, -1, -1)
    ref = _reference_channel(g, ar, at, tau, nu, cfg, per_subcarrier=True)
    assert np.allclose(H.numpy(), ref, rtol=1e-12, atol=1e-12)


def test_received_signal_matches_loop(gen):
    cfg = _cfg(N=5, L=2)
    rx, tx = ArrayModel(ula(3)), ArrayModel(ula(4))
    aoa, aod, tau, nu, g = _paths(gen)
    H = mimo_ofdm_channel(rx, tx, aoa, aod, tau, g, cfg, nu)
    x = complex_normal((2, 5, 2), gen, C128)  # (L, N, S)
    F = complex_normal((4, 2), gen, C128)
    Y = received_signal(H, x, F, grid_dims=2)
    Hn, xn, Fn = H.numpy(), x.numpy(), F.numpy()
    ref = np.zeros((2, 5, 3), dtype=complex)
    for l in range(2):
        for n in range(5):
            for r in range(3):
                for t in range(4):
                    for s in range(2):
                        ref[l, n, r] += Hn[l, n, r, t] * Fn[t, s] * xn[l, n, s]
    assert np.allclose(Y.numpy(), ref, rtol=1e-12, atol=1e-12)
    # the path-domain version never forms H and gives the same signal
    Yp = paths_received_signal(g, tau, rx.steering(aoa), tx.steering(aod), cfg, x, F, nu)
    assert torch.allclose(Yp, Y, rtol=1e-12, atol=1e-12)
    # without an L axis
    H0 = mimo_ofdm_channel(rx, tx, aoa, aod, tau, g, cfg)
    Y0 = received_signal(H0, x[0], F)
    Yp0 = paths_received_signal(g, tau, rx.steering(aoa), tx.steering(aod), cfg, x[0], F)
    assert torch.allclose(Y0, Y[0]) and torch.allclose(Yp0, Y0)


@pytest.mark.parametrize("timed", [False, True])
def test_paths_received_signal_one_stream_one_antenna(gen, timed):
    """The factored precoded path with S = 1 and a single receive antenna (a UE) == H F x."""
    cfg = _cfg(N=5, L=2)
    tx = ArrayModel(ula(4))
    aoa, aod, tau, nu, g = _paths(gen, K=3, B=(2,))
    ones = torch.ones(2, 1, 3, dtype=C128)
    at = tx.steering(aod)
    x = complex_normal((2, 2, 5, 1) if timed else (2, 5, 1), gen, C128)
    F = complex_normal((2, 4, 1), gen, C128)
    H = channel_from_responses(g, tau, ones, at, cfg, nu if timed else None)
    ref = received_signal(H, x, F, grid_dims=2 if timed else 1)
    Y = paths_received_signal(g, tau, ones, at, cfg, x, F, nu if timed else None)
    assert Y.shape == ref.shape and torch.allclose(Y, ref, rtol=1e-12, atol=1e-12)
    # several receive antennas with one stream (the monostatic sensing case)
    rx = ArrayModel(ula(3))
    H = channel_from_responses(g, tau, rx.steering(aoa), at, cfg, nu if timed else None)
    Y = paths_received_signal(g, tau, rx.steering(aoa), at, cfg, x, F, nu if timed else None)
    assert torch.allclose(Y, received_signal(H, x, F, grid_dims=2 if timed else 1), rtol=1e-12, atol=1e-12)


def test_received_signal_noise(gen):
    cfg = _cfg(N=64, L=1)
    H = torch.zeros(64, 8, 2, dtype=C128)
    x = torch.ones(64, 2, dtype=C128)
    Y = received_signal(H, x, noise_variance=0.3, generator=gen)
    assert abs((Y.abs() ** 2).mean().item() - 0.3) < 0.3 * 5 / math.sqrt(512)
    with pytest.raises(ValueError):
        received_signal(H, x, noise_variance=0.3)  # no generator


def test_batch_dims_equal_one_at_a_time(gen):
    cfg = _cfg(N=4, L=2)
    rx, tx = ArrayModel(ula(3)), ArrayModel(ula(2))
    aoa, aod, tau, nu, g = _paths(gen, K=2, B=(2, 3))
    H = mimo_ofdm_channel(rx, tx, aoa, aod, tau, g, cfg, nu)
    assert H.shape == (2, 3, 2, 4, 3, 2)
    x = complex_normal((2, 3, 2, 4, 1), gen, C128)
    F = complex_normal((2, 3, 2, 1), gen, C128)
    Y = paths_received_signal(g, tau, rx.steering(aoa), tx.steering(aod), cfg, x, F, nu)
    for i in range(2):
        for j in range(3):
            Hij = mimo_ofdm_channel(rx, tx, aoa[i, j], aod[i, j], tau[i, j], g[i, j], cfg, nu[i, j])
            assert torch.allclose(H[i, j], Hij)
            Yij = received_signal(Hij, x[i, j], F[i, j], grid_dims=2)
            assert torch.allclose(Y[i, j], Yij)


def test_monostatic_uplink_downlink_helpers(gen):
    cfg = _cfg(N=4, L=1)
    rx, tx = ArrayModel(ula(3)), ArrayModel(ula(5))
    aoa, aod, tau, nu, g = _paths(gen)
    Hm = monostatic_channel(rx, tx, aoa, tau, g, cfg)
    assert torch.allclose(Hm, mimo_ofdm_channel(rx, tx, aoa, aoa, tau, g, cfg))
    assert torch.equal(bistatic_channel(rx, tx, aoa, aod, tau, g, cfg, nu),
                       mimo_ofdm_channel(rx, tx, aoa, aod, tau, g, cfg, nu))
    hu = uplink_channel(rx, aoa, tau, g, cfg, nu)
    assert hu.shape == (1, 4, 3)
    ref = (rx.steering(aoa).unsqueeze(-3) * (g.unsqueeze(-2) * delay_response(tau, cfg)).unsqueeze(-2)).sum(-1)
    assert torch.allclose(hu[0], ref)
    hd = downlink_channel(tx, aod, tau, g, cfg)
    assert hd.shape == (4, 5)
    assert torch.allclose(hd, mimo_ofdm_channel(ArrayModel(ula(1)), tx, torch.zeros(3, dtype=torch.float64),
                                                aod, tau, g, cfg)[:, 0, :])


def test_dtype_and_device_follow(gen, device):
    cfg = _cfg(N=4, L=1)
    rx, tx = ArrayModel(ula(3)), ArrayModel(ula(2))
    aoa = torch.tensor([0.1, 0.2], device=device)
    g = torch.tensor([1 + 1j, 0.5], dtype=torch.complex64, device=device)
    tau = torch.tensor([1e-7, 2e-7], device=device)
    H = mimo_ofdm_channel(rx, tx, aoa, aoa, tau, g, cfg)
    assert H.dtype == torch.complex64 and H.device.type == device.type


def test_gradcheck_channel():
    cfg = _cfg(N=3, L=2)
    rx, tx = ArrayModel(ula(2)), ArrayModel(ula(2))
    aoa = torch.tensor([0.1, -0.4], dtype=torch.float64, requires_grad=True)
    tau = torch.tensor([1e-7, 4e-7], dtype=torch.float64)
    nu = torch.tensor([100.0, -300.0], dtype=torch.float64, requires_grad=True)
    g = torch.tensor([1 + 0.5j, -0.3 + 0.2j], dtype=C128, requires_grad=True)
    t_us = (tau * 1e6).requires_grad_(True)  # delay in µs keeps finite differences well scaled

    def f(aoa, t_us, nu, g):
        return mimo_ofdm_channel(rx, tx, aoa, aoa + 0.2, t_us * 1e-6, g, cfg, nu)

    assert torch.autograd.gradcheck(f, (aoa, t_us, nu, g))


@pytest.mark.parametrize("with_doppler", [True, False])
def test_timing_offset_equals_delay_shift(gen, with_doppler):
    """A frequency-domain impairment (timing offset δ per trial) in the receive model is the
    same as delaying every path by δ."""
    timing = pytest.importorskip("isackit.impairments.timing")
    cfg = _cfg(N=6, L=2)
    delta = torch.tensor([3e-8, -1e-8], dtype=torch.float64)
    rx = ArrayModel(ula(3), [timing.TimingOffset(delta)])
    tx = ArrayModel(ula(2))
    aoa, aod, tau, nu, g = _paths(gen, K=2, B=(2,))
    nu = nu if with_doppler else None
    H = mimo_ofdm_channel(rx, tx, aoa, aod, tau, g, cfg, nu)
    ref = mimo_ofdm_channel(ArrayModel(ula(3)), tx, aoa, aod, tau + delta[:, None], g, cfg, nu)
    assert torch.allclose(H, ref, atol=1e-12)


def test_gradient_reaches_learnable_array_parameters(gen):
    """S0 learns array-model parameters through the channel: the gradient must reach them."""
    cfg = _cfg(N=3, L=1)
    g_rx = torch.nn.Parameter(torch.polar(torch.ones(2, dtype=torch.float64),
                                          torch.tensor([0.0, 0.4], dtype=torch.float64)))
    rx = ArrayModel(ula(2), [_GainPhase(g_rx)])
    tx = ArrayModel(ula(2))
    aoa, aod, tau, nu, g = _paths(gen, K=2)

    def f(p):
        rx.impairments[0].g = p
        return mimo_ofdm_channel(rx, tx, aoa, aod, tau, g, cfg)

    assert torch.autograd.gradcheck(f, (g_rx,))


def test_channel_bad_inputs(gen):
    cfg = _cfg()
    rx, tx = ArrayModel(ula(3)), ArrayModel(ula(2))
    aoa, aod, tau, nu, g = _paths(gen)
    with pytest.raises(ValueError):
        mimo_ofdm_channel(rx, tx, aoa, aod, tau[:2], g, cfg)
    with pytest.raises(ValueError):
        mimo_ofdm_channel(rx, tx, aoa, aod, tau, g, cfg, nu[:1])
    bad = tau.clone()
    bad[0] = float("nan")
    with pytest.raises(ValueError):
        mimo_ofdm_channel(rx, tx, aoa, aod, bad, g, cfg)
    with pytest.raises(TypeError):
        mimo_ofdm_channel(rx, "ula", aoa, aod, tau, g, cfg)
    with pytest.raises(ValueError):
        channel_from_responses(g, tau, torch.ones(3, 2, dtype=C128), torch.ones(2, 3, dtype=C128), cfg)
    H = mimo_ofdm_channel(rx, tx, aoa, aod, tau, g, cfg)
    with pytest.raises(ValueError):
        received_signal(H, torch.ones(cfg.num_subcarriers, 3, dtype=C128))  # M_t = 2, not 3
    with pytest.raises(ValueError):
        received_signal(H, torch.ones(cfg.num_subcarriers + 1, 2, dtype=C128))
    with pytest.raises(ValueError):
        received_signal(H, torch.ones(cfg.num_subcarriers, 2, dtype=C128), grid_dims=3)
