r"""The one training loop: :func:`fit` with a :class:`TrainingConfig` and a :class:`TrainingLog`.

:func:`fit` owns everything around a training step — the optimiser and the learning-rate
schedule built from the config, gradient clipping, logging, a progress callback, a
monitor, periodic checkpoints and resume — while the caller owns the step itself::

    def step(t: int):                      # draws its data from the generators it was given
        batch = sample(config.batch_size, generators["data"])
        loss = criterion(model(batch), batch.target)
        return loss                        # or (scalar to back-propagate, {"name": value, ...})

    log = fit(model, step, config, generators=generators, progress=progress)

Each step t = 0..T-1: ``optimizer.zero_grad()``; ``out = step(t)``; back-propagate the
returned scalar; clip the global gradient norm to ``grad_clip_norm`` (if set);
``optimizer.step()``; set the learning rate of step t + 1.  The scalar to back-propagate may
be a surrogate whose value is meaningless (e.g. a loss plus a channel-gradient surrogate);
the logged ``"loss"`` is then the value the step reports in its dict.

Learning-rate schedules (factor of every parameter group's base lr at step t, T = ``steps``
or, with ``anneal_to_last_step``, T = ``steps`` - 1 so that the last step uses the final lr;
f = ``final_lr_fraction``, γ = ``gamma``, k = ``step_size``):

* ``constant``: 1;
* ``step``: γ^⌊t/k⌋ (halving every k steps with γ = 1/2);
* ``exponential``: γ^t;
* ``cosine``: f + (1 - f)(1 + cos(π t/T))/2 (``torch.optim.lr_scheduler.CosineAnnealingLR``
  with η_min = f·lr for T = ``steps``);
* ``linear``: f + (1 - f)(1 - t/T).

Randomness: the step draws only from the ``torch.Generator`` objects passed as
``generators`` (made with :func:`isackit.seeding.make_generator`); their states are part of
every checkpoint, so a run resumed from its last checkpoint gives the same weights and log
records as an uninterrupted run (on CPU; GPU kernels may be non-deterministic).

Checkpoints (``checkpoint_dir`` and ``checkpoint_every``): ``step-<t>/`` holds the model's
weights and identity (:func:`isackit.learning.checkpoint.save_checkpoint`: safetensors +
JSON), ``state.pt`` (optimiser, scheduler, generator and PyTorch-global RNG states: tensors
and plain containers, read back with ``torch.load(weights_only=True)``, so nothing is
unpickled) and ``log.json``; ``latest.json`` (written last, atomically) names the newest one
with the SHA-256 of each file.  A checkpoint whose files do not match their hashes is
reported with a warning and training starts afresh; one written for another config or
``identity`` is an error.

Example:
    >>> import torch
    >>> from isackit.seeding import make_generator
    >>> model = torch.nn.Linear(2, 1)
    >>> g = make_generator(0, "data")
    >>> def step(t):
    ...     x = torch.randn(32, 2, generator=g)
    ...     return ((model(x) - x.sum(-1, keepdim=True)) ** 2).mean()
    >>> cfg = TrainingConfig(steps=200, batch_size=32, lr=0.05, scheduler="cosine", log_every=50)
    >>> log = fit(model, step, cfg, generators={"data": g})
    >>> [r["step"] for r in log.records]
    [0, 50, 100, 150, 199]
    >>> log.records[-1]["loss"] < 1e-3
    True
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import shutil
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import torch
from pydantic import Field, field_validator, model_validator
from torch import nn

from .._config import StrictModel
from .._io import atomic_write_bytes, atomic_write_text
from .checkpoint import load_checkpoint, save_checkpoint

__all__ = [
    "TrainingConfig",
    "TrainingLog",
    "fit",
    "make_optimizer",
    "make_scheduler",
    "lr_factor",
    "ProgressFn",
    "rich_progress",
    "sha256_file",
]

StepOutput = torch.Tensor | tuple[torch.Tensor, Mapping[str, Any]]
StepFn = Callable[[int], StepOutput]


class ProgressFn(Protocol):
    """``progress(done, total, what)``: ``done`` of ``total`` steps of the task ``what`` are finished."""

    def __call__(self, done: int, total: int, what: str) -> None: ...


class TrainingConfig(StrictModel):
    """Settings of one :func:`fit` run (optimiser, schedule, clipping, logging, checkpoints).

    ``batch_size`` is not used by :func:`fit` itself (the step draws its batches); it is part
    of the config because it determines the trained model.
    """

    steps: int = Field(1000, ge=1)
    batch_size: int = Field(1000, ge=1)
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    betas: list[float] = [0.9, 0.999]
    momentum: float = Field(0.0, ge=0, lt=1)
    scheduler: Literal["constant", "step", "exponential", "cosine", "linear"] = "constant"
    final_lr_fraction: float = Field(0.0, ge=0, le=1)
    step_size: int = Field(1, ge=1)
    gamma: float = Field(0.5, gt=0, le=1)
    anneal_to_last_step: bool = False
    grad_clip_norm: float | None = Field(None, gt=0)
    log_every: int = Field(10, ge=1)
    checkpoint_every: int | None = Field(None, ge=1)

    @field_validator("betas")
    @classmethod
    def _betas(cls, v: list[float]) -> list[float]:
        if len(v) != 2 or not all(0 <= b < 1 for b in v):
            raise ValueError(f"betas must be two numbers in [0, 1), got {v}")
        return v

    @model_validator(mode="after")
    def _sgd_only_momentum(self):
        if self.momentum and self.optimizer != "sgd":
            raise ValueError(f"momentum applies to optimizer='sgd' only (got optimizer={self.optimizer!r}); "
                             "use betas for Adam")
        return self


@dataclass
class TrainingLog:
    """The learning curve: one record per logged step and the wall time.

    ``records``: dicts with ``step``, ``loss``, ``lr`` (first parameter group), the values the
    step logged, ``grad_norm`` (when clipping) and the monitor's values.  ``seconds``: wall
    time of the steps and monitors (summed over resumed segments).  JSON-serialisable with
    :meth:`to_dict` / :meth:`from_dict`.
    """

    records: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def column(self, name: str) -> list[Any]:
        """The values of ``name`` over the records that have it."""
        return [r[name] for r in self.records if name in r]

    @property
    def final(self) -> dict[str, Any]:
        """The last record ({} if none)."""
        return dict(self.records[-1]) if self.records else {}

    def to_dict(self) -> dict[str, Any]:
        return {"records": [dict(r) for r in self.records], "seconds": float(self.seconds)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainingLog:
        if not isinstance(data, Mapping) or not isinstance(data.get("records"), list):
            raise ValueError("a training log must be a mapping with a 'records' list")
        return cls(records=[dict(r) for r in data["records"]], seconds=float(data.get("seconds", 0.0)))


# ------------------------------------------------------------------------------------------
def lr_factor(step: int, config: TrainingConfig) -> float:
    """The schedule's factor of the base learning rate at step ``step`` (module docstring)."""
    kind = config.scheduler
    if kind == "constant":
        return 1.0
    if kind == "step":
        return config.gamma ** (step // config.step_size)
    if kind == "exponential":
        return config.gamma ** step
    span = config.steps - 1 if config.anneal_to_last_step else config.steps
    f = config.final_lr_fraction
    if span <= 0:
        return 1.0
    t = min(step, span)
    if kind == "cosine":
        return f + (1.0 - f) * 0.5 * (1.0 + math.cos(math.pi * t / span))
    return f + (1.0 - f) * (1.0 - t / span)


def make_optimizer(params: Iterable[torch.nn.Parameter] | Iterable[dict], config: TrainingConfig
                   ) -> torch.optim.Optimizer:
    """The optimiser of ``config`` over ``params`` (tensors, or param-group dicts with their own ``lr``)."""
    params = list(params)
    if not params:
        raise ValueError("no parameters to train (all frozen or none given)")
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, betas=tuple(config.betas), weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, betas=tuple(config.betas), weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainingConfig) -> torch.optim.lr_scheduler.LambdaLR:
    """``LambdaLR`` with :func:`lr_factor`: every group's lr is its base lr times the factor."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda t: lr_factor(t, config))


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@contextlib.contextmanager
def rich_progress(transient: bool = False) -> Iterator[ProgressFn]:
    """A ``progress(done, total, what)`` callable drawing a rich progress bar per task ``what``.

    Example: ``with rich_progress() as p: fit(model, step, cfg, progress=p)``.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   transient=transient)
    tasks: dict[str, Any] = {}

    def progress(done: int, total: int, what: str) -> None:
        if what not in tasks:
            tasks[what] = bar.add_task(what, total=total)
        bar.update(tasks[what], completed=done, total=total)

    with bar:
        yield progress


