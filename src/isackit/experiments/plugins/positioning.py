r"""The ``positioning`` experiment (system S4, seed 004 Figs. 4-10).

Panels (a sweep point's ``panel`` column; its ``x`` column is the panel's swept value):

* ``pattern`` — aggregate beam gain ‖Fᵀã(θ)‖² (linear) over angle for the benchmark and the learned
  AoD precoders of both stations, at the evaluation sectors (Fig. 4a / 5 / 8), per impairment;
* ``snr`` — AoD RMSE (degrees, per station, θ ~ U(evaluation sector)) and position RMSE (m, at
  the evaluation position, sectors θ_i ± 15°) vs SNR for the benchmark and the learned system,
  with their CRB / PEB and the benchmark's MCRB (Figs. 4b-c, 6, 9), per impairment;
* ``sigma`` — position RMSE at ``evaluation.sweep_snr_db`` vs the spacing-error std σ_λ (Fig. 7);
* ``zeta`` — position RMSE at ``evaluation.sweep_snr_db`` vs the coupling decay ζ (Fig. 10).

Methods: ``benchmark`` (CRB-optimal codebook :func:`isackit.bounds.aod.crb_optimal_precoder` +
ML AoD + ML position, :mod:`isackit.estimators.positioning`), ``learned`` (the autoencoders of
:mod:`isackit.learning.positioning`), and bound rows ``CRB (benchmark)``, ``CRB (learned)``,
``PEB (benchmark)``, ``PEB (learned)``, ``MCRB (benchmark)`` (all with the TRUE impaired array;
the MCRB is the benchmark's misspecified bound sqrt(MCRB + bias²)).

The config nests three concerns: ``scenario`` (:class:`~isackit.systems.positioning.PositioningConfig`:
geometry, arrays, priors, impairment defaults), ``training`` (:class:`PositioningTraining`) and
``evaluation`` (:class:`PositioningEvaluation`: panels, sweeps, benchmark settings).

Learned models are trained once and kept in the model store
(:class:`isackit.learning.store.ModelStore` under ``<model cache>/<training.model_dir>``, the
cache root from :func:`isackit.learning.store.default_model_root`), keyed by everything that
determines them: the model kind, the scenario (impairment included), the training SNR, the
network sizes, the :class:`~isackit.learning.training.TrainingConfig`, the warm-start parent,
the training-data seed (``derive_seed(seed, "positioning", <those settings>)``), the isackit
version and the source of the code that builds and trains them.  A unit reports the model
files it used (name, path, SHA-256, key) as artifacts of its :class:`UnitResult`.  An evaluation
SNR uses the model trained at the nearest ``training.snr_db`` (every evaluation SNR when that
list is empty, as in the seed).  With ``training.decoder = "hybrid"`` (not in the seed) a
decoder-only fine-tune of a correction network around the windowed ML estimate follows, with
the precoders frozen (:func:`isackit.learning.positioning.hybrid_from`); the ``learned`` rows
then use it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import torch
from pydantic import Field, field_validator, model_validator

from ..._config import StrictModel
from ...bounds.aod import aod_crbs, crb_optimal_precoder, mcrb_aod, mcrb_position, position_peb
from ...estimators import positioning as _estimators
from ...estimators.positioning import ml_aod, ml_position
from ...impairments import coupling as _coupling
from ...impairments import displacement as _displacement
from ...learning import networks as _networks
from ...learning import positioning as _learning
from ...learning.positioning import (
    AoDAutoencoder,
    PositionAutoencoder,
    draw_gains,
    hybrid_from,
    observe,
    station_responses,
    train_autoencoder,
)
from ...learning.store import ModelRecord, ModelStore, default_model_root
from ...learning.training import TrainingConfig
from ...seeding import derive_seed, make_generator
from ...signals import channels as _channels
from ...signals import targets as _targets
from ...systems.positioning import scenario as _scenario
from ...systems.positioning.scenario import (
    PositioningConfig,
    build_arrays,
    local_aods,
    position_sectors,
    sample_aod_batch,
    sample_position_batch,
)
from ..config import ExperimentConfig, RelativePath, inside
from ..registry import Experiment, register_experiment
from ..units import Row, UnitResult, WorkUnit, bound_row, mean_row, rmse_row

__all__ = ["PositioningTraining", "PositioningEvaluation", "PositioningExperimentConfig", "PositioningExperiment",
           "trained_model", "seed_model", "scenario_of", "positioning_summary"]

Panel = Literal["pattern", "snr", "sigma", "zeta"]
Impairment = Literal["none", "spacing", "coupling"]

#: The code whose source determines a trained model (part of every model key).
MODEL_CODE = (_learning, _networks, _scenario, _channels, _targets, _estimators, _coupling, _displacement)


class PositioningTraining(StrictModel):
    """How the learned models are trained (defaults = seed 004 IV-B: H = 256, batches of 10 000,
    Adam 1e-3 → 1e-8 with a cosine schedule, one model per SNR)."""

    hidden: int = Field(256, ge=1)
    depth: int = Field(6, ge=1)
    derotate: bool = True
    steps: int = Field(3000, ge=1)
    batch: int = Field(10_000, ge=1)
    lr: float = Field(1e-3, gt=0)
    min_lr: float = Field(1e-8, gt=0)
    snr_db: list[float] = []                 # training SNRs; [] = one model per evaluation SNR
    sectors: Literal["random", "eval"] = "random"
    repeats: int = Field(1, ge=1)            # samples per drawn sector / position per batch
    warm_start: bool = True                  # start each SNR's model from the next lower training SNR's
    warm_steps: int = Field(1000, ge=1)
    log_every: int = Field(50, ge=1)
    checkpoint_every: int | None = Field(500, ge=1)
    model_dir: RelativePath = "positioning"  # a folder inside the model cache
    # hybrid decoder (not in the seed; see isackit.learning.positioning)
    decoder: Literal["seed", "hybrid"] = "seed"
    finetune_steps: int = Field(400, ge=1)
    finetune_warm_steps: int | None = Field(None, ge=1)
    finetune_batch: int | None = Field(None, ge=1)
    finetune_lr: float = Field(1e-3, gt=0)
    correction_scale: float = Field(0.1, gt=0)
    hybrid_grid: int = Field(64, ge=8)

    @model_validator(mode="after")
    def _lr_order(self):
        if self.min_lr > min(self.lr, self.finetune_lr):
            raise ValueError(f"min_lr ({self.min_lr}) must not exceed lr ({self.lr}) or finetune_lr "
                             f"({self.finetune_lr})")
        return self

    def schedule(self, steps: int, batch: int, lr: float) -> TrainingConfig:
        """Adam with a cosine decay lr → ``min_lr`` over ``steps`` steps."""
        return TrainingConfig(steps=steps, batch_size=batch, lr=lr, scheduler="cosine",
                              final_lr_fraction=self.min_lr / lr, log_every=self.log_every,
                              checkpoint_every=self.checkpoint_every)


class PositioningEvaluation(StrictModel):
    """What is evaluated: panels, sweeps and the benchmark's settings."""

    panels: list[Panel] = Field(["pattern", "snr", "sigma", "zeta"], min_length=1)
    impairments: list[Impairment] = Field(["none", "spacing", "coupling"], min_length=1)
    snr_db: list[float] = Field([-5.0, 0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0], min_length=1)
    sweep_snr_db: float = 20.0
    spacing_stds: list[float] = Field([0.0025, 0.005, 0.01, 0.015, 0.02], min_length=1)   # σ_λ / λ
    zetas: list[float] = Field([-2.0, -1.0, -0.5, -0.25, -0.1], min_length=1)
    pattern_snr_db: float = 10.0
    pattern_step_deg: float = Field(1.0, gt=0, le=180)
    power_angles: int = Field(41, ge=2)
    ml_grid: int = Field(256, ge=8)
    bound_angles: int = Field(101, ge=2)

    @field_validator("spacing_stds")
    @classmethod
    def _nonnegative(cls, v: list[float]) -> list[float]:
        if any(s < 0 for s in v):
            raise ValueError(f"spacing_stds must be >= 0, got {v}")
        return v


