r"""Experiment ``direction_finding``: seed 002 (MoD-DNN) — direction finding with a commodity
5G gNB whose array has angle- and subcarrier-dependent phase errors.

Panels (``sweep.panels``; each is a set of sweep points, ``panel`` is a result column):

* ``autoencoder`` (Figs. 4a–d): AE I and AE II trained on device d; branch-selection
  accuracy, mean passband/stopband r_amp and r_phase (eq. 33); curves in the unit rows' extra;
* ``spectra`` (Figs. 1c, 4e): one CSI sample at each ``spectra_aoa_deg`` (device 0,
  ``spectra_snr_db``): CDBF (coarray spectrum), standalone SCG, MUSIC, DeepMUSIC and MoD-DNN
  spectra; FWHM and peak error;
* ``snr`` (Fig. 4f): RMSE vs SNR of MUSIC, DBF, DeepMUSIC, CNN, MoD-DNN per device, √CRB of the
  true array (``CRB``) and the noise-free bias of MUSIC (``MUSIC noise-free``) beside them;
* ``rho`` (Fig. 4g): RMSE vs the degree of impairment ρ at ``rho_snr_db`` (a model per ρ);
* ``epochs`` (Fig. 4h): the spread of the batch losses per epoch around the converged loss
  (normalised by epoch 1) of MoD-DNN's MoDL-SSR, DeepMUSIC and the CNN, and the epochs to 10 %;
* ``channels`` (Fig. 4i): the pipeline trained and evaluated on each TR 38.901 LoS scenario;
* ``complexity`` (Tables 3–4): FLOPs per inference (``torch.utils.flop_counter``) at the
  configured sizes, CPU test time per sample, training time per sample;
* ``measured`` (Fig. 5): the same pipeline on measured CSI (``data.path``: ``.npz``, ``.mat``
  v5/v7.3, ``.h5`` or a folder; the paper's splits) or, without a path, on a simulated
  anechoic-chamber surrogate; error CDF (80th percentile) and per-subregion box statistics
  (Tukey's and the seed's outlier rule).

Work units: ``trials`` is the number of validation samples per grid angle (the seed: 10),
``chunk`` the samples per angle in one unit.  Every learned model is trained through
:func:`isackit.learning.fit` and cached in a :class:`~isackit.learning.ModelStore` under
``models_dir`` inside the model cache (:func:`isackit.learning.store.default_model_root`:
``$ISACKIT_MODEL_CACHE``, else ``~/.cache/isackit/models``), keyed by everything that determines it;
the units return the model files they used (``models.json`` of the run folder).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field, field_validator, model_validator

from ..._config import StrictModel
from ...systems.direction_finding.config import ModelsConfig, ScenarioConfig
from ..config import ExperimentConfig, RelativePath, inside
from ..errors import ExperimentError
from ..registry import Experiment, register_experiment
from ..units import Row, UnitResult, WorkUnit, bound_row, mean_row, rmse_row

__all__ = ["DirectionFindingConfig", "DirectionFinding", "PANELS"]

PANELS = ("autoencoder", "spectra", "snr", "rho", "epochs", "channels", "complexity", "measured")
#: seed 002, Table 3 (GFLOPs per inference) and Table 4 (training h / test ms per sample, i7-1065G7)
PAPER_GFLOPS = {"MUSIC": 0.0002, "DeepMUSIC": 0.213, "CNN": 0.017, "MoD-DNN": 0.134}
PAPER_TEST_MS = {"MUSIC": 9.4, "DeepMUSIC": 31.6, "CNN": 1.8, "MoD-DNN": 14.9}
PAPER_TRAIN_H = {"DeepMUSIC": 30.8, "CNN": 1.6, "MoD-DNN": 15.6}


class SweepSpec(StrictModel):
    """Which panels run and their axes."""

    panels: list[Literal["autoencoder", "spectra", "snr", "rho", "epochs", "channels", "complexity",
                         "measured"]] = Field(default_factory=lambda: list(PANELS))
    devices: int = Field(3, ge=1)
    snr_db: list[float] = Field(default_factory=lambda: [0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0])
    train_per_snr: bool = False                  # full profile: one model per SNR point
    rho: list[float] = Field(default_factory=lambda: [0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    rho_snr_db: float = 10.0
    rho_devices: int = Field(1, ge=1)
    channels: list[Literal["inh", "inf", "umi", "uma", "rma"]] = Field(
        default_factory=lambda: ["inh", "inf", "umi", "uma", "rma"])
    channel_snr_db: float = 10.0
    spectra_aoa_deg: list[float] = Field(default_factory=lambda: [-45.0, -15.0, 15.0, 45.0])
    spectra_snr_db: float = 20.0
    autoencoder_devices: int = Field(1, ge=1)

    @field_validator("rho")
    @classmethod
    def _rho(cls, v):
        if any(not 0.0 <= r <= 1.0 for r in v):
            raise ValueError("sweep.rho values must lie in [0, 1]")
        return v


class MeasuredDataSpec(StrictModel):
    """The ``measured`` panel's data: a file/folder (``path``) or the simulated chamber surrogate."""

    path: str | None = None
    fields: dict[str, str] = Field(default_factory=dict)
    layout: str = "SMK"
    bs_position: list[float] | None = None        # field test: AoA from UE positions
    bs_orientation_deg: float = 0.0
    split: Literal["per_label", "every"] = "per_label"
    train_per_label: int = Field(400, ge=1)       # chamber: 400 / 50 symbols per angle
    val_per_label: int = Field(50, ge=1)
    every: int = Field(4, ge=2)                   # field: every 4th position to validation
    subcarriers: int = Field(16, ge=1)            # keep 16 uniformly spaced tones
    surrogate_per_angle: int = Field(450, ge=2)
    surrogate_snr_db: float = 20.0
    surrogate_device: int = Field(0, ge=0)
    surrogate_step_deg: float = Field(1.0, gt=0.0)   # turntable step (the seed: 1°, 121 angles)


