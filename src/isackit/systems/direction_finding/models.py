r"""S2 receivers: training (through :func:`isackit.learning.fit`, cached in the
:class:`~isackit.learning.ModelStore`) and evaluation of MoD-DNN and its baselines.

Methods (seed 002, Sec. 5): MUSIC and DBF (the library's :func:`~isackit.estimators.music_doa`
and :func:`~isackit.estimators.bartlett_doa` on the ideal manifold, grid-only on the seed's
0.1° grid), DeepMUSIC, the CNN regressor and MoD-DNN (:mod:`isackit.learning.mod_dnn`).

Training data are a :class:`TrainingData` (CSI ``(S, M, K)`` and AoA labels ``(S,)`` with an
``identity`` that names where they came from: a simulated device, a measured file); every
model's store key covers that identity, the scenario, the model and training settings, so
a cached model is reused exactly when it would be retrained identically.  Schedules follow
the seed (Adam, lr 0.01 halved every 5 epochs, batch 64, 30 epochs) as :class:`TrainSettings`
in epochs, turned into :class:`~isackit.learning.TrainingConfig` steps; every batch loss is
logged (Fig. 4h).  Batches are the samples of a per-epoch permutation drawn from
``make_generator(seed, name, "epoch", e)`` (stateless, so a resumed training sees the same
batches).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from ...estimators.coarray import coarray_spectrum
from ...estimators.grids import SearchGrid
from ...estimators.spectral import bartlett_doa, music_doa, music_spectrum
from ...learning import mod_dnn
from ...learning.mod_dnn import (
    CNNRegressor,
    DeepMUSIC,
    MoDDNN,
    MultiTaskAutoencoder,
    autoencoder_targets,
    branch_covariances,
    build_subregion_ssr,
    csi_to_real,
    gaussian_labels,
    normalize_csi,
    one_hot_labels,
    recalibrate_batchnorm,
)
from ...learning.store import ModelStore
from ...learning.training import fit
from ...seeding import derive_seed, make_generator
from . import scenario as scenario_module
from .config import ModelsConfig, ScenarioConfig, TrainSettings
from .scenario import grid_angles, nearest_grid_index, subregion_bounds, subregion_of

__all__ = [
    "TrainingData",
    "TrainedModels",
    "METHODS",
    "train_autoencoder",
    "train_ssr",
    "train_deepmusic",
    "train_cnn",
    "train_all",
    "estimate",
    "subregion_dictionaries",
]

#: the methods of the seed's figures, in plotting order
METHODS = ("MUSIC", "DBF", "DeepMUSIC", "CNN", "MoD-DNN")


class TrainingData:
    """Labelled CSI for training: ``csi`` ``(S, M, K)``, ``aoa`` ``(S,)`` radians, ``clean``
    (optional noise-free CSI), and ``identity``, a JSON-able description of where they come from
    (part of every model key).  Give the tensors, or a ``factory() -> (csi, aoa, clean)`` that is
    called only when a model has to be trained (a cached model needs no data)."""

    def __init__(self, identity: dict[str, Any], csi: torch.Tensor | None = None, aoa: torch.Tensor | None = None,
                 clean: torch.Tensor | None = None, factory: Callable[[], tuple] | None = None):
        if factory is None and (csi is None or aoa is None):
            raise ValueError("TrainingData needs csi and aoa, or a factory")
        self.identity = identity
        self._data = None if factory is not None else (csi, aoa, clean)
        self._factory = factory

    def _get(self):
        if self._data is None:
            self._data = tuple(self._factory())
        return self._data

    @property
    def csi(self) -> torch.Tensor:
        return self._get()[0]

    @property
    def aoa(self) -> torch.Tensor:
        return self._get()[1]

    @property
    def clean(self) -> torch.Tensor | None:
        return self._get()[2]


@dataclass
class TrainedModels:
    """The trained receivers of one training set (``None`` where not trained) + artifact records
    and training logs by name."""

    autoencoder: MultiTaskAutoencoder | None = None
    moddnn: MoDDNN | None = None
    deepmusic: DeepMUSIC | None = None
    cnn: CNNRegressor | None = None
    records: list[dict[str, str]] = field(default_factory=list)
    logs: dict[str, dict[str, Any]] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------
def _batches(name: str, seed: int, num: int, batch: int) -> Callable[[int], torch.Tensor]:
    per_epoch = max(1, math.ceil(num / batch))
    cache: dict[int, torch.Tensor] = {}

    def indices(t: int) -> torch.Tensor:
        e, j = divmod(t, per_epoch)
        if e not in cache:
            cache.clear()
            cache[e] = torch.randperm(num, generator=make_generator(seed, name, "epoch", e))
        return cache[e][j * batch:(j + 1) * batch]

    return indices


def _code():
    return (mod_dnn, scenario_module, __import__(__name__, fromlist=["_"]))


def _log_of(store: ModelStore, record) -> dict[str, Any]:
    return store.metadata(record).get("log", {})


def subregion_dictionaries(scenario: ScenarioConfig, assumed_array, dtype=torch.complex64
                           ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per subregion the ideal dictionary ``(M, L_p)`` and grid ``(L_p,)`` (float32 grid)."""
    theta = grid_angles(scenario, torch.float64)
    A = assumed_array.steering(theta).to(torch.complex128)
    b = subregion_bounds(theta.numel(), scenario.grid.subregions)
    dicts = [A[:, b[p]:b[p + 1]].to(dtype) for p in range(len(b) - 1)]
    grids = [theta[b[p]:b[p + 1]].to(torch.float32 if dtype == torch.complex64 else torch.float64)
             for p in range(len(b) - 1)]
    return dicts, grids


