r"""Statistical (moment-matched Gaussian) likelihood of known-pilot observations under random
gain-phase errors, and its estimators: MLE, AO-ML, genie-aided ML, 2-D MUSIC + ML Doppler
(seed 003, PASCAL, Sec. III-A, (5)–(13); specification ``shared/design/s3-pascal.md`` §2).

Observation model (:mod:`isackit.signals.frames`).  Element m of the array sees, at the known
times t (pilots: one per subframe), y_m = ζ_m ũ_m(η) + n_m with
ũ_{m,t}(η) = Σ_k a_m(φ_k, ϑ_k) c_{k,t} e^{j2π f_k t}, the known waveforms c_{k,t} = amplitude ×
pilot, ζ i.i.d. per element with mean μ and variance v (the
:class:`~isackit.impairments.distributions.ErrorMoments`), n ~ CN(0, σ² I).  η = (φ_k, ϑ_k, f_k)
for k = 1..K, stored ``(..., K, 3)`` (the layout of the estimates).

The seed models y as proper complex Gaussian with the exact first two moments of ζ:

* ``coherence="frame"`` (ζ held over the frame, the seed's literal model): the vectors
  y_m ∈ C^T are independent over m, y_m ~ CN(μ ũ_m, C_m), C_m = v ũ_m ũ_m^H + σ² I (rank one
  plus white);
* ``coherence="signal"`` (ζ redrawn per signal): every entry is independent,
  y_{m,t} ~ CN(μ ũ_{m,t}, v|ũ_{m,t}|² + σ²).

Negative log-likelihood (:func:`statistical_nll`), evaluated in O(M T) per η by
Sherman–Morrison — no M T × M T matrix is formed:
C_m^{-1} = (I − κ_m ũ_m ũ_m^H)/σ², κ_m = v/(σ² + v‖ũ_m‖²),
ln det C_m = T ln σ² + ln(1 + v‖ũ_m‖²/σ²):

    ℓ(η) = Σ_m [ ln(1 + v‖ũ_m‖²/σ²) + (‖e_m‖² − κ_m |ũ_m^H e_m|²)/σ² ],   e_m = y_m − μ ũ_m,

(frame; the constant M T ln(πσ²) is dropped unless ``full=True``).  With v = 0 it is the
least-squares criterion ‖Y − μ Ũ‖²/σ²; with the realised ζ as the (per-element) mean and
v = 0 it is the genie-aided likelihood (G-ML, [23] of the seed, read as "ML with the errors
known").

Estimators (batched over any leading dims; no Python loop over trials or grid points):

* :func:`sequential_init` — Ziskind–Wax sequential initialisation (seed [25]): drone k on a
  coarse (φ, ϑ) × f grid by the least-squares member of the family (v = 0), with drones
  1..k−1 fixed at their initial values — one matrix product per trial;
* :func:`ao_ml` — AO-ML: for each drone in turn, phase 1 = (φ_k, ϑ_k) by grid search of ℓ given
  everything else, phase 2 = f_k by grid search given the angles; every phase is refined off
  the grid by Fisher-scoring steps on the exact ℓ (analytic gradient, structured FIM, per-trial
  backtracking) and keeps the better of
  (refined grid optimum, refined current point), so ℓ never increases (a hard property);
  stop (13): all angle changes < ``angle_tol`` and all Doppler changes < ``doppler_tol``, or
  |Δℓ| ≤ ``nll_rtol``·|ℓ|; the per-iteration ℓ and η are returned (Fig. 7);
* :func:`statistical_mle` — the joint 3K-parameter minimiser of ℓ: the best of damped-Newton
  runs over all parameters from the AO-ML point, the sequential initialisation and (when
  T ≥ K + 1) MUSIC angles + ML Doppler (the seed does not describe its search, X6);
* :func:`music_doppler` — 2-D MUSIC (:func:`~isackit.estimators.spectral.music2d_doa`, reused)
  on R̂ = Y Y^H / T, then the Dopplers by phase 2 of AO-ML given the MUSIC angles;
* genie-aided ML: :func:`statistical_mle` with :meth:`KnownPilots.genie`.

Angles are returned canonical: ϑ ∈ [0, π/2], φ ∈ (−π, π] (a planar array cannot tell ϑ from
−ϑ).  Non-finite data are a one-line ValueError; an all-zero trial gives ``valid = False``
and NaN.
Differentiable: :func:`statistical_nll` (autograd; float64 gradcheck in the tests); the
estimators return plain estimates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import torch

from .._checks import check_choice, check_complex, check_positive, check_positive_int
from .._dtypes import complex_dtype
from ..geometry.arrays import ArrayGeometry, steering_matrix
from ..impairments.distributions import ElementErrorDistribution, ErrorMoments
from ..signals.frames import COHERENCES
from .base import EstimationResult, Estimator, register
from .common import check_data, sanitize_data
from .grids import SearchGrid
from .spectral import music2d_doa

__all__ = [
    "PARAMETERS",
    "KnownPilots",
    "LikelihoodSearch",
    "statistical_nll",
    "sequential_init",
    "ao_ml",
    "statistical_mle",
    "music_doppler",
    "canonical_angles",
    "error_moments",
    "model_jacobian",
    "statistical_fim",
    "StatisticalMLE",
    "AOML",
    "GenieML",
    "MusicDoppler",
]

#: Columns of the estimates: azimuth (rad), elevation (rad), Doppler (Hz).
PARAMETERS = ("azimuth", "elevation", "doppler")


# ---------------------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LikelihoodSearch:
    """Grids and stopping rules of the likelihood searches (seed 003, (13); spec §1.7).

    Attributes:
        azimuth_grid, elevation_grid: coarse angle grids (radians).  The default 4° steps put
            ≥ 6 points in the ≈ 26° beam of a 4 × 4 λ/2 URA; every search is refined off-grid.
        doppler_grid: coarse Doppler grid (Hz), inside the pilot ambiguity ±f_s/(2N) (default 20 Hz
            steps: ≥ 5 per resolution cell of 10 pilots 1.01 ms apart); its range is also the
            search space of the refinements (Dopplers are clamped to it).
        max_iterations: AO-ML iteration cap.
        angle_tol, doppler_tol: AO-ML stop on the largest change (rad, Hz) ...
        nll_rtol: ... or on the relative change of ℓ.
        newton_steps: Fisher-scoring iterations per refinement.
        chunk_elements: bound on the elements of one grid-stage temporary (memory; the default
            2^18, 4 MiB of complex128, keeps the temporaries of a grid stage in cache).
    """

    azimuth_grid: SearchGrid = field(default_factory=lambda: SearchGrid.degrees(-180.0, 176.0, 4.0))
    elevation_grid: SearchGrid = field(default_factory=lambda: SearchGrid.degrees(0.0, 88.0, 4.0, "elevation"))
    doppler_grid: SearchGrid = field(default_factory=lambda: SearchGrid(-480.0, 480.0, 20.0, "doppler"))
    max_iterations: int = 30
    angle_tol: float = 1e-4
    doppler_tol: float = 1e-2
    nll_rtol: float = 1e-9
    newton_steps: int = 12
    chunk_elements: int = 1 << 18

    def __post_init__(self):
        for name in ("azimuth_grid", "elevation_grid", "doppler_grid"):
            if not isinstance(getattr(self, name), SearchGrid):
                raise TypeError(f"LikelihoodSearch.{name} must be a SearchGrid")
        check_positive_int(self.max_iterations, "max_iterations")
        check_positive_int(self.newton_steps, "newton_steps")
        check_positive_int(self.chunk_elements, "chunk_elements")
        for name in ("angle_tol", "doppler_tol", "nll_rtol"):
            check_positive(getattr(self, name), name)


@dataclass(frozen=True, eq=False)
class KnownPilots:
    r"""What the receiver knows about observations Y ``(..., M, T)``.

    Attributes:
        array: the array geometry (ideal steering vectors a(φ, ϑ)).
        waveforms: ``(..., K, T)`` complex c_{k,t} = amplitude_k × symbol_{k,t} (known pilots,
            or pilots and detected symbols).
        times: ``(T,)`` or ``(..., T)`` sample times (s).
        noise_var: σ² (float or ``(...)``).
        mean_gain: μ, a number (the error mean μ_c; 1 for an ideal array) or a tensor
            broadcastable to ``(..., M, 1)`` / ``(..., M, T)`` (the realised errors: genie).
        variance: v = E|ζ − μ|² (0: no errors, or genie).
        coherence: ``"frame"`` or ``"signal"``.

    Example:
        >>> from isackit.geometry import horizontal_ura
        >>> kp = KnownPilots.from_errors(horizontal_ura(2, 2), torch.ones(1, 3, dtype=torch.complex128),
        ...                              torch.tensor([1e-3, 2e-3, 3e-3]), 0.1, None)
        >>> eta = torch.tensor([[0.3, 0.5, 40.0]], dtype=torch.float64)
        >>> float(kp.nll(kp.signal(eta), eta))
        0.0
    """

    array: ArrayGeometry
    waveforms: torch.Tensor
    times: torch.Tensor
    noise_var: float | torch.Tensor
    mean_gain: complex | torch.Tensor = 1.0
    variance: float = 0.0
    coherence: str = "frame"

    def __post_init__(self):
        if not isinstance(self.array, ArrayGeometry):
            raise TypeError(f"array must be an ArrayGeometry, got {type(self.array).__name__}")
        check_complex(self.waveforms, "waveforms")
        if self.waveforms.ndim < 2:
            raise ValueError(f"waveforms must have shape (..., K, T), got {tuple(self.waveforms.shape)}")
        t = _times(self.times)
        object.__setattr__(self, "times", t)
        if t.shape[-1:] != self.waveforms.shape[-1:]:
            raise ValueError(f"times {tuple(t.shape)} and waveforms {tuple(self.waveforms.shape)} disagree on T")
        check_positive(self.noise_var, "noise_var")
        if float(self.variance) < 0 or not math.isfinite(float(self.variance)):
            raise ValueError(f"variance must be non-negative and finite, got {self.variance}")
        check_choice(self.coherence, COHERENCES, "coherence")

    @classmethod
    def from_errors(cls, array: ArrayGeometry, waveforms: torch.Tensor, times, noise_var,
                    errors: ErrorMoments | ElementErrorDistribution | None, coherence: str = "frame"
                    ) -> KnownPilots:
        """The seed's statistical model: μ and v from an error law (``None`` = ideal array)."""
        m = error_moments(errors)
        return cls(array, waveforms, _times(times), noise_var, m.mean, m.variance, coherence)

    @classmethod
    def genie(cls, array: ArrayGeometry, waveforms: torch.Tensor, times, noise_var,
              realised_errors: torch.Tensor, coherence: str = "frame") -> KnownPilots:
        """G-ML: the realised errors known, v = 0.  ``realised_errors`` in the layout of
        :func:`~isackit.signals.frames.draw_element_errors`: ``(..., M, 1)`` (frame) or
        ``(..., M, T)`` (signal)."""
        z = torch.as_tensor(realised_errors)
        if z.ndim < 2 or z.shape[-2] != array.num_elements or z.shape[-1] not in (1, waveforms.shape[-1]):
            raise ValueError(f"realised_errors must have shape (..., M={array.num_elements}, 1 or T), "
                             f"got {tuple(z.shape)}")
        return cls(array, waveforms, _times(times), noise_var, z, 0.0, coherence)

    @property
    def num_sources(self) -> int:
        return int(self.waveforms.shape[-2])

    @property
    def num_signals(self) -> int:
        return int(self.waveforms.shape[-1])

    def signal(self, eta: torch.Tensor) -> torch.Tensor:
        """ũ(η) ``(..., M, T)`` for η ``(..., K, 3)``."""
        return _signal(self.array.positions_like(eta), self.array.wavelength, eta,
                       self.waveforms.to(complex_dtype(eta.dtype)), self.times.to(eta))

    def nll(self, y: torch.Tensor, eta: torch.Tensor, full: bool = False) -> torch.Tensor:
        """ℓ(η) of observations ``y`` ``(..., M, T)`` (see :func:`statistical_nll`)."""
        return statistical_nll(y, self.signal(eta), self.mean_gain, self.variance, self.noise_var,
                               self.coherence, full=full)


