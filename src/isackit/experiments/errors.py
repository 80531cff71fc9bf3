"""The one exception type for user errors in the experiments layer (kept in a module without
dependencies, so the command line can catch it without importing torch).

>>> issubclass(ExperimentError, ValueError)
True
"""

from __future__ import annotations

__all__ = ["ExperimentError"]


class ExperimentError(ValueError):
    """A user error in an experiment spec, an override, a run folder or a CLI argument.

    The message is one line saying what is wrong; the CLI prints it and exits with code 2.
    """
