"""Complex-valued layers: real-block == complex references, float64 gradcheck, shapes, errors."""

import math

import pytest
import torch
from torch.func import functional_call
from torch.nn import functional as F

from isackit.learning.complex import (
    Cardioid,
    ComplexBatchNorm,
    ComplexConv1d,
    ComplexConv2d,
    ComplexLayerNorm,
    ComplexLinear,
    CReLU,
    ModReLU,
    SplitTanh,
    ZReLU,
    cardioid,
    complex_init_,
    modrelu,
    whitening_2x2,
    zrelu,
)
from isackit.seeding import make_generator


def _cn(shape, g, dtype=torch.complex128):
    return torch.randn(shape, dtype=dtype, generator=g)


def _tol(dtype):
    return 100 * torch.finfo(dtype).eps


def _gradcheck_module(module, z):
    """gradcheck w.r.t. the input and every parameter (float64)."""
    names = [n for n, _ in module.named_parameters()]
    params = [p.detach().clone().requires_grad_(True) for _, p in module.named_parameters()]

    def f(x, *ps):
        return functional_call(module, dict(zip(names, ps, strict=True)), (x,))

    assert torch.autograd.gradcheck(f, (z.detach().clone().requires_grad_(True), *params), eps=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------------------------
def test_linear_equals_real_block_and_complex_references():
    g = make_generator(0, "lin")
    layer = ComplexLinear(5, 3, generator=g, dtype=torch.float64)
    with torch.no_grad():
        layer.bias_real.normal_(generator=g)
        layer.bias_imag.normal_(generator=g)
    z = _cn((4, 2, 5), g)
    y = layer(z)
    A, B = layer.weight_real, layer.weight_imag
    xr, xi = z.real, z.imag
    ref_block = torch.complex(xr @ A.T - xi @ B.T + layer.bias_real, xr @ B.T + xi @ A.T + layer.bias_imag)
    ref_complex = z @ torch.complex(A, B).T + torch.complex(layer.bias_real, layer.bias_imag)
    scale = ref_complex.abs().max()
    assert y.shape == (4, 2, 3) and y.dtype == torch.complex128
    assert (y - ref_block).abs().max() <= _tol(torch.float64) * scale
    assert (y - ref_complex).abs().max() <= _tol(torch.float64) * scale


@pytest.mark.parametrize("groups,padding,padding_mode,stride,dilation", [
    (1, 0, "zeros", 1, 1), (1, "same", "zeros", 1, 2), (2, 1, "circular", 2, 1), (1, "same", "reflect", 1, 1),
    (2, "valid", "zeros", 1, 1)])
def test_conv1d_equals_real_block_and_complex_references(groups, padding, padding_mode, stride, dilation):
    g = make_generator(0, "conv1d", groups, str(padding), padding_mode)
    conv = ComplexConv1d(4, 6, 3, stride=stride, padding=padding, dilation=dilation, groups=groups,
                         padding_mode=padding_mode, generator=g, dtype=torch.float64)
    with torch.no_grad():
        conv.bias_real.normal_(generator=g)
        conv.bias_imag.normal_(generator=g)
    z = _cn((2, 3, 4, 11), g)                                        # two leading batch dims
    y = conv(z)
    x = z.reshape(6, 4, 11)
    if padding_mode != "zeros":
        pad = conv._pad_amounts()
        xr = F.pad(x.real, pad, mode=padding_mode)
        xi = F.pad(x.imag, pad, mode=padding_mode)
        p = 0
    else:
        xr, xi, p = x.real, x.imag, padding
    A, B = conv.weight_real, conv.weight_imag

    def c(inp, w):
        return F.conv1d(inp, w, None, stride, p, dilation, groups)

    br = conv.bias_real[:, None]
    bi = conv.bias_imag[:, None]
    ref_block = torch.complex(c(xr, A) - c(xi, B) + br, c(xr, B) + c(xi, A) + bi)
    ref_complex = F.conv1d(torch.complex(xr, xi), torch.complex(A, B), torch.complex(conv.bias_real, conv.bias_imag),
                           stride, p, dilation, groups)
    scale = ref_complex.abs().max()
    assert y.shape == (2, 3, 6, ref_complex.shape[-1])
    assert (y.reshape(ref_complex.shape) - ref_block).abs().max() <= _tol(torch.float64) * scale
    assert (y.reshape(ref_complex.shape) - ref_complex).abs().max() <= _tol(torch.float64) * scale


def test_conv2d_equals_complex_reference_and_unbatched_input():
    g = make_generator(0, "conv2d")
    conv = ComplexConv2d(2, 4, (3, 2), padding=(1, 0), groups=2, generator=g, dtype=torch.float64)
    z = _cn((5, 2, 6, 7), g)
    y = conv(z)
    ref = F.conv2d(z, conv.weight, conv.bias, 1, (1, 0), 1, 2)
    assert y.shape == ref.shape == (5, 4, 6, 6)
    assert (y - ref).abs().max() <= _tol(torch.float64) * ref.abs().max()
    y1 = conv(z[0])                                                    # no batch dim: (C, H, W)
    assert y1.shape == (4, 6, 6)
    assert (y1 - ref[0]).abs().max() <= _tol(torch.float64) * ref.abs().max()


def test_float32_layers_follow_input_dtype_and_reject_mismatch():
    g = make_generator(0, "dtype")
    layer = ComplexLinear(3, 2, generator=g)
    z = torch.randn(4, 3, dtype=torch.complex64, generator=g)
    assert layer(z).dtype == torch.complex64
    with pytest.raises(TypeError, match="complex128 does not match"):
        layer(z.to(torch.complex128))
    with pytest.raises(TypeError, match="must be complex"):
        layer(z.real)
    with pytest.raises(ValueError, match=r"expected \(\.\.\., 3\)"):
        layer(torch.randn(4, 5, dtype=torch.complex64, generator=g))
    assert layer.double()(z.to(torch.complex128)).dtype == torch.complex128


def test_complex_init_statistics_and_generator_reproducible():
    g = make_generator(0, "init")
    re, im = torch.empty(200, 300, dtype=torch.float64), torch.empty(200, 300, dtype=torch.float64)
    complex_init_(re, im, 300, 200, "glorot", g)
    var = (re**2 + im**2).mean()
    expected = 2.0 / 500
    # E|W|² = 2σ²; 60 000 draws of an exponential variable: std of the mean = expected/sqrt(6e4)
    assert abs(float(var) - expected) < 5 * expected / math.sqrt(6e4)
    a = ComplexLinear(4, 4, generator=make_generator(1, "same"))
    b = ComplexLinear(4, 4, generator=make_generator(1, "same"))
    assert torch.equal(a.weight_real, b.weight_real)
    with pytest.raises(ValueError, match="init must be"):
        ComplexLinear(2, 2, init="xavier")


@pytest.mark.parametrize("make", [
    lambda: ComplexLinear(3, 2, dtype=torch.float64, generator=make_generator(0, "gc")),
    lambda: ComplexConv1d(2, 3, 3, padding=1, dtype=torch.float64, generator=make_generator(0, "gc")),
    lambda: ComplexConv1d(2, 2, 3, padding="same", padding_mode="circular", groups=2, dtype=torch.float64,
                          generator=make_generator(0, "gc")),
    lambda: ComplexConv2d(2, 2, 2, dtype=torch.float64, generator=make_generator(0, "gc")),
    lambda: ModReLU(3, bias_init=-0.3, dtype=torch.float64),
    lambda: ComplexLayerNorm(3, dtype=torch.float64),
    lambda: ComplexLayerNorm((2, 3), elementwise_affine=False, dtype=torch.float64),
])
def test_gradcheck_float64_parametrised_layers(make):
    module = make()
    shapes = {ComplexLinear: (2, 3), ComplexConv1d: (2, 2, 5), ComplexConv2d: (1, 2, 3, 3), ModReLU: (4, 3),
              ComplexLayerNorm: (2, 2, 3)}
    z = _cn(shapes[type(module)], make_generator(0, "gc-in"))
    _gradcheck_module(module, z)


@pytest.mark.parametrize("dim,shape", [(1, (6, 2, 3)), (-1, (3, 4, 2))])
def test_gradcheck_batchnorm_train_and_eval(dim, shape):
    bn = ComplexBatchNorm(2, dim=dim, dtype=torch.float64)
    with torch.no_grad():
        bn.gamma.add_(0.1 * torch.randn(bn.gamma.shape, dtype=torch.float64, generator=make_generator(0, "g")))
        bn.beta.normal_(generator=make_generator(0, "b"))
    z = _cn(shape, make_generator(0, "bn-in"))
    _gradcheck_module(bn, z)
    bn.eval()
    _gradcheck_module(bn, z)


@pytest.mark.parametrize("act", [CReLU(), ZReLU(), Cardioid(), SplitTanh()])
def test_gradcheck_activations(act):
    # away from the kinks (Re = 0, Im = 0, z = 0), where the activations are smooth
    z = _cn((4, 3), make_generator(0, "act"))
    z = torch.where(z.real.abs() < 0.05, z + 0.1, z)
    z = torch.where(z.imag.abs() < 0.05, z + 0.1j, z)
    assert torch.autograd.gradcheck(act, (z.requires_grad_(True),), eps=1e-6, atol=1e-6)


def test_activation_values():
    z = torch.tensor([1 + 2j, -1 + 2j, 1 - 2j, -1 - 2j, 0j], dtype=torch.complex128)
    assert torch.equal(CReLU()(z), torch.tensor([1 + 2j, 2j, 1, 0, 0], dtype=torch.complex128))
    assert torch.equal(zrelu(z), torch.tensor([1 + 2j, 0, 0, 0, 0], dtype=torch.complex128))
    m = z.abs()
    # modReLU keeps the phase and shifts the modulus; b = -1 zeroes |z| < 1
    out = modrelu(z, torch.tensor(-1.0, dtype=torch.float64))
    assert torch.allclose(out.abs(), (m - 1).clamp_min(0))
    assert torch.allclose(out[:4] / out[:4].abs(), z[:4] / m[:4])
    assert out[4] == 0
    # cardioid: real positive axis unchanged, negative real axis zeroed, imaginary axis halved
    c = cardioid(torch.tensor([2 + 0j, -2 + 0j, 3j], dtype=torch.complex128))
    assert torch.allclose(c, torch.tensor([2, 0, 1.5j], dtype=torch.complex128))
    s = SplitTanh()(z)
    assert torch.allclose(s, torch.complex(torch.tanh(z.real), torch.tanh(z.imag)))
    # finite gradients at z = 0
    z0 = torch.zeros(3, dtype=torch.complex128, requires_grad=True)
    (cardioid(z0).abs().sum() + modrelu(z0, torch.tensor(-0.5, dtype=torch.float64)).abs().sum()).backward()
    assert torch.isfinite(torch.view_as_real(z0.grad)).all()


def test_modrelu_bias_along_channel_dim():
    act = ModReLU(3, dim=1, bias_init=-0.5)
    z = torch.randn(2, 3, 4, dtype=torch.complex64, generator=make_generator(0, "mr"))
    with torch.no_grad():
        act.bias.copy_(torch.tensor([-0.5, 0.0, -10.0]))
    y = act(z)
    assert torch.all(y[:, 2] == 0)
    assert torch.allclose(y[:, 1], z[:, 1])
    with pytest.raises(ValueError, match="must have size 3"):
        ModReLU(3)(z)


def test_whitening_2x2_is_inverse_square_root():
    V = torch.tensor([[2.0, 0.7], [0.7, 0.5]], dtype=torch.float64)
    wrr, wri, wii = whitening_2x2(V[0, 0], V[0, 1], V[1, 1])
    W = torch.stack([torch.stack([wrr, wri]), torch.stack([wri, wii])])
    assert torch.allclose(W @ V @ W, torch.eye(2, dtype=torch.float64), atol=1e-12)
    evals, evecs = torch.linalg.eigh(V)
    ref = evecs @ torch.diag(evals.rsqrt()) @ evecs.T
    assert torch.allclose(W, ref, atol=1e-12)


def test_batchnorm_whitens_in_train_and_uses_running_stats_in_eval():
    g = make_generator(0, "bn")
    # an improper (non-circular) complex input with mean and correlated Re/Im
    x = torch.randn(4000, 2, dtype=torch.float64, generator=g)
    mix = torch.tensor([[2.0, 0.0], [1.5, 0.5]], dtype=torch.float64)
    xr, xi = (x @ mix.T).unbind(-1)
    z = torch.complex(xr + 3.0, xi - 1.0).reshape(4000, 1)
    bn = ComplexBatchNorm(1, dim=-1, momentum=1.0, dtype=torch.float64)
    out = bn(z)
    u = torch.stack([out.real, out.imag], -1).reshape(-1, 2) * math.sqrt(2.0)     # undo γ = I/√2
    cov = u.T @ u / u.shape[0]
    assert u.mean(0).abs().max() < 1e-10
    assert torch.allclose(cov, torch.eye(2, dtype=torch.float64), atol=1e-4)     # eps = 1e-5 on V
    # momentum 1: the running statistics are this batch's (covariance unbiased)
    bn.eval()
    out_eval = bn(z)
    n = z.shape[0]
    # eval whitens with the unbiased covariance n/(n-1) V: the output shrinks by sqrt((n-1)/n)
    assert torch.allclose(out_eval, out * math.sqrt((n - 1) / n), rtol=1e-8, atol=1e-8)
    assert int(bn.num_batches_tracked) == 1


def test_batchnorm_fresh_eval_is_identity_and_errors():
    bn = ComplexBatchNorm(3).eval()
    z = torch.randn(5, 3, 4, dtype=torch.complex64, generator=make_generator(0, "id"))
    # running cov I/2 + eps; γ = I/√2: out = z / sqrt(1 + 2 eps)
    assert torch.allclose(bn(z), z / math.sqrt(1 + 2e-5), atol=1e-6)
    bn.train()
    with pytest.raises(ValueError, match="more than one value"):
        bn(torch.randn(1, 3, dtype=torch.complex64))
    with pytest.raises(ValueError, match="must have size 3"):
        bn(torch.randn(4, 2, dtype=torch.complex64))
    with pytest.raises(ValueError, match="momentum"):
        ComplexBatchNorm(3, momentum=0.0)


def test_layernorm_per_sample_whitening():
    g = make_generator(0, "ln")
    z = _cn((3, 500), g) * torch.tensor([1.0, 5.0, 0.5], dtype=torch.float64)[:, None] + 2.0
    out = ComplexLayerNorm(500, dtype=torch.float64)(z) * math.sqrt(2.0)
    for row in out:
        u = torch.stack([row.real, row.imag])
        assert u.mean(1).abs().max() < 1e-10
        # eps = 1e-5 on a per-component variance ≥ 0.125: a relative error below 1e-4
        assert torch.allclose(u @ u.T / u.shape[1], torch.eye(2, dtype=torch.float64), atol=1e-3)
    with pytest.raises(ValueError, match="expected"):
        ComplexLayerNorm(4)(torch.randn(2, 5, dtype=torch.complex64))


def test_conv_input_errors():
    conv = ComplexConv1d(2, 2, 3)
    with pytest.raises(ValueError, match="C_in = 2"):
        conv(torch.randn(4, 3, 8, dtype=torch.complex64))
    with pytest.raises(ValueError, match="divisible by groups"):
        ComplexConv1d(3, 2, 3, groups=2)
    with pytest.raises(ValueError, match="padding_mode"):
        ComplexConv2d(2, 2, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match="kernel_size"):
        ComplexConv1d(2, 2, 0)


def test_layers_train_on_a_complex_regression():
    """A tiny complex network fits a fixed complex linear map (the layers compose and learn)."""
    g = make_generator(0, "fit")
    net = torch.nn.Sequential(ComplexLinear(4, 8, generator=g), ComplexLayerNorm(8), ModReLU(8, bias_init=-0.1),
                              ComplexLinear(8, 4, generator=g))
    W = torch.randn(4, 4, dtype=torch.complex64, generator=g)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    x = torch.randn(256, 4, dtype=torch.complex64, generator=g)
    first = None
    for _ in range(300):
        loss = (net(x) - x @ W.T).abs().pow(2).mean()
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.1 * first
