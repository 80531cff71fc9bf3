r"""The one config idiom: frozen, strict, validated pydantic models.

Every config object in isackit — a system's scenario, a receiver, a training run, an
evaluation, an experiment spec — subclasses :class:`StrictModel`:

* ``extra="forbid"``: an unknown key is an error naming the key;
* ``strict=True``: no silent coercion (``"10"`` is not ``10``); an ``int`` is accepted where
  a ``float`` is expected;
* ``frozen=True``: configs are values; derive a changed copy with ``model_copy(update=...)``;
* ``allow_inf_nan=False``: NaN and ±inf are rejected for every float field.

Group fields by concern in nested models (``scenario``, ``receiver``, ``training``,
``evaluation``); derived quantities are properties.  Use ``list[...]`` for sequences (TOML
arrays are lists).

Example:
    >>> from pydantic import Field, ValidationError
    >>> class Scenario(StrictModel):
    ...     elements: int = Field(8, ge=1)
    ...     spacing: float = Field(0.5, gt=0)
    >>> Scenario(elements=4).spacing
    0.5
    >>> try:
    ...     Scenario(spacing=float("inf"))
    ... except ValidationError as e:
    ...     print("rejected")
    rejected
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["StrictModel", "STRICT"]

#: The model configuration shared by every config model.
STRICT = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


class StrictModel(BaseModel):
    """Base of every config model: unknown keys, coercions and NaN/±inf are errors."""

    model_config = STRICT
