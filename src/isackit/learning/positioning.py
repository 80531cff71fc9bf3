r"""End-to-end learned AoD / position estimation: precoder networks and decoders (seed 004, Sec. III).

Observation (downlink MISO, station i, T transmissions, pilots s = 1, σ² = 1):

    y_i = α_i F_iᵀ ã_i(θ_i) + n_i,   |α_i|² = SNR, arg α_i ~ U[0, 2π),

built by :func:`observe` from the signals layer's :func:`~isackit.signals.channels.narrowband_channel`
and :func:`~isackit.signals.channels.miso_received_signal`.  ã_i is the TRUE (possibly
impaired) array response: an autoencoder trained through it adapts to impairments it never
sees explicitly.

Networks (seed Table I; ``hidden`` = H):

* :class:`PrecoderNet` f_ε: ξ = [θ_min, θ_max, (θ_max - θ_min)/2] ∈ R³ → F ∈ C^{N_t×T}; an MLP with
  ``depth`` hidden layers of H (ReLU) and 2 N_t T real outputs (Re/Im), normalised to
  ‖F‖_F = 1.  One per station.
* :class:`AoDDecoder` f_μ: y ∈ C^T → θ̂ in the sector (shared by all stations): input
  [Re y, Im y], hidden H,H,H,H,2H,2H, θ̂ = θ_mid + (w/2) tanh(z).
* :class:`PositionDecoder` f_β: y ∈ C^{I×T} → p̂ ∈ R²: input 2IT reals, hidden H,H,H,H,2H,2H,
  p̂ = prior centre + (side/2)·z.

Two pre-processing steps that are not in the seed (``derotate`` switches the first off):
``derotate`` multiplies y by e^{-j arg(Σ_t y_t)} (removes the uniformly distributed phase of
α, an information-preserving map up to that nuisance phase), and y is scaled by
1/sqrt(1 + SNR) (the operating SNR, known to the receiver) so that the decoder input is O(1)
at every SNR.

Hybrid decoders (``hybrid=True``, not in the seed).  The decoder predicts a small correction
around a model-based estimate computed with the library's estimators on the learned precoder
and the NOMINAL arrays (what the receiver knows):

    θ_g,i = ml_aod(y_i, F_i, a_nominal, W_i)         (:func:`isackit.estimators.positioning.ml_aod`)
    AoD:      θ̂_i = θ_g,i + c·(w_i/2)·f_μ([y_i, u_i]),   u_i = (θ_g,i - mid_i)/(w_i/2)
    position: p̂ = p_g + c·(side/2)·f_β([y, u, mid, (p_g - centre)/(side/2)]),
              p_g = ml_position(θ_g, 1, q, ψ, box = prior square)

where the search window W_i = [θ_c,i ± 4°] ∩ U_i is centred on the estimate θ_c,i of a frozen
copy of the trained seed decoder (``coarse``): the normalised matched-filter spectrum of a
learned precoder can have spurious maxima where ‖Fᵀa(θ)‖ is small, the seed decoder resolves
that ambiguity and the ML step supplies the precision.  c = ``correction_scale`` and the last
layer of f starts at zero, so a fresh hybrid decoder returns the model-based estimate.  θ_g and
p_g are not differentiated, so a hybrid decoder is trained with the precoders frozen
(:func:`train_autoencoder` with ``train_precoder=False``); :func:`hybrid_from` builds one from a
trained seed autoencoder.

Training (:func:`train_autoencoder`) goes through :func:`isackit.learning.training.fit`: the MSE
of θ̂ (rad²) or p̂ (m²) (seed eqs. 6-7) at a fixed SNR, the optimiser and schedule from a
:class:`~isackit.learning.training.TrainingConfig` (the seed: Adam, lr 1e-3 decaying to 1e-8).

Shapes: sectors ``(..., I, 2)``, AoDs ``(..., I)``, observations ``(..., I, T)``, precoders
``(..., I, N_t, T)`` complex64 (the networks run in float32).

Example:
    >>> import torch
    >>> from isackit.geometry import ula
    >>> from isackit.impairments import ArrayModel
    >>> from isackit.seeding import make_generator
    >>> arrays = [ArrayModel(ula(8, 0.5, 1.0)) for _ in range(2)]
    >>> model = AoDAutoencoder(2, 8, 4, hidden=16, depth=2, generator=make_generator(0, "init"))
    >>> sectors = torch.tensor([[0.1, 0.4], [-0.3, 0.0]]).expand(5, 2, 2)
    >>> theta = sectors.mean(-1)
    >>> model(sectors, theta, arrays, 10.0, make_generator(0, "noise")).shape
    torch.Size([5, 2])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..conversions import db_to_linear
from ..estimators.positioning import ml_aod, ml_position
from ..geometry.scene import local_angles
from ..impairments.base import ArrayModel
from ..signals.channels import miso_received_signal, narrowband_channel
from ..signals.targets import random_phases
from .complex import to_real_features
from .networks import mlp
from .training import ProgressFn, TrainingConfig, TrainingLog, fit

__all__ = [
    "sector_features",
    "draw_gains",
    "observe",
    "station_responses",
    "PrecoderNet",
    "AoDDecoder",
    "PositionDecoder",
    "AoDAutoencoder",
    "PositionAutoencoder",
    "geometric_aods",
    "hybrid_from",
    "train_autoencoder",
    "WINDOW_DEG",
]

#: Half-width (degrees) of the ML search window around the seed decoder's estimate.
WINDOW_DEG = 4.0


# ------------------------------------------------------------------------------------------
# the observation (the channel layer of the autoencoder)
# ------------------------------------------------------------------------------------------
def sector_features(sectors: torch.Tensor) -> torch.Tensor:
    """Precoder-network input ξ = [θ_min, θ_max, (θ_max - θ_min)/2] (seed eq. 5): ``(..., 2) -> (..., 3)``."""
    lo, hi = sectors[..., 0], sectors[..., 1]
    return torch.stack([lo, hi, (hi - lo) / 2], dim=-1)


def draw_gains(snr_db, shape, generator: torch.Generator, dtype: torch.dtype = torch.complex64,
               device=None) -> torch.Tensor:
    """α with |α|² = SNR (σ² = 1) and arg α ~ U[0, 2π) (:func:`~isackit.signals.targets.random_phases`).

    ``snr_db`` broadcasts against ``shape`` (scalar or tensor); returns ``shape`` complex.
    """
    real = torch.float64 if dtype == torch.complex128 else torch.float32
    snr = torch.as_tensor(snr_db, dtype=real, device=device)
    phase = random_phases(tuple(shape), generator, real, device)
    return torch.polar(torch.sqrt(db_to_linear(snr)).expand_as(phase), phase)


def observe(precoders: torch.Tensor, steering: torch.Tensor, gains: torch.Tensor,
            generator: torch.Generator | None, noise_var: float = 1.0) -> torch.Tensor:
    r"""y = Fᵀ (α ã(θ)) + n (seed eq. 2 with s = 1), batch-first.

    Args:
        precoders: F ``(..., N_t, T)`` complex.
        steering: ã(θ) ``(..., N_t)`` complex, the TRUE array response.
        gains: α ``(...)`` complex.
        generator: noise RNG; ``None`` gives the noise-free mean.
        noise_var: σ².

    Returns:
        ``(..., T)`` complex; differentiable in F, ã and α.
    """
    h = narrowband_channel(gains.unsqueeze(-1), steering.to(precoders.dtype).unsqueeze(-1))
    return miso_received_signal(h, precoders, noise_variance=None if generator is None else noise_var,
                                generator=generator)


def station_responses(arrays: Sequence[ArrayModel], theta: torch.Tensor) -> torch.Tensor:
    """ã_i(θ_i) of every station: θ ``(..., I)`` → ``(..., I, M)`` (differentiable)."""
    if theta.shape[-1] != len(arrays):
        raise ValueError(f"theta must have shape (..., I={len(arrays)}), got {tuple(theta.shape)}")
    return torch.stack([arr.steering(theta[..., i:i + 1])[..., 0] for i, arr in enumerate(arrays)], dim=-2)


def _local_aods(positions: torch.Tensor, q: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
    az, _ = local_angles(positions.unsqueeze(-2), q.to(positions), psi.to(positions))
    return az


# ------------------------------------------------------------------------------------------
# networks
# ------------------------------------------------------------------------------------------
def _complex_features(y: torch.Tensor, snr_db: float, derotate: bool) -> torch.Tensor:
    """[Re y, Im y] of the (optionally derotated, scaled) observation, ``(..., T) -> (..., 2T)``."""
    if derotate:
        ref = y.sum(-1, keepdim=True)
        y = y * (ref.conj() / ref.abs().clamp_min(1e-12))
    y = y / math.sqrt(1.0 + db_to_linear(float(snr_db)))
    return to_real_features(y)


def _zero_last(net: nn.Sequential) -> None:
    nn.init.zeros_(net[-1].weight)
    nn.init.zeros_(net[-1].bias)


class PrecoderNet(nn.Module):
    """f_ε: ξ ``(..., 3)`` → F ``(..., N_t, T)`` complex with ‖F‖_F = 1 (seed Table I)."""

    def __init__(self, num_antennas: int, num_transmissions: int, hidden: int = 256, depth: int = 6,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.num_antennas, self.num_transmissions = int(num_antennas), int(num_transmissions)
        self.net = mlp([3] + [hidden] * depth + [2 * self.num_antennas * self.num_transmissions], generator=generator)

    def forward(self, xi: torch.Tensor) -> torch.Tensor:
        out = self.net(xi).unflatten(-1, (2, self.num_antennas, self.num_transmissions))
        F = torch.complex(out[..., 0, :, :], out[..., 1, :, :])
        return F / torch.linalg.matrix_norm(F, keepdim=True)


class AoDDecoder(nn.Module):
    """f_μ: y ``(..., T)`` + sector ``(..., 2)`` → θ̂ ``(...)`` in the sector (seed Table I)."""

    def __init__(self, num_transmissions: int, hidden: int = 256, derotate: bool = True,
                 hybrid: bool = False, correction_scale: float = 0.1, generator: torch.Generator | None = None):
        super().__init__()
        h = hidden
        self.derotate, self.hybrid = bool(derotate), bool(hybrid)
        self.correction_scale = float(correction_scale)
        self.net = mlp([2 * num_transmissions + int(self.hybrid), h, h, h, h, 2 * h, 2 * h, 1], generator=generator)
        if self.hybrid:
            _zero_last(self.net)

    def forward(self, y: torch.Tensor, sector: torch.Tensor, snr_db: float,
                guess: torch.Tensor | None = None) -> torch.Tensor:
        """θ̂ ``(...)``; ``guess`` (hybrid only) is the model-based θ_g ``(...)``."""
        mid, half = sector.mean(-1), (sector[..., 1] - sector[..., 0]) / 2
        x = _complex_features(y, snr_db, self.derotate)
        if not self.hybrid:
            return mid + half * torch.tanh(self.net(x).squeeze(-1))
        if guess is None:
            raise ValueError("a hybrid AoDDecoder needs the model-based estimate `guess` (..., )")
        u = ((guess - mid) / half).to(x.dtype)
        z = self.net(torch.cat([x, u.unsqueeze(-1)], dim=-1)).squeeze(-1)
        return guess + self.correction_scale * half * z


class PositionDecoder(nn.Module):
    """f_β: y ``(..., I, T)`` → p̂ ``(..., 2)`` (seed Table I), around the prior centre."""

    def __init__(self, num_bs: int, num_transmissions: int, prior_centre: Sequence[float],
                 prior_side: float, hidden: int = 256, derotate: bool = True, hybrid: bool = False,
                 correction_scale: float = 0.1, generator: torch.Generator | None = None):
        super().__init__()
        h = hidden
        self.derotate, self.hybrid = bool(derotate), bool(hybrid)
        self.correction_scale = float(correction_scale)
        self.register_buffer("centre", torch.tensor(list(prior_centre), dtype=torch.float32))
        self.half_side = float(prior_side) / 2
        extra = (2 * num_bs + 2) if self.hybrid else 0
        self.net = mlp([2 * num_bs * num_transmissions + extra, h, h, h, h, 2 * h, 2 * h, 2], generator=generator)
        if self.hybrid:
            _zero_last(self.net)

    def forward(self, y: torch.Tensor, snr_db: float, guess: torch.Tensor | None = None,
                aod_features: torch.Tensor | None = None) -> torch.Tensor:
        """p̂ ``(..., 2)``; hybrid: ``guess`` = p_g ``(..., 2)``, ``aod_features`` = [u, mid] ``(..., 2I)``."""
        x = _complex_features(y, snr_db, self.derotate).flatten(-2)
        centre = self.centre.to(x.dtype)
        if not self.hybrid:
            return centre + self.half_side * self.net(x)
        if guess is None or aod_features is None:
            raise ValueError("a hybrid PositionDecoder needs `guess` (..., 2) and `aod_features` (..., 2I)")
        x = torch.cat([x, aod_features.to(x.dtype), ((guess - centre) / self.half_side).to(x.dtype)], dim=-1)
        return guess.to(x.dtype) + self.correction_scale * self.half_side * self.net(x)


def _window(centre: torch.Tensor, sectors: torch.Tensor, half: float) -> torch.Tensor:
    """Search window [c - half, c + half] ∩ sector ``(..., I, 2)`` around estimates c ``(..., I)``."""
    c = torch.minimum(torch.maximum(centre, sectors[..., 0]), sectors[..., 1])
    lo = torch.maximum(c - half, sectors[..., 0])
    hi = torch.minimum(c + half, sectors[..., 1])
    return torch.stack([lo, hi], dim=-1)


def geometric_aods(y: torch.Tensor, precoders: torch.Tensor, arrays: Sequence[ArrayModel],
                   sectors: torch.Tensor, grid_size: int = 64, refine_iterations: int = 8) -> torch.Tensor:
    """Model-based AoDs θ_g ``(..., I)`` of every station by :func:`~isackit.estimators.positioning.ml_aod` (no gradient).

    Args:
        y: ``(..., I, T)``; precoders: ``(..., I, M, T)``; sectors: ``(..., I, 2)``.
        arrays: the arrays the receiver ASSUMES (the nominal ones, ``arr.ideal()``).
        grid_size / refine_iterations: of ``ml_aod``.
    """
    with torch.no_grad():
        return torch.stack([ml_aod(y[..., i, :], precoders[..., i, :, :], arr, sectors[..., i, :],
                                   grid_size, refine_iterations)
                            for i, arr in enumerate(arrays)], dim=-1)


class _Base(nn.Module):
    kind = "base"

    def __init__(self, num_bs, num_antennas, num_transmissions, hidden, depth, hybrid=False,
                 correction_scale=0.1, ml_grid=64, generator=None):
        super().__init__()
        self.hparams: dict[str, Any] = dict(num_bs=int(num_bs), num_antennas=int(num_antennas),
                                            num_transmissions=int(num_transmissions), hidden=int(hidden),
                                            depth=int(depth))
        self.hybrid = bool(hybrid)
        if self.hybrid:
            self.hparams.update(hybrid=True, correction_scale=float(correction_scale), ml_grid=int(ml_grid))
        self.ml_grid = int(ml_grid)
        self.window = math.radians(WINDOW_DEG)
        self.precoder_nets = nn.ModuleList(PrecoderNet(num_antennas, num_transmissions, hidden, depth, generator)
                                           for _ in range(num_bs))

    def precoders(self, sectors: torch.Tensor) -> torch.Tensor:
        """F_i(ξ_i) for sectors ``(..., I, 2)`` → ``(..., I, N_t, T)`` complex64.

        Repeated sectors in a batch (e.g. a fixed evaluation sector) are evaluated once.
        """
        xi = sector_features(sectors.to(torch.float32))
        out = []
        for i, net in enumerate(self.precoder_nets):
            x = xi[..., i, :].reshape(-1, 3)
            uniq, inverse = torch.unique(x, dim=0, return_inverse=True)
            F = net(uniq)[inverse] if uniq.shape[0] < x.shape[0] else net(x)
            out.append(F.reshape(*xi.shape[:-2], *F.shape[-2:]))
        return torch.stack(out, dim=-3)

    def observe_with_precoders(self, sectors, theta, arrays, snr_db, generator):
        """``(y, F)``: the observation ``(..., I, T)`` through the TRUE ``arrays`` at ``snr_db``
        (gains then noise drawn from ``generator``) and the precoders ``(..., I, N_t, T)``."""
        F = self.precoders(sectors)
        a = station_responses(arrays, theta.to(torch.float32)).to(F.dtype)
        alpha = draw_gains(snr_db, theta.shape, generator, F.dtype, F.device)
        return observe(F, a, alpha, generator), F

    def observe(self, sectors, theta, arrays, snr_db, generator):
        """y ``(..., I, T)`` (see :meth:`observe_with_precoders`); differentiable in F."""
        return self.observe_with_precoders(sectors, theta, arrays, snr_db, generator)[0]


class AoDAutoencoder(_Base):
    """Fig. 2 of seed 004: per-station precoder nets + one shared AoD decoder."""

    kind = "aod"

    def __init__(self, num_bs: int, num_antennas: int, num_transmissions: int, hidden: int = 256,
                 depth: int = 6, derotate: bool = True, hybrid: bool = False, correction_scale: float = 0.1,
                 ml_grid: int = 64, generator: torch.Generator | None = None):
        super().__init__(num_bs, num_antennas, num_transmissions, hidden, depth, hybrid, correction_scale, ml_grid,
                         generator)
        self.hparams.update(derotate=bool(derotate))
        self.decoder = AoDDecoder(num_transmissions, hidden, derotate, hybrid, correction_scale, generator)
        if self.hybrid:  # the seed decoder, frozen: gives the ML search window
            self.coarse = AoDDecoder(num_transmissions, hidden, derotate, generator=generator)

    def forward(self, sectors: torch.Tensor, theta: torch.Tensor, arrays: Sequence[ArrayModel],
                snr_db: float, generator: torch.Generator) -> torch.Tensor:
        """θ̂ ``(..., I)`` for sectors ``(..., I, 2)`` and true AoDs ``(..., I)`` (TRUE ``arrays``)."""
        y, F = self.observe_with_precoders(sectors, theta, arrays, snr_db, generator)
        secs = sectors.to(torch.float32)
        guess = None
        if self.hybrid:
            with torch.no_grad():
                coarse = self.coarse(y, secs, snr_db)
            guess = geometric_aods(y, F.detach(), [a.ideal() for a in arrays],
                                   _window(coarse, secs, self.window), self.ml_grid)
        return self.decoder(y, secs, snr_db, guess)


class PositionAutoencoder(_Base):
    """Fig. 3 of seed 004: per-station precoder nets + a position decoder on all observations."""

    kind = "position"

    def __init__(self, num_bs: int, num_antennas: int, num_transmissions: int,
                 prior_centre: Sequence[float], prior_side: float, hidden: int = 256, depth: int = 6,
                 derotate: bool = True, hybrid: bool = False, correction_scale: float = 0.1, ml_grid: int = 64,
                 bs_positions: Sequence[Sequence[float]] | None = None,
                 bs_orientations: Sequence[float] | None = None, generator: torch.Generator | None = None):
        super().__init__(num_bs, num_antennas, num_transmissions, hidden, depth, hybrid, correction_scale, ml_grid,
                         generator)
        self.hparams.update(prior_centre=[float(v) for v in prior_centre], prior_side=float(prior_side),
                            derotate=bool(derotate))
        if self.hybrid:
            if bs_positions is None or bs_orientations is None:
                raise ValueError("a hybrid PositionAutoencoder needs bs_positions (I, 2) [m] and "
                                 "bs_orientations (I,) [rad] for the bearing intersection")
            q = torch.tensor([list(map(float, v)) for v in bs_positions], dtype=torch.float32)
            psi = torch.tensor([float(v) for v in bs_orientations], dtype=torch.float32)
            if q.shape != (num_bs, 2) or psi.shape != (num_bs,):
                raise ValueError(f"bs_positions must be ({num_bs}, 2) and bs_orientations ({num_bs},), "
                                 f"got {tuple(q.shape)} and {tuple(psi.shape)}")
            self.register_buffer("bs_q", q)
            self.register_buffer("bs_psi", psi)
            self.hparams.update(bs_positions=q.tolist(), bs_orientations=psi.tolist())
        self.decoder = PositionDecoder(num_bs, num_transmissions, prior_centre, prior_side, hidden, derotate,
                                       hybrid, correction_scale, generator)
        if self.hybrid:  # the seed decoder, frozen: gives the ML search windows
            self.coarse = PositionDecoder(num_bs, num_transmissions, prior_centre, prior_side, hidden, derotate,
                                          generator=generator)

    def forward(self, sectors: torch.Tensor, theta: torch.Tensor, arrays: Sequence[ArrayModel],
                snr_db: float, generator: torch.Generator) -> torch.Tensor:
        """p̂ ``(..., 2)`` (TRUE ``arrays`` in the channel, their nominal versions in the hybrid guess)."""
        y, F = self.observe_with_precoders(sectors, theta, arrays, snr_db, generator)
        if not self.hybrid:
            return self.decoder(y, snr_db)
        secs = sectors.to(torch.float32)
        with torch.no_grad():
            coarse = _local_aods(self.coarse(y, snr_db), self.bs_q, self.bs_psi)
        th = geometric_aods(y, F.detach(), [a.ideal() for a in arrays], _window(coarse, secs, self.window),
                            self.ml_grid)
        c, h = self.decoder.centre, self.decoder.half_side
        box = torch.stack([c - h, c + h])
        with torch.no_grad():
            p_g = ml_position(th, torch.ones_like(th), self.bs_q, self.bs_psi, box=box)
        mid, half = secs.mean(-1), (secs[..., 1] - secs[..., 0]) / 2
        return self.decoder(y, snr_db, p_g, torch.cat([(th - mid) / half, mid], dim=-1))


# ------------------------------------------------------------------------------------------
# building and training
# ------------------------------------------------------------------------------------------
def hybrid_from(model: _Base, correction_scale: float = 0.1, ml_grid: int = 64,
                bs_positions: Sequence[Sequence[float]] | None = None,
                bs_orientations: Sequence[float] | None = None, correction_from: _Base | None = None,
                generator: torch.Generator | None = None) -> _Base:
    """A hybrid-decoder copy of a trained seed autoencoder: the same precoders (copied), its
    decoder as the frozen ``coarse`` one, and a correction decoder whose output starts at zero.

    ``bs_positions`` / ``bs_orientations`` (radians) are needed for a position autoencoder.
    ``correction_from``: a trained hybrid model of the same kind and sizes whose correction
    decoder initialises this one instead (the precoders and the coarse decoder still come
    from ``model``).  ``generator`` initialises the correction network's hidden layers.
    """
    if correction_from is not None and (not getattr(correction_from, "hybrid", False)
                                        or correction_from.kind != model.kind):
        raise ValueError(f"correction_from must be a hybrid {model.kind} autoencoder")
    hp = {k: v for k, v in model.hparams.items() if k not in ("hybrid", "correction_scale", "ml_grid")}
    hp.update(hybrid=True, correction_scale=correction_scale, ml_grid=ml_grid, generator=generator)
    if model.kind == "aod":
        new: _Base = AoDAutoencoder(**hp)
    else:
        hp.update(bs_positions=bs_positions, bs_orientations=bs_orientations)
        new = PositionAutoencoder(**hp)
    new.precoder_nets.load_state_dict(model.precoder_nets.state_dict())
    new.coarse.load_state_dict(model.decoder.state_dict())
    if correction_from is not None:
        new.decoder.load_state_dict(correction_from.decoder.state_dict())
    return new


def train_autoencoder(model: _Base, sample: Callable[[int, torch.Generator], tuple[torch.Tensor, ...]],
                      arrays: Sequence[ArrayModel], snr_db: float, config: TrainingConfig,
                      generator: torch.Generator, *, train_precoder: bool = True,
                      progress: ProgressFn | None = None, what: str = "training",
                      checkpoint_dir: str | Path | None = None,
                      identity: Mapping[str, Any] | None = None) -> TrainingLog:
    """Train ``model`` at a fixed SNR through :func:`~isackit.learning.training.fit` (loss: MSE).

    Each step draws ``config.batch_size`` samples ``sample(batch, generator) -> (sectors,
    theta, target)`` (target = θ for the AoD autoencoder, p for the position one), passes
    them through the channel of the TRUE ``arrays`` (gains and noise from ``generator``) and
    back-propagates ((est - target)²).sum(-1).mean().  With ``train_precoder=False`` only the
    decoder is optimised and no graph is built through the precoder nets (the fine-tune of a
    hybrid decoder); their ``requires_grad`` flags are restored afterwards.

    Returns:
        :class:`~isackit.learning.training.TrainingLog` (the model is trained in place and
        left in eval mode).
    """
    flags = [p.requires_grad for p in model.precoder_nets.parameters()]
    for p in model.precoder_nets.parameters():
        p.requires_grad_(bool(train_precoder))
    params = list(model.parameters() if train_precoder else model.decoder.parameters())

    def step(t: int) -> torch.Tensor:
        sectors, theta, target = sample(config.batch_size, generator)
        est = model(sectors, theta, arrays, snr_db, generator)
        return ((est - target.to(est.dtype)) ** 2).sum(-1).mean()

    try:
        log = fit(model, step, config, params=params, generators={"data": generator}, progress=progress,
                  what=what, checkpoint_dir=checkpoint_dir, identity=identity)
    finally:
        for p, flag in zip(model.precoder_nets.parameters(), flags, strict=True):
            p.requires_grad_(flag)
    model.eval()
    return log