# ------------------------------------------------------------------------------------------
# checkpoints
# ------------------------------------------------------------------------------------------
_LATEST = "latest.json"


def _identity(config: TrainingConfig, identity: Mapping[str, Any] | None) -> dict[str, Any]:
    ident = {"training": config.model_dump(mode="json"), "user": dict(identity or {})}
    json.dumps(ident, sort_keys=True)          # raises TypeError early if not JSON-serialisable
    return ident


def _save_training_checkpoint(directory: Path, step: int, model: nn.Module, optimizer, scheduler,
                              generators: Mapping[str, torch.Generator], log: TrainingLog,
                              ident: dict[str, Any]) -> None:
    name = f"step-{step:09d}"
    d = directory / name
    if d.exists():
        shutil.rmtree(d)
    save_checkpoint(d, model.state_dict(), {"step": step, "identity": ident})
    state = {"step": step, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
             "generators": {k: g.get_state() for k, g in generators.items()},
             "global_rng": torch.random.get_rng_state()}
    buf = _torch_save_bytes(state)
    atomic_write_bytes(d / "state.pt", buf)
    atomic_write_text(d / "log.json", json.dumps(log.to_dict(), sort_keys=True))
    files = {f: sha256_file(d / f) for f in ("weights.safetensors", "config.json", "state.pt", "log.json")}
    atomic_write_text(directory / _LATEST, json.dumps({"step": step, "dir": name, "files": files}, indent=1))
    for old in directory.glob("step-*"):
        if old.name != name and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)


