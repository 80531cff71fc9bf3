r"""Differentiable ISAC transmitter and OMP sensing receiver of system S0 on the ASSUMED model.

Transmitter (seed 000; conventions.md): the max-array-response beam towards θ is
f(θ) = conj(â_t(θ)) / ||â_t(θ)||; the sensing beam over the prior sector [μ - w/2, μ + w/2]
is the normalised sum of such beams over ``sector_beam_points`` evenly spaced directions; the
ISAC precoder is

    f = (sqrt(η) f_s + sqrt(1-η) e^{jφ} f_c) / || · ||,

with f_c the beam towards the (known) UE direction.  â_t is the LEARNED Tx model, so f is
differentiable with respect to its gains, phases and element positions.

Receiver: OMP over an angle-delay grid with the learned models —
:func:`isackit.estimators.sparse.omp_angle_delay` (separable dictionary, LS re-fit of all picked
atoms, correlation map updated per iteration, never the full dictionary).  The dictionary atom
of (θ, τ) is d(θ, τ) = â_r(θ) (â_t(θ)^T f) (x ⊙ b(τ))^T.  Its Tx factor â_t(θ)^T f is one
complex scalar per atom, absorbed by the LS gain, so the NORMALISED correlation of the
residual with the atom does not depend on it: the detection statistic (the GLRT of one atom
with unknown gain) is

    s(θ, τ) = |z(θ, τ)|² / (σ² ||â_r(θ)||² ||x||²),   z(θ, τ) = â_r(θ)^H R conj(x ⊙ b(τ)),

Exp(1)-distributed per grid point under noise only.  (Weighting s by the learned beam
pattern |â_t(θ)^T f|², i.e. using the un-normalised atom, biased the angle estimates towards
the beam's maximum: a 10x larger median angle error with the true model in our check.)  The
learned Tx model acts on sensing through the transmitted f, i.e. through the channel.

The search covers, per scene, the W angle-grid points around its prior sector (sector width
max + 2 margins) × the delay grid of [R_min, R_max].  Iterations stop at K_max or at the first
statistic below the threshold, set for a target P_fa on noise-only frames by
:func:`calibrate_threshold`.  Differentiable relaxation (C1's): the picks are discrete; the
estimate is the softmax-weighted mean over the (2w+1)² grid patch around each pick,
p ∝ exp(s / (T s_peak)), recomputed differentiably from the learned atoms; the peaks, LS gains
and residual norms are differentiable too (w.r.t. Y and the learned Rx parameters).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ...constants import SPEED_OF_LIGHT
from ...estimators.sparse import omp_angle_delay
from ...impairments.base import ArrayModel
from ...signals.ofdm import OFDMConfig
from ...metrics import threshold_for_false_alarm
from ...signals.random import awgn
from .config import CalibrationConfig
from .station import Scenes, delay_response

__all__ = ["ReceiverGrid", "sector_beam", "steered_beam", "isac_precoder", "beam_pattern", "abs2",
           "SoftDetections", "omp_receiver", "ls_fit", "residual_energy", "calibrate_threshold",
           "Transceiver"]


# ------------------------------------------------------------------------------------------
# transmitter
# ------------------------------------------------------------------------------------------
def abs2(z: torch.Tensor) -> torch.Tensor:
    """|z|² as Re² + Im² (no square root; cheaper than ``z.abs()**2`` forward and backward)."""
    return z.real.square() + z.imag.square()


def _normalise(f: torch.Tensor) -> torch.Tensor:
    return f / abs2(f).sum(-1, keepdim=True).clamp_min(1e-60).sqrt()


def steered_beam(tx: ArrayModel, angle: torch.Tensor) -> torch.Tensor:
    """Max-response beam f = conj(â(θ))/||â(θ)||: ``(...,)`` angles → ``(..., M_t)``. Differentiable."""
    a = tx.steering(angle.unsqueeze(-1))[..., 0]
    return _normalise(a.conj())


def sector_beam(tx: ArrayModel, center: torch.Tensor, width: torch.Tensor, points: int) -> torch.Tensor:
    """Sensing beam over [c - w/2, c + w/2]: normalised Σ_i conj(â(θ_i)) over ``points`` directions."""
    offs = torch.linspace(-0.5, 0.5, points, dtype=center.dtype, device=center.device)
    ang = center.unsqueeze(-1) + offs * width.unsqueeze(-1)                    # (..., P)
    a = tx.steering(ang)                                                       # (..., M, P)
    return _normalise((a.conj() / abs2(a).sum(-2, keepdim=True).sqrt()).sum(-1))


def isac_precoder(tx: ArrayModel, scenes: Scenes, cfg: CalibrationConfig) -> torch.Tensor:
    """f = normalise(sqrt(η) f_s + sqrt(1-η) e^{jφ} f_c): ``(B, M_t)``, unit norm."""
    f_s = sector_beam(tx, scenes.sector_center, scenes.sector_width, cfg.sector_beam_points)
    f_c = steered_beam(tx, scenes.ue_angle)
    rot = complex(math.cos(cfg.comm_phase), math.sin(cfg.comm_phase))
    return _normalise(math.sqrt(cfg.eta) * f_s + math.sqrt(1.0 - cfg.eta) * rot * f_c)


def beam_pattern(tx: ArrayModel, f: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """|â_t(θ)^T f|² for f ``(B, M_t)`` and angles ``(G,)`` or ``(B, G)`` → ``(B, G)``."""
    A = tx.steering(angles)                                                    # (M,G) or (B,M,G)
    if A.ndim == 2:
        return abs2(f @ A)
    return abs2((f.unsqueeze(-2) @ A).squeeze(-2))


# ------------------------------------------------------------------------------------------
# grids
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class ReceiverGrid:
    """Search grid of the OMP receiver.

    Attributes:
        angles: ``(G_a,)`` rad, evenly spaced over the configured span.
        delays: ``(G_d,)`` s, evenly spaced over [2 R_min / c, 2 R_max / c].
        delay_atoms: ``(G_d, N)`` complex, b(τ_g)_n = exp(-j 2π n Δf τ_g).
        window: W, the number of angle points searched around each prior sector.
    """

    angles: torch.Tensor
    delays: torch.Tensor
    delay_atoms: torch.Tensor
    window: int

    @classmethod
    def from_config(cls, cfg: CalibrationConfig, dtype=torch.float32, device=None) -> ReceiverGrid:
        lo, hi = cfg.angle_grid_rad
        angles = torch.linspace(lo, hi, cfg.num_angle_grid, dtype=torch.float64)
        delays = torch.linspace(2 * cfg.range_min / SPEED_OF_LIGHT, 2 * cfg.range_max / SPEED_OF_LIGHT,
                                cfg.num_range_grid, dtype=torch.float64)
        atoms = delay_response(delays, cfg.ofdm)
        step = (hi - lo) / max(cfg.num_angle_grid - 1, 1)
        span = math.radians(cfg.sector_width_max_deg + 2 * cfg.search_margin_deg)
        window = min(cfg.num_angle_grid, int(math.ceil(span / step)) + 1)
        cdtype = torch.complex128 if dtype == torch.float64 else torch.complex64
        return cls(angles.to(dtype=dtype, device=device), delays.to(dtype=dtype, device=device),
                   atoms.to(dtype=cdtype, device=device), window)

    @property
    def angle_step(self) -> float:
        return float(self.angles[1] - self.angles[0]) if self.angles.numel() > 1 else 1.0

    def window_start(self, center: torch.Tensor) -> torch.Tensor:
        """First grid index ``(B,)`` of the W-point search window centred on each sector."""
        g = self.angles.numel()
        first = torch.round((center - self.angles[0]) / self.angle_step).long() - self.window // 2
        return first.clamp(0, g - self.window)


# ------------------------------------------------------------------------------------------
# the OMP receiver (isackit.estimators.sparse.omp_angle_delay) on each scene's sector window
# ------------------------------------------------------------------------------------------
@dataclass
class SoftDetections:
    """Output of the S0 receiver, each ``(B, K)``: soft angle (rad), soft delay (s), the
    detection statistic s = peak / σ² and the peak energy fraction |z|²/(||â_r||² ||x||²) of
    each OMP step, the detection mask (no gradient), the picks' grid indices (angle index into
    the full grid, delay index; -1 where not picked) and ``residual`` ``(B,)`` ||R||² after
    the detected atoms are removed (LS re-fit); ``response`` ``(B, K)`` |z|²/(||â_r||² ||x||²) of
    each pick on the observation itself (the un-deflated angle–delay map at the picks).
    Differentiable except the mask and indices."""

    angle: torch.Tensor
    delay: torch.Tensor
    statistic: torch.Tensor
    energy: torch.Tensor
    detected: torch.Tensor
    angle_index: torch.Tensor
    delay_index: torch.Tensor
    residual: torch.Tensor
    response: torch.Tensor | None = None

    @property
    def range(self) -> torch.Tensor:
        return self.delay * (SPEED_OF_LIGHT / 2)

    def positions(self) -> torch.Tensor:
        """``(B, K, 2)`` Cartesian estimates, NaN where not detected."""
        r = self.range
        pos = torch.stack([r * torch.cos(self.angle), r * torch.sin(self.angle)], -1)
        return pos.masked_fill(~self.detected.unsqueeze(-1), float("nan"))


def omp_receiver(Y: torch.Tensor, x: torch.Tensor, rx: ArrayModel, grid: ReceiverGrid, start: torch.Tensor,
                 iterations: int, threshold: float | None, noise_variance: float,
                 half_window: int | None = None, temperature: float | None = None) -> SoftDetections:
    r"""OMP angle-delay receiver of S0 on the learned Rx model (:func:`omp_angle_delay`).

    The symbols are removed first (Y ← Y diag(x*), |x_n| = 1 for QPSK) so that the delay
    dictionary is b(τ); the angle dictionary of scene b is â_r over its W-point window
    ``start[b] + [0, W)``; the statistic s = |c|²/σ² of the unit-norm atom (Exp(1) per point
    under noise only) is compared with ``threshold``.  With ``temperature`` the soft estimates
    are the softmax-weighted means over the ±``half_window`` patch around each pick (C1's
    relaxation), else the grid values of the picks.

    Shapes: Y ``(B, M_r, N)``, x ``(B, N)``, start ``(B,)`` → :class:`SoftDetections`.
    Differentiable w.r.t. Y and the learned Rx parameters (not the picks).
    """
    W = grid.window
    if W == grid.angles.numel():  # whole grid searched: one dictionary shared by the batch
        start = torch.zeros_like(start)
        A = rx.steering(grid.angles)                                           # (M, G)
    else:
        idx = start.unsqueeze(-1) + torch.arange(W, device=Y.device)           # (B, W)
        A = rx.steering(grid.angles)[:, idx].permute(1, 0, 2)                  # (B, M, W)
    Yx = Y * x.conj().unsqueeze(-2)
    thr = None if threshold is None else float(threshold) * noise_variance
    soft = temperature is not None
    local = torch.arange(W, dtype=grid.angles.dtype, device=Y.device)
    res = omp_angle_delay(Yx, A, grid.delay_atoms.T, iterations, threshold=thr, return_residual=False,
                          grids=(local, grid.delays) if soft else None, temperature=temperature,
                          window=half_window if soft else None)
    ia, idl = res.indices[..., 0], res.indices[..., 1]
    picked = res.picked
    if soft:
        pos = start.unsqueeze(-1).to(local.dtype) + res.soft_locations[..., 0]   # fractional grid index
        angle = grid.angles[0] + pos * grid.angle_step
        delay = res.soft_locations[..., 1]
    else:
        angle = grid.angles[(start.unsqueeze(-1) + ia.clamp_min(0))]
        delay = grid.delays[idl.clamp_min(0)]
    full_ia = torch.where(picked, start.unsqueeze(-1) + ia, torch.full_like(ia, -1))
    return SoftDetections(angle, delay, res.peaks / noise_variance, res.peaks, picked, full_ia, idl,
                          res.residual_norms[..., -1], res.responses)


def _ls_solve(G: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Solve G c = z (``(B, K, K)``, ``(B, K)``) with a ridge of 10 eps·mean diag (near-coincident atoms)."""
    K = G.shape[-1]
    eye = torch.eye(K, dtype=G.dtype, device=G.device)
    eps = 10 * torch.finfo(G.real.dtype).eps
    ridge = eps * G.diagonal(dim1=-2, dim2=-1).real.mean(-1).clamp_min(1e-30)
    return torch.linalg.solve(G + ridge[..., None, None] * eye, z.unsqueeze(-1)).squeeze(-1)


