r"""S4 end-to-end autoencoders: learned precoders + AoD / position decoders (seed 004, Sec. III).

* :class:`PrecoderNet` f_ε: ξ = [θ_min, θ_max, (θ_max - θ_min)/2] ∈ R³ → F ∈ C^{N_t×T}; an MLP
  (seed Table I: 6 hidden layers of H, ReLU, linear output of 2 N_t T reals = Re/Im parts)
  followed by the unit-Frobenius-norm normalisation ‖F‖_F = 1.  One per BS.
* :class:`AoDDecoder` f_μ: y ∈ C^T → θ̂ ∈ U (shared by all BSs).  Input [Re y, Im y] (2T),
  hidden H,H,H,H,2H,2H, output tanh scaled to the sector: θ̂ = θ_mid + (w/2) tanh(z)
  (the UE knows its prior sector; the precoder, which also sees the sector, makes the
  observation encode the position inside it).
* :class:`PositionDecoder` f_β: y ∈ C^{I×T} → p̂ ∈ R²: input 2IT reals (4T for I = 2),
  hidden H,H,H,H,2H,2H, linear output; p̂ = prior centre + (side/2)·output.

Two pre-processing choices that are not in the seed (both can be switched off):
``derotate`` removes the uniformly distributed phase of α by multiplying y by
e^{-j arg(Σ_t y_t)} (a differentiable, information-preserving map up to the nuisance phase),
and the observation is scaled by 1/sqrt(1 + SNR) (the operating SNR, known to the receiver)
so that the decoder's input is O(1) at every SNR, which also lets a model trained at one
SNR be used at another (the quick profile does that).

The channel inside the autoencoder is :func:`~.scenario.observe` with the TRUE (impaired)
array of each BS, so the learned system adapts to impairments it never sees explicitly.
Losses (seed eqs. 6-7): MSE of θ̂ (rad²) and of p̂ (m²).  Training: Adam, lr from 1e-3 down to
``min_lr`` = 1e-8 by a cosine schedule, fixed SNR per model (seed IV-B).

Hybrid decoders (our deviation, off by default: ``hybrid=False`` is the seed's decoder).
The plain MLP decoders must approximate the whole inverse map y → θ (or p) to a fraction of
the bound: at 30 dB the PEB is ~1 cm in a 3.2 m prior square (0.3 %), and with the training
we can afford on a CPU (≈10⁶ samples instead of the seed's 3·10⁷ per SNR) the residual
approximation error shows up as excess *variance* (measured: at 30 dB, std/PEB ≈ 1.5 with a
bias of only 0.1-0.4 PEB; float32 resolution is not the floor, 6·10⁻⁸ relative).  With
``hybrid=True`` the decoder instead predicts a small correction around a model-based estimate
computed with the library's own estimators on the learned precoder and the NOMINAL array
(what the receiver knows; the impairments stay unknown):

    θ_g,i = ml_aod(y_i, F_i, a_nominal, W_i)                (:func:`.benchmark.ml_aod`)
    AoD:      θ̂_i = θ_g,i + c·(w_i/2)·f_μ([y_i, u_i]),   u_i = (θ_g,i - mid_i)/(w_i/2)
    position: p̂ = p_g + c·(side/2)·f_β([y, u, mid, (p_g - centre)/(side/2)]),
              p_g = ml_position(θ_g, 1, q, ψ, box = prior square)   (:func:`.benchmark.ml_position`)

(the position net also gets the sector centres mid_i in radians: the bias of the nominal model
depends on the absolute AoD and on the sector's precoder, which vary over the prior)

where the search window W_i = [θ_c,i ± 4°] ∩ U_i is centred on the estimate θ_c,i of the
trained SEED decoder (kept frozen inside the hybrid model; for the position AE θ_c = the
local AoDs of its position estimate).  Without the window, the normalised matched-filter
spectrum of a learned precoder has spurious maxima where ‖Fᵀa(θ)‖ is small (measured: the
position training loss stayed at ~0.1 m² at 30 dB), so the learned decoder resolves the
ambiguity and the ML step supplies the precision.  c = ``correction_scale`` (0.1) and the
last layer of f is zero-initialised, so the decoder starts at the model-based estimate and learns only what it lacks (the bias of the nominal
array model under impairments, low-SNR outliers).  θ_g, p_g are not differentiated (they are
data to the correction network), so the hybrid decoder is trained with the precoder FROZEN
(``train_autoencoder(..., train_precoder=False)``): the experiment first trains the seed's
end-to-end autoencoder, then copies its precoders into a hybrid model and fine-tunes the
decoder alone (:func:`hybrid_from`).  For I = 2 BSs the bearing intersection is exactly
determined, so the unit weights of ``ml_position`` lose nothing.

What we measured and chose (``benchmarks/positioning_learned_accuracy.py``, 1 CPU thread,
H = 128, batch 1 000, 600 steps from scratch at the lowest SNR then 200 warm-started steps
per SNR, 2 000 test trials; numbers in ``benchmarks/results/positioning_learned_accuracy_*``):

* seed decoder at that size (600 steps at 30 dB): AoD RMSE/CRB 1.73 / 1.62, position
  RMSE/PEB 2.61 (with 2 500 steps 1.2 / 1.8) — the gap is variance, not bias, and not float32
  resolution;
* hybrid decoder, 200 fine-tune steps (lr 1e-3 → 1e-8): 0.94-1.02 (AoD) and 0.99-1.12
  (position) from 5 to 30 dB without impairments; with impairments at 30 dB the correction
  must learn the nominal model's bias over the whole prior, which took 1 500 steps for the
  position (600 steps: coupling 1.68, bias 1.6 cm vs PEB 1.2 cm; 1 500: 1.14).
* a larger fine-tune batch and float64 were not needed; warm start (``warm_start`` in the
  experiment: each SNR's seed model starts from the next lower training SNR's weights and
  trains ``warm_steps``) is kept for the seed stage.

Checkpoints: :func:`save_autoencoder` / :func:`load_autoencoder` through
:mod:`isackit.learning.checkpoint` (safetensors + JSON; nothing is unpickled).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ...impairments.base import ArrayModel
from ...learning.checkpoint import load_checkpoint, save_checkpoint
from ...learning.networks import mlp
from .benchmark import ml_aod, ml_position
from .scenario import draw_gains, local_aods, observe, sector_features

__all__ = [
    "PrecoderNet",
    "AoDDecoder",
    "PositionDecoder",
    "AoDAutoencoder",
    "PositionAutoencoder",
    "true_steering",
    "geometric_aods",
    "hybrid_from",
    "train_autoencoder",
    "TrainingLog",
    "save_autoencoder",
    "load_autoencoder",
]


def _complex_features(y: torch.Tensor, snr_db: float, derotate: bool) -> torch.Tensor:
    """[Re y, Im y] of the (optionally derotated, scaled) observation, ``(..., T) -> (..., 2T)``."""
    if derotate:
        ref = y.sum(-1, keepdim=True)
        y = y * (ref.conj() / ref.abs().clamp_min(1e-12))
    y = y / math.sqrt(1.0 + 10.0 ** (snr_db / 10.0))
    return torch.cat([y.real, y.imag], dim=-1)


class PrecoderNet(nn.Module):
    """f_ε: ξ ``(..., 3)`` → F ``(..., N_t, T)`` complex with ‖F‖_F = 1 (seed Table I)."""

    def __init__(self, num_antennas: int, num_transmissions: int, hidden: int = 256, depth: int = 6):
        super().__init__()
        self.num_antennas, self.num_transmissions = int(num_antennas), int(num_transmissions)
        self.net = mlp([3] + [hidden] * depth + [2 * self.num_antennas * self.num_transmissions])

    def forward(self, xi: torch.Tensor) -> torch.Tensor:
        out = self.net(xi).unflatten(-1, (2, self.num_antennas, self.num_transmissions))
        F = torch.complex(out[..., 0, :, :], out[..., 1, :, :])
        return F / torch.linalg.matrix_norm(F, keepdim=True)


class AoDDecoder(nn.Module):
    """f_μ: y ``(..., T)`` + sector ``(..., 2)`` → θ̂ ``(...)`` in the sector (seed Table I)."""

    def __init__(self, num_transmissions: int, hidden: int = 256, derotate: bool = True,
                 hybrid: bool = False, correction_scale: float = 0.1):
        super().__init__()
        h = hidden
        self.derotate, self.hybrid = bool(derotate), bool(hybrid)
        self.correction_scale = float(correction_scale)
        self.net = mlp([2 * num_transmissions + int(self.hybrid), h, h, h, h, 2 * h, 2 * h, 1])
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
                 correction_scale: float = 0.1):
        super().__init__()
        h = hidden
        self.derotate, self.hybrid = bool(derotate), bool(hybrid)
        self.correction_scale = float(correction_scale)
        self.register_buffer("centre", torch.tensor(list(prior_centre), dtype=torch.float32))
        self.half_side = float(prior_side) / 2
        extra = (2 * num_bs + 2) if self.hybrid else 0
        self.net = mlp([2 * num_bs * num_transmissions + extra, h, h, h, h, 2 * h, 2 * h, 2])
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


WINDOW_DEG = 4.0  # half-width of the ML search window around the seed decoder's estimate


def _window(centre: torch.Tensor, sectors: torch.Tensor, half: float) -> torch.Tensor:
    """Search window [c - half, c + half] ∩ sector ``(..., I, 2)`` around estimates c ``(..., I)``."""
    c = torch.minimum(torch.maximum(centre, sectors[..., 0]), sectors[..., 1])
    lo = torch.maximum(c - half, sectors[..., 0])
    hi = torch.minimum(c + half, sectors[..., 1])
    return torch.stack([lo, hi], dim=-1)


def _zero_last(net: nn.Sequential) -> None:
    """Zero the last linear layer: a hybrid decoder starts at the model-based estimate."""
    nn.init.zeros_(net[-1].weight)
    nn.init.zeros_(net[-1].bias)


def geometric_aods(y: torch.Tensor, precoders: torch.Tensor, arrays: Sequence[ArrayModel],
                   sectors: torch.Tensor, grid_size: int = 64, refine_iterations: int = 8) -> torch.Tensor:
    """Model-based AoDs θ_g ``(..., I)`` of every BS by :func:`.benchmark.ml_aod` (no gradient).

    Args:
        y: ``(..., I, T)``; precoders: ``(..., I, M, T)``; sectors: ``(..., I, 2)``.
        arrays: the arrays the receiver ASSUMES (pass the nominal ones, ``arr.ideal()``).
        grid_size / refine_iterations: of ``ml_aod`` (64 points over a ≤30° sector is < ½ of
            the 3.2° beamwidth of 32 λ/2 elements; 8 parabolic steps shrink the bracket 4⁸×).
    """
    with torch.no_grad():
        return torch.stack([ml_aod(y[..., i, :], precoders[..., i, :, :], arr, sectors[..., i, :],
                                   grid_size, refine_iterations)
                            for i, arr in enumerate(arrays)], dim=-1)


def true_steering(arrays: Sequence[ArrayModel], theta: torch.Tensor) -> torch.Tensor:
    """ã_i(θ_i) of every BS: θ ``(..., I)`` → ``(..., I, M)`` (TRUE arrays, differentiable)."""
    if theta.shape[-1] != len(arrays):
        raise ValueError(f"theta must have shape (..., I={len(arrays)}), got {tuple(theta.shape)}")
    return torch.stack([arr.steering(theta[..., i:i + 1])[..., 0] for i, arr in enumerate(arrays)], dim=-2)


class _Base(nn.Module):
    kind = "base"

    def __init__(self, num_bs, num_antennas, num_transmissions, hidden, depth, hybrid=False,
                 correction_scale=0.1, ml_grid=64):
        super().__init__()
        self.hparams: dict[str, Any] = dict(num_bs=int(num_bs), num_antennas=int(num_antennas),
                                            num_transmissions=int(num_transmissions), hidden=int(hidden),
                                            depth=int(depth))
        self.hybrid = bool(hybrid)
        if self.hybrid:  # only stored when used: seed-decoder checkpoints keep their old hparams
            self.hparams.update(hybrid=True, correction_scale=float(correction_scale), ml_grid=int(ml_grid))
        self.ml_grid = int(ml_grid)
        self.window = math.radians(WINDOW_DEG)
        self.precoder_nets = nn.ModuleList(PrecoderNet(num_antennas, num_transmissions, hidden, depth)
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

    def observe(self, sectors, theta, arrays, snr_db, generator):
        """y ``(..., I, T)`` through the TRUE arrays at the given SNR (differentiable in F)."""
        F = self.precoders(sectors)
        a = true_steering(arrays, theta.to(torch.float32)).to(F.dtype)
        alpha = draw_gains(snr_db, theta.shape, generator, F.dtype, F.device)
        return observe(F, a, alpha, generator)

    def observe_with_precoders(self, sectors, theta, arrays, snr_db, generator):
        """``(y, F)``: as :meth:`observe`, also returning the precoders (for the hybrid guess)."""
        F = self.precoders(sectors)
        a = true_steering(arrays, theta.to(torch.float32)).to(F.dtype)
        alpha = draw_gains(snr_db, theta.shape, generator, F.dtype, F.device)
        return observe(F, a, alpha, generator), F


class AoDAutoencoder(_Base):
    """Fig. 2 of seed 004: per-BS precoder nets + one shared AoD decoder."""

    kind = "aod"

    def __init__(self, num_bs: int, num_antennas: int, num_transmissions: int, hidden: int = 256,
                 depth: int = 6, derotate: bool = True, hybrid: bool = False, correction_scale: float = 0.1,
                 ml_grid: int = 64):
        super().__init__(num_bs, num_antennas, num_transmissions, hidden, depth, hybrid, correction_scale, ml_grid)
        self.hparams.update(derotate=bool(derotate))
        self.decoder = AoDDecoder(num_transmissions, hidden, derotate, hybrid, correction_scale)
        if self.hybrid:  # the seed decoder, frozen: gives the ML search window
            self.coarse = AoDDecoder(num_transmissions, hidden, derotate)

    def forward(self, sectors: torch.Tensor, theta: torch.Tensor, arrays: Sequence[ArrayModel],
                snr_db: float, generator: torch.Generator) -> torch.Tensor:
        """θ̂ ``(..., I)`` for sectors ``(..., I, 2)`` and true AoDs ``(..., I)``."""
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
    """Fig. 3 of seed 004: per-BS precoder nets + a position decoder on all observations."""

    kind = "position"

    def __init__(self, num_bs: int, num_antennas: int, num_transmissions: int,
                 prior_centre: Sequence[float], prior_side: float, hidden: int = 256, depth: int = 6,
                 derotate: bool = True, hybrid: bool = False, correction_scale: float = 0.1, ml_grid: int = 64,
                 bs_positions: Sequence[Sequence[float]] | None = None,
                 bs_orientations: Sequence[float] | None = None):
        super().__init__(num_bs, num_antennas, num_transmissions, hidden, depth, hybrid, correction_scale, ml_grid)
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
                                       hybrid, correction_scale)
        if self.hybrid:  # the seed decoder, frozen: gives the ML search windows
            self.coarse = PositionDecoder(num_bs, num_transmissions, prior_centre, prior_side, hidden, derotate)

    def forward(self, sectors: torch.Tensor, theta: torch.Tensor, arrays: Sequence[ArrayModel],
                snr_db: float, generator: torch.Generator) -> torch.Tensor:
        """p̂ ``(..., 2)``."""
        y, F = self.observe_with_precoders(sectors, theta, arrays, snr_db, generator)
        if not self.hybrid:
            return self.decoder(y, snr_db)
        secs = sectors.to(torch.float32)
        with torch.no_grad():
            coarse = local_aods(self.coarse(y, snr_db), self.bs_q, self.bs_psi)
        th = geometric_aods(y, F.detach(), [a.ideal() for a in arrays], _window(coarse, secs, self.window),
                            self.ml_grid)
        c, h = self.decoder.centre, self.decoder.half_side
        box = torch.stack([c - h, c + h])
        with torch.no_grad():
            p_g = ml_position(th, torch.ones_like(th), self.bs_q, self.bs_psi, box=box)
        mid, half = secs.mean(-1), (secs[..., 1] - secs[..., 0]) / 2
        return self.decoder(y, snr_db, p_g, torch.cat([(th - mid) / half, mid], dim=-1))


class TrainingLog(dict):
    """``losses`` (per logged step), ``steps``, ``seconds``."""


def train_autoencoder(model: _Base, sample: Callable[[int, torch.Generator], tuple[torch.Tensor, ...]],
                      arrays: Sequence[ArrayModel], snr_db: float, steps: int, batch: int = 10_000,
                      lr: float = 1e-3, min_lr: float = 1e-8, generator: torch.Generator | None = None,
                      log_every: int = 50, train_precoder: bool = True) -> TrainingLog:
    """Train at a fixed SNR with Adam and a cosine learning-rate schedule lr → min_lr.

    With ``train_precoder=False`` only the decoder is optimised (the precoder nets are frozen
    and no graph is built through them): the fine-tune phase of a hybrid decoder.

    Args:
        model: :class:`AoDAutoencoder` or :class:`PositionAutoencoder`.
        sample: ``(batch, generator) -> (sectors, theta, target)``; the target is θ for the
            AoD AE and p for the position AE.
        arrays: TRUE array of each BS.
        steps: optimiser steps; batch: samples per step (seed: 10 000).
    Returns:
        :class:`TrainingLog` (the model is trained in place).
    """
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    for p in model.precoder_nets.parameters():
        p.requires_grad_(bool(train_precoder))
    params = model.parameters() if train_precoder else model.decoder.parameters()
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(int(steps), 1), eta_min=min_lr)
    losses, t0 = [], time.perf_counter()
    model.train()
    for step in range(int(steps)):
        sectors, theta, target = sample(batch, g)
        est = model(sectors, theta, arrays, snr_db, g)
        loss = ((est - target.to(est.dtype)) ** 2).sum(-1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % log_every == 0 or step == steps - 1:
            losses.append(float(loss.detach()))
    for p in model.precoder_nets.parameters():
        p.requires_grad_(True)
    model.eval()
    return TrainingLog(losses=losses, steps=int(steps), seconds=time.perf_counter() - t0)


def hybrid_from(model: _Base, correction_scale: float = 0.1, ml_grid: int = 64,
                bs_positions: Sequence[Sequence[float]] | None = None,
                bs_orientations: Sequence[float] | None = None, correction_from: _Base | None = None) -> _Base:
    """A hybrid-decoder copy of a trained seed autoencoder: same precoders (copied), a fresh
    correction decoder whose output starts at zero (so it starts at the model-based estimate).

    ``bs_positions`` / ``bs_orientations`` (radians) are needed for a position autoencoder.
    ``correction_from``: a trained hybrid model of the same kind and sizes (e.g. the one of the
    next lower training SNR) whose correction decoder initialises this one instead of zeros;
    the precoders and the frozen coarse decoder still come from ``model``.
    """
    hp = {k: v for k, v in model.hparams.items() if k not in ("hybrid", "correction_scale", "ml_grid")}
    hp.update(hybrid=True, correction_scale=correction_scale, ml_grid=ml_grid)
    if model.kind == "aod":
        new: _Base = AoDAutoencoder(**hp)
    else:
        hp.update(bs_positions=bs_positions, bs_orientations=bs_orientations)
        new = PositionAutoencoder(**hp)
    new.precoder_nets.load_state_dict(model.precoder_nets.state_dict())
    new.coarse.load_state_dict(model.decoder.state_dict())
    if correction_from is not None:
        if not getattr(correction_from, "hybrid", False) or correction_from.kind != model.kind:
            raise ValueError(f"correction_from must be a hybrid {model.kind} autoencoder")
        new.decoder.load_state_dict(correction_from.decoder.state_dict())
    return new


def save_autoencoder(directory: str | Path, model: _Base, extra: dict[str, Any] | None = None) -> Path:
    """Save weights + hyper-parameters (+ ``extra``, e.g. the scenario and SNR) as a checkpoint."""
    cfg = {"kind": model.kind, "hparams": model.hparams, "extra": extra or {}}
    return save_checkpoint(directory, model.state_dict(), cfg)


def load_autoencoder(directory: str | Path) -> tuple[_Base, dict[str, Any]]:
    """Rebuild a model from :func:`save_autoencoder` output: ``(model (eval mode), extra)``."""
    state, cfg = load_checkpoint(directory)
    hp = dict(cfg["hparams"])
    if cfg["kind"] == "aod":
        model: _Base = AoDAutoencoder(**hp)
    elif cfg["kind"] == "position":
        model = PositionAutoencoder(**hp)
    else:
        raise ValueError(f"unknown autoencoder kind {cfg['kind']!r} in {directory}")
    model.load_state_dict(state)
    model.eval()
    return model, cfg.get("extra", {})
