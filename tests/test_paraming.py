"""PARAMING (seed 001, Algorithm 1): exactness, invariances, batching, input errors, Doppler.

References: ``shared/design/s1-bistatic.md`` §5.1 checks 1-3 and 7.  Scene "S3" is the spec's
three-path scene; random scenes come from the S1 sampler (§1.3) with gain magnitudes in
[0.5, 2].
"""

import math

import pytest
import torch

from isackit.estimators.parametric import (
    HankelOperator,
    doppler_from_phases,
    hankel_block_hankel,
    paraming,
    paraming_delays,
    paraming_doppler,
    rank_one_phase_fit,
)
from isackit.geometry import ula
from isackit.impairments import ArrayModel, TimingOffset
from isackit.signals import OFDMConfig, bistatic_channel
from isackit.systems.bistatic import ScenarioConfig, channel, sample_paths

CFG = ScenarioConfig()
OFDM = CFG.ofdm
TRES = CFG.delay_resolution
DF = CFG.subcarrier_spacing_hz
RX, TX = ula(10), ula(8)


def _s3():
    d = torch.tensor([[2.3, -1.4, 6.35], [31.1, 27.9, 12.29], [58.7, 61.2, 21.51]], dtype=torch.float64)
    gains = torch.polar(torch.ones(3, dtype=torch.float64), torch.tensor([0.3, 2.0, -1.1], dtype=torch.float64))
    return torch.deg2rad(d[:, 0]), torch.deg2rad(d[:, 1]), d[:, 2] * TRES, gains


def _csi(aoa, aod, tau, gains, cfg=OFDM, rx=RX, tx=TX):
    return bistatic_channel(ArrayModel(rx), ArrayModel(tx), aoa, aod, tau, gains, cfg)


def _noisy(H, std, seed):
    g = torch.Generator().manual_seed(seed)
    return H + std * torch.complex(torch.randn(H.shape, generator=g, dtype=torch.float64),
                                   torch.randn(H.shape, generator=g, dtype=torch.float64)) / math.sqrt(2)


def _assert_exact(res, aoa, aod, tau, gains, tol=1e-9):
    e = res.estimates
    order = tau.argsort(-1)  # PARAMING sorts by delay
    take = lambda x: x.gather(-1, order)  # noqa: E731
    assert bool(res.valid.all())
    assert (e[..., 0] - take(aoa)).abs().max() < tol
    assert (e[..., 1] - take(aod)).abs().max() < tol
    assert ((e[..., 2] - take(tau)) / TRES).abs().max() < tol
    g = take(gains)
    assert ((res.extras["gain"] - g).abs() / g.abs()).max() < tol


def test_hankel_matrix_matches_index_formula():
    H = torch.randn(7, 4, 3, dtype=torch.complex128, generator=torch.Generator().manual_seed(0))
    mr, mt, nn = 2, 2, 3
    X = hankel_block_hankel(H, (mr, mt, nn))
    Kt, Kn, Kr = 3 - mt + 1, 7 - nn + 1, 4 - mr + 1
    assert X.shape == (mt * nn * mr, Kt * Kn * Kr)
    for it in range(mt):
        for i_n in range(nn):
            for ir in range(mr):
                for jt in range(Kt):
                    for jn in range(Kn):
                        for jr in range(Kr):
                            rho = (it * nn + i_n) * mr + ir
                            kap = (jt * Kn + jn) * Kr + jr
                            assert X[rho, kap] == H[i_n + jn, ir + jr, it + jt]


def test_hankel_factorisation_and_rank():
    aoa, aod, tau, gains = _s3()
    H = _csi(aoa, aod, tau, gains)
    X = hankel_block_hankel(H, (5, 4, 32))
    assert X.shape == (640, 990)
    ar, at = RX.steering(aoa).to(torch.complex128), TX.steering(aod).to(torch.complex128)
    n = torch.arange(64, dtype=torch.float64)
    c = torch.polar(torch.ones(64, 3, dtype=torch.float64), -2 * math.pi * DF * n[:, None] * tau)

    def kr(a, b, d):  # column k: a_k ⊗ b_k ⊗ d_k
        return (a[:, None, None, :] * b[None, :, None, :] * d[None, None, :, :]).reshape(-1, a.shape[-1])

    EL = kr(at[:4], c[:32], ar[:5])
    ER = kr(at[:5], c[:33], ar[:6])
    ref = EL @ torch.diag(gains) @ ER.T
    assert (X - ref).abs().max() / ref.abs().max() < 1e-10
    s = torch.linalg.svdvals(X)
    assert s[3] / s[0] < 1e-12 and s[2] / s[0] > 1e-3  # rank K = 3


