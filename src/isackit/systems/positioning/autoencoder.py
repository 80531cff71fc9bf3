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
from .scenario import draw_gains, observe, sector_features

__all__ = [
    "mlp",
    "PrecoderNet",
    "AoDDecoder",
    "PositionDecoder",
    "AoDAutoencoder",
    "PositionAutoencoder",
    "true_steering",
    "train_autoencoder",
    "TrainingLog",
    "save_autoencoder",
    "load_autoencoder",
]


def mlp(sizes: Sequence[int]) -> nn.Sequential:
    """Linear layers with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


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

    def __init__(self, num_transmissions: int, hidden: int = 256, derotate: bool = True):
        super().__init__()
        h = hidden
        self.derotate = bool(derotate)
        self.net = mlp([2 * num_transmissions, h, h, h, h, 2 * h, 2 * h, 1])

    def forward(self, y: torch.Tensor, sector: torch.Tensor, snr_db: float) -> torch.Tensor:
        z = self.net(_complex_features(y, snr_db, self.derotate)).squeeze(-1)
        mid, half = sector.mean(-1), (sector[..., 1] - sector[..., 0]) / 2
        return mid + half * torch.tanh(z)


class PositionDecoder(nn.Module):
    """f_β: y ``(..., I, T)`` → p̂ ``(..., 2)`` (seed Table I), around the prior centre."""

    def __init__(self, num_bs: int, num_transmissions: int, prior_centre: Sequence[float],
                 prior_side: float, hidden: int = 256, derotate: bool = True):
        super().__init__()
        h = hidden
        self.derotate = bool(derotate)
        self.register_buffer("centre", torch.tensor(list(prior_centre), dtype=torch.float32))
        self.half_side = float(prior_side) / 2
        self.net = mlp([2 * num_bs * num_transmissions, h, h, h, h, 2 * h, 2 * h, 2])

    def forward(self, y: torch.Tensor, snr_db: float) -> torch.Tensor:
        x = _complex_features(y, snr_db, self.derotate).flatten(-2)
        return self.centre.to(x.dtype) + self.half_side * self.net(x)


def true_steering(arrays: Sequence[ArrayModel], theta: torch.Tensor) -> torch.Tensor:
    """ã_i(θ_i) of every BS: θ ``(..., I)`` → ``(..., I, M)`` (TRUE arrays, differentiable)."""
    if theta.shape[-1] != len(arrays):
        raise ValueError(f"theta must have shape (..., I={len(arrays)}), got {tuple(theta.shape)}")
    return torch.stack([arr.steering(theta[..., i:i + 1])[..., 0] for i, arr in enumerate(arrays)], dim=-2)


class _Base(nn.Module):
    kind = "base"

    def __init__(self, num_bs, num_antennas, num_transmissions, hidden, depth):
        super().__init__()
        self.hparams: dict[str, Any] = dict(num_bs=int(num_bs), num_antennas=int(num_antennas),
                                            num_transmissions=int(num_transmissions), hidden=int(hidden),
                                            depth=int(depth))
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


class AoDAutoencoder(_Base):
    """Fig. 2 of seed 004: per-BS precoder nets + one shared AoD decoder."""

    kind = "aod"

    def __init__(self, num_bs: int, num_antennas: int, num_transmissions: int, hidden: int = 256,
                 depth: int = 6, derotate: bool = True):
        super().__init__(num_bs, num_antennas, num_transmissions, hidden, depth)
        self.hparams.update(derotate=bool(derotate))
        self.decoder = AoDDecoder(num_transmissions, hidden, derotate)

    def forward(self, sectors: torch.Tensor, theta: torch.Tensor, arrays: Sequence[ArrayModel],
                snr_db: float, generator: torch.Generator) -> torch.Tensor:
        """θ̂ ``(..., I)`` for sectors ``(..., I, 2)`` and true AoDs ``(..., I)``."""
        y = self.observe(sectors, theta, arrays, snr_db, generator)
        return self.decoder(y, sectors.to(torch.float32), snr_db)


class PositionAutoencoder(_Base):
    """Fig. 3 of seed 004: per-BS precoder nets + a position decoder on all observations."""

    kind = "position"

    def __init__(self, num_bs: int, num_antennas: int, num_transmissions: int,
                 prior_centre: Sequence[float], prior_side: float, hidden: int = 256, depth: int = 6,
                 derotate: bool = True):
        super().__init__(num_bs, num_antennas, num_transmissions, hidden, depth)
        self.hparams.update(prior_centre=[float(v) for v in prior_centre], prior_side=float(prior_side),
                            derotate=bool(derotate))
        self.decoder = PositionDecoder(num_bs, num_transmissions, prior_centre, prior_side, hidden, derotate)

    def forward(self, sectors: torch.Tensor, theta: torch.Tensor, arrays: Sequence[ArrayModel],
                snr_db: float, generator: torch.Generator) -> torch.Tensor:
        """p̂ ``(..., 2)``."""
        y = self.observe(sectors, theta, arrays, snr_db, generator)
        return self.decoder(y, snr_db)


class TrainingLog(dict):
    """``losses`` (per logged step), ``steps``, ``seconds``."""


def train_autoencoder(model: _Base, sample: Callable[[int, torch.Generator], tuple[torch.Tensor, ...]],
                      arrays: Sequence[ArrayModel], snr_db: float, steps: int, batch: int = 10_000,
                      lr: float = 1e-3, min_lr: float = 1e-8, generator: torch.Generator | None = None,
                      log_every: int = 50) -> TrainingLog:
    """Train at a fixed SNR with Adam and a cosine learning-rate schedule lr → min_lr.

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
    opt = torch.optim.Adam(model.parameters(), lr=lr)
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
    model.eval()
    return TrainingLog(losses=losses, steps=int(steps), seconds=time.perf_counter() - t0)


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