class PositioningExperimentConfig(ExperimentConfig):
    """Spec of the ``positioning`` experiment (defaults = seed 004 / full profile)."""

    scenario: PositioningConfig = PositioningConfig()
    training: PositioningTraining = PositioningTraining()
    evaluation: PositioningEvaluation = PositioningEvaluation()


def scenario_of(config: PositioningExperimentConfig, impairment: str, spacing_std: float | None = None,
                zeta: float | None = None) -> PositioningConfig:
    """The scenario of one sweep point: ``config.scenario`` with the point's impairment."""
    sc = config.scenario
    return sc.model_copy(update=dict(
        impairment=impairment,
        spacing_std=sc.spacing_std if spacing_std is None else float(spacing_std),
        coupling_zeta=(sc.coupling_zeta if zeta is None else float(zeta)) if impairment == "coupling" else None))


# ------------------------------------------------------------------------------------------
# trained models
# ------------------------------------------------------------------------------------------
_STORES: dict[Path, ModelStore] = {}


def _store(config: PositioningExperimentConfig) -> ModelStore:
    root = inside(default_model_root(), config.training.model_dir)
    if root not in _STORES:
        _STORES[root] = ModelStore(root)
    return _STORES[root]


def _training_snr(config: PositioningExperimentConfig, snr_db: float) -> float:
    snrs = config.training.snr_db
    if not snrs:
        return float(snr_db)
    return float(min(snrs, key=lambda s: (abs(s - snr_db), -s)))


