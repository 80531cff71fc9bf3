r"""MoD-DNN (seed 002): frequency-diverse multi-task autoencoder, CNN spectrum calibrator,
unrolled MoDL-SSR with the sparse conjugate gradient, the full pipeline, and the learned
baselines DeepMUSIC and the CNN regressor.

Pipeline (seed 002, Fig. 2), for one CSI sample H ∈ C^{M×K} (M antennas, K tones):

1. normalise H ← H / sqrt(‖H‖²_F / (MK)) (unit average power per entry);
2. multi-task autoencoder (Sec. 3.1, eqs. 8–9): per tone k the real vector
   h̃(k) = [Re h(k); Im h(k)] ∈ R^{2M} is encoded, c(k) = ReLU(C_k h̃(k) + b_k) ∈ R^{d_c},
   and decoded by P subregion decoders, h̃_p(k) = D_{p,k} c(k) + b_{p,k} (linear); "AE I" has
   weights per tone (C_k: ``(K, d_c, 2M)``, D: ``(P, K, 2M, d_c)``), "AE II" shares them
   over the tones (``(1, d_c, 2M)``, ``(P, 1, 2M, d_c)``).  Training target (eq. 10): h̃(k)
   in the decoder of the sample's subregion, 0 in the others;
3. per branch p: R_p = H_p H_pᴴ / K scaled to tr R_p = M, coarray spectrum
   η̂_p = a_lᴴ R_p a_l / M² on the subregion grid and projection P_p
   (:mod:`isackit.estimators.coarray`, unit-norm convention);
4. MoDL-SSR (Sec. 4, the corrected reading of ``shared/design/s2-mod-dnn.md`` 2.4):
   η⁰ = η̂ (or SCG(η̂) with ``init="scg"``); for i = 0..I−1: z^i = C_w(η^i) (a 1-D CNN, the
   same weights at every iteration), η^{i+1} = SCG on (P + λI)η = η̂ + λz^i (MoDL's data
   consistency with the observed spectrum; ``data_term="previous"``: η^i + λz^i as printed),
   calling :func:`isackit.estimators.scg.sparse_conjugate_gradient` — the same function
   as the classical SCG estimator;
5. branch selection (not specified by the seed): p* = argmax_p ‖H_p‖²_F; θ̂ = the grid
   point of the largest entry of η^I_{p*}.

CNN calibrator (Sec. 4.3, eq. 30): four Conv1d layers, kernel 32, channels 1→4→8→4→1, zero
padding 15 left / 16 right (length kept), each followed by BatchNorm, ReLU after layers
1–3: 2 304 weights + 17 biases + 34 BN affine = 2 355 parameters.  Because one CNN is applied
at every unrolled iteration to inputs of different scale (η̂, then SCG outputs), the
BatchNorm statistics (and affines) are kept per iteration (``bn_per_iteration=True``):
2 321 + 34·I parameters; a single shared BN set would mix the scales and make eval mode
wrong (``shared/design/s2-mod-dnn.md``, 2.4.2).

Baselines: :class:`DeepMUSIC` (Elbir, IEEE Sens. Lett. 2020: one CNN per subregion on the
3-channel covariance image [Re R, Im R, ∠R] → its part of the MUSIC pseudo-spectrum) and
:class:`CNNRegressor` (after Wang et al., Radar Conf. 2021: 2-D CNN on [Re H, Im H] → θ̂ =
θ_max·tanh(·)); sizes reconstructed to match the seed's Table 3 (``s2-mod-dnn.md`` 2.5).

Shapes: H ``(B, M, K)`` complex; spectra ``(B, L_p)`` real.  Everything is differentiable
(the argmax picks excepted) and follows the input's dtype/device.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..estimators.coarray import CoarrayProjection, coarray_projection, coarray_spectrum
from ..estimators.scg import sparse_conjugate_gradient

__all__ = [
    "GroupedLinear",
    "MultiTaskAutoencoder",
    "SpectrumCalibrator",
    "MoDLSSR",
    "MoDDNN",
    "MoDDNNOutput",
    "DeepMUSIC",
    "CNNRegressor",
    "normalize_csi",
    "csi_to_real",
    "real_to_csi",
    "autoencoder_targets",
    "branch_covariances",
    "one_hot_labels",
    "gaussian_labels",
    "count_parameters",
    "inference_flops",
    "build_subregion_ssr",
    "covariance_image",
    "recalibrate_batchnorm",
]


# ---------------------------------------------------------------------------------------
# CSI helpers
# ---------------------------------------------------------------------------------------
def normalize_csi(H: torch.Tensor) -> torch.Tensor:
    r"""H / sqrt(‖H‖²_F / (MK)) per sample, ``(..., M, K)`` (an all-zero sample stays 0)."""
    p = (H.real ** 2 + H.imag ** 2).mean((-2, -1), keepdim=True)
    return H / p.clamp_min(torch.finfo(p.dtype).tiny).sqrt()


def csi_to_real(H: torch.Tensor) -> torch.Tensor:
    """``(..., M, K)`` complex → ``(..., K, 2M)`` real, h̃(k) = [Re h(k); Im h(k)]."""
    Ht = H.transpose(-1, -2)
    return torch.cat([Ht.real, Ht.imag], -1)


def real_to_csi(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`csi_to_real`: ``(..., K, 2M)`` → ``(..., M, K)`` complex."""
    M = x.shape[-1] // 2
    return torch.complex(x[..., :M], x[..., M:]).transpose(-1, -2)


