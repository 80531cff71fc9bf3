r"""One training loop for every S0 calibration method (seed 000).

The learner sees the world only through a :class:`World`: it draws scenes (sector prior,
UE direction, the symbols it sends) and receives the observations of the precoders it
chooses — ``sense(f) -> Y`` at its sensing array and ``ue_receive(f) -> y`` at the UE.  It
never reads the true impairments.

Channel-gradient approximation (seed 000).  A loss L(Y, y; ψ) of the observations and the
learned parameters ψ depends on ψ through the receiver (directly) and through the precoder
f(ψ) → physical channel → (Y, y).  The second path needs ∂Y/∂f of the real channel, which is
unknown.  With g_Y = ∂L/∂Y* (PyTorch's complex gradient, so that dL = Re Σ conj(g_Y) dY), the
loop back-propagates the surrogate

    S(f) = Re Σ conj(g_Y) Ŷ(f) + Re Σ conj(g_y) ŷ(f)         (g_Y, g_y held constant)

where Ŷ, ŷ are LINEAR models of the channel in f whose Jacobian replaces the true one:

* ``gradient="model"`` (the calibration proper): the learned model's channel built from the
  receiver's own detections: Ŷ(f) = Σ_k ĉ_k â_r(θ̂_k) (â_t(θ̂_k)^T f / â_t(θ̂_k)^T f_0) (x ⊙ b(τ̂_k))^T
  with the OMP's LS gains ĉ_k (measured with the transmitted f_0), and ŷ_n(f) =
  x_n ĥ (â_t(θ_UE)^T f / â_t(θ_UE)^T f_0) with ĥ = mean_n y_n conj(x_n) the effective channel
  the UE measures.  The measured quantities (ĉ, ĥ, â_r, θ̂, τ̂, f_0) are constants; the numerator
  â_t(θ)^T f is differentiated in full — through f AND through the learned Tx response — i.e.
  the gradient of the observation w.r.t. the learned parameters is that of the learned model's
  prediction of it.  (Holding â_t fixed, i.e. replacing only ∂Y/∂f, made the learned Tx model
  drift: it then climbs its own objective, e.g. bending the sector beam towards the UE; in our
  quick runs the UE SNR fell from 7.6 dB to -1.5 dB.  With the full derivative the drift is small,
  but power-only feedback still carries no information on the Tx phases — see the report.)
* the UE link (``comm_gradient="perturbation"``, the default in ``model`` mode): the learned
  model's Jacobian carries NO information on the Tx errors through a power-only observation —
  for the comm beam f = conj(â_t(θ_UE))/||â_t|| and ĥ ∝ â_t(θ_UE), ĥ^T f = ||â_t|| whatever
  the learned phases, so the surrogate's gradient is zero (or, with â_t held fixed, pushes
  every element's phase alike).  The station therefore estimates the UE link's channel
  gradient from probing transmissions f ± εu_i (i = 1..``probes``) per scene and the powers
  the UE reports (:func:`probe_gradient`, a two-point/SPSA-type estimate averaged over the
  probe pairs; it never uses the channel itself).
  ``comm_gradient="model"`` keeps the learned-model surrogate for the UE link (ablation);
* the sensing path's surrogate is added to the Tx update only with ``tx_from_sensing=True``.
  By default (False) the Tx model learns from the UE feedback alone: the per-target LS gain
  absorbs the Tx factor â_t(θ_k)^T f, so the sensing observation carries (almost) no
  information on the Tx errors, and at w = 1 (no comm loss) Adam amplified the surrogate's
  tiny, uninformative gradient into a Tx-gain drift that collapsed the link (SER 0.21 in a
  16-antenna quick run; 0.13 in a 64-antenna one, Tx gains off by 5 dB).  With the default
  the Tx stays nominal at w = 1 (nothing informs it).  At w = 0.5 the flag also hurt (one
  device, 64 × 64, 200 steps: Tx gain error 1.26 dB with it vs 0.63 dB without, UE SNR 9.07 vs
  9.23 dB, SER +12 %, GOSPA 2.99 vs 2.90 m);
* ``gradient="none"`` (ablation): the channel path is dropped (S = 0);
* ``gradient="true"`` (baseline c): the real channel's Jacobian, Ŷ(f) = noise-free
  ``world.sense(f)`` differentiated by autograd (available only in simulation).

Methods: unsupervised (``sensing_loss`` = ``residual`` or ``max_response``), supervised
(``supervised``: LS residual at the labelled targets), true gradient (``gradient="true"``),
all with the comm loss weighted by 1 - w.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import torch

from ...signals.random import complex_normal
from .config import CalibrationConfig
from .losses import comm_loss, isac_loss, max_response_adm_loss, max_response_loss, residual_loss, supervised_loss
from .station import Scenes
from .transceiver import Transceiver, abs2, ls_fit

__all__ = ["World", "TrainingLog", "train_calibration", "training_step", "make_optimizer", "probe_gradient",
           "learning_rate_factor"]


class World(Protocol):
    """What the learner may use: scene draws and the observations of its own precoders."""

    def draw_scenes(self, batch: int, generator: torch.Generator) -> Scenes: ...

    def sense(self, f: torch.Tensor, scenes: Scenes, generator: torch.Generator | None) -> torch.Tensor: ...

    def ue_receive(self, f: torch.Tensor, scenes: Scenes, generator: torch.Generator | None) -> torch.Tensor: ...


@dataclass
class TrainingLog:
    """Per-logged-step records (step, loss, sensing, comm, detections and any monitored
    values) and the wall time (monitoring included)."""

    records: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def make_optimizer(transceiver: Transceiver, cfg: CalibrationConfig) -> torch.optim.Optimizer:
    """Adam over the learnable Tx/Rx parameters; displacements (metres) get lr·λ/(2π) so that
    one step moves a phase 2π δ/λ by about as much as a phase parameter's step."""
    disp, other = [], []
    for name, p in transceiver.named_parameters():
        if p.requires_grad:
            (disp if name.endswith("displacement") else other).append(p)
    groups = [{"params": other, "lr": cfg.learning_rate}]
    if disp:
        groups.append({"params": disp, "lr": cfg.learning_rate * cfg.wavelength / (2 * math.pi)})
    return torch.optim.Adam(groups)