def test_fast_products_equal_formed_matrix():
    g = torch.Generator().manual_seed(3)
    H = torch.randn(2, 12, 5, 4, dtype=torch.complex128, generator=g)
    mr, mt, nn = 3, 2, 5
    op = HankelOperator(H, (mr, mt, nn))
    X = hankel_block_hankel(H, (mr, mt, nn)).reshape(2, mt, nn, mr, 4 - mt + 1, 12 - nn + 1, 5 - mr + 1)
    X1, X2 = X[..., :-1, :], X[..., 1:, :]
    W = torch.randn(2, 12 - nn, 3 * 3, 2, dtype=torch.complex128, generator=g)  # j-space [j_n, (j_t, j_r)]
    Wj = W.reshape(2, 12 - nn, 3, 3, 2)
    ref1 = torch.einsum("bxyzjnr,bnjrl->bxyzl", X1, Wj)
    ref2 = torch.einsum("bxyzjnr,bnjrl->bxyzl", X2, Wj)

    def as_i(y):  # i-space (B, N', (i_t, i_r), L) -> (B, i_t, i_n, i_r, L)
        return y.reshape(2, nn, mt, mr, 2).permute(0, 2, 1, 3, 4)

    assert torch.allclose(as_i(op.x1(W)), ref1, atol=1e-12, rtol=0)
    assert torch.allclose(as_i(op.x2(W)), ref2, atol=1e-12, rtol=0)
    Q = torch.randn(2, nn, mt * mr, 2, dtype=torch.complex128, generator=g)
    refh = torch.einsum("bxyzjnr,byxzl->bnjrl", X1.conj(), Q.reshape(2, nn, mt, mr, 2))
    assert torch.allclose(op.x1h(Q).reshape(2, 12 - nn, 3, 3, 2), refh, atol=1e-12, rtol=0)


@pytest.mark.parametrize("phase_fit", ["rank1", "direct"])
def test_noise_free_exact_recovery_fixed_scene(phase_fit):
    aoa, aod, tau, gains = _s3()
    res = paraming(_csi(aoa, aod, tau, gains), RX, TX, 3, DF, phase_fit=phase_fit)
    _assert_exact(res, aoa, aod, tau, gains)


def test_noise_free_exact_recovery_full_svd_small():
    cfg = OFDMConfig(16, DF, 30e9)
    rx, tx = ula(6), ula(5)
    aoa = torch.tensor([-0.5, 0.1, 0.7], dtype=torch.float64)
    aod = torch.tensor([0.3, -0.9, 0.2], dtype=torch.float64)
    tau = torch.tensor([2.2, 7.9, 12.5], dtype=torch.float64) / (16 * DF)
    gains = torch.tensor([1.0, 0.6 - 0.8j, -1.5j], dtype=torch.complex128)
    H = _csi(aoa, aod, tau, gains, cfg, rx, tx)
    for svd in ("full", "subspace"):
        res = paraming(H, rx, tx, 3, DF, svd=svd)
        e = res.estimates
        assert (e[:, 0] - aoa).abs().max() < 1e-9 and ((e[:, 2] - tau) * 16 * DF).abs().max() < 1e-9


@pytest.mark.parametrize("phase_fit", ["rank1", "direct"])
def test_noise_free_exact_recovery_random_scenes(phase_fit):
    g = torch.Generator().manual_seed(11)
    p = sample_paths(CFG, 100, g)
    mags = 0.5 + 1.5 * torch.rand(100, 3, generator=g, dtype=torch.float64)
    gains = p.gain * mags
    H = bistatic_channel(ArrayModel(RX), ArrayModel(TX), p.aoa, p.aod, p.delay, gains, OFDM)
    res = paraming(H, RX, TX, 3, DF, phase_fit=phase_fit)
    _assert_exact(res, p.aoa, p.aod, p.delay, gains)


def test_centred_array_gain_reference():
    rx, tx = ula(6, centered=True), ula(5, centered=True)
    cfg = OFDMConfig(16, DF, 30e9)
    aoa, aod = torch.tensor([0.4], dtype=torch.float64), torch.tensor([-0.3], dtype=torch.float64)
    tau = torch.tensor([5.3 / (16 * DF)], dtype=torch.float64)
    gains = torch.tensor([0.7 + 0.2j], dtype=torch.complex128)
    res = paraming(_csi(aoa, aod, tau, gains, cfg, rx, tx), rx, tx, 1, DF)
    assert (res.extras["gain"] - gains).abs().max() < 1e-10


