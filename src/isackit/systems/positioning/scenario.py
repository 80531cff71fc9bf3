r"""S4 scenario: multi-BS MISO downlink AoD positioning (seed 004, Sec. II and IV-A).

I base stations (BSs) with N_t-element λ/2 ULAs at known positions q_i and orientations ψ_i
transmit T pilots s = 1 through precoders F_i ∈ C^{N_t×T} (unit Frobenius norm). The
single-antenna UE at p observes, per BS (seed eq. 2, with s = 1)

    y_i = α_i F_iᵀ ã_i(θ_i) + n_i,   n_i ~ CN(0, σ² I_T),   SNR_i = |α_i|²/σ²,

where θ_i = atan2(p_2 - q_i2, p_1 - q_i1) - ψ_i (seed eq. 3, ``isackit.geometry.scene``)
and ã_i is the TRUE (impaired) steering vector of BS i's array: element spacings
d = λ/2 + γ, γ ~ N(0, σ_λ²) (seed eq. 4) and/or mutual coupling ã = B a with B banded
symmetric Toeplitz from c (seed Sec. II-B2, IV-A).  The phase of α_i is uniform in [0, 2π).

Convention notes (see ``shared/design/conventions.md``):

* the library's steering vector is a_m = exp(+j π m sin θ) for a λ/2 ULA, which equals the
  seed's; a beam steered to θ_g is f = conj(a(θ_g)) (the seed writes a(θ_g), which with
  the aᵀ f response of eq. 1 would point at -θ_g);
* the ULA cannot tell front from back: a UE behind the array (|θ| > 90°, e.g. BS 2 of the
  seed at p = [0.5, 5] sees θ_2 ≈ 106.6°) produces a(θ) = a(180° - θ). Sectors are kept in
  the eq.-3 angle so that bearings stay unambiguous as long as a sector does not contain
  both θ and 180° - θ.

The observation itself is built by :func:`isackit.learning.positioning.observe` from the
signals layer's channel functions; this module holds the scenario: its validated settings,
the true arrays and the samplers of training / evaluation draws.

Everything is batch-first: angles ``(..., I)``, observations ``(..., I, T)``.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field, field_validator, model_validator

from ..._config import StrictModel

from ...geometry.arrays import ula
from ...geometry.scene import local_angles
from ...impairments.base import ArrayModel
from ...impairments.coupling import MutualCoupling, seed004_coefficients
from ...impairments.displacement import ElementDisplacement

__all__ = [
    "PositioningConfig",
    "ImpairmentKind",
    "build_arrays",
    "local_aods",
    "sample_aod_batch",
    "sample_position_batch",
    "position_sectors",
]

ImpairmentKind = Literal["none", "spacing", "coupling"]


def _coupling_vector(config: "PositioningConfig", zeta: float | None) -> torch.Tensor:
    """Seed-004 coupling coefficients (``isackit.impairments.coupling``), ζ sweep if set."""
    return seed004_coefficients(config.num_antennas, zeta, dtype=torch.complex128)


class PositioningConfig(StrictModel):
    """Validated S4 scenario (defaults = seed 004, Sec. IV-A/B).

    Angles are in degrees here (config edge) and converted once by the properties and
    methods.  ``spacing_std`` is σ_λ in wavelengths (0.01 = λ/100); ``coupling_zeta`` replaces
    the seed's |c_k| by exp(ζ k) (phases kept, B renormalised to the seed B's Frobenius norm);
    ``spacing_seeds`` fix the hardware realisation of each station's spacing errors (one
    explicit seed per station; the realisation is part of the scenario: the benchmark's bias
    floor depends on it, so it stays fixed across runs and library versions).
    """

    bs_positions: list[list[float]] = [[-5.0, 0.0], [3.0, 0.0]]
    bs_orientations_deg: list[float] = [0.0, 10.0]
    num_antennas: int = Field(32, ge=2)
    num_transmissions: int = Field(20, ge=2)
    wavelength: float = Field(10.7e-3, gt=0)
    # AoD autoencoder training distribution (seed IV-B)
    sector_centre_range_deg: list[float] = [-60.0, 60.0]
    sector_width_range_deg: list[float] = [10.0, 20.0]
    # evaluation sectors (seed Fig. 4: U_1 = [40°, 60°], U_2 = [-30°, -20°])
    eval_sectors_deg: list[list[float]] = [[40.0, 60.0], [-30.0, -20.0]]
    # position prior: square of the given area centred at prior_centre (seed: 10 m² in
    # front of the BSs; evaluation point p = [0.5, 5] m)
    prior_centre: list[float] = [0.5, 5.0]
    prior_area: float = Field(10.0, gt=0)
    eval_position: list[float] = [0.5, 5.0]
    sector_offset_deg: float = Field(15.0, ge=0)       # ν ~ U[-15°, 15°]
    sector_halfwidth_deg: float = Field(15.0, gt=0)    # U_i = θ_mid ± 15°
    # impairments
    impairment: ImpairmentKind = "none"
    spacing_std: float = Field(0.01, ge=0)
    coupling_zeta: float | None = None
    spacing_seeds: list[int] = [4000, 4001]

    @field_validator("bs_positions")
    @classmethod
    def _two_d(cls, v):
        if len(v) < 1 or any(len(q) != 2 for q in v):
            raise ValueError("bs_positions must be a non-empty list of (x, y) pairs in metres")
        return v

    @field_validator("sector_centre_range_deg", "sector_width_range_deg", "prior_centre", "eval_position")
    @classmethod
    def _pair(cls, v, info):
        if len(v) != 2:
            raise ValueError(f"{info.field_name} must have two entries, got {v}")
        return v

    @model_validator(mode="after")
    def _consistent(self):
        if len(self.bs_orientations_deg) != len(self.bs_positions):
            raise ValueError(f"bs_orientations_deg needs one entry per BS ({len(self.bs_positions)}), "
                             f"got {len(self.bs_orientations_deg)}")
        if self.num_transmissions % 2:
            raise ValueError("num_transmissions must be even (T/2 directional + T/2 derivative beams)")
        for sec in self.eval_sectors_deg:
            if len(sec) != 2 or not sec[1] > sec[0]:
                raise ValueError(f"each eval sector must be [min, max] with max > min (degrees), got {sec}")
        if not self.sector_width_range_deg[1] >= self.sector_width_range_deg[0] > 0:
            raise ValueError(f"sector_width_range_deg must be [min, max] with 0 < min <= max, "
                             f"got {self.sector_width_range_deg}")
        if len(self.eval_sectors_deg) != len(self.bs_positions):
            raise ValueError("eval_sectors_deg needs one sector per BS")
        if len(self.spacing_seeds) != len(self.bs_positions):
            raise ValueError(f"spacing_seeds needs one seed per BS ({len(self.bs_positions)}), "
                             f"got {len(self.spacing_seeds)}")
        return self

    # -- derived (radians / tensors) --------------------------------------------------
    @property
    def num_bs(self) -> int:
        return len(self.bs_positions)

    def bs_tensor(self, dtype=torch.float64, device=None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(q, ψ)``: BS positions ``(I, 2)`` metres and orientations ``(I,)`` radians."""
        q = torch.tensor(self.bs_positions, dtype=dtype, device=device)
        psi = torch.deg2rad(torch.tensor(self.bs_orientations_deg, dtype=dtype, device=device))
        return q, psi

    def eval_sectors(self, dtype=torch.float64, device=None) -> torch.Tensor:
        """Evaluation sectors ``(I, 2)`` = [θ_min, θ_max] in radians."""
        return torch.deg2rad(torch.tensor(self.eval_sectors_deg, dtype=dtype, device=device))

    @property
    def prior_side(self) -> float:
        return math.sqrt(self.prior_area)