def learning_rate_factor(step: int, steps: int, final_fraction: float) -> float:
    r"""Cosine learning-rate schedule: lr_t = lr (f + (1 - f)(1 + cos(π t / T)) / 2), t = 0..T-1.

    f = ``final_fraction`` (1: constant lr).  With noisy gradients (the probe estimate of the UE
    link, the random scenes) a constant-lr Adam ends jittering around the optimum with steps
    of about lr; the decay lets the last steps average that noise out.
    """
    if steps <= 1 or final_fraction >= 1.0:
        return 1.0
    return final_fraction + (1.0 - final_fraction) * 0.5 * (1.0 + math.cos(math.pi * step / (steps - 1)))


def _sensing_loss(cfg, Y, scenes, transceiver, soft):
    if cfg.sensing_loss == "residual":
        return residual_loss(Y, soft)
    if cfg.sensing_loss == "max_response":
        return max_response_loss(Y, soft)
    if cfg.sensing_loss == "max_response_adm":
        return max_response_adm_loss(Y, soft)
    return supervised_loss(Y, scenes, transceiver.rx, cfg.ofdm)


def _model_surrogate(transceiver: Transceiver, f: torch.Tensor, scenes: Scenes, Y, y, gY, gy, soft,
                     comm: bool = True):
    """Re Σ conj(g) · (learned model's prediction of the observation)(f, ψ)."""
    cfg = transceiver.config
    f0 = f.detach()
    with torch.no_grad():
        ang, dly, det = soft.angle.detach(), soft.delay.detach(), soft.detected
        c, _, a, d = ls_fit(Y, scenes.symbols, transceiver.rx, ang, dly, det, cfg.ofdm)
        At = transceiver.tx.steering(ang)                                          # (B, M_t, K)
        t0 = (At.transpose(-1, -2) @ f0.unsqueeze(-1)).squeeze(-1)                 # (B, K)
        safe = t0.abs() > 1e-12 * t0.abs().amax().clamp_min(1e-30)
        scale = torch.where(safe, c / torch.where(safe, t0, torch.ones_like(t0)), torch.zeros_like(c))
        q = scale * torch.einsum("bmn,bmk,bkn->bk", gY.conj(), a, d)              # (B, K)
        a_ue = transceiver.tx.steering(scenes.ue_angle.unsqueeze(-1))[..., 0]     # (B, M_t)
        u0 = (a_ue * f0).sum(-1)
        h_eff = (y * scenes.symbols.conj()).mean(-1) / scenes.symbols.abs().pow(2).mean(-1)
        qc = (gy.conj() * scenes.symbols).sum(-1) * h_eff / u0                     # (B,)
    # the learned model's prediction of the observation, differentiated in full (through f and
    # through the learned Tx responses; its value-scale is fixed by the measured ĉ, ĥ)
    At = transceiver.tx.steering(ang)
    a_ue = transceiver.tx.steering(scenes.ue_angle.unsqueeze(-1))[..., 0]
    s = (q * (At.transpose(-1, -2) @ f.unsqueeze(-1)).squeeze(-1)).sum(-1).real.sum()
    return s + (qc * (a_ue * f).sum(-1)).real.sum() if comm else s


