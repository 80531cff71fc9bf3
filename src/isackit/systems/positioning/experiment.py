r"""The ``positioning`` experiment (system S4, seed 004 Figs. 4-10).

Panels (a sweep point's ``panel`` column; its ``x`` column is the panel's swept value):

* ``pattern`` — aggregate beam gain ‖Fᵀã(θ)‖² (linear) over angle for the benchmark and the learned
  AoD precoders of both BSs, at the evaluation sectors (Fig. 4a / 5 / 8), per impairment;
* ``snr`` — AoD RMSE (degrees, per BS, θ ~ U(evaluation sector)) and position RMSE (m, at
  the evaluation position, sectors θ_i ± 15°) vs SNR for the benchmark and the learned system,
  with their CRB / PEB and the benchmark's MCRB (Figs. 4b-c, 6, 9), per impairment;
* ``sigma`` — position RMSE at ``sweep_snr_db`` vs the spacing-error std σ_λ (Fig. 7);
* ``zeta`` — position RMSE at ``sweep_snr_db`` vs the coupling decay ζ (Fig. 10).

Methods: ``benchmark`` (CRB-optimal codebook + ML AoD + ML position), ``learned`` (the
autoencoders), and bound rows ``CRB (benchmark)``, ``CRB (learned)``, ``PEB (benchmark)``,
``PEB (learned)``, ``MCRB (benchmark)`` (all with the TRUE impaired array; the MCRB is the
benchmark's misspecified bound sqrt(MCRB + bias²)).

Learned models are trained once per (kind, impairment, σ_λ, ζ, training SNR, training
settings) and stored with :func:`~.autoencoder.save_autoencoder` under ``model_dir``; later
units and runs load them (safetensors, no unpickling).  An evaluation SNR uses the model
trained at the nearest ``train_snr_db`` (all evaluation SNRs when that list is empty, as in
the seed).  ``decoder = "hybrid"`` (our deviation; default ``"seed"``) adds, per model, a
decoder-only fine-tune of a correction network around the windowed ML estimate with the
precoders frozen (:func:`~.autoencoder.hybrid_from`); the ``learned`` rows then use it, and
the bounds are still the CRB / PEB of the (same) learned precoders with the TRUE arrays.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field

from ...experiments.config import ExperimentConfig
from ...experiments.registry import Experiment, register_experiment
from ...experiments.units import Row, WorkUnit, bound_row, mean_row, rmse_row
from .autoencoder import (
    AoDAutoencoder,
    PositionAutoencoder,
    hybrid_from,
    load_autoencoder,
    save_autoencoder,
    train_autoencoder,
    true_steering,
)
from .benchmark import benchmark_precoder, ml_aod, ml_position
from .bounds import aod_crbs, mcrb_aod, mcrb_position, position_peb
from .scenario import (
    PositioningConfig,
    build_arrays,
    draw_gains,
    local_aods,
    observe,
    position_sectors,
    sample_aod_batch,
    sample_position_batch,
)

__all__ = ["PositioningExperimentConfig", "PositioningExperiment", "trained_model", "scenario_of"]

Panel = Literal["pattern", "snr", "sigma", "zeta"]
Impairment = Literal["none", "spacing", "coupling"]


class PositioningExperimentConfig(ExperimentConfig):
    """Spec of the ``positioning`` experiment (defaults = seed 004 / full profile)."""

    panels: list[Panel] = ["pattern", "snr", "sigma", "zeta"]
    impairments: list[Impairment] = ["none", "spacing", "coupling"]
    snr_db: list[float] = [-5.0, 0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0]
    sweep_snr_db: float = 20.0
    spacing_stds: list[float] = [0.0025, 0.005, 0.01, 0.015, 0.02]  # σ_λ / λ
    spacing_std: float = Field(default=0.01, ge=0)                    # used by the other panels
    zetas: list[float] = [-2.0, -1.0, -0.5, -0.25, -0.1]
    zeta: float | None = None                                         # None = the seed's c
    pattern_snr_db: float = 10.0
    pattern_step_deg: float = Field(default=1.0, gt=0)
    # training
    hidden: int = Field(default=256, ge=1)
    depth: int = Field(default=6, ge=1)
    derotate: bool = True
    train_steps: int = Field(default=3000, ge=1)
    train_batch: int = Field(default=10_000, ge=1)
    lr: float = Field(default=1e-3, gt=0)
    min_lr: float = Field(default=1e-8, gt=0)
    train_snr_db: list[float] = []
    train_sectors: Literal["random", "eval"] = "random"
    train_repeats: int = Field(default=1, ge=1)  # samples per drawn sector / position per batch
    warm_start: bool = True          # initialise each SNR's model from the next lower training SNR's
    warm_steps: int = Field(default=1000, ge=1)
    model_dir: str = "models/positioning"
    # hybrid decoder (our deviation, see autoencoder module doc): after the seed training, the
    # precoders are frozen and a correction decoder around the model-based estimate is trained
    decoder: Literal["seed", "hybrid"] = "seed"
    finetune_steps: int = Field(default=400, ge=1)
    # set (and warm_start): each higher training SNR's correction decoder starts from the next
    # lower one's and trains finetune_warm_steps; None: every correction starts from zeros
    finetune_warm_steps: int | None = Field(default=None, ge=1)
    finetune_batch: int | None = Field(default=None, ge=1)   # None: train_batch
    finetune_lr: float = Field(default=1e-3, gt=0)
    correction_scale: float = Field(default=0.1, gt=0)
    hybrid_grid: int = Field(default=64, ge=8)               # ml_aod grid of the model-based guess
    # benchmark
    power_angles: int = Field(default=41, ge=2)
    ml_grid: int = Field(default=256, ge=8)
    bound_angles: int = Field(default=101, ge=2)


def scenario_of(config: PositioningExperimentConfig, impairment: str, spacing_std: float,
                zeta: float | None) -> PositioningConfig:
    """The S4 scenario for one sweep point (seed defaults + the point's impairment)."""
    return PositioningConfig(impairment=impairment, spacing_std=spacing_std,
                             coupling_zeta=zeta if impairment == "coupling" else None)


def _training_snr(config: PositioningExperimentConfig, snr_db: float) -> float:
    if not config.train_snr_db:
        return float(snr_db)
    return float(min(config.train_snr_db, key=lambda s: (abs(s - snr_db), -s)))


_MODELS: dict[str, Any] = {}


def _lower_training_snr(config: PositioningExperimentConfig, snr_db: float) -> float | None:
    lower = [s for s in config.train_snr_db if s < snr_db]
    return max(lower) if (config.warm_start and lower) else None


def trained_model(config: PositioningExperimentConfig, kind: Literal["aod", "position"],
                  scenario: PositioningConfig, snr_db: float):
    """Load (or train once and save) the ``kind`` autoencoder for this scenario and SNR.

    With ``warm_start`` and a lower training SNR in ``train_snr_db``, the model starts from
    that SNR's model (trained first, recursively) and trains for ``warm_steps``.  With
    ``decoder = "hybrid"`` that (seed) model's precoders are then frozen and a hybrid
    correction decoder is trained for ``finetune_steps`` (batch ``finetune_batch``, Adam with
    a cosine schedule ``finetune_lr`` → ``min_lr``); it is saved under its own key.  With
    ``finetune_warm_steps`` set (and ``warm_start``), the correction decoder of a higher
    training SNR starts from the next lower SNR's hybrid model instead of zeros (the nominal
    model's bias it corrects barely depends on the SNR) and trains ``finetune_warm_steps``.
    """
    base = _seed_model(config, kind, scenario, snr_db)
    if config.decoder == "seed":
        return base
    lower = _lower_training_snr(config, snr_db) if (config.train_snr_db and config.finetune_warm_steps) else None
    parent = trained_model(config, kind, scenario, lower) if lower is not None else None
    steps = config.finetune_steps if parent is None else config.finetune_warm_steps
    batch = config.finetune_batch or config.train_batch
    settings = dict(parent=base.checkpoint_key, decoder="hybrid", steps=steps, batch=batch,
                    lr=config.finetune_lr, min_lr=config.min_lr, scale=config.correction_scale,
                    grid=config.hybrid_grid, snr_db=float(snr_db))
    if parent is not None:  # key unchanged for a model trained from zeros
        settings["correction_from"] = parent.checkpoint_key

    def build(seed: int):
        q, psi = scenario.bs_tensor()
        with torch.random.fork_rng(devices=[]):  # layer initialisation only; global state restored
            torch.manual_seed(seed)
            model = hybrid_from(base, config.correction_scale, config.hybrid_grid, q.tolist(), psi.tolist(),
                                correction_from=parent)
        sample = _sampler(config, kind, scenario)
        log = train_autoencoder(model, sample, build_arrays(scenario), snr_db, steps, batch,
                                config.finetune_lr, config.min_lr, generator=torch.Generator().manual_seed(seed),
                                train_precoder=False)
        return model, log

    return _cached_model(config, f"{kind}-hybrid", settings, build)


def _cached_model(config: PositioningExperimentConfig, prefix: str, settings: dict, build):
    """The model whose training ``settings`` hash to key k: from memory, else from
    ``model_dir/<prefix>-<k>``, else ``build(seed) -> (model, log)`` (seed derived from k), saved."""
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    if key in _MODELS:
        return _MODELS[key]
    path = Path(config.model_dir) / f"{prefix}-{key}"
    if (path / "config.json").is_file():
        model, _ = load_autoencoder(path)
    else:
        model, log = build(int(key, 16) % (2**62))
        save_autoencoder(path, model, extra=dict(settings, train_seconds=log["seconds"],
                                                 final_loss=log["losses"][-1]))
    model.checkpoint_key = key
    _MODELS[key] = model
    return model


def _sampler(config: PositioningExperimentConfig, kind: str, sc: PositioningConfig):
    """Training draw ``(batch, generator) -> (sectors, theta, target)`` of the ``kind`` AE."""
    if kind == "aod":
        def sample(b, g):
            s, th = sample_aod_batch(sc, b, g, mode=config.train_sectors, repeats=config.train_repeats)
            return s, th, th
    else:
        def sample(b, g):
            p, th, s = sample_position_batch(sc, b, g, repeats=config.train_repeats)
            return s, th, p
    return sample


def _seed_model(config: PositioningExperimentConfig, kind: Literal["aod", "position"],
                scenario: PositioningConfig, snr_db: float):
    """The seed's end-to-end autoencoder (precoder + MLP decoder), trained once and cached."""
    lower = _lower_training_snr(config, snr_db) if config.train_snr_db else None
    parent = _seed_model(config, kind, scenario, lower) if lower is not None else None
    settings = dict(kind=kind, scenario=scenario.model_dump(mode="json"), snr_db=float(snr_db),
                    hidden=config.hidden, depth=config.depth, derotate=config.derotate,
                    steps=config.train_steps if parent is None else config.warm_steps,
                    batch=config.train_batch, lr=config.lr,
                    min_lr=config.min_lr, sectors=config.train_sectors if kind == "aod" else "prior",
                    seed=config.seed, repeats=config.train_repeats,
                    parent=None if parent is None else parent.checkpoint_key)

    def build(seed: int):
        sc = scenario
        with torch.random.fork_rng(devices=[]):  # layer initialisation only; global state restored
            torch.manual_seed(seed)
            if kind == "aod":
                model = AoDAutoencoder(sc.num_bs, sc.num_antennas, sc.num_transmissions, config.hidden,
                                       config.depth, config.derotate)
            else:
                model = PositionAutoencoder(sc.num_bs, sc.num_antennas, sc.num_transmissions, sc.prior_centre,
                                            sc.prior_side, config.hidden, config.depth, config.derotate)
        if parent is not None:
            model.load_state_dict(parent.state_dict())
        log = train_autoencoder(model, _sampler(config, kind, sc), build_arrays(sc), snr_db, settings["steps"],
                                config.train_batch, config.lr, config.min_lr, generator=torch.Generator().manual_seed(seed))
        return model, log

    return _cached_model(config, kind, settings, build)


def _deg(x: torch.Tensor) -> torch.Tensor:
    return torch.rad2deg(x)


class _Setup:
    """Arrays, benchmark precoders and sectors of one scenario (cached per scenario)."""

    cache: dict[str, _Setup] = {}

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
        # the benchmark designs with the nominal array (identical for every BS here)
        self.F_aod, _ = benchmark_precoder(self.ideal[0], self.aod_sectors, T, config.power_angles)
        self.F_pos, _ = benchmark_precoder(self.ideal[0], self.pos_sectors, T, config.power_angles)

    @classmethod
    def get(cls, config, scenario) -> _Setup:
        key = json.dumps([scenario.model_dump(mode="json"), config.power_angles], sort_keys=True)
        if key not in cls.cache:
            cls.cache[key] = cls(config, scenario)
        return cls.cache[key]


def _aod_rows(config, setup: _Setup, snr_db: float, trials: int, g: torch.Generator) -> list[Row]:
    sc, rows = setup.scenario, []
    I = sc.num_bs
    _, theta = sample_aod_batch(sc, trials, g, mode="eval", dtype=torch.float64)
    secs = setup.aod_sectors.expand(trials, I, 2)
    a_true = true_steering(setup.arrays, theta)                                    # (B, I, M)
    # benchmark
    alpha = draw_gains(snr_db, (trials, I), g, torch.complex128)
    y = observe(setup.F_aod, a_true, alpha, g)
    th_b = torch.stack([ml_aod(y[:, i], setup.F_aod[i], setup.ideal[i], setup.aod_sectors[i], config.ml_grid)
                        for i in range(I)], dim=-1)
    # learned
    model = trained_model(config, "aod", sc, _training_snr(config, snr_db))
    with torch.no_grad():
        th_l = model(secs.float(), theta.float(), setup.arrays, snr_db, g).double()
        F_l = model.precoders(setup.aod_sectors.float()).to(torch.complex128)
    # bounds: averaged over θ ~ U(sector) on a grid
    frac = torch.linspace(0, 1, config.bound_angles, dtype=torch.float64)
    grid = setup.aod_sectors[:, :1] + (setup.aod_sectors[:, 1:] - setup.aod_sectors[:, :1]) * frac  # (I, G)
    grid = grid.T                                                                               # (G, I)
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


def _position_rows(config, setup: _Setup, snr_db: float, trials: int, g: torch.Generator) -> list[Row]:
    sc, rows = setup.scenario, []
    I = sc.num_bs
    theta = setup.theta_p.expand(trials, I)
    a_true = true_steering(setup.arrays, theta)
    alpha = draw_gains(snr_db, (trials, I), g, torch.complex128)
    y = observe(setup.F_pos, a_true, alpha, g)
    th_b = torch.stack([ml_aod(y[:, i], setup.F_pos[i], setup.ideal[i], setup.pos_sectors[i], config.ml_grid)
                        for i in range(I)], dim=-1)
    var_assumed = aod_crbs(setup.F_pos, setup.ideal, setup.theta_p, snr_db)
    half = sc.prior_side / 2
    c = torch.tensor(sc.prior_centre, dtype=torch.float64)
    box = torch.stack([c - half, c + half])                      # seed eq. 12: p ∈ P (the prior square)
    p_b = ml_position(th_b, var_assumed.expand(trials, I), setup.q, setup.psi, box=box)
    model = trained_model(config, "position", sc, _training_snr(config, snr_db))
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


def _pattern_rows(config, setup: _Setup, angle_deg: float) -> list[Row]:
    sc = setup.scenario
    th = torch.tensor([math.radians(angle_deg)], dtype=torch.float64)
    # the precoders only: the hybrid decoder (if any) shares the seed model's precoders
    model = _seed_model(config, "aod", sc, _training_snr(config, config.pattern_snr_db))
    with torch.no_grad():
        F_l = model.precoders(setup.aod_sectors.float()).to(torch.complex128)
    rows = []
    for i, arr in enumerate(setup.arrays):
        a = arr.steering(th)[..., 0]
        for name, F in (("benchmark", setup.F_aod[i]), ("learned", F_l[i])):
            gain = ((F.mT @ a).abs() ** 2).sum()
            rows.append(mean_row(name, f"beam_gain_bs{i + 1}", gain.reshape(1), 1))
    return rows


@register_experiment("positioning", config_model=PositioningExperimentConfig,
                     description="S4: learned precoders + AoD/position estimators vs the CRB-optimal design (seed 004)")
class PositioningExperiment(Experiment):
    """Seed 004 Figs. 4-10: benchmark vs end-to-end learning, with and without impairments."""

    x_axis = "x"

    def figures(self, df, meta: dict, out_dir: Path, run_dir: Path | None) -> list[Path]:
        """Seed-style figures (precoder responses, RMSE vs SNR per impairment, vs σ_λ and ζ):
        see :mod:`.figures`; called by :func:`isackit.plotting.plot_results`."""
        from .figures import positioning_figures

        return positioning_figures(df, meta, out_dir, run_dir)

    def points(self, config: PositioningExperimentConfig) -> list[dict[str, Any]]:
        """Points ``{panel, impairment, x}``; ``x`` is the panel's own swept value: the SNR (dB)
        in ``snr``, σ_λ/λ in ``sigma``, ζ in ``zeta``, the angle (deg) in ``pattern``.  The
        other settings of a panel are the config's (``sweep_snr_db``, ``pattern_snr_db``,
        ``spacing_std``, ``zeta``)."""
        pts: list[dict[str, Any]] = []
        if "pattern" in config.panels:
            n = int(round(180.0 / config.pattern_step_deg))
            pts += [dict(panel="pattern", impairment=imp, x=-90.0 + 180.0 * k / n)
                    for imp in config.impairments for k in range(n + 1)]
        if "snr" in config.panels:
            pts += [dict(panel="snr", impairment=imp, x=float(s)) for imp in config.impairments for s in config.snr_db]
        if "sigma" in config.panels:
            pts += [dict(panel="sigma", impairment="spacing", x=float(v)) for v in config.spacing_stds]
        if "zeta" in config.panels:
            pts += [dict(panel="zeta", impairment="coupling", x=float(z)) for z in config.zetas]
        return pts

    def run_unit(self, config: PositioningExperimentConfig, unit: WorkUnit, device: torch.device) -> list[Row]:
        pt = unit.point
        panel, x = pt["panel"], float(pt["x"])
        sigma = x if panel == "sigma" else config.spacing_std
        zeta = x if panel == "zeta" else config.zeta
        sc = scenario_of(config, pt["impairment"], sigma, zeta)
        setup = _Setup.get(config, sc)
        g = unit.generator("cpu")
        if panel == "pattern":
            return _pattern_rows(config, setup, x)
        if panel == "snr":
            return (_aod_rows(config, setup, x, unit.trials, g)
                    + _position_rows(config, setup, x, unit.trials, g))
        return _position_rows(config, setup, config.sweep_snr_db, unit.trials, g)
