r"""The experiment registry, the catalogue of specs, and spec resolution.

* :class:`Experiment` — base class: ``points(config)`` expands a config into sweep points,
  ``run_unit(config, unit, device)`` computes one work unit and returns rows.
* :func:`register_experiment` — class decorator that adds an experiment to the registry
  together with its config model.
* :func:`get_experiment` — name → experiment class: registered in this process, else the
  built-in table (:data:`isackit.experiments.plugins.BUILTIN`), else an installed plug-in
  from the ``isackit.experiments`` entry-point group (``[project.entry-points."isackit.experiments"]
  myexp = "mypackage.myexp"`` in the plug-in's ``pyproject.toml``).  Nothing else is ever
  imported: a spec names an experiment, not a module.
* The catalogue — the ``*.toml`` files shipped in ``isackit/experiments/catalogue/``; the
  file stem is the name ``isackit run NAME`` accepts.
* :func:`resolve_spec` — NAME or FILE + ``--quick`` + overrides → a validated config and the
  experiment that runs it.
"""

from __future__ import annotations

import importlib
import itertools
import tomllib
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .config import (
    ExperimentConfig,
    ExperimentError,
    apply_overrides,
    flatten,
    read_toml,
    validate_config,
)
from .config import safe_name
from .plugins import BUILTIN

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import torch

    from .units import Row, UnitResult, WorkUnit

__all__ = [
    "Experiment",
    "register_experiment",
    "EXPERIMENTS",
    "get_experiment",
    "known_experiments",
    "ENTRY_POINT_GROUP",
    "CATALOGUE_DIR",
    "HEADLINE_EXPERIMENT",
    "FALLBACK_EXPERIMENT",
    "catalogue",
    "default_experiment",
    "ResolvedSpec",
    "resolve_spec",
]

#: The experiment ``isackit run`` runs with no argument (S0, unsupervised calibration), if
#: its catalogue entry exists; otherwise :data:`FALLBACK_EXPERIMENT`.
HEADLINE_EXPERIMENT = "calibration"
FALLBACK_EXPERIMENT = "doa"

CATALOGUE_DIR = Path(__file__).parent / "catalogue"

#: Entry-point group through which installed packages add experiments (name -> module or
#: ``module:object``).
ENTRY_POINT_GROUP = "isackit.experiments"


