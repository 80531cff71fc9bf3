r"""Experiments (layer 8): declarative specs, a resumable seeded sweep runner, engines, results.

How an experiment is put together — and how to add one (plug-in guide)
=======================================================================

1. **A config model.**  Subclass :class:`ExperimentConfig` (pydantic, via
   :class:`isackit._config.StrictModel`: unknown keys, wrong types and NaN/±inf are rejected)
   and add your fields.  The base already has ``experiment``, ``description``, ``seed``,
   ``trials`` (Monte Carlo trials per sweep point), ``chunk`` (trials per work unit) and
   ``device``.  Nest ``StrictModel`` subclasses for groups of fields (scenario, receiver,
   training, evaluation) and use ``list[...]`` for sequences.  A field named ``sweep``
   holding lists makes the default sweep the cartesian product of those lists.  A path a
   config sets is a :data:`RelativePath` placed inside the run folder or the model cache::

       class SweepSpec(StrictModel):
           snr_db: list[float] = [0.0, 10.0, 20.0]

       class PositioningConfig(ExperimentConfig):
           elements: int = Field(32, ge=2)
           sweep: SweepSpec = SweepSpec()

2. **An experiment class**, registered with its config model::

       from isackit.experiments import Experiment, register_experiment, rmse_row, bound_row

       @register_experiment("positioning", config_model=PositioningConfig,
                            description="position RMSE vs SNR against the PEB")
       class Positioning(Experiment):
           x_axis = "snr_db"          # swept parameter on the figures' x-axis
           log_y = True
           labels = {"position_rmse_m": "Position RMSE (m)"}   # optional axis labels

           def points(self, config):             # optional (default: product of config.sweep)
               return [{"snr_db": s} for s in config.sweep.snr_db]

           def run_unit(self, config, unit, device):
               g = unit.generator(device)         # the ONLY source of randomness
               B = unit.trials                     # simulate B trials as one batch
               snr = unit.point["snr_db"]
               err = ...                           # (B, ...) errors of one method
               rows = [rmse_row(method_obj.name, "position_rmse_m", err, B)]
               if unit.chunk_index == 0:           # bounds once per point
                   rows.append(bound_row(peb.name, "position_rmse_m", value))
               return rows                         # or UnitResult(rows, artifacts=[...])

   (A plain function ``run_unit(config, unit, device)`` may be decorated instead of a class;
   its sweep is then the cartesian product of ``config.sweep``.)

   ``run_unit`` must be a pure function of ``(config, unit.point, unit.seed, unit.trials)``:
   use only ``unit.generator(device)`` (or :func:`isackit.seeding.make_generator` with
   ``unit.seed``) for randomness, batch over trials (no Python loop over trials), and return
   rows of partial sums: :func:`rmse_row` (sum of squared errors → exact RMSE over chunks),
   :func:`mean_row` (rates, averages), :func:`bound_row` (computed bounds, method name e.g.
   ``"CRB"``, ``"MCRB"``, ``"PEB"``).  Method names and labels come from the objects that
   computed the numbers (an estimator's or bound's ``name``).  Use the same ``metric`` name
   for an estimator and the bound it is compared with: they share a figure, the bound drawn
   dashed.

   A unit that uses model files (trained networks from :mod:`isackit.learning.store`) returns
   :class:`UnitResult` ``(rows, artifacts)``; each artifact is ``{"name", "path", "sha256",
   "key"}``.  The runner stores them in the unit file and lists them in the run folder's
   ``models.json``.  Long units report progress within the unit through
   ``unit.progress(done, total, what)`` when it is not ``None`` (pass it to
   ``fit(..., progress=unit.progress)``).

   Optional hooks: ``summary(self, df) -> (table, lines)`` (the compact table — one row per
   method, key metrics as columns, bounds beside them — and headline ratios printed at the
   end of ``isackit run``; default :func:`~isackit.experiments.report.generic_summary`),
   ``figures(self, df, meta, out_dir, run_dir)`` (the experiment's own figures) and
   ``unit_memory(self, config) -> (bytes, what)`` (lets the runner refuse a run that cannot
   fit, before it starts).

3. **Registration by name.**  A built-in experiment lives in
   ``isackit/experiments/plugins/<name>.py`` and has one line in the static table
   :data:`isackit.experiments.plugins.BUILTIN`; a third-party package declares an entry point
   in the ``isackit.experiments`` group (``myexp = "mypackage.myexp"``).  A spec names only
   the experiment; it never names a module to import.

4. **A catalogue entry** ``src/isackit/experiments/catalogue/<name>.toml`` (the file stem
   is what ``isackit run <name>`` accepts)::

       experiment = "positioning"
       description = "S4: position RMSE vs SNR against the PEB (seed 004)"
       trials = 2000
       chunk = 500

       [sweep]
       snr_db = [-5.0, 0.0, 5.0, 10.0, 20.0, 30.0]

       [quick]                  # applied by --quick; CI runs every entry at this size
       trials = 8
       chunk = 4
       "sweep.snr_db" = [0.0, 20.0]

   Keep ``[quick]`` tiny (seconds on 2 CPU cores) or add a ``[smoke]`` table:
   ``tests/test_experiments_catalogue.py`` runs every catalogue entry with ``--smoke`` in CI.
   Several entries may run the same experiment with different settings.  A user may also
   run any spec file by path.

Running: :func:`resolve_spec` (NAME or FILE, ``quick``, ``--set`` overrides) →
:func:`run_experiment` (engine, run folder, resume) → ``runs/<name>/<timestamp>-<hash>/``
with ``config.toml``, ``env.json``, ``run.lock``, ``units/`` (checksummed), ``results.parquet``
(tidy: one row per (sweep point, method, metric); columns ``method, metric, value, n_trials``
+ one per swept parameter), ``models.json``, ``summary.md`` and ``figures/``.  The CLI (``isackit run/list/show/plot``) is a
thin layer over these functions.

``isackit run`` with no argument runs :data:`HEADLINE_EXPERIMENT` (``"calibration"``, S0)
when its catalogue entry exists, else :data:`FALLBACK_EXPERIMENT` (``"doa"``).
"""

