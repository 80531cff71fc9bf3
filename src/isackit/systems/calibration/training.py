r"""Training of the S0 calibration methods (seed 000): the step that couples the station, the
transceiver and the losses, and the loop around it.

The learner sees the world only through a :class:`World`: it draws scenes (sector prior, UE
direction, the symbols it sends) and receives the observations of the precoders it chooses —
``sense(f) -> Y`` at its sensing array and ``ue_receive(f) -> y`` at the UE.  It never reads
the true impairments.

One step (:func:`training_step`): precode with the learned Tx model, observe (Y, y) with the
precoders detached, detect with the learned Rx model, form the ISAC loss
w L_sens + (1 − w) L_comm, and back-propagate it plus a surrogate S(f) whose gradient stands in
for the unknown channel path f → (Y, y) (:mod:`isackit.learning.calibration` has the maths):

* ``gradient="model"`` (the calibration proper): the UE link by probing
  (``comm_gradient="perturbation"``, :func:`~isackit.learning.calibration.probe_surrogate`) or
  by the learned model (``"model"``), and the sensing path by the learned model only with
  ``tx_from_sensing`` (:func:`~isackit.learning.calibration.model_channel_surrogate`);
* ``gradient="true"`` (baseline): the real channel's Jacobian, S = Re Σ conj(g) · (noise-free
  ``world.sense(f)``, ``world.ue_receive(f)``) differentiated by autograd (simulation only);
* ``gradient="none"`` (ablation): S = 0.

Methods: unsupervised (``sensing_loss`` = ``residual``, ``max_response``,
``max_response_adm``), supervised (``supervised``: LS residual at the labelled targets), true
gradient (``gradient="true"``), all with the comm loss weighted by 1 − w.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import torch

from ...learning.calibration import (
    comm_loss,
    isac_loss,
    max_response_adm_loss,
    max_response_loss,
    model_channel_surrogate,
    probe_surrogate,
    residual_loss,
    supervised_loss,
)
from ...seeding import make_generator
from .config import CalibrationTrainingConfig
from .station import Scenes
from .transceiver import Transceiver

__all__ = ["World", "TrainingLog", "train_calibration", "training_step", "make_optimizer",
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


def make_optimizer(transceiver: Transceiver, training: CalibrationTrainingConfig) -> torch.optim.Optimizer:
    """Adam over the learnable Tx/Rx parameters; displacements (metres) get lr·λ/(2π) so that
    one step moves a phase 2π δ/λ by about as much as a phase parameter's step."""
    disp, other = [], []
    for name, p in transceiver.named_parameters():
        if p.requires_grad:
            (disp if name.endswith("displacement") else other).append(p)
    groups = [{"params": other, "lr": training.learning_rate}]
    if disp:
        wavelength = transceiver.config.scenario.wavelength
        groups.append({"params": disp, "lr": training.learning_rate * wavelength / (2 * math.pi)})
    return torch.optim.Adam(groups)


def learning_rate_factor(step: int, steps: int, final_fraction: float) -> float:
    r"""Cosine learning-rate schedule: lr_t = lr (f + (1 − f)(1 + cos(π t / T)) / 2), t = 0..T−1.

    f = ``final_fraction`` (1: constant lr).  With noisy gradients (the probe estimate of the UE
    link, the random scenes) a constant-lr Adam ends jittering around the optimum with steps
    of about lr; the decay lets the last steps average that noise out.
    """
    if steps <= 1 or final_fraction >= 1.0:
        return 1.0
    return final_fraction + (1.0 - final_fraction) * 0.5 * (1.0 + math.cos(math.pi * step / (steps - 1)))


def _sensing_loss(training: CalibrationTrainingConfig, Y, scenes: Scenes, transceiver: Transceiver, det):
    if training.sensing_loss == "residual":
        return residual_loss(Y, det)
    if training.sensing_loss == "max_response":
        return max_response_loss(Y, det)
    if training.sensing_loss == "max_response_adm":
        return max_response_adm_loss(Y, det)
    return supervised_loss(Y, scenes.symbols, transceiver.rx, scenes.target_angle, scenes.target_delay,
                           scenes.target_mask, transceiver.config.scenario.ofdm)