def _fit(model, loss_fn, num: int, settings: TrainSettings, name: str, seed: int, checkpoint_dir, progress):
    cfg = settings.training_config(num)
    idx = _batches(name, seed, num, settings.batch_size)

    def step(t):
        return loss_fn(idx(t))

    return fit(model, step, cfg, progress=progress, what=name, checkpoint_dir=checkpoint_dir)


# ---------------------------------------------------------------------------------------
# the autoencoder
# ---------------------------------------------------------------------------------------
def train_autoencoder(store: ModelStore, data: TrainingData, scenario: ScenarioConfig, cfg: ModelsConfig, seed: int,
                      *, shared: bool = False, progress=None) -> tuple[MultiTaskAutoencoder, dict, dict]:
    """Train (or load) AE I (``shared=False``) or AE II on eq.-(10) targets."""
    a, P = scenario.array, scenario.grid.subregions
    name = "s2-autoencoder-ii" if shared else "s2-autoencoder-i"
    acfg = cfg.autoencoder

    def build():
        return MultiTaskAutoencoder(a.num_elements, a.num_subcarriers, acfg.hidden, P, shared=shared,
                                    generator=make_generator(seed, name, "init"))

    def train(model, ckpt):
        x = csi_to_real(normalize_csi(data.csi)).float()
        src = data.clean if (acfg.target == "clean" and data.clean is not None) else data.csi
        scale = (data.csi.abs() ** 2).mean((-2, -1)).clamp_min(1e-30).rsqrt()[:, None, None]
        tgt = csi_to_real(src * scale).float()
        sub = subregion_of(data.aoa, scenario)

        def loss(i):
            y = model.forward_real(x[i])
            t = autoencoder_targets(tgt[i], sub[i], P)
            return ((y - t) ** 2).sum((1, 2, 3)).mean()

        return _fit(model, loss, x.shape[0], acfg.training, name, seed, ckpt, progress)

    ident = {"data": data.identity, "scenario": scenario, "autoencoder": acfg, "shared": shared}
    model, rec = store.get_or_train(name, build, train, config=ident, seed=seed, code=_code())
    return model, rec, _log_of(store, rec)


# ---------------------------------------------------------------------------------------
# MoDL-SSR per subregion and the full pipeline
# ---------------------------------------------------------------------------------------
def _ssr_kwargs(s: SSRConfig) -> dict[str, Any]:
    cal = {"channels": s.channels, "kernel_size": s.kernel_size, "final_bn": s.final_bn,
           "coord_channel": s.coord_channel, "residual": s.residual,
           "norm_sets": s.iterations if s.bn_per_iteration else 1}
    return dict(iterations=s.iterations, cg_iterations=s.cg_iterations, lam=s.lam, mu=s.mu, eps=s.eps,
                attractor=s.attractor, nonnegative=s.nonnegative, data_term=s.data_term, init=s.init,
                learn_lambda=s.learn_lambda, calibrator=cal)


def _branch_inputs(data: TrainingData, ae: MultiTaskAutoencoder | None, p: int, mask: torch.Tensor,
                   dictionary: torch.Tensor, scenario: ScenarioConfig, oracle: bool) -> torch.Tensor:
    """η̂_p ``(S_p, L_p)`` of the training samples of subregion p (AE branch p, or the input itself)."""
    H = normalize_csi(data.csi[mask])
    with torch.no_grad():
        outs = []
        for s in range(0, H.shape[0], 4096):
            Hp = H[s:s + 4096] if oracle else ae(H[s:s + 4096])[:, p]
            outs.append(coarray_spectrum(branch_covariances(Hp), dictionary.to(Hp.dtype)).float())
    return torch.cat(outs) if outs else torch.zeros(0, dictionary.shape[-1])