import importlib
from typing import TYPE_CHECKING

# Names are imported from their modules on first use (PEP 562), so that importing one light
# module (``isackit.experiments.errors`` for the CLI's error handling) does not pull in
# torch, pandas and every plug-in.
_EXPORTS = {
    "config": ["ExperimentConfig", "RelativePath", "apply_overrides", "config_hash", "inside", "parse_override",
               "to_toml"],
    "errors": ["ExperimentError"],
    "engines": ["InProcessEngine", "RayEngine", "make_engine"],
    "registry": ["CATALOGUE_DIR", "ENTRY_POINT_GROUP", "EXPERIMENTS", "FALLBACK_EXPERIMENT", "HEADLINE_EXPERIMENT",
                 "Experiment", "ResolvedSpec", "catalogue", "default_experiment", "get_experiment",
                 "known_experiments", "register_experiment", "resolve_spec"],
    "runner": ["RunResult", "aggregate", "plan_units", "resolve_device", "run_experiment", "summarize"],
    "store": ["RunStore", "find_run", "load_results"],
    "units": ["Row", "UnitResult", "WorkUnit", "bound_row", "mean_row", "rmse_row", "unit_seed"],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_WHERE))


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from .config import (ExperimentConfig, RelativePath, apply_overrides, config_hash, inside, parse_override,
                         to_toml)
    from .engines import InProcessEngine, RayEngine, make_engine
    from .errors import ExperimentError
    from .registry import (CATALOGUE_DIR, ENTRY_POINT_GROUP, EXPERIMENTS, FALLBACK_EXPERIMENT, HEADLINE_EXPERIMENT,
                           Experiment, ResolvedSpec, catalogue, default_experiment, get_experiment,
                           known_experiments, register_experiment, resolve_spec)
    from .runner import RunResult, aggregate, plan_units, resolve_device, run_experiment, summarize
    from .store import RunStore, find_run, load_results
    from .units import Row, UnitResult, WorkUnit, bound_row, mean_row, rmse_row, unit_seed

__all__ = [
    "CATALOGUE_DIR",
    "ENTRY_POINT_GROUP",
    "EXPERIMENTS",
    "FALLBACK_EXPERIMENT",
    "HEADLINE_EXPERIMENT",
    "Experiment",
    "ExperimentConfig",
    "ExperimentError",
    "InProcessEngine",
    "RayEngine",
    "RelativePath",
    "ResolvedSpec",
    "Row",
    "RunResult",
    "RunStore",
    "UnitResult",
    "WorkUnit",
    "aggregate",
    "apply_overrides",
    "bound_row",
    "catalogue",
    "config_hash",
    "default_experiment",
    "find_run",
    "get_experiment",
    "inside",
    "known_experiments",
    "load_results",
    "make_engine",
    "mean_row",
    "parse_override",
    "plan_units",
    "register_experiment",
    "resolve_device",
    "resolve_spec",
    "rmse_row",
    "run_experiment",
    "summarize",
    "to_toml",
    "unit_seed",
]
