"""System S1 (seed 001): bistatic communication-centric ISAC — PARAMING, IFFT-C2VNN, grid
baselines, CRB and Doppler.

Modules: ``config`` (the scenario, Table I defaults), ``scenario`` (paths, CSI, pilots, LS
estimates), ``complexity`` (operation counts of seed §IV).  The algorithms live in their
layers: PARAMING in :mod:`isackit.estimators.parametric`, the K-source DML in
:mod:`isackit.estimators.joint_likelihood`, the CRB in :mod:`isackit.bounds.channel`.
"""

from .config import ScenarioConfig
from .scenario import Paths, arrays, channel, observe, pair_paths, sample_paths, transmit_pilots

__all__ = ["Paths", "ScenarioConfig", "arrays", "channel", "observe", "pair_paths", "sample_paths",
           "transmit_pilots"]
