r"""Complex-valued neural-network layers: linear, convolution, activations, normalisation.

Every layer maps complex tensors to complex tensors and stores REAL parameters (the real and
imaginary parts of its complex weights), so any PyTorch optimiser, weight decay and
``state_dict`` tool works unchanged.  A complex weight W = A + jB acts on z = x_r + j x_i as

.. math::  W z = (A x_r - B x_i) + j\,(B x_r + A x_i),

which is computed with real matrix products / convolutions (the *real-block* form).  It equals
the plain complex product ``(A + 1j*B) @ z`` (``tests/test_learning_complex.py`` checks both).

Shapes follow PyTorch's real layers, with any number of leading batch dimensions:

* :class:`ComplexLinear`: ``(..., in_features) -> (..., out_features)``;
* :class:`ComplexConv1d`: ``(..., C_in, L) -> (..., C_out, L')``;
* :class:`ComplexConv2d`: ``(..., C_in, H, W) -> (..., C_out, H', W')``;
* activations: any shape (:class:`ModReLU`'s bias broadcasts along ``dim``);
* :class:`ComplexBatchNorm`: ``(N, C, *)`` (``dim=1``, PyTorch's layout) or ``(..., C)``
  (``dim=-1``); statistics over every dimension but ``dim``;
* :class:`ComplexLayerNorm`: ``(..., *normalized_shape)``; statistics per sample.

dtype rule: a layer built with ``dtype=torch.float32`` (the default) takes complex64 inputs,
one built with float64 (or after ``.double()``) takes complex128; the output has the input's
dtype and device.  A mismatched or real input is a one-line ``TypeError``.

Initialisation (Trabelsi et al., "Deep Complex Networks", ICLR 2018, Sec. 3.6): |W| is
Rayleigh distributed with scale σ and arg W uniform, so Var(W) = E|W|² = 2σ²;
``init="glorot"`` uses σ = 1/sqrt(fan_in + fan_out), ``init="he"`` σ = 1/sqrt(fan_in).
Biases start at zero.  Pass ``generator`` (e.g. ``isackit.seeding.make_generator``) for a
reproducible initialisation that does not read PyTorch's global RNG.

Normalisation (Trabelsi et al., Sec. 3.5): the centred input z - μ is whitened with the
inverse square root of its 2×2 covariance V = [[V_rr, V_ri], [V_ri, V_ii]] (closed form for
a 2×2 SPD matrix: with s = sqrt(det V), t = sqrt(V_rr + V_ii + 2s),
V^{-1/2} = [[V_ii + s, -V_ri], [-V_ri, V_rr + s]] / (s t)), then scaled by a learnable
symmetric 2×2 γ (initialised to I/√2, so the output has E|z|² = 1) and shifted by a complex β.
All layers are differentiable (float64 ``gradcheck`` in the tests).

Example:
    >>> import torch
    >>> from isackit.seeding import make_generator
    >>> layer = ComplexLinear(4, 3, generator=make_generator(0, "doc"))
    >>> z = torch.randn(2, 5, 4, dtype=torch.complex64, generator=make_generator(0, "x"))
    >>> y = layer(z)
    >>> y.shape, y.dtype
    (torch.Size([2, 5, 3]), torch.complex64)
    >>> bool(torch.allclose(y, z @ layer.weight.T + layer.bias, atol=1e-5))
    True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "ComplexLinear",
    "ComplexConv1d",
    "ComplexConv2d",
    "CReLU",
    "ModReLU",
    "ZReLU",
    "Cardioid",
    "SplitTanh",
    "ComplexBatchNorm",
    "ComplexLayerNorm",
    "crelu",
    "modrelu",
    "zrelu",
    "cardioid",
    "split_tanh",
    "complex_init_",
    "whitening_2x2",
    "to_real_features",
]

Init = Literal["glorot", "he"]
PaddingMode = Literal["zeros", "reflect", "replicate", "circular"]


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------
def _check_complex_input(z: torch.Tensor, like: torch.Tensor, layer: str, min_dim: int = 1) -> None:
    if not isinstance(z, torch.Tensor):
        raise TypeError(f"{layer}: input must be a complex tensor, got {type(z).__name__}")
    if not z.is_complex():
        raise TypeError(f"{layer}: input must be complex, got dtype {z.dtype}")
    if z.real.dtype != like.dtype:
        raise TypeError(f"{layer}: input dtype {z.dtype} does not match the layer's {like.dtype} parameters "
                        f"(cast the input or the layer, e.g. layer.double() for complex128)")
    if z.dim() < min_dim:
        raise ValueError(f"{layer}: input must have at least {min_dim} dimensions, got shape {tuple(z.shape)}")


def _finite_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def complex_init_(real: torch.Tensor, imag: torch.Tensor, fan_in: int, fan_out: int, init: Init = "glorot",
                  generator: torch.Generator | None = None) -> None:
    """Fill ``real``/``imag`` in place with a Rayleigh-modulus, uniform-phase complex init.

    σ = 1/sqrt(fan_in + fan_out) (``"glorot"``) or 1/sqrt(fan_in) (``"he"``); |W| ~ Rayleigh(σ)
    via σ sqrt(-2 ln U), arg W ~ U[-π, π); Var(W) = 2σ².
    """
    if init == "glorot":
        sigma = 1.0 / math.sqrt(fan_in + fan_out)
    elif init == "he":
        sigma = 1.0 / math.sqrt(fan_in)
    else:
        raise ValueError(f"init must be 'glorot' or 'he', got {init!r}")
    with torch.no_grad():
        u = torch.rand(real.shape, generator=generator, dtype=real.dtype, device=real.device)
        modulus = sigma * torch.sqrt(-2.0 * torch.log1p(-u))          # 1 - U avoids log(0)
        phase = (torch.rand(real.shape, generator=generator, dtype=real.dtype, device=real.device) * 2 - 1) * math.pi
        real.copy_(modulus * torch.cos(phase))
        imag.copy_(modulus * torch.sin(phase))


def to_real_features(z: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """[Re z, Im z] concatenated along ``dim`` (the usual complex → real-network interface).

    ``(..., n) -> (..., 2n)`` for ``dim=-1``; differentiable.
    """
    if not z.is_complex():
        raise TypeError(f"to_real_features: input must be complex, got dtype {z.dtype}")
    return torch.cat([z.real, z.imag], dim=dim)


# --------------------------------------------------------------------------------------
# linear and convolution
# --------------------------------------------------------------------------------------
class _ComplexWeights(nn.Module):
    """Real parameters ``weight_real``/``weight_imag`` (A, B) and optional ``bias_real``/``bias_imag``
    of a complex affine layer, seen as complex tensors A + jB (differentiable views)."""

    def _reset(self, fan_in: int, fan_out: int, generator: torch.Generator | None) -> None:
        complex_init_(self.weight_real, self.weight_imag, fan_in, fan_out, self.init, generator)
        if self.bias_real is not None:
            with torch.no_grad():
                self.bias_real.zero_()
                self.bias_imag.zero_()

    @property
    def weight(self) -> torch.Tensor:
        """The complex weight A + jB (the shape of ``weight_real``: ``(out, in)`` for a linear layer,
        ``(C_out, C_in / groups, *kernel_size)`` for a convolution)."""
        return torch.complex(self.weight_real, self.weight_imag)

    @property
    def bias(self) -> torch.Tensor | None:
        """The complex bias ``(out,)`` / ``(C_out,)`` or None."""
        return None if self.bias_real is None else torch.complex(self.bias_real, self.bias_imag)


class ComplexLinear(_ComplexWeights):
    r"""y = W z + b with complex W = A + jB ``(out, in)`` and b: ``(..., in) -> (..., out)``.

    Computed as one real product of [x_r, x_i] with the block matrix [[A, -B], [B, A]].

    Args:
        in_features, out_features: sizes; bias: add a complex bias.
        init: ``"glorot"`` or ``"he"`` (see the module docstring); generator: init RNG.
        dtype: real parameter dtype (float32 → complex64 inputs, float64 → complex128).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, init: Init = "glorot",
                 generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None):
        super().__init__()
        self.in_features = _finite_positive_int(in_features, "in_features")
        self.out_features = _finite_positive_int(out_features, "out_features")
        self.init = init
        kw = dict(dtype=dtype, device=device)
        self.weight_real = nn.Parameter(torch.empty(self.out_features, self.in_features, **kw))
        self.weight_imag = nn.Parameter(torch.empty(self.out_features, self.in_features, **kw))
        if bias:
            self.bias_real = nn.Parameter(torch.zeros(self.out_features, **kw))
            self.bias_imag = nn.Parameter(torch.zeros(self.out_features, **kw))
        else:
            self.register_parameter("bias_real", None)
            self.register_parameter("bias_imag", None)
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Re-draw the weights (:func:`complex_init_`) and zero the bias."""
        self._reset(self.in_features, self.out_features, generator)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        _check_complex_input(z, self.weight_real, type(self).__name__)
        if z.shape[-1] != self.in_features:
            raise ValueError(f"{type(self).__name__}: expected (..., {self.in_features}) input, got shape {tuple(z.shape)}")
        A, B = self.weight_real, self.weight_imag
        block = torch.cat([torch.cat([A, -B], dim=1), torch.cat([B, A], dim=1)], dim=0)    # (2out, 2in)
        bias = None if self.bias_real is None else torch.cat([self.bias_real, self.bias_imag])
        y = F.linear(torch.cat([z.real, z.imag], dim=-1), block, bias)
        return torch.complex(y[..., :self.out_features], y[..., self.out_features:])

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias_real is not None}"


class _ComplexConvNd(_ComplexWeights):
    _nd = 0
    _conv = None

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: PaddingMode = "zeros", *, init: Init = "glorot",
                 generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None):
        super().__init__()
        name = type(self).__name__
        self.in_channels = _finite_positive_int(in_channels, "in_channels")
        self.out_channels = _finite_positive_int(out_channels, "out_channels")
        self.groups = _finite_positive_int(groups, "groups")
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(f"{name}: in_channels ({in_channels}) and out_channels ({out_channels}) must be "
                             f"divisible by groups ({groups})")
        self.kernel_size = self._tuple(kernel_size, "kernel_size")
        self.stride = self._tuple(stride, "stride")
        self.dilation = self._tuple(dilation, "dilation")
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"{name}: padding must be 'same', 'valid' or integers, got {padding!r}")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError(f"{name}: padding='same' needs stride 1, got {self.stride}")
            self.padding = padding
        else:
            self.padding = self._tuple(padding, "padding", allow_zero=True)
        if padding_mode not in ("zeros", "reflect", "replicate", "circular"):
            raise ValueError(f"{name}: padding_mode must be 'zeros', 'reflect', 'replicate' or 'circular', "
                             f"got {padding_mode!r}")
        self.padding_mode = padding_mode
        self.init = init
        kw = dict(dtype=dtype, device=device)
        shape = (self.out_channels, self.in_channels // self.groups, *self.kernel_size)
        self.weight_real = nn.Parameter(torch.empty(shape, **kw))
        self.weight_imag = nn.Parameter(torch.empty(shape, **kw))
        if bias:
            self.bias_real = nn.Parameter(torch.zeros(self.out_channels, **kw))
            self.bias_imag = nn.Parameter(torch.zeros(self.out_channels, **kw))
        else:
            self.register_parameter("bias_real", None)
            self.register_parameter("bias_imag", None)
        self.reset_parameters(generator)

    def _tuple(self, v, name: str, allow_zero: bool = False) -> tuple[int, ...]:
        vals = (v,) * self._nd if isinstance(v, int) and not isinstance(v, bool) else tuple(v)
        lo = 0 if allow_zero else 1
        if len(vals) != self._nd or any(isinstance(x, bool) or not isinstance(x, int) or x < lo for x in vals):
            raise ValueError(f"{type(self).__name__}: {name} must be {'a non-negative' if allow_zero else 'a positive'} "
                             f"integer or {self._nd} of them, got {v!r}")
        return vals

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Re-draw the weights (:func:`complex_init_`; fans include the kernel size) and zero the bias."""
        k = math.prod(self.kernel_size)
        self._reset(self.in_channels // self.groups * k, self.out_channels // self.groups * k, generator)

    def _pad_amounts(self) -> list[int]:
        """F.pad amounts (last dim first) for a non-zero padding mode."""
        out: list[int] = []
        for d in reversed(range(self._nd)):
            if self.padding == "valid":
                lo = hi = 0
            elif self.padding == "same":
                total = self.dilation[d] * (self.kernel_size[d] - 1)
                lo, hi = total // 2, total - total // 2
            else:
                lo = hi = self.padding[d]
            out += [lo, hi]
        return out

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        name = type(self).__name__
        _check_complex_input(z, self.weight_real, name, self._nd + 1)
        if z.shape[-self._nd - 1] != self.in_channels:
            dims = ", ".join(["C_in"] + ["L", "H, W"][self._nd - 1:self._nd])
            raise ValueError(f"{name}: expected (..., {dims}) input with C_in = {self.in_channels}, "
                             f"got shape {tuple(z.shape)}")
        lead = z.shape[:-self._nd - 1]
        x = z.reshape(-1, *z.shape[-self._nd - 1:])
        n = x.shape[0]
        X = torch.cat([x.real, x.imag], dim=0)                                   # (2n, C_in, *)
        padding = self.padding
        if self.padding_mode != "zeros" and padding != "valid":
            X = F.pad(X, self._pad_amounts(), mode=self.padding_mode)
            padding = 0
        # one convolution with the stacked kernels [A_g; B_g] of every group g
        g, co = self.groups, self.out_channels // self.groups
        A = self.weight_real.reshape(g, co, *self.weight_real.shape[1:])
        B = self.weight_imag.reshape(g, co, *self.weight_imag.shape[1:])
        W = torch.cat([A, B], dim=1).reshape(2 * self.out_channels, *self.weight_real.shape[1:])
        Y = type(self)._conv(X, W, None, self.stride, padding, self.dilation, g)       # (2n, 2 C_out, *)
        Y = Y.reshape(2, n, g, 2, co, *Y.shape[2:])                                # (re/im in, n, g, A/B, co, *)
        P, Q = Y[:, :, :, 0], Y[:, :, :, 1]                                         # A·x, B·x
        yr = (P[0] - Q[1]).reshape(n, self.out_channels, *Y.shape[5:])
        yi = (Q[0] + P[1]).reshape(n, self.out_channels, *Y.shape[5:])
        if self.bias_real is not None:
            shape = (self.out_channels,) + (1,) * self._nd
            yr = yr + self.bias_real.reshape(shape)
            yi = yi + self.bias_imag.reshape(shape)
        y = torch.complex(yr, yi)
        return y.reshape(*lead, *y.shape[1:])

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, groups={self.groups}, "
                f"bias={self.bias_real is not None}, padding_mode={self.padding_mode!r}")


