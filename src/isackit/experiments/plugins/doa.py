r"""Experiment ``doa``: RMSE vs SNR of the classical DOA estimators on a ULA, ideal and
impaired, against the CRB and the misspecified CRB (MCRB).

Model (conventions.md): a ULA of M elements (spacing d wavelengths), K far-field sources at
fixed azimuths θ, N snapshots X = A_true(θ) S + W, W ~ CN(0, σ² I) with σ² = 1.  The source
signals S (K × N) are *deterministic*: drawn once per sweep point from the root seed and
rescaled so that each row has empirical power 10^(SNR/10) (SNR per element and snapshot);
only the noise changes from trial to trial.  This is the conditional model, so the
deterministic CRB and the deterministic MCRB are the exact bounds for the simulated data.

Impairments (``sweep.impairment``): ``ideal``; ``gain_phase`` (per-element gain error
N(0, gain_std_db²) dB and phase error N(0, phase_std_deg²) degrees, :class:`GainPhaseError`);
``coupling`` (banded symmetric Toeplitz coupling with coefficients c, :class:`MutualCoupling`);
``displacement`` (element displacements N(0, (σ λ)²) in the array plane,
:class:`ElementDisplacement`).  Each impaired array is one fixed realisation drawn from the
root seed (the same for every SNR point and trial).  The impairments are *unknown* to the
receiver: every estimator uses the nominal (ideal) ULA.

Methods: the estimators named in ``estimators`` (from :mod:`isackit.estimators`'s registry;
method names in the results are the registry names), applied to the sample covariance
R̂ = X Xᴴ / N.  Errors are taken after optimal assignment (:func:`isackit.metrics.assignment_errors`).

Metrics per (SNR, impairment, method): ``rmse_deg`` = sqrt(mean over trials and sources of the
squared azimuth error), in degrees (sources an estimator did not return are left out of the
RMSE and counted in ``failure_rate``); ``failure_rate`` = fraction of trials with a missing
source or an error above ``failure_threshold_deg`` (:func:`isackit.metrics.failure_rate`).

Bounds (rows with ``n_trials = 0``, metric ``rmse_deg``):

* ``CRB``: sqrt(tr CRB / K) of the deterministic CRB with the TRUE (impaired) array
  (:func:`isackit.bounds.crb_doa_deterministic`) — the bound for a receiver that knows the
  impairments;
* ``MCRB`` (impaired points only): sqrt(tr(MCRB + b bᵀ) / K), the misspecified bound on the
  MSE about the true angles for a receiver that assumes the ideal ULA, with b the bias of the
  pseudo-true angles (:func:`isackit.bounds.mcrb_deterministic`, stacked over the
  snapshots; computed with K virtual snapshots L, L Lᴴ = S Sᴴ, which gives the same bound).  It is exact for the mismatched ML estimator; for the other estimators it shows
  the error floor that mismatch imposes.
"""

from __future__ import annotations

import inspect
import math
from typing import Any, Literal

import torch
from pydantic import Field, field_validator

from ..._config import StrictModel
from ..._dtypes import complex_dtype
from ..config import ExperimentConfig, ExperimentError
from ..registry import Experiment, register_experiment
from ..units import Row, WorkUnit, bound_row, rmse_row, unit_seed

__all__ = ["DoaConfig", "DoaExperiment", "IMPAIRMENTS", "build_array_model", "build_estimator"]

IMPAIRMENTS = ("ideal", "gain_phase", "coupling", "displacement")


class ArraySpec(StrictModel):
    """Nominal ULA: ``elements`` M, ``spacing`` d in wavelengths."""

    elements: int = Field(8, ge=2, le=256)
    spacing: float = Field(0.5, gt=0.0)


class ImpairmentSpec(StrictModel):
    """Sizes of the impairments (each one a fixed realisation drawn from the root seed)."""

    gain_std_db: float = Field(1.0, ge=0.0)
    phase_std_deg: float = Field(10.0, ge=0.0)
    coupling_magnitudes: list[float] = [1.0, 0.3, 0.1]
    coupling_phases_deg: list[float] = [0.0, -60.0, 45.0]
    displacement_std_wavelengths: float = Field(0.05, ge=0.0)

    @field_validator("coupling_magnitudes")
    @classmethod
    def _mags(cls, v):
        if not v or any(m < 0 for m in v):
            raise ValueError("coupling magnitudes must be a non-empty list of non-negative numbers")
        return v


