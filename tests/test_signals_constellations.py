"""Tests for isackit.signals.constellations (points from Sionna)."""

import math

import numpy as np
import pytest
import torch
from scipy.special import erfc

from isackit.signals import (
    add_noise,
    constellation_points,
    detect_symbols,
    random_symbols,
    sionna_constellation,
    symbol_error_rate,
)


def Q(x):
    return 0.5 * erfc(x / math.sqrt(2))


@pytest.mark.parametrize("name,order", [("bpsk", 2), ("qpsk", 4), ("psk8", 8), ("16psk", 16),
                                        ("qam16", 16), ("64-qam", 64), ("QAM256", 256)])
def test_points_unit_energy_and_order(name, order):
    p = constellation_points(name, torch.complex128)
    assert p.shape == (order,)
    assert (p.abs() ** 2).mean().item() == pytest.approx(1.0, abs=1e-12)
    d = (p.unsqueeze(0) - p.unsqueeze(1)).abs() + torch.eye(order, dtype=torch.float64)
    assert d.min().item() > 1e-3  # distinct points


def test_qpsk_is_rotated_4psk_and_sionna_qam():
    p = constellation_points("qpsk", torch.complex128)
    ang = torch.sort(torch.remainder(p.angle(), 2 * math.pi)).values
    assert torch.allclose(ang, torch.tensor([1, 3, 5, 7], dtype=torch.float64) * math.pi / 4)
    assert torch.allclose(p.abs(), torch.ones(4, dtype=torch.float64))
    sp = sionna_constellation("qam4")().detach()
    assert torch.allclose(p, sp.to(torch.complex128))


@pytest.mark.parametrize("order", [8, 16])
def test_psk_gray_labelling(order):
    p = constellation_points(f"psk{order}", torch.complex128).numpy()
    ang = np.mod(np.angle(p), 2 * np.pi)
    labels = np.argsort(ang)  # labels in order around the circle
    assert np.allclose(np.sort(ang), 2 * np.pi * np.arange(order) / order)
    for a, b in zip(labels, np.roll(labels, -1)):
        assert bin(int(a) ^ int(b)).count("1") == 1  # neighbours differ in one bit


def test_indices_match_sionna_mapper(gen):
    from sionna.phy.mapping import Mapper

    for name in ("qam16", "psk8"):
        const = sionna_constellation(name)
        mapper = Mapper(constellation=const, precision="double", device="cpu")
        bits_per = const.num_bits_per_symbol
        sym, idx = random_symbols(name, (50,), gen, torch.complex128)
        bits = ((idx.unsqueeze(-1) >> torch.arange(bits_per - 1, -1, -1)) & 1).reshape(-1)
        assert torch.allclose(mapper(bits).to(torch.complex128), sym)


def test_random_symbols_generator_controls_randomness():
    a, ia = random_symbols("qam16", (4, 100), torch.Generator().manual_seed(1))
    b, ib = random_symbols("qam16", (4, 100), torch.Generator().manual_seed(1))
    c, ic = random_symbols("qam16", (4, 100), torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and torch.equal(ia, ib) and not torch.equal(ia, ic)
    assert a.dtype == torch.complex64 and ia.dtype == torch.int64
    # uniform over the 16 points
    counts = torch.bincount(torch.cat([ia.flatten(), ic.flatten()]), minlength=16)
    assert counts.min() > 0


def test_detection_noise_free_and_dtype(gen, device):
    for name in ("bpsk", "qpsk", "psk16", "qam64"):
        s, i = random_symbols(name, (3, 200), gen, torch.complex128, device=device)
        assert s.device.type == device.type
        assert torch.equal(detect_symbols(s, name), i)
        assert symbol_error_rate(detect_symbols(s, name), i).item() == 0.0
    s, i = random_symbols("qam16", (10,), gen, torch.complex64)
    assert torch.equal(detect_symbols(s, constellation_points("qam16")), i)


def test_qpsk_ser_matches_closed_form(gen):
    snr_db, n = 6.0, 200_000
    snr = 10 ** (snr_db / 10)
    s, i = random_symbols("qpsk", (n,), gen, torch.complex128)
    y = add_noise(s, 1 / snr, gen)
    ser = symbol_error_rate(detect_symbols(y, "qpsk"), i).item()
    q = Q(math.sqrt(snr))
    expected = 2 * q - q * q
    assert abs(ser - expected) < 5 * math.sqrt(expected * (1 - expected) / n)


def test_16qam_ser_matches_closed_form(gen):
    snr_db, n, M = 14.0, 200_000, 16
    snr = 10 ** (snr_db / 10)
    s, i = random_symbols("qam16", (n,), gen, torch.complex128)
    y = add_noise(s, 1 / snr, gen)
    ser = symbol_error_rate(detect_symbols(y, "qam16"), i).item()
    a = 2 * (1 - 1 / math.sqrt(M)) * Q(math.sqrt(3 * snr / (M - 1)))
    expected = 2 * a - a * a
    assert abs(ser - expected) < 5 * math.sqrt(expected * (1 - expected) / n)


@pytest.mark.parametrize("bad", ["qam8", "psk3", "foo", "qam", "", "ofdm16"])
def test_unknown_constellation_raises(bad):
    with pytest.raises(ValueError):
        constellation_points(bad)


def test_bad_inputs(gen):
    with pytest.raises(ValueError):
        random_symbols("qpsk", (-1,), gen)
    with pytest.raises(TypeError):
        detect_symbols(torch.ones(3), "qpsk")
    y = torch.ones(3, dtype=torch.complex64)
    y[0] = float("nan")
    with pytest.raises(ValueError):
        detect_symbols(y, "qpsk")
    with pytest.raises(ValueError):
        symbol_error_rate(torch.zeros(3), torch.zeros(4))


def test_detection_chunking_is_invisible(gen, monkeypatch):
    import isackit.signals.constellations as mod

    s, _ = random_symbols("qam16", (3, 500), gen)
    y = add_noise(s, 0.05, gen)
    full = detect_symbols(y, "qam16")
    monkeypatch.setattr(mod, "_DETECT_CHUNK", 64)  # 4 samples per chunk
    assert torch.equal(detect_symbols(y, "qam16"), full)
