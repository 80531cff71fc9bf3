"""MoD-DNN's learned parts (seed 002): sizes as in the paper, BatchNorm at inference, gradients
through the unrolled CNN ↔ SCG network, the pipeline and the baselines."""

import math

import pytest
import torch

from isackit.estimators import coarray_projection, music_doa, SearchGrid
from isackit.geometry import ula
from isackit.learning.mod_dnn import (
    CNNRegressor,
    DeepMUSIC,
    MoDDNN,
    MoDLSSR,
    MultiTaskAutoencoder,
    SpectrumCalibrator,
    autoencoder_targets,
    build_subregion_ssr,
    count_parameters,
    csi_to_real,
    inference_flops,
    real_to_csi,
    recalibrate_batchnorm,
)


def test_autoencoder_shapes_and_parameter_counts():
    ae1 = MultiTaskAutoencoder(4, 16, 16, 4)
    assert tuple(ae1.encoder.weight.shape) == (16, 16, 8)          # Table 2 "16 × 16 × 8"
    assert tuple(ae1.decoder_weight.shape) == (4, 16, 8, 16)       # P × "16 × 8 × 16"
    assert count_parameters(ae1) == 11008                          # 16·(16·8+16) + 4·16·(8·16+8)
    ae2 = MultiTaskAutoencoder(4, 16, 16, 4, shared=True)
    assert tuple(ae2.encoder.weight.shape) == (1, 16, 8)
    assert tuple(ae2.decoder_weight.shape) == (4, 1, 8, 16)
    assert count_parameters(ae2) == 688
    H = torch.randn(5, 4, 16, dtype=torch.complex64)
    assert ae1(H).shape == (5, 4, 4, 16) and ae2(H).shape == (5, 4, 4, 16)
    assert torch.equal(real_to_csi(csi_to_real(H)), H)


def test_ae_ii_shares_weights_over_tones():
    ae2 = MultiTaskAutoencoder(4, 16, 16, 4, shared=True, generator=torch.Generator().manual_seed(0))
    h = torch.randn(1, 4, 1, dtype=torch.complex64)
    H = h.expand(1, 4, 16)  # the same vector on every tone -> the same output on every tone
    out = ae2(H)
    assert torch.allclose(out, out[..., :1].expand_as(out))


def test_autoencoder_targets_are_eq10():
    x = torch.randn(3, 16, 8)
    t = autoencoder_targets(x, torch.tensor([0, 2, 3]), 4)
    assert t.shape == (3, 4, 16, 8)
    assert torch.equal(t[1, 2], x[1]) and t[1, [0, 1, 3]].abs().sum() == 0


def test_calibrator_shapes_and_parameter_count():
    cal = SpectrumCalibrator()
    assert [tuple(c.weight.shape) for c in cal.convs] == [(4, 1, 32), (8, 4, 32), (4, 8, 32), (1, 4, 32)]
    assert count_parameters(cal) == 2355  # 2304 weights + 17 biases + 34 BN affine
    x = torch.randn(2, 300)
    assert cal(x).shape == (2, 300)  # length kept with the 15/16 zero padding
    # weight sharing: the unrolled network has one conv set whatever I; BN per iteration
    A = ula(4).steering(torch.linspace(-0.5, 0.0, 300, dtype=torch.float64))
    for I in (1, 3, 10):
        ssr = build_subregion_ssr([A], iterations=I)[0]
        assert count_parameters(ssr) == 2321 + 34 * I
        assert len(ssr.calibrator.convs) == 4
    shared = build_subregion_ssr([A], iterations=10, calibrator={"norm_sets": 1})[0]
    assert count_parameters(shared) == 2355


def _ssr(dtype=torch.float32, L=40, iterations=3, **kw):
    A = ula(4).steering(torch.linspace(-0.5, 0.0, L, dtype=torch.float64))
    P = coarray_projection(A).to(dtype)
    return MoDLSSR(P, iterations=iterations, cg_iterations=8, generator=torch.Generator().manual_seed(0),
                   **kw).to(dtype)