class DoaSweep(StrictModel):
    snr_db: list[float] = [-10.0, -5.0, 0.0, 5.0, 10.0, 15.0, 20.0, 30.0]
    impairment: list[Literal["ideal", "gain_phase", "coupling", "displacement"]] = list(IMPAIRMENTS)

    @field_validator("snr_db", "impairment")
    @classmethod
    def _nonempty(cls, v):
        if not v:
            raise ValueError("must list at least one value")
        return v


class DoaConfig(ExperimentConfig):
    """Config of the ``doa`` experiment (see the module docstring)."""

    array: ArraySpec = ArraySpec()
    angles_deg: list[float] = [-10.0, 12.0]
    snapshots: int = Field(64, ge=1)
    estimators: list[str] = ["bartlett", "mvdr", "music", "dml", "root_music", "esprit_ls", "unitary_esprit"]
    estimator_options: dict[str, dict[str, Any]] = {}
    grid_step_deg: float | None = Field(None, gt=0.0)
    failure_threshold_deg: float = Field(5.0, gt=0.0)
    impairments: ImpairmentSpec = ImpairmentSpec()
    sweep: DoaSweep = DoaSweep()
    precision: Literal["single", "double"] = "single"

    @field_validator("angles_deg")
    @classmethod
    def _angles(cls, v):
        if not v or any(not -90.0 < a < 90.0 for a in v):
            raise ValueError("angles_deg must be a non-empty list of azimuths in (-90, 90) degrees")
        return v

    @field_validator("estimators")
    @classmethod
    def _estimators(cls, v):
        ESTIMATORS = _registered_estimators(v)
        if not v:
            raise ValueError("list at least one estimator")
        unknown = [n for n in v if n not in ESTIMATORS]
        if unknown:
            raise ValueError(f"unknown estimator(s) {', '.join(unknown)}; registered: {', '.join(sorted(ESTIMATORS))}")
        return v


def _registered_estimators(names) -> dict:
    """The estimator registry (importing :mod:`isackit.estimators` registers every estimator)."""
    from ...estimators import ESTIMATORS

    return ESTIMATORS


def _dtypes(config: DoaConfig) -> tuple[torch.dtype, torch.dtype]:
    return (torch.float64, torch.complex128) if config.precision == "double" else (torch.float32, torch.complex64)


def build_array_model(config: DoaConfig, impairment: str, dtype: torch.dtype = torch.float64,
                      device: torch.device | str = "cpu"):
    """The TRUE array of sweep value ``impairment`` (one realisation from the root seed)."""
    from ...geometry import ula
    from ...impairments import ArrayModel, ElementDisplacement, GainPhaseError, MutualCoupling

    M = config.array.elements
    geometry = ula(M, spacing=config.array.spacing)
    imp = config.impairments
    g = torch.Generator().manual_seed(unit_seed(config.seed, "doa-array", {"impairment": impairment}, 0))
    if impairment == "ideal":
        chain = []
    elif impairment == "gain_phase":
        chain = [GainPhaseError.gaussian(M, imp.gain_std_db, imp.phase_std_deg, generator=g, dtype=dtype)]
    elif impairment == "coupling":
        c = [m * complex(math.cos(math.radians(p)), math.sin(math.radians(p)))
             for m, p in zip(imp.coupling_magnitudes, imp.coupling_phases_deg + [0.0] * len(imp.coupling_magnitudes),
                             strict=False)]
        cdt = complex_dtype(dtype)
        chain = [MutualCoupling(torch.tensor(c, dtype=cdt))]
    elif impairment == "displacement":
        std = imp.displacement_std_wavelengths * geometry.wavelength
        chain = [ElementDisplacement.gaussian(M, std, axes="xy", generator=g, dtype=dtype)]
    else:  # pragma: no cover - excluded by the config's Literal
        raise ExperimentError(f"unknown impairment {impairment!r}")
    return ArrayModel(geometry, chain).to(device)


