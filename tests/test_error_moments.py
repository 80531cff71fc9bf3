"""Closed-form moments of random per-element gain-phase errors (seed 003, S3 spec §1.5, A1)."""

import math

import pytest
import scipy.special as sps
import scipy.stats as sst
import torch

from isackit.impairments.distributions import (
    ComplexGaussianErrors,
    ElementErrorDistribution,
    ErrorMoments,
    GainPhaseDistribution,
    GaussianPhase,
    LogNormalGain,
    RicianGain,
    UniformGain,
    UniformPhase,
    VonMisesPhase,
)

# (ν, σ, κ) → E g, E g², E g³, E g⁴, R1, R2, μ_c, v, p̃, t3, t4  (S3 specification, §1.5 table)
TABLE = {
    (1.0, 0.1, 10.0): (1.005013, 1.02, 1.045113, 1.0808, 0.948600, 0.810280, 0.953355, 0.111114, -0.082400,
                       -0.008403, 0.032596),
    (1.2, 0.1, 10.0): (1.204174, 1.46, 1.782094, 2.1896, 0.948600, 0.810280, 1.142279, 0.155198, -0.121793,
                       -0.015392, 0.065239),
    (1.6, 0.1, 10.0): (1.603128, 2.58, 4.168070, 6.7592, 0.948600, 0.810280, 1.520727, 0.267389, -0.222088,
                       -0.038536, 0.199178),
    (1.0, 0.1, 5.0): (1.005013, 1.02, 1.045113, 1.0808, 0.893383, 0.642647, 0.897861, 0.213845, -0.150655,
                      -0.038868, 0.123841),
    (1.0, 0.1, 20.0): (1.005013, 1.02, 1.045113, 1.0808, 0.974671, 0.902533, 0.979556, 0.060470, -0.038947,
                       -0.001590, 0.008982),
    (0.5, 0.1, 5.0): (0.510107, 0.27, 0.147727, 0.0833, 0.893383, 0.642647, 0.455721, 0.062318, -0.034167,
                      -0.003897, 0.009695),
    (1.0, 0.3, 10.0): (1.046223, 1.18, 1.414268, 1.7848, 0.948600, 0.810280, 0.992447, 0.195050, -0.028820,
                       0.005513, 0.081101),
}


@pytest.mark.parametrize("params", list(TABLE))
def test_moments_equal_the_specification_table(params):
    nu, sigma, kappa = params
    law = GainPhaseDistribution(RicianGain(nu, sigma), VonMisesPhase(kappa))
    m = law.moments()
    got = (*[float(law.gain.moment(n)) for n in (1, 2, 3, 4)], float(law.phase.bessel_ratio(1)),
           float(law.phase.bessel_ratio(2)), m.mean.real, m.variance, m.pseudo_variance.real, m.third.real, m.fourth)
    for g, ref in zip(got, TABLE[params], strict=True):
        assert g == pytest.approx(ref, abs=1e-6)
    # μ real for loc = 0, so every central moment is real
    assert abs(m.mean.imag) < 1e-15 and abs(m.pseudo_variance.imag) < 1e-15 and abs(m.third.imag) < 1e-15


@pytest.mark.parametrize("nu,sigma", [(1.0, 0.1), (0.5, 0.6), (0.0, 1.0), (3.0, 0.5), (1.0, 0.3)])
def test_rician_raw_moments_match_scipy(nu, sigma):
    ref = sst.rice(b=nu / sigma, scale=sigma)
    for n in range(0, 7):
        assert float(RicianGain(nu, sigma).moment(n)) == pytest.approx(ref.moment(n), rel=1e-9)
        x = nu ** 2 / (2 * sigma ** 2)
        kummer = (2 * sigma ** 2) ** (n / 2) * math.gamma(1 + n / 2) * sps.hyp1f1(-n / 2, 1, -x)
        assert float(RicianGain(nu, sigma).moment(n)) == pytest.approx(kummer, rel=1e-9)


def test_rician_high_k_moments_are_stable():
    # ν/σ = 1000 (scipy's rice overflows): E g³ = ν³ + 4.5 ν σ² + O(σ⁴/ν)
    g = RicianGain(100.0, 0.1)
    assert float(g.moment(3)) == pytest.approx(100.0 ** 3 + 4.5 * 100.0 * 0.01, rel=1e-11)
    assert float(g.moment(4)) == pytest.approx(100.0 ** 4 + 8 * 100.0 ** 2 * 0.01 + 8 * 1e-4, rel=1e-12)


