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

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from ... import __version__
from ...learning.checkpoint import load_checkpoint, save_checkpoint
from ...learning.store import ModelRecord, ModelStore
from ...learning.training import ProgressFn, TrainingLog
from ...seeding import derive_seed, make_generator
from .config import CalibrationConfig, updated
from .station import Station, learnable_array
from .training import train_calibration
from .transceiver import Transceiver, calibrate_threshold

__all__ = ["METHODS", "PROPOSED", "Calibrated", "method_config", "build_transceiver", "calibrate_method",
           "save_calibration", "load_calibration", "load_stored_calibration"]

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


class Calibrated(NamedTuple):
    """What :func:`calibrate_method` returns: the transceiver (threshold set), its learning
    curve (None for a method that does not learn) and, when a model store was used, the
    stored model's artifact record."""

    transceiver: Transceiver
    log: TrainingLog | None
    record: ModelRecord | None = None


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown calibration method {method!r}; expected one of {', '.join(METHODS)}")


def method_config(method: str, config: CalibrationConfig, seed: int) -> CalibrationConfig:
    """The system config a method runs with: its training overrides and the named training
    seed ``(seed, "train")`` (unchanged for a method that does not learn)."""
    _check_method(method)
    overrides = METHODS[method]
    if overrides is None:
        return config
    return updated(config, training=updated(config.training, **overrides, seed=derive_seed(seed, "train")))


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


def calibrate_method(method: str, config: CalibrationConfig, station: Station, seed: int, *,
                     monitor: Callable[[Transceiver], dict[str, float]] | None = None,
                     progress: ProgressFn | None = None, store: ModelStore | None = None,
                     identity: Mapping[str, Any] | None = None) -> Calibrated:
    """Build, threshold and (if the method learns) train a transceiver.

    Random streams, all named from ``seed``: the threshold's noise-only frames and their
    scenes ``(seed, "threshold", ...)`` (the same before and after training), and the
    training's root ``(seed, "train")`` (:func:`method_config`, :func:`~.training.train_calibration`).

    Args:
        monitor, progress: go to :func:`~.training.train_calibration` (``monitor`` must not
            read the station: it is the caller's, holding copies of the truth taken outside
            the training).
        store: if given, a learning method's calibration is taken from this
            :class:`~isackit.learning.store.ModelStore` when it holds one of the same identity
            (the method, its system config, ``seed``, ``identity``, the library version and the
            code of the S0 modules), else trained and stored; its training log comes from the
            store.  ``identity`` must name what else determines it — the station's device
            (its true impairments) above all.
    """
    config = method_config(method, config, seed)
    frames = config.receiver.threshold_frames

    def threshold(tr: Transceiver) -> None:
        scenes = station.draw_scenes(frames, make_generator(seed, "threshold", "scenes"))
        calibrate_threshold(tr, scenes, make_generator(seed, "threshold", "noise"))

    def build() -> Transceiver:
        return build_transceiver(method, config, station).to(station.device)

    def train(tr: Transceiver, checkpoint_dir: Path | None = None) -> TrainingLog:
        threshold(tr)
        log = train_calibration(tr, station, progress=progress, what=method, monitor=monitor,
                                checkpoint_dir=checkpoint_dir)
        threshold(tr)
        return log

    if METHODS[method] is None:
        tr = build()
        threshold(tr)
        return Calibrated(tr, None)
    if store is None:
        tr = build()
        return Calibrated(tr, train(tr))
    from . import config as config_module, methods as methods_module, station as station_module, training, transceiver
    from ...estimators import omp_detector
    from ...learning import calibration as calibration_losses
    from ...signals import precoders

    tr, record = store.get_or_train(
        f"calibration-{method}", build, train, config={"system": config, "extra": dict(identity or {})}, seed=seed,
        code=(config_module, station_module, training, transceiver, omp_detector, calibration_losses, precoders,
              methods_module))
    log = TrainingLog.from_dict(store.metadata(record)["log"])
    return Calibrated(tr, log, record)


def save_calibration(transceiver: Transceiver, directory: str | Path, extra: dict | None = None) -> Path:
    """Save a calibrated transceiver (learned Tx/Rx parameters, threshold) with its config and
    the library version (:func:`isackit.learning.checkpoint.save_checkpoint`: safetensors +
    JSON, nothing pickled)."""
    meta = {"calibration_config": transceiver.config.model_dump(mode="json"), "isackit_version": __version__,
            **(extra or {})}
    return save_checkpoint(directory, transceiver.state_dict(), meta)


def load_calibration(directory: str | Path) -> Transceiver:
    """Rebuild a transceiver saved by :func:`save_calibration` (no code is unpickled)."""
    state, meta = load_checkpoint(directory)
    config = CalibrationConfig.model_validate(meta["calibration_config"])
    tr = build_transceiver("uncalibrated", config)
    tr.load_state_dict(state)
    return tr


def load_stored_calibration(record: ModelRecord) -> Transceiver:
    """Rebuild a transceiver from a model-store record of :func:`calibrate_method` (the
    ``models.json`` entry of a run): its config is the stored identity's."""
    folder = Path(record["path"]).parent
    state, meta = load_checkpoint(folder)
    config = CalibrationConfig.model_validate(meta["identity"]["config"]["system"])
    tr = build_transceiver("uncalibrated", config)
    tr.load_state_dict(state)
    return tr