def _lower_training_snr(config: PositioningExperimentConfig, snr_db: float) -> float | None:
    lower = [s for s in config.training.snr_db if s < snr_db]
    return float(max(lower)) if (config.training.warm_start and lower) else None


def _sampler(tr: PositioningTraining, kind: str, sc: PositioningConfig):
    """Training draw ``(batch, generator) -> (sectors, theta, target)`` of the ``kind`` autoencoder."""
    if kind == "aod":
        def sample(b, g):
            s, th = sample_aod_batch(sc, b, g, mode=tr.sectors, repeats=tr.repeats)
            return s, th, th
    else:
        def sample(b, g):
            p, th, s = sample_position_batch(sc, b, g, repeats=tr.repeats)
            return s, th, p
    return sample


def _get(config: PositioningExperimentConfig, name: str, settings: dict[str, Any], build, train,
         snr_db: float, progress) -> tuple[Any, ModelRecord]:
    """The model of ``settings`` from the store, or trained with its own derived seed."""
    seed = derive_seed(config.seed, "positioning", name, settings)
    what = f"train {name} model @ {snr_db:g} dB ({settings['scenario']['impairment']})"

    def _train(model, ckpt):
        return train(model, make_generator(seed, "data"), ckpt, progress, what)

    return _store(config).get_or_train(name, lambda: build(make_generator(seed, "init")), _train,
                                       config=settings, seed=seed, code=MODEL_CODE)