def autoencoder_targets(x: torch.Tensor, subregion: torch.Tensor, num_subregions: int) -> torch.Tensor:
    r"""Eq. (10): ``x`` ``(B, K, 2M)`` in the sample's subregion ``(B,)``, 0 elsewhere → ``(B, P, K, 2M)``."""
    mask = F.one_hot(subregion.long(), num_subregions).to(x.dtype)  # (B, P)
    return mask[:, :, None, None] * x.unsqueeze(1)


def one_hot_labels(index: torch.Tensor, size: int, dtype=torch.float32) -> torch.Tensor:
    """One-hot spectra ``(B, L)`` of grid indices ``(B,)`` (eq. 31's labels)."""
    return F.one_hot(index.long(), size).to(dtype)


def gaussian_labels(position: torch.Tensor, size: int, width: float, dtype=torch.float32) -> torch.Tensor:
    r"""Sampled Gaussians exp(−(l − l₀)² / 2w²) of height 1 at fractional grid positions ``(B,)``
    (w in grid steps) — the documented alternative to one-hot labels."""
    l = torch.arange(size, dtype=dtype, device=position.device)
    return torch.exp(-0.5 * ((l - position.to(dtype).unsqueeze(-1)) / width) ** 2)


def branch_covariances(Hp: torch.Tensor) -> torch.Tensor:
    r"""R_p = H_p H_pᴴ / K scaled to tr R_p = M (unit source power), ``(..., M, K)`` → ``(..., M, M)``."""
    M, K = Hp.shape[-2:]
    R = Hp @ Hp.mH / K
    tr = torch.diagonal(R, dim1=-2, dim2=-1).real.sum(-1)
    return R * (M / tr.clamp_min(torch.finfo(tr.dtype).tiny))[..., None, None]