def build_estimator(name: str, config: DoaConfig, assumed_model):
    """Construct registered estimator ``name`` for this scenario.

    The keyword arguments an estimator's constructor declares are filled from the scenario
    (``num_sources`` K, ``spacing`` d, ``model``/``array_model`` the receiver's assumed array,
    ``grid`` an azimuth :class:`~isackit.estimators.grids.SearchGrid` over [-90°, 90°] with
    ``grid_step_deg`` if that is set, else the estimator's default grid), then ``estimator_options[name]`` is applied on top.
    """
    from ...estimators import get_estimator
    from ...estimators.grids import SearchGrid

    cls = get_estimator(name)
    params = inspect.signature(cls.__init__).parameters
    available = {
        "num_sources": len(config.angles_deg),
        "spacing": config.array.spacing,
        "model": assumed_model,
        "array_model": assumed_model,
        "array": assumed_model,
    }
    if config.grid_step_deg is not None:
        available["grid"] = SearchGrid.degrees(-90.0, 90.0, config.grid_step_deg)
    kwargs = {k: v for k, v in available.items() if k in params}
    options = dict(config.estimator_options.get(name, {}))
    unknown = [k for k in options if k not in params and not any(p.kind == p.VAR_KEYWORD for p in params.values())]
    if unknown:
        raise ExperimentError(f"estimator_options.{name}: unknown option(s) {', '.join(unknown)}")
    kwargs.update(options)
    missing = [k for k, p in params.items() if k != "self" and p.default is p.empty
               and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and k not in kwargs]
    if missing:
        raise ExperimentError(f"estimator {name!r} needs {', '.join(missing)}; set estimator_options.{name}")
    return cls(**kwargs)


def _source_signals(config: DoaConfig, point: dict, cdtype, device) -> torch.Tensor:
    """Fixed unit-power source signals S (K, N) of a sweep point (from the root seed)."""
    from ...signals.random import complex_normal

    g = torch.Generator().manual_seed(unit_seed(config.seed, "doa-signals", point, 0))
    return complex_normal((len(config.angles_deg), config.snapshots), g, cdtype).to(device)


@register_experiment("doa", config_model=DoaConfig,
                     description="RMSE vs SNR of classical DOA estimators on a ULA, ideal and impaired, "
                                 "with CRB and MCRB")