class ComplexConv1d(_ComplexConvNd):
    r"""Complex 1-D convolution (cross-correlation, as ``torch.nn.Conv1d``): ``(..., C_in, L) -> (..., C_out, L')``.

    y = (A ⋆ x_r - B ⋆ x_i) + j (B ⋆ x_r + A ⋆ x_i) + b with the complex kernel A + jB; the same
    ``stride``, ``padding`` (integers, ``"same"``, ``"valid"``), ``dilation``, ``groups`` and
    ``padding_mode`` as ``torch.nn.Conv1d`` (non-zero padding modes pad Re and Im alike).
    """

    _nd = 1
    _conv = staticmethod(F.conv1d)


class ComplexConv2d(_ComplexConvNd):
    r"""Complex 2-D convolution: ``(..., C_in, H, W) -> (..., C_out, H', W')`` (see :class:`ComplexConv1d`)."""

    _nd = 2
    _conv = staticmethod(F.conv2d)


# --------------------------------------------------------------------------------------
# activations
# --------------------------------------------------------------------------------------
def _unit(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(|z|, z/|z|) with z/|z| := 0 at z = 0 (finite gradients everywhere else)."""
    m = z.abs()
    safe = torch.where(m > 0, m, torch.ones_like(m))
    return m, torch.where(m > 0, z / safe, torch.zeros_like(z))


def crelu(z: torch.Tensor) -> torch.Tensor:
    """CReLU(z) = ReLU(Re z) + j ReLU(Im z) (Trabelsi et al. 2018)."""
    return torch.complex(F.relu(z.real), F.relu(z.imag))


def zrelu(z: torch.Tensor) -> torch.Tensor:
    """zReLU(z) = z if arg z ∈ [0, π/2] (Re z ≥ 0 and Im z ≥ 0), else 0 (Guberman 2016)."""
    keep = (z.real >= 0) & (z.imag >= 0)
    return torch.where(keep, z, torch.zeros_like(z))


def modrelu(z: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """modReLU(z) = ReLU(|z| + b) z/|z| (Arjovsky et al. 2016); ``bias`` broadcasts against z.

    The output is 0 at z = 0; b ≤ 0 gives a dead zone |z| < -b, b > 0 a discontinuity at 0.
    """
    m, u = _unit(z)
    return F.relu(m + bias) * u


def cardioid(z: torch.Tensor) -> torch.Tensor:
    """Cardioid(z) = ½ (1 + cos arg z) z = ½ (1 + Re z / |z|) z (Virtue et al. 2017); 0 at z = 0."""
    m, u = _unit(z)
    return 0.5 * (1.0 + u.real) * z


def split_tanh(z: torch.Tensor) -> torch.Tensor:
    """tanh(Re z) + j tanh(Im z)."""
    return torch.complex(torch.tanh(z.real), torch.tanh(z.imag))


class _ComplexActivation(nn.Module):
    """An element-wise complex activation as a module (any shape); subclasses set ``function``."""

    function = staticmethod(crelu)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if not z.is_complex():
            raise TypeError(f"{type(self).__name__}: input must be complex, got dtype {z.dtype}")
        return self.function(z)


class CReLU(_ComplexActivation):
    """Module form of :func:`crelu` (any shape)."""

    function = staticmethod(crelu)


class ZReLU(_ComplexActivation):
    """Module form of :func:`zrelu` (any shape)."""

    function = staticmethod(zrelu)


class Cardioid(_ComplexActivation):
    """Module form of :func:`cardioid` (any shape)."""

    function = staticmethod(cardioid)


class SplitTanh(_ComplexActivation):
    """Module form of :func:`split_tanh` (any shape)."""

    function = staticmethod(split_tanh)


class ModReLU(nn.Module):
    """:func:`modrelu` with a learnable real bias per feature along ``dim`` (initialised to ``bias_init``).

    Args:
        num_features: size of ``dim``; dim: the feature dimension (-1: ``(..., C)``; 1: ``(N, C, *)``).
    """

    def __init__(self, num_features: int, dim: int = -1, bias_init: float = 0.0, *,
                 dtype: torch.dtype = torch.float32, device: torch.device | str | None = None):
        super().__init__()
        self.num_features = _finite_positive_int(num_features, "num_features")
        self.dim = int(dim)
        if not math.isfinite(float(bias_init)):
            raise ValueError(f"bias_init must be finite, got {bias_init!r}")
        self.bias = nn.Parameter(torch.full((self.num_features,), float(bias_init), dtype=dtype, device=device))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        _check_complex_input(z, self.bias, "ModReLU")
        d = self.dim % z.dim() if -z.dim() <= self.dim < z.dim() else None
        if d is None or z.shape[d] != self.num_features:
            raise ValueError(f"ModReLU: dimension {self.dim} of the input must have size {self.num_features}, "
                             f"got shape {tuple(z.shape)}")
        shape = [1] * z.dim()
        shape[d] = self.num_features
        return modrelu(z, self.bias.reshape(shape))

    def extra_repr(self) -> str:
        return f"num_features={self.num_features}, dim={self.dim}"


# --------------------------------------------------------------------------------------
# normalisation
# --------------------------------------------------------------------------------------
def whitening_2x2(vrr: torch.Tensor, vri: torch.Tensor, vii: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Entries (W_rr, W_ri, W_ii) of W = V^{-1/2} for SPD V = [[V_rr, V_ri], [V_ri, V_ii]] (elementwise).

    W = [[V_ii + s, -V_ri], [-V_ri, V_rr + s]] / (s t), s = sqrt(det V), t = sqrt(V_rr + V_ii + 2s).
    """
    s = torch.sqrt(vrr * vii - vri * vri)
    t = torch.sqrt(vrr + vii + 2 * s)
    inv = 1.0 / (s * t)
    return (vii + s) * inv, -vri * inv, (vrr + s) * inv


def _whiten_affine(xr, xi, mr, mi, vrr, vri, vii, gamma, beta):
    """(x - m) whitened by V^{-1/2}, then γ (3, ...) = (γ_rr, γ_ri, γ_ii) and β (2, ...)."""
    wrr, wri, wii = whitening_2x2(vrr, vri, vii)
    cr, ci = xr - mr, xi - mi
    ur, ui = wrr * cr + wri * ci, wri * cr + wii * ci
    if gamma is not None:
        ur, ui = gamma[0] * ur + gamma[1] * ui + beta[0], gamma[1] * ur + gamma[2] * ui + beta[1]
    return torch.complex(ur, ui)


def _affine_params(shape: tuple[int, ...], dtype, device) -> tuple[nn.Parameter, nn.Parameter]:
    gamma = torch.zeros((3, *shape), dtype=dtype, device=device)
    gamma[0] = gamma[2] = 1.0 / math.sqrt(2.0)
    return nn.Parameter(gamma), nn.Parameter(torch.zeros((2, *shape), dtype=dtype, device=device))


class ComplexBatchNorm(nn.Module):
    r"""Complex batch normalisation with 2×2 whitening (Trabelsi et al. 2018, Sec. 3.5).

    Training: per feature c, μ_c and the 2×2 covariance V_c of (Re, Im) over every dimension
    but ``dim`` (biased, + ``eps`` on the diagonal); out = γ_c V_c^{-1/2} (z - μ_c) + β_c.  The
    running mean and covariance are updated with ``momentum`` (unbiased covariance, as
    ``torch.nn.BatchNorm``) and used in eval mode (and always when
    ``track_running_stats=False`` is not set and the module is in eval mode).  The running
    covariance starts at I/2 and γ at I/√2, so a fresh layer in eval mode is the identity.

    Args:
        num_features: C, the size of ``dim``; dim: 1 for ``(N, C, *)`` (PyTorch layout) or
            -1 for ``(..., C)``; eps, momentum, affine, track_running_stats: as ``torch.nn.BatchNorm1d``.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True,
                 track_running_stats: bool = True, dim: int = 1, *, dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None):
        super().__init__()
        self.num_features = _finite_positive_int(num_features, "num_features")
        if not (math.isfinite(eps) and eps > 0):
            raise ValueError(f"eps must be positive and finite, got {eps!r}")
        if not (math.isfinite(momentum) and 0 < momentum <= 1):
            raise ValueError(f"momentum must be in (0, 1], got {momentum!r}")
        self.eps, self.momentum, self.dim = float(eps), float(momentum), int(dim)
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        kw = dict(dtype=dtype, device=device)
        if self.affine:
            self.gamma, self.beta = _affine_params((self.num_features,), dtype, device)
        else:
            self.register_parameter("gamma", None)
            self.register_parameter("beta", None)
        if self.track_running_stats:
            self.register_buffer("running_mean", torch.zeros(2, self.num_features, **kw))
            cov = torch.zeros(3, self.num_features, **kw)
            cov[0] = cov[2] = 0.5
            self.register_buffer("running_cov", cov)
            self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long, device=device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_cov", None)
            self.register_buffer("num_batches_tracked", None)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        like = self.gamma if self.gamma is not None else (self.running_cov if self.running_cov is not None else None)
        if like is not None:
            _check_complex_input(z, like, "ComplexBatchNorm", 1)
        elif not z.is_complex():
            raise TypeError(f"ComplexBatchNorm: input must be complex, got dtype {z.dtype}")
        if not -z.dim() <= self.dim < z.dim() or z.shape[self.dim] != self.num_features:
            raise ValueError(f"ComplexBatchNorm: dimension {self.dim} of the input must have size "
                             f"{self.num_features}, got shape {tuple(z.shape)}")
        d = self.dim % z.dim()
        x = z.movedim(d, -1)                                                       # (..., C)
        xr, xi = x.real, x.imag
        use_batch = self.training or not self.track_running_stats
        if use_batch:
            n = x.numel() // self.num_features
            if n < 2:
                raise ValueError(f"ComplexBatchNorm: training needs more than one value per feature, "
                                 f"got shape {tuple(z.shape)}")
            red = tuple(range(x.dim() - 1))
            mr, mi = xr.mean(red), xi.mean(red)
            cr, ci = xr - mr, xi - mi
            vrr, vri, vii = (cr * cr).mean(red), (cr * ci).mean(red), (ci * ci).mean(red)
            if self.training and self.track_running_stats:
                with torch.no_grad():
                    unbias = n / (n - 1)
                    self.running_mean.lerp_(torch.stack([mr, mi]).detach(), self.momentum)
                    self.running_cov.lerp_(torch.stack([vrr, vri, vii]).detach() * unbias, self.momentum)
                    self.num_batches_tracked.add_(1)
        else:
            mr, mi = self.running_mean[0], self.running_mean[1]
            vrr, vri, vii = self.running_cov[0], self.running_cov[1], self.running_cov[2]
        out = _whiten_affine(xr, xi, mr, mi, vrr + self.eps, vri, vii + self.eps, self.gamma, self.beta)
        return out.movedim(-1, d)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}, dim={self.dim}")


class ComplexLayerNorm(nn.Module):
    r"""Complex layer normalisation with 2×2 whitening over the last ``len(normalized_shape)`` dims.

    Per sample: μ and the 2×2 covariance V of (Re, Im) over the normalised dims (+ ``eps`` on
    the diagonal), out = γ V^{-1/2} (z - μ) + β with elementwise γ ``(3, *normalized_shape)``
    (initialised to I/√2) and β ``(2, *normalized_shape)`` (zeros).  Same in train and eval.
    """

    def __init__(self, normalized_shape: int | Sequence[int], eps: float = 1e-5, elementwise_affine: bool = True, *,
                 dtype: torch.dtype = torch.float32, device: torch.device | str | None = None):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        if not shape or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in shape):
            raise ValueError(f"normalized_shape must be positive integers, got {normalized_shape!r}")
        if math.prod(shape) < 2:
            raise ValueError(f"normalized_shape must hold at least 2 elements, got {normalized_shape!r}")
        if not (math.isfinite(eps) and eps > 0):
            raise ValueError(f"eps must be positive and finite, got {eps!r}")
        self.normalized_shape, self.eps = shape, float(eps)
        self.elementwise_affine = bool(elementwise_affine)
        if self.elementwise_affine:
            self.gamma, self.beta = _affine_params(shape, dtype, device)
        else:
            self.register_parameter("gamma", None)
            self.register_parameter("beta", None)
            self.register_buffer("_dtype_probe", torch.zeros((), dtype=dtype, device=device), persistent=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        like = self.gamma if self.gamma is not None else self._dtype_probe
        _check_complex_input(z, like, "ComplexLayerNorm", len(self.normalized_shape))
        k = len(self.normalized_shape)
        if tuple(z.shape[-k:]) != self.normalized_shape:
            raise ValueError(f"ComplexLayerNorm: expected (..., {', '.join(map(str, self.normalized_shape))}) input, "
                             f"got shape {tuple(z.shape)}")
        red = tuple(range(-k, 0))
        xr, xi = z.real, z.imag
        mr, mi = xr.mean(red, keepdim=True), xi.mean(red, keepdim=True)
        cr, ci = xr - mr, xi - mi
        vrr = (cr * cr).mean(red, keepdim=True) + self.eps
        vri = (cr * ci).mean(red, keepdim=True)
        vii = (ci * ci).mean(red, keepdim=True) + self.eps
        return _whiten_affine(xr, xi, mr, mi, vrr, vri, vii, self.gamma, self.beta)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
