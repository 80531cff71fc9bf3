r"""Experiment specs: TOML files validated into typed, frozen pydantic configs.

A spec is a TOML file.  Its top-level keys are the fields of the experiment's config model
(a subclass of :class:`ExperimentConfig`); unknown keys and wrong types are rejected with a
message that names the key.  One extra table, ``[quick]``, holds overrides applied by
``--quick`` (CI-sized runs); its keys are dotted paths, written either as nested tables
(``[quick.sweep] snr_db = [0, 20]``) or as quoted keys (``"sweep.snr_db" = [0, 20]``).

Resolution order (later wins): the file → ``[quick]`` (with ``--quick``) → ``--set key=value``
overrides (dotted keys; values are TOML literals: ``--set sweep.snr_db=[0,10]``,
``--set array.elements=16``, ``--set device=cuda``; a bare word is taken as a string) →
the explicit CLI flags (``--trials``, ``--seed``, ``--device``).

A spec never names code to import: the ``experiment`` key is looked up in the registry
(:mod:`isackit.experiments.registry`: the built-in table and installed plug-ins), and a
``module`` key is refused.  NaN and ±inf are refused everywhere in a spec, whatever the field
(TOML can write ``nan`` and ``inf``).  Paths a config may set are relative paths that stay
inside the run folder or the model cache (:data:`RelativePath`).

Everything a user can get wrong here raises :class:`ExperimentError` (a ``ValueError``) with
a one-line message; the CLI prints it and exits with code 2.

>>> parse_override("sweep.snr_db=[0, 10]")
('sweep.snr_db', [0, 10])
>>> check_finite({"sweep": {"snr_db": [0.0, float("nan")]}}, "spec")
Traceback (most recent call last):
...
isackit.experiments.errors.ExperimentError: spec: sweep.snr_db.1 is nan; NaN and ±inf are not allowed in a spec
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import tomllib
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Annotated, Any

import pydantic
from pydantic import AfterValidator, Field

from .._config import StrictModel
from .errors import ExperimentError

__all__ = [
    "ExperimentError",
    "ExperimentConfig",
    "RelativePath",
    "check_finite",
    "safe_name",
    "inside",
    "read_toml",
    "parse_override",
    "apply_overrides",
    "flatten",
    "validate_config",
    "config_hash",
    "to_toml",
]


def _relative_path(value: str) -> str:
    posix, win = PurePosixPath(value), PureWindowsPath(value)
    if value.strip() == "" or posix.is_absolute() or win.is_absolute() or win.drive or value.startswith("~"):
        raise ValueError(f"{value!r} must be a relative path (it is placed inside the run folder or the "
                         "model cache)")
    if ".." in posix.parts or ".." in win.parts:
        raise ValueError(f"{value!r} must not leave its folder ('..')")
    return value


#: A config field holding a path: relative, without ``..``, resolved by the experiment inside
#: the run folder or the model cache (:func:`inside`), so no config can write elsewhere.
RelativePath = Annotated[str, AfterValidator(_relative_path)]


def inside(root: str | Path, relative: str) -> Path:
    """``root / relative``, checked to stay inside ``root`` (symbolic links resolved).

    >>> inside("/tmp/run", "models/a").as_posix()
    '/tmp/run/models/a'
    """
    _relative_path(relative)
    base = Path(root).resolve()
    path = (base / relative).resolve()
    if path != base and base not in path.parents:
        raise ExperimentError(f"path {relative!r} leaves {root} (through a symbolic link)")
    return path


class ExperimentConfig(StrictModel):
    """Fields every experiment config has; experiments subclass it and add their own.

    Subclasses inherit :class:`isackit._config.StrictModel`'s rules: ``extra="forbid"``
    (unknown keys are errors), ``strict=True`` (no silent coercion of ``"10"`` to ``10``; an
    int is accepted where a float is expected), ``frozen=True`` and ``allow_inf_nan=False``.
    Nested models subclass ``StrictModel`` too.  Use ``list[...]`` rather than
    ``tuple[...]`` for sequences (TOML arrays are lists).

    Attributes:
        experiment: name of the registered experiment that runs this spec (the registry
            maps it to code; a spec never names a module).
        description: one line shown by ``isackit list``.
        seed: root seed; every work unit derives its own seed from it and its identity.
        trials: Monte Carlo trials per sweep point.
        chunk: trials per work unit (the batch simulated at once).  Part of each unit's
            identity: changing it changes the random numbers.
        device: torch device the units run on (``"cpu"``, ``"cuda"``, ``"cuda:1"``).
    """

    experiment: str
    description: str = ""
    seed: int = Field(default=0, ge=0)
    trials: int = Field(default=100, ge=1)
    chunk: int = Field(default=100, ge=1)
    device: str = "cpu"


# ---------------------------------------------------------------------------------------
# reading and overriding


def read_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML file, turning I/O and syntax problems into :class:`ExperimentError`."""
    p = Path(path)
    if not p.is_file():
        raise ExperimentError(f"spec file not found: {p}")
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ExperimentError(f"cannot read {p}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ExperimentError(f"{p}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
                              "TOML specs are UTF-8") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ExperimentError(f"{p}: invalid TOML: {exc}") from None


_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,79}$")


def safe_name(name: str, fallback: str = "run") -> str:
    """A folder name that stays inside its parent: letters, digits, ``_.+-``, not starting with
    a dot, at most 80 characters (other characters become ``_``).

    >>> safe_name("doa"), safe_name(".."), safe_name("../../etc"), safe_name("a b")
    ('doa', 'run', 'etc', 'a_b')
    """
    if _SAFE.match(name) and ".." not in name:
        return name
    slug = re.sub(r"[^A-Za-z0-9_.+-]+", "_", name).replace("..", "_").strip("._-")[:80]
    return slug if slug and _SAFE.match(slug) else fallback


