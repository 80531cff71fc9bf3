r"""Work units, their seeds, and the rows they return.

A sweep is split into work units: (sweep point × chunk of trials).  Each unit gets its own
seed, derived from the root seed and the unit's *identity* — the experiment name, the
sweep point's values (not its position in the sweep) and the chunk index — so the numbers
do not depend on which engine or worker ran the unit, on the order units ran in, or on
whether the run was interrupted and resumed.  (The chunk size is part of the config, so
it is part of the identity too; the same seed on another device type gives other random
numbers, as torch generators differ between CPU and CUDA.)

A unit returns a list of :class:`Row`: partial sums, not finished statistics, so that the
aggregate over chunks is exact (RMSE = sqrt(Σ squared errors / Σ count), not a mean of
per-chunk RMSEs).  Build them with :func:`rmse_row`, :func:`mean_row` and :func:`bound_row`.
A unit that used model files (trained networks from the model store) returns a
:class:`UnitResult` instead: its rows plus the *artifacts* — one record per model file
``{"name", "path", "sha256", "key"}`` — which the runner stores in the unit file and collects
into the run folder's ``models.json``.

Inside a long unit, ``unit.progress(done, total, what)`` (when not ``None``) reports progress
within the unit — training steps, Monte Carlo chunks — to the progress bar.

>>> u = WorkUnit(0, {"snr_db": 10.0}, 0, 4, unit_seed(0, "toy", {"snr_db": 10.0}, 0))
>>> u.id
'p0000-c0000'
>>> r = rmse_row("mean", "rmse", torch.tensor([3.0, 4.0]), trials=2)
>>> aggregate_rows([r])[("mean", "rmse")]
(3.5355339059327378, 2, 'rmse')
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import torch

from ..seeding import derive_seed

__all__ = ["WorkUnit", "Row", "UnitResult", "Artifact", "Progress", "unit_seed", "rmse_row", "mean_row",
           "bound_row", "aggregate_rows", "as_unit_result", "check_artifact"]

Scalar = str | int | float | bool

#: ``progress(done, total, what)``: ``done`` of ``total`` steps of ``what`` (e.g. ``"training
#: steps"``) are finished inside the running unit.
Progress = Callable[[int, int, str], None]

#: A model file a unit used: ``{"name": str, "path": str, "sha256": str, "key": str}``.
Artifact = dict[str, str]
ARTIFACT_KEYS = ("name", "path", "sha256", "key")


def unit_seed(root_seed: int, experiment: str, point: dict[str, Scalar], chunk_index: int) -> int:
    """A 63-bit seed from the root seed and the unit's identity (SHA-256, stable everywhere)."""
    return derive_seed(int(root_seed), experiment, point, int(chunk_index))


@dataclass(frozen=True)
class WorkUnit:
    """One piece of a sweep: ``trials`` Monte Carlo trials at one sweep point.

    Attributes:
        point_index: position of the point in the sweep (names files; not part of the seed).
        point: the swept parameters' values at this point, e.g. ``{"snr_db": 10.0,
            "impairment": "coupling"}``; these become the result table's columns.
        chunk_index: which chunk of the point's trials this is (0, 1, …).
        trials: number of trials in this unit (the last chunk may be smaller).
        seed: derived with :func:`unit_seed`.
        progress: optional ``progress(done, total, what)`` callback for progress *inside* the
            unit (e.g. pass it to ``fit(..., progress=unit.progress)``); ``None`` where nobody
            listens (Ray workers, tests).  Not part of the unit's identity.
    """

    point_index: int
    point: dict[str, Scalar]
    chunk_index: int
    trials: int
    seed: int
    progress: Progress | None = field(default=None, compare=False, repr=False)

    @property
    def id(self) -> str:
        """File-name identity ``p<point>-c<chunk>``, e.g. ``p0003-c0001``."""
        return f"p{self.point_index:04d}-c{self.chunk_index:04d}"

    def identity(self) -> dict[str, Any]:
        """The unit's identity as plain data (stored in its unit file, covered by the checksum)."""
        return {"id": self.id, "point_index": self.point_index, "point": dict(self.point),
                "chunk_index": self.chunk_index, "trials": self.trials, "seed": self.seed}

    def generator(self, device: str | torch.device = "cpu") -> torch.Generator:
        """A fresh ``torch.Generator`` on ``device`` seeded with this unit's seed."""
        return torch.Generator(device=torch.device(device)).manual_seed(self.seed)


