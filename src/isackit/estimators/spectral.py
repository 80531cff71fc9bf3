r"""Spectral (beamscan) estimators: Bartlett/DBF, MVDR/Capon, MUSIC — 1-D, 2-D and on OFDM CSI.

Spectra (pure, batched, differentiable w.r.t. R and the dictionary):

* Bartlett / DBF   P_B(θ) = a^H R a / a^H a
* MVDR / Capon     P_C(θ) = 1 / a^H (R + δ I)^{-1} a,   δ = ``loading``·tr(R)/M
* MUSIC            P_M(θ) = a^H a / ‖E_n^H a‖² = a^H a / a^H P_n a,   P_n = E_n E_n^H = I - E_s E_s^H,
  E_s the K principal eigenvectors of R (``torch.linalg.eigh``).  (Normalising by a^H a
  leaves the ideal, unit-modulus case unchanged and makes MUSIC consistent for models
  whose response norm depends on the angle.)

All three are quadratic forms a_g^H Q a_g of one Hermitian matrix Q per batch element on a
fixed dictionary.  :class:`~isackit.estimators.grids.QuadraticFormDictionary` evaluates them
on large grids in real arithmetic, after merging the identical rows of the feature matrix
[|a_m|², 2Re(a_m^* a_n), -2Im(a_m^* a_n)]: for a ULA only the 2M-1 co-array lags remain,
so the MUSIC spectrum on G points costs (2M-1)·G real multiply-adds per covariance instead
of M(M-K)·G complex ones.  Impaired dictionaries fall back to M² rows.

DOA pipelines (:func:`bartlett_doa`, :func:`mvdr_doa`, :func:`music_doa`, :func:`music2d_doa`):
grid spectrum → K largest local maxima (:mod:`.peaks`) → off-grid refinement (unless
``grid_only``): MUSIC by batched Gauss–Newton steps on a^H P_n a / a^H a with the model's
steering derivatives (any ``ArrayModel``, 1 or 2 angles per source); Bartlett/MVDR by
parabolic refinement of the exact spectrum.  Batches are processed in chunks of
``chunk_size`` to bound memory.  Non-finite input is a ``ValueError``; a covariance with zero
power gives ``valid = False`` and NaN estimates for that batch element only.

Joint spectra on OFDM CSI (Bartlett, separable contractions, never a loop):
:func:`angle_delay_spectrum` (CSI ``(..., N, M)``) and :func:`angle_angle_delay_spectrum`
(CSI ``(..., N, M_r, M_t)``).

References: Van Trees, *Optimum Array Processing* (2002), ch. 6, 9; Schmidt, IEEE TAP 1986
(MUSIC); seed 001 (3-D Bartlett/MUSIC baselines), seed 002 (DBF/MUSIC baselines).
"""

from __future__ import annotations


import torch

from .._checks import check_last_dims
from .._dtypes import eps as _eps
from .._dtypes import common_complex_dtype, is_numerically_singular
from .base import EstimationResult, Estimator, register
from .common import (
    batch_chunks,
    check_covariance,
    check_data,
    check_loading,
    example_covariance,
    flatten_covariance,
    hermitian,
    loaded_covariance,
    make_result,
    quadratic_form,
    sanitize_data,
    signal_subspace,
)
from .grids import (
    QuadraticFormDictionary,
    SearchGrid,
    default_delay_grid,
    quadratic_form_dictionary,
    steering_with_derivatives,
)
from .peaks import find_peaks, peaks_to_coordinates, refine_parabolic

__all__ = [
    "AZIMUTH_GRID",
    "MUSIC",
    "MUSIC2D",
    "MVDR",
    "Bartlett",
    "BartlettAngleDelay",
    "QuadraticFormDictionary",
    "angle_angle_delay_spectrum",
    "angle_delay_spectrum",
    "bartlett_doa",
    "bartlett_spectrum",
    "music2d_doa",
    "music_grid_peaks",
    "music_doa",
    "music_refine",
    "music_spectrum",
    "mvdr_doa",
    "mvdr_spectrum",
    "noise_projector",
]