def ls_fit(Y: torch.Tensor, x: torch.Tensor, rx: ArrayModel, angle: torch.Tensor, delay: torch.Tensor,
           mask: torch.Tensor, ofdm: OFDMConfig):
    r"""LS fit of the atoms â_r(θ_k)(x ⊙ b(τ_k))^T with ``mask`` to Y.

    Returns ``(c, z, a, d)``: gains c = G^{-1} z ``(B, K)`` (0 where masked), correlations
    z_k = â_r(θ_k)^H Y conj(x ⊙ b(τ_k)) ``(B, K)``, Rx atoms a ``(B, M_r, K)`` and delay atoms
    d = x ⊙ b(τ) ``(B, K, N)``; G_ij = (â_r(θ_i)^H â_r(θ_j)) Σ_n |x_n|² conj(b_n(τ_i)) b_n(τ_j).
    Differentiable in Y, the angles, the delays and the Rx parameters.
    """
    a = rx.steering(angle)                                                     # (B, M, K)
    d = x.unsqueeze(-2) * delay_response(delay, ofdm)                          # (B, K, N)
    m = mask.to(a.dtype)
    z = torch.einsum("bmk,bmn,bkn->bk", a.conj(), Y, d.conj()) * m
    G = (a.conj().transpose(-1, -2) @ a) * (d.conj() @ d.transpose(-1, -2))
    G = G * (m.unsqueeze(-1) * m.unsqueeze(-2)) + torch.diag_embed(1 - m)
    return _ls_solve(G, z) * m, z, a, d