def probe_gradient(world: World, f: torch.Tensor, scenes: Scenes, reference_power: torch.Tensor | float,
                   size: float, generator: torch.Generator, noise: torch.Generator | None = None,
                   probes: int = 1) -> torch.Tensor:
    r"""Two-point probe estimate of the comm loss's gradient through the UE channel.

    No channel knowledge: per scene the station transmits f ± ε u, u ~ CN(0, I), and the UE
    reports its received power P± = mean_n |y±_n|².  With ℓ(f) = -P(f)/P_ref (the comm loss),
    D = (ℓ(f + εu) - ℓ(f - εu)) / 2ε is the directional derivative Re(conj(g)^T u) (exact for
    the quadratic P, up to the measurement noise) and E[D u] = g/2 for circular u, so
    ĝ = 2 D u is an unbiased estimate of g = ∂ℓ/∂f* (PyTorch's complex-gradient convention).
    With ``probes`` = P pairs per scene (independent u_1..u_P, 2P probe transmissions) the
    estimate is the mean of the P one-pair estimates: its variance falls as 1/P (one pair has a
    relative variance of about M_t, the number of complex directions to explore).

    Args:
        f: ``(B, M_t)`` precoders (detached inside); reference_power: P_ref.
        size: ε; generator: draws u; noise: the UE's receiver noise (None: noise-free).
        probes: P, probe pairs per scene.

    Returns:
        ĝ ``(B, M_t)`` (no gradient).
    """
    if int(probes) < 1:
        raise ValueError(f"probes must be a positive integer, got {probes!r}")
    with torch.no_grad():
        f0 = f.detach()
        B = f0.shape[0]
        u = complex_normal((int(probes) * B, f0.shape[-1]), generator, f0.dtype, f0.device)   # (P·B, M)
        rep = scenes if probes == 1 else scenes.index(torch.arange(B, device=f0.device).repeat(int(probes)))
        fr = f0.repeat(int(probes), 1)
        p_plus = abs2(world.ue_receive(fr + size * u, rep, noise)).mean(-1)
        p_minus = abs2(world.ue_receive(fr - size * u, rep, noise)).mean(-1)
        D = -(p_plus - p_minus) / (2 * size * reference_power)
        return (2 * D.unsqueeze(-1) * u).reshape(int(probes), B, -1).mean(0)


def _probe_surrogate(world: World, f: torch.Tensor, scenes: Scenes, y: torch.Tensor, weight: float,
                     size: float, generator: torch.Generator, probes: int = 1) -> torch.Tensor:
    """Re Σ conj(ĝ)^T f · (1-w)/B with ĝ from :func:`probe_gradient` (the UE link's surrogate)."""
    p_ref = abs2(y).mean(-1).mean().clamp_min(1e-30)
    g_hat = probe_gradient(world, f, scenes, p_ref, size, generator, generator, probes) * ((1.0 - weight) / f.shape[0])
    return (g_hat.conj() * f).sum().real


def _true_surrogate(world: World, f: torch.Tensor, scenes: Scenes, gY, gy):
    """Re Σ conj(g) · (true noise-free channel)(f) — baseline (c), simulation only."""
    return ((gY.conj() * world.sense(f, scenes, None)).sum().real
            + (gy.conj() * world.ue_receive(f, scenes, None)).sum().real)


