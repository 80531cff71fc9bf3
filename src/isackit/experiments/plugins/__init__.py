r"""The built-in experiment plug-ins: a static table from experiment name to the module that
registers it.

:func:`isackit.experiments.registry.get_experiment` imports a module from this table (or a
third-party plug-in from the ``isackit.experiments`` entry-point group) only when the
experiment is asked for, so ``isackit list`` and ``isackit --help`` stay fast.  A spec file
names an experiment, never a module: the only code a spec can run is code listed here or
installed as a plug-in.

Adding a built-in experiment: put its module in this package (``plugins/<name>.py``, with
its figures in ``plugins/<name>_figures.py`` if any), register it with
:func:`~isackit.experiments.registry.register_experiment` and add one line below.

>>> BUILTIN["doa"]
'isackit.experiments.plugins.doa'
"""

from __future__ import annotations

__all__ = ["BUILTIN"]

#: experiment name -> module that registers it (imported on first use)
BUILTIN: dict[str, str] = {
    "doa": "isackit.experiments.plugins.doa",
    "calibration": "isackit.experiments.plugins.calibration",
    "positioning": "isackit.experiments.plugins.positioning",
    "bistatic": "isackit.experiments.plugins.bistatic",
    "direction_finding": "isackit.experiments.plugins.direction_finding",
    "pascal": "isackit.experiments.plugins.pascal",
}