def test_batchnorm_inference_does_not_depend_on_the_batch():
    # float64, so that only the BatchNorm statistics (not the rounding of differently
    # batched products, amplified by cond(P + λI) ≈ 2e3) could make a difference
    ssr = _ssr(torch.float64)
    g = torch.Generator().manual_seed(1)
    ssr.train()
    with torch.no_grad():  # fill the per-iteration running statistics
        for _ in range(20):
            ssr(torch.rand(32, 40, generator=g, dtype=torch.float64))
    ssr.eval()
    x = torch.rand(8, 40, generator=g, dtype=torch.float64)
    other = torch.rand(8, 40, generator=g, dtype=torch.float64) * 50.0  # a very different batch
    with torch.no_grad():
        alone = torch.stack([ssr(x[i:i + 1])[0] for i in range(8)])
        mixed = ssr(torch.cat([x, other]))[:8]
        together = ssr(x)
    # rounding differences of differently batched products grow through I·N CG steps with
    # cond(P + λI) ≈ 2e3 to ~1e-10 relative; a batch-dependent BatchNorm changes the output by O(1)
    tol = 1e-8 * float(alone.abs().max())
    assert (alone - mixed).abs().max() <= tol
    assert (alone - together).abs().max() <= tol
    # in train mode the batch statistics couple the samples
    ssr.train()
    with torch.no_grad():
        assert (ssr(torch.cat([x, other]))[:8] - ssr(x)).abs().max() > 1e-3


def test_precise_batchnorm_statistics_are_those_of_the_final_weights():
    """After recalibration, each BatchNorm's running mean/variance are the (unbiased) statistics
    of its inputs under the final weights: one batch → eval output = train-mode output up to
    the n/(n−1) variance factor; stale statistics (other weights) are gone."""
    ssr = _ssr(torch.float64, iterations=2)
    g = torch.Generator().manual_seed(2)
    x = torch.rand(48, 40, generator=g, dtype=torch.float64)
    ssr.train()
    with torch.no_grad():  # stale statistics: other inputs, then new weights
        for _ in range(5):
            ssr(5.0 * torch.rand(16, 40, generator=g, dtype=torch.float64))
        for prm in ssr.parameters():
            prm.add_(0.05 * torch.randn(prm.shape, generator=g, dtype=prm.dtype))
    first = ssr.calibrator.norms[0][0]
    captured = []
    hook = ssr.calibrator.convs[0].register_forward_hook(lambda m, i, o: captured.append(o.detach()))
    recalibrate_batchnorm(ssr, x, batch_size=48)
    hook.remove()
    h = captured[0]  # conv 1 output at iteration 0, (48, 4, 40)
    n = h.shape[0] * h.shape[-1]
    assert torch.allclose(first.running_mean, h.mean((0, 2)), rtol=1e-12, atol=1e-14)
    assert torch.allclose(first.running_var, h.var((0, 2), unbiased=True), rtol=1e-12)
    assert not ssr.training and first.momentum == 0.1
    with torch.no_grad():
        ev = ssr(x)
        ssr.train()
        tr = ssr(x)
    # the only difference is the n/(n-1) factor of the variances (n = 48·40 per channel)
    assert (ev - tr).abs().max() <= 5.0 / n * tr.abs().max()