def _times(times) -> torch.Tensor:
    """Sample times as a tensor (Python numbers become float64, never float32)."""
    return times if isinstance(times, torch.Tensor) else torch.tensor(times, dtype=torch.float64)


def error_moments(errors) -> ErrorMoments:
    """``ErrorMoments`` of an error law, the moments themselves, or the ideal array (``None``)."""
    if errors is None:
        return ErrorMoments.ideal()
    if isinstance(errors, ErrorMoments):
        return errors
    if isinstance(errors, ElementErrorDistribution):
        return errors.moments()
    raise TypeError(f"errors must be ErrorMoments, an ElementErrorDistribution or None, got {type(errors).__name__}")


# ---------------------------------------------------------------------------------------
# the likelihood
# ---------------------------------------------------------------------------------------
def _steer(pos: torch.Tensor, wavelength: float, az: torch.Tensor, el: torch.Tensor) -> torch.Tensor:
    """a_m(φ_k, ϑ_k) ``(..., M, K)`` for angles ``(..., K)`` (the library's steering vector,
    :func:`~isackit.geometry.arrays.steering_matrix`, written with few autograd nodes for the
    Newton loops; the tests check the two agree)."""
    ce = torch.cos(el)
    k = 2 * math.pi / wavelength
    phase = ((k * pos[:, 0:1]) * (ce * torch.cos(az))[..., None, :]
             + (k * pos[:, 1:2]) * (ce * torch.sin(az))[..., None, :]
             + (k * pos[:, 2:3]) * torch.sin(el)[..., None, :])
    return torch.polar(torch.ones_like(phase), phase)


def _signal(pos, wavelength, eta, wave, times) -> torch.Tensor:
    A = _steer(pos, wavelength, eta[..., 0], eta[..., 1]).to(wave.dtype)  # (..., M, K)
    phase = 2 * math.pi * eta[..., 2, None] * times[..., None, :]  # (..., K, T)
    return A @ (torch.polar(torch.ones_like(phase), phase) * wave)