@pytest.mark.parametrize("svd", ["subspace", "full"])
def test_timing_offset_invariance(svd):
    """The TO rotates the noisy CSI: angles identical, τ shifted by exactly δ (check 3)."""
    if svd == "full":
        cfg, rx, tx, K = OFDMConfig(16, DF, 30e9), ula(6), ula(5), 2
        aoa, aod = torch.tensor([-0.2, 0.5], dtype=torch.float64), torch.tensor([0.3, -0.4], dtype=torch.float64)
        tau = torch.tensor([2.4, 6.1], dtype=torch.float64) / (16 * DF)
        gains = torch.tensor([1.0, 1j], dtype=torch.complex128)
        tres, std = 1 / (16 * DF), 0.3
    else:
        cfg, rx, tx, K = OFDM, RX, TX, 3
        aoa, aod, tau, gains = _s3()
        tres, std = TRES, 0.1  # ≈ 20 dB per-entry SNR on the CSI
    Hn = _noisy(_csi(aoa, aod, tau, gains, cfg, rx, tx), std, 5)
    f = cfg.subcarrier_frequencies()
    ref = paraming(Hn, rx, tx, K, DF, svd=svd).estimates
    for delta in (0.5, 1.0, 2.0):
        Hd = TimingOffset(delta * tres).apply_frequency(Hn, f, axis=-3)
        e = paraming(Hd, rx, tx, K, DF, svd=svd).estimates
        assert (e[:, :2] - ref[:, :2]).abs().max() < 1e-9
        assert ((e[:, 2] - ref[:, 2]) / tres - delta).abs().max() < 1e-9


def test_batch_equals_one_at_a_time():
    g = torch.Generator().manual_seed(2)
    p = sample_paths(CFG, 4, g)
    H = _noisy(channel(CFG, p), 0.3, 1)
    res = paraming(H, RX, TX, 3, DF)
    for i in range(4):
        one = paraming(H[i], RX, TX, 3, DF)
        assert torch.allclose(res.estimates[i], one.estimates, rtol=0, atol=1e-9)
    r2 = paraming(H.reshape(2, 2, *H.shape[1:]), RX, TX, 3, DF)
    assert r2.estimates.shape == (2, 2, 3, 3) and r2.valid.shape == (2, 2)
    assert torch.allclose(r2.estimates.reshape(4, 3, 3), res.estimates, rtol=0, atol=1e-9)


def test_chunked_passes_equal_one_pass():
    """chunk_size only splits the batch: same estimates and validity, including a NaN scene."""
    g = torch.Generator().manual_seed(5)
    H = _noisy(channel(CFG, sample_paths(CFG, 7, g)), 0.3, 4).clone()
    H[3, 0, 0, 0] = complex(math.nan, 0.0)
    one = paraming(H, RX, TX, 3, DF, chunk_size=64)
    for size in (1, 3):
        part = paraming(H, RX, TX, 3, DF, chunk_size=size)
        assert torch.equal(part.valid, one.valid) and not bool(part.valid[3])
        scale = torch.tensor([1.0, 1.0, CFG.num_subcarriers * DF], dtype=torch.float64)
        d = ((part.estimates - one.estimates) * scale)[one.valid]
        assert d.abs().max() < 1e-9
    empty = paraming(H[:0], RX, TX, 3, DF, chunk_size=2)
    assert empty.estimates.shape == (0, 3, 3) and empty.valid.shape == (0,)
    with pytest.raises(ValueError, match="chunk_size"):
        paraming(H, RX, TX, 3, DF, chunk_size=0)


def test_subspace_svd_matches_full_svd_at_moderate_snr():
    cfg, rx, tx = OFDMConfig(24, DF, 30e9), ula(6), ula(5)
    aoa, aod = torch.tensor([-0.2, 0.5, 0.1], dtype=torch.float64), torch.tensor([0.3, -0.4, 0.0], dtype=torch.float64)
    tau = torch.tensor([2.4, 6.1, 11.0], dtype=torch.float64) / (24 * DF)
    gains = torch.tensor([1.0, 1j, -0.8], dtype=torch.complex128)
    Hn = _noisy(_csi(aoa, aod, tau, gains, cfg, rx, tx).expand(3, -1, -1, -1), 0.5, 9)
    a = paraming(Hn, rx, tx, 3, DF, svd="full").estimates
    b = paraming(Hn, rx, tx, 3, DF, svd="subspace").estimates
    scale = torch.tensor([1.0, 1.0, 24 * DF], dtype=torch.float64)
    assert ((a - b) * scale).abs().max() < 1e-6


