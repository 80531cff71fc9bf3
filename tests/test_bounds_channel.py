"""The bistatic CRB (seed 001, Appendix A): the two routes, closed forms, scaling, pilots."""

import math

import pytest
import torch

from isackit.bounds.channel import crb_bistatic, fisher_bistatic
from isackit.geometry import ula
from isackit.impairments import ArrayModel, GainPhaseError
from isackit.signals import OFDMConfig

CFG = OFDMConfig(64, 960e3, 30e9, cyclic_prefix=0.25)
TRES = CFG.delay_resolution
RX, TX = ArrayModel(ula(10)), ArrayModel(ula(8))


def _s3():
    d = torch.tensor([[2.3, -1.4, 6.35], [31.1, 27.9, 12.29], [58.7, 61.2, 21.51]], dtype=torch.float64)
    gains = torch.polar(torch.ones(3, dtype=torch.float64), torch.tensor([0.3, 2.0, -1.1], dtype=torch.float64))
    return torch.deg2rad(d[:, 0]), torch.deg2rad(d[:, 1]), d[:, 2] * TRES, gains


def _rel(a, b):
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("case", ["orthogonal", "pilots", "doppler", "impaired"])
def test_closed_form_equals_slepian_bangs(case):
    aoa, aod, tau, g = _s3()
    rx, tx, kw = RX, TX, dict(num_pilots=10)
    if case == "pilots":
        gen = torch.Generator().manual_seed(0)
        kw = dict(pilots=torch.randn(64, 8, 10, dtype=torch.complex128, generator=gen))
    elif case == "doppler":
        kw = dict(num_pilots=10, dopplers=torch.tensor([1200.0, -2300.0, 400.0], dtype=torch.float64),
                  subframe_period=13.02e-6, num_subframes=10)
    elif case == "impaired":
        gen = torch.Generator().manual_seed(1)
        imp = GainPhaseError(1 + 0.1 * torch.randn(10, generator=gen, dtype=torch.float64),
                             0.3 * torch.randn(10, generator=gen, dtype=torch.float64))
        rx = ArrayModel(ula(10), [imp])
    a = fisher_bistatic(rx, tx, aoa, aod, tau, g, CFG, 0.24, **kw)
    b = fisher_bistatic(rx, tx, aoa, aod, tau, g, CFG, 0.24, method="slepian_bangs", **kw)
    assert _rel(a, b) < 1e-10
    ca = crb_bistatic(rx, tx, aoa, aod, tau, g, CFG, 0.24, **kw).matrix
    cb = crb_bistatic(rx, tx, aoa, aod, tau, g, CFG, 0.24, method="slepian_bangs", **kw).matrix
    assert _rel(ca, cb) < 1e-8


def test_batched_bounds_equal_single():
    aoa, aod, tau, g = _s3()
    B = torch.stack([aoa, aoa.flip(0)]), torch.stack([aod, aod]), torch.stack([tau, tau]), torch.stack([g, g * 1j])
    c = crb_bistatic(RX, TX, *B, CFG, torch.tensor([0.1, 0.5], dtype=torch.float64), num_pilots=10).matrix
    for i, s2 in enumerate([0.1, 0.5]):
        one = crb_bistatic(RX, TX, B[0][i], B[1][i], B[2][i], B[3][i], CFG, s2, num_pilots=10).matrix
        assert _rel(c[i], one) < 1e-12


def test_single_path_closed_forms():
    L, s2 = 10, 0.7
    th = torch.tensor([0.4], dtype=torch.float64)
    crb = crb_bistatic(RX, TX, th, torch.tensor([-0.2], dtype=torch.float64),
                       torch.tensor([3e-7], dtype=torch.float64), torch.tensor([1j], dtype=torch.complex128),
                       CFG, s2, num_pilots=L)
    N, Mr, Mt, df = 64, 10, 8, 960e3
    var_tau = s2 / (2 * L * Mr * Mt * (2 * math.pi * df) ** 2 * N * (N ** 2 - 1) / 12)
    var_th = s2 / (2 * L * N * Mt * (2 * math.pi * 0.5 * math.cos(0.4)) ** 2 * Mr * (Mr ** 2 - 1) / 12)
    assert abs(float(crb.variance("delay")) / var_tau - 1) < 1e-9
    assert abs(float(crb.variance("aoa")) / var_th - 1) < 1e-9


def test_scaling_and_pilot_equivalence():
    aoa, aod, tau, g = _s3()
    c1 = crb_bistatic(RX, TX, aoa, aod, tau, g, CFG, 0.3, num_pilots=10).matrix
    c2 = crb_bistatic(RX, TX, aoa, aod, tau, g, CFG, 0.03, num_pilots=10).matrix
    assert _rel(c1, 10 * c2) < 1e-12  # exactly 1/SNR
    # orthogonal pilots: the CRB from Y (σ², X X^H = L I) is the CRB from Ĥ with noise σ²/L
    from isackit.signals import orthogonal_pilots
    X = orthogonal_pilots(8, 10, torch.complex128).expand(64, 8, 10)
    cy = crb_bistatic(RX, TX, aoa, aod, tau, g, CFG, 0.3, pilots=X).matrix
    ch = crb_bistatic(RX, TX, aoa, aod, tau, g, CFG, 0.03, num_pilots=1).matrix
    assert _rel(cy, ch) < 1e-12 and _rel(cy, c1) < 1e-12


def test_s3_values():
    """√CRB on scene S3 at σ² = 0.24 (SNR 20 dB, K = 3, M_t = 8), L = 10 (spec §5.2 check 12)."""
    aoa, aod, tau, g = _s3()
    c = crb_bistatic(RX, TX, aoa, aod, tau, g, CFG, 0.24, num_pilots=10)
    th = torch.rad2deg(c.variance("aoa").sqrt())
    ph = torch.rad2deg(c.variance("aod").sqrt())
    assert th.min() > 0.009 and th.max() < 0.02
    assert ph.max() < 0.026
    assert ((c.variance("delay").sqrt() / TRES) - 0.00084).abs().max() < 0.0001
    with pytest.raises(ValueError):
        c.variance("doppler")


def test_bad_inputs():
    aoa, aod, tau, g = _s3()
    with pytest.raises(ValueError, match="subframe_period"):
        crb_bistatic(RX, TX, aoa, aod, tau, g, CFG, 0.1, dopplers=torch.zeros(3, dtype=torch.float64))
    with pytest.raises(ValueError):
        crb_bistatic(RX, TX, aoa[:2], aod, tau, g, CFG, 0.1)
    with pytest.raises(TypeError):
        crb_bistatic(ula(10), TX, aoa, aod, tau, g, CFG, 0.1)