class DoaExperiment(Experiment):
    """RMSE vs SNR of classical DOA estimators, ideal and impaired ULA, with CRB and MCRB."""

    x_axis = "snr_db"
    log_y = True
    labels = {"snr_db": "SNR per element (dB)", "rmse_deg": "Azimuth RMSE (°)", "failure_rate": "Failure rate"}

    def unit_memory(self, config: DoaConfig) -> tuple[float, str]:
        """Peak bytes of one unit: ~4 copies of the (B, M, N) snapshots (signal, noise, sum,
        temporaries) plus the (B, G) grid spectra and (B, G, M) grid products of the
        grid-based estimators (G = 18 001 points unless ``grid_step_deg`` is set)."""
        M, N, B = config.array.elements, config.snapshots, config.chunk
        c = 16 if config.precision == "double" else 8
        G = 18_001 if config.grid_step_deg is None else int(180.0 / config.grid_step_deg) + 1
        per_trial = 4 * M * N * c + 2 * M * M * c + G * (M + 4) * c
        return float(B * per_trial), f"array.elements = {M}, snapshots = {N}"

    def summary(self, df):
        """One row per method: the azimuth RMSE (°) at the highest SNR on each array (ideal,
        then each impairment) and the worst failure rate over the arrays at the lowest SNR;
        the CRB and MCRB rows beside them.  Headlines: the best estimator against the CRB on
        the ideal array, and against the MCRB and the CRB on each impaired one."""
        import pandas as pd

        from ..report import _fmt

        if df.empty or "snr_db" not in df or "impairment" not in df:
            return super().summary(df)
        hi, lo = df["snr_db"].max(), df["snr_db"].min()
        arrays = list(dict.fromkeys(df["impairment"]))
        bounds = {"CRB", "MCRB"}
        methods = list(dict.fromkeys(df["method"]))
        methods = [m for m in methods if m not in bounds] + [m for m in methods if m in bounds]
        rmse = df[(df["metric"] == "rmse_deg") & (df["snr_db"] == hi)].set_index(["method", "impairment"])["value"]
        fail = df[(df["metric"] == "failure_rate") & (df["snr_db"] == lo)].groupby("method")["value"].max()
        fail_col = f"fail@{lo:g}dB"
        records = []
        for m in methods:
            rec = {"method": m}
            for a in arrays:
                rec[a] = float(rmse.get((m, a), float("nan")))
            rec[fail_col] = float(fail.get(m, float("nan")))
            records.append(rec)
        table = pd.DataFrame.from_records(records)
        lines = [f"columns: azimuth RMSE (°) at {hi:g} dB on each array; {fail_col}: worst failure rate over "
                 f"the arrays at {lo:g} dB"]
        for a in arrays:
            est = {m: v for (m, arr), v in rmse.items() if arr == a and m not in bounds and v == v}
            if not est:
                continue
            best = min(est, key=est.get)
            parts = [f"{est[best] / rmse[(b, a)]:.3g} × {b}" for b in ("MCRB", "CRB")
                     if (b, a) in rmse.index and rmse[(b, a)] > 0]
            if parts:
                lines.append(f"{a} at {hi:g} dB: best {best} {_fmt(est[best])}° = {', '.join(parts)}")
        return table, lines

    def run_unit(self, config: DoaConfig, unit: WorkUnit, device: torch.device) -> list[Row]:
        from ...metrics import assignment_errors, failure_rate
        from ...signals.snapshots import sample_covariance, snapshots

        rdtype, cdtype = _dtypes(config)
        snr, impairment = float(unit.point["snr_db"]), str(unit.point["impairment"])
        truth = torch.deg2rad(torch.tensor(config.angles_deg, dtype=rdtype, device=device))
        true_model = build_array_model(config, impairment, rdtype, device)
        assumed = true_model.assumed()
        A = true_model.steering(truth).to(cdtype)  # (M, K)
        S = _source_signals(config, unit.point, cdtype, device)
        B = unit.trials
        snap = snapshots(A.expand(B, *A.shape), unit.generator(device), signals=S, snr_db=snr, noise_variance=1.0)
        R = sample_covariance(snap.X)  # (B, M, M)
        rows: list[Row] = []
        thr = math.radians(config.failure_threshold_deg)
        for i, name in enumerate(config.estimators):
            if unit.progress is not None:
                unit.progress(i, len(config.estimators), "estimators")
            est = build_estimator(name, config, assumed)
            result = est(R)
            az = result.parameter("azimuth").unsqueeze(-1)  # (B, K, 1)
            err = assignment_errors(az, truth.unsqueeze(-1))
            rows.append(rmse_row(est.name, "rmse_deg", torch.rad2deg(err), B))
            rate = float(failure_rate(az, truth.unsqueeze(-1), thr))
            rows.append(Row(est.name, "failure_rate", "mean", rate * B, B, B))
        if unit.chunk_index == 0:
            S_used = snap.sources.reshape(-1, *snap.sources.shape[-2:])[0]  # the rescaled S
            rows += self.bounds(config, true_model, truth, S_used)
        return rows

    @staticmethod
    def bounds(config: DoaConfig, true_model, truth: torch.Tensor, signals: torch.Tensor) -> list[Row]:
        """CRB (true array) and, for an impaired array, the MCRB of the ideal-array receiver."""
        from ...bounds import crb_doa_deterministic, mcrb_deterministic

        model64 = true_model.double()
        th = truth.double()
        S = signals.to(torch.complex128)
        K, N = S.shape
        crb = crb_doa_deterministic(model64, th, 1.0, signals=S)
        rows = [bound_row("CRB", "rmse_deg", math.degrees(math.sqrt(float(torch.diagonal(crb).sum()) / K)))]
        if len(true_model.impairments):
            # The deterministic model depends on S only through S Sᴴ (with concentrated
            # gains every term is a Hermitian form in the s_n), so the N snapshots are
            # replaced by K "virtual snapshots" L with L Lᴴ = S Sᴴ: same bound, far smaller
            # problem (tests/test_experiments_doa.py checks the equality).
            Lv = torch.linalg.cholesky(S @ S.mH)  # (K, K)
            ideal = true_model.ideal().double()
            mu = (model64.steering(th) @ Lv).mT.reshape(-1)  # stacked over virtual snapshots
            eye_k = torch.eye(K, dtype=torch.complex128, device=th.device)

            def response(theta):  # (..., K) -> (..., K·M, K·K), block-diagonal
                Aa = ideal.steering(theta)
                blocks = Aa.reshape(-1, *Aa.shape[-2:])
                B = torch.stack([torch.kron(eye_k, a) for a in blocks])
                return B.reshape(*Aa.shape[:-2], *B.shape[-2:])

            mb = mcrb_deterministic(mu, response, th, 1.0)
            mse = torch.diagonal(mb.mse_bound).sum()
            rows.append(bound_row("MCRB", "rmse_deg", math.degrees(math.sqrt(float(mse) / K))))
        return rows