def _as_real(x, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(x, dtype=like.real.dtype, device=like.device)


def _as_complex(x, like: torch.Tensor) -> torch.Tensor:
    cdt = like.dtype if like.is_complex() else complex_dtype(like.dtype)
    if isinstance(x, torch.Tensor):
        return x.to(device=like.device, dtype=cdt)
    return torch.tensor(complex(x), dtype=cdt, device=like.device)  # no float32 detour for numbers


def model_jacobian(array: ArrayGeometry, eta: torch.Tensor, waveforms: torch.Tensor, times: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    r"""ũ(η) ``(..., M, T)`` and its Jacobian ∂ũ/∂η ``(..., M, T, 3K)`` in closed form.

    η ``(..., K, 3)`` = (φ_k, ϑ_k, f_k); the Jacobian's last axis is η flattened row-major
    (φ_1, ϑ_1, f_1, φ_2, …).  ∂ũ_{m,t}/∂φ_k = (∂a_m/∂φ_k) d_{k,t}, ∂/∂ϑ_k likewise,
    ∂ũ_{m,t}/∂f_k = a_m j2πt d_{k,t}, with d_{k,t} = c_{k,t} e^{j2π f_k t} and
    ∂a_m/∂φ = j(2π/λ) p_m·∂u/∂φ a_m (``geometry.arrays.steering_matrix_derivatives``).
    """
    pos = array.positions_like(eta)
    wave = waveforms.to(complex_dtype(eta.dtype))
    return _jacobian(pos, array.wavelength, eta, wave, _times(times).to(eta))


def _jacobian(pos, lam, eta, wave, t):
    az, el, f = eta[..., 0], eta[..., 1], eta[..., 2]
    A = _steer(pos, lam, az, el).to(wave.dtype)  # (..., M, K)
    k = 2 * math.pi / lam
    ca, sa, ce, se = torch.cos(az), torch.sin(az), torch.cos(el), torch.sin(el)
    dphi_az = k * (pos[:, 0:1] * (-ce * sa)[..., None, :] + pos[:, 1:2] * (ce * ca)[..., None, :])
    dphi_el = k * (pos[:, 0:1] * (-se * ca)[..., None, :] + pos[:, 1:2] * (-se * sa)[..., None, :]
                   + pos[:, 2:3] * ce[..., None, :])
    phase = 2 * math.pi * f[..., None] * t[..., None, :]  # (..., K, T)
    D = torch.polar(torch.ones_like(phase), phase) * wave  # (..., K, T)
    u = A @ D
    jA = 1j * A
    parts = [(jA * dphi_az)[..., :, :, None] * D[..., None, :, :],  # (..., M, K, T)
             (jA * dphi_el)[..., :, :, None] * D[..., None, :, :],
             A[..., :, :, None] * (2j * math.pi * t[..., None, :] * D)[..., None, :, :]]
    J = torch.stack(parts, -1)  # (..., M, K, T, 3)
    J = J.movedim(-3, -2)  # (..., M, T, K, 3)
    return u, J.reshape(*J.shape[:-2], -1)


def statistical_fim(u: torch.Tensor, jac: torch.Tensor, mean_gain, variance, noise_var,
                    coherence: str = "frame") -> torch.Tensor:
    r"""Fisher information of the moment-matched proper Gaussian model, structured (seed 003, (25)).

    Slepian–Bangs, F_pq = 2 Re(∂_pμ^H C^{-1} ∂_qμ) + tr(C^{-1} ∂_pC C^{-1} ∂_qC), evaluated
    without forming C:

    * frame: per element, with V_m = [ũ_m, ∂_1ũ_m, …, ∂_Pũ_m] and
      W_m = V_m^H C_m^{-1} V_m = (Γ_m − κ_m Γ_m e_0 e_0^T Γ_m)/σ², Γ_m = V_m^H V_m,
      F_pq = Σ_m [2|μ_m|² Re W_pq + 2v² (Re(W_0p W_0q) + W_00 Re W_pq)];
    * signal: per entry, s = v|ũ|² + σ², F_pq = Σ [2|μ|² Re(∂_pũ* ∂_qũ)/s + ∂_ps ∂_qs / s²],
      ∂_ps = 2v Re(ũ* ∂_pũ).

    Args:
        u: ``(..., M, T)``.  jac: ``(..., M, T, P)`` (e.g. :func:`model_jacobian`).
        mean_gain: μ (number or ``(..., M, 1|T)``).  variance: v.  noise_var: σ² (number or ``(...)``).

    Returns:
        ``(..., P, P)`` real symmetric.  Differentiable.
    """
    check_choice(coherence, COHERENCES, "coherence")
    mu = _as_complex(mean_gain, u)
    mu2 = mu.real.square() + mu.imag.square()
    v = float(variance)
    s2 = _as_real(noise_var, u)
    if coherence == "frame":
        V = torch.cat([u[..., None], jac], -1)  # (..., M, T, P+1)
        Gam = V.mH @ V  # (..., M, P+1, P+1)
        n = Gam[..., 0, 0].real
        kap = v / (s2[..., None] + v * n)
        W = (Gam - kap[..., None, None] * Gam[..., :, 0:1] * Gam[..., 0:1, :]) / s2[..., None, None, None]
        Wab = W[..., 1:, 1:].real
        F = 2 * (mu2[..., 0, None, None] if mu2.ndim else mu2) * Wab
        if v > 0:
            w0 = W[..., 0, 1:]
            F = F + 2 * v * v * ((w0[..., :, None] * w0[..., None, :]).real + W[..., 0, 0].real[..., None, None] * Wab)
        return F.sum(-3)
    s = v * (u.real.square() + u.imag.square()) + s2[..., None, None]  # (..., M, T)
    w = (mu2 / s)[..., None, None]
    F = 2 * (w * (jac.conj()[..., :, None] * jac[..., None, :]).real).sum((-3, -4))
    if v > 0:
        ds = 2 * v * (u.conj()[..., None] * jac).real  # (..., M, T, P)
        F = F + ((ds[..., :, None] * ds[..., None, :]) / (s * s)[..., None, None]).sum((-3, -4))
    return F


def _nll_conj_gradient(y, u, mu, v, s2, frame: bool) -> torch.Tensor:
    """G = ∂ℓ/∂ũ* ``(..., M, T)`` (Wirtinger), so that dℓ = 2 Re Σ conj(G) dũ."""
    e = y - mu * u
    if frame:
        s2m = s2[..., None]
        G = -mu.conj() * e / s2m[..., None]
        if v > 0:
            n = (u.real.square() + u.imag.square()).sum(-1)  # (..., M)
            q = (u.conj() * e).sum(-1)
            D = s2m + v * n
            G = G + (v / D)[..., None] * u - (v / s2m)[..., None] * (
                (q.conj() / D)[..., None] * e - (mu.conj() * (q / D)[..., None]) * u
                - (v * (q.real.square() + q.imag.square()) / (D * D))[..., None] * u)
        return G
    st = s2[..., None, None]
    if v == 0:
        return -mu.conj() * e / st
    s = v * (u.real.square() + u.imag.square()) + st
    return v * u / s - mu.conj() * e / s - (e.real.square() + e.imag.square()) * v * u / (s * s)


def statistical_nll(y: torch.Tensor, u: torch.Tensor, mean_gain, variance, noise_var, coherence: str = "frame",
                    full: bool = False) -> torch.Tensor:
    r"""Negative log-likelihood of the moment-matched Gaussian model, ``(...)``.

    Args:
        y: ``(..., M, T)`` observations.
        u: ``(..., M, T)`` model signal ũ(η) (ideal array), broadcastable with ``y``.
        mean_gain: μ (number or tensor broadcastable to ``(..., M, 1|T)``).
        variance: v ≥ 0 (number).
        noise_var: σ² (number or ``(...)``).
        coherence: ``"frame"`` (rank-one-plus-white block per element, Sherman–Morrison) or
            ``"signal"`` (diagonal).
        full: add the constant M T ln(πσ²), giving the exact −ln p(y; η).

    Returns:
        ``(...)`` real; differentiable in ``u`` (and ``y``).
    """
    check_choice(coherence, COHERENCES, "coherence")
    mu = _as_complex(mean_gain, u)
    v = float(variance)
    s2 = _as_real(noise_var, u)[..., None]  # (..., 1) against (..., M)
    e = y - mu * u
    if coherence == "frame":
        uu = u.real.square().sum(-1) + u.imag.square().sum(-1)  # (..., M)
        ee = e.real.square().sum(-1) + e.imag.square().sum(-1)
        val = ee / s2
        if v > 0:
            ue = (u.conj() * e).sum(-1)
            val = val + torch.log1p(v * uu / s2) - v * (ue.real.square() + ue.imag.square()) / (s2 * (s2 + v * uu))
        out = val.sum(-1)
    else:
        s2t = s2[..., None]
        ee = e.real.square() + e.imag.square()
        if v > 0:
            s = v * (u.real.square() + u.imag.square()) + s2t
            val = torch.log(s / s2t) + ee / s
        else:
            val = ee / s2t
        out = val.sum((-1, -2))
    if full:
        m, t = y.shape[-2], y.shape[-1]
        out = out + m * t * torch.log(math.pi * s2[..., 0])
    return out


# ---------------------------------------------------------------------------------------
# the batched problem (internal): every tensor flattened/expanded to a leading batch B
# ---------------------------------------------------------------------------------------
@dataclass
class _Problem:
    y: torch.Tensor  # (B, M, T)
    wave: torch.Tensor  # (B, K, T)
    t: torch.Tensor  # (B, T)
    s2: torch.Tensor  # (B,)
    mu: torch.Tensor  # (B, M, 1|T) complex
    v: float
    frame: bool
    pos: torch.Tensor  # (M, 3)
    lam: float

    @property
    def fast(self) -> bool:  # sufficient-statistic grid stages (frame model, mean per element)
        return self.frame and self.mu.shape[-1] == 1

    def take(self, idx: torch.Tensor) -> _Problem:
        return replace(self, y=self.y[idx], wave=self.wave[idx], t=self.t[idx], s2=self.s2[idx], mu=self.mu[idx])

    def repeat(self, n: int) -> _Problem:
        def rep(x):
            return x.repeat(n, *([1] * (x.ndim - 1)))
        return replace(self, y=rep(self.y), wave=rep(self.wave), t=rep(self.t), s2=rep(self.s2), mu=rep(self.mu))

    def signal(self, eta: torch.Tensor) -> torch.Tensor:
        return _signal(self.pos, self.lam, eta, self.wave, self.t)

    def contribution(self, eta: torch.Tensor, k: int) -> torch.Tensor:
        """Drone k's part a_k d_k ``(B, M, T)``."""
        return _signal(self.pos, self.lam, eta[..., k:k + 1, :], self.wave[..., k:k + 1, :], self.t)

    def doppler_wave(self, eta: torch.Tensor, k: int) -> torch.Tensor:
        """d_k = c_{k,t} e^{j2π f_k t}, ``(B, T)``."""
        phase = 2 * math.pi * eta[..., k, 2, None] * self.t
        return torch.polar(torch.ones_like(phase), phase) * self.wave[..., k, :]

    def nll(self, eta: torch.Tensor) -> torch.Tensor:
        return statistical_nll(self.y, self.signal(eta), self.mu, self.v, self.s2, "frame" if self.frame else "signal")

    def score(self, eta: torch.Tensor, free: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Gradient ``(B, P_f)`` and Fisher information ``(B, P_f, P_f)`` of ℓ in the free parameters."""
        u, J = _jacobian(self.pos, self.lam, eta, self.wave, self.t)
        J = J[..., free]
        G = _nll_conj_gradient(self.y, u, self.mu, self.v, self.s2, self.frame)
        g = 2 * (G.conj()[..., None] * J).real.sum((-2, -3))
        return g, statistical_fim(u, J, self.mu, self.v, self.s2, "frame" if self.frame else "signal")


def _problem(y: torch.Tensor, model: KnownPilots) -> tuple[_Problem, tuple, torch.Tensor]:
    """Flatten ``y`` to (B, M, T), expand the model's tensors, flag all-zero trials (non-finite
    data are a one-line ValueError)."""
    M, K, T = model.array.num_elements, model.num_sources, model.num_signals
    check_data(y, (M, T), "y", f"(..., M={M}, T={T})", finite=True)
    batch = y.shape[:-2]
    B = math.prod(batch)
    cdt = y.dtype
    rdt = y.real.dtype
    dev = y.device
    yf, valid = sanitize_data(y.reshape(B, M, T), 2)

    def expand(x, tail: int, dtype):
        x = x.to(device=dev, dtype=dtype) if isinstance(x, torch.Tensor) else torch.tensor(x, dtype=dtype, device=dev)
        tail_shape = x.shape[x.ndim - tail:]
        if x.ndim == tail:
            return x.expand(B, *tail_shape)
        try:
            return x.expand(*batch, *tail_shape).reshape(B, *tail_shape)
        except RuntimeError:
            raise ValueError(f"a model tensor of shape {tuple(x.shape)} does not match the batch {tuple(batch)}") \
                from None

    wave = expand(model.waveforms, 2, cdt)
    t = expand(model.times, 1, rdt)
    s2 = expand(model.noise_var, 0, rdt)
    mu = _as_complex(model.mean_gain, yf)
    mu = expand(mu.reshape(1, 1) if mu.ndim == 0 else mu, 2, cdt)
    prob = _Problem(yf, wave, t, s2, mu, float(model.variance), model.coherence == "frame",
                    model.array.positions_like(yf), model.array.wavelength)
    return prob, batch, valid


def canonical_angles(eta: torch.Tensor) -> torch.Tensor:
    r"""Map (φ, ϑ) to the canonical pair with the same planar-array response: ϑ ∈ [0, π/2],
    φ = atan2(u_y, u_x) from the direction cosines u_x = cos ϑ cos φ, u_y = cos ϑ sin φ."""
    az, el = eta[..., 0], eta[..., 1]
    ux, uy = torch.cos(el) * torch.cos(az), torch.cos(el) * torch.sin(az)
    rho = torch.sqrt(ux * ux + uy * uy).clamp(max=1.0)
    return torch.stack([torch.atan2(uy, ux), torch.acos(rho), eta[..., 2]], -1)


# ---------------------------------------------------------------------------------------
# grid stages
# ---------------------------------------------------------------------------------------
def _angle_points(search: LikelihoodSearch, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    az = search.azimuth_grid.points_like(like)
    el = search.elevation_grid.points_like(like)
    AZ, EL = torch.meshgrid(az, el, indexing="ij")
    return AZ.reshape(-1), EL.reshape(-1)


def _grid_steering(prob: _Problem, search: LikelihoodSearch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    az, el = _angle_points(search, prob.y.real)
    return steering_matrix(prob.pos, az, el, prob.lam).to(prob.y.dtype).T, az, el  # (G, M)


def _frame_profile(ca, alpha, gamma, WW, dd, beta, yy, mu, v, s2):
    r"""ℓ over candidates for u_m = W_m + a_m d (frame model, μ per element), ``(B, G)``.

    ca = conj(a) ``(B|1, G, M)``; alpha = d^H W_m, gamma = d^H y_m ``(B, G|1, M)``; WW = ‖W_m‖²,
    beta = W_m^H y_m, yy = ‖y_m‖² ``(B, 1, M)``; dd = ‖d‖² ``(B, 1, 1)``; mu ``(B, 1, M)``;
    s2 ``(B, 1, 1)``."""
    uu = WW + dd + 2 * (ca * alpha).real
    uy = beta + ca * gamma
    ee = yy - 2 * (mu.conj() * uy).real + (mu.real.square() + mu.imag.square()) * uu
    val = ee / s2
    if v > 0:
        ue = uy - mu * uu
        val = val + torch.log1p(v * uu / s2) - v * (ue.real.square() + ue.imag.square()) / (s2 * (s2 + v * uu))
    return val.sum(-1)


def _grid_frame_profile(A, alpha, gamma, WW, dd, beta, yy, mu, v: float, s2, chunk: int) -> torch.Tensor:
    r"""ℓ over the angle grid for u_m = W_m + a_m(g) d (frame model, μ per element), ``(B, G)``:
    :func:`_frame_profile` with a grid ``A`` ``(G, M)`` shared by the trials, evaluated with
    fewer passes.  The part linear in conj(a), Σ_m Re(conj(a_m) w_m) + c, is one matrix product;
    the non-linear part (v > 0) runs in real arithmetic over chunks of trials.

    alpha = d^H W_m, gamma = d^H y_m, beta = W_m^H y_m, mu ``(B, M)`` complex; WW = ‖W_m‖²,
    yy = ‖y_m‖² ``(B, M)``, dd = ‖d‖², s2 ``(B,)`` real."""
    B, M = alpha.shape
    G = A.shape[0]
    mu2 = mu.real.square() + mu.imag.square()
    s2c = s2[:, None]
    w = (2 * mu2 * alpha - 2 * mu.conj() * gamma) / s2c  # ‖e_m‖²/σ² = c_m + Re(conj(a_m) w_m)
    c0 = ((yy - 2 * (mu.conj() * beta).real + mu2 * (WW + dd[:, None])) / s2c).sum(-1)
    ca = A.conj()
    out = c0[:, None] + (w @ ca.T).real  # (B, G)
    if v <= 0:
        return out
    car, cai = ca.real.contiguous(), ca.imag.contiguous()  # (G, M)
    c1 = (WW + dd[:, None])[:, None, :]
    ar, ai = alpha.real[:, None, :], alpha.imag[:, None, :]
    gr, gi = gamma.real[:, None, :], gamma.imag[:, None, :]
    br, bi = beta.real[:, None, :], beta.imag[:, None, :]
    mr, mi = mu.real[:, None, :], mu.imag[:, None, :]
    s2b = s2[:, None, None]
    for sl in _chunked(B, chunk // max(1, G * M)):
        uu = torch.addcmul(torch.mul(car, ar[sl]), cai, ai[sl], value=-1).mul_(2).add_(c1[sl])  # ‖u_m‖²
        er = torch.addcmul(br[sl], car, gr[sl]).addcmul_(cai, gi[sl], value=-1).addcmul_(mr[sl], uu, value=-1)
        ei = torch.addcmul(bi[sl], car, gi[sl]).addcmul_(cai, gr[sl]).addcmul_(mi[sl], uu, value=-1)
        q = er.mul_(er).addcmul_(ei, ei)  # |u_m^H e_m|², e_m = y_m − μ_m u_m
        den = torch.mul(uu, v).add_(s2b[sl])  # σ² + v‖u_m‖²
        out[sl] += torch.log1p(uu.mul_(v).div_(s2b[sl])).sum(-1) - q.div_(den).sum(-1) * (v / s2[sl, None])
    return out


def _stats(prob: _Problem, W: torch.Tensor):
    yy = (prob.y.abs() ** 2).sum(-1)[:, None, :]
    WW = (W.abs() ** 2).sum(-1)[:, None, :]
    beta = (W.conj() * prob.y).sum(-1)[:, None, :]
    return yy, WW, beta


def _chunked(n: int, size: int):
    size = max(1, int(size))
    return [slice(s, min(n, s + size)) for s in range(0, n, size)]


def _angle_profile(prob: _Problem, eta: torch.Tensor, k: int, A: torch.Tensor,
                   search: LikelihoodSearch) -> torch.Tensor:
    """ℓ over the angle grid for drone k, everything else fixed: ``(B, G)``."""
    B, M, T = prob.y.shape
    W = prob.signal(eta) - prob.contribution(eta, k)
    d = prob.doppler_wave(eta, k)  # (B, T)
    G = A.shape[0]
    out = []
    if prob.fast:
        yy, WW, beta = _stats(prob, W)
        alpha = (d.conj()[:, None, :] * W).sum(-1)
        gamma = (d.conj()[:, None, :] * prob.y).sum(-1)
        dd = (d.abs() ** 2).sum(-1)
        return _grid_frame_profile(A, alpha, gamma, WW[:, 0], dd, beta[:, 0], yy[:, 0], prob.mu[..., 0], prob.v,
                                   prob.s2, search.chunk_elements)
    coh = "frame" if prob.frame else "signal"
    step = max(1, search.chunk_elements // max(1, B * M * T))
    for sl in _chunked(G, step):
        U = W[:, None] + A[sl][None, :, :, None] * d[:, None, None, :]  # (B, g, M, T)
        out.append(statistical_nll(prob.y[:, None], U, prob.mu[:, None], prob.v, prob.s2[:, None], coh))
    return torch.cat(out, 1)


def _doppler_profile(prob: _Problem, eta: torch.Tensor, k: int, freqs: torch.Tensor, search: LikelihoodSearch
                     ) -> torch.Tensor:
    """ℓ over the Doppler grid ``(F,)`` for drone k, everything else fixed: ``(B, F)``."""
    B, M, T = prob.y.shape
    W = prob.signal(eta) - prob.contribution(eta, k)
    a = _steer(prob.pos, prob.lam, eta[:, k, 0:1], eta[:, k, 1:2])[..., 0].to(prob.y.dtype)  # (B, M)
    ph = -2 * math.pi * freqs[None, :, None] * prob.t[:, None, :]  # (B, F, T)
    Econj = torch.polar(torch.ones_like(ph), ph) * prob.wave[:, k, None, :].conj()  # conj(d(f)) (B, F, T)
    F = freqs.numel()
    if prob.fast:
        yy, WW, beta = _stats(prob, W)
        alpha = Econj @ W.transpose(-1, -2)  # (B, F, M)
        gamma = Econj @ prob.y.transpose(-1, -2)
        dd = (prob.wave[:, k].abs() ** 2).sum(-1)[:, None, None]
        return _frame_profile(a.conj()[:, None, :], alpha, gamma, WW, dd, beta, yy, prob.mu[..., 0][:, None, :],
                              prob.v, prob.s2[:, None, None])
    coh = "frame" if prob.frame else "signal"
    out = []
    step = max(1, search.chunk_elements // max(1, B * M * T))
    for sl in _chunked(F, step):
        U = W[:, None] + a[:, None, :, None] * Econj[:, sl].conj()[:, :, None, :]  # (B, f, M, T)
        out.append(statistical_nll(prob.y[:, None], U, prob.mu[:, None], prob.v, prob.s2[:, None], coh))
    return torch.cat(out, 1)


# ---------------------------------------------------------------------------------------
# Fisher scoring refinement (analytic gradient, structured FIM, per-trial line search)
# ---------------------------------------------------------------------------------------
def _doppler_scale(prob: _Problem) -> float:
    tmax = float(prob.t.abs().max()) if prob.t.numel() else 1.0
    return 1.0 / (2 * math.pi * max(tmax, 1e-12))


#: Newton stop on the decrement: g^T F^{-1} g ≤ NEWTON_RTOL·(1 + |ℓ|) after a full step.
NEWTON_RTOL = 1e-12


def _newton(prob: _Problem, eta: torch.Tensor, free: list[int], search: LikelihoodSearch,
            nll: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Refine the flat parameters ``free`` of η ``(B, K, 3)``; ℓ never increases."""
    B, K, _ = eta.shape
    x = eta.reshape(B, 3 * K).clone()
    dt = x.dtype
    fscale = _doppler_scale(prob)
    scale = torch.tensor([1.0 if i % 3 < 2 else fscale for i in free], dtype=dt, device=x.device)
    steps = torch.tensor([2 * search.azimuth_grid.step if i % 3 < 2 else 2 * search.doppler_grid.step
                          for i in free], dtype=dt, device=x.device) / scale
    E = torch.zeros(len(free), 3 * K, dtype=dt, device=x.device)
    E[torch.arange(len(free)), torch.tensor(free)] = scale
    fx = prob.nll(x.reshape(B, K, 3)) if nll is None else nll.clone()
    active = torch.ones(B, dtype=torch.bool, device=x.device)
    fracs = torch.tensor([1.0, 0.5, 0.25, 0.125], dtype=dt, device=x.device)
    eps = torch.finfo(dt).eps
    for _ in range(search.newton_steps):
        ia = active.nonzero().squeeze(-1)
        if ia.numel() == 0:
            break
        full = ia.numel() == B
        sub = prob if full else prob.take(ia)
        xa = x if full else x[ia]
        g, H = sub.score(xa.reshape(-1, K, 3), free)
        g = g * scale
        H = H * scale[:, None] * scale[None, :]
        H = 0.5 * (H + H.mT)
        lam, Q = torch.linalg.eigh(H)
        floor = lam.abs().amax(-1, keepdim=True) * 1e3 * eps + torch.finfo(dt).tiny
        lam = lam.abs().clamp_min(floor)
        step = -(Q @ ((Q.mT @ g[..., None])[..., 0] / lam)[..., None])[..., 0]
        step = torch.nan_to_num(step).clamp(-steps, steps)
        decrement = -(g * step).sum(-1)  # g^T H^{-1} g: the predicted decrease of ℓ is half of it
        cand = xa[None] + (fracs[:, None, None] * step[None]) @ E  # (S, b, P)
        cand[..., 2::3] = cand[..., 2::3].clamp(search.doppler_grid.start, search.doppler_grid.stop)
        fc = sub.nll(cand.reshape(fracs.numel(), ia.numel(), K, 3))  # (S, b): broadcast, no copies
        fc = torch.nan_to_num(fc, nan=torch.inf)
        better = fc < fx[ia][None]
        first = better.to(torch.int64).argmax(0)
        anyb = better.any(0)
        pick = torch.arange(ia.numel(), device=x.device)
        x[ia] = torch.where(anyb[:, None], cand[first, pick], xa.clone())
        fx[ia] = torch.where(anyb, fc[first, pick], fx[ia])
        taken = (fracs[first][:, None] * step).abs()
        tiny = (taken <= 1e-10 * (1 + xa.abs() @ E.abs().T / scale)).all(-1)
        # stop: no decrease, a negligible step, or a full step whose predicted decrease was below
        # NEWTON_RTOL·(1 + |ℓ|) (what is left is second order in it: ≪ 1e-5 of a √CRLB)
        done = anyb & (first == 0) & (decrement <= NEWTON_RTOL * (1 + fx[ia].abs()))
        active[ia[(~anyb) | tiny | done]] = False
    return x.reshape(B, K, 3), fx


def _refine_block(prob, eta, nll, free, cand, search):
    """Refine from the current point and, where the grid optimum lies in another basin (more than
    a grid step away from the current point), from the grid optimum too; keep the better — ℓ
    never increases.  (A grid optimum within a step of the current point refines to the same
    block minimum, so it is not refined twice.)"""
    cur, fcur = _newton(prob, eta, free, search, nll)
    cur = canonical_angles(cur)
    fcur2 = prob.nll(cur)
    ok = fcur2 <= nll  # the canonical map keeps the response: guard only against rounding
    cur = torch.where(ok[:, None, None], cur, eta)
    fcur = torch.where(ok, fcur2, nll)
    d = (cand - eta).reshape(eta.shape[0], -1)[:, free].abs()
    step = torch.tensor([search.azimuth_grid.step if i % 3 < 2 else search.doppler_grid.step for i in free],
                        dtype=d.dtype, device=d.device)
    far = (d > 1.5 * step).any(-1).nonzero().squeeze(-1)
    if far.numel() == 0:
        return cur, fcur
    sub = prob.take(far)
    c = cand[far]
    out, f = _newton(sub, c, free, search, sub.nll(c))
    out = canonical_angles(out)
    f = sub.nll(out)
    better = f < fcur[far]
    cur[far] = torch.where(better[:, None, None], out, cur[far])
    fcur[far] = torch.where(better, f, fcur[far])
    return cur, fcur


def _angle_step(prob, eta, nll, k, A, az, el, search):
    prof = _angle_profile(prob, eta, k, A, search)
    best = prof.argmin(-1)
    cand = eta.clone()
    cand[:, k, 0] = az[best]
    cand[:, k, 1] = el[best]
    return _refine_block(prob, eta, nll, [3 * k, 3 * k + 1], cand, search)


def _doppler_step(prob, eta, nll, k, freqs, search):
    prof = _doppler_profile(prob, eta, k, freqs, search)
    cand = eta.clone()
    cand[:, k, 2] = freqs[prof.argmin(-1)]
    return _refine_block(prob, eta, nll, [3 * k + 2], cand, search)


# ---------------------------------------------------------------------------------------
# initialisation, AO-ML, MLE, MUSIC + Doppler
# ---------------------------------------------------------------------------------------
def _sequential_init(prob: _Problem, search: LikelihoodSearch) -> torch.Tensor:
    B, M, T = prob.y.shape
    K = prob.wave.shape[1]
    A, az, el = _grid_steering(prob, search)  # (G, M)
    freqs = search.doppler_grid.points_like(prob.y.real)
    G, F = A.shape[0], freqs.numel()
    eta = torch.zeros(B, K, 3, dtype=prob.y.real.dtype, device=prob.y.device)
    resid = prob.y.clone()
    ph = -2 * math.pi * freqs[None, :, None] * prob.t[:, None, :]
    E = torch.polar(torch.ones_like(ph), ph)  # (B, F, T)
    for k in range(K):
        if k > 0:
            resid = resid - prob.mu * prob.contribution(eta, k - 1)
        Z = (E * prob.wave[:, k, None, :].conj()) @ (prob.mu.conj() * resid).transpose(-1, -2)  # (B, F, M)
        best = torch.empty(B, dtype=torch.int64, device=prob.y.device)
        for sl in _chunked(B, search.chunk_elements // max(1, G * F)):
            score = (A.conj() @ Z[sl].transpose(-1, -2)).real  # (b, G, F)
            best[sl] = score.reshape(score.shape[0], -1).argmax(-1)
        eta[:, k, 0] = az[best // F]
        eta[:, k, 1] = el[best // F]
        eta[:, k, 2] = freqs[best % F]
    return eta


def _ao_ml(prob: _Problem, search: LikelihoodSearch, eta0: torch.Tensor | None = None):
    B, K = prob.y.shape[0], prob.wave.shape[1]
    A, az, el = _grid_steering(prob, search)
    freqs = search.doppler_grid.points_like(prob.y.real)
    eta = _sequential_init(prob, search) if eta0 is None else eta0.clone()
    nll = prob.nll(eta)
    hist_eta = [eta.clone()]
    hist_nll = [nll.clone()]
    iters = torch.zeros(B, dtype=torch.int64, device=eta.device)
    active = torch.ones(B, dtype=torch.bool, device=eta.device)
    converged = torch.zeros(B, dtype=torch.bool, device=eta.device)
    for it in range(1, search.max_iterations + 1):
        ia = active.nonzero().squeeze(-1)
        if ia.numel() == 0:
            hist_eta.append(eta.clone())
            hist_nll.append(nll.clone())
            continue
        sub = prob.take(ia)
        e, f = eta[ia], nll[ia]
        for k in range(K):
            e, f = _angle_step(sub, e, f, k, A, az, el, search)
            e, f = _doppler_step(sub, e, f, k, freqs, search)
        d = e - eta[ia]
        d_ang = torch.remainder(d[..., :2] + math.pi, 2 * math.pi) - math.pi
        done = ((d_ang.abs() < search.angle_tol).all(-1).all(-1) & (d[..., 2].abs() < search.doppler_tol).all(-1)) \
            | ((nll[ia] - f).abs() <= search.nll_rtol * f.abs())
        eta[ia], nll[ia] = e, f
        iters[ia] = it
        active[ia[done]] = False
        converged[ia[done]] = True
        hist_eta.append(eta.clone())
        hist_nll.append(nll.clone())
        if not bool(active.any()):
            break
    return eta, nll, iters, converged, torch.stack(hist_eta, 1), torch.stack(hist_nll, 1)


def _finish(eta, valid, batch, extras):
    K = eta.shape[-2]
    eta = torch.where(valid[:, None, None], eta, torch.full_like(eta, torch.nan))
    count = torch.where(valid, torch.full_like(valid, K, dtype=torch.int64), torch.zeros_like(valid, dtype=torch.int64))
    ex = {k: v.reshape(tuple(batch) + tuple(v.shape[1:])) for k, v in extras.items()}
    return EstimationResult(estimates=eta.reshape(tuple(batch) + (K, 3)), parameters=PARAMETERS,
                            count=count.reshape(batch),
                            valid=valid.reshape(batch), extras=ex)


def sequential_init(y: torch.Tensor, model: KnownPilots, search: LikelihoodSearch | None = None) -> EstimationResult:
    r"""Ziskind–Wax sequential initialisation (least-squares member, coarse 3-D grid), ``(..., K, 3)``."""
    search = search or LikelihoodSearch()
    with torch.no_grad():
        prob, batch, valid = _problem(y, model)
        eta = _sequential_init(prob, search)
        return _finish(eta, valid, batch, {"nll": prob.nll(eta)})


def ao_ml(y: torch.Tensor, model: KnownPilots, search: LikelihoodSearch | None = None,
          init: torch.Tensor | None = None) -> EstimationResult:
    r"""AO-ML (seed 003, Sec. III-A; see the module doc).

    Args:
        y: ``(..., M, T)`` observations.  model: :class:`KnownPilots`.
        search: grids and stopping rules.  init: optional ``(..., K, 3)`` starting point
            (default: :func:`sequential_init`).

    Returns:
        :class:`~isackit.estimators.base.EstimationResult` with estimates ``(..., K, 3)`` and
        extras ``nll`` ``(...)``, ``iterations`` ``(...)``, ``converged`` ``(...)`` (the stop rule
        was met before the cap), ``nll_history`` ``(..., I + 1)`` and
        ``estimate_history`` ``(..., I + 1, K, 3)`` (iteration 0 = the initialisation; values
        are held after a trial has converged).
    """
    search = search or LikelihoodSearch()
    with torch.no_grad():
        prob, batch, valid = _problem(y, model)
        e0 = None if init is None else init.to(prob.y.real.dtype).reshape(-1, model.num_sources, 3)
        eta, nll, iters, conv, he, hn = _ao_ml(prob, search, e0)
        return _finish(eta, valid, batch, {"nll": nll, "iterations": iters, "converged": conv,
                                           "nll_history": hn, "estimate_history": he})


def _music_angles(prob: _Problem, array: ArrayGeometry, search: LikelihoodSearch) -> torch.Tensor:
    K = prob.wave.shape[1]
    T = prob.y.shape[-1]
    R = prob.y @ prob.y.mH / T
    el = search.elevation_grid
    res = music2d_doa(R, array, K, search.azimuth_grid, el)
    ang = res.estimates  # (B, K, 2) sorted by azimuth, NaN when not found
    return torch.nan_to_num(ang, nan=0.0)


def _dopplers_given_angles(prob, ang, search, passes: int = 2):
    B, K = prob.y.shape[0], prob.wave.shape[1]
    freqs = search.doppler_grid.points_like(prob.y.real)
    eta = torch.cat([ang, torch.zeros(B, K, 1, dtype=ang.dtype, device=ang.device)], -1)
    nll = prob.nll(eta)
    for _ in range(passes):
        for k in range(K):
            eta, nll = _doppler_step(prob, eta, nll, k, freqs, search)
    if K > 1:  # the drones' Dopplers are coupled: finish with a joint refinement of all of them
        eta, nll = _newton(prob, eta, [3 * k + 2 for k in range(K)], search, nll)
    return eta, nll


def _music_eta(prob: _Problem, peaks: torch.Tensor, search: LikelihoodSearch) -> tuple[torch.Tensor, torch.Tensor]:
    """MUSIC peaks are unordered: for every assignment of the K peaks to the K drones (K!
    orders), search the Dopplers given the angles and keep the order of lowest ℓ (the pilots
    identify the drones)."""
    import itertools

    B, K = peaks.shape[:2]
    perms = list(itertools.permutations(range(K)))
    P = torch.tensor(perms, device=peaks.device)  # (n!, K)
    cand = peaks[:, P].transpose(0, 1).reshape(len(perms) * B, K, 2)  # (n!·B, K, 2)
    eta, nll = _dopplers_given_angles(prob.repeat(len(perms)), cand, search)
    best = nll.reshape(len(perms), B).argmin(0)
    pick = torch.arange(B, device=peaks.device)
    return eta.reshape(len(perms), B, K, 3)[best, pick], nll.reshape(len(perms), B)[best, pick]


def music_doppler(y: torch.Tensor, model: KnownPilots, search: LikelihoodSearch | None = None) -> EstimationResult:
    r"""2-D MUSIC angles (library :func:`~isackit.estimators.spectral.music2d_doa` on
    R̂ = Y Y^H / T, ideal array), then each Doppler by the ML phase-2 search of ℓ given the
    angles (two coordinate passes); the peaks are assigned to the drones by the lowest ℓ over
    the K! orders (the pilots identify the drones).  Needs T ≥ K."""
    search = search or LikelihoodSearch()
    with torch.no_grad():
        prob, batch, valid = _problem(y, model)
        if model.num_signals < model.num_sources:
            raise ValueError(f"MUSIC needs at least K={model.num_sources} signals, got T={model.num_signals}")
        eta, nll = _music_eta(prob, _music_angles(prob, model.array, search), search)
        return _finish(canonical_angles(eta), valid, batch, {"nll": nll})


def statistical_mle(y: torch.Tensor, model: KnownPilots, search: LikelihoodSearch | None = None,
                    starts: tuple[str, ...] = ("aoml", "init", "music")) -> EstimationResult:
    r"""Joint minimiser of ℓ over all 3K parameters (seed 003, (7)–(8)).

    Fisher scoring (analytic gradient and FIM, backtracking) over all parameters from each start —
    ``"aoml"`` (the converged AO-ML point), ``"init"`` (the sequential initialisation),
    ``"music"`` (MUSIC angles + ML Doppler; used when T ≥ K + 1) — and the lowest ℓ wins.
    Never started from the truth.  With :meth:`KnownPilots.genie` this is the G-ML.

    Returns:
        :class:`~isackit.estimators.base.EstimationResult`, estimates ``(..., K, 3)``; extras
        ``nll`` and ``aoml`` (the AO-ML estimates, so a caller gets both from one run) and
        ``aoml_iterations``.
    """
    search = search or LikelihoodSearch()
    for s in starts:
        check_choice(s, ("aoml", "init", "music"), "start")
    with torch.no_grad():
        prob, batch, valid = _problem(y, model)
        B, K = prob.y.shape[0], model.num_sources
        init = _sequential_init(prob, search)
        cands = []
        extras = {}
        if "aoml" in starts:
            eta, _, iters, _, _, _ = _ao_ml(prob, search, init)
            cands.append(eta)
            extras["aoml"] = eta
            extras["aoml_iterations"] = iters
        if "init" in starts:
            cands.append(init)
        if "music" in starts and model.num_signals >= K + 1:
            cands.append(_music_eta(prob, _music_angles(prob, model.array, search), search)[0])
        S = len(cands)
        many = prob.repeat(S)
        joint = replace(search, newton_steps=3 * search.newton_steps)
        eta, f = _newton(many, torch.cat(cands, 0), list(range(3 * K)), joint)
        eta = canonical_angles(eta)
        f = many.nll(eta).reshape(S, B)
        best = f.argmin(0)
        eta = eta.reshape(S, B, K, 3)[best, torch.arange(B, device=eta.device)]
        extras["nll"] = f[best, torch.arange(B, device=eta.device)]
        return _finish(eta, valid, batch, extras)


# ---------------------------------------------------------------------------------------
# registered estimators
# ---------------------------------------------------------------------------------------
def _example_problem(dtype, device, generator, *, genie: bool = False):
    """Two drones on a centred 3 × 3 horizontal URA, 4 QPSK pilots 1 ms apart centred on t = 0
    (so that angles and Doppler are nearly decoupled and AO-ML converges in a few iterations),
    noise-free (a 1e-7 perturbation from ``generator``) and error-free (or with known errors)."""
    from ..geometry import horizontal_ura

    arr = horizontal_ura(3, 3, centered=True)
    truth = torch.tensor([[math.radians(20.0), math.radians(35.0), 60.0],
                          [math.radians(-150.0), math.radians(50.0), -120.0]], dtype=torch.float64)
    g = torch.Generator().manual_seed(3)  # fixed scenario; ``generator`` only draws a tiny noise
    q = torch.randint(0, 4, (2, 4), generator=g)
    pilots = torch.polar(torch.ones(2, 4, dtype=torch.float64), math.pi / 4 + q.double() * math.pi / 2)
    amp = torch.tensor([1.0, 0.8], dtype=torch.float64)
    wave = (pilots * amp[:, None]).to(torch.complex128)
    times = (torch.arange(4, dtype=torch.float64) - 1.5) * 1e-3
    zeta = torch.polar(1 + 0.1 * torch.rand(9, generator=g, dtype=torch.float64),
                       0.2 * torch.rand(9, generator=g, dtype=torch.float64) - 0.1).to(torch.complex128)
    u = _signal(arr.positions_like(truth), arr.wavelength, truth, wave, times)
    y = zeta[:, None] * u if genie else u
    if generator is not None:
        y = y + 1e-7 * torch.randn(y.shape, generator=generator, dtype=torch.complex128)
    y = y.to(dtype=dtype, device=device)
    search = LikelihoodSearch(azimuth_grid=SearchGrid.degrees(-180.0, 176.0, 4.0),
                              elevation_grid=SearchGrid.degrees(0.0, 88.0, 4.0, "elevation"),
                              doppler_grid=SearchGrid(-490.0, 490.0, 20.0, "doppler"),
                              angle_tol=1e-9, doppler_tol=1e-6, nll_rtol=1e-15)
    return arr, wave.to(dtype), times, zeta.to(dtype), search, y, truth


class _PilotEstimator(Estimator):
    input_kind = "snapshots"
    input_ndim = 2
    parameters = PARAMETERS

    def _model(self) -> KnownPilots:
        model = KnownPilots.from_errors(self.array, self.waveforms, self.times, self.noise_var, self.errors,
                                        self.coherence)
        if model.num_sources != self.num_sources:
            raise ValueError(f"num_sources={self.num_sources} but waveforms hold {model.num_sources} sources")
        return model


@register("statistical_mle")
class StatisticalMLE(_PilotEstimator):
    """Statistical MLE of (φ, ϑ, f) per drone from known pilots (:func:`statistical_mle`).

    Args:
        array: ``ArrayGeometry`` (e.g. :func:`~isackit.geometry.horizontal_ura`).
        num_sources: K.  waveforms: ``(K, T)`` amplitude × pilots.  times: ``(T,)`` s.
        noise_var: σ².  errors: ``ErrorMoments``, an error law or ``None`` (ideal array).
        coherence: ``"frame"`` or ``"signal"``.  search: :class:`LikelihoodSearch`.
    """

    def __init__(self, array, num_sources: int = 1, waveforms=None, times=None, noise_var: float = 1.0,
                 errors=None, coherence: str = "frame", search: LikelihoodSearch | None = None):
        self.array = array
        self.num_sources = num_sources
        self.waveforms = waveforms
        self.times = times
        self.noise_var = noise_var
        self.errors = errors
        self.coherence = coherence
        self.search = search

    def estimate(self, data: torch.Tensor) -> EstimationResult:
        return statistical_mle(data, self._model(), self.search)

    @classmethod
    def example(cls, dtype=torch.complex128, device="cpu", generator=None):
        arr, wave, times, _, search, y, truth = _example_problem(dtype, device, generator)
        return cls(arr, 2, wave, times, 1e-2, None, "frame", search), y, truth


@register("ao_ml")
class AOML(StatisticalMLE):
    """AO-ML (:func:`ao_ml`): alternating angle / Doppler searches of the statistical ℓ."""

    def estimate(self, data: torch.Tensor) -> EstimationResult:
        return ao_ml(data, self._model(), self.search)


@register("music2d_doppler")
class MusicDoppler(StatisticalMLE):
    """2-D MUSIC angles + ML Doppler (:func:`music_doppler`); needs T ≥ K signals."""

    def estimate(self, data: torch.Tensor) -> EstimationResult:
        return music_doppler(data, self._model(), self.search)


@register("genie_ml")
class GenieML(_PilotEstimator):
    """Genie-aided ML: the realised per-element errors ζ ``(M,)`` (or ``(..., M)``) are known.

    Args: as :class:`StatisticalMLE`, with ``realised_errors`` instead of ``errors``.
    """

    def __init__(self, array, num_sources: int = 1, waveforms=None, times=None, noise_var: float = 1.0,
                 realised_errors=None, coherence: str = "frame", search: LikelihoodSearch | None = None):
        self.array = array
        self.num_sources = num_sources
        self.waveforms = waveforms
        self.times = times
        self.noise_var = noise_var
        self.realised_errors = realised_errors
        self.coherence = coherence
        self.search = search

    def estimate(self, data: torch.Tensor) -> EstimationResult:
        y = data
        if self.realised_errors is None:
            raise ValueError("GenieML needs realised_errors (the per-element errors of the data)")
        z = self.realised_errors.to(y.device)
        model = KnownPilots.genie(self.array, self.waveforms, self.times, self.noise_var,
                                  z[..., None] if z.shape[-1] == self.array.num_elements else z, self.coherence)
        if model.num_sources != self.num_sources:
            raise ValueError(f"num_sources={self.num_sources} but waveforms hold {model.num_sources} sources")
        return statistical_mle(y, model, self.search, starts=("init", "aoml"))

    @classmethod
    def example(cls, dtype=torch.complex128, device="cpu", generator=None):
        arr, wave, times, zeta, search, y, truth = _example_problem(dtype, device, generator, genie=True)
        return cls(arr, 2, wave, times, 1e-2, zeta, "frame", search), y, truth