class DirectionFindingConfig(ExperimentConfig):
    experiment: str = "direction_finding"
    trials: int = Field(10, ge=1)        # validation samples per grid angle
    chunk: int = Field(10, ge=1)
    scenario: ScenarioConfig = Field(default_factory=ScenarioConfig)
    models: ModelsConfig = Field(default_factory=ModelsConfig)
    data: MeasuredDataSpec = Field(default_factory=MeasuredDataSpec)
    sweep: SweepSpec = Field(default_factory=SweepSpec)
    methods: list[Literal["MUSIC", "DBF", "DeepMUSIC", "CNN", "MoD-DNN"]] = Field(
        default_factory=lambda: ["MUSIC", "DBF", "DeepMUSIC", "CNN", "MoD-DNN"])
    models_dir: RelativePath = "direction_finding"   # inside the model cache

    @model_validator(mode="after")
    def _data(self):
        if self.data.path is not None and "measured" in self.sweep.panels:
            from ...signals.measured import MeasuredDataError, load_measured_csi
            try:  # fail at spec time with a one-line error (exit code 2)
                load_measured_csi(self.data.path, fields=self.data.fields, layout=self.data.layout,
                                  bs_position=self.data.bs_position,
                                  bs_orientation=math.radians(self.data.bs_orientation_deg))
            except MeasuredDataError as err:
                raise ValueError(f"data.path: {err}") from None
        return self


# ---------------------------------------------------------------------------------------
_STORES: dict[str, Any] = {}


def _store(config: DirectionFindingConfig):
    from ...learning.store import ModelStore, default_model_root

    root = inside(default_model_root(), config.models_dir)
    key = str(root)
    if key not in _STORES:
        _STORES[key] = ModelStore(root)
    return _STORES[key]


def _device(config, index: int, rho: float | None = None):
    from ...systems.direction_finding.scenario import make_device
    return make_device(config.scenario, config.seed, index, rho)


