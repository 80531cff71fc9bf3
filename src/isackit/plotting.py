"""Moved to :mod:`isackit.experiments.plotting`; ``isackit.plotting`` is the same module object
until every importer has switched (then this alias goes)."""

import sys

from .experiments import plotting as _plotting

sys.modules[__name__] = _plotting
