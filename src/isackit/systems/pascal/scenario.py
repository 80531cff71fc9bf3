r"""The S3 world: drones, horizontal URA, pilot frames with gain-phase errors, and the DLDD
communication metrics (seed 003, Secs. II, III-B, V).

A :class:`PascalWorld` is a selection of drones from a :class:`~.config.ScenarioConfig` with
their power split (and, for Fig. 5, ranges): truth η = (φ_k, ϑ_k, f_k), amplitudes
c_k = √ρ_k d_ref/d_k, pilots, frame layout, error law.  With σ² = 10^{−SNR/10}, drone k's
per-element SNR with an ideal element is G_k = c_k²/σ² = ρ_k SNR (d_ref/d_k)².

Observations (batched over trials, explicit generators):

* :func:`pilot_observations` — the first L_p pilots ``(B, M, L_p)`` (DLDD localisation) and the
  errors a data symbol sees (the pilots' ζ for frame coherence, a fresh draw for signal
  coherence), for the SINR;
* :func:`subframe_observations` — one subframe ``(B, M, N)``: the pilot then N − 1 data symbols
  (JLDD), with the transmitted symbol indices.

DLDD metrics: :func:`dldd_sum_rate` — Σ_k log2(1 + γ_k) of MRC with ĥ_k = a(φ̂_k, ϑ̂_k)
(:func:`~isackit.signals.mrc.mrc_sinr`); bounds: :func:`crlb` (the seed's average CRLB,
:func:`~isackit.bounds.statistical.average_crlb`) and :func:`analytic_sum_rate`
(:func:`~isackit.bounds.rate.average_sum_rate`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ...bounds.rate import average_sum_rate
from ...bounds.statistical import average_crlb, genie_crb
from ...estimators.statistical import KnownPilots, LikelihoodSearch
from ...geometry.arrays import ArrayGeometry, horizontal_ura
from ...impairments.distributions import ElementErrorDistribution, ErrorMoments
from ...seeding import make_generator
from ...signals.constellations import constellation_points
from ...signals.frames import FrameLayout, draw_element_errors, received_frame, uplink_signal
from ...signals.mrc import mrc_sinr, sum_rate
from ...signals.random import noise_variance_from_snr
from .config import ScenarioConfig

__all__ = ["PascalWorld", "build_world", "pilot_observations", "subframe_observations", "dldd_sum_rate", "crlb",
           "analytic_sum_rate", "genie_bound"]


@dataclass(frozen=True, eq=False)
class PascalWorld:
    """The drones of one experiment point and everything the receiver knows about them.

    Attributes:
        array: the horizontal URA.  truth: ``(K, 3)`` (φ rad, ϑ rad, f Hz).
        amplitudes: ``(K,)`` c_k = √ρ_k d_ref/d_k.  pilots: ``(K, L)`` unit-modulus pilots.
        layout: the frame.  law: the error law drawn (``None``: ideal array).
        coherence: ``"frame"`` or ``"signal"``.  points: ``(Q,)`` data constellation.
        search: grids and stop rule of the likelihood searches.
    """

    array: ArrayGeometry
    truth: torch.Tensor
    amplitudes: torch.Tensor
    pilots: torch.Tensor
    layout: FrameLayout
    law: ElementErrorDistribution | None
    coherence: str
    points: torch.Tensor
    search: LikelihoodSearch

    @property
    def num_drones(self) -> int:
        return int(self.truth.shape[0])

    @property
    def moments(self) -> ErrorMoments:
        return ErrorMoments.ideal() if self.law is None else self.law.moments()

    @staticmethod
    def noise_var(snr_db: float) -> float:
        """σ² = 10^(−SNR/10) (unit reference power)."""
        return noise_variance_from_snr(snr_db)

    def gains(self, snr_db: float) -> torch.Tensor:
        """G_k = c_k² SNR, ``(K,)``."""
        return self.amplitudes ** 2 / self.noise_var(snr_db)

    def pilot_times(self, num_pilots: int) -> torch.Tensor:
        return self.layout.pilot_times(num_pilots)

    def known_pilots(self, num_pilots: int, snr_db: float) -> KnownPilots:
        """The receiver's statistical model of the first ``num_pilots`` pilots."""
        wave = (self.pilots[:, :num_pilots] * self.amplitudes[:, None]).to(torch.complex128)
        return KnownPilots.from_errors(self.array, wave, self.pilot_times(num_pilots), self.noise_var(snr_db),
                                       self.moments, self.coherence)


def build_world(scenario: ScenarioConfig, drones: list[int], power_split: list[float] | None = None,
                ranges_m: list[float] | None = None) -> PascalWorld:
    """The world of the 1-based ``drones`` of ``scenario`` (equal split by default)."""
    scenario.check_selection(drones, power_split)
    K = len(drones)
    rho = [1.0 / K] * K if power_split is None else list(power_split)
    rows, amps = [], []
    for j, i in enumerate(drones):
        d = scenario.drones[i - 1]
        rng = d.range_m if ranges_m is None else float(ranges_m[j])
        rows.append([math.radians(d.azimuth_deg), math.radians(d.elevation_deg), scenario.doppler_hz(i - 1)])
        amps.append(math.sqrt(rho[j]) * scenario.reference_range_m / rng)
    a = scenario.array
    array = horizontal_ura(a.num_x, a.num_y, a.spacing, scenario.wavelength_m)
    L = scenario.frame.num_subframes
    g = make_generator(scenario.pilot_seed, "pascal", "pilots")
    q = torch.randint(0, 4, (len(scenario.drones), L), generator=g).double()[[i - 1 for i in drones]]
    pilots = torch.polar(torch.ones(K, L, dtype=torch.float64), math.pi / 4 + q * math.pi / 2).to(torch.complex128)
    return PascalWorld(array=array, truth=torch.tensor(rows, dtype=torch.float64),
                       amplitudes=torch.tensor(amps, dtype=torch.float64), pilots=pilots,
                       layout=scenario.frame.layout(), law=scenario.errors.distribution(),
                       coherence=scenario.errors.coherence,
                       points=constellation_points(scenario.constellation, torch.complex128),
                       search=scenario.search.likelihood_search(scenario.doppler_max_hz))


