r"""The experiment registry, the catalogue of specs, and spec resolution.

* :class:`Experiment` — base class: ``points(config)`` expands a config into sweep points,
  ``run_unit(config, unit, device)`` computes one work unit and returns rows.
* :func:`register_experiment` — class decorator that adds an experiment to the registry
  together with its config model.
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
from pathlib import Path
from typing import Any, ClassVar

import torch

from .config import (
    ExperimentConfig,
    ExperimentError,
    apply_overrides,
    flatten,
    read_toml,
    validate_config,
)
from .units import Row, WorkUnit

__all__ = [
    "Experiment",
    "register_experiment",
    "EXPERIMENTS",
    "get_experiment",
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


class Experiment:
    """Base class of registered experiments.

    Class attributes (set by :func:`register_experiment`): ``name``, ``config_model``,
    ``description``.  Optional: ``x_axis`` — the swept parameter figures put on the x-axis
    (default: the first numeric swept parameter); ``log_y`` — log-scale y-axis (default True).

    Subclasses implement :meth:`run_unit` and, unless the config has a ``sweep`` table of
    lists (whose cartesian product is the default), :meth:`points`.  Optional hook:
    ``figures(self, df, meta, out_dir, run_dir) -> list[Path]`` draws the experiment's own
    figures after the generic per-metric ones (:func:`isackit.plotting.plot_results`; used by
    ``isackit run`` and ``isackit plot``; ``run_dir`` is the run folder, for per-unit data).
    """

    name: ClassVar[str] = "experiment"
    config_model: ClassVar[type[ExperimentConfig]] = ExperimentConfig
    description: ClassVar[str] = ""
    x_axis: ClassVar[str | None] = None
    log_y: ClassVar[bool] = True

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

    def run_unit(self, config: ExperimentConfig, unit: WorkUnit, device: torch.device) -> list[Row]:
        """Simulate ``unit.trials`` trials at ``unit.point`` as one batch on ``device``.

        Use ``unit.generator(device)`` for all randomness.  Return rows built with
        :func:`~isackit.experiments.units.rmse_row`, ``mean_row`` and ``bound_row``.
        """
        raise NotImplementedError


EXPERIMENTS: dict[str, type[Experiment]] = {}


def register_experiment(name: str, *, config_model: type[ExperimentConfig], description: str = ""):
    """Decorator: register an :class:`Experiment` subclass under ``name``.

    >>> @register_experiment("toy", config_model=ToyConfig, description="a toy sweep")
    ... class Toy(Experiment):
    ...     def run_unit(self, config, unit, device): ...

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


def get_experiment(name: str, module: str | None = None) -> type[Experiment]:
    """Look up a registered experiment, importing ``module`` first if given."""
    if name not in EXPERIMENTS and module:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ExperimentError(f"cannot import module {module!r} for experiment {name!r}: {exc}") from None
    if name not in EXPERIMENTS:
        known = ", ".join(sorted(EXPERIMENTS)) or "none"
        raise ExperimentError(f"no experiment {name!r} is registered (registered: {known}); "
                              "a spec names its module with `module = \"...\"`")
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

    ``quick`` applies the spec's ``[quick]`` table; ``smoke`` applies ``[quick]`` and then the
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
    module = data.get("module")
    exp = get_experiment(kind, module if isinstance(module, str) else None)
    config = validate_config(exp.config_model, data, name)
    return ResolvedSpec(name=name, config=config, experiment=exp, source=str(path))