def build_arrays(config: PositioningConfig, impairment: ImpairmentKind | None = None,
                 spacing_std: float | None = None, coupling_zeta: float | None = None
                 ) -> list[ArrayModel]:
    """The TRUE array of each BS, ``[ArrayModel] * I`` (positions in metres, λ = config).

    Spacing perturbations of BS i are drawn once from a generator seeded with
    ``config.spacing_seeds[i]`` (a fixed hardware realisation); sweeping ``spacing_std``
    rescales the same draw.
    The receiver/benchmark model of every array is ``model.ideal()`` (impairments unknown).
    """
    kind = config.impairment if impairment is None else impairment
    sigma = config.spacing_std if spacing_std is None else spacing_std
    zeta = config.coupling_zeta if coupling_zeta is None else coupling_zeta
    arrays = []
    for i in range(config.num_bs):
        geom = ula(config.num_antennas, 0.5, config.wavelength, name=f"BS{i + 1}")
        imps = []
        if kind == "spacing":
            g = torch.Generator().manual_seed(int(config.spacing_seeds[i]))
            imps.append(ElementDisplacement.spacing_perturbation(
                config.num_antennas, std=sigma * config.wavelength, generator=g, dtype=torch.float64))
        elif kind == "coupling":
            imps.append(MutualCoupling(_coupling_vector(config, zeta)))
        arrays.append(ArrayModel(geom, imps))
    return arrays


