r"""Subspace estimators for uniform linear arrays: root-MUSIC, ESPRIT (LS/TLS, row-weighted),
unitary ESPRIT, and a 2-D root-MUSIC for (AoA, AoD) on bistatic MIMO CSI.

Conventions (``shared/design/conventions.md``): a ULA with spacing d (in wavelengths) has
response a(θ)_m = z^m with z = exp(j 2π d sin θ), m = 0 … M-1, θ the broadside angle
(azimuth in the array's x-y plane).  Inputs are sample covariances ``R`` ``(..., M, M)``
(complex Hermitian, any number of leading batch dims); outputs are angles ``(..., K)`` in
radians, sorted ascending, NaN for a trial whose input was degenerate (the signal
eigenvalue λ_K of R is not above ``10 · M · eps · λ_max``, i.e. R has rank < K).
Angles follow the real dtype of the input (float32 for complex64).  The functions are
batched end to end: one eigendecomposition call and one rooting call for the whole batch,
no loop over trials.

Differentiability: these are algebraic estimators; gradients through ``torch.linalg.eigh``
/ ``eigvals`` exist for distinct eigenvalues but are not the intended use (no guarantees).

References:
    * A. J. Barabell, "Improving the resolution performance of eigenstructure-based
      direction-finding algorithms", ICASSP 1983 (root-MUSIC).
    * R. Roy, T. Kailath, "ESPRIT — estimation of signal parameters via rotational invariance
      techniques", IEEE Trans. ASSP 37(7), 1989 (LS and TLS ESPRIT).
    * M. Haardt, J. A. Nossek, "Unitary ESPRIT", IEEE Trans. SP 43(5), 1995.
    * Y. Hua, T. K. Sarkar, "Matrix pencil method …", IEEE Trans. ASSP 38(5), 1990, and
      P. Stoica, T. Söderström, "Statistical analysis of MUSIC and subspace rotation
      estimates of sinusoidal frequencies", IEEE Trans. SP 39(8), 1991 (row weighting).
    * Seed 001 (bistatic PARAMING paper) uses 2-D root-MUSIC for (AoA, AoD) as a baseline.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import torch

from .._checks import check_choice, check_finite, check_positive, check_positive_int
from .._dtypes import complex_dtype
from ..geometry.arrays import steering_matrix, ula
from .base import EstimationResult, Estimator, register
from .common import check_covariance, check_data, check_num_sources, signal_subspace, ula_spacing_of
from .preprocessing import forward_backward, real_covariance, spatial_smoothing, unitary_matrix

__all__ = [
    "root_music_polynomial",
    "polynomial_roots",
    "root_music_roots",
    "root_music",
    "shift_invariance_eigenvalues",
    "overlap_row_weights",
    "esprit",
    "unitary_esprit",
    "root_music_2d",
    "RootMUSIC",
    "EspritLS",
    "EspritTLS",
    "UnitaryESPRIT",
    "RootMUSIC2D",
]

_METHODS = ("ls", "tls")


# ----------------------------------------------------------------------------- helpers
def _safe_solve(A: torch.Tensor, B: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    # Batched A^{-1} B that never raises on a singular batch element: (X, ok), X = 0 where not ok.
    X, info = torch.linalg.solve_ex(A, B)
    ok = (info == 0) & torch.isfinite(X).flatten(-2).all(-1)
    return torch.where(ok[..., None, None], X, torch.zeros_like(X)), ok


@functools.lru_cache(maxsize=64)
def _diag_sum_matrix(M: int) -> torch.Tensor:
    # S[m*M + n, n - m + M - 1] = 1: C.reshape(M*M) @ S gives the sums of C's diagonals.
    m = torch.arange(M)
    col = (m[None, :] - m[:, None] + M - 1).reshape(-1)
    S = torch.zeros(M * M, 2 * M - 1, dtype=torch.float64)
    S[torch.arange(M * M), col] = 1.0
    return S


@functools.lru_cache(maxsize=64)
def _cayley_basis(M: int) -> torch.Tensor:
    # Row i: ascending coefficients in x of (1 + j x)^i (1 - j x)^(2M-2-i), i = 0 … 2M-2.
    n = 2 * M - 2
    rows = []
    for i in range(n + 1):
        p = torch.ones(1, dtype=torch.complex128)
        for factor, power in (((1.0, 1j), i), ((1.0, -1j), n - i)):
            f = torch.tensor(factor, dtype=torch.complex128)
            for _ in range(power):
                p = torch.cat([p, p.new_zeros(1)]) * f[0] + torch.cat([p.new_zeros(1), p]) * f[1]
        rows.append(p)
    return torch.stack(rows)


@functools.lru_cache(maxsize=64)
def _projector_to_cayley(M: int) -> torch.Tensor:
    return _diag_sum_matrix(M).to(torch.complex128) @ _cayley_basis(M)  # (M*M, 2M-1)


def root_music_polynomial(C: torch.Tensor) -> torch.Tensor:
    r"""Coefficients of the root-MUSIC polynomial of a Hermitian matrix C (e.g. the
    noise-subspace projector E_n E_n^H).

    On the unit circle a(z)^H C a(z) = Σ_{l=-(M-1)}^{M-1} c_l z^l with a(z)_m = z^m and
    c_l = Σ_m C[m, m+l] (sum of the l-th diagonal).  Multiplying by z^{M-1} gives the
    polynomial P(z) of degree 2M-2 whose roots come in pairs (z, 1/z^*); sources are the
    roots on (noise-free) or close to (noisy) the unit circle.

    Args:
        C: ``(..., M, M)`` complex.

    Returns:
        ``(..., 2M-1)`` complex coefficients in DESCENDING powers of z (``numpy.roots`` order):
        entry 0 is c_{M-1} = C[0, M-1].
    """
    M = C.shape[-1]
    S = _diag_sum_matrix(M).to(dtype=C.dtype, device=C.device)
    c = C.reshape(*C.shape[:-2], M * M) @ S  # ascending l = -(M-1) … M-1
    return c.flip(-1)


def polynomial_roots(coefficients: torch.Tensor) -> torch.Tensor:
    r"""Batched polynomial roots as eigenvalues of the companion matrix.

    Args:
        coefficients: ``(..., n+1)`` real or complex, DESCENDING powers (``numpy.roots``
            order), leading coefficient non-zero.

    Returns:
        ``(..., n)`` complex roots (unordered); NaN for a polynomial whose leading
        coefficient is zero or whose coefficients are not finite.
    """
    p = coefficients
    n = p.shape[-1] - 1
    if n < 1:
        raise ValueError(f"coefficients must have at least 2 entries (degree ≥ 1), got shape {tuple(p.shape)}")
    lead = p[..., :1]
    bad = (lead == 0).squeeze(-1) | ~torch.isfinite(p).all(-1)
    safe_lead = torch.where(lead == 0, torch.ones_like(lead), lead)
    top = -p[..., 1:] / safe_lead
    top = torch.where(bad[..., None], torch.zeros_like(top), top)
    comp = torch.zeros(*p.shape[:-1], n, n, dtype=p.dtype, device=p.device)
    comp[..., 0, :] = top
    if n > 1:
        comp[..., 1:, :-1] = torch.eye(n - 1, dtype=p.dtype, device=p.device)
    roots = torch.linalg.eigvals(comp)
    return torch.where(bad[..., None], torch.full_like(roots, complex("nan+nanj")), roots)


def root_music_roots(C: torch.Tensor) -> torch.Tensor:
    r"""Roots of the root-MUSIC polynomial of ``C``, rooted as a REAL polynomial.

    The bilinear (Cayley) map z = (1 + j x)/(1 - j x) sends the unit circle to the real
    line; since a(z)^H C a(z) is real on the circle, (1 + x²)^{M-1} Σ_l c_l z^l is a
    polynomial in x with real coefficients, q(x) = Re(Σ_i c_i (1+jx)^i (1-jx)^{2M-2-i}).
    Its roots are found from a real companion matrix (a real eigenvalue problem, cheaper than
    the complex one and more accurate in float32); conjugate root pairs x, x^* map exactly to the pairs
    (z, 1/z^*) and real roots to roots on the circle.  Roots at x = ∞ (a source exactly at
    endfire for d = 1/2) come back as z = -1 up to rounding.

    Args:
        C: ``(..., M, M)`` complex Hermitian, M ≥ 2.

    Returns:
        ``(..., 2M-2)`` complex roots z (NaN for a non-finite or degenerate polynomial).
    """
    M = C.shape[-1]
    if M < 2:
        raise ValueError(f"root-MUSIC needs M ≥ 2 elements, got M = {M}")
    T = _projector_to_cayley(M).to(dtype=C.dtype, device=C.device)
    q = (C.reshape(*C.shape[:-2], M * M) @ T).real  # ascending powers of x
    q = q / q.abs().amax(-1, keepdim=True).clamp_min(torch.finfo(q.dtype).tiny)
    x = polynomial_roots(q.flip(-1))
    z = (1 + 1j * x) / (1 - 1j * x)
    big = x.abs() > 1 / torch.finfo(q.dtype).eps
    return torch.where(big & torch.isfinite(x), torch.full_like(z, -1.0), z)


def _select_unit_circle_roots(z: torch.Tensor, num_sources: int, spacing: float) -> torch.Tensor:
    r"""Angles of the K roots closest to the unit circle, one per (z, 1/z^*) pair.

    Roots are folded inside (z → 1/z^* outside the circle) so that each pair becomes one
    point (twice); the 2K candidates closest to the circle are paired greedily (the
    closest remaining one with its nearest neighbour) and each pair gives one angle from
    the phase of its sum.  For noisy data the two points of a pair coincide and this is the
    usual "K roots inside the circle closest to it"; for noise-free data a double root on
    the circle may split along the circle and the pairing still returns one angle per
    source.  Roots outside the visible region (|arg z| > 2π d, for d < 1/2) have lowest
    priority.  Returns ``(..., K)`` angles θ = arcsin(arg z / (2π d)), unsorted.
    """
    K = num_sources
    mag = z.abs()
    zf = torch.where(mag > 1, 1 / z.conj(), z)
    score = zf.abs()
    if spacing < 0.5:
        visible = zf.angle().abs() <= 2 * math.pi * spacing
        score = torch.where(visible, score, score - 2)
    score = torch.nan_to_num(score, nan=-math.inf)
    top = score.topk(2 * K, dim=-1).indices
    cand = torch.gather(zf, -1, top)
    cscore = torch.gather(score, -1, top)
    used = torch.zeros(cand.shape, dtype=torch.bool, device=cand.device)
    out = []
    for _ in range(K):  # K is the (small) number of sources, not a trial loop
        a = torch.where(used, -math.inf, cscore).argmax(-1, keepdim=True)
        used = used.scatter(-1, a, True)
        za = torch.gather(cand, -1, a)
        dist = torch.where(used, math.inf, (cand - za).abs().nan_to_num(nan=math.inf))
        b = dist.argmin(-1, keepdim=True)
        used = used.scatter(-1, b, True)
        out.append(za + torch.gather(cand, -1, b))
    s = torch.cat(out, -1)
    u = (s.angle() / (2 * math.pi * spacing)).clamp(-1, 1)
    return torch.asin(u)


def _finish(theta: torch.Tensor, ok: torch.Tensor) -> EstimationResult:
    """Angles ``(..., K)`` and the rank test ``ok (...)`` → the sorted ``EstimationResult``."""
    good = ok & torch.isfinite(theta).all(-1)
    theta = torch.where(good[..., None], theta, torch.full_like(theta, math.nan)).sort(-1).values
    return EstimationResult(estimates=theta[..., None], parameters=("azimuth",),
                            count=good.to(torch.int64) * theta.shape[-1], valid=good)


def root_music(R: torch.Tensor, num_sources: int, spacing: float = 0.5) -> EstimationResult:
    r"""Root-MUSIC for a ULA (Barabell 1983), batched.

    Noise-subspace projector C = I - E_s E_s^H from the eigendecomposition of R; the
    polynomial P(z) = z^{M-1} Σ_l c_l z^l, c_l = Σ_m C[m, m+l] (:func:`root_music_polynomial`)
    is rooted for the whole batch at once (:func:`root_music_roots`, real companion
    matrices after a Cayley map); the K roots inside the unit circle closest to it give
    θ_k = arcsin(arg z_k / (2π d)).  With d > 1/2 the angles are ambiguous and the principal
    value is returned.

    Args:
        R: ``(..., M, M)`` complex Hermitian covariance of a ULA (after optional
            :func:`~isackit.estimators.preprocessing.forward_backward` /
            :func:`~isackit.estimators.preprocessing.spatial_smoothing`).
        num_sources: K, 1 ≤ K ≤ M-1.
        spacing: d, element spacing in wavelengths.

    Returns:
        :class:`EstimationResult`: estimates ``(..., K, 1)`` ("azimuth", radians), ascending;
        ``valid = False`` and NaN rows where R has numerical rank < K.

    Example:
        >>> A = ula(8).steering(torch.tensor([-0.2, 0.3], dtype=torch.float64))
        >>> R = A @ A.mH + 0.01 * torch.eye(8, dtype=A.dtype)
        >>> root_music(R, 2).estimates[..., 0]
        tensor([-0.2000,  0.3000], dtype=torch.float64)
    """
    check_covariance(R, finite=True)
    check_positive(spacing, "spacing")
    M = R.shape[-1]
    K = check_num_sources(num_sources, M - 1, f"root-MUSIC with M = {M} elements")
    Es, ok = signal_subspace(R, K, return_rank_ok=True)
    C = torch.eye(M, dtype=R.dtype, device=R.device) - Es @ Es.mH
    z = root_music_roots(C)
    return _finish(_select_unit_circle_roots(z, K, float(spacing)), ok)


def _selection(M: int, shift: int, selection) -> tuple[torch.Tensor, torch.Tensor]:
    if selection is None:
        s = check_positive_int(shift, "shift")
        if s >= M:
            raise ValueError(f"shift must be smaller than M = {M}, got {s}")
        return torch.arange(0, M - s), torch.arange(s, M)
    if len(selection) != 2:
        raise ValueError("selection must be a pair (rows of subarray 1, rows of subarray 2)")
    i1, i2 = (torch.as_tensor(list(s), dtype=torch.long) for s in selection)
    if i1.ndim != 1 or i1.shape != i2.shape or i1.numel() == 0:
        raise ValueError("selection must hold two equally long, non-empty index lists")
    if (torch.cat([i1, i2]) < 0).any() or (torch.cat([i1, i2]) >= M).any():
        raise ValueError(f"selection indices must lie in [0, {M - 1}]")
    return i1, i2


def overlap_row_weights(m: int) -> torch.Tensor:
    r"""Row weights w_i = √min(i+1, m-i), i = 0 … m-1, for ESPRIT on maximally overlapping
    ULA subarrays (each row weighted by the square root of how many lags it shares, as in the
    weighted matrix-pencil / subspace-rotation estimators).  They bring LS/TLS ESPRIT on a
    long ULA much closer to the CRB at high SNR, at the price of more failures near the SNR
    threshold (measurements: ``benchmarks/README.md``).  Returns ``(m,)`` float64."""
    m = check_positive_int(m, "m")
    i = torch.arange(m, dtype=torch.float64)
    return torch.sqrt(torch.minimum(i + 1, m - i))


def shift_invariance_eigenvalues(Es: torch.Tensor, selection: tuple[Sequence[int], Sequence[int]],
                                 method: str = "ls",
                                 row_weights: torch.Tensor | Sequence[float] | str | None = None) -> torch.Tensor:
    r"""Eigenvalues of the ESPRIT rotation Φ with J_1 E_s Φ ≈ J_2 E_s.

    With E_1 = W J_1 E_s and E_2 = W J_2 E_s (W = diag(w) optional row weights):

    * LS:  Φ = (E_1^H E_1)^{-1} E_1^H E_2;
    * TLS: the eigenvectors V of [E_1 E_2]^H [E_1 E_2] (eigenvalues descending), split into
      K × K blocks [[V_11, V_12], [V_21, V_22]], give Φ = -V_12 V_22^{-1}.

    The eigenvalues are exp(j μ_k) in the noise-free case, μ_k the phase progression of
    source k between the two subarrays.  Also the core of PARAMING's delay step (seed 001).

    Args:
        Es: ``(..., M, K)`` complex signal-subspace basis.
        selection: the row indices of the two subarrays, each of length m ≥ K.
        method: ``"ls"`` or ``"tls"``.
        row_weights: ``(m,)`` positive weights w (applied to the rows of both subarrays),
            ``"overlap"`` for :func:`overlap_row_weights`, or None.

    Returns:
        ``(..., K)`` complex eigenvalues (unordered); NaN where the LS/TLS system is singular.
    """
    check_choice(method, _METHODS, "method")
    M, K = Es.shape[-2], Es.shape[-1]
    i1, i2 = _selection(M, 1, selection)
    i1, i2 = i1.to(Es.device), i2.to(Es.device)
    if i1.numel() < K:
        raise ValueError(f"each subarray needs at least K = {K} rows, got {i1.numel()}")
    E1, E2 = Es[..., i1, :], Es[..., i2, :]
    if isinstance(row_weights, str):
        check_choice(row_weights, ("overlap",), "row_weights")
        row_weights = overlap_row_weights(i1.numel())
    if row_weights is not None:
        w = torch.as_tensor(row_weights, dtype=Es.real.dtype, device=Es.device)
        if w.shape != (i1.numel(),) or not bool(torch.isfinite(w).all()) or not bool((w > 0).all()):
            raise ValueError(f"row_weights must be {i1.numel()} positive finite numbers, got shape "
                             f"{tuple(w.shape)}")
        E1, E2 = w[:, None] * E1, w[:, None] * E2
    if method == "ls":
        Phi, ok = _safe_solve(E1.mH @ E1, E1.mH @ E2)
    else:
        E12 = torch.cat([E1, E2], dim=-1)
        _, V = torch.linalg.eigh(E12.mH @ E12)
        V = V.flip(-1)  # descending eigenvalues
        V12, V22 = V[..., :K, K:], V[..., K:, K:]
        PhiT, ok = _safe_solve(V22.mT, V12.mT)
        Phi = -PhiT.mT  # -V12 V22^{-1}
    phi = torch.linalg.eigvals(Phi)
    return torch.where(ok[..., None], phi, torch.full_like(phi, complex("nan+nanj")))


def esprit(R: torch.Tensor, num_sources: int, spacing: float = 0.5, method: str = "ls", shift: int = 1,
           row_weights: torch.Tensor | Sequence[float] | str | None = None,
           selection: tuple[Sequence[int], Sequence[int]] | None = None,
           displacement: float | None = None) -> EstimationResult:
    r"""ESPRIT (Roy & Kailath 1989), least squares or total least squares, batched.

    Signal subspace E_s of R; the two subarrays (default: elements 0…M-1-s and s…M-1 of a
    ULA, s = ``shift``) differ by a translation of δ wavelengths along the array axis
    (default δ = s·d), so the rotation Φ (:func:`shift_invariance_eigenvalues`) has
    eigenvalues exp(j 2π δ sin θ_k) and θ_k = arcsin(arg φ_k / (2π δ)).  Any array with a
    translation-invariant pair of subarrays can be used through ``selection`` and
    ``displacement`` (the translation projected on the array's y axis, in wavelengths).
    Optional row weights w weight the LS/TLS fit (``"overlap"``: √min(i+1, m-i), see
    :func:`overlap_row_weights`, much closer to the CRB for long ULAs); on noise-free data
    every weighting is exact.

    Args:
        R: ``(..., M, M)`` complex Hermitian covariance.
        num_sources: K ≤ m (rows per subarray).
        spacing: d in wavelengths (used for the default displacement).
        method: ``"ls"`` or ``"tls"``.
        shift: s, the default subarrays' offset in elements.
        row_weights: ``(m,)`` positive, ``"overlap"`` (:func:`overlap_row_weights`), or None.
        selection: ``(rows1, rows2)`` overriding ``shift``.
        displacement: δ in wavelengths (default ``shift * spacing``; required with ``selection``).

    Returns:
        :class:`EstimationResult`: estimates ``(..., K, 1)`` ("azimuth", radians), ascending;
        ``valid = False`` and NaN rows where R has numerical rank < K.

    Example:
        >>> A = ula(8).steering(torch.tensor([-0.2, 0.3], dtype=torch.float64))
        >>> esprit(A @ A.mH, 2, method="tls").estimates[..., 0]
        tensor([-0.2000,  0.3000], dtype=torch.float64)
    """
    check_covariance(R, finite=True)
    check_choice(method, _METHODS, "method")
    check_positive(spacing, "spacing")
    M = R.shape[-1]
    i1, i2 = _selection(M, shift, selection)
    if selection is not None and displacement is None:
        raise ValueError("displacement (in wavelengths) is required with an explicit selection")
    delta = float(shift) * float(spacing) if displacement is None else float(displacement)
    if delta == 0 or not math.isfinite(delta):
        raise ValueError(f"displacement must be non-zero and finite, got {delta}")
    K = check_num_sources(num_sources, min(M - 1, i1.numel()), "ESPRIT with these subarrays")
    Es, ok = signal_subspace(R, K, return_rank_ok=True)
    phi = shift_invariance_eigenvalues(Es, (i1, i2), method, row_weights)
    theta = torch.asin((phi.angle() / (2 * math.pi * delta)).clamp(-1, 1))
    return _finish(theta, ok)


@functools.lru_cache(maxsize=64)
def _unitary_selection(M: int, shift: int) -> tuple[torch.Tensor, torch.Tensor]:
    m = M - shift
    J2 = torch.zeros(m, M, dtype=torch.complex128)
    J2[torch.arange(m), torch.arange(shift, M)] = 1
    G = unitary_matrix(m).mH @ J2 @ unitary_matrix(M)
    return G.real.contiguous(), G.imag.contiguous()


def unitary_esprit(R: torch.Tensor, num_sources: int, spacing: float = 0.5, method: str = "ls",
                   shift: int = 1) -> EstimationResult:
    r"""Unitary ESPRIT (Haardt & Nossek 1995) for a ULA: real-valued throughout.

    The real covariance Re(Q_M^H R Q_M) = Q_M^H R_fb Q_M (forward–backward averaging is
    built in, :func:`~isackit.estimators.preprocessing.real_covariance`) gives a real signal
    subspace E_s.  With G = Q_m^H J_2 Q_M (J_2 selects elements s…M-1, m = M-s),
    K_1 = Re G and K_2 = Im G, the centred steering vectors d = Q_M^H a_c satisfy
    tan(μ/2) K_1 d = K_2 d, μ = 2π s d sin θ, so the real K × K matrix Υ solving
    K_1 E_s Υ ≈ K_2 E_s (LS or TLS) has eigenvalues ω_k = tan(μ_k/2):
    θ_k = arcsin(2 arctan(ω_k) / (2π s d)) (real parts of the eigenvalues are used).
    Limitation: a source with μ = ±π exactly (endfire for s·d = 1/2) gives ω = ∞ and is not
    recovered; within a couple of degrees of it accuracy degrades with the conditioning.

    Args:
        R: ``(..., M, M)`` complex Hermitian covariance of a ULA.
        num_sources: K ≤ min(M-1, M-s).
        spacing: d in wavelengths.
        method: ``"ls"`` or ``"tls"``.
        shift: s.

    Returns:
        :class:`EstimationResult`: estimates ``(..., K, 1)`` ("azimuth", radians), ascending;
        ``valid = False`` and NaN rows where R has numerical rank < K.
    """
    check_covariance(R, finite=True)
    check_choice(method, _METHODS, "method")
    check_positive(spacing, "spacing")
    M = R.shape[-1]
    s = check_positive_int(shift, "shift")
    if s >= M:
        raise ValueError(f"shift must be smaller than M = {M}, got {s}")
    K = check_num_sources(num_sources, min(M - 1, M - s), "unitary ESPRIT")
    Es, ok = signal_subspace(real_covariance(R), K, return_rank_ok=True)
    K1, K2 = (k.to(dtype=Es.dtype, device=Es.device) for k in _unitary_selection(M, s))
    E1, E2 = K1 @ Es, K2 @ Es
    if method == "ls":
        Y, solved = _safe_solve(E1.mT @ E1, E1.mT @ E2)
    else:
        E12 = torch.cat([E1, E2], dim=-1)
        _, V = torch.linalg.eigh(E12.mT @ E12)
        V = V.flip(-1)
        YT, solved = _safe_solve(V[..., K:, K:].mT, V[..., :K, K:].mT)
        Y = -YT.mT
    omega = torch.linalg.eigvals(Y).real
    ok = ok & solved
    mu = 2 * torch.atan(omega)
    theta = torch.asin((mu / (2 * math.pi * s * spacing)).clamp(-1, 1))
    return _finish(theta, ok)


ROOT_MUSIC_2D_FIRST = ("both", "aoa", "aod")


def _root_music_pairs(cov: torch.Tensor, Es4: torch.Tensor, K: int, first_spacing: float,
                      second_spacing: float, first_axis: int) -> torch.Tensor:
    """(first angles, paired second angles) ``(..., K, 2)``: root-MUSIC on ``cov`` (the first
    side's covariance), then per found angle the 1-D root-MUSIC of the 2-D null spectrum
    restricted to it.  ``Es4``: the joint signal subspace ``(..., M_r, M_t, K)``;
    ``first_axis``: 0 when the first side is the receive one, 1 for the transmit one."""
    M1 = Es4.shape[-3 + first_axis]
    first = root_music(cov, K, first_spacing).estimates[..., 0]  # (..., K), ascending
    pos = ula(M1, spacing=first_spacing).positions.to(device=Es4.device, dtype=Es4.real.dtype)
    a1 = steering_matrix(pos, torch.nan_to_num(first))  # (..., M1, K)
    spec = "...rk,...rtj->...ktj" if first_axis == 0 else "...tk,...rtj->...krj"
    B = torch.einsum(spec, a1.conj(), Es4)  # (..., K, M2, K)
    C = M1 * torch.eye(B.shape[-2], dtype=Es4.dtype, device=Es4.device) - B @ B.mH
    second = _select_unit_circle_roots(root_music_roots(C), 1, float(second_spacing))[..., 0]
    return torch.stack([first, second], dim=-1)


def _null_cost(pairs: torch.Tensor, Es4: torch.Tensor, rx_spacing: float, tx_spacing: float) -> torch.Tensor:
    """Σ_k [1 - ‖E_s^H (a_r(θ_k) ⊗ a_t(φ_k))‖² / (M_r M_t)]: the 2-D MUSIC null spectrum summed
    over the K pairs ``(..., K, 2)`` (0 for exact pairs, NaN → +inf)."""
    Mr, Mt = Es4.shape[-3], Es4.shape[-2]
    rdt = Es4.real.dtype
    ar = steering_matrix(ula(Mr, spacing=rx_spacing).positions.to(device=Es4.device, dtype=rdt),
                         torch.nan_to_num(pairs[..., 0]))
    at = steering_matrix(ula(Mt, spacing=tx_spacing).positions.to(device=Es4.device, dtype=rdt),
                         torch.nan_to_num(pairs[..., 1]))
    proj = torch.einsum("...rk,...tk,...rtj->...kj", ar.conj(), at.conj(), Es4).abs().square().sum(-1)
    cost = (1 - proj / (Mr * Mt)).sum(-1)
    return torch.where(torch.isfinite(pairs).flatten(-2).all(-1), cost, torch.full_like(cost, math.inf))


def root_music_2d(csi: torch.Tensor, num_sources: int, rx_spacing: float = 0.5,
                  tx_spacing: float = 0.5, *, first: str = "both") -> EstimationResult:
    r"""2-D root-MUSIC for (AoA, AoD) from bistatic MIMO CSI (seed 001 baseline), batched.

    Model (seed 001): H_n = Σ_k α_k b_n(τ_k) a_r(θ_k) a_t(φ_k)^T + noise over N subcarriers
    (or snapshots) n, receive ULA (M_r, spacing d_r) and transmit ULA (M_t, d_t).  The
    vectorised CSI y_n = vec_row(H_n) (index r·M_t + t) has steering a_r(θ) ⊗ a_t(φ);
    the subcarriers act as snapshots (paths with distinct delays are decorrelated by the
    frequency diversity).  Approach, two 1-D rootings instead of a 2-D search:

    1. AoA: root-MUSIC (:func:`root_music`) on the receive covariance
       R_r = (1 / (N M_t)) Σ_n H_n H_n^H, whose signal subspace is span{a_r(θ_k)}.
    2. AoD, per found AoA θ̂_k: with the signal subspace E_s of the full covariance
       R = (1/N) Σ_n y_n y_n^H ((M_r M_t)², K components), the 2-D MUSIC denominator
       restricted to θ̂_k is a_t(φ)^H C_k a_t(φ) with the Kronecker-structured
       C_k = (a_r(θ̂_k) ⊗ I)^H (I - E_s E_s^H) (a_r(θ̂_k) ⊗ I) = M_r I - B_k B_k^H,
       B_k = (a_r(θ̂_k) ⊗ I)^H E_s (M_t × K); its root-MUSIC polynomial is rooted for the
       whole batch and all k at once and the root closest to the circle gives φ̂_k.

    This pairs AoA and AoD automatically, but step 1 needs K distinct AoAs: two paths
    closer than the receive array resolves are both paired with one AoD.  ``first="both"``
    (the default) therefore also runs the mirror image (AoD first on the transmit covariance
    R_t = (1 / (N M_r)) Σ_n H_n^T H̄_n, then the AoA per AoD) and keeps, per batch element,
    the set of K pairs with the smaller 2-D MUSIC null spectrum
    Σ_k [1 - ‖E_s^H (a_r(θ̂_k) ⊗ a_t(φ̂_k))‖² / (M_r M_t)]; ``"aoa"`` or ``"aod"`` runs one
    order only.  Either order needs a covariance of rank K on its first side
    (N ≥ K and paths not fully coherent across subcarriers), K ≤ M_r - 1 and
    K ≤ M_r M_t - 1; the AoD-first order also needs K ≤ M_t - 1 (otherwise ``"both"`` uses
    the AoA-first order alone).

    Args:
        csi: ``(..., N, M_r, M_t)`` complex (N ≥ 1; N = 1 only for K = 1).
        num_sources: K.
        rx_spacing, tx_spacing: d_r, d_t in wavelengths.
        first: ``"both"``, ``"aoa"`` or ``"aod"`` (see above).

    Returns:
        :class:`EstimationResult`: estimates ``(..., K, 2)`` ("aoa", "aod", radians), rows
        sorted by AoA; ``valid = False`` and NaN rows where the covariances have rank < K.
    """
    check_data(csi, (None, None, None), "csi", "(..., N, M_r, M_t)")
    check_finite(csi, "csi")
    check_positive(rx_spacing, "rx_spacing")
    check_positive(tx_spacing, "tx_spacing")
    check_choice(first, ROOT_MUSIC_2D_FIRST, "first")
    N, Mr, Mt = csi.shape[-3:]
    if Mr < 2 or Mt < 2:
        raise ValueError(f"root_music_2d needs at least 2 receive and 2 transmit elements, got {Mr} × {Mt}")
    K = check_num_sources(num_sources, Mr - 1, f"root_music_2d with M_r = {Mr}")
    if first == "aod" and K > Mt - 1:
        raise ValueError(f"root_music_2d(first='aod') needs num_sources ≤ M_t - 1 = {Mt - 1}, got {K}")
    Y = csi.reshape(*csi.shape[:-2], Mr * Mt)
    R = Y.mT @ Y.conj() / N
    Es, ok = signal_subspace(R, K, return_rank_ok=True)
    Es4 = Es.reshape(*Es.shape[:-2], Mr, Mt, K)
    candidates = []
    if first in ("both", "aoa"):
        Rr = torch.einsum("...nrt,...nst->...rs", csi, csi.conj()) / (N * Mt)
        candidates.append(_root_music_pairs(Rr, Es4, K, rx_spacing, tx_spacing, 0))
    if first == "aod" or (first == "both" and K <= Mt - 1):
        Rt = torch.einsum("...nrt,...nrs->...ts", csi, csi.conj()) / (N * Mr)
        candidates.append(_root_music_pairs(Rt, Es4, K, tx_spacing, rx_spacing, 1).flip(-1))
    out = candidates[0]
    if len(candidates) == 2:
        better = _null_cost(candidates[1], Es4, rx_spacing, tx_spacing) < _null_cost(out, Es4, rx_spacing, tx_spacing)
        out = torch.where(better[..., None, None], candidates[1], out)
    out = out.gather(-2, torch.nan_to_num(out[..., 0], nan=math.inf).argsort(-1)[..., None].expand_as(out))
    good = ok & torch.isfinite(out).flatten(-2).all(-1)
    out = torch.where(good[..., None, None], out, torch.full_like(out, math.nan))
    return EstimationResult(estimates=out, parameters=("aoa", "aod"), count=good.to(torch.int64) * K, valid=good)


# ----------------------------------------------------------------------------- estimator classes
def _preprocess(R: torch.Tensor, forward_backward_: bool, subarrays: int) -> torch.Tensor:
    if subarrays != 1:
        return spatial_smoothing(R, subarrays, forward_backward=forward_backward_)
    return forward_backward(R) if forward_backward_ else R


def _example_covariance(dtype, device, M: int = 8, angles=(-0.3, 0.25)):
    cdt = complex_dtype(dtype)
    truth = torch.tensor(angles, dtype=cdt.to_real(), device=device)
    A = steering_matrix(ula(M).positions.to(dtype=truth.dtype, device=device), truth)
    R = A @ A.mH + 1e-3 * torch.eye(M, dtype=cdt, device=device)
    return ula(M), R, truth[:, None]


class _ULACovarianceEstimator(Estimator):
    """Common part of the ULA subspace estimators: the array must be an ideal ULA (its
    spacing is read off the geometry), the input a covariance ``(..., M, M)``."""

    input_kind = "covariance"
    parameters = ("azimuth",)

    def _covariance(self, R: torch.Tensor, forward_backward_: bool, subarrays: int) -> tuple[torch.Tensor, float]:
        d = ula_spacing_of(self.array, type(self).__name__)
        check_covariance(R, self.array.num_elements, finite=True)
        return _preprocess(R, forward_backward_, subarrays), d

    @classmethod
    def example(cls, dtype=torch.complex128, device="cpu", generator=None):
        array, R, truth = _example_covariance(dtype, device)
        return cls(array, 2), R, truth


@register("root_music")
class RootMUSIC(_ULACovarianceEstimator):
    """Root-MUSIC for a ULA (:func:`root_music`), optionally after forward–backward averaging
    and/or spatial smoothing with ``subarrays`` = L subarrays of M-L+1 elements.

    Args:
        array: the ideal ULA the receiver assumes (``ArrayGeometry``, or ``ArrayModel``
            without impairments); its spacing d is used.
        num_sources: K.

    Input: covariance ``(..., M, M)``; output estimates ``(..., K, 1)`` (``"azimuth"``).
    """

    def __init__(self, array, num_sources: int = 1, forward_backward: bool = False, subarrays: int = 1):
        self.array = array
        self.num_sources = num_sources
        self.forward_backward = forward_backward
        self.subarrays = subarrays

    def estimate(self, R: torch.Tensor) -> EstimationResult:
        R, d = self._covariance(R, self.forward_backward, self.subarrays)
        return root_music(R, self.num_sources, d)


@register("esprit_ls")
class EspritLS(_ULACovarianceEstimator):
    """Least-squares ESPRIT for a ULA (:func:`esprit` with ``method="ls"``), optional row
    weights, forward–backward averaging and spatial smoothing.

    Args:
        array: the ideal ULA the receiver assumes; its spacing d is used.
        num_sources: K.  shift: subarray offset s.  row_weights: see :func:`esprit`.

    Input: covariance ``(..., M, M)``; output estimates ``(..., K, 1)`` (``"azimuth"``).
    """

    _method = "ls"

    def __init__(self, array, num_sources: int = 1, shift: int = 1,
                 row_weights: Sequence[float] | str | None = None, forward_backward: bool = False,
                 subarrays: int = 1):
        self.array = array
        self.num_sources = num_sources
        self.shift = shift
        self.row_weights = row_weights
        self.forward_backward = forward_backward
        self.subarrays = subarrays

    def estimate(self, R: torch.Tensor) -> EstimationResult:
        R, d = self._covariance(R, self.forward_backward, self.subarrays)
        return esprit(R, self.num_sources, d, self._method, self.shift, self.row_weights)


@register("esprit_tls")
class EspritTLS(EspritLS):
    """Total-least-squares ESPRIT (:func:`esprit` with ``method="tls"``); same options as
    :class:`EspritLS`."""

    _method = "tls"


@register("unitary_esprit")
class UnitaryESPRIT(_ULACovarianceEstimator):
    """Unitary ESPRIT for a ULA (:func:`unitary_esprit`), real-valued, FB averaging built in;
    optional forward–backward spatial smoothing with ``subarrays`` = L.

    Args:
        array: the ideal ULA the receiver assumes; its spacing d is used.
        num_sources: K.  method: ``"ls"`` or ``"tls"``.  shift: subarray offset s.

    Input: covariance ``(..., M, M)``; output estimates ``(..., K, 1)`` (``"azimuth"``).
    """

    def __init__(self, array, num_sources: int = 1, method: str = "ls", shift: int = 1, subarrays: int = 1):
        self.array = array
        self.num_sources = num_sources
        self.method = method
        self.shift = shift
        self.subarrays = subarrays

    def estimate(self, R: torch.Tensor) -> EstimationResult:
        R, d = self._covariance(R, False, self.subarrays)
        return unitary_esprit(R, self.num_sources, d, self.method, self.shift)


@register("root_music_2d")
class RootMUSIC2D(Estimator):
    """2-D root-MUSIC for (AoA, AoD) from bistatic MIMO CSI (:func:`root_music_2d`).

    Args:
        rx_array, tx_array: the ideal receive and transmit ULAs (their spacings are used).
        num_sources: K paths.
        first: which side is rooted first (``"both"``, ``"aoa"``, ``"aod"``; :func:`root_music_2d`).

    Input: CSI ``(..., N, M_r, M_t)``; output estimates ``(..., K, 2)`` (``"aoa"``, ``"aod"``).
    """

    input_kind = "csi"
    input_ndim = 3
    parameters = ("aoa", "aod")

    def __init__(self, rx_array, tx_array, num_sources: int = 1, *, first: str = "both"):
        self.rx_array = rx_array
        self.tx_array = tx_array
        self.num_sources = num_sources
        self.first = check_choice(first, ROOT_MUSIC_2D_FIRST, "first")

    def estimate(self, H: torch.Tensor) -> EstimationResult:
        Mr, Mt = self.rx_array.num_elements, self.tx_array.num_elements
        check_data(H, (None, Mr, Mt), "H", f"(..., N, M_r={Mr}, M_t={Mt})")
        return root_music_2d(H, self.num_sources, ula_spacing_of(self.rx_array, "RootMUSIC2D"),
                             ula_spacing_of(self.tx_array, "RootMUSIC2D"), first=self.first)

    @classmethod
    def example(cls, dtype=torch.complex128, device="cpu", generator=None):
        cdt = complex_dtype(dtype)
        rdt = cdt.to_real()
        truth = torch.tensor([[-0.3, 0.2], [0.25, -0.4]], dtype=rdt, device=device)
        H = _example_bistatic_csi(truth, delays=(0.1, 0.35), num_subcarriers=8, Mr=6, Mt=4)
        return cls(ula(6), ula(4), num_sources=2), H, truth


def _example_bistatic_csi(truth: torch.Tensor, delays, num_subcarriers: int, Mr: int, Mt: int) -> torch.Tensor:
    # Noise-free seed-001 CSI: H_n = Σ_k a_r(θ_k) a_t(φ_k)^T exp(-j 2π n τ_k) (τ in units of 1/Δf).
    rdt, dev = truth.dtype, truth.device
    ar = steering_matrix(ula(Mr).positions.to(dtype=rdt, device=dev), truth[:, 0])
    at = steering_matrix(ula(Mt).positions.to(dtype=rdt, device=dev), truth[:, 1])
    n = torch.arange(num_subcarriers, dtype=rdt, device=dev)
    b = torch.polar(torch.ones(num_subcarriers, len(delays), dtype=rdt, device=dev),
                    -2 * math.pi * n[:, None] * torch.tensor(delays, dtype=rdt, device=dev))
    return torch.einsum("nk,rk,tk->nrt", b, ar, at)
