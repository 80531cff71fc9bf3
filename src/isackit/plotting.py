"""Moved to :mod:`isackit.experiments.plotting`; this alias goes once every importer has
switched (it re-exports the public names and the private helpers importers still use)."""

from .experiments.plotting import *  # noqa: F401,F403
from .experiments.plotting import __all__, _slug, _use_agg  # noqa: F401