# ---------------------------------------------------------------------------------------
# autoencoder
# ---------------------------------------------------------------------------------------
class GroupedLinear(nn.Module):
    r"""G independent linear maps applied to a group axis: x ``(..., G, in)`` → ``(..., G, out)``
    with weight ``(G, out, in)``; G = 1 shares one map over any group axis (broadcast)."""

    def __init__(self, groups: int, in_features: int, out_features: int, bias: bool = True,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(groups, out_features, in_features))
        self.bias = nn.Parameter(torch.empty(groups, out_features)) if bias else None
        bound = 1.0 / math.sqrt(in_features)  # nn.Linear's default init
        with torch.no_grad():
            self.weight.uniform_(-bound, bound, generator=generator)
            if self.bias is not None:
                self.bias.uniform_(-bound, bound, generator=generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.einsum("...gi,goi->...go", x, self.weight)
        return y + self.bias if self.bias is not None else y


class MultiTaskAutoencoder(nn.Module):
    r"""The frequency-diverse multi-task autoencoder (module docstring, step 2).

    Args:
        num_elements: M.  num_subcarriers: K.  hidden: d_c (16 in the seed's Table 2).
        num_subregions: P.  shared: AE II (weights shared over the tones) instead of AE I.
        generator: initialisation randomness.

    ``forward(H (B, M, K) complex)`` → ``H_p (B, P, M, K)`` complex; ``forward_real`` works on
    the real features ``(B, K, 2M)`` → ``(B, P, K, 2M)``.

    Example:
        >>> ae = MultiTaskAutoencoder(4, 16, 16, 4)
        >>> tuple(ae.encoder.weight.shape), tuple(ae.decoder_weight.shape), count_parameters(ae)
        ((16, 16, 8), (4, 16, 8, 16), 11008)
    """

    def __init__(self, num_elements: int = 4, num_subcarriers: int = 16, hidden: int = 16, num_subregions: int = 4,
                 shared: bool = False, generator: torch.Generator | None = None):
        super().__init__()
        self.num_elements, self.num_subcarriers = int(num_elements), int(num_subcarriers)
        self.hidden, self.num_subregions, self.shared = int(hidden), int(num_subregions), bool(shared)
        G = 1 if shared else self.num_subcarriers
        n = 2 * self.num_elements
        self.encoder = GroupedLinear(G, n, self.hidden, generator=generator)
        bound = 1.0 / math.sqrt(self.hidden)
        self.decoder_weight = nn.Parameter(torch.empty(self.num_subregions, G, n, self.hidden))
        self.decoder_bias = nn.Parameter(torch.empty(self.num_subregions, G, n))
        with torch.no_grad():
            self.decoder_weight.uniform_(-bound, bound, generator=generator)
            self.decoder_bias.uniform_(-bound, bound, generator=generator)

    def forward_real(self, x: torch.Tensor) -> torch.Tensor:
        c = torch.relu(self.encoder(x))  # (B, K, d_c)
        return torch.einsum("bkd,pkod->bpko", c, self.decoder_weight) + self.decoder_bias

    def forward(self, H: torch.Tensor) -> torch.Tensor:
        x = csi_to_real(H).to(self.encoder.weight.dtype)
        return real_to_csi(self.forward_real(x))

    def extra_repr(self) -> str:
        return (f"M={self.num_elements}, K={self.num_subcarriers}, d_c={self.hidden}, P={self.num_subregions}, "
                f"{'AE II (shared)' if self.shared else 'AE I (per tone)'}")


# ---------------------------------------------------------------------------------------
# CNN calibrator and the unrolled MoDL-SSR
# ---------------------------------------------------------------------------------------
class SpectrumCalibrator(nn.Module):
    r"""C_w: the 1-D CNN of eq. (30) with per-iteration BatchNorm (module docstring).

    Args:
        channels: output channels of the layers (seed: 4, 8, 4, 1).
        kernel_size: 32 (seed); zero padding ⌊(k−1)/2⌋ left, ⌈(k−1)/2⌉ right.
        norm_sets: number of BatchNorm sets (one per unrolled iteration; 1 = shared).
        final_bn: BatchNorm after the last layer too (the seed: every layer).
        coord_channel: a second input channel with the normalised grid coordinate in [−1, 1]
            (lets the translation-equivariant CNN apply an angle-dependent correction; not in
            the seed).
        residual: output η − CNN(η) (MoDL's denoiser form) instead of CNN(η).

    ``forward(x (B, L), iteration=0)`` → ``(B, L)``.
    """

    def __init__(self, channels: Sequence[int] = (4, 8, 4, 1), kernel_size: int = 32, norm_sets: int = 1,
                 final_bn: bool = True, coord_channel: bool = False, residual: bool = False,
                 generator: torch.Generator | None = None):
        super().__init__()
        chans = [int(c) for c in channels]
        if not chans or chans[-1] != 1:
            raise ValueError(f"the calibrator's last layer must have 1 channel, got channels={list(channels)}")
        self.kernel_size, self.coord_channel, self.residual = int(kernel_size), bool(coord_channel), bool(residual)
        self.final_bn, self.norm_sets = bool(final_bn), int(norm_sets)
        ins = [2 if coord_channel else 1] + chans[:-1]
        self.convs = nn.ModuleList(nn.Conv1d(i, o, self.kernel_size) for i, o in zip(ins, chans, strict=True))
        n_bn = len(chans) if final_bn else len(chans) - 1
        self.norms = nn.ModuleList(
            nn.ModuleList(nn.BatchNorm1d(chans[j]) for j in range(n_bn)) for _ in range(self.norm_sets))
        if generator is not None:
            with torch.no_grad():
                for conv in self.convs:
                    bound = 1.0 / math.sqrt(conv.in_channels * self.kernel_size)
                    conv.weight.uniform_(-bound, bound, generator=generator)
                    conv.bias.uniform_(-bound, bound, generator=generator)
        k = self.kernel_size - 1
        self._pad = (k // 2, k - k // 2)

    def forward(self, x: torch.Tensor, iteration: int = 0) -> torch.Tensor:
        h = x.unsqueeze(-2)  # (B, 1, L)
        if self.coord_channel:
            L = x.shape[-1]
            coord = torch.linspace(-1.0, 1.0, L, dtype=x.dtype, device=x.device).expand(x.shape[0], 1, L)
            h = torch.cat([h, coord], -2)
        norms = self.norms[min(int(iteration), self.norm_sets - 1)]
        last = len(self.convs) - 1
        for j, conv in enumerate(self.convs):
            h = conv(F.pad(h, self._pad))
            if j < len(norms):
                h = norms[j](h)
            if j < last:
                h = torch.relu(h)
        out = h.squeeze(-2)
        return x - out if self.residual else out


class MoDLSSR(nn.Module):
    r"""Unrolled MoDL spectrum reconstruction for one subregion (module docstring, step 4).

    Args:
        projection: the subregion's :class:`~isackit.estimators.coarray.CoarrayProjection`
            (unit-norm convention), kept as non-persistent buffers (rebuilt from the grid).
        iterations: I (CNN ↔ SCG alternations).  cg_iterations: N (SCG steps per block).
        lam: λ (``learn_lambda``: trainable, softplus-parametrised).
        mu, eps, attractor, step_scaled, nonnegative: the SCG's sparsity options.
        data_term: ``"observed"`` (η̂ + λz, default) or ``"previous"`` (η^i + λz, printed).
        init: ``"coarray"`` (η⁰ = η̂) or ``"scg"`` (η⁰ = SCG(η̂, z = 0)).
        calibrator: keyword arguments of :class:`SpectrumCalibrator` (``norm_sets`` defaults
            to I: per-iteration BatchNorm).

    ``forward(eta_hat (B, L))`` → η^I ``(B, L)``; ``iterates(eta_hat)`` → all η^0..η^I.
    """

    def __init__(self, projection: CoarrayProjection, iterations: int = 10, cg_iterations: int = 10,
                 lam: float = 0.1, mu: float = 0.0, eps: float = 0.5, attractor: str = "rza",
                 step_scaled: bool = True, nonnegative: bool = False, data_term: str = "observed",
                 init: str = "coarray", learn_lambda: bool = False, calibrator: dict | None = None,
                 generator: torch.Generator | None = None):
        super().__init__()
        if data_term not in ("observed", "previous"):
            raise ValueError(f"data_term must be 'observed' or 'previous', got {data_term!r}")
        if init not in ("coarray", "scg"):
            raise ValueError(f"init must be 'coarray' or 'scg', got {init!r}")
        self.iterations, self.cg_iterations = int(iterations), int(cg_iterations)
        if self.iterations < 1 or self.cg_iterations < 1:
            raise ValueError("iterations and cg_iterations must be >= 1")
        self.mu, self.eps, self.attractor = float(mu), float(eps), attractor
        self.step_scaled, self.nonnegative = bool(step_scaled), bool(nonnegative)
        self.data_term, self.init = data_term, init
        self.register_buffer("p_left", projection.left.clone(), persistent=False)
        self.register_buffer("p_right", projection.right.clone(), persistent=False)
        if learn_lambda:
            self.raw_lambda = nn.Parameter(torch.tensor(math.log(math.expm1(float(lam)))))
        else:
            self.raw_lambda = None
            self.fixed_lambda = float(lam)
        kw = {"norm_sets": self.iterations, **dict(calibrator or {})}
        self.calibrator = SpectrumCalibrator(generator=generator, **kw)

    @property
    def size(self) -> int:
        """L_p, the subregion's grid size."""
        return int(self.p_left.shape[0])

    @property
    def projection(self) -> CoarrayProjection:
        return CoarrayProjection(self.p_left, self.p_right)

    def lam(self):
        """λ (a tensor when trainable)."""
        return F.softplus(self.raw_lambda) if self.raw_lambda is not None else self.fixed_lambda

    def _scg(self, data, z, x0=None):
        P = self.projection.to(data.dtype)
        return sparse_conjugate_gradient(P, data, z, lam=self.lam(), mu=self.mu, eps=self.eps,
                                         iterations=self.cg_iterations, attractor=self.attractor,
                                         step_scaled=self.step_scaled, nonnegative=self.nonnegative,
                                         x0=x0).solution

    def iterates(self, eta_hat: torch.Tensor) -> list[torch.Tensor]:
        """[η⁰, η¹, …, η^I], each ``(B, L)``."""
        if eta_hat.shape[-1] != self.size:
            raise ValueError(f"this MoDL-SSR is built for {self.size} grid points, got a spectrum of "
                             f"{eta_hat.shape[-1]}")
        eta = self._scg(eta_hat, None) if self.init == "scg" else eta_hat
        out = [eta]
        for i in range(self.iterations):
            z = self.calibrator(eta, i)
            data = eta_hat if self.data_term == "observed" else eta
            eta = self._scg(data, z)
            out.append(eta)
        return out

    def forward(self, eta_hat: torch.Tensor) -> torch.Tensor:
        return self.iterates(eta_hat)[-1]


def recalibrate_batchnorm(model: nn.Module, inputs: torch.Tensor, batch_size: int = 64) -> nn.Module:
    r"""Recompute every BatchNorm layer's running statistics of ``model`` with its FINAL weights:
    reset them, then one pass over ``inputs`` ``(S, ...)`` in train mode (no gradients) with the
    cumulative average (``momentum=None``) over batches of ``batch_size`` ("precise BN").

    The running averages collected during training (momentum 0.1) mix statistics of earlier
    weights; for the MoDL-SSR, whose BatchNorm sees the outputs of layers that keep changing
    to the last step, the eval-mode output then differs from the population-normalised one.
    Afterwards each layer's running mean is the mean of the per-batch means and its running
    variance the mean of the per-batch unbiased variances of its inputs.  Returns ``model``
    in eval mode; the momentum of each layer is restored."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms or inputs.shape[0] == 0:
        return model.eval()
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    try:
        with torch.no_grad():
            for s in range(0, inputs.shape[0], int(batch_size)):
                if inputs[s:s + batch_size].shape[0] > 1:  # a batch of one has no variance
                    model(inputs[s:s + batch_size])
    finally:
        for m, mom in zip(norms, saved, strict=True):
            m.momentum = mom
    return model.eval()


# ---------------------------------------------------------------------------------------
# the full pipeline
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MoDDNNOutput:
    """MoD-DNN output: ``aoa`` ``(B,)`` radians, ``branch`` ``(B,)`` p*, ``energy`` ``(B, P)``
    ‖H_p‖², ``spectra`` list of P ``(B, L_p)`` reconstructions (η^I), ``coarray`` list of P
    ``(B, L_p)`` coarray spectra η̂_p."""

    aoa: torch.Tensor
    branch: torch.Tensor
    energy: torch.Tensor
    spectra: list[torch.Tensor]
    coarray: list[torch.Tensor]


class MoDDNN(nn.Module):
    r"""The full MoD-DNN: autoencoder → coarray spectra → per-subregion MoDL-SSR → AoA.

    Args:
        autoencoder: :class:`MultiTaskAutoencoder` (P decoders).
        ssr: P :class:`MoDLSSR` (one per subregion, in grid order).
        dictionaries: P ideal steering dictionaries ``(M, L_p)`` of the subregion grids.
        grids: P subregion grids ``(L_p,)`` radians.
        branch: ``"energy"`` (p* = argmax ‖H_p‖²) or ``"concat"`` (global argmax of the
            concatenated reconstructions).
    """

    def __init__(self, autoencoder: MultiTaskAutoencoder, ssr: Sequence[MoDLSSR], dictionaries: Sequence[torch.Tensor],
                 grids: Sequence[torch.Tensor], branch: str = "energy"):
        super().__init__()
        if not len(ssr) == len(dictionaries) == len(grids) == autoencoder.num_subregions:
            raise ValueError("one MoDL-SSR, dictionary and grid per autoencoder subregion is needed")
        if branch not in ("energy", "concat"):
            raise ValueError(f"branch must be 'energy' or 'concat', got {branch!r}")
        self.autoencoder = autoencoder
        self.ssr = nn.ModuleList(ssr)
        self.branch = branch
        for p, (A, g) in enumerate(zip(dictionaries, grids, strict=True)):
            self.register_buffer(f"dictionary_{p}", A.clone(), persistent=False)
            self.register_buffer(f"grid_{p}", g.clone(), persistent=False)

    def dictionary(self, p: int) -> torch.Tensor:
        return getattr(self, f"dictionary_{p}")

    def grid(self, p: int) -> torch.Tensor:
        return getattr(self, f"grid_{p}")

    def coarray_spectra(self, H: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """(η̂_p for each branch, energies ``(B, P)``) of raw CSI ``(B, M, K)``."""
        Hp = self.autoencoder(normalize_csi(H))  # (B, P, M, K)
        energy = (Hp.real ** 2 + Hp.imag ** 2).sum((-2, -1))
        R = branch_covariances(Hp)
        etas = [coarray_spectrum(R[:, p], self.dictionary(p).to(R.dtype)) for p in range(len(self.ssr))]
        return etas, energy

    def forward(self, H: torch.Tensor) -> MoDDNNOutput:
        etas, energy = self.coarray_spectra(H)
        spectra = [ssr(e) for ssr, e in zip(self.ssr, etas, strict=True)]
        peaks = torch.stack([s.argmax(-1) for s in spectra], -1)  # (B, P)
        angles = torch.stack([self.grid(p).to(s.dtype)[peaks[:, p]] for p, s in enumerate(spectra)], -1)
        if self.branch == "energy":
            best = energy.argmax(-1)
        else:
            vals = torch.stack([s.gather(-1, peaks[:, p:p + 1])[:, 0] for p, s in enumerate(spectra)], -1)
            best = vals.argmax(-1)
        aoa = angles.gather(-1, best[:, None])[:, 0]
        return MoDDNNOutput(aoa=aoa, branch=best, energy=energy, spectra=spectra, coarray=etas)

    def predict(self, H: torch.Tensor) -> torch.Tensor:
        r"""AoA ``(B,)`` radians; with ``branch="energy"`` only the selected branch's MoDL-SSR runs
        for each sample (a quarter of :meth:`forward`'s cost for P = 4; the same estimates in
        eval mode, where BatchNorm does not couple the samples)."""
        if self.branch != "energy" or self.training:
            return self(H).aoa
        etas, energy = self.coarray_spectra(H)
        best = energy.argmax(-1)
        aoa = torch.zeros(H.shape[0], dtype=etas[0].dtype, device=H.device)
        for p, ssr in enumerate(self.ssr):
            idx = torch.nonzero(best == p).flatten()
            if idx.numel():
                spec = ssr(etas[p].index_select(0, idx))
                aoa = aoa.index_copy(0, idx, self.grid(p).to(spec.dtype)[spec.argmax(-1)])
        return aoa


def build_subregion_ssr(dictionaries: Sequence[torch.Tensor], generator: torch.Generator | None = None,
                        **kwargs) -> list[MoDLSSR]:
    """One :class:`MoDLSSR` per subregion dictionary ``(M, L_p)`` (projection built here)."""
    return [MoDLSSR(coarray_projection(A.to(torch.complex128)).to(torch.float32), generator=generator, **kwargs)
            for A in dictionaries]


# ---------------------------------------------------------------------------------------
# learned baselines
# ---------------------------------------------------------------------------------------
def covariance_image(R: torch.Tensor) -> torch.Tensor:
    """DeepMUSIC's input: ``(B, M, M)`` complex → ``(B, 3, M, M)`` [Re R, Im R, ∠R]."""
    return torch.stack([R.real, R.imag, torch.angle(R)], 1)


class DeepMUSIC(nn.Module):
    r"""DeepMUSIC (Elbir 2020): P CNNs on the covariance image, each predicting its subregion's
    part of the (normalised) MUSIC pseudo-spectrum; θ̂ = argmax of the concatenation.

    Args:
        num_elements: M.  subregion_sizes: L_p of each subregion.
        channels: filters of the three 3×3 conv layers (256 reproduces the seed's Table 3).
        hidden: width of the two fully connected layers (1024).  dropout: 0.5.

    ``forward(R (B, M, M) complex)`` → ``(B, Σ L_p)`` spectrum.
    """

    def __init__(self, num_elements: int = 4, subregion_sizes: Sequence[int] = (300, 300, 300, 301),
                 channels: int = 256, hidden: int = 1024, dropout: float = 0.5):
        super().__init__()
        M = int(num_elements)

        def net(L):
            return nn.Sequential(
                nn.Conv2d(3, channels, 3, padding=1), nn.ReLU(),
                nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
                nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
                nn.Flatten(), nn.Linear(channels * M * M, hidden), nn.ReLU(), nn.Dropout(dropout),
                nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, int(L)))

        self.nets = nn.ModuleList(net(L) for L in subregion_sizes)

    def forward(self, R: torch.Tensor) -> torch.Tensor:
        x = covariance_image(R).to(self.nets[0][0].weight.dtype)
        return torch.cat([n(x) for n in self.nets], -1)


class CNNRegressor(nn.Module):
    r"""2-D CNN AoA regressor on the CSI image [Re H, Im H] ``(B, 2, M, K)`` (after the seed's
    ref. [43]): three 3×3 conv layers (BatchNorm, ReLU), FC ``hidden`` + ReLU, FC 1,
    θ̂ = θ_max·tanh(·).

    ``forward(H (B, M, K) complex)`` → θ̂ ``(B,)`` radians.
    """

    def __init__(self, num_elements: int = 4, num_subcarriers: int = 16, channels: Sequence[int] = (32, 64, 128),
                 hidden: int = 256, max_angle: float = math.pi / 3):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 2
        for c in channels:
            layers += [nn.Conv2d(c_in, int(c), 3, padding=1), nn.BatchNorm2d(int(c)), nn.ReLU()]
            c_in = int(c)
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.head = nn.Sequential(nn.Linear(c_in * int(num_elements) * int(num_subcarriers), hidden), nn.ReLU(),
                                  nn.Linear(hidden, 1))
        self.max_angle = float(max_angle)

    def forward(self, H: torch.Tensor) -> torch.Tensor:
        x = torch.stack([H.real, H.imag], 1).to(self.head[0].weight.dtype)
        return self.max_angle * torch.tanh(self.head(self.features(x))[:, 0])


# ---------------------------------------------------------------------------------------
# sizes and cost
# ---------------------------------------------------------------------------------------
def count_parameters(model: nn.Module, trainable: bool = True) -> int:
    """Number of (trainable) parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable)


def inference_flops(fn, *args) -> int:
    r"""FLOPs of one call ``fn(*args)`` counted by ``torch.utils.flop_counter.FlopCounterMode``
    (matrix products and convolutions, 2 per multiply-add; element-wise operations are not
    counted), under ``no_grad``."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn(*args)
    return int(counter.get_total_flops())