def local_aods(positions: torch.Tensor, bs_positions: torch.Tensor, orientations: torch.Tensor
               ) -> torch.Tensor:
    """θ_i = atan2(p_2 - q_i2, p_1 - q_i1) - ψ_i (seed eq. 3, :func:`isackit.geometry.scene.local_angles`,
    wrapped to (-π, π]): positions ``(..., 2)`` → ``(..., I)``."""
    az, _ = local_angles(positions.unsqueeze(-2), bs_positions.to(positions), orientations.to(positions))
    return az


def _repeat(x: torch.Tensor, repeats: int, batch: int) -> torch.Tensor:
    return x.repeat_interleave(repeats, dim=0)[:batch]


def sample_aod_batch(config: PositioningConfig, batch: int, generator: torch.Generator,
                     mode: Literal["random", "eval"] = "random", dtype=torch.float32, device=None,
                     repeats: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """AoD-AE training draw: sectors ``(B, I, 2)`` and true AoDs ``(B, I)`` (radians).

    ``mode="random"`` (seed IV-B): centre ~ U(sector_centre_range), width ~
    U(sector_width_range), θ ~ U(sector). ``mode="eval"``: the evaluation sectors, θ ~ U.
    ``repeats`` > 1 draws ceil(B / repeats) sectors and uses each for ``repeats`` consecutive
    samples (θ still drawn per sample): fewer precoder evaluations per batch.
    """
    I = config.num_bs
    u = torch.rand((batch, I, 3), generator=generator, dtype=dtype, device=device)
    if repeats > 1:
        n = -(-batch // repeats)
        u = torch.cat([_repeat(u[:n, :, :2], repeats, batch), u[..., 2:]], dim=-1)
    if mode == "random":
        c0, c1 = (math.radians(v) for v in config.sector_centre_range_deg)
        w0, w1 = (math.radians(v) for v in config.sector_width_range_deg)
        centre = c0 + (c1 - c0) * u[..., 0]
        width = w0 + (w1 - w0) * u[..., 1]
        sectors = torch.stack([centre - width / 2, centre + width / 2], dim=-1)
    elif mode == "eval":
        sectors = config.eval_sectors(dtype, device).expand(batch, I, 2)
    else:
        raise ValueError(f"mode must be 'random' or 'eval', got {mode!r}")
    theta = sectors[..., 0] + (sectors[..., 1] - sectors[..., 0]) * u[..., 2]
    return sectors, theta


def position_sectors(theta: torch.Tensor, offsets: torch.Tensor, halfwidth: float) -> torch.Tensor:
    """U_i = [θ_i + ν_i - w, θ_i + ν_i + w] ``(..., I, 2)`` from AoDs and offsets ν ``(..., I)``."""
    mid = theta + offsets
    return torch.stack([mid - halfwidth, mid + halfwidth], dim=-1)


def sample_position_batch(config: PositioningConfig, batch: int, generator: torch.Generator,
                          dtype=torch.float32, device=None, repeats: int = 1
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Position-AE training draw (seed IV-B): ``(p (B, 2), θ (B, I), sectors (B, I, 2))``.

    p ~ U(square of area ``prior_area`` centred at ``prior_centre``), θ from eq. 3,
    sectors θ_i + ν_i ± halfwidth with ν_i ~ U[-offset, offset].  ``repeats`` > 1 uses each
    (p, ν) draw for ``repeats`` consecutive samples (they differ by gain and noise).
    """
    q, psi = config.bs_tensor(dtype, device)
    n = -(-batch // max(int(repeats), 1))
    u = torch.rand((n, 2), generator=generator, dtype=dtype, device=device) - 0.5
    p = torch.tensor(config.prior_centre, dtype=dtype, device=device) + config.prior_side * u
    nu = (2 * torch.rand((n, config.num_bs), generator=generator, dtype=dtype, device=device) - 1)
    if repeats > 1:
        p, nu = _repeat(p, repeats, batch), _repeat(nu, repeats, batch)
    theta = local_aods(p, q, psi)
    nu = nu * math.radians(config.sector_offset_deg)
    return p, theta, position_sectors(theta, nu, math.radians(config.sector_halfwidth_deg))