def _scenario_for(config, channel: str | None = None):
    sc = config.scenario
    if channel is not None:
        sc = sc.model_copy(update={"channel": sc.channel.model_copy(update={"kind": channel})})
    return sc


def _training_data(config, device, scenario, snr_db, tag: str):
    from ...seeding import make_generator
    from ...systems.direction_finding.models import TrainingData
    from ...systems.direction_finding.scenario import grid_dataset

    m = config.models
    snr = snr_db if snr_db is not None else m.train_snr_db
    def factory():
        g = make_generator(config.seed, "direction_finding", "train", tag, device.index, device.rho,
                           scenario.channel.kind, str(snr))
        batch = grid_dataset(device, scenario, m.train_per_angle, snr, g)
        return batch.csi, batch.aoa, batch.clean

    ident = {"kind": "simulated", "device": device.index, "rho": device.rho, "channel": scenario.channel.kind,
             "snr_db": snr, "per_angle": m.train_per_angle, "seed": config.seed}
    return TrainingData(ident, factory=factory)


def _trained(config, device, scenario, unit: WorkUnit, snr_db=None, tag="sim", methods=None):
    from ...systems.direction_finding.models import train_all

    data = _training_data(config, device, scenario, snr_db, tag)
    wanted = [m for m in (methods or config.methods) if m not in ("MUSIC", "DBF")]
    return train_all(_store(config), data, scenario, device.assumed_array, config.models, config.seed,
                     methods=wanted, progress=unit.progress)


def _errors(config, method, csi, aoa, scenario, device, models):
    from ...systems.direction_finding.models import estimate
    est = estimate(method, csi, scenario, device.assumed_array, models)
    return torch.rad2deg(est.double() - aoa.double())


def _accuracy_rows(config, unit, device, scenario, snr, models, with_bounds=True) -> list[Row]:
    from ...systems.direction_finding.evaluation import crb_over_angles
    from ...systems.direction_finding.scenario import grid_dataset

    val = grid_dataset(device, scenario, unit.trials, snr, unit.generator())
    inner = torch.rad2deg(val.aoa.double()).abs() < scenario.impairment.threshold_deg
    rows: list[Row] = []
    for m in config.methods:
        e = _errors(config, m, val.csi, val.aoa, scenario, device, models)
        rows += [rmse_row(m, "rmse_deg", e, val.aoa.numel()),
                 rmse_row(m, "rmse_inner_deg", e[inner], int(inner.sum())),
                 rmse_row(m, "rmse_outer_deg", e[~inner], int((~inner).sum()))]
    if with_bounds and unit.chunk_index == 0:
        theta = val.aoa[:: unit.trials]
        crb = crb_over_angles(device, scenario, theta, snr)
        rows.append(bound_row("CRB", "rmse_deg", math.degrees(math.sqrt(float(crb.mean())))))
        if scenario.channel.kind == "los":  # the bias floor of the ideal-array MUSIC
            e0 = _errors(config, "MUSIC", val.clean[:: unit.trials], theta, scenario, device, None)
            rows.append(bound_row("MUSIC noise-free", "rmse_deg", float(e0.pow(2).mean().sqrt())))
    return rows


@register_experiment("direction_finding", config_model=DirectionFindingConfig,
                     description="Seed 002 MoD-DNN: AoA with a 4-antenna gNB under angle-dependent phase errors")
