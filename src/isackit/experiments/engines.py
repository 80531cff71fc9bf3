r"""Execution engines: where work units run.

* :class:`InProcessEngine` (default) — units run one after another in this process, each
  as one batch on the config's device; ``unit.progress`` reports progress inside a unit to
  the progress bar.
* :class:`RayEngine` (``--engine ray [--address HOST:PORT]``) — one Ray task per work unit;
  a task asks for one GPU when the device is CUDA (one CPU otherwise).  Ray is an optional
  extra (``pip install "isackit[ray]"``) imported only here, on use.  Without ``address`` a
  local Ray instance is started; ``address="auto"`` joins a running cluster.

The runner calls ``engine.prepare(device)`` before it creates the run folder — this is where
an engine fails fast (Ray missing, a cluster address that does not answer, ``--device cuda``
on a cluster without GPUs) — and then ``engine.run(...)``, which calls
``on_done(unit, result, seconds)`` in the driver as each unit finishes, so the runner stores
it at once.  Results do not depend on the engine (see :mod:`isackit.experiments.units` for
the seeding).
"""

from __future__ import annotations

import importlib
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import torch

from .config import ExperimentError
from .units import Progress, UnitResult, WorkUnit, as_unit_result

__all__ = ["Engine", "InProcessEngine", "RayEngine", "make_engine", "execute_unit", "ENGINES"]

OnDone = Callable[[WorkUnit, UnitResult, float], None]
ProgressFor = Callable[[WorkUnit], Progress]

#: Seconds to wait for a Ray cluster's address to accept a TCP connection.
RAY_CONNECT_TIMEOUT_S = 10.0


def execute_unit(experiment, config_data: dict[str, Any], unit: WorkUnit,
                 device: str) -> tuple[UnitResult, float]:
    """Run one unit from plain data (what a remote worker receives): re-validate the config
    with the experiment's model, run, time it.  ``experiment`` is the registered class
    (Ray ships it by reference: the worker imports the module that defines it)."""
    from .config import validate_config

    config = validate_config(experiment.config_model, config_data, experiment.name)
    t0 = time.perf_counter()
    result = as_unit_result(experiment().run_unit(config, unit, torch.device(device)))
    return result, time.perf_counter() - t0


class Engine:
    """Interface of an execution engine."""

    name = "engine"

    def prepare(self, device: torch.device) -> None:
        """Check, before any file is written, that this engine can run units on ``device``;
        raise :class:`ExperimentError` with a one-line reason otherwise."""

    def run(self, experiment, config, units: Sequence[WorkUnit], device: torch.device,
            on_done: OnDone, progress_for: ProgressFor | None = None) -> None:  # pragma: no cover
        raise NotImplementedError


class InProcessEngine(Engine):
    """Run the units sequentially in this process."""

    name = "inprocess"

    def run(self, experiment, config, units, device, on_done, progress_for=None):
        exp = experiment()
        for unit in units:
            if progress_for is not None:
                unit = replace(unit, progress=progress_for(unit))
            t0 = time.perf_counter()
            result = as_unit_result(exp.run_unit(config, unit, device))
            on_done(replace(unit, progress=None), result, time.perf_counter() - t0)


def _import_ray():
    try:
        return importlib.import_module("ray")
    except ImportError:
        raise ExperimentError("--engine ray needs Ray, which is not installed: pip install \"isackit[ray]\"") from None


def _host_port(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of ``HOST:PORT`` or ``ray://HOST:PORT``; None for ``auto``/``local``."""
    addr = address.strip()
    if addr in ("auto", "local"):
        return None
    if "://" in addr:
        scheme, _, addr = addr.partition("://")
        if scheme != "ray":
            raise ExperimentError(f"bad --address {address!r}: expected HOST:PORT, ray://HOST:PORT or auto")
    host, sep, port = addr.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ExperimentError(f"bad --address {address!r}: expected HOST:PORT (e.g. 10.0.0.5:6379), "
                              "ray://HOST:PORT or auto")
    return host, int(port)


def check_reachable(address: str, timeout: float = RAY_CONNECT_TIMEOUT_S) -> None:
    """Fail fast when a Ray address does not accept TCP connections within ``timeout`` s."""
    hp = _host_port(address)
    if hp is None:
        return
    try:
        with socket.create_connection(hp, timeout=timeout):
            pass
    except TimeoutError:
        raise ExperimentError(f"cannot reach the Ray cluster at {address!r}: no answer within {timeout:g} s") from None
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise ExperimentError(f"cannot reach the Ray cluster at {address!r}: {reason}") from None


class RayEngine(Engine):
    """One Ray task per work unit (GPU-aware); stores results as tasks finish."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None,
                 connect_timeout: float = RAY_CONNECT_TIMEOUT_S):
        self.address = address
        self.num_cpus = num_cpus
        self.connect_timeout = connect_timeout

    def _init(self, ray) -> None:
        if ray.is_initialized():
            return
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                  "configure_logging": False}
        if self.address:
            check_reachable(self.address, self.connect_timeout)
            kwargs["address"] = self.address
        else:  # a local instance on this machine, on loopback only
            kwargs["_node_ip_address"] = "127.0.0.1"
            if self.num_cpus:
                kwargs["num_cpus"] = self.num_cpus
        try:
            ray.init(**kwargs)
        except (ConnectionError, TimeoutError, RuntimeError) as exc:
            where = f"at {self.address!r}" if self.address else "(local)"
            raise ExperimentError(f"cannot connect to the Ray cluster {where}: {exc}") from None

    def prepare(self, device: torch.device) -> None:
        ray = _import_ray()
        self._init(ray)
        if device.type == "cuda":
            gpus = float(ray.cluster_resources().get("GPU", 0))
            if gpus < 1:
                raise ExperimentError(f"--device {device} with --engine ray: the Ray cluster has no GPU "
                                      "(its resources list GPU = 0); use --device cpu or a cluster with GPUs")

    def run(self, experiment, config, units, device, on_done, progress_for=None):
        ray = _import_ray()
        self._init(ray)
        if experiment.__module__ == "__main__":
            raise ExperimentError(f"experiment {experiment.name!r} is defined in a script; Ray workers cannot "
                                  "import it: move it to an importable module")
        gpus = 1 if device.type == "cuda" else 0
        task = ray.remote(execute_unit).options(num_cpus=1, num_gpus=gpus, max_retries=1)
        data = config.model_dump(mode="json")
        pending = {task.remote(experiment, data, replace(unit, progress=None), str(device)): unit
                   for unit in units}
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    unit = pending.pop(ref)
                    result, seconds = ray.get(ref)
                    on_done(unit, result, seconds)
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
        if address is not None:
            _host_port(address)  # a malformed address is an error before anything starts
        return RayEngine(address)
    raise ExperimentError(f"unknown engine {name!r}; choose one of: {', '.join(ENGINES)}")