def test_other_gain_laws_and_bessel_ratios():
    a = 1.5 * math.log(10) / 20
    assert float(LogNormalGain(1.5).moment(3)) == pytest.approx(math.exp(9 * a * a / 2), rel=1e-12)
    assert float(UniformGain(0.8, 1.3).moment(3)) == pytest.approx((1.3 ** 4 - 0.8 ** 4) / (4 * 0.5), rel=1e-12)
    for kappa in (0.3, 5.0, 10.0, 200.0):
        for n in (3, 4, 5):
            ref = sps.ive(n, kappa) / sps.ive(0, kappa)
            assert float(VonMisesPhase(kappa).bessel_ratio(n)) == pytest.approx(ref, rel=1e-10)
    with pytest.raises(ValueError):
        RicianGain(1.0, 0.1).moment(-1)
    with pytest.raises(ValueError):
        VonMisesPhase(1.0).bessel_ratio(-2)


def _sample_mean_close(x: torch.Tensor, ref: complex, name: str, k: float = 5.0):
    n = x.numel()
    for part, r in ((x.real, ref.real), (x.imag, ref.imag)):
        tol = k * float(part.std()) / math.sqrt(n) + 1e-12
        assert abs(float(part.mean()) - r) <= tol, f"{name}: {float(part.mean())} vs {r} (tol {tol})"


LAWS = [
    GainPhaseDistribution(RicianGain(1.0, 0.1), VonMisesPhase(10.0)),
    GainPhaseDistribution(RicianGain(0.5, 0.1), VonMisesPhase(5.0)),
    GainPhaseDistribution(RicianGain(1.0, 0.3), VonMisesPhase(10.0, loc=0.3)),
    GainPhaseDistribution(LogNormalGain(1.0), GaussianPhase(0.2)),
    GainPhaseDistribution(UniformGain(0.8, 1.2), UniformPhase(-0.4, 0.6)),
    ComplexGaussianErrors(0.95 + 0.1j, 0.11),
]


@pytest.mark.parametrize("law", LAWS, ids=lambda law: type(law).__name__ + repr(law)[-18:])
def test_central_moments_match_monte_carlo(law):
    z = law.sample(4, (100_000,), torch.Generator().manual_seed(5), torch.float64).reshape(-1)  # 4·10⁵ draws
    m = law.moments()
    d = z - m.mean
    _sample_mean_close(z, m.mean, "mean")
    _sample_mean_close(d.abs() ** 2 + 0j, complex(m.variance), "v")
    _sample_mean_close(d ** 2, m.pseudo_variance, "p~")
    _sample_mean_close(d * d.abs() ** 2, m.third, "t3")
    _sample_mean_close(d.abs() ** 4 + 0j, complex(m.fourth), "t4")
    for a, b in ((1, 0), (2, 1), (3, 1), (2, 2), (3, 0), (0, 4)):
        _sample_mean_close(z ** a * z.conj() ** b, complex(law.raw_moment(a, b)), f"E[z^{a} z*^{b}]")
    # the specification's 1 % acceptance on the non-negligible moments
    assert float((d.abs() ** 2).mean()) == pytest.approx(m.variance, rel=0.01)
    assert float((d.abs() ** 4).mean()) == pytest.approx(m.fourth, rel=0.01)


def test_complex_gaussian_matching_law():
    law = GainPhaseDistribution(RicianGain(1.0, 0.1), VonMisesPhase(10.0))
    g = ComplexGaussianErrors.matching(law)
    m, mg = law.moments(), g.moments()
    assert mg.mean == pytest.approx(m.mean, abs=1e-15) and mg.variance == pytest.approx(m.variance, rel=1e-12)
    assert abs(mg.pseudo_variance) < 1e-14 and abs(mg.third) < 1e-14
    assert mg.fourth == pytest.approx(2 * m.variance ** 2, rel=1e-12)
    assert isinstance(g, ElementErrorDistribution) and isinstance(law, ElementErrorDistribution)
    # base-class first/second moments agree with the gain-phase law's explicit ones
    torch.testing.assert_close(g.correlation(3), law.correlation(3))
    assert ErrorMoments.ideal().variance == 0.0
    with pytest.raises(ValueError):
        ComplexGaussianErrors(1.0, -0.1)
    with pytest.raises(TypeError):
        ComplexGaussianErrors.matching(RicianGain())