class DirectionFinding(Experiment):
    """Seed 002's figures and tables (module docstring)."""

    x_axis = "snr_db"
    log_y = True
    generic_figures = False  # the panels' own figures (draw_figures) cover every metric worth a plot
    labels = {"snr_db": "SNR (dB)", "rho": "degree of impairment ρ", "rmse_deg": "RMSE (°)",
              "rmse_inner_deg": "RMSE inside ±30° (°)", "rmse_outer_deg": "RMSE outside ±30° (°)",
              "gflops": "GFLOPs per inference", "test_ms": "test time (ms per sample)",
              "p80_deg": "80th-percentile error (°)", "fwhm_deg": "FWHM (°)", "peak_error_deg": "peak error (°)"}

    def points(self, config: DirectionFindingConfig) -> list[dict[str, Any]]:
        s = config.sweep
        pts: list[dict[str, Any]] = []
        for panel in s.panels:
            if panel == "autoencoder":
                pts += [{"panel": panel, "device": d, "variant": v} for d in range(s.autoencoder_devices)
                        for v in ("AE I", "AE II")]
            elif panel == "spectra":
                pts += [{"panel": panel, "device": 0, "aoa_deg": float(a)} for a in s.spectra_aoa_deg]
            elif panel == "snr":
                pts += [{"panel": panel, "device": d, "snr_db": float(x)} for d in range(s.devices) for x in s.snr_db]
            elif panel == "rho":
                pts += [{"panel": panel, "device": d, "rho": float(r)} for d in range(s.rho_devices) for r in s.rho]
            elif panel == "epochs":
                pts += [{"panel": panel, "device": d} for d in range(s.devices)]
            elif panel == "channels":
                pts += [{"panel": panel, "channel": c, "snr_db": float(s.channel_snr_db)} for c in s.channels]
            else:
                pts.append({"panel": panel})
        return pts

    def run_unit(self, config: DirectionFindingConfig, unit: WorkUnit, device: torch.device) -> UnitResult:
        panel = unit.point["panel"]
        rows, records = getattr(self, f"_{panel}")(config, unit)
        seen, arts = set(), []
        for r in records:
            if r["key"] not in seen:
                seen.add(r["key"])
                arts.append(dict(r))
        return UnitResult(rows, arts)

    # -- panels -------------------------------------------------------------------------
    def _snr(self, config, unit):
        d, snr = int(unit.point["device"]), float(unit.point["snr_db"])
        dev = _device(config, d)
        sc = _scenario_for(config)
        models = _trained(config, dev, sc, unit, snr_db=snr if config.sweep.train_per_snr else None)
        return _accuracy_rows(config, unit, dev, sc, snr, models), models.records

    def _rho(self, config, unit):
        d, rho = int(unit.point["device"]), float(unit.point["rho"])
        dev = _device(config, d, rho)
        sc = _scenario_for(config)
        models = _trained(config, dev, sc, unit)
        return _accuracy_rows(config, unit, dev, sc, config.sweep.rho_snr_db, models), models.records

    def _channels(self, config, unit):
        ch, snr = str(unit.point["channel"]), float(unit.point["snr_db"])
        dev = _device(config, 0)
        sc = _scenario_for(config, ch)
        models = _trained(config, dev, sc, unit, tag=f"tr38901-{ch}")
        return _accuracy_rows(config, unit, dev, sc, snr, models), models.records

    def _autoencoder(self, config, unit):
        from ...systems.direction_finding.evaluation import autoencoder_responses, branch_accuracy
        from ...systems.direction_finding.models import train_autoencoder
        from ...systems.direction_finding.scenario import grid_dataset, subregion_of

        d, variant = int(unit.point["device"]), str(unit.point["variant"])
        dev = _device(config, d)
        sc = _scenario_for(config)
        data = _training_data(config, dev, sc, None, "sim")
        ae, rec, _ = train_autoencoder(_store(config), data, sc, config.models, config.seed,
                                       shared=variant == "AE II", progress=unit.progress)
        val = grid_dataset(dev, sc, unit.trials, config.models.train_snr_db if not isinstance(
            config.models.train_snr_db, list) else 10.0, unit.generator())
        idx, r_amp, r_ph = autoencoder_responses(ae, val.csi, val.aoa, sc)
        theta = torch.deg2rad(sc.grid.min_deg + sc.grid.step_deg * idx.double())
        own = subregion_of(theta, sc)
        P = r_amp.shape[0]
        inside_mask = torch.nn.functional.one_hot(own, P).T.bool()  # (P, G)
        n = val.aoa.numel()
        extra = {"grid_deg": torch.rad2deg(theta).tolist(), "r_amp": r_amp.tolist(), "r_phase": r_ph.tolist()}
        far = branch_accuracy(ae, val.csi, val.aoa, sc, 2.0)  # NaN when no angle is 2° from a boundary
        rows = [
            Row(variant, "branch_accuracy", "mean", branch_accuracy(ae, val.csi, val.aoa, sc) * n, n, n, extra),
            *([Row(variant, "branch_accuracy_2deg", "mean", far * n, n, n)] if math.isfinite(far) else []),
            mean_row(variant, "passband_r_amp", r_amp[inside_mask], n),
            mean_row(variant, "stopband_r_amp", r_amp[~inside_mask], n),
            mean_row(variant, "passband_r_phase", r_ph[inside_mask], n),
            mean_row(variant, "stopband_r_phase", r_ph[~inside_mask], n),
        ]
        return rows, [rec]

    def _epochs(self, config, unit):
        from ...systems.direction_finding.evaluation import epoch_loss_spread, epochs_to_settle

        d = int(unit.point["device"])
        dev = _device(config, d)
        sc = _scenario_for(config)
        models = _trained(config, dev, sc, unit)
        rows = []
        groups = {"MoD-DNN": [k for k in models.logs if k.startswith("s2-ssr-")], "DeepMUSIC": ["s2-deepmusic"],
                  "CNN": ["s2-cnn"]}
        for method, names in groups.items():
            curves = []
            for name in names:
                log = models.logs.get(name)
                if not log:
                    continue
                losses = [r["loss"] for r in log["records"]]
                epochs = self._epochs_of(config, method)
                per_epoch = max(1, len(losses) // epochs)
                curves.append(epoch_loss_spread(losses, per_epoch))
            if not curves:
                continue
            n = min(len(c) for c in curves)
            spread = torch.tensor([c[:n] for c in curves]).mean(0).tolist()
            rows.append(Row(method, "final_spread", "mean", spread[-1], 1, 1, {"spread": spread}))
            settled = epochs_to_settle(spread)
            if math.isfinite(settled):  # no row when the spread never falls below 10 % in the run's epochs
                rows.append(Row(method, "epochs_to_10pct", "mean", settled, 1, 1))
        return rows, models.records

    @staticmethod
    def _epochs_of(config, method):
        m = config.models
        return {"MoD-DNN": m.ssr.training.epochs, "DeepMUSIC": m.deepmusic.training.epochs,
                "CNN": m.cnn.training.epochs}[method]

    def _spectra(self, config, unit):
        from ...estimators.coarray import coarray_spectrum
        from ...estimators.scg import SCG
        from ...estimators.spectral import music_spectrum
        from ...learning.mod_dnn import normalize_csi
        from ...systems.direction_finding.evaluation import half_power_width
        from ...systems.direction_finding.scenario import grid_angles, simulate_csi

        dev = _device(config, int(unit.point["device"]))
        sc = _scenario_for(config)
        models = _trained(config, dev, sc, unit)
        theta0 = math.radians(float(unit.point["aoa_deg"]))
        batch = simulate_csi(dev, torch.tensor([theta0], dtype=torch.float64), config.sweep.spectra_snr_db, sc,
                             unit.generator())
        H = normalize_csi(batch.csi)
        R = (H @ H.mH / H.shape[-1]).to(torch.complex128)
        grid = grid_angles(sc, torch.float64)
        A = dev.assumed_array.steering(grid).to(torch.complex128)
        spectra = {"CDBF": coarray_spectrum(R, A)[0]}
        scg = SCG(dev.assumed_array, 1, grid=_search_grid(sc), return_spectrum=True)
        spectra["SCG"] = scg(R).spectrum[0]
        if "MUSIC" in config.methods:
            spectra["MUSIC"] = music_spectrum(R + 1e-9 * torch.eye(R.shape[-1], dtype=R.dtype), A, 1)[0]
        with torch.no_grad():
            if models.deepmusic is not None:
                spectra["DeepMUSIC"] = models.deepmusic(R.to(torch.complex64))[0].double()
            if models.moddnn is not None:
                out = models.moddnn(H.to(torch.complex64))
                p = int(out.branch[0])
                full = torch.zeros_like(grid)
                b = [0] + torch.cumsum(torch.tensor([s.shape[-1] for s in out.spectra]), 0).tolist()
                full[b[p]:b[p + 1]] = out.spectra[p][0].double()
                spectra["MoD-DNN"] = full
        grid_deg = torch.rad2deg(grid)
        rows = []
        for name, s in spectra.items():
            w, peak = half_power_width(s, grid_deg)
            rows += [Row(name, "fwhm_deg", "mean", w, 1, 1, {"spectrum": s.float().tolist()}),
                     Row(name, "peak_error_deg", "mean", abs(peak - float(unit.point["aoa_deg"])), 1, 1)]
        rows[0].extra["grid_deg"] = grid_deg.tolist()
        return rows, models.records

    def _complexity(self, config, unit):
        from ...learning.mod_dnn import inference_flops, normalize_csi
        from ...systems.direction_finding.models import TrainedModels, estimate
        from ...systems.direction_finding.scenario import grid_dataset

        dev = _device(config, 0)
        sc = _scenario_for(config)
        models = _trained(config, dev, sc, unit)
        val = grid_dataset(dev, sc, 1, 10.0, unit.generator(), angle_index=torch.arange(0, sc.grid.size, 4))
        H = val.csi
        rows = []
        for m in config.methods:
            one = H[:1]
            flops = inference_flops(lambda x, m=m: estimate(m, x, sc, dev.assumed_array, models), one)
            rows.append(mean_row(m, "gflops", torch.tensor([flops / 1e9]), 1))
            if m in PAPER_GFLOPS:
                rows.append(bound_row(f"{m} [seed Table 3]", "gflops", PAPER_GFLOPS[m]))
            estimate(m, H[:4], sc, dev.assumed_array, models)  # warm-up
            t0 = time.perf_counter()
            for i in range(H.shape[0]):  # latency of ONE sample at a time (Table 4's test time)
                estimate(m, H[i:i + 1], sc, dev.assumed_array, models)
            ms = (time.perf_counter() - t0) / H.shape[0] * 1e3
            rows.append(mean_row(m, "test_ms", torch.tensor([ms]), H.shape[0]))
            t0 = time.perf_counter()
            estimate(m, H, sc, dev.assumed_array, models)
            rows.append(mean_row(m, "batched_test_ms", torch.tensor([(time.perf_counter() - t0) / H.shape[0] * 1e3]),
                                 H.shape[0]))
            if m in PAPER_TEST_MS:
                rows.append(bound_row(f"{m} [seed Table 4]", "test_ms", PAPER_TEST_MS[m]))
        seconds: dict[str, float] = {}
        for name, log in models.logs.items():  # wall time of the training runs (AE + 4 SSRs for MoD-DNN)
            if log.get("seconds"):
                method = "MoD-DNN" if name.startswith(("s2-ssr", "s2-autoencoder")) else \
                    {"s2-deepmusic": "DeepMUSIC", "s2-cnn": "CNN"}.get(name, name)
                seconds[method] = seconds.get(method, 0.0) + float(log["seconds"])
        for method, sec in seconds.items():
            rows.append(Row(method, "train_seconds", "mean", sec, 1, 1))
        return rows, models.records

    def _measured(self, config, unit):
        from ...metrics import empirical_cdf
        from ...signals.measured import load_measured_csi
        from ...systems.direction_finding.evaluation import subregion_box_statistics
        from ...systems.direction_finding.models import TrainingData, train_all
        from ...systems.direction_finding.scenario import chamber_surrogate

        dspec = config.data
        sc = _scenario_for(config)
        dev = _device(config, dspec.surrogate_device)
        if dspec.path is None:
            from ...seeding import make_generator
            g = make_generator(config.seed, "direction_finding", "chamber", dspec.surrogate_device)
            data = chamber_surrogate(dev, sc, dspec.surrogate_per_angle, dspec.surrogate_snr_db, g,
                                     step_deg=dspec.surrogate_step_deg)
            ident = {"kind": "chamber surrogate", "device": dspec.surrogate_device, "per_angle": dspec.surrogate_per_angle,
                     "snr_db": dspec.surrogate_snr_db, "seed": config.seed}
            if dspec.surrogate_step_deg != 1.0:  # (keys of models trained at the seed's 1° unchanged)
                ident["step_deg"] = dspec.surrogate_step_deg
        else:
            data = load_measured_csi(dspec.path, fields=dspec.fields, layout=dspec.layout,
                                     bs_position=dspec.bs_position,
                                     bs_orientation=math.radians(dspec.bs_orientation_deg))
            ident = {"kind": "file", "source": str(Path(dspec.path).name), "sha256": _digest(dspec.path)}
        if data.num_subcarriers > dspec.subcarriers:
            data = data.select_subcarriers(dspec.subcarriers)
        if data.num_subcarriers != sc.array.num_subcarriers or data.num_elements != sc.array.num_elements:
            raise ExperimentError(f"the measured data have M = {data.num_elements}, K = {data.num_subcarriers}; "
                                  f"set scenario.array.num_elements / num_subcarriers to match")
        data = data.filter(math.radians(sc.grid.min_deg), math.radians(sc.grid.max_deg))
        if not data.has_labels or data.num_samples == 0:
            raise ExperimentError("the measured data have no AoA labels in the grid's field of view")
        if dspec.split == "per_label":
            train, val = data.split_per_label(dspec.train_per_label, dspec.val_per_label)
        else:
            train, val = data.split_every(dspec.every)
        ident.update(split=dspec.split, train=dspec.train_per_label, val=dspec.val_per_label, every=dspec.every)
        td = TrainingData(ident, train.csi, train.aoa)
        wanted = [m for m in config.methods if m not in ("MUSIC", "DBF")]
        models = train_all(_store(config), td, sc, dev.assumed_array, config.models, config.seed, methods=wanted,
                           progress=unit.progress)
        rows = []
        for m in config.methods:
            e = _errors(config, m, val.csi, val.aoa, sc, dev, models)
            x, _ = empirical_cdf(e.abs())
            p80 = float(torch.quantile(e.abs(), 0.8))
            boxes = subregion_box_statistics(e, val.aoa, sc)
            n = val.num_samples
            rows += [rmse_row(m, "rmse_deg", e, n),
                     Row(m, "p80_deg", "mean", p80 * n, n, n, {"abs_errors": e.abs().float().tolist(),
                                                              "aoa_deg": torch.rad2deg(val.aoa).tolist(),
                                                              "boxes": boxes})]
            outer = [b["iqr"] for b in boxes if b["rule"] == "seed002" and b["subregion"] in (0, sc.grid.subregions - 1)
                     and math.isfinite(b["iqr"])]  # an outer subregion without validation samples has no box
            if outer:
                rows.append(Row(m, "outer_max_iqr_deg", "mean", max(outer) * n, n, n))
        return rows, models.records

    # -- reporting ----------------------------------------------------------------------
    def summary(self, df):
        from ...systems.direction_finding.report import summary_table
        return summary_table(df)

    def figures(self, df, meta, out_dir, run_dir=None):
        from .direction_finding_figures import draw_figures
        return draw_figures(df, meta, out_dir, run_dir)


def _search_grid(scenario):
    from ...estimators.grids import SearchGrid
    g = scenario.grid
    return SearchGrid.degrees(g.min_deg, g.max_deg, g.step_deg)


def _digest(path) -> str:
    import hashlib

    p = Path(path)
    files = sorted(f for f in p.iterdir() if f.is_file()) if p.is_dir() else [p]
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()