# ---------------------------------------------------------------------------------------
# spectra on explicit dictionaries
# ---------------------------------------------------------------------------------------
def bartlett_spectrum(R: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
    r"""Bartlett / DBF spectrum a_g^H R a_g / a_g^H a_g.

    Args:
        R: ``(..., M, M)`` covariance.  A: ``(..., M, G)`` dictionary (broadcasts).

    Returns:
        ``(..., G)`` real, differentiable in R and A.
    """
    check_covariance(R, A.shape[-2])
    common_complex_dtype(R, A, names=("R", "A"))
    return quadratic_form(A, R) / (A.abs() ** 2).sum(-2)


def mvdr_spectrum(R: torch.Tensor, A: torch.Tensor, loading: float = 0.0) -> torch.Tensor:
    r"""MVDR / Capon spectrum 1 / a_g^H (R + δI)^{-1} a_g with δ = ``loading``·tr(R)/M.

    Args:
        R: ``(..., M, M)``.  A: ``(..., M, G)``.  loading: relative diagonal loading ≥ 0.

    Returns:
        ``(..., G)`` real, differentiable.  A singular R with ``loading = 0`` raises.
    """
    check_covariance(R, A.shape[-2])
    common_complex_dtype(R, A, names=("R", "A"))
    return 1.0 / quadratic_form(A, torch.linalg.inv(loaded_covariance(R, loading)))


def _music_sources(num_sources, R: torch.Tensor) -> int:
    """K for MUSIC: in [1, M-1] (the noise subspace must not be empty)."""
    M = R.shape[-1]
    if isinstance(num_sources, bool) or not isinstance(num_sources, int) or not 0 < num_sources < M:
        raise ValueError(f"num_sources must be an integer in [1, M-1] = [1, {M - 1}] (the noise subspace "
                         f"must not be empty), got {num_sources!r}")
    return num_sources


def noise_projector(R: torch.Tensor, num_sources: int, Es: torch.Tensor | None = None) -> torch.Tensor:
    r"""P_n = E_n E_n^H = I - E_s E_s^H, ``(..., M, M)`` (pass ``Es`` if already computed)."""
    Es = signal_subspace(R, _music_sources(num_sources, R)) if Es is None else Es
    eye = torch.eye(R.shape[-1], dtype=R.dtype, device=R.device)
    return eye - Es @ Es.mH


def music_spectrum(R: torch.Tensor, A: torch.Tensor, num_sources: int) -> torch.Tensor:
    r"""MUSIC pseudo-spectrum a^H a / ‖E_n^H a‖² on a dictionary ``A (..., M, G)`` → ``(..., G)``."""
    check_covariance(R, A.shape[-2])
    common_complex_dtype(R, A, names=("R", "A"))
    Pn = noise_projector(R, num_sources)
    norms = (A.abs() ** 2).sum(-2)
    return norms / quadratic_form(A, Pn).clamp_min(_eps(R.dtype) * norms)


# ---------------------------------------------------------------------------------------
# MUSIC refinement (Gauss–Newton on the normalised null-spectrum)
# ---------------------------------------------------------------------------------------
def _music_cost_terms(model, Es, params, want_derivs=True):
    """f = a^H P_n a / a^H a per (batch, source), and optionally gradient/GN Hessian.

    ``params``: ``(az, el)`` (``el`` may be None), or P > 2 parameters for a model whose
    ``steering(*params)`` / ``steering_and_derivatives(*params)`` take P arguments."""
    if want_derivs:
        if len(params) > 2:
            A, derivs = model.steering_and_derivatives(*params)
        else:
            A, derivs = steering_with_derivatives(model, *params)
    else:
        A = model.steering(*params)
    A = A.to(Es.dtype)

    def proj(X):
        return X - Es @ (Es.mH @ X)

    PA = proj(A)
    num = (A.conj() * PA).real.sum(-2)
    den = (A.real.square() + A.imag.square()).sum(-2)
    f = num / den
    if not want_derivs:
        return f, None, None
    D = [d.to(Es.dtype) for d in derivs[:sum(p is not None for p in params)]]
    g = torch.stack([(2 * (d.conj() * PA).real.sum(-2) - f * 2 * (d.conj() * A).real.sum(-2)) / den for d in D], -1)
    PD = [proj(d) for d in D]
    H = torch.stack([torch.stack([2 * (di.conj() * pdj).real.sum(-2) / den for pdj in PD], -1) for di in D], -2)
    return f, g, H


def music_refine(R: torch.Tensor, model, angles: torch.Tensor, num_sources: int, max_step: float,
                 iterations: int = 6, signal_subspace_: torch.Tensor | None = None) -> torch.Tensor:
    r"""Refine MUSIC peaks off the grid by batched Gauss–Newton steps.

    Minimises f(ψ) = a(ψ)^H P_n a(ψ) / a(ψ)^H a(ψ) around each peak, ψ = azimuth or
    (azimuth, elevation) — or any P parameters of a response model whose ``steering(*ψ)`` and
    ``steering_and_derivatives(*ψ)`` take them (the joint CSI estimators of :mod:`.joint`) —
    with gradient g = (2Re(∂a^H P_n a) - f·2Re(∂a^H a))/a^H a and the
    Gauss–Newton Hessian 2Re(∂a^H P_n ∂a)/a^H a from ``model.steering_and_derivatives``
    (exact for any :class:`~isackit.impairments.ArrayModel`).  Steps are clamped to
    ``max_step`` per parameter and accepted only if f decreases (else halved once).
    Converges quadratically to the noise-free truth (zero residual).

    Args:
        R: ``(..., M, M)``; model: the assumed array model.
        angles: ``(..., K, P)`` starting angles (NaN rows are kept NaN).
        num_sources: K_s, the signal-subspace dimension.
        max_step: largest step per iteration (radians), e.g. the grid step.
        signal_subspace_: E_s ``(..., M, K_s)`` if already computed (else from ``eigh(R)``).

    Returns:
        ``(..., K, P)`` refined angles (no gradient).
    """
    with torch.no_grad():
        Es = signal_subspace(hermitian(R), num_sources) if signal_subspace_ is None else signal_subspace_
        nan = torch.isnan(angles).any(-1, keepdim=True)
        psi = torch.where(nan, torch.zeros_like(angles), angles)
        P = psi.shape[-1]

        def split(p):
            return (p[..., 0], None) if P == 1 else tuple(p.unbind(-1))

        for _ in range(int(iterations)):
            f, g, H = _music_cost_terms(model, Es, split(psi))
            eye = torch.eye(P, dtype=H.dtype, device=H.device)
            Hs = H + 1e-12 * H.diagonal(dim1=-2, dim2=-1).abs().amax(-1)[..., None, None].clamp_min(1e-300) * eye
            step = -torch.linalg.solve_ex(Hs, g.unsqueeze(-1))[0].squeeze(-1)
            step = torch.nan_to_num(step).clamp(-max_step, max_step)
            best = psi
            fbest = f
            tiny = step.abs().amax(-1) < 1e-7  # below the cost's rounding: accept (quadratic region)
            for frac in (1.0, 0.5):
                cand = psi + frac * step
                fc, _, _ = _music_cost_terms(model, Es, split(cand), want_derivs=False)
                take = (fc < fbest) | (tiny & (frac == 1.0))
                best = torch.where(take[..., None], cand, best)
                fbest = torch.where(take, fc, fbest)
            psi = best
            if not bool((step.abs() > 1e-10).any()):  # converged everywhere
                break
        return torch.where(nan, torch.full_like(psi, torch.nan), psi)


# ---------------------------------------------------------------------------------------
# DOA pipelines
# ---------------------------------------------------------------------------------------
def _grid_search(R, model, num_peaks, grid, qmatrix, score, chunk_size, return_spectrum,
                 elevation_grid=None, display=None):
    """Shared grid stage: returns (angles (B, K, P) grid values, found, spectrum or None, grids).

    ``score(qf, Q)`` gives the score whose local maxima are picked; ``display(score)``
    (default identity) the spectrum returned to the user."""
    qf = quadratic_form_dictionary(grid, model, R, elevation_grid)
    grids = [grid.points_like(R)] + ([elevation_grid.points_like(R)] if elevation_grid is not None else [])
    shape = [g.numel() for g in grids]
    B = R.shape[0]
    outs, founds, specs = [], [], []
    for sl in batch_chunks(B, chunk_size):
        Q = qmatrix(R[sl])
        s = score(qf, Q).reshape(-1, *shape)
        _, idx, found = find_peaks(s, num_peaks, ndim=len(shape))
        outs.append(peaks_to_coordinates(idx, found, grids))
        founds.append(found)
        if return_spectrum:
            specs.append(s if display is None else display(s))
    spec = torch.cat(specs, 0) if return_spectrum else None
    return torch.cat(outs, 0), torch.cat(founds, 0), spec, tuple(grids)


def _bartlett_at(model, R, angles):
    """a^H R a / a^H a at ``angles (B, K)`` for ``R (B, M, M)`` → ``(B, K)``."""
    A = model.steering(angles).to(R.dtype)
    return quadratic_form(A, R) / (A.abs() ** 2).sum(-2)


def _mvdr_at(model, Ri, angles):
    """-a^H R^{-1} a (the MVDR score to maximise) at ``angles (B, K)`` for ``Ri (B, M, M)``."""
    return -quadratic_form(model.steering(angles).to(Ri.dtype), Ri)


def bartlett_doa(R: torch.Tensor, model, num_sources: int, grid: SearchGrid, *, grid_only: bool = False,
                 iterations: int = 8, chunk_size: int = 256, return_spectrum: bool = False) -> EstimationResult:
    r"""Bartlett DOAs: K largest local maxima of a^H R a / a^H a on ``grid``, refined off-grid
    (parabolic) unless ``grid_only``.  Exact for one source (= the single-source ML).

    Args:
        R: ``(..., M, M)``; model: ``ArrayGeometry`` / ``ArrayModel`` assumed by the receiver;
        num_sources: K; grid: azimuth :class:`SearchGrid`.

    Returns:
        :class:`EstimationResult` with estimates ``(..., K, 1)`` ("azimuth").
    """
    with torch.no_grad():
        batch, Rf, valid = flatten_covariance(R, model.num_elements)
        ang, found, spec, grids = _grid_search(Rf, model, num_sources, grid, lambda Q: Q,
                                               lambda qf, Q: qf(Q, normalized=True), chunk_size, return_spectrum)
        if not grid_only:
            x = refine_parabolic(lambda a: _bartlett_at(model, Rf, a),
                                 torch.nan_to_num(ang[..., 0]), grid.step, iterations)
            ang = x[..., None]
        return make_result(ang, found, valid, batch, ("azimuth",), spectrum=spec, grids=grids)


def mvdr_doa(R: torch.Tensor, model, num_sources: int, grid: SearchGrid, *, loading: float = 1e-3,
             grid_only: bool = False, iterations: int = 8, chunk_size: int = 256,
             return_spectrum: bool = False) -> EstimationResult:
    r"""MVDR/Capon DOAs: K largest local maxima of 1/a^H (R + δI)^{-1} a (δ = ``loading``·tr R/M),
    refined off-grid (parabolic) unless ``grid_only``.  A covariance that cannot be inverted
    (singular with ``loading = 0``) gives ``valid = False``.
    """
    check_loading(loading)
    with torch.no_grad():
        batch, Rf, valid = flatten_covariance(R, model.num_elements)
        Rl = loaded_covariance(Rf, loading)
        # inverse from the eigen-decomposition; a numerically singular R (condition number
        # above 1/(10 eps)) would give a huge, meaningless inverse: flag it instead
        w, V = torch.linalg.eigh(Rl)
        valid = valid & ~is_numerically_singular(w)
        w = torch.where(valid[:, None], w, torch.ones_like(w))
        Ri = (V / w[..., None, :].to(V.dtype)) @ V.mH
        eye = torch.eye(Rf.shape[-1], dtype=Rf.dtype, device=Rf.device)
        Ri = torch.where(valid[:, None, None], Ri, eye)
        ang, found, spec, grids = _grid_search(Ri, model, num_sources, grid, lambda Q: Q,
                                               lambda qf, Q: qf(Q, scale=-1.0), chunk_size, return_spectrum,
                                               display=lambda s: -1.0 / s)
        if not grid_only:
            x = refine_parabolic(lambda a: _mvdr_at(model, Ri, a),
                                 torch.nan_to_num(ang[..., 0]), grid.step, iterations)
            ang = x[..., None]
        return make_result(ang, found, valid, batch, ("azimuth",), spectrum=spec, grids=grids)


def music_grid_peaks(Rf: torch.Tensor, model, num_sources: int, grid: SearchGrid, chunk_size: int = 256,
                     return_spectrum: bool = False, elevation_grid: SearchGrid | None = None,
                     Es: torch.Tensor | None = None):
    r"""The grid stage of MUSIC: the K largest local maxima of a^H a / a^H P_n a.

    Peaks are picked on -a^H P_n a / a^H a (finite, no plateaux at exact nulls); the
    returned spectrum is the usual a^H a / a^H P_n a, capped at 1/eps.

    Args:
        Rf: ``(B, M, M)`` Hermitian covariances (flattened batch, e.g. from
            :func:`~isackit.estimators.common.flatten_covariance`).
        Es: the signal subspace ``(B, M, K)`` if already computed.

    Returns:
        ``(angles (B, K, P) grid values, found (B, K), spectrum (B, G[, G_el]) or None, grids)``.
    """
    eps = _eps(Rf.dtype)
    Pn = noise_projector(Rf, num_sources, Es)
    return _grid_search(Pn, model, num_sources, grid, lambda Q: Q,
                        lambda qf, Q: qf(Q, scale=-1.0, normalized=True), chunk_size, return_spectrum, elevation_grid,
                        display=lambda s: 1.0 / (-s).clamp_min(eps))


def music_doa(R: torch.Tensor, model, num_sources: int, grid: SearchGrid, *, grid_only: bool = False,
              iterations: int = 6, chunk_size: int = 256, return_spectrum: bool = False) -> EstimationResult:
    r"""MUSIC DOAs (1-D azimuth, any array model).

    Grid stage: the K largest local maxima of a^H a / a^H P_n a on ``grid`` (fast quadratic
    forms); refinement (unless ``grid_only``): :func:`music_refine` (Gauss–Newton with the
    model's derivatives), so the accuracy is not limited by the grid.

    Args:
        R: ``(..., M, M)`` sample covariance; model: assumed ``ArrayGeometry``/``ArrayModel``;
        num_sources: K (also the signal-subspace dimension); grid: azimuth grid.
        chunk_size: batch elements per chunk in the grid stage (memory ≈ chunk·G reals).

    Returns:
        :class:`EstimationResult`, estimates ``(..., K, 1)`` ("azimuth"), sorted by angle, NaN last.
    """
    with torch.no_grad():
        batch, Rf, valid = flatten_covariance(R, model.num_elements)
        Es = signal_subspace(Rf, _music_sources(num_sources, Rf))
        ang, found, spec, grids = music_grid_peaks(Rf, model, num_sources, grid, chunk_size, return_spectrum, Es=Es)
        if not grid_only:
            ang = music_refine(Rf, model, ang, num_sources, grid.step, iterations, Es)
        return make_result(ang, found, valid, batch, ("azimuth",), spectrum=spec, grids=grids)


def music2d_doa(R: torch.Tensor, model, num_sources: int, azimuth_grid: SearchGrid,
                elevation_grid: SearchGrid, *, grid_only: bool = False, iterations: int = 8,
                chunk_size: int = 64, return_spectrum: bool = False) -> EstimationResult:
    r"""2-D MUSIC over azimuth × elevation (e.g. a URA), refined by 2×2 Gauss–Newton steps.

    Returns:
        :class:`EstimationResult`, estimates ``(..., K, 2)`` ("azimuth", "elevation").
    """
    with torch.no_grad():
        batch, Rf, valid = flatten_covariance(R, model.num_elements)
        Es = signal_subspace(Rf, _music_sources(num_sources, Rf))
        ang, found, spec, grids = music_grid_peaks(Rf, model, num_sources, azimuth_grid, chunk_size,
                                              return_spectrum, elevation_grid, Es=Es)
        if not grid_only:
            ang = music_refine(Rf, model, ang, num_sources, max(azimuth_grid.step, elevation_grid.step),
                               iterations, Es)
        return make_result(ang, found, valid, batch, ("azimuth", "elevation"), spectrum=spec, grids=grids)


# ---------------------------------------------------------------------------------------
# joint spectra on OFDM CSI
# ---------------------------------------------------------------------------------------
def angle_delay_spectrum(H: torch.Tensor, A: torch.Tensor, Bd: torch.Tensor) -> torch.Tensor:
    r"""Bartlett angle–delay map of single-snapshot CSI.

    S(θ, τ) = |a(θ)^H H^T b(τ)^*|² / (‖a‖² ‖b‖²), i.e. the correlation of H_{n,m} with the
    atom a_m(θ) b_n(τ) (b(τ)_n = exp(-j2π nΔf τ)).  Computed as two matrix products in the
    cheaper order (delay first when M·N·G_d + G_a·M·G_d < G_a·M·N + G_a·N·G_d).

    Args:
        H: ``(..., N, M)`` CSI (subcarriers × receive elements).
        A: ``(M, G_a)`` angle dictionary.  Bd: ``(N, G_d)`` delay dictionary
            (:func:`~isackit.estimators.grids.delay_dictionary`).

    Returns:
        ``(..., G_a, G_d)`` real, differentiable in H, A, Bd.
    """
    check_last_dims(H, (Bd.shape[-2], A.shape[-2]), "H", f"(..., N={Bd.shape[-2]}, M={A.shape[-2]})")
    common_complex_dtype(H, A, Bd, names=("H", "A", "Bd"))
    M, Ga = A.shape[-2:]
    N, Gd = Bd.shape[-2:]
    if M * N * Gd + Ga * M * Gd < Ga * M * N + Ga * N * Gd:
        Z = torch.einsum("...nm,nd->...md", H, Bd.conj())
        C = torch.einsum("mg,...md->...gd", A.conj(), Z)
    else:
        Z = torch.einsum("mg,...nm->...gn", A.conj(), H)
        C = Z @ Bd.conj()
    na = (A.abs() ** 2).sum(-2)
    nb = (Bd.abs() ** 2).sum(-2)
    return C.abs() ** 2 / (na[:, None] * nb[None, :])


def angle_angle_delay_spectrum(H: torch.Tensor, Ar: torch.Tensor, At: torch.Tensor, Bd: torch.Tensor
                               ) -> torch.Tensor:
    r"""Bartlett AoA–AoD–delay map of MIMO-OFDM CSI ``H (..., N, M_r, M_t)``.

    S = |Σ_{n,r,t} a_r^* a_t^* b_n^* H_{n,r,t}|² / (‖a_r‖²‖a_t‖²‖b‖²) for the model
    H_n = Σ α a_r(θ) a_t(φ)^T b_n(τ) (seed 001).  Three successive contractions (never the
    Kronecker dictionary), in the cheaper of two orders (delay axis first or last).

    Args:
        Ar: ``(M_r, G_r)``, At: ``(M_t, G_t)``, Bd: ``(N, G_d)``.

    Returns:
        ``(..., G_r, G_t, G_d)`` real, differentiable.
    """
    check_last_dims(H, (Bd.shape[-2], Ar.shape[-2], At.shape[-2]), "H",
                    f"(..., N={Bd.shape[-2]}, M_r={Ar.shape[-2]}, M_t={At.shape[-2]})")
    common_complex_dtype(H, Ar, At, Bd, names=("H", "Ar", "At", "Bd"))
    N, Mr, Mt = H.shape[-3:]
    Gr, Gt, Gd = Ar.shape[-1], At.shape[-1], Bd.shape[-1]
    if N * Mr * Mt * Gd + Gd * Mr * Mt * Gt + Gd * Mr * Gt * Gr < N * Mr * Mt * Gt + N * Mr * Gt * Gr + N * Gr * Gt * Gd:
        Z = torch.einsum("...nrt,nd->...drt", H, Bd.conj())  # delay axis first (G_d ≈ N ≪ G_r G_t)
        Z = torch.einsum("...drt,tj->...drj", Z, At.conj())
        C = torch.einsum("...drj,ri->...ijd", Z, Ar.conj())
    else:
        Z = torch.einsum("...nrt,tj->...nrj", H, At.conj())
        Z = torch.einsum("...nrj,ri->...nij", Z, Ar.conj())
        C = torch.einsum("...nij,nd->...ijd", Z, Bd.conj())
    nr = (Ar.abs() ** 2).sum(-2)
    nt = (At.abs() ** 2).sum(-2)
    nb = (Bd.abs() ** 2).sum(-2)
    return C.abs() ** 2 / (nr[:, None, None] * nt[None, :, None] * nb[None, None, :])


# ---------------------------------------------------------------------------------------
# registered estimators (thin wrappers)
# ---------------------------------------------------------------------------------------
#: default azimuth grid of the 1-D estimators: 0.01° over [-90°, 90°] (18 001 points)
AZIMUTH_GRID = SearchGrid.degrees(-90.0, 90.0, 0.01)
#: default grids of 2-D MUSIC: 0.5° azimuth over [-90°, 90°] × 0.5° elevation over [-80°, 80°]
AZIMUTH_GRID_2D = SearchGrid.degrees(-90.0, 90.0, 0.5)
ELEVATION_GRID_2D = SearchGrid.degrees(-80.0, 80.0, 0.5, name="elevation")


class _CovarianceDOA(Estimator):
    """Common class attributes of the covariance-domain DOA estimators."""

    input_kind = "covariance"
    parameters = ("azimuth",)


@register("bartlett")
class Bartlett(_CovarianceDOA):
    """Bartlett / DBF beamscan (:func:`bartlett_doa`): K largest peaks of a^H R a / a^H a.

    Args:
        array: ``ArrayGeometry`` or ``ArrayModel`` the receiver assumes.
        num_sources: K.  grid: azimuth :class:`SearchGrid` (default 0.01° over ±90°).
        grid_only: skip the off-grid (parabolic) refinement.
    """

    def __init__(self, array, num_sources: int = 1, grid: SearchGrid = AZIMUTH_GRID, grid_only: bool = False,
                 chunk_size: int = 256, return_spectrum: bool = False):
        self.array = array
        self.num_sources = num_sources
        self.grid = grid
        self.grid_only = grid_only
        self.chunk_size = chunk_size
        self.return_spectrum = return_spectrum

    def estimate(self, R: torch.Tensor) -> EstimationResult:
        return bartlett_doa(R, self.array, self.num_sources, self.grid, grid_only=self.grid_only,
                            chunk_size=self.chunk_size, return_spectrum=self.return_spectrum)

    @classmethod
    def example(cls, dtype=torch.complex128, device="cpu", generator=None):
        from ..geometry import ula
        arr = ula(12)
        truth = torch.tensor([[0.3]], dtype=torch.float64)
        R = example_covariance(arr, truth[:, 0], dtype=dtype, device=device, generator=generator)
        return cls(arr, 1), R, truth


@register("mvdr")
class MVDR(_CovarianceDOA):
    """MVDR / Capon beamscan (:func:`mvdr_doa`) with relative diagonal loading ``loading``."""

    def __init__(self, array, num_sources: int = 1, grid: SearchGrid = AZIMUTH_GRID, loading: float = 1e-3,
                 grid_only: bool = False, chunk_size: int = 256, return_spectrum: bool = False):
        self.array = array
        self.num_sources = num_sources
        self.grid = grid
        self.loading = loading
        self.grid_only = grid_only
        self.chunk_size = chunk_size
        self.return_spectrum = return_spectrum

    def estimate(self, R: torch.Tensor) -> EstimationResult:
        return mvdr_doa(R, self.array, self.num_sources, self.grid, loading=self.loading,
                        grid_only=self.grid_only, chunk_size=self.chunk_size,
                        return_spectrum=self.return_spectrum)

    @classmethod
    def example(cls, dtype=torch.complex128, device="cpu", generator=None):
        from ..geometry import ula
        arr = ula(12)
        truth = torch.tensor([[-0.4], [0.35]], dtype=torch.float64)
        R = example_covariance(arr, truth[:, 0], dtype=dtype, device=device, generator=generator)
        return cls(arr, 2), R, truth


@register("music")
class MUSIC(_CovarianceDOA):
    """1-D MUSIC (:func:`music_doa`), refined off the grid by Gauss–Newton unless ``grid_only``.

    Args:
        array: assumed ``ArrayGeometry``/``ArrayModel`` (any geometry, impairments allowed).
        num_sources: K.  grid: azimuth grid (default 0.01° over ±90°).
        iterations: Gauss–Newton steps of the refinement.
    """

    def __init__(self, array, num_sources: int = 1, grid: SearchGrid = AZIMUTH_GRID, grid_only: bool = False,
                 iterations: int = 6, chunk_size: int = 256, return_spectrum: bool = False):
        self.array = array
        self.num_sources = num_sources
        self.grid = grid
        self.grid_only = grid_only
        self.iterations = iterations
        self.chunk_size = chunk_size
        self.return_spectrum = return_spectrum

    def estimate(self, R: torch.Tensor) -> EstimationResult:
        return music_doa(R, self.array, self.num_sources, self.grid, grid_only=self.grid_only,
                         iterations=self.iterations, chunk_size=self.chunk_size,
                         return_spectrum=self.return_spectrum)

    @classmethod
    def example(cls, dtype=torch.complex128, device="cpu", generator=None):
        from ..geometry import ula
        arr = ula(10)
        truth = torch.tensor([[-0.5123], [0.1], [0.2345]], dtype=torch.float64)
        R = example_covariance(arr, truth[:, 0], dtype=dtype, device=device, generator=generator)
        return cls(arr, 3), R, truth


@register("music2d")
class MUSIC2D(_CovarianceDOA):
    """2-D (azimuth, elevation) MUSIC for planar arrays (:func:`music2d_doa`), GN-refined."""

    parameters = ("azimuth", "elevation")

    def __init__(self, array, num_sources: int = 1, azimuth_grid: SearchGrid = AZIMUTH_GRID_2D,
                 elevation_grid: SearchGrid = ELEVATION_GRID_2D, grid_only: bool = False, iterations: int = 8,
                 chunk_size: int = 64, return_spectrum: bool = False):
        self.array = array
        self.num_sources = num_sources
        self.azimuth_grid = azimuth_grid
        self.elevation_grid = elevation_grid
        self.grid_only = grid_only
        self.iterations = iterations
        self.chunk_size = chunk_size
        self.return_spectrum = return_spectrum

    def estimate(self, R: torch.Tensor) -> EstimationResult:
        return music2d_doa(R, self.array, self.num_sources, self.azimuth_grid, self.elevation_grid,
                           grid_only=self.grid_only, iterations=self.iterations, chunk_size=self.chunk_size,
                           return_spectrum=self.return_spectrum)

    @classmethod
    def example(cls, dtype=torch.complex128, device="cpu", generator=None):
        from ..geometry import ura
        arr = ura(4, 4)
        truth = torch.tensor([[-0.3, 0.2], [0.41, -0.15]], dtype=torch.float64)
        R = example_covariance(arr, truth[:, 0], truth[:, 1], dtype=dtype, device=device, generator=generator)
        return cls(arr, 2, azimuth_grid=SearchGrid.degrees(-90, 90, 1.0),
                   elevation_grid=SearchGrid.degrees(-80, 80, 1.0, name="elevation")), R, truth


@register("bartlett_angle_delay")
class BartlettAngleDelay(Estimator):
    """Joint angle–delay Bartlett on single-snapshot OFDM CSI (:func:`angle_delay_spectrum`):
    the K largest local maxima of the 2-D map; grid-limited (no refinement).

    Args:
        array: assumed receive ``ArrayGeometry``/``ArrayModel``.  num_sources: K paths.
        azimuth_grid, delay_grid: :class:`SearchGrid` (delay in seconds; default
            :func:`~isackit.estimators.grids.default_delay_grid`).
        subcarrier_spacing: Δf in Hz.

    Input CSI ``H (..., N, M)``; estimates ``(..., K, 2)`` ("azimuth", "delay").
    """

    input_kind = "csi"
    parameters = ("azimuth", "delay")

    def __init__(self, array, num_sources: int = 1, azimuth_grid: SearchGrid = AZIMUTH_GRID_2D,
                 delay_grid: SearchGrid | None = None, subcarrier_spacing: float = 240e3,
                 return_spectrum: bool = False):
        self.array = array
        self.num_sources = num_sources
        self.azimuth_grid = azimuth_grid
        self.delay_grid = delay_grid
        self.subcarrier_spacing = subcarrier_spacing
        self.return_spectrum = return_spectrum

    def estimate(self, H: torch.Tensor) -> EstimationResult:
        M = self.array.num_elements
        check_data(H, (None, M), "H", f"(..., N, M={M})", finite=True)
        N = H.shape[-2]
        dgrid = default_delay_grid(N, self.subcarrier_spacing) if self.delay_grid is None else self.delay_grid
        with torch.no_grad():
            batch = H.shape[:-2]
            Hf, valid = sanitize_data(H.reshape(-1, *H.shape[-2:]), 2)
            A = self.azimuth_grid.steering(self.array, H)
            B = dgrid.delays(self.subcarrier_spacing, N, H)
            S = angle_delay_spectrum(Hf, A, B)
            grids = (self.azimuth_grid.points_like(H), dgrid.points_like(H))
            _, idx, found = find_peaks(S, self.num_sources, ndim=2)
            est = peaks_to_coordinates(idx, found, grids)
            return make_result(est, found, valid, batch, self.parameters,
                               spectrum=S if self.return_spectrum else None, grids=grids)

    @classmethod
    def example(cls, dtype=torch.complex128, device="cpu", generator=None):
        from .grids import example_angle_delay_csi
        arr, agrid, dgrid, df, truth, H = example_angle_delay_csi(generator, noise_std=1e-4)
        return (cls(arr, 2, azimuth_grid=agrid, delay_grid=dgrid, subcarrier_spacing=df),
                H.to(dtype=dtype, device=device), truth)