def check_finite(data: Any, source: str, _path: str = "") -> None:
    """Refuse NaN and ±inf anywhere in plain spec data (nested tables and arrays included)."""
    if isinstance(data, float) and not math.isfinite(data):
        raise ExperimentError(f"{source}: {_path or 'value'} is {data}; NaN and ±inf are not allowed in a spec")
    if isinstance(data, dict):
        for k, v in data.items():
            check_finite(v, source, f"{_path}.{k}" if _path else str(k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            check_finite(v, source, f"{_path}.{i}" if _path else str(i))


_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*)*$")
_BARE = re.compile(r"^[A-Za-z_./~][A-Za-z0-9_.:/+~-]*$")  # words, devices (cuda:0), paths


def parse_override(text: str) -> tuple[str, Any]:
    """Parse ``key=value`` (``--set``) into ``(dotted key, value)``.

    The value is read as a TOML literal (``16``, ``1e-3``, ``true``, ``[0, 10]``,
    ``"a b"``, ``{x = 1}``); a bare word that is not a TOML literal (``cuda:0``,
    ``gain_phase``) is taken as a string.
    """
    if "=" not in text:
        raise ExperimentError(f"bad --set {text!r}: expected KEY=VALUE, e.g. --set trials=50")
    key, _, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    if not _KEY.match(key):
        raise ExperimentError(f"bad --set {text!r}: {key!r} is not a key (expected e.g. array.elements)")
    if raw == "":
        raise ExperimentError(f"bad --set {text!r}: no value after '='")
    try:
        return key, tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        if _BARE.match(raw):
            return key, raw
        raise ExperimentError(f"bad --set {text!r}: {raw!r} is not a TOML value") from None


def _set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    node = data
    parts = dotted.split(".")
    for i, part in enumerate(parts[:-1]):
        nxt = node.get(part)
        if nxt is None:
            nxt = node[part] = {}
        elif not isinstance(nxt, dict):
            prefix = ".".join(parts[: i + 1])
            raise ExperimentError(f"cannot set {dotted!r}: {prefix!r} is a value, not a table")
        node = nxt
    node[parts[-1]] = value


def flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested tables → ``{"dotted.key": leaf}`` (lists and scalars are leaves)."""
    out: dict[str, Any] = {}
    for k, v in table.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any] | list[tuple[str, Any]]) -> dict[str, Any]:
    """Return a deep copy of ``data`` with dotted-key overrides applied."""
    out = json.loads(json.dumps(data))  # deep copy of plain TOML data
    items = overrides.items() if isinstance(overrides, dict) else overrides
    for key, value in items:
        _set_path(out, key, value)
    return out


def _describe(err: dict[str, Any]) -> str:
    loc = ".".join(str(p) for p in err.get("loc", ())) or "(top level)"
    if err.get("type") == "extra_forbidden":
        return f"unknown key {loc!r}"
    if err.get("type") == "missing":
        return f"missing key {loc!r}"
    got = err.get("input")
    got_txt = json.dumps(got) if isinstance(got, (str, int, float, bool, list)) else type(got).__name__
    if len(got_txt) > 40:
        got_txt = got_txt[:37] + "..."
    return f"{loc}: {err.get('msg', 'invalid')} (got {got_txt})"


def validate_config(model: type[ExperimentConfig], data: dict[str, Any], source: str) -> ExperimentConfig:
    """Validate plain TOML data into ``model``; errors become one-line :class:`ExperimentError`.

    Refuses NaN/±inf anywhere (:func:`check_finite`) and a ``module`` key (a spec never
    names code to import) before the model's own validation."""
    check_finite(data, source)
    if isinstance(data, dict) and "module" in data and "module" not in model.model_fields:
        raise ExperimentError(f"{source}: a spec does not name a module to import (found module = "
                              f"{json.dumps(data['module'])}); remove that line: experiments come from the "
                              "registry (`isackit list`)")
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        errs = exc.errors()
        msg = "; ".join(_describe(e) for e in errs[:3])
        if len(errs) > 3:
            msg += f"; and {len(errs) - 3} more"
        raise ExperimentError(f"{source}: {msg}") from None


def config_hash(config: ExperimentConfig) -> str:
    """Short stable hash of a resolved config (names run folders, guards ``--resume``)."""
    blob = json.dumps(config.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:8]


# ---------------------------------------------------------------------------------------
# writing the resolved config back as TOML (tomllib only reads)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v if x is not None) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items() if x is not None) + "}"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _toml_key(k: str) -> str:
    return k if re.match(r"^[A-Za-z0-9_-]+$", k) else json.dumps(k)


def to_toml(data: dict[str, Any]) -> str:
    """Write plain data (str/int/float/bool/list/dict; ``None`` is dropped) as TOML."""
    lines: list[str] = []

    def table(d: dict[str, Any], name: str | None) -> None:
        scalars = {k: v for k, v in d.items() if v is not None and not isinstance(v, dict)}
        tables = {k: v for k, v in d.items() if isinstance(v, dict)}
        if name is not None and (scalars or not tables):
            lines.append(f"\n[{name}]")
        for k, v in scalars.items():
            lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
        for k, v in tables.items():
            table(v, f"{name}.{_toml_key(k)}" if name else _toml_key(k))

    table(data, None)
    return "\n".join(lines).lstrip("\n") + "\n"
