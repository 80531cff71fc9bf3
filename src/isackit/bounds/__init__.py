"""Performance bounds (layer 5): Fisher information, CRBs, PEB, misspecified and average bounds.

* :mod:`.fisher` — generic Slepian–Bangs FIM with autograd Jacobians; CRB by Schur complement.
* :mod:`.doa` — DOA / single-path CRBs for any (impaired) :class:`~isackit.impairments.ArrayModel`,
  closed forms and the generic route, tested against each other.
* :mod:`.position` — PEB through the Jacobian of the scene geometry.
* :mod:`.average` — CRBs averaged over impairment draws; seed 003's moment-matched model.
* :mod:`.tones` — CRB of one direction on K tones with a subcarrier-dependent response (seed 002).
* :mod:`.mismatch` — misspecified CRB (pseudo-true parameter, bias) for a mismatched array model.
* :mod:`.aod` — AoD positioning with precoded pilots: AoD CRB, PEB, MCRB and the CRB-optimal
  precoder power allocation (seed 004).
* :mod:`.statistical` — seed 003's average CRLB (moment-matched proper Gaussian, frame- or
  signal-coherent errors) with the structured FIM, and the genie (errors-known) bound.
* :mod:`.rate` — seed 003's average sum data rate of MRC: exact conditional moments, Gauss–Hermite
  averaging over the angle errors, first- and second-order approximations.
"""

from .average import (
    average_crb_doa,
    fisher_random_gain_phase,
    fisher_real_gaussian_entries,
    gain_phase_moments,
)
from .doa import crb_doa_deterministic, crb_doa_stochastic, crb_single_path, crb_unknown_gains
from .fisher import (
    batched_jacobian,
    crb_from_fim,
    fisher_deterministic,
    fisher_gaussian,
    fisher_stochastic,
    merge_complex,
    split_complex,
)
from .mismatch import (
    MisspecifiedBound,
    mcrb_deterministic,
    mcrb_doa_deterministic,
    pseudo_true_parameters,
)
from .position import aoa_map, fisher_position, peb, peb_aoa, peb_from_fim
from .statistical import average_crlb, fisher_statistical, genie_crb
from .tones import crb_doa_tones

__all__ = [
    "MisspecifiedBound",
    "aoa_map",
    "average_crb_doa",
    "average_crlb",
    "fisher_statistical",
    "genie_crb",
    "batched_jacobian",
    "crb_doa_deterministic",
    "crb_doa_stochastic",
    "crb_doa_tones",
    "crb_from_fim",
    "crb_single_path",
    "crb_unknown_gains",
    "fisher_deterministic",
    "fisher_gaussian",
    "fisher_position",
    "fisher_random_gain_phase",
    "fisher_real_gaussian_entries",
    "fisher_stochastic",
    "gain_phase_moments",
    "mcrb_deterministic",
    "mcrb_doa_deterministic",
    "merge_complex",
    "peb",
    "peb_aoa",
    "peb_from_fim",
    "pseudo_true_parameters",
    "split_complex",
]

from .aod import (  # noqa: E402
    PowerAllocation,
    aod_crb,
    aod_crbs,
    aod_information,
    crb_optimal_precoder,
    mcrb_aod,
    mcrb_position,
    optimal_power_allocation,
    position_peb,
)

__all__ += ["aod_crb", "aod_crbs", "position_peb", "mcrb_aod", "mcrb_position", "aod_information",
            "PowerAllocation", "optimal_power_allocation", "crb_optimal_precoder"]
