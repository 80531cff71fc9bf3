"""Moved to :mod:`isackit.experiments.plotting`; this alias goes away once every importer
has switched."""

from .experiments.plotting import *  # noqa: F401,F403
from .experiments.plotting import __all__  # noqa: F401