def _errors(world: PascalWorld, batch: int, num_signals: int, generator) -> torch.Tensor | None:
    if world.law is None:
        return None
    return draw_element_errors(world.law, world.array.num_elements, (batch,), coherence=world.coherence,
                               num_signals=num_signals, generator=generator, dtype=torch.complex128)


def pilot_observations(world: PascalWorld, batch: int, snr_db: float, num_pilots: int,
                       generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""The first L_p pilots ``(B, M, L_p)``, the pilots' errors ``(B, M, 1 | L_p)`` (ones for an
    ideal array; what a genie knows) and the errors ζ ``(B, M)`` a data symbol sees."""
    K, M = world.num_drones, world.array.num_elements
    t = world.pilot_times(num_pilots)
    E = world.truth.expand(batch, K, 3)
    u = uplink_signal(world.array, E[..., 0], E[..., 1], E[..., 2], world.amplitudes.expand(batch, K),
                      world.pilots[:, :num_pilots].expand(batch, K, num_pilots), t)
    z = _errors(world, batch, num_pilots, generator)
    y = received_frame(u, z, world.noise_var(snr_db), generator)
    if z is None:
        z = torch.ones(batch, M, 1, dtype=torch.complex128)
        zs = z[..., 0]
    elif world.coherence == "frame":
        zs = z[..., 0]
    else:  # a data symbol's errors are a fresh draw, independent of the pilots'
        zs = _errors(world, batch, 1, generator)[..., 0]
    return y, z, zs


def subframe_observations(world: PascalWorld, batch: int, snr_db: float, generator: torch.Generator
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Subframe 1: y ``(B, M, N)`` (pilot, then N − 1 data symbols) and the symbol indices
    ``(B, K, N)`` (−1 at the pilot)."""
    K, N = world.num_drones, world.layout.subframe_length
    t = world.layout.times()[0]
    idx = torch.randint(0, world.points.numel(), (batch, K, N), generator=generator)
    idx[..., 0] = -1
    sym = world.points[idx.clamp(min=0)]
    sym[..., 0] = world.pilots[:, 0]
    E = world.truth.expand(batch, K, 3)
    u = uplink_signal(world.array, E[..., 0], E[..., 1], E[..., 2], world.amplitudes.expand(batch, K), sym, t)
    z = _errors(world, batch, N, generator)
    return received_frame(u, z, world.noise_var(snr_db), generator), idx


def dldd_sum_rate(world: PascalWorld, estimates: torch.Tensor, errors: torch.Tensor, snr_db: float) -> torch.Tensor:
    r"""Per-trial SDR Σ_k log2(1 + γ_k) of MRC with the rebuilt ĥ_k = a(φ̂_k, ϑ̂_k), ``(B,)``.

    ``estimates`` ``(B, K, 3)``, ``errors`` ζ ``(B, M)`` of the data symbol."""
    Ah = world.array.steering(estimates[..., 0], estimates[..., 1]).to(torch.complex128)
    A = world.array.steering(world.truth[:, 0], world.truth[:, 1]).to(torch.complex128)
    H = errors[..., :, None] * A
    return sum_rate(mrc_sinr(Ah, H, world.gains(snr_db)))


def crlb(world: PascalWorld, snr_db: float, num_pilots: int) -> torch.Tensor:
    """The seed's average CRLB ``(K, 3)`` (rad², rad², Hz²) of the first ``num_pilots`` pilots."""
    wave = (world.pilots[:, :num_pilots] * world.amplitudes[:, None]).to(torch.complex128)
    return average_crlb(world.array, world.truth, wave, world.pilot_times(num_pilots), world.noise_var(snr_db),
                        world.moments, world.coherence)


def genie_bound(world: PascalWorld, snr_db: float, num_pilots: int, draws: int, generator) -> torch.Tensor:
    """E_ζ[CRB(η | ζ)] ``(K, 3)`` over ``draws`` error draws (the G-ML bound)."""
    wave = (world.pilots[:, :num_pilots] * world.amplitudes[:, None]).to(torch.complex128)
    z = _errors(world, draws, num_pilots, generator)
    if z is None:
        z = torch.ones(draws, world.array.num_elements, 1, dtype=torch.complex128)
    return genie_crb(world.array, world.truth, wave, world.pilot_times(num_pilots), world.noise_var(snr_db), z)


def analytic_sum_rate(world: PascalWorld, snr_db: float, angle_std: torch.Tensor, angle_bias: torch.Tensor | None = None,
                      order: int = 2) -> float:
    r"""The seed's analytic average SDR (order 1 or 2) for angle errors N(bias, diag std²),
    ``angle_std`` ``(K, 2)`` radians."""
    return float(average_sum_rate(world.array, world.truth[:, :2], world.gains(snr_db), world.moments,
                                  angle_std, angle_bias, order=order))
