r"""IFFT-C2VNN (seed 001, §III-B): delay-domain peak windows and a complex convolutional network.

Pre-processing (seed eqs. 15-20; ``shared/design/s1-bistatic.md`` §2.4):

* (17) Ğ = F^H Ĥ_mat^T ``(N, M_r M_t)``: the unitary IDFT over subcarriers of the CSI
  vectorised column-major (receive index fastest: column t·M_r + r), F_{n,m} = e^{-j2πnm/N}/√N
  (:func:`idft_delay_profile`).  For b_n(τ) = e^{-j2π nΔf τ} a path appears as a Dirichlet
  kernel centred at m = τ/T_res, T_res = 1/(NΔf); on-grid delays give exactly K non-zero rows.
* (20) power delay profile p_m = Σ_j |Ğ_{m,j}|², its K largest circular local maxima m̂_k, and
  the windows T_k = Ğ[(m̂_k + i) mod N, :], i = -w..w (W = 2w + 1 rows; :func:`peak_windows`),
  normalised T_k ← T_k e^{-j∠T_k[w, 0]}/‖T_k‖_F (ours: removes the gain's scale and phase).

Network (seed eqs. 22-24; sizes lost, ours): input ``(1, W, M_r M_t)`` complex →
ComplexConv2d(1→C_1, k×k, padding k//2) → CReLU → ComplexConv2d(C_1→C_2, k×k, stride (1, 2),
padding k//2) → CReLU → flatten → ComplexLinear(→ hidden) → CReLU → ComplexLinear(hidden → 3)
→ ŷ = Re z = (θ̂, φ̂, δ̂): angles in radians, δ̂ = τ̂/T_res - m̂ in bins.  The layers are
:mod:`isackit.learning.complex` (real-block form W z = (A x_r - B x_i) + j(B x_r + A x_i)).

Loss (25): L = mean over windows of (θ̂ - θ)² + (φ̂ - φ)² + (δ̂ - δ)²; training goes through
the one loop :func:`~isackit.learning.training.fit` (:func:`train_c2vnn`) on fresh synthetic
minibatches (or a fixed set), with the best validation weights kept.

Complexity (seed eqs. 47-48): H_out = ⌊(H_in + 2p - k)/s⌋ + 1 per axis and
4·C_out·C_in·k_h·k_w·H_out·W_out real multiplications per complex convolution
(4·in·out per complex linear layer); :func:`forward_multiplications` gives the formula and
:func:`measured_flops` PyTorch's ``FlopCounterMode`` count of the same forward pass.

Shapes: CSI ``(..., N, M_r, M_t)``; windows ``(..., K, W, M_r M_t)``; predictions ``(..., K, 3)``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from pydantic import Field, field_validator
from torch import nn

from .._config import StrictModel
from .._dtypes import complex_dtype
from ..seeding import make_generator
from .complex import ComplexConv2d, ComplexLinear, crelu
from .training import TrainingConfig, TrainingLog, fit

__all__ = [
    "C2VNN",
    "C2VNNConfig",
    "c2vnn_estimate",
    "conv_output_shape",
    "forward_multiplications",
    "idft_delay_profile",
    "match_windows",
    "measured_flops",
    "normalise_windows",
    "peak_windows",
    "train_c2vnn",
]


class C2VNNConfig(StrictModel):
    """Architecture of IFFT-C2VNN (the seed's sizes were lost; these are ours)."""

    window: int = Field(7, ge=1)               # W = 2w + 1 rows around each peak
    conv_channels: list[int] = [8, 16]         # C_1, C_2
    kernel: int = Field(3, ge=1)
    hidden: int = Field(64, ge=1)

    @field_validator("window", "kernel")
    @classmethod
    def _odd(cls, v: int) -> int:
        if v % 2 == 0:
            raise ValueError(f"must be odd, got {v}")
        return v

    @field_validator("conv_channels")
    @classmethod
    def _two(cls, v: list[int]) -> list[int]:
        if len(v) != 2 or any(c < 1 for c in v):
            raise ValueError(f"conv_channels must be two positive integers, got {v}")
        return v


# ---------------------------------------------------------------------------------------
# pre-processing
# ---------------------------------------------------------------------------------------
def idft_delay_profile(H: torch.Tensor) -> torch.Tensor:
    r"""Ğ = F^H Ĥ_mat^T (seed eq. 17): ``(..., N, M_r, M_t)`` → ``(..., N, M_r M_t)``.

    Column t·M_r + r (column-major vec, receive index fastest); unitary IDFT over n.

    Example:
        >>> N = 8
        >>> n = torch.arange(N, dtype=torch.float64)
        >>> H = torch.polar(torch.ones(N, dtype=torch.float64), -2 * math.pi * n * 3 / N).reshape(N, 1, 1)  # τ = 3 T_res
        >>> G = idft_delay_profile(H)
        >>> int(G.abs().argmax()), round(float(G.abs().max()) ** 2, 9)
        (3, 8.0)
    """
    if H.ndim < 3 or not H.is_complex():
        raise ValueError(f"H must be complex (..., N, M_r, M_t), got {H.dtype} {tuple(H.shape)}")
    X = H.transpose(-1, -2).reshape(*H.shape[:-2], H.shape[-1] * H.shape[-2])
    return torch.fft.ifft(X, dim=-2, norm="ortho")


def peak_windows(G: torch.Tensor, num_paths: int, window: int) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The K strongest circular local maxima of the PDP and the rows around them (eq. 20).

    Args:
        G: ``(..., N, D)`` delay-domain CSI (:func:`idft_delay_profile`).
        num_paths: K.
        window: W = 2w + 1 (odd).

    Returns:
        ``(windows (..., K, W, D), peaks (..., K) int64)``; peaks sorted by index.  Local maxima:
        p_m ≥ p_{m-1} and p_m > p_{m+1} (circular); if there are fewer than K, the strongest
        remaining bins fill in.
    """
    N = G.shape[-2]
    if window % 2 == 0 or not 1 <= window <= N:
        raise ValueError(f"window must be odd and at most N = {N}, got {window}")
    if not 1 <= num_paths <= N:
        raise ValueError(f"num_paths must be in [1, N = {N}], got {num_paths}")
    p = G.real.square().add(G.imag.square()).sum(-1)  # (..., N)
    is_max = (p >= p.roll(1, -1)) & (p > p.roll(-1, -1))
    score = torch.where(is_max, p, p - 2 * p.amax(-1, keepdim=True) - 1)  # maxima first
    peaks = score.topk(num_paths, dim=-1).indices.sort(-1).values
    w = window // 2
    rows = (peaks[..., None] + torch.arange(-w, w + 1, device=G.device)) % N  # (..., K, W)
    win = torch.gather(G.unsqueeze(-3).expand(*G.shape[:-2], num_paths, N, G.shape[-1]), -2,
                       rows[..., None].expand(*rows.shape, G.shape[-1]))
    return win, peaks


def normalise_windows(T: torch.Tensor) -> torch.Tensor:
    """T ← T e^{-j∠T[w, 0]} / ‖T‖_F for windows ``(..., W, D)`` (zero windows stay zero)."""
    w = T.shape[-2] // 2
    ref = T[..., w, 0]
    phase = torch.where(ref.abs() > 0, ref / ref.abs().clamp_min(torch.finfo(T.real.dtype).tiny),
                        torch.ones_like(ref))
    norm = torch.linalg.vector_norm(T, dim=(-2, -1)).clamp_min(torch.finfo(T.real.dtype).tiny)
    return T * (phase.conj() / norm)[..., None, None]


def match_windows(peaks: torch.Tensor, delays_bins: torch.Tensor, N: int, max_distance: float
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Match each window to the nearest true path (circular distance in bins).

    Args:
        peaks: ``(..., K_w)`` window centres m̂; delays_bins: ``(..., K)`` τ/T_res.
        N: the number of bins; max_distance: windows farther than this from every path are
            unmatched.

    Returns:
        ``(index (..., K_w) of the matched path, δ = τ/T_res - m̂ wrapped to [-N/2, N/2),
        matched (..., K_w) bool)``.
    """
    d = delays_bins[..., None, :] - peaks[..., :, None].to(delays_bins.dtype)  # (..., K_w, K)
    d = torch.remainder(d + N / 2, N) - N / 2
    idx = d.abs().argmin(-1)
    delta = d.gather(-1, idx[..., None])[..., 0]
    return idx, delta, delta.abs() <= max_distance


# ---------------------------------------------------------------------------------------
# the network
# ---------------------------------------------------------------------------------------
def conv_output_shape(config: C2VNNConfig, width: int) -> tuple[int, int]:
    """(H, W) after the two convolutions, H_out = ⌊(H_in + 2p - k)/s⌋ + 1 per axis (eq. 47)."""
    k, p = config.kernel, config.kernel // 2
    h1, w1 = (config.window + 2 * p - k) + 1, (width + 2 * p - k) + 1
    return (h1 + 2 * p - k) + 1, (w1 + 2 * p - k) // 2 + 1


class C2VNN(nn.Module):
    r"""IFFT-C2VNN's network: windows ``(..., W, D)`` complex → ``(..., 3)`` real (θ̂, φ̂, δ̂).

    Args:
        config: :class:`C2VNNConfig`.
        width: D = M_r M_t (columns of a window).
        generator: initialisation RNG (:func:`isackit.seeding.make_generator`).
        dtype: real parameter dtype (float32 → complex64 inputs).
    """

    def __init__(self, config: C2VNNConfig, width: int, *, generator: torch.Generator | None = None,
                 dtype: torch.dtype = torch.float32):
        super().__init__()
        self.config = config
        self.width = int(width)
        c1, c2 = config.conv_channels
        k, p = config.kernel, config.kernel // 2
        kw = dict(generator=generator, dtype=dtype)
        self.conv1 = ComplexConv2d(1, c1, k, stride=1, padding=p, **kw)
        self.conv2 = ComplexConv2d(c1, c2, k, stride=(1, 2), padding=p, **kw)
        h, w = conv_output_shape(config, self.width)
        self.fc1 = ComplexLinear(c2 * h * w, config.hidden, **kw)
        self.fc2 = ComplexLinear(config.hidden, 3, **kw)

    def forward(self, T: torch.Tensor) -> torch.Tensor:
        batch = T.shape[:-2]
        z = T.reshape(-1, 1, *T.shape[-2:])
        z = crelu(self.conv1(z))
        z = crelu(self.conv2(z))
        z = crelu(self.fc1(z.flatten(1)))
        return self.fc2(z).real.reshape(*batch, 3)


def forward_multiplications(config: C2VNNConfig, width: int) -> dict[str, int]:
    r"""Real multiplications of one forward pass per window (seed eqs. 47-48): per complex
    convolution 4·C_out·C_in·k²·H_out·W_out, per complex linear layer 4·in·out."""
    c1, c2 = config.conv_channels
    k = config.kernel
    h1, w1 = config.window, width
    h2, w2 = conv_output_shape(config, width)
    out = {"conv1": 4 * c1 * 1 * k * k * h1 * w1, "conv2": 4 * c2 * c1 * k * k * h2 * w2,
           "fc1": 4 * c2 * h2 * w2 * config.hidden, "fc2": 4 * config.hidden * 3}
    out["total"] = sum(out.values())
    return out


def measured_flops(model: C2VNN) -> int:
    """FLOPs of one forward pass (one window) counted by ``torch.utils.flop_counter`` (a
    multiply-add counts 2), the counterpart of the seed's TensorFlow profiler."""
    from torch.utils.flop_counter import FlopCounterMode

    dt = next(model.parameters()).dtype
    cdt = complex_dtype(dt)
    x = torch.zeros(1, model.config.window, model.width, dtype=cdt)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return int(counter.get_total_flops())


# ---------------------------------------------------------------------------------------
# inference and training
# ---------------------------------------------------------------------------------------
def c2vnn_estimate(model: C2VNN, H: torch.Tensor, num_paths: int, delay_resolution: float
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    r"""IFFT-C2VNN on CSI ``(..., N, M_r, M_t)``: ``(estimates (..., K, 3) (θ̂, φ̂, τ̂), peaks (..., K))``.

    τ̂ = ((m̂ + δ̂) mod N)·T_res; the input is cast to the model's complex dtype.
    """
    dt = next(model.parameters()).dtype
    cdt = complex_dtype(dt)
    G = idft_delay_profile(H.to(cdt))
    N = G.shape[-2]
    T, peaks = peak_windows(G, num_paths, model.config.window)
    with torch.no_grad():
        y = model(normalise_windows(T)).to(H.real.dtype)
    tau = torch.remainder(peaks.to(y.dtype) + y[..., 2], N) * delay_resolution
    return torch.stack([y[..., 0], y[..., 1], tau], -1), peaks


def _loss(model: C2VNN, T: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (model(T) - y).square().sum(-1).mean()


def train_c2vnn(model: C2VNN, data, config: TrainingConfig, seed: int, *,
                validation: tuple[torch.Tensor, torch.Tensor] | None = None,
                progress: Callable[[int, int, str], None] | None = None, what: str = "IFFT-C2VNN",
                checkpoint_dir: str | Path | None = None, identity: Mapping[str, Any] | None = None
                ) -> TrainingLog:
    r"""Train with the MSE loss (25) through :func:`fit`; ``config.steps`` minibatches.

    Args:
        data: either ``sample(batch_size, generator) -> (windows (P, W, D), labels (P, 3))``,
            a source of fresh synthetic minibatches drawn from a generator seeded with
            ``seed`` (checkpointed by :func:`fit`, so a resumed training repeats the same
            batches), or a fixed set ``(windows, labels)`` visited once per epoch in the
            order of a generator seeded with ``derive_seed(seed, "epoch", e)``.
        validation: fixed ``(windows, labels)``; the validation loss is logged at every
            logged step and the weights with the lowest one are restored at the end (the
            best-validation checkpoint).
    """
    state: dict[str, Any] = {"epoch": -1, "perm": None}
    generators = {}
    if callable(data):
        g = make_generator(seed, "data")
        generators["data"] = g

        def step(t: int):
            T, y = data(config.batch_size, g)
            return _loss(model, T, y)
    else:
        windows, labels = data
        P = windows.shape[0]
        if labels.shape != (P, 3):
            raise ValueError(f"labels must be (P={P}, 3), got {tuple(labels.shape)}")
        bs = min(config.batch_size, P)
        per_epoch = max(1, P // bs)

        def step(t: int):
            e, i = divmod(t, per_epoch)
            if e != state["epoch"]:
                ge = make_generator(seed, "epoch", e)
                state["epoch"], state["perm"] = e, torch.randperm(P, generator=ge).to(windows.device)
            idx = state["perm"][i * bs:(i + 1) * bs]
            return _loss(model, windows[idx], labels[idx])

    best: dict[str, Any] = {"loss": math.inf, "state": None}
    monitor = None
    if validation is not None:
        Tv, yv = validation

        def monitor(m):
            v = float(_loss(m, Tv, yv))
            if v < best["loss"]:
                best["loss"], best["state"] = v, copy.deepcopy(m.state_dict())
            return {"validation": v}

    log = fit(model, step, config, generators=generators, progress=progress, what=what,
              monitor=monitor, checkpoint_dir=checkpoint_dir, identity=identity)
    if best["state"] is not None:
        model.load_state_dict(best["state"])
    return log
