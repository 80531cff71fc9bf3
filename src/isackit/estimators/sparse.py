r"""Orthogonal matching pursuit (OMP) over arbitrary and separable dictionaries — batched and
differentiable w.r.t. the dictionary (system S0 trains the array model through it).

Generic OMP (:func:`omp`), observation Y ``(..., M', L)`` (L = 1 for one vector, L = N for
the snapshots of a multiple-measurement-vector problem), dictionary D ``(..., M', G)``:

    for k = 1..K_max:
        c_g   = Σ_l |d_g^H r_l|² / ‖d_g‖²                 (normalised correlation map)
        stop (this batch element) if max_g c_g < threshold or ‖R‖² ≤ tol·‖Y‖²
        S     ← S ∪ {arg max_g c_g}
        Γ     = (D_S^H D_S)^{-1} D_S^H Y                    (LS re-fit of ALL picked atoms)
        R     = Y - D_S Γ

The correlation is UPDATED, not recomputed: D^H R = D^H Y - (D^H D_S) Γ, and D^H D_S grows
by one column per pick, so an iteration costs G·k·L instead of G·M'·L.

Separable angle–delay OMP (:func:`omp_angle_delay`), for the OFDM sensing model of seed 000
(system S0)  Y = Σ_k γ_k a(θ_k) b(τ_k)^T + W  (``(..., M, N)``, M antennas, N subcarriers),
with an angle dictionary A ``(M, G_a)`` and a delay dictionary B ``(N, G_d)``: the atom of
(θ_g, τ_h) is the matrix a_g b_h^T and

    C_0 = A^H Y B^*                      (G_a × G_d correlation map; delay axis first)
    C_k = C_0 - U_k diag(γ_k) V_k^T,     U = A^H a_S (G_a × k),  V = (b_S^T B^*)^T (G_d × k)
    Gram_ij = (a_i^H a_j)(b_i^H b_j),    rhs_i = C_0[g_i, h_i],   γ = Gram^{-1} rhs
    ‖R_k‖² = ‖Y‖² - Re(rhs^H γ)

so the product dictionary (M·N × G_a·G_d) is never formed and each iteration after the
first costs G_a·G_d·k.  The atoms are normalised, so a scalar that multiplies an atom (e.g. the
transmit response a_t(θ)^T f of S0) changes neither the map's magnitude nor the span of the
picked atoms: only the LS gains absorb it.  Unit-modulus pilots x are removed beforehand
(Y ← Y·diag(x^*)) so that B is the plain delay dictionary b(τ)_n = exp(-j2π nΔf τ).

Cost at S0's sizes (64 antennas, 256 subcarriers, 720 × 200 grid, K = 5, batch 128): the map
C_0 is one matrix product (kept transposed, G_d × G_a, so that a dictionary shared by the
batch is multiplied once, never copied per scene), and each later search is memory-bound; it
runs in cache-sized chunks of the batch (:func:`_map_argmax`) with a two-stage arg max.

Differentiability: the arg-max picks are discrete (no gradient), everything else — the
maps, the picked peak values, the LS gains, the residual and its norms — is differentiable
w.r.t. Y and the dictionaries (hence w.r.t. learned array parameters that build them).
The relaxation of the peak location, ``soft_locations``, is a softmax-weighted average of
the grid around each pick (:func:`~isackit.estimators.peaks.soft_argmax`, temperature T).

References: Pati, Rezaiifar & Krishnaprasad (1993); Tropp & Gilbert, IEEE TIT 2007; seed 000.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .._checks import check_ndim_at_least
from .._dtypes import common_complex_dtype
from .base import EstimationResult, Estimator, register
from .common import check_data, sanitize_data, sort_sources
from .grids import SearchGrid, default_delay_grid
from .peaks import soft_argmax

__all__ = ["OMP", "OMP_GRID", "OMPAngleDelay", "OMPResult", "omp", "omp_angle_delay"]


@dataclass(frozen=True)
class OMPResult:
    """Output of :func:`omp` / :func:`omp_angle_delay`.

    Attributes:
        indices: ``(..., K)`` int64 grid indices (generic) or ``(..., K, 2)`` (angle, delay)
            indices; -1 where nothing was picked (the element had stopped).
        picked: ``(..., K)`` bool.
        gains: ``(..., K, L)`` (generic) / ``(..., K)`` (separable) complex LS gains after the
            last iteration, 0 where not picked.
        peaks: ``(..., K)`` real, the normalised correlation at each pick (0 where not picked);
            differentiable (S0's "maximum of the map" loss).
        residual: ``(..., M', L)`` / ``(..., M, N)`` final residual (differentiable).
        residual_norms: ``(..., K + 1)`` real ‖R_k‖², k = 0..K (k = 0: ‖Y‖²); a stopped
            element repeats its last value.
        maps: optional ``(..., K, G)`` / ``(..., K, G_a, G_d)`` normalised correlation maps
            seen at each iteration (before the pick).
        soft_locations: optional ``(..., K, P)`` soft-argmax grid coordinates of each pick.
        responses: optional ``(..., K)`` real (separable OMP), |a_k^H Y b_k^*|² of each pick's
            unit-norm atom on the OBSERVATION (the un-deflated angle–delay map at the picks,
            0 where not picked); differentiable.
    """

    indices: torch.Tensor
    picked: torch.Tensor
    gains: torch.Tensor
    peaks: torch.Tensor
    residual: torch.Tensor
    residual_norms: torch.Tensor
    maps: torch.Tensor | None = None
    soft_locations: torch.Tensor | None = None
    responses: torch.Tensor | None = None


def _as_threshold(threshold, like: torch.Tensor):
    if threshold is None:
        return None
    t = torch.as_tensor(threshold, dtype=like.dtype, device=like.device)
    if not bool(torch.isfinite(t).all()) or bool((t < 0).any()):
        raise ValueError(f"threshold must be finite and >= 0, got {threshold!r}")
    return t


def _check_max_atoms(k, limit: int, what: str) -> int:
    """K in [1, ``limit``]: OMP cannot fit more atoms than the observation has entries."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"max_atoms must be a positive integer, got {k!r}")
    if k > limit:
        raise ValueError(f"max_atoms must be at most {what} = {limit} (a least-squares fit of more atoms "
                         f"than measurements is not unique), got {k}")
    return k


def _check_finite(x: torch.Tensor, name: str) -> None:
    """Raise on NaN/Inf.  One reduction first: a NaN or Inf entry makes the sum non-finite, so a
    finite sum proves every entry finite; only a non-finite sum (a bad entry, or an overflow of
    the sum itself) pays for the element-wise test."""
    x = x.detach().resolve_conj()
    x = torch.view_as_real(x) if x.is_complex() else x
    if x.numel() == 0 or bool(torch.isfinite(x.sum())):
        return
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} must be finite, but it contains NaN or Inf values")


def _sq_abs(x: torch.Tensor) -> torch.Tensor:
    """|x|² of a complex tensor (cheaper than abs()**2, with a simpler backward)."""
    return torch.view_as_real(x).square().sum(-1)


def _sq_norm(x: torch.Tensor, dim) -> torch.Tensor:
    return _sq_abs(x).sum(dim)


def _repeated(best: torch.Tensor, previous: list[torch.Tensor]) -> torch.Tensor:
    """True where ``best`` equals an earlier pick (the residual is then numerically zero)."""
    rep = torch.zeros_like(best, dtype=torch.bool)
    for p in previous:
        rep = rep | (best == p)
    return rep


def _columns(D: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Columns ``idx (..., L)`` of D per batch element → ``(..., M, L)`` (differentiable).

    A shared dictionary D ``(M, G)`` is indexed directly (its backward is an index-add into
    ``(G, M)``, not a batch-sized zero tensor); a batched one ``(..., M, G)`` is gathered.
    """
    if D.dim() == 2:
        return D.mT[idx].transpose(-1, -2)
    Db = D.expand(*idx.shape[:-1], *D.shape[-2:])
    return torch.gather(Db, -1, idx[..., None, :].expand(*idx.shape[:-1], D.shape[-2], idx.shape[-1]))


#: working-set size of one chunk of the map search (fits the caches of a typical CPU core)
_MAP_CHUNK_BYTES = 4 * 2**20


def _planar(C: torch.Tensor) -> torch.Tensor:
    """Complex ``(..., P, Q)`` → real planes ``(..., 2P, Q)`` = [Re C; Im C] (contiguous)."""
    return torch.cat([C.real, C.imag], -2)


def _planar_map(X: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
    """The map C_0^T = X^T conj(A) as real planes ``(..., 2 G_d, G_a)`` from ONE real product.

    X = Y B^* ``(..., M, G_d)``, A ``(..., M, G_a)`` (or shared ``(M, G_a)``: then the whole
    batch is a single matrix product and A is never copied per scene):
    [Re; Im](X^T conj(A)) = [[Re X^T, Im X^T], [Im X^T, -Re X^T]] [Re A; Im A].
    """
    Xt = X.mT
    Xs = torch.cat([torch.cat([Xt.real, Xt.imag], -1), torch.cat([Xt.imag, -Xt.real], -1)], -2)
    As = torch.cat([A.real, A.imag], -2)
    if As.dim() == 2:
        return (Xs.reshape(-1, Xs.shape[-1]) @ As).reshape(*Xs.shape[:-1], As.shape[-1])
    return Xs @ As


def _map_argmax(C0p: torch.Tensor, U: torch.Tensor | None, V: torch.Tensor | None) -> torch.Tensor:
    """arg max over (i, j) of |C0 - U V|², flat index i·Q + j ``(...)``; no gradient.

    C0p ``(..., 2P, Q)``: the map C0 ``(P, Q)`` as real planes (:func:`_planar`); U ``(..., P, k)``
    (already scaled by the gains) and V ``(..., k, Q)`` complex.  The low-rank update is one
    real product, [Re; Im](U V) = [[Re U, -Im U], [Im U, Re U]] [Re V; Im V], and |·|² is
    Re² + Im² on contiguous planes.  The batch is processed in chunks whose map fits in
    ``_MAP_CHUNK_BYTES`` so that the updated map never leaves the cache, and the arg max is
    two-stage (row maxima, then the winning row: the same first-occurrence index as a flat
    arg max).  The search is memory-bound at the sizes of system S0; the blocking keeps it in
    cache (measurements: ``benchmarks/README.md``).
    """
    batch = C0p.shape[:-2]
    P2, Q = C0p.shape[-2:]
    P = P2 // 2
    c0 = C0p.reshape(-1, P2, Q)
    n = c0.shape[0]
    if U is not None:
        Ue = U.expand(*batch, *U.shape[-2:])
        Ub = torch.cat([torch.cat([Ue.real, -Ue.imag], -1), torch.cat([Ue.imag, Ue.real], -1)], -2).reshape(n, P2, -1)
        Ve = V.expand(*batch, *V.shape[-2:])
        Vb = torch.cat([Ve.real, Ve.imag], -2).reshape(n, -1, Q)
    step = max(1, _MAP_CHUNK_BYTES // max(1, P2 * Q * c0.element_size()))
    out = []
    for i in range(0, n, step):  # chunks of the batch (cache blocking), not a loop over trials' maths
        c = c0[i:i + step] if U is None else torch.baddbmm(c0[i:i + step], Ub[i:i + step], Vb[i:i + step], alpha=-1)
        m = c[:, :P] * c[:, :P]
        m.addcmul_(c[:, P:], c[:, P:])                                        # |C|² (n_chunk, P, Q)
        row = m.amax(-1).argmax(-1)                                          # (n_chunk,)
        col = m[torch.arange(m.shape[0], device=m.device), row].argmax(-1)  # (n_chunk,)
        out.append(row * Q + col)
    return torch.cat(out).reshape(batch) if out else torch.zeros(batch, dtype=torch.long, device=C0p.device)


def _residual_corr(Y, Aw, Bw, a_cols, b_cols, gains):
    """C = Aw^H R Bw^* for the current residual R, Aw ``(..., M, P)``, Bw ``(..., N, Q)`` → ``(..., P, Q)``."""
    C = Aw.mH @ (Y @ Bw.conj())
    if a_cols:
        As, Bs = torch.stack(a_cols, -1), torch.stack(b_cols, -1)
        C = C - ((Aw.mH @ As) * gains[..., None, :]) @ (Bs.transpose(-1, -2) @ Bw.conj())
    return C


def _dense_map(Y, An, Bn, a_cols, b_cols, gains, batch):
    """Differentiable full map |An^H R Bn^*|² ``(..., G_a, G_d)`` (only when asked: costly)."""
    return _sq_abs(_residual_corr(Y, An.expand(*batch, *An.shape[-2:]), Bn.expand(*batch, *Bn.shape[-2:]),
                                  a_cols, b_cols, gains))


def _soft_patch(Y, Ab, Bb, ga, gd, a_cols, b_cols, gains, grids, temperature, window, peak):
    r"""Soft-arg-max (angle, delay) over the (2w+1)² patch of the current map around (ga, gd).

    The patch values are recomputed differentiably from the gathered atoms (cost (2w+1)·M·N),
    weights softmax(|c|² / (T·peak)); points outside the grid are dropped.
    """
    offs = torch.arange(-window, window + 1, device=Y.device)
    ia, id_ = ga[..., None] + offs, gd[..., None] + offs  # (..., L)
    oka, okd = (ia >= 0) & (ia < Ab.shape[-1]), (id_ >= 0) & (id_ < Bb.shape[-1])
    ia, id_ = ia.clamp(0, Ab.shape[-1] - 1), id_.clamp(0, Bb.shape[-1] - 1)
    Aw, Bw = _columns(Ab, ia), _columns(Bb, id_)
    vals = _sq_abs(_residual_corr(Y, Aw, Bw, a_cols, b_cols, gains))  # (..., L, L)
    logits = vals / (temperature * peak.clamp_min(torch.finfo(vals.dtype).tiny))[..., None, None]
    logits = logits.masked_fill(~(oka[..., :, None] & okd[..., None, :]), -torch.inf)
    w = torch.softmax(logits.flatten(-2), -1).reshape(logits.shape)
    ga_, gd_ = grids[0].to(vals.dtype)[ia], grids[1].to(vals.dtype)[id_]
    return torch.stack([(w.sum(-1) * ga_).sum(-1), (w.sum(-2) * gd_).sum(-1)], -1)


def omp(Y: torch.Tensor, D: torch.Tensor, max_atoms: int, *, threshold=None, tol: float = 0.0,
        return_maps: bool = False, grid: torch.Tensor | None = None, temperature: float | None = None,
        window: int | None = None) -> OMPResult:
    r"""Batched (simultaneous) OMP with LS re-fit, over an arbitrary dictionary.

    Args:
        Y: ``(..., M', L)`` complex observations (L columns share the support).
        D: ``(..., M', G)`` complex dictionary (broadcasts against Y's batch dims).
        max_atoms: K, the number of iterations / largest support.
        threshold: stop an element when max_g c_g < threshold (float or tensor ``(...)``);
            c_g = ‖d_g^H R‖² / ‖d_g‖².  None: never.
        tol: stop an element when ‖R‖² ≤ tol·‖Y‖².
        return_maps: also return the correlation maps ``(..., K, G)``.
        grid, temperature, window: if ``temperature`` is given, ``soft_locations (..., K, 1)`` =
            soft-arg-max of each iteration's map over ``grid (G,)`` (± ``window`` points).

    Returns:
        :class:`OMPResult`.  Differentiable w.r.t. Y and D except for the discrete picks.
    """
    check_ndim_at_least(Y, 2, "Y", "(..., M', L)")
    check_ndim_at_least(D, 2, "D", "(..., M', G)")
    if Y.shape[-2] != D.shape[-2]:
        raise ValueError(f"Y (..., M', L) and D (..., M', G) need the same M', got {tuple(Y.shape)} and {tuple(D.shape)}")
    common_complex_dtype(Y, D, names=("Y", "D"))
    _check_finite(Y, "Y")
    _check_finite(D, "D")
    K = _check_max_atoms(max_atoms, Y.shape[-2], "M' (the length of an observation)")
    batch = torch.broadcast_shapes(Y.shape[:-2], D.shape[:-2])
    Y = Y.expand(*batch, *Y.shape[-2:])
    G = D.shape[-1]
    rdt = Y.real.dtype
    thr = _as_threshold(threshold, Y.real)
    dn = (D.abs() ** 2).sum(-2)  # (..., G)
    C0 = D.mH @ Y  # (..., G, L)
    y2 = (Y.abs() ** 2).sum((-2, -1))
    active = torch.ones(batch, dtype=torch.bool, device=Y.device)
    cols, gcols, idxs, picks, peaks, maps, softs = [], [], [], [], [], [], []
    res_norms = [y2]
    C = C0
    R = Y
    gains = None
    taken = torch.zeros(*batch, G, dtype=torch.bool, device=Y.device)
    for k in range(K):
        cmap = (C.abs() ** 2).sum(-1) / dn  # (..., G)
        if return_maps:
            maps.append(cmap)
        score = cmap.detach().masked_fill(taken, -torch.inf)
        best = score.argmax(-1)  # (...)
        peak = torch.gather(cmap, -1, best[..., None]).squeeze(-1)
        stop = torch.zeros_like(active)
        if thr is not None:
            stop = stop | (peak.detach() < thr)
        if tol > 0:
            stop = stop | (res_norms[-1].detach() <= tol * y2.detach())
        active = active & ~stop
        taken = taken | (torch.nn.functional.one_hot(best, G).bool() & active[..., None])
        if temperature is not None:
            if grid is None:
                raise ValueError("soft locations need grid= (the (G,) grid of the dictionary)")
            softs.append(soft_argmax(cmap, [grid], temperature, window))
        d = torch.gather(D.expand(*batch, *D.shape[-2:]), -1,
                         best[..., None, None].expand(*batch, D.shape[-2], 1)).squeeze(-1)  # (..., M')
        d = d * active[..., None].to(d.dtype)  # a stopped element adds a zero column
        cols.append(d)
        gcols.append(D.mH @ d[..., None])  # (..., G, 1)
        idxs.append(torch.where(active, best, torch.full_like(best, -1)))
        picks.append(active.clone())
        peaks.append(torch.where(active, peak, torch.zeros_like(peak)))
        DS = torch.stack(cols, -1)  # (..., M', k+1)
        pk = torch.stack(picks, -1)
        Gram = DS.mH @ DS + torch.diag_embed((~pk).to(rdt)).to(DS.dtype)
        rhs = torch.stack([torch.gather(C0, -2, torch.where(p, i, torch.zeros_like(i))[..., None, None]
                                        .expand(*batch, 1, C0.shape[-1])).squeeze(-2) * p[..., None].to(C0.dtype)
                           for i, p in zip(idxs, picks, strict=True)], -2)  # (..., k+1, L)
        gains = torch.linalg.solve(Gram, rhs)
        R = Y - DS @ gains
        C = C0 - torch.cat(gcols, -1) @ gains
        res_norms.append((R.abs() ** 2).sum((-2, -1)))
    return OMPResult(
        indices=torch.stack(idxs, -1), picked=torch.stack(picks, -1), gains=gains,
        peaks=torch.stack(peaks, -1), residual=R, residual_norms=torch.stack(res_norms, -1),
        maps=torch.stack(maps, -2) if return_maps else None,
        soft_locations=torch.stack(softs, -2) if softs else None)


def omp_angle_delay(Y: torch.Tensor, A: torch.Tensor, B: torch.Tensor, max_atoms: int, *, threshold=None,
                    tol: float = 0.0, return_maps: bool = False, return_residual: bool = True,
                    grids: tuple[torch.Tensor, torch.Tensor] | None = None, temperature: float | None = None,
                    window: int | None = None) -> OMPResult:
    r"""Separable angle–delay OMP (see the module docstring for the maths and costs).

    Args:
        Y: ``(..., M, N)`` observation (antennas × subcarriers), pilots already removed.
        A: ``(..., M, G_a)`` angle dictionary (e.g. ``model.steering(grid)``, times the Tx
            response per angle in S0); may carry batch dims or be shared.
        B: ``(..., N, G_d)`` delay dictionary (:func:`~isackit.estimators.grids.delay_dictionary`).
        max_atoms: K, the number of iterations (targets), at most M·N.
        threshold: stop an element when the peak of |C|²/(‖a‖²‖b‖²) < threshold (float or
            ``(...)`` tensor, e.g. set from a false-alarm probability).
        tol: stop when ‖R‖² ≤ tol·‖Y‖².
        return_maps: also return the K maps ``(..., K, G_a, G_d)`` (memory K·G_a·G_d reals).
        return_residual: form the final residual matrix ``(..., M, N)`` (else ``residual`` is
            an empty tensor; its norm is always in ``residual_norms``).
        grids, temperature, window: with ``temperature``, ``soft_locations (..., K, 2)`` =
            soft-arg-max (angle, delay) of each iteration's map on ``grids`` = (angle grid
            ``(G_a,)``, delay grid ``(G_d,)``), restricted to ± ``window`` points.

    Returns:
        :class:`OMPResult` with ``indices (..., K, 2)`` (angle index, delay index), ``gains
        (..., K)``.  Differentiable w.r.t. Y, A, B except for the discrete picks.

    Example:
        >>> from isackit.estimators import SearchGrid, delay_dictionary
        >>> from isackit.geometry import ula
        >>> az = SearchGrid.degrees(-60.0, 60.0, 1.0).points(torch.float64)
        >>> tau = torch.arange(32, dtype=torch.float64) * 25e-9       # delay grid, seconds
        >>> A, B = ula(8).steering(az), delay_dictionary(tau, 250e3, 32)
        >>> Y = 2.0 * A[:, 70:71] @ B[:, 5:6].T + A[:, 20:21] @ B[:, 12:13].T   # two paths
        >>> res = omp_angle_delay(Y, A, B, 2, grids=(az, tau), temperature=0.05, window=3)
        >>> res.indices.tolist()                                        # (angle, delay) indices
        [[70, 5], [20, 12]]
        >>> bool(res.residual_norms[-1] < 1e-20 * res.residual_norms[0])   # exact fit
        True
    """
    check_ndim_at_least(Y, 2, "Y", "(..., M, N)")
    if Y.shape[-2] != A.shape[-2] or Y.shape[-1] != B.shape[-2]:
        raise ValueError(f"shapes do not match: Y (..., M, N) = {tuple(Y.shape)}, A (..., M, G_a) = "
                         f"{tuple(A.shape)}, B (..., N, G_d) = {tuple(B.shape)}")
    common_complex_dtype(Y, A, B, names=("Y", "A", "B"))
    _check_finite(Y, "Y")
    _check_finite(A, "A")
    _check_finite(B, "B")
    K = _check_max_atoms(max_atoms, Y.shape[-2] * Y.shape[-1], "M·N (the entries of an observation)")
    if temperature is not None:
        if grids is None or window is None:
            raise ValueError("soft locations need grids=(angle_grid, delay_grid) and window=")
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature!r}")
    batch = torch.broadcast_shapes(Y.shape[:-2], A.shape[:-2], B.shape[:-2])
    Ga, Gd = A.shape[-1], B.shape[-1]
    thr = _as_threshold(threshold, Y.real)
    # unit-norm atoms: the map is then |C|² with no division; gains are rescaled at the end
    sa = _sq_norm(A, -2).sqrt()  # (..., G_a)
    sb = _sq_norm(B, -2).sqrt()  # (..., G_d)
    An = A / sa[..., None, :].to(A.dtype)
    Bn = B / sb[..., None, :].to(B.dtype)
    # a dictionary without batch dims stays shared (indexed, never expanded to the batch)
    Ab = An if An.dim() == 2 else An.expand(*batch, *An.shape[-2:])
    Bb = Bn if Bn.dim() == 2 else Bn.expand(*batch, *Bn.shape[-2:])
    y2 = _sq_norm(Y, (-2, -1)).expand(batch)
    with torch.no_grad():  # full maps: only used to pick (and returned detached unless asked)
        An_, Bc_ = An.detach(), Bn.detach().conj()
        # the map is kept transposed, C_0^T = (Y B^*)^T conj(A) (..., G_d, G_a): with a shared
        # angle dictionary this is ONE matrix product over the whole batch, no copy of A
        C0p = _planar_map(Y.detach() @ Bc_, An_).expand(*batch, 2 * Gd, Ga)  # [Re; Im] C_0^T
    active = torch.ones(batch, dtype=torch.bool, device=Y.device)
    a_cols, b_cols, U, V, bests, picks, peaks, rhs, maps, softs = [], [], [], [], [], [], [], [], [], []
    res_norms = [y2]
    gains = None
    for k in range(K):
        with torch.no_grad():
            if k == 0:
                best_t = _map_argmax(C0p, None, None)
            else:  # C_k^T = C_0^T - V^T diag(γ) U^T, searched chunk by chunk
                best_t = _map_argmax(C0p, torch.stack(V, -1) * gains.detach()[..., None, :], torch.stack(U, -2))
        ga = best_t % Ga
        gd = torch.div(best_t, Ga, rounding_mode="floor")
        best = ga * Gd + gd
        a = _columns(Ab, ga[..., None])[..., 0]  # (..., M), differentiable
        b = _columns(Bb, gd[..., None])[..., 0]  # (..., N)
        Yb = (Y @ b.conj()[..., None]).squeeze(-1)  # (..., M)
        r_k = (a.conj() * Yb).sum(-1)  # a^H Y b^*
        if k == 0:
            c_k = r_k
        else:  # correlation with the current residual: a^H R b^* = r_k - Σ_j γ_j (a^H a_j)(b_j^T b^*)
            As, Bs = torch.stack(a_cols, -1), torch.stack(b_cols, -1)
            c_k = r_k - ((a.conj()[..., None, :] @ As).squeeze(-2) * (b.conj()[..., None, :] @ Bs).squeeze(-2)
                         * gains).sum(-1)
        peak = _sq_abs(c_k)
        stop = _repeated(best, bests)
        if thr is not None:
            stop = stop | (peak.detach() < thr)
        if tol > 0:
            stop = stop | (res_norms[-1].detach() <= tol * y2.detach())
        active = active & ~stop
        if return_maps:
            maps.append(_dense_map(Y, An, Bn, a_cols, b_cols, gains, batch))
        if temperature is not None:
            softs.append(_soft_patch(Y, Ab, Bb, ga, gd, a_cols, b_cols, gains, grids, temperature, int(window),
                                     peak))
        act_c = active.to(Y.dtype)
        a = a * act_c[..., None]  # a stopped element adds a zero column (gain 0)
        a_cols.append(a)
        b_cols.append(b)
        rhs.append(r_k * act_c)
        bests.append(torch.where(active, best, torch.full_like(best, -1)))
        picks.append(active.clone())
        peaks.append(torch.where(active, peak, torch.zeros_like(peak)))
        As, Bs = torch.stack(a_cols, -1), torch.stack(b_cols, -1)
        pk = torch.stack(picks, -1)
        Gram = (As.mH @ As) * (Bs.mH @ Bs) + torch.diag_embed((~pk).to(Y.dtype))
        r = torch.stack(rhs, -1)
        gains = torch.linalg.solve(Gram, r.unsqueeze(-1)).squeeze(-1)  # (..., k+1)
        res_norms.append(y2 - (r.conj() * gains).real.sum(-1))
        if k + 1 < K:
            with torch.no_grad():
                U.append((a.detach()[..., None, :] @ An_.conj()).squeeze(-2))  # (A^H a)^T: (..., G_a)
                V.append((b.detach()[..., None, :] @ Bc_).squeeze(-2))  # (..., G_d)
    residual = Y.new_zeros(0)
    As, Bs = torch.stack(a_cols, -1), torch.stack(b_cols, -1)
    if return_residual:
        residual = Y - (As * gains[..., None, :]) @ Bs.transpose(-1, -2)
    idx = torch.stack(bests, -1)
    pk = torch.stack(picks, -1)
    ia = torch.where(pk, torch.div(idx, Gd, rounding_mode="floor"), -1)
    id_ = torch.where(pk, idx % Gd, -1)
    # gains of the unit-norm atoms → gains of the given atoms
    scale = (torch.gather(sa.expand(*batch, Ga), -1, ia.clamp_min(0))
             * torch.gather(sb.expand(*batch, Gd), -1, id_.clamp_min(0)))
    gains = gains / scale.to(gains.dtype)
    return OMPResult(
        indices=torch.stack([ia, id_], -1), picked=pk,
        gains=gains, peaks=torch.stack(peaks, -1),
        responses=_sq_abs(torch.stack(rhs, -1)),
        residual=residual,
        residual_norms=torch.stack(res_norms, -1),
        maps=torch.stack(maps, -3) if return_maps else None,
        soft_locations=torch.stack(softs, -2) if softs else None)


# ---------------------------------------------------------------------------------------
# registered estimators
# ---------------------------------------------------------------------------------------
#: default grid of the angle OMP: 0.1° over [-90°, 90°]
OMP_GRID = SearchGrid.degrees(-90.0, 90.0, 0.1)


def _omp_result(values: list[torch.Tensor], picked, valid, names, extras) -> EstimationResult:
    est = torch.stack(values, -1)
    ok = picked & valid[..., None]
    est = torch.where(ok[..., None], est, torch.full_like(est, torch.nan))
    est = sort_sources(est)
    count = (~torch.isnan(est).any(-1)).sum(-1)
    return EstimationResult(estimates=est, parameters=names, count=count, valid=valid, extras=extras)


@register("omp")
class OMP(Estimator):
    """Angle OMP on snapshots (:func:`omp`, simultaneous over the N snapshots); grid-limited.

    Args:
        array: assumed ``ArrayGeometry``/``ArrayModel``.  num_sources: K (iterations).
        grid: azimuth grid (default 0.1° over ±90°).
        threshold: stop when the peak of ‖a^H R‖²/‖a‖² falls below it (None: K picks).

    Input ``X (..., M, N)``; ``extras``: ``gains (..., K, N)``, ``residual_norms (..., K+1)``.
    """

    input_kind = "snapshots"
    parameters = ("azimuth",)

    def __init__(self, array, num_sources: int = 1, grid: SearchGrid = OMP_GRID, threshold: float | None = None):
        self.array = array
        self.num_sources = num_sources
        self.grid = grid
        self.threshold = threshold

    def estimate(self, X: torch.Tensor) -> EstimationResult:
        M = self.array.num_elements
        check_data(X, (M, None), "X", f"(..., M={M}, N)", finite=True)
        with torch.no_grad():
            X0, valid = sanitize_data(X, 2)
            D = self.grid.steering(self.array, X)
            res = omp(X0, D, self.num_sources, threshold=self.threshold)
            pts = self.grid.points_like(X)
            az = pts[res.indices.clamp_min(0)]
            return _omp_result([az], res.picked, valid, self.parameters,
                               {"gains": res.gains, "residual_norms": res.residual_norms})

    @classmethod
    def example(cls, dtype=torch.complex128, device="cpu", generator=None):
        from ..geometry import ula
        arr = ula(12)
        # on the 0.1° grid, orthogonal atoms (sin 30° - sin 0° = 3·2/M), so OMP is exact
        truth = torch.tensor([0.0, 30.0], dtype=torch.float64).deg2rad()[:, None]
        # orthogonal, equal-energy source signals: no cross term biases the first pick
        S = torch.linalg.qr(torch.randn(16, 2, generator=generator, dtype=torch.complex128))[0].mT * 4.0
        X = arr.steering(truth[:, 0]).to(torch.complex128) @ S
        X = X + 1e-4 * torch.randn(X.shape, generator=generator, dtype=torch.complex128)
        return cls(arr, 2), X.to(dtype=dtype, device=device), truth


@register("omp_angle_delay")
class OMPAngleDelay(Estimator):
    """Joint angle–delay OMP on OFDM CSI (:func:`omp_angle_delay`); grid-limited.

    Args:
        array: assumed receive ``ArrayGeometry``/``ArrayModel``.  num_sources: K paths.
        azimuth_grid, delay_grid: :class:`SearchGrid` (delay grid in seconds; default
            :func:`~isackit.estimators.grids.default_delay_grid`).
        subcarrier_spacing: Δf in Hz.  threshold: detection threshold on the normalised map.

    Input CSI ``H (..., N, M)``; estimates ``(..., K, 2)`` ("azimuth", "delay");
    ``extras``: ``gains (..., K)``, ``residual_norms (..., K+1)``.
    """

    input_kind = "csi"
    parameters = ("azimuth", "delay")

    def __init__(self, array, num_sources: int = 1, azimuth_grid: SearchGrid = OMP_GRID,
                 delay_grid: SearchGrid | None = None, subcarrier_spacing: float = 240e3,
                 threshold: float | None = None):
        self.array = array
        self.num_sources = num_sources
        self.azimuth_grid = azimuth_grid
        self.delay_grid = delay_grid
        self.subcarrier_spacing = subcarrier_spacing
        self.threshold = threshold

    def estimate(self, H: torch.Tensor) -> EstimationResult:
        M = self.array.num_elements
        check_data(H, (None, M), "H", f"(..., N, M={M})", finite=True)
        N = H.shape[-2]
        dgrid = default_delay_grid(N, self.subcarrier_spacing) if self.delay_grid is None else self.delay_grid
        with torch.no_grad():
            H0, valid = sanitize_data(H, 2)
            A = self.azimuth_grid.steering(self.array, H)
            B = dgrid.delays(self.subcarrier_spacing, N, H)
            res = omp_angle_delay(H0.transpose(-1, -2), A, B, self.num_sources, threshold=self.threshold,
                                  return_residual=False)
            az = self.azimuth_grid.points_like(H)[res.indices[..., 0].clamp_min(0)]
            tau = dgrid.points_like(H)[res.indices[..., 1].clamp_min(0)]
            return _omp_result([az, tau], res.picked, valid, self.parameters,
                               {"gains": res.gains, "residual_norms": res.residual_norms})

    @classmethod
    def example(cls, dtype=torch.complex128, device="cpu", generator=None):
        from .grids import example_angle_delay_csi
        arr, agrid, dgrid, df, truth, H = example_angle_delay_csi(generator, noise_std=1e-3)
        return (cls(arr, 2, azimuth_grid=agrid, delay_grid=dgrid, subcarrier_spacing=df),
                H.to(dtype=dtype, device=device), truth)