def seed_model(config: PositioningExperimentConfig, kind: Literal["aod", "position"], scenario: PositioningConfig,
               snr_db: float, progress=None) -> tuple[Any, list[ModelRecord]]:
    """The seed's end-to-end autoencoder (precoder + MLP decoder) for this scenario and training SNR.

    With ``training.warm_start`` and a lower training SNR, it starts from that SNR's model
    (obtained first, recursively) and trains ``warm_steps``.  Returns ``(model, [its record])``.
    """
    tr = config.training
    lower = _lower_training_snr(config, snr_db) if tr.snr_db else None
    parent, parent_rec = seed_model(config, kind, scenario, lower, progress) if lower is not None else (None, None)
    schedule = tr.schedule(tr.steps if parent is None else tr.warm_steps, tr.batch, tr.lr)
    settings = dict(kind=kind, scenario=scenario.model_dump(mode="json"), snr_db=float(snr_db), hidden=tr.hidden,
                    depth=tr.depth, derotate=tr.derotate, training=schedule.model_dump(mode="json"),
                    sectors=tr.sectors if kind == "aod" else "prior", repeats=tr.repeats,
                    parent=None if parent_rec is None else parent_rec[0]["key"])
    sc = scenario

    def build(g):
        if kind == "aod":
            model = AoDAutoencoder(sc.num_bs, sc.num_antennas, sc.num_transmissions, tr.hidden, tr.depth,
                                   tr.derotate, generator=g)
        else:
            model = PositionAutoencoder(sc.num_bs, sc.num_antennas, sc.num_transmissions, sc.prior_centre,
                                        sc.prior_side, tr.hidden, tr.depth, tr.derotate, generator=g)
        if parent is not None:
            model.load_state_dict(parent.state_dict())
        return model

    def train(model, g, ckpt, progress, what):
        return train_autoencoder(model, _sampler(tr, kind, sc), build_arrays(sc), snr_db, schedule, g,
                                 progress=progress, what=what, checkpoint_dir=ckpt)

    model, rec = _get(config, kind, settings, build, train, snr_db, progress)
    return model, [rec]


def trained_model(config: PositioningExperimentConfig, kind: Literal["aod", "position"],
                  scenario: PositioningConfig, snr_db: float, progress=None) -> tuple[Any, list[ModelRecord]]:
    """The ``learned`` model for this scenario and training SNR: the seed autoencoder, or with
    ``training.decoder = "hybrid"`` its hybrid-decoder fine-tune.

    The hybrid decoder is trained for ``finetune_steps`` (batch ``finetune_batch``, cosine
    ``finetune_lr`` → ``min_lr``) with the precoders frozen; with ``finetune_warm_steps`` (and
    ``warm_start``) the correction decoder of a higher training SNR starts from the next lower
    SNR's and trains ``finetune_warm_steps``.  Returns ``(model, [records of the files used])``.
    """
    tr = config.training
    base, base_rec = seed_model(config, kind, scenario, snr_db, progress)
    if tr.decoder == "seed":
        return base, base_rec
    lower = _lower_training_snr(config, snr_db) if (tr.snr_db and tr.finetune_warm_steps) else None
    parent, parent_rec = trained_model(config, kind, scenario, lower, progress) if lower is not None else (None, None)
    steps = tr.finetune_steps if parent is None else tr.finetune_warm_steps
    schedule = tr.schedule(steps, tr.finetune_batch or tr.batch, tr.finetune_lr)
    settings = dict(kind=kind, scenario=scenario.model_dump(mode="json"), snr_db=float(snr_db), decoder="hybrid",
                    base=base_rec[0]["key"], training=schedule.model_dump(mode="json"), scale=tr.correction_scale,
                    grid=tr.hybrid_grid, correction_from=None if parent_rec is None else parent_rec[0]["key"])
    q, psi = scenario.bs_tensor()

    def build(g):
        return hybrid_from(base, tr.correction_scale, tr.hybrid_grid, q.tolist(), psi.tolist(),
                           correction_from=parent, generator=g)

    def train(model, g, ckpt, progress, what):
        return train_autoencoder(model, _sampler(tr, kind, scenario), build_arrays(scenario), snr_db, schedule, g,
                                 train_precoder=False, progress=progress, what=what, checkpoint_dir=ckpt)

    model, rec = _get(config, f"{kind}-hybrid", settings, build, train, snr_db, progress)
    return model, [rec]


# ------------------------------------------------------------------------------------------
# evaluation
# ------------------------------------------------------------------------------------------
def _deg(x: torch.Tensor) -> torch.Tensor:
    return torch.rad2deg(x)


