r"""Named impairment presets — the library's one vocabulary of impairment names — and a
chain builder for configuration files.

Configs, experiments and systems name impairments by these preset names (``"ideal"`` is
the empty chain, no impairment); :func:`check_impairment_name` validates a name with a
one-line error listing the known ones.

``make_impairment("seed004-coupling", num_elements=32, zeta=-0.5)`` builds an impairment by
name; ``make_chain(["seed004-spacing", {"name": "seed004-coupling", "zeta": -1.0}], ...)``
builds the list an :class:`~isackit.impairments.ArrayModel` takes.  Random presets need a
``generator`` keyword (explicit randomness).  The presets and their defaults:

======================  ===================================================================
``ideal``               no impairment (the empty chain; only in :func:`make_chain`)
``seed004-coupling``    :meth:`MutualCoupling.seed004` (c of seed 004; ``zeta`` sweep)
``seed004-spacing``     :meth:`ElementDisplacement.spacing_perturbation`, σ = λ/100 (seed 004:
                        ``num_elements`` = 32, ``wavelength`` = 10.7 mm, ``std_fraction`` = 0.01)
``seed003-rician-vm``   :meth:`GainPhaseError.rician_von_mises`; seed 003's Table II lost its
                        values: defaults ν = 1, σ = 0.1, κ = 10 (our choice, documented)
``seed002-phase``       :meth:`SmoothPhaseError.sample`, M = 4, N = 16 subcarriers (seed 002)
``gain-phase``          :class:`GainPhaseError` from fixed ``gain``/``phase``
``gain-phase-gaussian`` :meth:`GainPhaseError.gaussian` (dB / degree standard deviations)
``gain-phase-uniform``  :meth:`GainPhaseError.uniform`
``coupling``            :class:`MutualCoupling` from ``coefficients``
``displacement``        :class:`ElementDisplacement` from ``displacement``
``displacement-gaussian`` :meth:`ElementDisplacement.gaussian`
``phase-table``         :class:`TabulatedPhaseError` (``angle_grid``, ``table``)
``timing``              :class:`TimingOffset` from ``delay``
======================  ===================================================================
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from .angle_phase import SmoothPhaseError, TabulatedPhaseError
from .base import Impairment
from .coupling import MutualCoupling
from .displacement import ElementDisplacement
from .gain_phase import GainPhaseError
from .timing import TimingOffset

__all__ = ["IDEAL", "PRESETS", "check_impairment_name", "make_impairment", "make_chain", "list_presets"]

#: the name of the empty chain (no impairment)
IDEAL = "ideal"


def _seed004_spacing(num_elements: int = 32, wavelength: float = 10.7e-3, std_fraction: float = 0.01,
                     **kwargs) -> ElementDisplacement:
    return ElementDisplacement.spacing_perturbation(num_elements, std_fraction * wavelength, **kwargs)


def _seed003(num_elements: int, **kwargs) -> GainPhaseError:
    return GainPhaseError.rician_von_mises(num_elements, **kwargs)


def _seed002(num_elements: int = 4, num_subcarriers: int | None = 16, **kwargs) -> SmoothPhaseError:
    return SmoothPhaseError.sample(num_elements, num_subcarriers, **kwargs)


PRESETS: dict[str, Callable[..., Impairment]] = {
    "seed004-coupling": MutualCoupling.seed004,
    "seed004-spacing": _seed004_spacing,
    "seed003-rician-vm": _seed003,
    "seed002-phase": _seed002,
    "gain-phase": GainPhaseError,
    "gain-phase-gaussian": GainPhaseError.gaussian,
    "gain-phase-uniform": GainPhaseError.uniform,
    "coupling": MutualCoupling,
    "displacement": ElementDisplacement,
    "displacement-gaussian": ElementDisplacement.gaussian,
    "phase-table": TabulatedPhaseError,
    "timing": TimingOffset,
}


def list_presets() -> list[str]:
    """The names :func:`make_impairment` knows."""
    return sorted(PRESETS)


def check_impairment_name(name: str) -> str:
    """Return ``name`` if it is ``"ideal"`` or a preset name, else raise a one-line ``ValueError``."""
    if name != IDEAL and name not in PRESETS:
        raise ValueError(f"unknown impairment {name!r}; expected {IDEAL!r} or one of: {', '.join(list_presets())}")
    return name


def make_impairment(name: str, **kwargs) -> Impairment:
    """Build the impairment preset ``name`` with keyword arguments (see the module table).

    Raises:
        ValueError: unknown name (the message lists the known ones) or bad arguments.
    """
    if name not in PRESETS:
        raise ValueError(f"unknown impairment preset {name!r}; expected one of: {', '.join(list_presets())}")
    try:
        return PRESETS[name](**kwargs)
    except TypeError as err:
        raise ValueError(f"bad arguments for impairment preset {name!r}: {err}") from err


def make_chain(specs: Iterable, **common) -> list[Impairment]:
    """Build an impairment chain from specs, in order.

    Each spec is an :class:`Impairment` (kept as is), a preset name, or a mapping
    ``{"name": ..., **kwargs}``; ``"ideal"`` adds nothing (so ``["ideal"]`` is the ideal array).

    ``common`` keywords (e.g. ``generator``, ``dtype``) are passed to every preset built from
    a name or mapping that does not set them itself.

    Example:
        >>> make_chain(["ideal"])
        []
        >>> [type(i).__name__ for i in make_chain([{"name": "coupling", "coefficients": [1.0, 0.2]}])]
        ['MutualCoupling']
    """
    chain: list[Impairment] = []
    for spec in specs:
        if isinstance(spec, Impairment):
            chain.append(spec)
        elif isinstance(spec, str):
            if spec != IDEAL:
                chain.append(make_impairment(spec, **common))
        elif isinstance(spec, Mapping):
            kw = dict(spec)
            if "name" not in kw:
                raise ValueError(f"an impairment spec mapping needs a 'name' key, got {sorted(kw)}")
            name = kw.pop("name")
            chain.append(make_impairment(name, **{**common, **kw}))
        else:
            raise ValueError(f"an impairment spec must be an Impairment, a preset name or a mapping, "
                             f"got {type(spec).__name__}")
    return chain