def _torch_save_bytes(obj) -> bytes:
    import io

    bio = io.BytesIO()
    torch.save(obj, bio)
    return bio.getvalue()


def _load_training_checkpoint(directory: Path, ident: dict[str, Any]) -> dict[str, Any] | None:
    """The newest intact checkpoint's contents, or None (none there, or damaged: warned)."""
    latest = directory / _LATEST
    if not latest.is_file():
        return None
    try:
        meta = json.loads(latest.read_text())
        d = directory / str(meta["dir"])
        if d.parent.resolve() != directory.resolve() or not str(meta["dir"]).startswith("step-"):
            raise ValueError("checkpoint folder outside the checkpoint directory")
        for f, digest in dict(meta["files"]).items():
            if sha256_file(d / f) != digest:
                raise ValueError(f"{f} does not match its SHA-256")
        state_dict, cfg = load_checkpoint(d)
        state = torch.load(d / "state.pt", map_location="cpu", weights_only=True)
        log = TrainingLog.from_dict(json.loads((d / "log.json").read_text()))
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, json.JSONDecodeError) as err:
        warnings.warn(f"training checkpoint in {directory} is damaged ({err}); training from the start",
                      RuntimeWarning, stacklevel=3)
        return None
    if cfg.get("identity") != ident:
        raise ValueError(f"the checkpoint in {directory} was written by another training config or model "
                         f"identity; use another checkpoint_dir or delete it")
    return {"weights": state_dict, "state": state, "log": log, "step": int(meta["step"])}


# ------------------------------------------------------------------------------------------
def _split_output(out: StepOutput, step: int) -> tuple[torch.Tensor, Mapping[str, Any]]:
    if isinstance(out, tuple):
        if len(out) != 2 or not isinstance(out[1], Mapping):
            raise TypeError(f"step({step}) must return a scalar tensor or (scalar tensor, dict of logged values)")
        loss, logged = out
    else:
        loss, logged = out, {}
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise TypeError(f"step({step}) must return a scalar tensor to back-propagate, got "
                        f"{type(loss).__name__}{'' if not isinstance(loss, torch.Tensor) else tuple(loss.shape)}")
    return loss, logged


def _as_float(v: Any, name: str) -> Any:
    if isinstance(v, torch.Tensor):
        if v.numel() != 1:
            raise TypeError(f"logged value {name!r} must be a scalar, got shape {tuple(v.shape)}")
        return float(v.detach())
    if isinstance(v, (bool, int, float, str)) or v is None:
        return v
    raise TypeError(f"logged value {name!r} must be a number or a scalar tensor, got {type(v).__name__}")