def train_ssr(store: ModelStore, data: TrainingData, ae: MultiTaskAutoencoder, ae_record: dict,
              scenario: ScenarioConfig, assumed_array, cfg: ModelsConfig, seed: int, *, progress=None):
    """Train (or load) one MoDL-SSR per subregion on the AE outputs (or oracle inputs) of its
    own samples; returns the list of models, records and logs."""
    s = cfg.ssr
    dicts, _ = subregion_dictionaries(scenario, assumed_array)
    b = subregion_bounds(scenario.grid.size, scenario.grid.subregions)
    models, records, logs = [], [], {}
    for p, A in enumerate(dicts):
        name = f"s2-ssr-{p}"

        def build(A=A, name=name):
            return build_subregion_ssr([A], generator=make_generator(seed, name, "init"), **_ssr_kwargs(s))[0]

        def train(model, ckpt, p=p, A=A, name=name):
            sub, gidx = subregion_of(data.aoa, scenario), nearest_grid_index(data.aoa, scenario)
            mask = sub == p
            x = _branch_inputs(data, ae, p, mask, A, scenario, s.input == "oracle")
            local = (gidx[mask] - b[p]).clamp(0, A.shape[-1] - 1)
            if s.labels == "one_hot":
                y = one_hot_labels(local, A.shape[-1])
            else:
                pos = (torch.rad2deg(data.aoa[mask].double()) - scenario.grid.min_deg) / scenario.grid.step_deg - b[p]
                y = gaussian_labels(pos.float(), A.shape[-1], s.label_width_deg / scenario.grid.step_deg)

            def loss(i):
                return ((model(x[i]) - y[i]) ** 2).sum(-1).mean()

            log = _fit(model, loss, x.shape[0], s.training, name, seed, ckpt, progress)
            if s.precise_bn:  # eval-mode statistics of the final weights (recalibrate_batchnorm)
                order = torch.randperm(x.shape[0], generator=make_generator(seed, name, "precise-bn"))
                recalibrate_batchnorm(model, x[order], s.training.batch_size)
            return log

        ident = {"data": data.identity, "scenario": scenario, "ssr": s, "autoencoder": ae_record["key"]
                 if s.input == "autoencoder" else "oracle", "subregion": p}
        model, rec = store.get_or_train(name, build, train, config=ident, seed=seed, code=_code())
        models.append(model)
        records.append(rec)
        logs[name] = _log_of(store, rec)
    return models, records, logs


# ---------------------------------------------------------------------------------------
# learned baselines
# ---------------------------------------------------------------------------------------
def _music_labels(clean: torch.Tensor, scenario: ScenarioConfig, assumed_array) -> torch.Tensor:
    """DeepMUSIC labels: the ideal-manifold MUSIC spectrum of the noise-free covariance on the
    full grid, normalised to maximum 1 ``(S, L)``."""
    theta = grid_angles(scenario, torch.float64)
    A = assumed_array.steering(theta).to(torch.complex128)
    H = normalize_csi(clean.to(torch.complex128))
    R = H @ H.mH / H.shape[-1]
    R = R + 1e-6 * torch.eye(R.shape[-1], dtype=R.dtype)  # keep the noise subspace defined
    out = []
    for s in range(0, R.shape[0], 2048):
        sp = music_spectrum(R[s:s + 2048], A, 1)
        out.append((sp / sp.amax(-1, keepdim=True)).float())
    return torch.cat(out)


def train_deepmusic(store: ModelStore, data: TrainingData, scenario: ScenarioConfig, assumed_array,
                    cfg: ModelsConfig, seed: int, *, progress=None) -> tuple[DeepMUSIC, dict, dict]:
    """Train (or load) DeepMUSIC on the ideal-manifold MUSIC spectra of the noise-free CSI."""
    d = cfg.deepmusic
    b = subregion_bounds(scenario.grid.size, scenario.grid.subregions)
    sizes = [b[p + 1] - b[p] for p in range(len(b) - 1)]
    name = "s2-deepmusic"

    def build():
        torch.manual_seed(derive_seed(seed, name, "init"))  # nn's default init (global RNG restored below)
        return DeepMUSIC(scenario.array.num_elements, sizes, d.channels, d.hidden, d.dropout)

    def train(model, ckpt):
        H = normalize_csi(data.csi)
        R = (H @ H.mH / H.shape[-1]).to(torch.complex64)
        y = _music_labels(data.clean if data.clean is not None else data.csi, scenario, assumed_array)

        def loss(i):
            return ((model(R[i]) - y[i]) ** 2).mean()

        return _fit(model, loss, R.shape[0], d.training, name, seed, ckpt, progress)

    ident = {"data": data.identity, "scenario": scenario, "deepmusic": d}
    with torch.random.fork_rng(devices=[]):
        model, rec = store.get_or_train(name, build, train, config=ident, seed=seed, code=_code())
    return model, rec, _log_of(store, rec)