Kind = Literal["rmse", "mean", "bound"]


@dataclass(frozen=True)
class Row:
    """A partial result of one unit for one (method, metric).

    ``kind`` says how chunks combine: ``"rmse"`` → sqrt(Σ total / Σ count) with ``total`` a
    sum of squared errors; ``"mean"`` → Σ total / Σ count; ``"bound"`` → a value computed
    rather than simulated (``total`` = value, ``count`` = 1), averaged over the units that
    report it and stored with ``n_trials = 0``.  ``trials`` is the number of Monte Carlo
    trials behind the row (0 for bounds).
    """

    method: str
    metric: str
    kind: Kind
    total: float
    count: int
    trials: int
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Row:
        return cls(**d)


def check_artifact(artifact: Any) -> Artifact:
    """Validate one artifact record (a dict with string ``name``, ``path``, ``sha256``, ``key``).

    >>> check_artifact({"name": "decoder", "path": "models/d.safetensors", "sha256": "ab", "key": "k1"})["name"]
    'decoder'
    """
    if not isinstance(artifact, dict) or set(artifact) != set(ARTIFACT_KEYS) or not all(
            isinstance(artifact[k], str) for k in ARTIFACT_KEYS):
        raise TypeError(f"an artifact is a dict with string fields {', '.join(ARTIFACT_KEYS)}, got {artifact!r}")
    return {k: artifact[k] for k in ARTIFACT_KEYS}


@dataclass(frozen=True)
class UnitResult:
    """What ``run_unit`` may return instead of a bare list of rows: the rows and the model
    files (artifacts, see :func:`check_artifact`) that produced them."""

    rows: list[Row]
    artifacts: list[Artifact] = field(default_factory=list)


def as_unit_result(value: UnitResult | Sequence[Row]) -> UnitResult:
    """Normalise a ``run_unit`` return value (``list[Row]`` or :class:`UnitResult`)."""
    if isinstance(value, UnitResult):
        rows, artifacts = list(value.rows), [check_artifact(a) for a in value.artifacts]
    else:
        rows, artifacts = list(value), []
    bad = [type(r).__name__ for r in rows if not isinstance(r, Row)]
    if bad:
        raise TypeError(f"run_unit must return Row objects (rmse_row, mean_row, bound_row), got {bad[0]}")
    return UnitResult(rows, artifacts)


def _finite(x: torch.Tensor) -> torch.Tensor:
    return x[torch.isfinite(x)]


def rmse_row(method: str, metric: str, errors: torch.Tensor, trials: int) -> Row:
    """Row of squared-error sums from ``errors`` (any shape; NaN/inf entries are skipped —
    report how many with a separate :func:`mean_row`, e.g. a miss rate)."""
    e = _finite(errors.detach().double())
    return Row(method, metric, "rmse", float((e * e).sum()), int(e.numel()), int(trials))


def mean_row(method: str, metric: str, values: torch.Tensor, trials: int) -> Row:
    """Row of sums for a mean (a rate when ``values`` are 0/1); non-finite entries skipped."""
    v = _finite(values.detach().double())
    return Row(method, metric, "mean", float(v.sum()), int(v.numel()), int(trials))


def bound_row(method: str, metric: str, value: float | torch.Tensor) -> Row:
    """Row for a computed bound, e.g. ``bound_row("CRB", "rmse_deg", sqrt_crb_deg)``."""
    return Row(method, metric, "bound", float(value), 1, 0)


def aggregate_rows(rows: list[Row]) -> dict[tuple[str, str], tuple[float, int, str]]:
    """Combine rows of one sweep point: ``{(method, metric): (value, n_trials, kind)}``."""
    acc: dict[tuple[str, str], list[Any]] = {}
    for r in rows:
        a = acc.setdefault((r.method, r.metric), [r.kind, 0.0, 0, 0])
        if a[0] != r.kind:
            raise ValueError(f"({r.method}, {r.metric}) reported as both {a[0]!r} and {r.kind!r}")
        a[1] += r.total
        a[2] += r.count
        a[3] += r.trials
    out: dict[tuple[str, str], tuple[float, int, str]] = {}
    for key, (kind, total, count, trials) in acc.items():
        if count == 0:
            value = math.nan
        elif kind == "rmse":
            value = math.sqrt(total / count)
        else:
            value = total / count
        out[key] = (value, trials, kind)
    return out