def training_step(transceiver: Transceiver, world: World, scenes: Scenes, optimizer: torch.optim.Optimizer,
                  noise: torch.Generator, cfg: CalibrationConfig | None = None) -> dict:
    """One forward + backward + optimiser step on one batch of scenes; returns the loss terms."""
    cfg = transceiver.config if cfg is None else cfg
    f = transceiver.precoder(scenes)
    with torch.no_grad():
        Y = world.sense(f.detach(), scenes, noise)
        y = world.ue_receive(f.detach(), scenes, noise)
    # ∂L/∂Y and ∂L/∂y (the backward pass into the channel) are needed only by the surrogates
    # that chain them through a channel Jacobian; the UE-probe surrogate with the Rx-only
    # sensing update needs neither, which saves a second backward pass through the receiver.
    need = cfg.gradient == "true" or (cfg.gradient != "none" and (cfg.comm_gradient != "perturbation"
                                                                   or cfg.tx_from_sensing))
    Yl, yl = (Y.clone().requires_grad_(True), y.clone().requires_grad_(True)) if need else (Y, y)
    soft = transceiver.detect(Yl, scenes)
    ls = _sensing_loss(cfg, Yl, scenes, transceiver, soft)
    lc = comm_loss(yl)
    loss = isac_loss(ls, lc, cfg.loss_weight)
    gY = gy = None
    if need:
        gY, gy = torch.autograd.grad(loss, [Yl, yl], retain_graph=True, allow_unused=True)
    gY = torch.zeros_like(Y) if gY is None else gY.detach()
    gy = torch.zeros_like(y) if gy is None else gy.detach()
    if cfg.gradient == "true":
        surrogate = _true_surrogate(world, f, scenes, gY, gy)
    elif cfg.gradient == "none":
        surrogate = f.real.sum() * 0.0
    elif cfg.comm_gradient == "perturbation":
        surrogate = _probe_surrogate(world, f, scenes, y, cfg.loss_weight, cfg.probe_size, noise, cfg.probes)
        if cfg.tx_from_sensing:
            surrogate = surrogate + _model_surrogate(transceiver, f, scenes, Y, y, gY, gy, soft, comm=False)
    else:
        surrogate = _model_surrogate(transceiver, f, scenes, Y, y, gY, gy, soft)
    optimizer.zero_grad(set_to_none=True)
    (loss + surrogate).backward()
    optimizer.step()
    return {"loss": float(loss.detach()), "sensing": float(ls.detach().mean()), "comm": float(lc.detach().mean()),
            "detections": float(soft.detected.sum(-1).float().mean())}


def train_calibration(transceiver: Transceiver, world: World, cfg: CalibrationConfig | None = None,
                      log_every: int = 10, progress=None,
                      monitor: Callable[[Transceiver], dict[str, float]] | None = None) -> TrainingLog:
    """Calibrate ``transceiver``'s learnable models on fresh scenes from ``world``.

    Scenes and noise come from generators seeded by ``cfg.seed`` (deterministic on CPU).
    The detection threshold must be set beforehand (:func:`calibrate_threshold`).

    Args:
        log_every: record the step's loss terms every ``log_every`` steps and at the last.
        progress: optional ``progress(step, record)`` called after every step.
        monitor: optional ``monitor(transceiver) -> {name: value}``, called (under
            ``no_grad``) after the update of every logged step; its entries are added to that
            step's record.  It runs OUTSIDE the training step and must neither change the
            transceiver nor draw random numbers, so training is the same with or without it —
            the experiment uses it to track the learned-vs-true parameter errors, which only
            the simulation (never the learner) can compute.

    Returns the learning curve (every ``log_every`` steps and the last).
    """
    cfg = transceiver.config if cfg is None else cfg
    if int(log_every) < 1:
        raise ValueError(f"log_every must be a positive integer, got {log_every!r}")
    if not math.isfinite(float(transceiver.threshold)):
        raise ValueError("set the detection threshold first (calibrate_threshold)")
    scene_gen = torch.Generator().manual_seed(cfg.seed)
    noise_gen = torch.Generator().manual_seed(cfg.seed + 1)
    opt = make_optimizer(transceiver, cfg)
    base_lr = [g["lr"] for g in opt.param_groups]
    log = TrainingLog()
    t0 = time.perf_counter()
    for step in range(cfg.steps):
        factor = learning_rate_factor(step, cfg.steps, cfg.lr_final_fraction)
        for g, lr in zip(opt.param_groups, base_lr, strict=True):
            g["lr"] = lr * factor
        scenes = world.draw_scenes(cfg.batch_size, scene_gen)
        rec = training_step(transceiver, world, scenes, opt, noise_gen, cfg)
        if step % log_every == 0 or step == cfg.steps - 1:
            extra = {}
            if monitor is not None:
                with torch.no_grad():
                    extra = {k: float(v) for k, v in monitor(transceiver).items()}
            log.records.append({"step": step, **rec, **extra})
        if progress is not None:
            progress(step, rec)
    log.seconds = time.perf_counter() - t0
    return log
