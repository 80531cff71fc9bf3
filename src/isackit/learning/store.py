r"""The one model store: trained weights cached under a key of everything that made them.

A stored model is a folder ``<root>/<name>/<key>/`` in the checkpoint format of
:mod:`isackit.learning.checkpoint` — ``weights.safetensors`` (tensors only) and
``config.json`` (the model's identity, its training log and free metadata) — plus
``model.json``, written last, which holds the SHA-256 of both files.  The key is

.. math::  \mathrm{key} = \mathrm{SHA256}(\mathrm{json}(\{name, config, seed, version, code\}))_{0..127}

where ``config`` is the JSON form of every setting that determines the model (its
architecture, the scenario it is trained on — impairments included — and the
:class:`~isackit.learning.training.TrainingConfig`), ``seed`` the training-data seed,
``version`` the isackit version, and ``code`` a fingerprint of the source of the modules that
build and train the model (:func:`code_fingerprint`; docstrings and comments do not count).
Any change to one of them gives another key, so a cached model is never reused for settings
or code it was not trained with.

:meth:`ModelStore.get_or_train` returns the model and its artifact record
``{"name", "path", "sha256", "key"}`` (the run-folder artifact format: ``path`` is the weights
file, ``sha256`` its hash).  A cached model whose files do not match their hashes (truncated,
edited, half-written) or whose identity differs from the key is reported with a
``RuntimeWarning`` and retrained.  Loading never executes code from a file: the weights are
safetensors, the metadata JSON.  Names are plain identifiers and every path stays inside the
store root.  Training a model that another process is training waits for it (a lock file per
key, POSIX) and then loads its result.

Example:
    >>> import tempfile, torch
    >>> from isackit.learning.training import TrainingConfig, fit
    >>> from isackit.seeding import make_generator
    >>> cfg = TrainingConfig(steps=20, lr=0.1)
    >>> def build():
    ...     return torch.nn.Linear(1, 1)
    >>> def train(model, checkpoint_dir):
    ...     g = make_generator(0, "data")
    ...     def step(t):
    ...         x = torch.randn(8, 1, generator=g)
    ...         return ((model(x) - 2 * x) ** 2).mean()
    ...     return fit(model, step, cfg, generators={"data": g}, checkpoint_dir=checkpoint_dir)
    >>> store = ModelStore(tempfile.mkdtemp())
    >>> model, record = store.get_or_train("line", build, train, config={"training": cfg}, seed=0)
    >>> sorted(record)
    ['key', 'name', 'path', 'sha256']
    >>> again, record2 = store.get_or_train("line", build, train, config={"training": cfg}, seed=0)
    >>> record2 == record and torch.equal(again.weight, model.weight)
    True
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import inspect
import json
import os
import re
import shutil
import textwrap
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, TypedDict

import torch
from pydantic import BaseModel
from torch import nn

from .checkpoint import load_checkpoint, save_checkpoint
from .training import TrainingLog, sha256_file

__all__ = ["ModelStore", "ModelRecord", "code_fingerprint", "model_key", "default_model_root", "MODEL_CACHE_ENV"]

#: Environment variable naming the model cache root (see :func:`default_model_root`).
MODEL_CACHE_ENV = "ISACKIT_MODEL_CACHE"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
_KEY_HEX = 32


class ModelRecord(TypedDict):
    """Artifact record of a stored model (the run folder's ``models.json`` entry)."""

    name: str
    path: str
    sha256: str
    key: str


# ------------------------------------------------------------------------------------------
def default_model_root() -> Path:
    """The user's model cache: ``$ISACKIT_MODEL_CACHE``, else ``$XDG_CACHE_HOME/isackit/models``,
    else ``~/.cache/isackit/models`` (read at each call, so tests and runs can redirect it)."""
    env = os.environ.get(MODEL_CACHE_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "isackit" / "models"


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


_DIGESTS: dict[tuple[str, str, int], str] = {}


def _source_digest(obj: Any) -> tuple[str, str]:
    if isinstance(obj, str):
        return ("text", hashlib.sha256(obj.encode()).hexdigest())
    if isinstance(obj, ModuleType):
        label = obj.__name__
    elif inspect.isclass(obj) or inspect.isfunction(obj) or inspect.ismethod(obj):
        label = f"{obj.__module__}.{obj.__qualname__}"
    else:
        raise TypeError(f"code_fingerprint takes modules, classes, functions or strings, got {type(obj).__name__}")
    try:
        path = inspect.getsourcefile(obj) or ""
        stamp = os.stat(path).st_mtime_ns if path else 0
    except (OSError, TypeError):
        path, stamp = "", 0
    cached = _DIGESTS.get((label, path, stamp)) if path else None
    if cached is not None:
        return (label, cached)
    try:
        src = textwrap.dedent(inspect.getsource(obj))
    except (OSError, TypeError) as err:
        raise ValueError(f"no source available for {label} to fingerprint ({err})") from err
    norm = ast.dump(_strip_docstrings(ast.parse(src)), annotate_fields=False, include_attributes=False)
    digest = hashlib.sha256(norm.encode()).hexdigest()
    if path:
        _DIGESTS[(label, path, stamp)] = digest
    return (label, digest)


def code_fingerprint(*objects: Any) -> str:
    """SHA-256 of the source of modules/classes/functions (docstrings and comments ignored).

    The source is parsed and dumped as an AST without docstrings, so editing documentation
    keeps the fingerprint while any change to the code changes it.  Strings are hashed as
    given (e.g. a format tag).  The result does not depend on the order of ``objects``.
    """
    parts = sorted({_source_digest(o) for o in objects})
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def _jsonable(config: Any) -> Any:
    if isinstance(config, BaseModel):
        return config.model_dump(mode="json")
    if isinstance(config, Mapping):
        return {str(k): _jsonable(v) for k, v in config.items()}
    if isinstance(config, (list, tuple)):
        return [_jsonable(v) for v in config]
    if isinstance(config, float) and not (config == config and abs(config) != float("inf")):
        raise ValueError(f"model config values must be finite, got {config}")
    if config is None or isinstance(config, (bool, int, float, str)):
        return config
    raise TypeError(f"model config values must be JSON-like or pydantic models, got {type(config).__name__}")


def model_key(identity: Mapping[str, Any]) -> str:
    """The store key of an identity mapping: the first 128 bits of SHA-256 of its canonical JSON."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True, allow_nan=False).encode()).hexdigest()[:_KEY_HEX]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX: no inter-process lock
        yield
        return
    with open(path, "a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


# ------------------------------------------------------------------------------------------
class ModelStore:
    """Keyed cache of trained models under ``root`` (see the module docstring).

    Args:
        root: the store's folder (created on first write).
        memory: also keep loaded/trained models in this process (the same object is returned
            for the same key; do not modify a returned model in place).
    """

    WEIGHTS = "weights.safetensors"
    CONFIG = "config.json"
    MANIFEST = "model.json"

    def __init__(self, root: str | Path, memory: bool = True):
        self.root = Path(root)
        self._memory: dict[tuple[str, str], tuple[nn.Module, ModelRecord]] | None = {} if memory else None

    # -- identity -------------------------------------------------------------------------
    def identity(self, name: str, config: Any, seed: int, code: Sequence[Any] = ()) -> dict[str, Any]:
        """The mapping that is hashed into the key (name, config, seed, library version, code)."""
        from .. import __version__

        self._check_name(name)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an integer, got {seed!r}")
        from . import training

        return {"name": name, "config": _jsonable(config), "seed": int(seed), "version": __version__,
                "code": code_fingerprint(training, *code)}

    def folder(self, name: str, key: str) -> Path:
        """``<root>/<name>/<key>``, checked to stay inside the root."""
        self._check_name(name)
        if not re.fullmatch(rf"[0-9a-f]{{{_KEY_HEX}}}", key):
            raise ValueError(f"a model key is {_KEY_HEX} lowercase hex digits, got {key!r}")
        d = self.root / name / key
        root = self.root.resolve()
        if root not in d.resolve().parents:
            raise ValueError(f"model folder {d} is outside the store root {self.root}")
        return d

    @staticmethod
    def _check_name(name: str) -> None:
        if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
            raise ValueError(f"a model name is letters, digits, '_', '-' and '.' (not starting with '.' and "
                             f"without '..'), at most 100 characters; got {name!r}")

    # -- get / train ----------------------------------------------------------------------
    def get_or_train(self, name: str, build: Callable[[], nn.Module],
                     train: Callable[[nn.Module, Path], TrainingLog | Mapping[str, Any] | None], *,
                     config: Any, seed: int, code: Sequence[Any] = (),
                     metadata: Mapping[str, Any] | None = None) -> tuple[nn.Module, ModelRecord]:
        """The model of this identity from the store, else ``train(build(), checkpoint_dir)`` and store it.

        Args:
            name: a plain identifier (e.g. ``"positioning-aod"``).
            build: returns a freshly initialised model (its architecture must follow from
                ``config``; initialise it from an explicit generator: it may be called twice);
                used for training and to receive loaded weights.
            train: ``train(model, checkpoint_dir)`` trains in place (through
                :func:`~isackit.learning.training.fit` with ``checkpoint_dir``, so an
                interrupted training resumes) and returns its :class:`TrainingLog` (or a dict).
            config: everything that determines the model (JSON-like or pydantic models).
            seed: the training-data / initialisation seed.
            code: modules/classes/functions whose source determines the model (the module of
                the built model's class, if it is an isackit module, and
                :mod:`isackit.learning.training` are added).
            metadata: free JSON metadata stored with the model (not part of the key).

        Returns:
            ``(model in eval mode, record)``.
        """
        model = build()
        if not isinstance(model, nn.Module):
            raise TypeError(f"build() must return a torch.nn.Module, got {type(model).__name__}")
        auto = [inspect.getmodule(type(model))] if type(model).__module__.startswith("isackit.") else []
        ident = self.identity(name, config, seed, (*auto, *code))
        key = model_key(ident)
        if self._memory is not None and (name, key) in self._memory:
            return self._memory[(name, key)]
        d = self.folder(name, key)
        with _locked(self.root / name / f".{key}.lock"):
            status = self._load(d, ident, key, model)
            if status != "loaded":
                if status == "damaged":          # load_state_dict may have copied part of the weights
                    model = build()
                ckpt = d / "training"
                log = train(model, ckpt)
                log_dict = log.to_dict() if isinstance(log, TrainingLog) else _jsonable(dict(log or {}))
                self._write(d, model, {"key": key, "identity": ident, "log": log_dict,
                                       "metadata": _jsonable(dict(metadata or {}))})
                shutil.rmtree(ckpt, ignore_errors=True)
        model.eval()
        record = ModelRecord(name=name, path=str(d / self.WEIGHTS), sha256=sha256_file(d / self.WEIGHTS), key=key)
        if self._memory is not None:
            self._memory[(name, key)] = (model, record)
        return model, record

    def metadata(self, record: ModelRecord) -> dict[str, Any]:
        """The stored ``config.json`` of a record (identity, training log, metadata)."""
        return json.loads((Path(record["path"]).parent / self.CONFIG).read_text())

    # -- files ----------------------------------------------------------------------------
    def _write(self, d: Path, model: nn.Module, config: dict[str, Any]) -> None:
        if (d / self.MANIFEST).exists():
            (d / self.MANIFEST).unlink()
        save_checkpoint(d, model.state_dict(), config)
        manifest = {self.WEIGHTS: sha256_file(d / self.WEIGHTS), self.CONFIG: sha256_file(d / self.CONFIG)}
        from .._io import atomic_write_text

        atomic_write_text(d / self.MANIFEST, json.dumps({"key": config["key"], "sha256": manifest}, indent=1))

    def _load(self, d: Path, ident: dict[str, Any], key: str, model: nn.Module) -> str:
        """Load the stored weights into ``model``: ``"loaded"``, ``"absent"`` or ``"damaged"`` (warned)."""
        if not (d / self.MANIFEST).is_file():
            return "absent"
        try:
            manifest = json.loads((d / self.MANIFEST).read_text())
            if manifest.get("key") != key:
                raise ValueError("its manifest names another key")
            for f in (self.WEIGHTS, self.CONFIG):
                if sha256_file(d / f) != manifest["sha256"][f]:
                    raise ValueError(f"{f} does not match its SHA-256 (truncated or modified)")
            state, cfg = load_checkpoint(d)
            if cfg.get("identity") != ident:
                raise ValueError("its stored identity differs from the requested one")
            model.load_state_dict(state, strict=True)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError, json.JSONDecodeError) as err:
            warnings.warn(f"cached model {ident['name']!r} at {d} is damaged ({err}); retraining it",
                          RuntimeWarning, stacklevel=3)
            for f in (self.MANIFEST, self.WEIGHTS, self.CONFIG):
                with contextlib.suppress(OSError):
                    os.unlink(d / f)
            return "damaged"
        return "loaded"
