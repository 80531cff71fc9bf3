r"""Execution engines: where work units run.

* :class:`InProcessEngine` (default) — units run one after another in this process, each
  as one batch on the config's device.
* :class:`RayEngine` (``--engine ray [--address HOST:PORT]``) — one Ray task per work unit;
  a task asks for one GPU when the device is CUDA (one CPU otherwise).  Ray is an optional
  extra (``pip install "isackit[ray]"``) imported only here, on use.  Without ``address`` a
  local Ray instance is started; ``address="auto"`` joins a running cluster.

Both call ``on_done(unit, rows, seconds)`` in the driver as each unit finishes, so the
runner stores it at once; results do not depend on the engine (see
:mod:`isackit.experiments.units` for the seeding).
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from .config import ExperimentError
from .units import Row, WorkUnit

__all__ = ["Engine", "InProcessEngine", "RayEngine", "make_engine", "execute_unit", "ENGINES"]

OnDone = Callable[[WorkUnit, list[Row], float], None]


def execute_unit(experiment_name: str, module: str | None, config_data: dict[str, Any],
                 unit: WorkUnit, device: str) -> tuple[list[Row], float]:
    """Run one unit from plain data (what a remote worker receives): look the experiment
    up (importing its module), re-validate the config, run, time it."""
    from .registry import get_experiment
    from .config import validate_config

    exp_cls = get_experiment(experiment_name, module)
    config = validate_config(exp_cls.config_model, config_data, experiment_name)
    t0 = time.perf_counter()
    rows = exp_cls().run_unit(config, unit, torch.device(device))
    return list(rows), time.perf_counter() - t0


class Engine:
    name = "engine"

    def run(self, experiment, config, units: Sequence[WorkUnit], device: torch.device,
            on_done: OnDone) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class InProcessEngine(Engine):
    """Run the units sequentially in this process."""

    name = "inprocess"

    def run(self, experiment, config, units, device, on_done):
        exp = experiment()
        for unit in units:
            t0 = time.perf_counter()
            rows = list(exp.run_unit(config, unit, device))
            on_done(unit, rows, time.perf_counter() - t0)


def _import_ray():
    try:
        return importlib.import_module("ray")
    except ImportError:
        raise ExperimentError("--engine ray needs Ray: pip install \"isackit[ray]\"") from None


class RayEngine(Engine):
    """One Ray task per work unit (GPU-aware); stores results as tasks finish."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None):
        self.address = address
        self.num_cpus = num_cpus

    def _init(self, ray) -> None:
        if ray.is_initialized():
            return
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                  "configure_logging": False}
        if self.address:
            kwargs["address"] = self.address
        else:  # a local instance on this machine, on loopback only
            kwargs["_node_ip_address"] = "127.0.0.1"
            if self.num_cpus:
                kwargs["num_cpus"] = self.num_cpus
        try:
            ray.init(**kwargs)
        except ConnectionError as exc:
            raise ExperimentError(f"cannot connect to the Ray cluster at {self.address!r}: {exc}") from None

    def run(self, experiment, config, units, device, on_done):
        ray = _import_ray()
        self._init(ray)
        gpus = 1 if device.type == "cuda" else 0
        task = ray.remote(execute_unit).options(num_cpus=1, num_gpus=gpus, max_retries=1)
        data = config.model_dump(mode="json")
        module = config.module or experiment.__module__
        if module == "__main__":
            raise ExperimentError(f"experiment {experiment.name!r} is defined in a script; Ray workers cannot "
                                  "import it: move it to a module and name that module in the spec (module = ...)")
        pending = {task.remote(experiment.name, module, data, unit, str(device)): unit for unit in units}
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    unit = pending.pop(ref)
                    rows, seconds = ray.get(ref)
                    on_done(unit, rows, seconds)
        finally:
            for ref in pending:
                ray.cancel(ref)


ENGINES = ("inprocess", "ray")


def make_engine(name: str, address: str | None = None) -> Engine:
    """``"inprocess"`` or ``"ray"`` (``address`` only for Ray)."""
    if name == "inprocess":
        if address:
            raise ExperimentError("--address is only used with --engine ray")
        return InProcessEngine()
    if name == "ray":
        return RayEngine(address)
    raise ExperimentError(f"unknown engine {name!r}; choose one of: {', '.join(ENGINES)}")