def train_cnn(store: ModelStore, data: TrainingData, scenario: ScenarioConfig, cfg: ModelsConfig, seed: int,
              *, progress=None) -> tuple[CNNRegressor, dict, dict]:
    """Train (or load) the CNN AoA regressor (MSE on the angle in radians)."""
    c = cfg.cnn
    name = "s2-cnn"
    a = scenario.array

    def build():
        torch.manual_seed(derive_seed(seed, name, "init"))
        return CNNRegressor(a.num_elements, a.num_subcarriers, c.channels, c.hidden,
                            max_angle=math.radians(max(abs(scenario.grid.min_deg), abs(scenario.grid.max_deg))))

    def train(model, ckpt):
        H = normalize_csi(data.csi).to(torch.complex64)
        y = data.aoa.float()

        def loss(i):
            return ((model(H[i]) - y[i]) ** 2).mean()

        return _fit(model, loss, H.shape[0], c.training, name, seed, ckpt, progress)

    ident = {"data": data.identity, "scenario": scenario, "cnn": c}
    with torch.random.fork_rng(devices=[]):
        model, rec = store.get_or_train(name, build, train, config=ident, seed=seed, code=_code())
    return model, rec, _log_of(store, rec)


def train_all(store: ModelStore, data: TrainingData, scenario: ScenarioConfig, assumed_array, cfg: ModelsConfig,
              seed: int, *, methods=METHODS, progress=None) -> TrainedModels:
    """Train (or load) every learned receiver in ``methods`` on ``data``."""
    out = TrainedModels()
    if "MoD-DNN" in methods:
        ae, rec, log = train_autoencoder(store, data, scenario, cfg, seed, progress=progress)
        ssr, recs, logs = train_ssr(store, data, ae, rec, scenario, assumed_array, cfg, seed, progress=progress)
        dicts, grids = subregion_dictionaries(scenario, assumed_array)
        out.autoencoder = ae
        out.moddnn = MoDDNN(ae, ssr, dicts, grids, branch=cfg.ssr.branch).eval()
        out.records += [rec, *recs]
        out.logs.update({rec["name"]: log, **logs})
    if "DeepMUSIC" in methods:
        out.deepmusic, rec, log = train_deepmusic(store, data, scenario, assumed_array, cfg, seed, progress=progress)
        out.records.append(rec)
        out.logs[rec["name"]] = log
    if "CNN" in methods:
        out.cnn, rec, log = train_cnn(store, data, scenario, cfg, seed, progress=progress)
        out.records.append(rec)
        out.logs[rec["name"]] = log
    return out


# ---------------------------------------------------------------------------------------
# evaluation
# ---------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=8)
def _search_grid(min_deg: float, max_deg: float, step_deg: float) -> SearchGrid:
    return SearchGrid.degrees(min_deg, max_deg, step_deg)  # one object per grid: its dictionaries are cached


def _grid(scenario: ScenarioConfig) -> SearchGrid:
    g = scenario.grid
    return _search_grid(g.min_deg, g.max_deg, g.step_deg)


def estimate(method: str, csi: torch.Tensor, scenario: ScenarioConfig, assumed_array,
             models: TrainedModels | None = None, chunk: int = 2048) -> torch.Tensor:
    r"""AoA estimates ``(S,)`` radians of ``method`` for CSI ``(S, M, K)`` (no gradients).

    MUSIC / DBF: the sample covariance R̂ = H Hᴴ / K of the normalised CSI, grid-only search
    on the seed's grid with the ideal manifold.
    """
    out = []
    with torch.no_grad():
        for s in range(0, csi.shape[0], chunk):
            H = normalize_csi(csi[s:s + chunk])
            if method in ("MUSIC", "DBF"):
                R = (H @ H.mH / H.shape[-1]).to(torch.complex128)
                f = music_doa if method == "MUSIC" else bartlett_doa
                res = f(R, assumed_array, 1, _grid(scenario), grid_only=True)
                out.append(res.estimates[..., 0, 0].float())
            elif method == "MoD-DNN":
                out.append(models.moddnn.predict(H.to(torch.complex64)).float())
            elif method == "DeepMUSIC":
                R = (H @ H.mH / H.shape[-1]).to(torch.complex64)
                sp = models.deepmusic(R)
                out.append(grid_angles(scenario, torch.float32)[sp.argmax(-1)])
            elif method == "CNN":
                out.append(models.cnn(H.to(torch.complex64)).float())
            else:
                raise ValueError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    return torch.cat(out) if out else torch.zeros(0)