class _Setup:
    """Arrays, benchmark precoders and sectors of one scenario (cached per scenario; the benchmark
    designs, which see only the nominal array, are shared by scenarios that differ only in the
    impairment)."""

    cache: dict[str, _Setup] = {}
    designs: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    #: scenario fields the nominal array, and hence the benchmark design, does not depend on
    _IMPAIRMENT_FIELDS = ("impairment", "spacing_std", "coupling_zeta", "spacing_seeds")

    def __init__(self, config: PositioningExperimentConfig, scenario: PositioningConfig):
        self.scenario = scenario
        self.arrays = build_arrays(scenario)
        self.ideal = [a.ideal() for a in self.arrays]
        self.q, self.psi = scenario.bs_tensor()
        self.aod_sectors = scenario.eval_sectors()
        self.p = torch.tensor(scenario.eval_position, dtype=torch.float64)
        self.theta_p = local_aods(self.p, self.q, self.psi)
        self.pos_sectors = position_sectors(self.theta_p, torch.zeros_like(self.theta_p),
                                            math.radians(scenario.sector_halfwidth_deg))
        T = scenario.num_transmissions
        angles = config.evaluation.power_angles
        # the benchmark designs with the nominal array (identical for every station here)
        nominal = {k: v for k, v in scenario.model_dump(mode="json").items() if k not in self._IMPAIRMENT_FIELDS}
        key = json.dumps([nominal, angles], sort_keys=True)
        if key not in self.designs:
            self.designs[key] = (crb_optimal_precoder(self.ideal[0], self.aod_sectors, T, angles)[0],
                                 crb_optimal_precoder(self.ideal[0], self.pos_sectors, T, angles)[0])
        self.F_aod, self.F_pos = self.designs[key]

    @classmethod
    def get(cls, config: PositioningExperimentConfig, scenario: PositioningConfig) -> _Setup:
        key = json.dumps([scenario.model_dump(mode="json"), config.evaluation.power_angles], sort_keys=True)
        if key not in cls.cache:
            cls.cache[key] = cls(config, scenario)
        return cls.cache[key]


def _aod_rows(config, setup: _Setup, snr_db: float, trials: int, g: torch.Generator, progress, used) -> list[Row]:
    ev, sc, rows = config.evaluation, setup.scenario, []
    I = sc.num_bs
    _, theta = sample_aod_batch(sc, trials, g, mode="eval", dtype=torch.float64)
    secs = setup.aod_sectors.expand(trials, I, 2)
    a_true = station_responses(setup.arrays, theta)                                 # (B, I, M)
    # benchmark
    alpha = draw_gains(snr_db, (trials, I), g, torch.complex128)
    y = observe(setup.F_aod, a_true, alpha, g)
    th_b = torch.stack([ml_aod(y[:, i], setup.F_aod[i], setup.ideal[i], setup.aod_sectors[i], ev.ml_grid)
                        for i in range(I)], dim=-1)
    # learned
    model, recs = trained_model(config, "aod", sc, _training_snr(config, snr_db), progress)
    used += recs
    with torch.no_grad():
        th_l = model(secs.float(), theta.float(), setup.arrays, snr_db, g).double()
        F_l = model.precoders(setup.aod_sectors.float()).to(torch.complex128)
    # bounds: averaged over θ ~ U(sector) on a grid
    frac = torch.linspace(0, 1, ev.bound_angles, dtype=torch.float64)
    grid = (setup.aod_sectors[:, :1] + (setup.aod_sectors[:, 1:] - setup.aod_sectors[:, :1]) * frac).T   # (G, I)
    crb_b = aod_crbs(setup.F_aod.expand(len(frac), *setup.F_aod.shape), setup.arrays, grid, snr_db).mean(0)
    crb_l = aod_crbs(F_l.expand(len(frac), *F_l.shape), setup.arrays, grid, snr_db).mean(0)
    for i in range(I):
        metric = f"aod_rmse_deg_bs{i + 1}"
        rows.append(rmse_row("benchmark", metric, _deg(th_b[:, i] - theta[:, i]), trials))
        rows.append(rmse_row("learned", metric, _deg(th_l[:, i] - theta[:, i]), trials))
        rows.append(bound_row("CRB (benchmark)", metric, float(_deg(crb_b[i].sqrt()))))
        rows.append(bound_row("CRB (learned)", metric, float(_deg(crb_l[i].sqrt()))))
        if sc.impairment != "none":
            mse, _, _ = mcrb_aod(setup.F_aod[i], setup.arrays[i], setup.ideal[i], grid[:, i], snr_db)
            rows.append(bound_row("MCRB (benchmark)", metric, float(_deg(mse.mean().sqrt()))))
    return rows