def residual_energy(Y: torch.Tensor, x: torch.Tensor, rx: ArrayModel, angle: torch.Tensor,
                    delay: torch.Tensor, mask: torch.Tensor, ofdm: OFDMConfig) -> torch.Tensor:
    r"""||Y - Σ_k c_k â_r(θ_k)(x ⊙ b(τ_k))^T||² after the LS fit of the atoms with ``mask``.

    = ||Y||² - Re(z^H G^{-1} z), z_k = â_r(θ_k)^H Y conj(x ⊙ b(τ_k)),
    G_ij = (â_r(θ_i)^H â_r(θ_j)) Σ_n |x_n|² conj(b_n(τ_i)) b_n(τ_j).
    Differentiable in Y, the angles, the delays and the learned Rx parameters.

    Shapes: Y ``(B, M_r, N)``, x ``(B, N)``, angle/delay/mask ``(B, K)`` → ``(B,)``.
    """
    c, z, _, _ = ls_fit(Y, x, rx, angle, delay, mask, ofdm)
    fitted = (z.conj() * c).sum(-1).real
    return abs2(Y).sum((-2, -1)) - fitted


# ------------------------------------------------------------------------------------------
# the assembled transceiver (learned Tx/Rx models + grid + threshold)
# ------------------------------------------------------------------------------------------
class Transceiver(nn.Module):
    """The station's signal processing on its ASSUMED array models.

    Holds the learnable (or fixed) Tx/Rx :class:`ArrayModel`s, the search grid and the
    detection threshold (a buffer, set by :func:`calibrate_threshold`).  ``state_dict()``
    holds everything a saved calibration needs.

    Args:
        config: the scenario; ``tx``/``rx``: the assumed array models.
    """

    def __init__(self, config: CalibrationConfig, tx: ArrayModel, rx: ArrayModel):
        super().__init__()
        self.config = config
        self.tx, self.rx = tx, rx
        self._dtype = rx.geometry.positions.dtype
        self._grid = ReceiverGrid.from_config(config, dtype=self._dtype)
        self.register_buffer("threshold", torch.tensor(float("inf"), dtype=torch.float64))

    @property
    def grid(self) -> ReceiverGrid:
        """The search grid, on the device of the model's parameters/buffers."""
        dev = self.threshold.device
        if self._grid.angles.device != dev:
            self._grid = ReceiverGrid.from_config(self.config, dtype=self._dtype, device=dev)
        return self._grid

    def precoder(self, scenes: Scenes) -> torch.Tensor:
        """ISAC precoder ``(B, M_t)`` from the learned Tx model (differentiable)."""
        return isac_precoder(self.tx, scenes, self.config)

    def detect(self, Y: torch.Tensor, scenes: Scenes, threshold: float | None = None,
               iterations: int | None = None) -> SoftDetections:
        """Run the OMP receiver (soft estimates, differentiable) on frames Y ``(B, M_r, N)``."""
        cfg = self.config
        grid = self.grid
        return omp_receiver(Y, scenes.symbols, self.rx, grid, grid.window_start(scenes.sector_center),
                            cfg.omp_iterations if iterations is None else iterations,
                            float(self.threshold) if threshold is None else threshold, cfg.noise_variance,
                            cfg.softmax_window, cfg.softmax_temperature)


@torch.no_grad()
def calibrate_threshold(transceiver: Transceiver, scenes: Scenes, generator: torch.Generator,
                        pfa: float | None = None) -> float:
    r"""Set the detection threshold for a per-frame false-alarm probability by simulation.

    Noise-only frames W ~ CN(0, σ²) (σ² known to the receiver) are searched over each scene's
    sector window; the threshold is the empirical (1 - P_fa) quantile of the first OMP step's
    peak statistic max_{θ, τ} s(θ, τ).  Stored in ``transceiver.threshold`` and returned.

    Args:
        scenes: supplies the sectors and symbols (their targets are not used).
    """
    cfg = transceiver.config
    p = cfg.pfa if pfa is None else pfa
    B, N = scenes.symbols.shape
    cdt = scenes.symbols.dtype
    W = awgn((B, cfg.num_rx, N), cfg.noise_variance, generator, cdt, scenes.symbols.device)
    grid = transceiver.grid
    det = omp_receiver(W, scenes.symbols, transceiver.rx, grid, grid.window_start(scenes.sector_center), 1,
                       None, cfg.noise_variance)
    thr = float(threshold_for_false_alarm(det.statistic[:, 0].double(), p))
    transceiver.threshold.fill_(thr)
    return thr