def test_gradcheck_through_the_unrolled_network_float64():
    torch.manual_seed(0)
    ssr = _ssr(torch.float64, L=12, iterations=2, mu=0.05, calibrator={"kernel_size": 5})
    ssr.eval()  # BatchNorm as an affine map: the network is a smooth function of its weights
    x = torch.rand(2, 12, dtype=torch.float64, requires_grad=True)
    w = ssr.calibrator.convs[3].weight  # (1, 4, 5): a small gradcheck through all I iterations
    assert torch.autograd.gradcheck(lambda x: ssr(x), (x,))
    params = [p for p in ssr.parameters()]
    out = ssr(x).square().sum()
    grads = torch.autograd.grad(out, params)
    assert all(torch.isfinite(g).all() for g in grads) and any(g.abs().sum() > 0 for g in grads)

    def loss_of_weight(wt):
        return torch.func.functional_call(ssr, {"calibrator.convs.3.weight": wt}, (x.detach(),))

    assert torch.autograd.gradcheck(loss_of_weight, (w.detach().clone().requires_grad_(True),))


def test_learned_lambda_gets_a_gradient():
    ssr = _ssr(torch.float64, L=12, iterations=2, learn_lambda=True, calibrator={"kernel_size": 5})
    ssr(torch.rand(2, 12, dtype=torch.float64)).sum().backward()
    assert ssr.raw_lambda.grad is not None and torch.isfinite(ssr.raw_lambda.grad)
    assert float(ssr.lam().detach()) == pytest.approx(0.1)


def _pipeline(L=30):
    th = torch.linspace(-math.pi / 3, math.pi / 3, 4 * L)
    A = ula(4).steering(th.double()).to(torch.complex64)
    dicts = [A[:, p * L:(p + 1) * L] for p in range(4)]
    grids = [th[p * L:(p + 1) * L] for p in range(4)]
    ae = MultiTaskAutoencoder(4, 16, 16, 4, generator=torch.Generator().manual_seed(0))
    ssr = build_subregion_ssr(dicts, generator=torch.Generator().manual_seed(1), iterations=2, cg_iterations=8,
                              calibrator={"kernel_size": 7})
    return MoDDNN(ae, ssr, dicts, grids).eval()


def test_pipeline_predict_routes_branches_like_forward():
    m = _pipeline()
    H = torch.randn(16, 4, 16, dtype=torch.complex64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        out = m(H)
        pred = m.predict(H)
    assert out.aoa.shape == (16,) and len(out.spectra) == 4 and out.energy.shape == (16, 4)
    assert torch.equal(pred, out.aoa)


def test_baseline_shapes():
    R = torch.randn(3, 4, 4, dtype=torch.complex64)
    assert DeepMUSIC(4, (300, 300, 300, 301), channels=8, hidden=16)(R).shape == (3, 1201)
    cnn = CNNRegressor(4, 16, (4, 8, 8), 16).eval()
    th = cnn(torch.randn(3, 4, 16, dtype=torch.complex64))
    assert th.shape == (3,) and bool((th.abs() <= math.pi / 3).all())


def test_flops_order_of_the_methods():
    """Table 3's order at the paper's sizes: MUSIC < CNN < MoD-DNN < DeepMUSIC."""
    th = torch.deg2rad(torch.arange(-600, 601, dtype=torch.float64) / 10)
    A = ula(4).steering(th).to(torch.complex64)
    b = [0, 300, 600, 900, 1201]
    dicts = [A[:, b[p]:b[p + 1]] for p in range(4)]
    grids = [th[b[p]:b[p + 1]].float() for p in range(4)]
    moddnn = MoDDNN(MultiTaskAutoencoder(), build_subregion_ssr(dicts), dicts, grids).eval()
    H = torch.randn(1, 4, 16, dtype=torch.complex64)
    R = H @ H.mH / 16
    grid = SearchGrid.degrees(-60, 60, 0.1)
    f_music = inference_flops(lambda R: music_doa(R, ula(4), 1, grid, grid_only=True), R)
    f_cnn = inference_flops(CNNRegressor().eval(), H)
    f_mod = inference_flops(moddnn, H)
    f_deep = inference_flops(DeepMUSIC().eval(), R)
    assert 0 < f_music < f_cnn < f_mod < f_deep
    assert 0.134e9 / 3 <= f_mod <= 3 * 0.134e9