def _position_rows(config, setup: _Setup, snr_db: float, trials: int, g: torch.Generator, progress,
                   used) -> list[Row]:
    ev, sc, rows = config.evaluation, setup.scenario, []
    I = sc.num_bs
    theta = setup.theta_p.expand(trials, I)
    a_true = station_responses(setup.arrays, theta)
    alpha = draw_gains(snr_db, (trials, I), g, torch.complex128)
    y = observe(setup.F_pos, a_true, alpha, g)
    th_b = torch.stack([ml_aod(y[:, i], setup.F_pos[i], setup.ideal[i], setup.pos_sectors[i], ev.ml_grid)
                        for i in range(I)], dim=-1)
    var_assumed = aod_crbs(setup.F_pos, setup.ideal, setup.theta_p, snr_db)
    half = sc.prior_side / 2
    c = torch.tensor(sc.prior_centre, dtype=torch.float64)
    box = torch.stack([c - half, c + half])                      # seed eq. 12: p ∈ P (the prior square)
    p_b = ml_position(th_b, var_assumed.expand(trials, I), setup.q, setup.psi, box=box)
    model, recs = trained_model(config, "position", sc, _training_snr(config, snr_db), progress)
    used += recs
    with torch.no_grad():
        secs = setup.pos_sectors.expand(trials, I, 2).float()
        p_l = model(secs, theta.float(), setup.arrays, snr_db, g).double()
        F_l = model.precoders(setup.pos_sectors.float()).to(torch.complex128)
    metric = "position_rmse_m"
    rows.append(rmse_row("benchmark", metric, (p_b - setup.p).norm(dim=-1), trials))
    rows.append(rmse_row("learned", metric, (p_l - setup.p).norm(dim=-1), trials))
    rows.append(bound_row("PEB (benchmark)", metric,
                          float(position_peb(setup.F_pos, setup.arrays, setup.p, setup.q, setup.psi, snr_db))))
    rows.append(bound_row("PEB (learned)", metric,
                          float(position_peb(F_l, setup.arrays, setup.p, setup.q, setup.psi, snr_db))))
    if sc.impairment != "none":
        rows.append(bound_row("MCRB (benchmark)", metric,
                              float(mcrb_position(setup.F_pos, setup.arrays, setup.ideal, setup.p, setup.q,
                                                  setup.psi, snr_db))))
    return rows


def _pattern_rows(config, setup: _Setup, angle_deg: float, progress, used) -> list[Row]:
    sc = setup.scenario
    th = torch.tensor([math.radians(angle_deg)], dtype=torch.float64)
    # the precoders only: a hybrid decoder shares the seed model's precoders
    model, recs = seed_model(config, "aod", sc, _training_snr(config, config.evaluation.pattern_snr_db), progress)
    used += recs
    with torch.no_grad():
        F_l = model.precoders(setup.aod_sectors.float()).to(torch.complex128)
    rows = []
    for i, arr in enumerate(setup.arrays):
        a = arr.steering(th)[..., 0]
        for name, F in (("benchmark", setup.F_aod[i]), ("learned", F_l[i])):
            gain = ((F.mT @ a).abs() ** 2).sum()
            rows.append(mean_row(name, f"beam_gain_bs{i + 1}", gain.reshape(1), 1))
    return rows


# ------------------------------------------------------------------------------------------
# headline table
# ------------------------------------------------------------------------------------------
#: (metric, bound, RMSE column, bound column)
_METRICS = (("position_rmse_m", "PEB", "pos RMSE (m)", "PEB (m)"),
            ("aod_rmse_deg_bs1", "CRB", "AoD1 RMSE (°)", "CRB1 (°)"),
            ("aod_rmse_deg_bs2", "CRB", "AoD2 RMSE (°)", "CRB2 (°)"))