class Experiment:
    """Base class of registered experiments.

    Class attributes (set by :func:`register_experiment`): ``name``, ``config_model``,
    ``description``.  Optional: ``x_axis`` — the swept parameter figures put on the x-axis
    (default: the first numeric swept parameter); ``log_y`` — log-scale y-axis (default True);
    ``labels`` — axis labels with units for result columns and metrics, e.g.
    ``{"snr_db": "SNR (dB)", "rmse_deg": "RMSE (°)"}`` (default: derived from the name, see
    :func:`isackit.experiments.report.label`).

    Subclasses implement :meth:`run_unit` and, unless the config has a ``sweep`` table of
    lists (whose cartesian product is the default), :meth:`points`.  Optional hooks:

    * ``summary(self, df) -> (DataFrame, list[str])`` — the compact table printed at the end
      of ``isackit run`` and by ``isackit show`` (one row per method, key metrics as columns,
      bounds beside them) and the headline-ratio lines; default:
      :func:`isackit.experiments.report.generic_summary`;
    * ``figures(self, df, meta, out_dir, run_dir) -> list[Path]`` — the experiment's own
      figures, drawn after the generic per-metric ones
      (:func:`isackit.experiments.plotting.plot_results`; ``run_dir`` is the run folder, for
      per-unit data);
    * ``unit_memory(self, config) -> (bytes, what) | None`` — an estimate of the peak memory
      one work unit (``config.chunk`` trials) needs and the config values it grows with; the
      runner refuses a run whose units cannot fit before it starts.
    """

    name: ClassVar[str] = "experiment"
    config_model: ClassVar[type[ExperimentConfig]] = ExperimentConfig
    description: ClassVar[str] = ""
    x_axis: ClassVar[str | None] = None
    log_y: ClassVar[bool] = True
    labels: ClassVar[dict[str, str]] = {}
    #: False: skip the generic one-figure-per-metric plots (an experiment whose own ``figures``
    #: hook draws everything, and whose metrics are many, e.g. one per iteration or bin)
    generic_figures: ClassVar[bool] = True

    def points(self, config: ExperimentConfig) -> list[dict[str, Any]]:
        """Sweep points: a list of ``{parameter: scalar}``; the keys become result columns.

        Default: the cartesian product of ``config.sweep`` (a mapping or model of lists),
        in the order the parameters are declared.
        """
        sweep = getattr(config, "sweep", None)
        if sweep is None:
            return [{}]
        table = sweep.model_dump() if hasattr(sweep, "model_dump") else dict(sweep)
        names = list(table)
        return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*table.values())]

    def run_unit(self, config: ExperimentConfig, unit: WorkUnit,
                 device: torch.device) -> list[Row] | UnitResult:
        """Simulate ``unit.trials`` trials at ``unit.point`` as one batch on ``device``.

        Use ``unit.generator(device)`` for all randomness.  Return rows built with
        :func:`~isackit.experiments.units.rmse_row`, ``mean_row`` and ``bound_row``, or a
        :class:`~isackit.experiments.units.UnitResult` (rows + the model files used).
        """
        raise NotImplementedError

    def summary(self, df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
        """Compact table + headline lines (see the class docstring); generic by default."""
        from .report import generic_summary

        return generic_summary(df, bounds=_bounds_of(df), x_axis=self.x_axis)

    def unit_memory(self, config: ExperimentConfig) -> tuple[float, str] | None:
        """Peak bytes one work unit needs and what they grow with; None: unknown."""
        return None


def _bounds_of(df) -> list[str]:
    """Methods reported as bounds (n_trials = 0 on every row)."""
    if df is None or len(df) == 0:
        return []
    g = df.groupby("method", sort=False)["n_trials"].max()
    return [str(m) for m, n in g.items() if n == 0]


EXPERIMENTS: dict[str, type[Experiment]] = {}


def register_experiment(name: str, *, config_model: type[ExperimentConfig], description: str = ""):
    """Decorator: register an :class:`Experiment` subclass under ``name``.

    >>> class ToyConfig(ExperimentConfig):
    ...     sweep: dict[str, list[float]] = {"x": [1.0, 2.0]}
    >>> @register_experiment("doc-toy", config_model=ToyConfig, description="a toy sweep")
    ... class Toy(Experiment):
    ...     def run_unit(self, config, unit, device):
    ...         return []
    >>> get_experiment("doc-toy") is Toy, Toy().points(ToyConfig(experiment="doc-toy"))
    (True, [{'x': 1.0}, {'x': 2.0}])

    A plain function ``run_unit(config, unit, device) -> rows`` may be decorated instead; it
    becomes an experiment whose sweep is the cartesian product of ``config.sweep``.  The
    decorator returns the :class:`Experiment` class (for a function: the generated class).
    """
    if not (isinstance(config_model, type) and issubclass(config_model, ExperimentConfig)):
        raise TypeError("config_model must be a subclass of isackit.experiments.ExperimentConfig")

    def deco(cls):
        if callable(cls) and not isinstance(cls, type):  # a plain run_unit function
            fn = cls
            cls = type(f"{fn.__name__}_experiment", (Experiment,), {
                "run_unit": lambda self, config, unit, device: fn(config, unit, device),
                "__doc__": fn.__doc__, "__module__": fn.__module__})
        if not (isinstance(cls, type) and issubclass(cls, Experiment)):
            raise TypeError(f"@register_experiment({name!r}) decorates an Experiment subclass or a "
                            "function run_unit(config, unit, device)")
        old = EXPERIMENTS.get(name)
        if old is not None and old.__qualname__ != cls.__qualname__:
            raise ValueError(f"an experiment named {name!r} is already registered ({old.__qualname__})")
        cls.name = name
        cls.config_model = config_model
        cls.description = description or cls.description or (cls.__doc__ or "").strip().split("\n")[0]
        EXPERIMENTS[name] = cls
        return cls

    return deco


def _entry_points() -> dict[str, Any]:
    try:
        return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    except Exception:  # pragma: no cover - a broken installed distribution must not break the CLI
        return {}


def known_experiments() -> list[str]:
    """Every experiment name available: registered in this process, built in, or installed."""
    return sorted(set(EXPERIMENTS) | set(BUILTIN) | set(_entry_points()))


def get_experiment(name: str) -> type[Experiment]:
    """The experiment registered as ``name``, importing its built-in module
    (:data:`~isackit.experiments.plugins.BUILTIN`) or loading its installed plug-in (entry
    point group :data:`ENTRY_POINT_GROUP`) on first use.

    Raises :class:`ExperimentError` when no experiment has that name (or its plug-in fails
    to load)."""
    if not isinstance(name, str):
        raise ExperimentError(f"experiment must be a name (a string), got {name!r}")
    if name not in EXPERIMENTS:
        if name in BUILTIN:
            importlib.import_module(BUILTIN[name])  # our own code: an import error is a bug, not user input
        else:
            ep = _entry_points().get(name)
            if ep is not None:
                try:
                    ep.load()
                except Exception as exc:
                    raise ExperimentError(f"the plug-in {ep.value!r} of experiment {name!r} failed to load: "
                                          f"{type(exc).__name__}: {exc}") from None
    if name not in EXPERIMENTS:
        raise ExperimentError(f"no experiment {name!r} is registered; available: {', '.join(known_experiments())} "
                              f"(third-party plug-ins register through the {ENTRY_POINT_GROUP!r} entry-point group)")
    return EXPERIMENTS[name]


def catalogue() -> dict[str, Path]:
    """Catalogue entries shipped with the package: ``{name: path}``, sorted by name."""
    return {p.stem: p for p in sorted(CATALOGUE_DIR.glob("*.toml"))}


def catalogue_description(path: Path) -> str:
    """The ``description`` of a catalogue entry, read without importing its module."""
    try:
        with path.open("rb") as fh:
            return str(tomllib.load(fh).get("description", ""))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        return f"(unreadable: {exc})"


def default_experiment() -> str:
    """What ``isackit run`` runs with no argument."""
    return HEADLINE_EXPERIMENT if HEADLINE_EXPERIMENT in catalogue() else FALLBACK_EXPERIMENT


@dataclass(frozen=True)
class ResolvedSpec:
    """A validated spec: ``name`` (catalogue name or file stem), its ``config``, the
    :class:`Experiment` class, and where it came from."""

    name: str
    config: ExperimentConfig
    experiment: type[Experiment]
    source: str


def _looks_like_path(target: str) -> bool:
    return target.endswith(".toml") or "/" in target or "\\" in target


def resolve_spec(
    target: str | None = None,
    *,
    quick: bool = False,
    smoke: bool = False,
    overrides: list[tuple[str, Any]] | None = None,
) -> ResolvedSpec:
    """NAME (catalogue) or FILE (``.toml`` path) → :class:`ResolvedSpec`.

    The name (a catalogue entry, or the file's stem) names the run folder and is made safe
    for that (:func:`~isackit.experiments.store.safe_name`).  ``quick`` applies the spec's
    ``[quick]`` table; ``smoke`` applies ``[quick]`` and then the
    spec's optional ``[smoke]`` table (the tiny size at which CI checks that an entry runs end
    to end: training-heavy entries whose quick profile takes minutes shrink further there, so
    a smoke run checks the pipeline, not the outcomes); ``overrides`` are ``(dotted key,
    value)`` pairs applied last.  Raises :class:`ExperimentError` for every user mistake.
    """
    target = target or default_experiment()
    entries = catalogue()
    if target in entries:
        path, name = entries[target], target
    elif _looks_like_path(target) or Path(target).is_file():
        path, name = Path(target), Path(target).stem
        if not path.is_file():
            raise ExperimentError(f"spec file not found: {target}")
    else:
        raise ExperimentError(f"unknown experiment {target!r}; available: {', '.join(entries) or 'none'} "
                              "(or pass a path to a .toml spec)")
    data = read_toml(path)
    quick_table = data.pop("quick", {})
    if not isinstance(quick_table, dict):
        raise ExperimentError(f"{path}: [quick] must be a table of overrides")
    smoke_table = data.pop("smoke", {})
    if not isinstance(smoke_table, dict):
        raise ExperimentError(f"{path}: [smoke] must be a table of overrides")
    items: list[tuple[str, Any]] = list(flatten(quick_table).items()) if (quick or smoke) else []
    if smoke:
        items += list(flatten(smoke_table).items())
    items += list(overrides or [])
    data = apply_overrides(data, items)
    kind = data.get("experiment")
    if not isinstance(kind, str):
        raise ExperimentError(f"{path}: missing key 'experiment' (the registered experiment that runs it)")
    if path.name == "config.toml" and target not in entries:  # a saved run config: name it by its experiment
        name = kind
    name = safe_name(name, fallback=safe_name(kind, fallback="run"))
    exp = get_experiment(kind)
    config = validate_config(exp.config_model, data, name)
    return ResolvedSpec(name=name, config=config, experiment=exp, source=str(path))