def _ue_probe(world: World, scenes: Scenes, probes: int, noise: torch.Generator):
    """``receive(F)`` for :func:`~isackit.learning.calibration.probe_gradient`: the UE's samples
    for ``probes`` probe precoders per scene (rows p·B + b), with the UE's receiver noise."""
    B = scenes.symbols.shape[0]
    rep = scenes if probes == 1 else scenes.index(torch.arange(B, device=scenes.symbols.device).repeat(probes))
    return lambda F: world.ue_receive(F, rep, noise)


def _true_surrogate(world: World, f: torch.Tensor, scenes: Scenes, gY, gy):
    """Re Σ conj(g) · (true noise-free channel)(f) — the true-gradient baseline (simulation only)."""
    return ((gY.conj() * world.sense(f, scenes, None)).sum().real
            + (gy.conj() * world.ue_receive(f, scenes, None)).sum().real)


def training_step(transceiver: Transceiver, world: World, scenes: Scenes, optimizer: torch.optim.Optimizer,
                  noise: torch.Generator, training: CalibrationTrainingConfig | None = None) -> dict:
    """One forward + backward + optimiser step on one batch of scenes; returns the loss terms."""
    cfg = transceiver.config.training if training is None else training
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
    det = transceiver.detect(Yl, scenes)
    ls = _sensing_loss(cfg, Yl, scenes, transceiver, det)
    lc = comm_loss(yl)
    loss = isac_loss(ls, lc, cfg.loss_weight)
    gY = gy = None
    if need:
        gY, gy = torch.autograd.grad(loss, [Yl, yl], retain_graph=True, allow_unused=True)
    gY = torch.zeros_like(Y) if gY is None else gY.detach()
    gy = torch.zeros_like(y) if gy is None else gy.detach()
    ofdm = transceiver.config.scenario.ofdm
    if cfg.gradient == "true":
        surrogate = _true_surrogate(world, f, scenes, gY, gy)
    elif cfg.gradient == "none":
        surrogate = f.real.sum() * 0.0
    elif cfg.comm_gradient == "perturbation":
        surrogate = probe_surrogate(_ue_probe(world, scenes, cfg.probes, noise), f, y, cfg.loss_weight,
                                    cfg.probe_size, noise, cfg.probes)
        if cfg.tx_from_sensing:
            surrogate = surrogate + model_channel_surrogate(transceiver.tx, transceiver.rx, f, scenes.symbols,
                                                            scenes.ue_angle, Y, y, gY, gy, det, ofdm, comm=False)
    else:
        surrogate = model_channel_surrogate(transceiver.tx, transceiver.rx, f, scenes.symbols, scenes.ue_angle,
                                            Y, y, gY, gy, det, ofdm)
    optimizer.zero_grad(set_to_none=True)
    (loss + surrogate).backward()
    optimizer.step()
    return {"loss": float(loss.detach()), "sensing": float(ls.detach().mean()), "comm": float(lc.detach().mean()),
            "detections": float(det.detected.sum(-1).float().mean())}


def train_calibration(transceiver: Transceiver, world: World, training: CalibrationTrainingConfig | None = None,
                      log_every: int = 10, progress=None,
                      monitor: Callable[[Transceiver], dict[str, float]] | None = None) -> TrainingLog:
    """Calibrate ``transceiver``'s learnable models on fresh scenes from ``world``.

    Scenes and noise come from the named streams ``(seed, "scenes")`` and ``(seed, "noise")``
    of ``training.seed`` (deterministic on CPU).  The detection threshold must be set
    beforehand (:func:`~.transceiver.calibrate_threshold`).

    Args:
        training: default: the transceiver's ``config.training``.
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
    cfg = transceiver.config.training if training is None else training
    if int(log_every) < 1:
        raise ValueError(f"log_every must be a positive integer, got {log_every!r}")
    if not math.isfinite(float(transceiver.threshold)):
        raise ValueError("set the detection threshold first (calibrate_threshold)")
    scene_gen = make_generator(cfg.seed, "scenes")
    noise_gen = make_generator(cfg.seed, "noise")
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
