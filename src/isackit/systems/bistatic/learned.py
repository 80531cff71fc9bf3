r"""IFFT-C2VNN for S1: training data from the S1 scenario, training through the model store,
and the estimators built on a trained network (angles/delays and the Doppler variant).

Training data (seed §III-B3, ``shared/design/s1-bistatic.md`` §2.4): scenes of the S1 prior
(gains drawn with ``train_amplitude``; the seed uses Swerling-I), LS CSI at an SNR drawn per
scene (``snr_db = [lo, hi]``: U[lo, hi] dB, the mixed-SNR model) or fixed (``[snr]``: a
specialist), IDFT windows around the K strongest PDP peaks, each labelled with the nearest
true path (θ, φ, δ = τ/T_res - m̂); windows farther than w + 1/2 bins from every path are
dropped.  Every minibatch is fresh (⌈batch/K⌉ new scenes), the spec's "fresh synthetic data";
an epoch is ``num_scenes`` scenes, so training runs ``epochs``·⌈num_scenes·K/batch⌉ steps.  (A
fixed set of ``num_scenes`` scenes visited for ``epochs`` epochs, the seed's literal N_sim,
overfits the network at CPU sizes: with 1 000 scenes the validation loss stalled at 2.5× the
training loss.)  The validation set is fixed (``validation_scenes``).  Every model of one
experiment draws from the same generators (same geometry and noise streams); only the SNR
distribution and the window differ.

Models are stored with :class:`~isackit.learning.store.ModelStore` under a key of the scenario,
architecture, data, training settings, seed and code, so later units and runs load them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from pydantic import Field, field_validator

from ..._config import StrictModel
from ...estimators.parametric import doppler_from_phases, path_gains
from ...learning import c2vnn as c2vnn_module
from ...learning.c2vnn import C2VNN, C2VNNConfig, c2vnn_estimate, idft_delay_profile, match_windows
from ...learning.c2vnn import normalise_windows, peak_windows, train_c2vnn
from ...learning.store import ModelRecord, ModelStore
from ...learning.training import TrainingConfig
from ...seeding import derive_seed, make_generator
from . import scenario as scenario_module
from .config import ScenarioConfig
from .scenario import arrays, channel, observe, sample_paths

__all__ = ["C2VNNTraining", "c2vnn_doppler", "c2vnn_paths", "training_windows", "trained_c2vnn", "window_sampler"]


class C2VNNTraining(StrictModel):
    """What one IFFT-C2VNN model is trained on (data) and how (optimiser)."""

    snr_db: list[float] = [-20.0, 30.0]     # [lo, hi] → U[lo, hi] per scene; [s] → fixed
    num_scenes: int = Field(10_000, ge=1)
    validation_scenes: int = Field(1_000, ge=1)
    train_amplitude: Literal["unit", "swerling1"] = "swerling1"
    epochs: int = Field(300, ge=1)
    batch: int = Field(128, ge=1)
    lr: float = Field(3e-4, gt=0)
    log_every: int = Field(200, ge=1)

    @field_validator("snr_db")
    @classmethod
    def _snr(cls, v: list[float]) -> list[float]:
        if len(v) not in (1, 2) or (len(v) == 2 and v[1] < v[0]):
            raise ValueError(f"snr_db must be [snr] (fixed) or [lo, hi] with lo ≤ hi, got {v}")
        return v


def _windows(sc: ScenarioConfig, arch: C2VNNConfig, B: int, snr_db: list[float], g_geo, g_noise, g_snr):
    """Matched, normalised windows of B fresh scenes: ``(P, W, M_r M_t)`` complex64, ``(P, 3)``."""
    N, K, w = sc.num_subcarriers, sc.num_paths, arch.window // 2
    p = sample_paths(sc, B, g_geo)
    u = torch.rand(B, generator=g_snr, dtype=torch.float64)
    snr = snr_db[0] + (snr_db[-1] - snr_db[0]) * u
    Hhat, _, _ = observe(sc, channel(sc, p), snr, g_noise)
    T, peaks = peak_windows(idft_delay_profile(Hhat.to(torch.complex64)), K, arch.window)
    idx, delta, ok = match_windows(peaks, (p.delay / sc.delay_resolution).float(), N, w + 0.5)
    lab = torch.stack([p.aoa.float().gather(-1, idx), p.aod.float().gather(-1, idx), delta], -1)
    return normalise_windows(T)[ok], lab[ok]


def training_windows(scenario: ScenarioConfig, arch: C2VNNConfig, num_scenes: int, snr_db: list[float],
                     seed: int, amplitude: str = "swerling1", chunk: int = 500
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    r"""A fixed set: normalised windows ``(P, W, M_r M_t)`` complex64 and labels ``(P, 3)`` float32
    (θ, φ in rad, δ in bins) of ``num_scenes`` scenes; generators named by ``seed``."""
    sc = scenario.model_copy(update={"amplitude": amplitude})
    gens = [make_generator(seed, n) for n in ("geometry", "noise", "snr")]
    parts = [_windows(sc, arch, min(chunk, num_scenes - s), snr_db, *gens) for s in range(0, num_scenes, chunk)]
    return torch.cat([a for a, _ in parts]), torch.cat([b for _, b in parts])


def window_sampler(scenario: ScenarioConfig, arch: C2VNNConfig, snr_db: list[float], amplitude: str = "swerling1"):
    """``sample(batch, generator) -> (windows, labels)`` of ⌈batch/K⌉ fresh scenes (all from
    ``generator``)."""
    sc = scenario.model_copy(update={"amplitude": amplitude})

    def sample(batch: int, generator: torch.Generator):
        B = -(-batch // sc.num_paths)
        return _windows(sc, arch, B, snr_db, generator, generator, generator)

    return sample


def trained_c2vnn(store: ModelStore, scenario: ScenarioConfig, arch: C2VNNConfig, training: C2VNNTraining,
                  seed: int, *, progress: Callable[[int, int, str], None] | None = None, label: str = ""
                  ) -> tuple[C2VNN, ModelRecord]:
    """The IFFT-C2VNN of these settings from ``store``, trained (and stored) if missing."""
    width = scenario.num_rx * scenario.num_tx

    def build() -> C2VNN:
        return C2VNN(arch, width, generator=make_generator(seed, "c2vnn-init"))

    def train(model: C2VNN, checkpoint_dir):
        Tv, yv = training_windows(scenario, arch, training.validation_scenes, training.snr_db,
                                  derive_seed(seed, "c2vnn-validation"), training.train_amplitude)
        per_epoch = -(-training.num_scenes * scenario.num_paths // training.batch)
        steps = training.epochs * per_epoch
        cfg = TrainingConfig(steps=steps, batch_size=training.batch, lr=training.lr,
                             log_every=min(training.log_every, steps))
        sample = window_sampler(scenario, arch, training.snr_db, training.train_amplitude)
        return train_c2vnn(model, sample, cfg, derive_seed(seed, "c2vnn-data"), validation=(Tv, yv),
                           progress=progress, what=f"IFFT-C2VNN {label}".strip(), checkpoint_dir=checkpoint_dir)

    config = {"scenario": scenario, "architecture": arch, "training": training}
    return store.get_or_train("s1-ifft-c2vnn", build, train, config=config, seed=seed,
                              code=(c2vnn_module, scenario_module), metadata={"label": label})


def c2vnn_paths(model: C2VNN, Hhat: torch.Tensor, scenario: ScenarioConfig) -> torch.Tensor:
    """(θ̂, φ̂, τ̂) ``(..., K, 3)`` of IFFT-C2VNN on LS CSI ``(..., N, M_r, M_t)``."""
    est, _ = c2vnn_estimate(model, Hhat, scenario.num_paths, scenario.delay_resolution)
    return est


def c2vnn_doppler(model: C2VNN, Hhat: torch.Tensor, scenario: ScenarioConfig) -> torch.Tensor:
    r"""The seed's lightweight Doppler variant of IFFT-C2VNN (§III-D): the 2-D network on every
    sub-frame, the geometry averaged over sub-frames (paths associated by delay order), LS gains
    per sub-frame with that geometry (eq. 21), then the phase regression (43).

    Args:
        Hhat: ``(B, S, N, M_r, M_t)``.

    Returns:
        ``(B, K, 4)`` (θ̂, φ̂, τ̂, ν̂).
    """
    est = c2vnn_paths(model, Hhat, scenario)  # (B, S, K, 3), windows sorted by peak index
    geo = est.mean(-3)
    rx, tx = arrays(scenario)
    alpha = path_gains(Hhat, geo.to(Hhat.real.dtype), rx, tx, scenario.subcarrier_spacing_hz)  # (B, S, K)
    nu = doppler_from_phases(torch.angle(alpha).movedim(-2, -1), scenario.subframe_period)
    return torch.cat([geo.to(nu.dtype), nu[..., None]], -1)
