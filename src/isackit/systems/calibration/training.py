r"""Training of the S0 calibration methods (seed 000): the step that couples the station, the
transceiver and the losses, run by the library's one training loop
(:func:`isackit.learning.training.fit`).

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
from collections.abc import Callable
from pathlib import Path
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
from ...learning.training import ProgressFn, TrainingLog, fit
from ...seeding import make_generator
from .config import CalibrationTrainingConfig
from .station import Scenes
from .transceiver import Transceiver

__all__ = ["World", "train_calibration", "training_step", "parameter_groups"]


class World(Protocol):
    """What the learner may use: scene draws and the observations of its own precoders."""

    def draw_scenes(self, batch: int, generator: torch.Generator) -> Scenes: ...

    def sense(self, f: torch.Tensor, scenes: Scenes, generator: torch.Generator | None) -> torch.Tensor: ...

    def ue_receive(self, f: torch.Tensor, scenes: Scenes, generator: torch.Generator | None) -> torch.Tensor: ...


def parameter_groups(transceiver: Transceiver, training: CalibrationTrainingConfig) -> list[dict]:
    """The optimiser's parameter groups: the learnable Tx/Rx gains and phases at lr, the
    displacements (metres) at lr·λ/(2π), so that one step moves a phase 2π δ/λ by about as
    much as a phase parameter's step."""
    disp, other = [], []
    for name, p in transceiver.named_parameters():
        if p.requires_grad:
            (disp if name.endswith("displacement") else other).append(p)
    groups = [{"params": other, "lr": training.lr}]
    if disp:
        wavelength = transceiver.config.scenario.wavelength
        groups.append({"params": disp, "lr": training.lr * wavelength / (2 * math.pi)})
    return groups


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


def training_step(transceiver: Transceiver, world: World, scenes: Scenes, noise: torch.Generator,
                  training: CalibrationTrainingConfig | None = None) -> tuple[torch.Tensor, dict]:
    """The forward pass of one step on one batch of scenes.

    Returns ``(loss + surrogate, {"loss", "sensing", "comm", "detections"})``: the scalar to
    back-propagate (its gradient is the calibration's update direction; its value is
    meaningless) and the loss terms (tensors, detached), as :func:`~isackit.learning.training.fit`
    takes them from a step.
    """
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
    return loss + surrogate, {"loss": loss.detach(), "sensing": ls.detach().mean(), "comm": lc.detach().mean(),
                              "detections": det.detected.sum(-1).float().mean()}


def train_calibration(transceiver: Transceiver, world: World, training: CalibrationTrainingConfig | None = None, *,
                      progress: ProgressFn | None = None, what: str = "calibration",
                      monitor: Callable[[Transceiver], dict[str, float]] | None = None,
                      checkpoint_dir: str | Path | None = None) -> TrainingLog:
    """Calibrate ``transceiver``'s learnable models on fresh scenes from ``world`` with
    :func:`~isackit.learning.training.fit` (Adam over :func:`parameter_groups`, the config's
    schedule; a record every ``training.log_every`` steps and at the last).

    Scenes and noise come from the named streams ``(seed, "scenes")`` and ``(seed, "noise")``
    of ``training.seed`` (deterministic on CPU; checkpointed with the weights).  The
    detection threshold must be set beforehand (:func:`~.transceiver.calibrate_threshold`).

    Args:
        training: default: the transceiver's ``config.training``.
        progress: ``progress(done, total, what)`` after every step.
        monitor: ``monitor(transceiver) -> {name: value}`` after the update of every logged
            step (:func:`fit` runs it under ``no_grad`` and checks that it neither changes the
            transceiver nor draws from the training's generators) — the experiment tracks the
            learned-vs-true errors with it, which only the simulation can compute.
        checkpoint_dir: resumable checkpoints of the training (:func:`fit`).

    Returns:
        The learning curve (:class:`~isackit.learning.training.TrainingLog`): step, loss,
        sensing, comm, detections, lr and the monitored values.
    """
    cfg = transceiver.config.training if training is None else training
    if not math.isfinite(float(transceiver.threshold)):
        raise ValueError("set the detection threshold first (calibrate_threshold)")
    scene_gen = make_generator(cfg.seed, "scenes")
    noise_gen = make_generator(cfg.seed, "noise")

    def step(t: int):
        return training_step(transceiver, world, world.draw_scenes(cfg.batch_size, scene_gen), noise_gen, cfg)

    return fit(transceiver, step, cfg, params=parameter_groups(transceiver, cfg),
               generators={"scenes": scene_gen, "noise": noise_gen}, progress=progress, what=what,
               monitor=monitor, checkpoint_dir=checkpoint_dir)
