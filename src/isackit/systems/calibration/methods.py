r"""The S0 calibration methods (seed 000) and how each one is built, calibrated and saved.

* ``uncalibrated``: the nominal model (baseline a);
* ``perfect``: the true impairments (baseline d);
* ``supervised``: labelled targets (LS residual at the true positions) (baseline b);
* ``true_gradient``: the residual loss with the real channel's gradient (baseline c);
* ``unsupervised_residual``: the residual loss, learned-model channel gradient (proposed);
* ``unsupervised_max_response``: the max-response loss on OMP's iteration maps (the maps of
  the residual, deflated by the LS re-fit), same gradient (proposed alternative, reading 1);
* ``unsupervised_max_response_adm``: the max-response loss on the observation's own
  angle–delay map at the detected peaks (no deflation), same gradient (reading 2).  The seed's
  "maximise the maximum response of the angle-delay map of the targets" admits both;
  :mod:`isackit.learning.calibration` explains why reading 1 nearly coincides with the
  residual loss.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ...learning.checkpoint import load_checkpoint, save_checkpoint
from ...seeding import derive_seed, make_generator
from .config import CalibrationConfig, updated
from .station import Station, learnable_array
from .training import TrainingLog, train_calibration
from .transceiver import Transceiver, calibrate_threshold

__all__ = ["METHODS", "PROPOSED", "build_transceiver", "calibrate_method", "save_calibration", "load_calibration"]

#: method name → overrides of the training config (None: not trained).
METHODS: dict[str, dict[str, str] | None] = {
    "uncalibrated": None,
    "perfect": None,
    "supervised": {"sensing_loss": "supervised", "gradient": "model"},
    "true_gradient": {"sensing_loss": "residual", "gradient": "true"},
    "unsupervised_residual": {"sensing_loss": "residual", "gradient": "model"},
    "unsupervised_max_response": {"sensing_loss": "max_response", "gradient": "model"},
    "unsupervised_max_response_adm": {"sensing_loss": "max_response_adm", "gradient": "model"},
}
#: the proposed method.
PROPOSED = "unsupervised_residual"


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown calibration method {method!r}; expected one of {', '.join(METHODS)}")


def build_transceiver(method: str, config: CalibrationConfig, station: Station | None = None) -> Transceiver:
    """The transceiver a method starts from: nominal learnable arrays, or the truth for ``perfect``."""
    _check_method(method)
    if method == "perfect":
        if station is None:
            raise ValueError("the perfect-knowledge baseline needs the station")
        tx, rx = station.true_models()
    else:
        tx = learnable_array(config.scenario.num_tx, config.scenario, name="tx")
        rx = learnable_array(config.scenario.num_rx, config.scenario, name="rx")
    return Transceiver(config, tx, rx)


def calibrate_method(method: str, config: CalibrationConfig, station: Station, seed: int,
                     monitor: Callable[[Transceiver], dict[str, float]] | None = None,
                     log_every: int = 10) -> tuple[Transceiver, TrainingLog | None]:
    """Build, threshold and (if the method learns) train a transceiver; returns (transceiver, log).

    Random streams, all named from ``seed``: the threshold's noise-only frames and their
    scenes ``(seed, "threshold", ...)`` (the same before and after training), and the
    training's ``(seed, "train")`` root (:func:`~.training.train_calibration`).  ``monitor``
    and ``log_every`` go to :func:`~.training.train_calibration` (``monitor`` must not read the
    station: it is the caller's, holding copies of the truth taken outside the training).
    """
    _check_method(method)
    overrides = METHODS[method]
    if overrides is not None:
        training = updated(config.training, **overrides, seed=derive_seed(seed, "train"))
        config = updated(config, training=training)
    tr = build_transceiver(method, config, station).to(station.device)
    frames = config.receiver.threshold_frames

    def threshold():
        scenes = station.draw_scenes(frames, make_generator(seed, "threshold", "scenes"))
        calibrate_threshold(tr, scenes, make_generator(seed, "threshold", "noise"))

    threshold()
    log = None
    if overrides is not None:
        log = train_calibration(tr, station, log_every=log_every, monitor=monitor)
        threshold()
    return tr, log


def save_calibration(transceiver: Transceiver, directory: str | Path, extra: dict | None = None) -> Path:
    """Save a calibrated transceiver (learned Tx/Rx parameters, threshold) + its config
    (:func:`isackit.learning.checkpoint.save_checkpoint`: safetensors + JSON, no pickle)."""
    meta = {"calibration_config": transceiver.config.model_dump(mode="json"), **(extra or {})}
    return save_checkpoint(directory, transceiver.state_dict(), meta)


def load_calibration(directory: str | Path) -> Transceiver:
    """Rebuild a transceiver saved by :func:`save_calibration` (no code is unpickled)."""
    state, meta = load_checkpoint(directory)
    config = CalibrationConfig.model_validate(meta["calibration_config"])
    tr = build_transceiver("uncalibrated", config)
    tr.load_state_dict(state)
    return tr
