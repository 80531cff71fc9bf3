r"""Point-target detection on an angle–delay grid by OMP, with a CFAR threshold and a
differentiable relaxation — the receiver that S0 (seed 000) trains its array model through.

Observation (one OFDM symbol, M receive antennas, N subcarriers, known unit-modulus
symbols x):

    Y = Σ_k c_k a(θ_k) (x ⊙ b(τ_k))^T + W,   b(τ)_n = exp(-j 2π n Δf τ),   W ~ CN(0, σ² I),

with a(θ) the receiver's (possibly learned) array response.  Removing the symbols,
Y diag(x*) = Σ_k c_k a(θ_k) b(τ_k)^T + W diag(x*) is the separable angle–delay model of
:func:`~isackit.estimators.sparse.omp_angle_delay` (the one OMP implementation; it is
called here, never re-written).  Any factor that multiplies an atom — e.g. a transmit
response a_t(θ)^T f — is absorbed by the LS gain c_k, so the normalised statistic of the
atom of (θ, τ) is

    s(θ, τ) = |a(θ)^H Y conj(x ⊙ b(τ))|² / (σ² ‖a(θ)‖² ‖x‖²),

Exp(1)-distributed per grid point under noise only (the GLRT of one atom with unknown
gain).  OMP stops a scene at the first peak s below a threshold (set for a false-alarm
probability on noise-only frames, :func:`~isackit.metrics.threshold_for_false_alarm`) or
after K iterations.

The search covers, per scene, the W angle-grid points of a window that starts at
``start[b]`` (e.g. a prior sector with margins) × the whole delay grid; a window as wide as
the grid searches one dictionary shared by the batch.

Relaxation (differentiable estimates): the picks are discrete; with a temperature T the
estimate is the softmax-weighted mean of the grid coordinates over the (2w+1)² patch around
each pick, p ∝ exp(s / (T s_peak)) (:func:`~isackit.estimators.peaks.soft_argmax`), and the
peaks, the responses, the LS gains and the residual are differentiable w.r.t. Y and the
array model's parameters.

:func:`ls_fit` / :func:`residual_energy` re-fit atoms at GIVEN (continuous) angles and
delays — labelled targets, or the receiver's soft estimates — by least squares:

    c = G^{-1} z,   z_k = a(θ_k)^H Y conj(x ⊙ b(τ_k)),
    G_ij = (a(θ_i)^H a(θ_j)) Σ_n |x_n|² conj(b_n(τ_i)) b_n(τ_j),
    ‖Y − Σ_k c_k a(θ_k)(x ⊙ b(τ_k))^T‖² = ‖Y‖² − Re(z^H G^{-1} z).

Shapes: batch-first; Y ``(B, M, N)``, x ``(B, N)``, per-target tensors ``(B, K)``.
Reference: seed 000; Tropp & Gilbert, IEEE TIT 2007 (OMP).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .._dtypes import abs2, complex_dtype
from ..constants import SPEED_OF_LIGHT
from ..impairments.base import ArrayModel
from ..signals.ofdm import OFDMConfig, delay_response
from .sparse import omp_angle_delay

__all__ = ["AngleDelayGrid", "Detections", "omp_detect", "ls_fit", "residual_energy"]


def _delay_atoms(delays: torch.Tensor, ofdm: OFDMConfig) -> torch.Tensor:
    """(..., K) delays → (..., K, N) atoms b(τ_k)_n (paths first)."""
    return delay_response(delays, ofdm).transpose(-1, -2)


@dataclass(frozen=True, eq=False)
class AngleDelayGrid:
    """Search grid of :func:`omp_detect`.

    Attributes:
        angles: ``(G_a,)`` rad, evenly spaced.
        delays: ``(G_d,)`` s.
        delay_atoms: ``(G_d, N)`` complex, b(τ_g)_n = exp(-j 2π n Δf τ_g).
        window: W, the number of angle points searched per scene (W = G_a: the whole grid).
    """

    angles: torch.Tensor
    delays: torch.Tensor
    delay_atoms: torch.Tensor
    window: int

    @classmethod
    def linear(cls, angle_range: tuple[float, float], num_angles: int, delay_range: tuple[float, float],
               num_delays: int, ofdm: OFDMConfig, window_span: float | None = None,
               dtype: torch.dtype = torch.float32, device=None) -> AngleDelayGrid:
        """Evenly spaced grids over ``angle_range`` (rad) and ``delay_range`` (s), both ends
        included; the window covers ``window_span`` rad (W = ⌈span/step⌉ + 1 points, at most
        G_a; ``None``: the whole grid).  Built in float64, then cast to ``dtype``.

        Example:
            >>> grid = AngleDelayGrid.linear((-1.0, 1.0), 201, (0.0, 1e-6), 50, OFDMConfig(64, 240e3, 60e9),
            ...                              window_span=0.2)
            >>> grid.window, tuple(grid.delay_atoms.shape)
            (21, (50, 64))
        """
        lo, hi = float(angle_range[0]), float(angle_range[1])
        if not (int(num_angles) >= 1 and int(num_delays) >= 1):
            raise ValueError(f"the grid needs at least one point per axis, got {num_angles} x {num_delays}")
        if not lo <= hi or not float(delay_range[0]) <= float(delay_range[1]):
            raise ValueError(f"grid ranges must be increasing, got {angle_range} and {delay_range}")
        angles = torch.linspace(lo, hi, int(num_angles), dtype=torch.float64)
        delays = torch.linspace(float(delay_range[0]), float(delay_range[1]), int(num_delays), dtype=torch.float64)
        atoms = _delay_atoms(delays, ofdm)
        if window_span is None:
            window = int(num_angles)
        else:
            step = (hi - lo) / max(int(num_angles) - 1, 1)
            window = min(int(num_angles), int(math.ceil(float(window_span) / step)) + 1)
        return cls(angles.to(dtype=dtype, device=device), delays.to(dtype=dtype, device=device),
                   atoms.to(dtype=complex_dtype(dtype), device=device), window)

    def to(self, device) -> AngleDelayGrid:
        """The same grid on ``device``."""
        return AngleDelayGrid(self.angles.to(device), self.delays.to(device), self.delay_atoms.to(device),
                              self.window)

    @property
    def angle_step(self) -> float:
        """Spacing of the angle grid (rad; 1 for a one-point grid)."""
        return float(self.angles[1] - self.angles[0]) if self.angles.numel() > 1 else 1.0

    def window_start(self, center: torch.Tensor) -> torch.Tensor:
        """First grid index ``(B,)`` of the W-point window centred on ``center`` ``(B,)`` rad."""
        g = self.angles.numel()
        first = torch.round((center - self.angles[0]) / self.angle_step).long() - self.window // 2
        return first.clamp(0, g - self.window)


@dataclass
class Detections:
    """Output of :func:`omp_detect`, each ``(B, K)`` unless stated.

    Attributes:
        angle, delay: estimates (rad, s): soft (relaxed) with a temperature, else the picks'
            grid values.
        statistic: s = peak / σ² of each OMP step.
        energy: the peak |a^H R b^*|² / (‖a‖² ‖x‖²) of each step's residual map R.
        detected: bool mask of the detections (no gradient).
        angle_index: the picks' indices into the FULL angle grid (-1 where not picked).
        delay_index: the picks' delay-grid indices (-1 where not picked).
        residual: ``(B,)`` ‖R‖² after the detected atoms are removed (LS re-fit).
        response: |a^H Y b^*|² / (‖a‖² ‖x‖²) of each pick on the observation itself (the
            un-deflated angle–delay map at the picks).

    Differentiable except ``detected`` and the indices.
    """

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
        """Monostatic range R = c τ / 2 (m)."""
        return self.delay * (SPEED_OF_LIGHT / 2)

    def positions(self) -> torch.Tensor:
        """``(B, K, 2)`` Cartesian estimates R (cos θ, sin θ), NaN where not detected."""
        r = self.range
        pos = torch.stack([r * torch.cos(self.angle), r * torch.sin(self.angle)], -1)
        return pos.masked_fill(~self.detected.unsqueeze(-1), float("nan"))


def omp_detect(Y: torch.Tensor, x: torch.Tensor, rx: ArrayModel, grid: AngleDelayGrid, start: torch.Tensor,
               iterations: int, threshold: float | None, noise_variance: float,
               half_window: int | None = None, temperature: float | None = None) -> Detections:
    r"""OMP detection on the angle–delay grid with the array model ``rx`` (module docstring).

    Args:
        Y: ``(B, M, N)`` received frames; x: ``(B, N)`` unit-modulus symbols.
        rx: the receiver's array model (its response builds the angle dictionary).
        grid: the search grid; start: ``(B,)`` first angle index of each scene's window
            (:meth:`AngleDelayGrid.window_start`; ignored when the window is the whole grid).
        iterations: K, the largest number of detections per scene.
        threshold: stop at the first statistic s < ``threshold`` (``None``: run K iterations).
        noise_variance: σ² of the statistic's normalisation.
        half_window, temperature: with a temperature, the soft estimates are the
            softmax-weighted means over the ± ``half_window`` patch around each pick.

    Returns:
        :class:`Detections`.  Differentiable w.r.t. Y and ``rx``'s parameters (not the picks).
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
    return Detections(angle, delay, res.peaks / noise_variance, res.peaks, picked, full_ia, idl,
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
    r"""LS fit of the atoms a(θ_k)(x ⊙ b(τ_k))^T with ``mask`` to Y (module docstring).

    Returns:
        ``(c, z, a, d)``: gains c = G^{-1} z ``(B, K)`` (0 where masked), correlations z
        ``(B, K)``, angle atoms a ``(B, M, K)`` and delay atoms d = x ⊙ b(τ) ``(B, K, N)``.
        Differentiable in Y, the angles, the delays and ``rx``'s parameters.
    """
    a = rx.steering(angle)                                                     # (B, M, K)
    d = x.unsqueeze(-2) * _delay_atoms(delay, ofdm)                            # (B, K, N)
    m = mask.to(a.dtype)
    z = torch.einsum("bmk,bmn,bkn->bk", a.conj(), Y, d.conj()) * m
    G = (a.conj().transpose(-1, -2) @ a) * (d.conj() @ d.transpose(-1, -2))
    G = G * (m.unsqueeze(-1) * m.unsqueeze(-2)) + torch.diag_embed(1 - m)
    return _ls_solve(G, z) * m, z, a, d


def residual_energy(Y: torch.Tensor, x: torch.Tensor, rx: ArrayModel, angle: torch.Tensor,
                    delay: torch.Tensor, mask: torch.Tensor, ofdm: OFDMConfig) -> torch.Tensor:
    r"""‖Y − Σ_k c_k a(θ_k)(x ⊙ b(τ_k))^T‖² = ‖Y‖² − Re(z^H G^{-1} z) after :func:`ls_fit`.

    Shapes: Y ``(B, M, N)``, x ``(B, N)``, angle/delay/mask ``(B, K)`` → ``(B,)``.
    Differentiable in Y, the angles, the delays and ``rx``'s parameters.
    """
    c, z, _, _ = ls_fit(Y, x, rx, angle, delay, mask, ofdm)
    fitted = (z.conj() * c).sum(-1).real
    return abs2(Y).sum((-2, -1)) - fitted