def test_rank_one_modes_agree_noise_free_and_near_endfire():
    m = torch.arange(10, dtype=torch.float64)
    for th, ph in [(1.2, -1.3), (-0.05, 0.9)]:
        ar = torch.exp(1j * math.pi * m * math.sin(th))
        at = torch.exp(1j * math.pi * m[:8] * math.sin(ph))
        G = (1.3 * math.e ** -2.2j) * torch.outer(ar, at)
        for mode in ("rank1", "direct"):
            a, b, g = rank_one_phase_fit(G, mode=mode)
            assert abs(float(a) - th) < 1e-12 and abs(float(b) - ph) < 1e-12
            assert abs(complex(g) - 1.3 * math.e ** -2.2j) < 1e-12


@pytest.mark.parametrize("bad", [
    dict(num_sources=700),                   # more paths than the Hankel sizes allow
    dict(sub_sizes=(11, 4, 32)),             # receive sub-array larger than the array
    dict(sub_sizes=(5, 9, 32)),              # transmit sub-array larger than the array
    dict(sub_sizes=(5, 4, 64)),              # sub-band leaves no shift
    dict(sub_sizes=(5, 4)),                  # malformed
    dict(num_sources=0),
    dict(phase_fit="wrong"),
])
def test_bad_configuration_is_a_one_line_error(bad):
    H = torch.zeros(64, 10, 8, dtype=torch.complex128)
    kw = dict(num_sources=3, sub_sizes=None, phase_fit="rank1") | bad
    with pytest.raises(ValueError) as err:
        paraming(H, RX, TX, kw["num_sources"], DF, kw["sub_sizes"], phase_fit=kw["phase_fit"])
    assert "\n" not in str(err.value)


def test_non_ula_is_refused():
    from isackit.geometry import ArrayGeometry
    bent = ArrayGeometry.from_positions([[0, 0, 0], [0, 0.5, 0], [0.1, 1.0, 0], [0, 1.5, 0]])
    H = torch.zeros(16, 4, 8, dtype=torch.complex128)
    with pytest.raises(ValueError, match="uniform linear"):
        paraming(H, bent, TX, 1, DF)


def test_degenerate_elements_are_flagged():
    aoa, aod, tau, gains = _s3()
    H = _csi(aoa, aod, tau, gains)
    bad = H.clone()
    bad[0, 0, 0] = complex(math.nan, 0)
    res = paraming(torch.stack([H, bad, torch.zeros_like(H)]), RX, TX, 3, DF)
    assert res.valid.tolist() == [True, False, False]
    assert torch.isnan(res.estimates[1:]).all() and res.count.tolist() == [3, 0, 0]
    # fewer paths than K in noise-free data: rank < K is flagged, not returned as garbage
    res2 = paraming_delays(_csi(aoa[:1], aod[:1], tau[:1], gains[:1]), 3, DF)
    assert not bool(res2["valid"])


def test_doppler_from_wrapped_phases():
    s = torch.arange(10, dtype=torch.float64)
    nu = torch.tensor([-2400.0, 37.0, 2500.0], dtype=torch.float64)
    psi = torch.remainder(1.0 + 2 * math.pi * nu[:, None] * s * CFG.subframe_period, 2 * math.pi) - math.pi
    assert (doppler_from_phases(psi, CFG.subframe_period) - nu).abs().max() < 1e-9


@pytest.mark.parametrize("method", ["per_subframe", "shared_geometry"])
def test_doppler_noise_free_exact(method):
    g = torch.Generator().manual_seed(4)
    p = sample_paths(CFG, 3, g)
    H = channel(CFG, p, subframes=True)  # (B, S, N, M_r, M_t): constant within each sub-frame
    res = paraming_doppler(H, RX, TX, 3, DF, CFG.subframe_period, method=method)
    order = p.delay.argsort(-1)
    nu = p.doppler.gather(-1, order)
    assert res.parameters == ("aoa", "aod", "delay", "doppler")
    assert (res.parameter("doppler") - nu).abs().max() < 1e-6
    assert (res.parameter("aoa") - p.aoa.gather(-1, order)).abs().max() < 1e-9