def fit(model: nn.Module, step: StepFn, config: TrainingConfig, *,
        params: Iterable[torch.nn.Parameter] | Iterable[dict] | None = None,
        generators: Mapping[str, torch.Generator] | None = None,
        progress: ProgressFn | None = None, what: str = "training",
        monitor: Callable[[nn.Module], Mapping[str, Any]] | None = None,
        checkpoint_dir: str | Path | None = None, identity: Mapping[str, Any] | None = None) -> TrainingLog:
    """Train ``model`` for ``config.steps`` steps of ``step`` (module docstring); return the log.

    Args:
        model: the module whose ``state_dict`` is checkpointed (all trained parameters must be
            in it); it is in train mode during the loop and restored to its mode afterwards.
        step: ``step(t) -> loss`` or ``(loss, {name: value})``: the scalar to back-propagate
            and the values to log (numbers or scalar tensors, converted on logged steps only).
        config: :class:`TrainingConfig`.
        params: what to optimise: parameters, or param-group dicts (``{"params": [...],
            "lr": ...}``: a group's own base lr); default: ``model``'s parameters that require grad.
        generators: every ``torch.Generator`` the step draws from, by name (their states are
            checkpointed; the monitor must not draw from them).
        progress: ``progress(done, total, what)`` after every step (and once at the start).
        monitor: ``monitor(model) -> {name: value}`` after the update of every logged step,
            under ``no_grad`` and with PyTorch's global RNG state saved and restored; it must
            not change the model or draw from ``generators`` (checked: an error if it does).
        checkpoint_dir: where to write checkpoints every ``config.checkpoint_every`` steps and
            at the end; if it holds one, training resumes from it.
        identity: JSON-serialisable description of everything else that determines the model
            (stored in checkpoints; resuming from another identity is an error).

    Returns:
        :class:`TrainingLog` with a record at steps 0, ``log_every``, ... and the last step.

    Raises:
        FloatingPointError: the loss is NaN/inf at a logged step.
    """
    if not isinstance(config, TrainingConfig):
        raise TypeError(f"config must be a TrainingConfig, got {type(config).__name__}")
    if not callable(step):
        raise TypeError(f"step must be callable, got {type(step).__name__}")
    gens = dict(generators or {})
    for k, g in gens.items():
        if not isinstance(g, torch.Generator):
            raise TypeError(f"generators[{k!r}] must be a torch.Generator, got {type(g).__name__}")
    if params is None:
        params = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(params, config)
    scheduler = make_scheduler(optimizer, config)
    trained = [p for group in optimizer.param_groups for p in group["params"]]
    ident = _identity(config, identity)
    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None

    log, start = TrainingLog(), 0
    if ckpt is not None:
        saved = _load_training_checkpoint(ckpt, ident)
        if saved is not None:
            model.load_state_dict(saved["weights"])
            optimizer.load_state_dict(saved["state"]["optimizer"])
            scheduler.load_state_dict(saved["state"]["scheduler"])
            for k, g in gens.items():
                if k not in saved["state"]["generators"]:
                    raise ValueError(f"the checkpoint in {ckpt} has no state for generator {k!r}")
                g.set_state(saved["state"]["generators"][k])
            torch.random.set_rng_state(saved["state"]["global_rng"])
            log, start = saved["log"], saved["step"] + 1

    total = config.steps
    if progress is not None:
        progress(start, total, what)
    was_training = model.training
    model.train()
    t0 = time.perf_counter()
    try:
        for t in range(start, total):
            optimizer.zero_grad(set_to_none=True)
            loss, logged = _split_output(step(t), t)
            loss.backward()
            grad_norm = None
            if config.grad_clip_norm is not None:
                grad_norm = torch.nn.utils.clip_grad_norm_(trained, config.grad_clip_norm)
            lr = optimizer.param_groups[0]["lr"]
            optimizer.step()
            scheduler.step()
            last = t == total - 1
            if t % config.log_every == 0 or last:
                rec: dict[str, Any] = {"step": t}
                rec["loss"] = float(loss.detach())
                rec.update({k: _as_float(v, k) for k, v in logged.items()})
                rec["lr"] = float(lr)
                if grad_norm is not None:
                    rec["grad_norm"] = float(grad_norm)
                if not math.isfinite(float(rec["loss"])):
                    raise FloatingPointError(f"training diverged: loss is {rec['loss']} at step {t}")
                if monitor is not None:
                    rec.update(_run_monitor(monitor, model, gens))
                log.records.append(rec)
            if progress is not None:
                progress(t + 1, total, what)
            if ckpt is not None and ((config.checkpoint_every and (t + 1) % config.checkpoint_every == 0) or last):
                log.seconds += time.perf_counter() - t0
                t0 = time.perf_counter()
                _save_training_checkpoint(ckpt, t, model, optimizer, scheduler, gens, log, ident)
    finally:
        model.train(was_training)
    log.seconds += time.perf_counter() - t0
    return log


def _run_monitor(monitor, model: nn.Module, gens: Mapping[str, torch.Generator]) -> dict[str, Any]:
    before = {k: g.get_state() for k, g in gens.items()}
    versions = [p._version for p in model.parameters()]
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        values = monitor(model)
    if any(not torch.equal(before[k], g.get_state()) for k, g in gens.items()):
        raise RuntimeError("the monitor drew from a training generator; give it its own generator")
    if versions != [p._version for p in model.parameters()]:
        raise RuntimeError("the monitor changed the model's parameters; it must only read them")
    if not isinstance(values, Mapping):
        raise TypeError(f"monitor must return a dict of values, got {type(values).__name__}")
    return {k: _as_float(v, k) for k, v in values.items()}