def _sig(v: float) -> float:
    return float(f"{v:.3g}") if math.isfinite(v) else v


def positioning_summary(df: pd.DataFrame, snr_db: float | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Compact table of the ``snr`` panel at one SNR and the headline ratios.

    One row per (impairment, method) for ``benchmark`` and ``learned``; columns: the RMSE of
    the position (m) and of each station's AoD (°) and, beside each, the bound of the method's
    own precoder (PEB / CRB, TRUE array); for the benchmark under impairments also its position
    MCRB.  Values to 3 significant digits.  ``snr_db``: the SNR shown (default: 20 dB if
    evaluated, else the highest).  Headlines: position RMSE / own PEB per method and
    impairment, and the benchmark's RMSE over the learned one.
    """
    snr = df[df["panel"] == "snr"] if "panel" in df.columns else df.iloc[:0]
    if snr.empty:
        return pd.DataFrame(), []
    xs = sorted(set(snr["x"]))
    x = float(snr_db) if snr_db is not None and snr_db in xs else (20.0 if 20.0 in xs else xs[-1])
    at = snr[snr["x"] == x]
    val = {(r.impairment, r.method, r.metric): float(r.value) for r in at.itertuples()}
    rows, lines = [], []
    impairments = [i for i in ("none", "spacing", "coupling") if i in set(at["impairment"])]
    for imp in impairments:
        for method in ("benchmark", "learned"):
            row: dict[str, Any] = {"impairment": imp, "method": method}
            for metric, bound, col, bound_col in _METRICS:
                if (imp, method, metric) not in val:
                    continue
                row[col] = _sig(val[(imp, method, metric)])
                row[bound_col] = _sig(val.get((imp, f"{bound} ({method})", metric), float("nan")))
                if metric == "position_rmse_m" and any(i != "none" for i in impairments):
                    mcrb = val.get((imp, "MCRB (benchmark)", metric), float("nan")) if method == "benchmark" \
                        else float("nan")
                    row["MCRB (m)"] = _sig(mcrb)
            rows.append(row)
        key = "position_rmse_m"
        parts = []
        for method in ("benchmark", "learned"):
            v, b = val.get((imp, method, key)), val.get((imp, f"PEB ({method})", key))
            if v is not None and b:
                parts.append(f"{method} RMSE/PEB = {v / b:.2f}")
        vb, vl = val.get((imp, "benchmark", key)), val.get((imp, "learned", key))
        if vb is not None and vl:
            parts.append(f"benchmark/learned RMSE = {vb / vl:.2f}")
        if parts:
            lines.append(f"position at {x:g} dB, {imp}: " + ", ".join(parts))
    return pd.DataFrame(rows), lines


@register_experiment("positioning", config_model=PositioningExperimentConfig,
                     description="S4: learned precoders + AoD/position estimators vs the CRB-optimal design (seed 004)")
class PositioningExperiment(Experiment):
    """Seed 004 Figs. 4-10: benchmark vs end-to-end learning, with and without impairments."""

    x_axis = "x"
    #: the seed-style figures draw every metric of the table (beam gains, AoD and position RMSE
    #: with their bounds, both sweeps); the generic per-metric grids would only repeat them
    generic_figures = False
    labels = {"x": "swept value: SNR (dB) | σ_λ/λ | ζ | angle (°)", "position_rmse_m": "position RMSE (m)",
              "aod_rmse_deg_bs1": "AoD RMSE, BS 1 (°)", "aod_rmse_deg_bs2": "AoD RMSE, BS 2 (°)",
              "beam_gain_bs1": "beam gain ‖Fᵀã(θ)‖², BS 1", "beam_gain_bs2": "beam gain ‖Fᵀã(θ)‖², BS 2"}

    def figures(self, df, meta: dict, out_dir: Path, run_dir: Path | None) -> list[Path]:
        """Seed-style figures (precoder responses, RMSE vs SNR per impairment, vs σ_λ and ζ):
        see :mod:`.positioning_figures`."""
        from .positioning_figures import positioning_figures

        return positioning_figures(df, meta, out_dir, run_dir)

    def summary(self, df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
        """The headline table (:func:`positioning_summary`)."""
        return positioning_summary(df)

    def unit_memory(self, config: PositioningExperimentConfig) -> tuple[float, str]:
        """Peak bytes of one unit: the larger of the evaluation and a training step.

        Evaluation (complex128, B = chunk trials, N_t antennas, T transmissions, G = ``ml_grid``;
        one station at a time): the (B, N_t, G) steering vectors of the ML grid search and ~3
        (B, T, G) products.  Training (float32, batch b, hidden H): ~6 copies of the
        (b, I, N_t, T) complex64 precoders and observations, plus ~12 activations of (b, 2H)
        per network (saved for the backward pass)."""
        sc, ev, tr = config.scenario, config.evaluation, config.training
        I, M, T = sc.num_bs, sc.num_antennas, sc.num_transmissions
        evaluation = config.chunk * (M + 3 * T) * ev.ml_grid * 16
        batch = max(tr.batch, tr.finetune_batch or 0)
        training = batch * I * (6 * M * T * 8 + (tr.depth + 6) * 2 * tr.hidden * 4 * 2)
        return float(max(evaluation, training)), (f"chunk = {config.chunk}, evaluation.ml_grid = {ev.ml_grid}, "
                                                  f"training.batch = {tr.batch}, training.hidden = {tr.hidden}")

    def points(self, config: PositioningExperimentConfig) -> list[dict[str, Any]]:
        """Points ``{panel, impairment, x}``; ``x`` is the panel's own swept value: the SNR (dB)
        in ``snr``, σ_λ/λ in ``sigma``, ζ in ``zeta``, the angle (deg) in ``pattern``.  The
        other settings of a panel are the config's (``evaluation.sweep_snr_db``,
        ``evaluation.pattern_snr_db``, ``scenario.spacing_std``, ``scenario.coupling_zeta``)."""
        ev = config.evaluation
        pts: list[dict[str, Any]] = []
        if "pattern" in ev.panels:
            n = max(int(round(180.0 / ev.pattern_step_deg)), 1)
            pts += [dict(panel="pattern", impairment=imp, x=-90.0 + 180.0 * k / n)
                    for imp in ev.impairments for k in range(n + 1)]
        if "snr" in ev.panels:
            pts += [dict(panel="snr", impairment=imp, x=float(s)) for imp in ev.impairments for s in ev.snr_db]
        if "sigma" in ev.panels:
            pts += [dict(panel="sigma", impairment="spacing", x=float(v)) for v in ev.spacing_stds]
        if "zeta" in ev.panels:
            pts += [dict(panel="zeta", impairment="coupling", x=float(z)) for z in ev.zetas]
        return pts

    def run_unit(self, config: PositioningExperimentConfig, unit: WorkUnit, device: torch.device) -> UnitResult:
        """The point's rows and the model files (name, path, SHA-256, key) that produced them."""
        pt = unit.point
        panel, x = pt["panel"], float(pt["x"])
        sc = scenario_of(config, pt["impairment"], x if panel == "sigma" else None, x if panel == "zeta" else None)
        setup = _Setup.get(config, sc)
        g = unit.generator("cpu")
        progress = unit.progress
        used: list[ModelRecord] = []
        if panel == "pattern":
            rows = _pattern_rows(config, setup, x, progress, used)
        elif panel == "snr":
            rows = (_aod_rows(config, setup, x, unit.trials, g, progress, used)
                    + _position_rows(config, setup, x, unit.trials, g, progress, used))
        else:
            rows = _position_rows(config, setup, config.evaluation.sweep_snr_db, unit.trials, g, progress, used)
        artifacts = list({r["key"]: dict(r) for r in used}.values())
        return UnitResult(rows, artifacts)
