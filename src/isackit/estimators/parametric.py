r"""PARAMING: parametric joint AoA / AoD / ToA (and Doppler) estimation from bistatic CSI.

Model (seed 001, eqs. 4 and 10-11; conventions.md): the LS channel estimate on subcarrier n,

    Ĥ_n = Σ_k α_k b_n(τ_k) a_r(θ_k) a_t(φ_k)^T + E_n,   b_n(τ) = exp(-j2π nΔf τ),

with ULA responses a_r(θ)_m = exp(+j2π d_r m sin θ), a_t(φ)_m = exp(+j2π d_t m sin φ)
(spacings in wavelengths, phase reference at element 0), K paths, n = 0..N-1.  CSI tensors
are ``(..., N, M_r, M_t)``.

PARAMING (seed 001, §III-C, Algorithm 1; the steps P1-P8 of ``shared/design/s1-bistatic.md``):

P1. Hankel-block-Hankel-block-Hankel matrix (26)-(28), sub-array sizes M_t', M_r' and sub-band
    N' (K_t = M_t - M_t' + 1, K_N = N - N' + 1, K_r = M_r - M_r' + 1):
    X[ρ, κ] = Ĥ[i_n + j_n, i_r + j_r, i_t + j_t], ρ = (i_t N' + i_n) M_r' + i_r,
    κ = (j_t K_N + j_n) K_r + j_r  (:func:`hankel_block_hankel`).
P2. X = E_L diag(α) E_R^T + Z with Khatri–Rao manifolds E_L, E_R (29)-(30).
P3. Shift-invariant column selections (31)-(32): X_1 = X[:, j_n ≤ K_N - 2], X_2 = X[:, j_n ≥ 1],
    so that X_2 = E_L Γ Ψ E_{R,1}^T with Ψ = diag(exp(-j2πΔf τ_k)).
P5. Truncated SVD X_1 ≈ U_K Σ_K V_K^H and the K × K matrix (34)
        Φ = Σ_K^{-1} U_K^H X_2 V_K,   τ̂_k = [(-∠ eig_k(Φ)) mod 2π] / (2πΔf)  (35)
    (:func:`paraming_delays`; noise-free Φ = Q^{-1} Ψ Q, Q = E_{R,1}^T V_K).
P6. LS spatial signatures given the ToAs (36): G_k = Σ_n [C^†]_{k,n} Ĥ_n, C = [b(τ̂_1) … b(τ̂_K)]
    (:func:`fit_spatial_signatures`); noise-free G_k = α_k a_r(θ_k) a_t(φ_k)^T.
P7-P8. Per path a rank-one fit (37)-(40) and a phase regression (41):
    P_k[r, t] ≈ μ_r r + μ_t t + ψ,  θ̂ = asin(wrap(μ_r)/(2π d_r)), φ̂ = asin(wrap(μ_t)/(2π d_t)),
    α̂ = |α̂| e^{jψ̂} (:func:`rank_one_phase_fit`; ``mode="rank1"`` unwraps the phases of the
    dominant singular vectors of G_k, ``mode="direct"`` the column-major unwrapped phase of
    vec(G_k) as the seed does, with the slopes wrapped mod 2π).

**The truncated SVD without forming X.**  X_1 has M_t'N'M_r' × K_t(K_N-1)K_r entries (640 × 960
at the seed's sizes), but a product with a block of vectors is a 3-D correlation of the CSI
with them.  Along the subcarrier axis it is computed by length-N FFTs; along the two antenna
axes by small spatial Hankel matrices per frequency bin:

    (X_1 W)[i] = Σ_j Ĥ[i + j] W[j] = IDFT_n( S_f · DFT⁺_n(W) )[i_n],
    S_f[(i_t, i_r), (j_t, j_r)] = Ĥ_f[i_t + j_t, i_r + j_r],  Ĥ_f = DFT_n(Ĥ),

exactly (no wrap-around: i_n + j_n ≤ N - 1), and X_2 W is the same correlation shifted by
one subcarrier.  The K dominant singular triplets come from a block subspace (power)
iteration with a fixed start block, ``power_iterations`` steps and ``K + oversampling``
vectors, then a Rayleigh–Ritz SVD (Halko, Martinsson & Tropp, SIAM Review 2011, Alg. 4.4,
5.1).  The subspace error after q steps scales as (σ_{K+p+1}/σ_K)^{2q+1}; ``svd="full"``
forms X_1 and X_2 and uses ``torch.linalg.svd`` (the reference; slow at the seed's sizes).

Cost per scene (seed sizes, q = 4, p = 3): about 2(q + 1) + 1 correlations of
(K + p) vectors, each two length-N FFTs per vector and N products of
(M_t'M_r') × (K_tK_r) matrices, O(N (K+p) (log N + M_t'M_r'K_tK_r)), instead of the
O(M_t'N'M_r' · K_t K_N K_r · K) of products with the formed matrix.

**Doppler (seed §III-D).**  :func:`paraming_doppler` runs PARAMING on S sub-frame CSIs
``(..., S, N, M_r, M_t)``, associates the paths of every sub-frame with those of sub-frame 0,
and regresses the unwrapped gain phases on the sub-frame index (43),
ψ̂_{k,s} = ψ_k + 2π ν_k s T_sf + e_{k,s} (:func:`doppler_from_phases`).  ``method =
"shared_geometry"`` (ours) instead averages the geometry over sub-frames and refits the
per-sub-frame gains by LS on the full CSI (21) before the regression.

Identifiability: K ≤ min(M_t'N'M_r', K_t(K_N - 1)K_r), ToAs distinct modulo 1/Δf,
|θ|, |φ| < π/2 and spacings ≤ 1/2 for unambiguous angles.  Differentiable: no (the
estimators run under ``no_grad``).

References: seed 001 (Naoumi, Bazzi, Bomfin, Chafii, arXiv 2509.02137), Algorithm 1 and §III-D;
Hua & Sarkar, IEEE TASSP 1990 (matrix pencil); Halko, Martinsson & Tropp 2011.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch

from .._checks import check_choice, check_positive, check_positive_int
from .base import EstimationResult, Estimator, register
from .common import batch_chunks
from .grids import delay_dictionary, real_dtype_of

__all__ = [
    "HankelOperator",
    "PARAMING",
    "default_sub_sizes",
    "doppler_from_phases",
    "fit_spatial_signatures",
    "hankel_block_hankel",
    "paraming",
    "paraming_delays",
    "paraming_doppler",
    "path_gains",
    "rank_one_phase_fit",
    "truncated_svd",
    "ula_phase_layout",
]

PHASE_FITS = ("rank1", "direct")
#: Scenes per batched pass of the pencil: throughput on 2 cores is flat from 16 to 64 scenes and
#: falls beyond (the operator leaves the cache); see benchmarks/README.md.
CHUNK_SIZE = 32
SVD_METHODS = ("subspace", "full")
DOPPLER_METHODS = ("per_subframe", "shared_geometry")


# ---------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------
def _wrap(x: torch.Tensor) -> torch.Tensor:
    """Map phases to [-π, π)."""
    return torch.remainder(x + math.pi, 2 * math.pi) - math.pi


def _unwrap(phase: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Unwrap a phase sequence along ``dim`` (NumPy's ``unwrap``: jumps wrapped to [-π, π))."""
    d = torch.diff(phase, dim=dim)
    step = _wrap(d) - d
    first = phase.narrow(dim, 0, 1)
    return torch.cat([first, phase.narrow(dim, 1, phase.shape[dim] - 1) + torch.cumsum(step, dim)], dim)


def _slope_intercept(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """LS line y_m ≈ μ m + c over m = 0..M-1 along the last dim: (μ, c)."""
    M = y.shape[-1]
    m = torch.arange(M, dtype=y.dtype, device=y.device)
    mc = m - (M - 1) / 2
    mu = (y * mc).sum(-1) / (mc * mc).sum()
    return mu, y.mean(-1) - mu * (M - 1) / 2


@dataclass(frozen=True)
class _ULA:
    """Phase layout of a ULA: a_m(θ) = exp(j2π (offset·u(θ) + m·spacing·sin θ))."""

    num_elements: int
    spacing: float          # d/λ
    offset: tuple[float, float, float]  # p_0/λ


def ula_phase_layout(array) -> _ULA:
    r"""(M, d/λ, p_0/λ) of a uniform linear array along the local y axis.

    Accepts an :class:`~isackit.geometry.ArrayGeometry` or an
    :class:`~isackit.impairments.ArrayModel` (its nominal geometry, as assumed by a receiver
    that knows no impairment).  PARAMING needs Vandermonde responses
    a_m(θ) = a_0(θ) exp(j2π m d sin θ / λ): any other layout is a ``ValueError``.
    """
    geom = getattr(array, "geometry", array)
    pos = getattr(geom, "_positions64", None)
    if pos is None or not hasattr(geom, "wavelength"):
        raise TypeError(f"expected an ArrayGeometry or ArrayModel, got {type(array).__name__}")
    pos = pos / float(geom.wavelength)
    M = pos.shape[0]
    if M < 2:
        raise ValueError(f"PARAMING needs arrays of at least 2 elements, got {M}")
    d = pos[1] - pos[0]
    steps = pos[1:] - pos[:-1]
    scale = max(1.0, float(pos.abs().max()))
    if (float((steps - d).abs().max()) > 1e-9 * scale or abs(float(d[0])) > 1e-9 * scale
            or abs(float(d[2])) > 1e-9 * scale or float(d[1]) <= 0):
        raise ValueError("PARAMING needs uniform linear arrays along the local y axis (Vandermonde "
                         "responses); this array is not one")
    return _ULA(M, float(d[1]), tuple(float(v) for v in pos[0]))


def default_sub_sizes(num_rx: int, num_tx: int, num_subcarriers: int) -> tuple[int, int, int]:
    """(M_r', M_t', N') = (⌈M_r/2⌉, ⌈M_t/2⌉, ⌈N/2⌉), the seed's choice (5, 4, 32 for 10, 8, 64)."""
    return (num_rx + 1) // 2, (num_tx + 1) // 2, (num_subcarriers + 1) // 2


def _check_sizes(N: int, Mr: int, Mt: int, sub_sizes, num_sources) -> tuple[int, int, int, int]:
    """Validated (M_r', M_t', N', K) with one-line errors."""
    if sub_sizes is None:
        sub_sizes = default_sub_sizes(Mr, Mt, N)
    if (not isinstance(sub_sizes, (tuple, list)) or len(sub_sizes) != 3
            or any(isinstance(s, bool) or not isinstance(s, int) for s in sub_sizes)):
        raise ValueError(f"sub_sizes must be three integers (M_r', M_t', N'), got {sub_sizes!r}")
    mr, mt, nn = (int(s) for s in sub_sizes)
    if not 1 <= mr <= Mr:
        raise ValueError(f"receive sub-array size M_r' = {mr} must be in [1, M_r = {Mr}]")
    if not 1 <= mt <= Mt:
        raise ValueError(f"transmit sub-array size M_t' = {mt} must be in [1, M_t = {Mt}]")
    if not 1 <= nn <= N - 1:
        raise ValueError(f"sub-band size N' = {nn} must be in [1, N - 1 = {N - 1}] (the ToA shift "
                         "invariance needs at least two sub-bands)")
    if isinstance(num_sources, bool) or not isinstance(num_sources, int) or num_sources < 1:
        raise ValueError(f"num_sources must be a positive integer, got {num_sources!r}")
    kmax = min(mt * nn * mr, (Mt - mt + 1) * (N - nn) * (Mr - mr + 1))
    if num_sources > kmax:
        raise ValueError(f"num_sources = {num_sources} exceeds what the Hankel sizes allow: "
                         f"K ≤ min(M_t'N'M_r', K_t(K_N - 1)K_r) = {kmax} for sub_sizes {(mr, mt, nn)}")
    if num_sources > N:
        raise ValueError(f"num_sources = {num_sources} exceeds the number of subcarriers N = {N}")
    return mr, mt, nn, num_sources


def _check_csi(H: torch.Tensor) -> torch.Tensor:
    if not isinstance(H, torch.Tensor):
        raise TypeError(f"H must be a torch.Tensor (..., N, M_r, M_t), got {type(H).__name__}")
    if H.ndim < 3:
        raise ValueError(f"H must have shape (..., N, M_r, M_t), got {tuple(H.shape)}")
    if not H.is_complex():
        raise TypeError(f"H must be complex (complex64 or complex128), got {H.dtype}")
    N, Mr, Mt = H.shape[-3:]
    if N < 2 or Mr < 2 or Mt < 2:
        raise ValueError(f"PARAMING needs N ≥ 2 subcarriers and arrays of ≥ 2 elements, got {tuple(H.shape[-3:])}")
    return H


def _sanitize(H: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(H with non-finite or all-zero batch elements replaced, valid ``(B,)``) for H ``(B, …)``."""
    flat = torch.view_as_real(H.resolve_conj()).flatten(1)
    ok = torch.isfinite(flat).all(-1)
    H0 = torch.where(ok[:, None, None, None], H, torch.zeros_like(H))
    ok = ok & (H0.abs().flatten(1).amax(-1) > 0)
    # a placeholder with full rank for invalid elements keeps every later step finite
    ones = torch.ones_like(H0[:1])
    return torch.where(ok[:, None, None, None], H0, ones), ok


# ---------------------------------------------------------------------------------------
# P1: the Hankel-block-Hankel-block-Hankel matrix and its fast products
# ---------------------------------------------------------------------------------------
def hankel_block_hankel(H: torch.Tensor, sub_sizes: tuple[int, int, int] | None = None) -> torch.Tensor:
    r"""The PARAMING matrix X (seed 001, eqs. 26-28), formed explicitly.

    X[ρ, κ] = Ĥ[i_n + j_n, i_r + j_r, i_t + j_t] with ρ = (i_t N' + i_n) M_r' + i_r and
    κ = (j_t K_N + j_n) K_r + j_r: Hankel blocks in the transmit index (26), each Hankel in
    the subcarrier index (27), each a Hankel matrix in the receive index (28).

    Args:
        H: CSI ``(..., N, M_r, M_t)`` complex.
        sub_sizes: (M_r', M_t', N'); default :func:`default_sub_sizes`.

    Returns:
        ``(..., M_t'N'M_r', K_t K_N K_r)`` (640 × 990 at the seed's sizes).  Differentiable.

    Example:
        >>> H = torch.arange(12.0).reshape(3, 2, 2).to(torch.complex128)  # N=3, M_r=2, M_t=2
        >>> X = hankel_block_hankel(H, (1, 1, 2))   # M_r'=1, M_t'=1, N'=2
        >>> X.shape
        torch.Size([2, 8])
        >>> X[1, 3] == H[2, 1, 0]   # ρ=1: (i_t, i_n, i_r)=(0, 1, 0); κ=3: (j_t, j_n, j_r)=(0, 1, 1)
        tensor(True)
    """
    H = _check_csi(H)
    N, Mr, Mt = H.shape[-3:]
    mr, mt, nn = (default_sub_sizes(Mr, Mt, N) if sub_sizes is None else tuple(int(s) for s in sub_sizes))
    _check_sizes(N, Mr, Mt, (mr, mt, nn), 1)
    Ht = H.movedim(-1, -3)  # (..., M_t, N, M_r)
    Y = Ht.unfold(-3, mt, 1).unfold(-3, nn, 1).unfold(-3, mr, 1)  # (..., K_t, K_N, K_r, M_t', N', M_r')
    batch = H.shape[:-3]
    cols = (Mt - mt + 1) * (N - nn + 1) * (Mr - mr + 1)
    return Y.reshape(*batch, cols, mt * nn * mr).mT


class HankelOperator:
    r"""Products with the PARAMING selections X_1, X_2 (P3) without forming them.

    Built from a batch of CSIs ``(B, N, M_r, M_t)``.  Vectors live in

    * the row space of X_1 ("i-space"): ``(B, N', M_t'M_r', L)``, entry [i_n, (i_t, i_r)];
    * the column space of X_1 ("j-space"): ``(B, K_N - 1, K_t K_r, L)``, entry [j_n, (j_t, j_r)],

    i.e. permutations of the seed's row/column orders (which leave every singular value and
    the matrix Φ of (34) unchanged).  ``x1``/``x2``/``x1h`` return X_1 W, X_2 W and X_1^H Q.

    The adjoint is the same correlation with conj(Ĥ): (X_1^H Q)[j] = Σ_i conj(Ĥ[i + j]) Q[i],
    and DFT_n(conj Ĥ)_f = conj(Ĥ_{(-f) mod N}).  The operator holds both spatial Hankel stacks,
    S_f ``(B, N, M_t'M_r', K_tK_r)`` for X_1 and T_f ``(B, N, K_tK_r, M_t'M_r')`` for X_1^H,
    contiguous, so that no product transposes or conjugates a block of vectors.
    """

    def __init__(self, H: torch.Tensor, sub_sizes: tuple[int, int, int]):
        B, N, Mr, Mt = H.shape
        mr, mt, nn = sub_sizes
        self.N, self.nn, self.kn1 = N, nn, N - nn
        self.kt, self.kr = Mt - mt + 1, Mr - mr + 1
        Hf = torch.fft.fft(H.transpose(-1, -2), dim=1)  # (B, f, M_t, M_r)
        Gf = torch.roll(Hf.flip(1), 1, 1).conj().resolve_conj()  # DFT_n(conj Ĥ)
        self.S = Hf.unfold(2, self.kt, 1).unfold(3, self.kr, 1).reshape(B, N, mt * mr, self.kt * self.kr)
        self.T = Gf.unfold(2, mt, 1).unfold(3, mr, 1).reshape(B, N, self.kt * self.kr, mt * mr)
        self.row_shape = (nn, mt * mr)
        self.col_shape = (self.kn1, self.kt * self.kr)

    def _correlate(self, S: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
        # c[m] = Σ_j h[m + j] w[j] along the subcarrier axis, via DFTs of length N (no wrap)
        Wf = torch.fft.ifft(W, n=self.N, dim=1, norm="forward")
        return torch.fft.ifft(S @ Wf, dim=1)

    def x1(self, W: torch.Tensor) -> torch.Tensor:
        """X_1 W: j-space ``(B, K_N-1, K_tK_r, L)`` → i-space ``(B, N', M_t'M_r', L)``."""
        return self._correlate(self.S, W)[:, : self.nn]

    def x2(self, W: torch.Tensor) -> torch.Tensor:
        """X_2 W (the selection shifted by one subcarrier)."""
        return self._correlate(self.S, W)[:, 1: self.nn + 1]

    def x1h(self, Q: torch.Tensor) -> torch.Tensor:
        """X_1^H Q: i-space → j-space."""
        return self._correlate(self.T, Q)[:, : self.kn1]


_START: dict[tuple, torch.Tensor] = {}


def _start_block(shape: tuple[int, ...], dtype: torch.dtype, device) -> torch.Tensor:
    """A fixed Gaussian start block (seeded once; never the global RNG)."""
    key = (shape, dtype, str(device))
    if key not in _START:
        g = torch.Generator().manual_seed(20240901)
        _START[key] = torch.randn(shape, generator=g, dtype=dtype).to(device)
    return _START[key]


def truncated_svd(op: HankelOperator, rank: int, oversampling: int = 3, power_iterations: int = 4
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""K dominant singular triplets of X_1 by block subspace iteration (Rayleigh–Ritz).

    Q = orth(X_1 Ω); q times {Z = orth(X_1^H Q); Q = orth(X_1 Z)}; X_1^H Q = V_z S W^H; then
    X_1 ≈ (Q W) S V_z^H.  Ω is a fixed Gaussian block of K + ``oversampling`` columns.

    Returns:
        ``(U (B, D_i, K), s (B, K), V (B, D_j, K))`` with D_i, D_j the flattened i/j spaces.
    """
    B = op.S.shape[0]
    L = min(rank + int(oversampling), op.nn * op.S.shape[2], op.kn1 * op.kt * op.kr)
    Om = _start_block((op.kn1, op.kt * op.kr, L), op.S.dtype, op.S.device).expand(B, -1, -1, -1)
    Q = torch.linalg.qr(op.x1(Om).reshape(B, -1, L)).Q
    for _ in range(int(power_iterations)):
        Z = torch.linalg.qr(op.x1h(Q.reshape(B, *op.row_shape, L)).reshape(B, -1, L)).Q
        Q = torch.linalg.qr(op.x1(Z.reshape(B, *op.col_shape, L)).reshape(B, -1, L)).Q
    Z = op.x1h(Q.reshape(B, *op.row_shape, L)).reshape(B, -1, L)  # X_1^H Q
    Vz, s, Wh = torch.linalg.svd(Z, full_matrices=False)
    U = Q @ Wh.mH[..., :rank]
    return U, s[..., :rank], Vz[..., :rank]


# ---------------------------------------------------------------------------------------
# P3-P5: ToAs from the pencil
# ---------------------------------------------------------------------------------------
def _pencil(H: torch.Tensor, sizes: tuple[int, int, int], K: int, subcarrier_spacing: float, svd: str,
            oversampling: int, power_iterations: int):
    """(τ̂ (B, K) sorted, λ (B, K), Σ_K (B, K), valid (B,)) for one chunk ``(B, N, M_r, M_t)``."""
    B, N, Mr, Mt = H.shape
    mr, mt, nn = sizes
    Hb, ok = _sanitize(H)
    if svd == "full":
        X = hankel_block_hankel(Hb, (mr, mt, nn)).reshape(B, mt, nn, mr, Mt - mt + 1, N - nn + 1, Mr - mr + 1)
        X1 = X[..., :-1, :].reshape(B, mt * nn * mr, -1)
        X2 = X[..., 1:, :].reshape(B, mt * nn * mr, -1)
        Uf, sf, Vhf = torch.linalg.svd(X1, full_matrices=False)
        U, s, V = Uf[..., :K], sf[..., :K], Vhf[..., :K, :].mH
        X2V = X2 @ V
        smax = sf[..., 0]
    else:
        op = HankelOperator(Hb, (mr, mt, nn))
        U, s, V = truncated_svd(op, K, oversampling, power_iterations)
        X2V = op.x2(V.reshape(B, *op.col_shape, K)).reshape(B, -1, K)
        smax = s[..., 0]
    eps = torch.finfo(s.dtype).eps
    rank_ok = s[..., -1] > 100 * eps * max(U.shape[-2], V.shape[-2]) * smax
    ok = ok & rank_ok
    s_safe = torch.where(rank_ok[:, None], s, torch.ones_like(s))
    Phi = (U.mH @ X2V) / s_safe[..., :, None].to(U.dtype)
    lam = torch.linalg.eigvals(Phi)
    tau = torch.remainder(-torch.angle(lam), 2 * math.pi) / (2 * math.pi * subcarrier_spacing)
    tau, order = tau.sort(-1)
    lam = lam.gather(-1, order)
    ok = ok & torch.isfinite(tau).all(-1)
    nan = torch.tensor(math.nan, dtype=tau.dtype, device=tau.device)
    tau = torch.where(ok[:, None], tau, nan)
    lam = torch.where(ok[:, None], lam, torch.full_like(lam, complex(math.nan, math.nan)))
    s = torch.where(ok[:, None], s, nan)
    return tau, lam, s, ok


def paraming_delays(H: torch.Tensor, num_sources: int, subcarrier_spacing: float,
                    sub_sizes: tuple[int, int, int] | None = None, *, svd: str = "subspace",
                    oversampling: int = 3, power_iterations: int = 4,
                    chunk_size: int = CHUNK_SIZE) -> dict[str, torch.Tensor]:
    r"""ToAs by the truncated-SVD pencil of PARAMING (seed 001, eqs. 31-35).

    Φ = Σ_K^{-1} U_K^H X_2 V_K (K × K), λ_k = eig_k(Φ), τ̂_k = [(-∠λ_k) mod 2π]/(2πΔf) ∈ [0, 1/Δf).

    Args:
        H: CSI ``(..., N, M_r, M_t)`` complex.
        num_sources: K.
        subcarrier_spacing: Δf in Hz.
        sub_sizes: (M_r', M_t', N'), default :func:`default_sub_sizes`.
        svd: ``"subspace"`` (fast products, block subspace iteration) or ``"full"`` (forms X_1,
            X_2; ``torch.linalg.svd``).
        oversampling, power_iterations: of the subspace iteration.
        chunk_size: scenes per batched pass (bounds the memory of the Hankel operator, about
            0.6 MB per scene at the seed's sizes, and keeps it in cache).

    Returns:
        dict with ``delays`` ``(..., K)`` seconds (sorted), ``eigenvalues`` ``(..., K)``
        complex, ``singular_values`` ``(..., K)`` (Σ_K), ``valid`` ``(...)`` bool (finite,
        non-zero input of numerical rank ≥ K).  Invalid entries are NaN.
    """
    H = _check_csi(H)
    check_positive(subcarrier_spacing, "subcarrier_spacing")
    check_choice(svd, SVD_METHODS, "svd")
    N, Mr, Mt = H.shape[-3:]
    mr, mt, nn, K = _check_sizes(N, Mr, Mt, sub_sizes, num_sources)
    chunk_size = check_positive_int(chunk_size, "chunk_size")
    batch = H.shape[:-3]
    with torch.no_grad():
        Hb = H.reshape(-1, N, Mr, Mt)
        parts = [_pencil(Hb[sl], (mr, mt, nn), K, float(subcarrier_spacing), svd, oversampling, power_iterations)
                 for sl in batch_chunks(Hb.shape[0], chunk_size)]
        if parts:
            tau, lam, s, ok = (torch.cat(x) for x in zip(*parts))
        else:  # an empty batch
            s = tau = torch.empty(0, K, dtype=real_dtype_of(H), device=H.device)
            lam, ok = torch.empty(0, K, dtype=H.dtype, device=H.device), torch.empty(0, dtype=torch.bool, device=H.device)
    return {"delays": tau.reshape(*batch, K), "eigenvalues": lam.reshape(*batch, K),
            "singular_values": s.reshape(*batch, K), "valid": ok.reshape(batch)}


# ---------------------------------------------------------------------------------------
# P6: spatial signatures
# ---------------------------------------------------------------------------------------
def fit_spatial_signatures(H: torch.Tensor, delays: torch.Tensor, subcarrier_spacing: float
                           ) -> tuple[torch.Tensor, torch.Tensor]:
    r"""LS spatial signatures given the ToAs (seed 001, eq. 36).

    G_k = Σ_n [C^†]_{k,n} Ĥ_n with C = [b(τ_1) … b(τ_K)] ``(N, K)`` and C^† = (C^H C)^{-1} C^H;
    noise-free G_k = α_k a_r(θ_k) a_t(φ_k)^T.

    Args:
        H: ``(..., N, M_r, M_t)``.  delays: ``(..., K)`` seconds (NaN rows allowed: flagged).
        subcarrier_spacing: Δf.

    Returns:
        ``(G (..., K, M_r, M_t), valid (...))``; ``valid`` is False where the delays are not
        finite or C^H C is numerically singular (coincident ToAs), and G is NaN there.
    """
    N = H.shape[-3]
    rdt = real_dtype_of(H)
    tau = delays.to(rdt)
    finite = torch.isfinite(tau).all(-1)
    C = delay_dictionary(torch.nan_to_num(tau), subcarrier_spacing, N).to(H.dtype)  # (..., N, K)
    gram = C.mH @ C
    ev = torch.linalg.eigvalsh(gram)
    eps = torch.finfo(rdt).eps
    ok = finite & (ev[..., 0] > 1e3 * eps * ev[..., -1])
    eye = torch.eye(gram.shape[-1], dtype=gram.dtype, device=gram.device)
    gram = torch.where(ok[..., None, None], gram, eye)
    Cp = torch.linalg.solve(gram, C.mH)  # (..., K, N)
    G = torch.einsum("...kn,...nrt->...krt", Cp, H)
    G = torch.where(ok[..., None, None, None], G, torch.full_like(G, complex(math.nan, math.nan)))
    return G, ok


# ---------------------------------------------------------------------------------------
# P7-P8: rank-one fit and phase regression
# ---------------------------------------------------------------------------------------
def rank_one_phase_fit(G: torch.Tensor, rx_spacing: float = 0.5, tx_spacing: float = 0.5,
                       mode: str = "rank1") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""AoA, AoD and gain of each spatial signature G_k ≈ α_k a_r(θ_k) a_t(φ_k)^T (eqs. 37-41).

    * ``mode="rank1"`` (default): G_k ≈ σ_1 u_1 v_1^H; the phase field is
      P[r, t] = unwrap(∠u_1)[r] + unwrap(∠v̄_1)[t], so the 2-D regression on [r, t, 1]
      is two 1-D LS slopes plus an intercept; |α̂| = σ_1/√(M_r M_t).
    * ``mode="direct"`` (the seed's literal form): P = the 1-D unwrapped phase of vec(G_k)
      in column-major order (receive index fastest); 2-D LS on [r, t, 1]; the slopes are
      wrapped mod 2π (each column boundary adds the same multiple of 2π to the Tx slope);
      |α̂| = ‖G_k‖_F/√(M_r M_t).

    θ̂ = asin(wrap(μ_r)/(2π d_r)), φ̂ = asin(wrap(μ_t)/(2π d_t)), α̂ = |α̂| e^{jψ̂} (the phase at
    element (0, 0), i.e. relative to a_r[0] = a_t[0] = 1).

    Args:
        G: ``(..., M_r, M_t)`` complex.  rx_spacing, tx_spacing: d/λ.  mode: see above.

    Returns:
        ``(aoa (...), aod (...), gain (...) complex)``.

    Example:
        >>> m = torch.arange(4, dtype=torch.float64)
        >>> ar, at = torch.exp(1j * math.pi * m * math.sin(0.3)), torch.exp(1j * math.pi * m[:3] * math.sin(-0.5))
        >>> G = 2 * math.e ** 0.7j * torch.outer(ar, at)
        >>> th, ph, g = rank_one_phase_fit(G)
        >>> round(float(th), 12), round(float(ph), 12), round(float(g.abs()), 12), round(float(g.angle()), 12)
        (0.3, -0.5, 2.0, 0.7)
    """
    check_choice(mode, PHASE_FITS, "mode")
    Mr, Mt = G.shape[-2:]
    if mode == "rank1":
        U, s, Vh = torch.linalg.svd(G, full_matrices=False)
        u, v = U[..., :, 0], Vh[..., 0, :]  # G ≈ s0 u v  (v = first row of V^H)
        mu_r, c_r = _slope_intercept(_unwrap(torch.angle(u)))
        mu_t, c_t = _slope_intercept(_unwrap(torch.angle(v)))
        psi = c_r + c_t
        amp = s[..., 0] / math.sqrt(Mr * Mt)
    else:
        g = G.mT.reshape(*G.shape[:-2], Mr * Mt)  # column-major: r fastest
        P = _unwrap(torch.angle(g))
        rr = torch.arange(Mr, dtype=P.dtype, device=P.device).repeat(Mt)
        tt = torch.arange(Mt, dtype=P.dtype, device=P.device).repeat_interleave(Mr)
        T = torch.stack([rr, tt, torch.ones_like(rr)], -1)  # (M_r M_t, 3)
        coef = P @ torch.linalg.pinv(T).mT
        mu_r, mu_t, psi = coef.unbind(-1)
        amp = torch.linalg.vector_norm(g, dim=-1) / math.sqrt(Mr * Mt)
    aoa = torch.asin((_wrap(mu_r) / (2 * math.pi * rx_spacing)).clamp(-1, 1))
    aod = torch.asin((_wrap(mu_t) / (2 * math.pi * tx_spacing)).clamp(-1, 1))
    return aoa, aod, torch.polar(amp, psi)


# ---------------------------------------------------------------------------------------
# the estimator
# ---------------------------------------------------------------------------------------
def _reference_phase(layout: _ULA, angle: torch.Tensor) -> torch.Tensor:
    """2π p_0·u(θ)/λ: the phase of element 0 (zero for a ULA starting at the origin)."""
    ox, oy, _ = layout.offset
    return 2 * math.pi * (ox * torch.cos(angle) + oy * torch.sin(angle))


def paraming(H: torch.Tensor, rx_array, tx_array, num_sources: int, subcarrier_spacing: float,
             sub_sizes: tuple[int, int, int] | None = None, *, phase_fit: str = "rank1",
             svd: str = "subspace", oversampling: int = 3, power_iterations: int = 4,
             chunk_size: int = CHUNK_SIZE) -> EstimationResult:
    r"""PARAMING (seed 001, Algorithm 1): joint AoA, AoD, ToA and gains from bistatic CSI.

    Args:
        H: CSI ``(..., N, M_r, M_t)`` complex (e.g. LS estimates; any leading batch dims).
        rx_array, tx_array: the receive / transmit ULAs (``ArrayGeometry`` or ``ArrayModel``).
        num_sources: K.
        subcarrier_spacing: Δf in Hz.
        sub_sizes: (M_r', M_t', N'), default (⌈M_r/2⌉, ⌈M_t/2⌉, ⌈N/2⌉).
        phase_fit: ``"rank1"`` or ``"direct"`` (:func:`rank_one_phase_fit`).
        svd, oversampling, power_iterations, chunk_size: the truncated SVD
            (:func:`paraming_delays`).

    Returns:
        :class:`EstimationResult` with parameters ("aoa", "aod", "delay") (radians, seconds),
        rows sorted by delay, and extras ``gain`` ``(..., K)`` complex (α̂, relative to the
        arrays' phase reference as in the channel model), ``eigenvalues`` (the λ_k of (34)),
        ``singular_values`` (Σ_K).

    Example:
        >>> from isackit.geometry import ula
        >>> from isackit.impairments import ArrayModel
        >>> from isackit.signals import OFDMConfig, mimo_ofdm_channel
        >>> cfg = OFDMConfig(16, 1e6, 30e9)
        >>> aoa, aod = torch.tensor([0.2, -0.4], dtype=torch.float64), torch.tensor([0.1, 0.5], dtype=torch.float64)
        >>> tau = torch.tensor([150e-9, 420e-9], dtype=torch.float64)
        >>> H = mimo_ofdm_channel(ArrayModel(ula(6)), ArrayModel(ula(4)), aoa, aod, tau,
        ...                       torch.tensor([1.0 + 0j, 0.5j], dtype=torch.complex128), cfg)
        >>> res = paraming(H, ula(6), ula(4), 2, 1e6)
        >>> [round(v * 1e9, 6) for v in res.parameter("delay").tolist()]
        [150.0, 420.0]
        >>> [round(v, 9) for v in res.parameter("aoa").tolist()], [round(v, 9) for v in res.parameter("aod").tolist()]
        ([0.2, -0.4], [0.1, 0.5])
    """
    H = _check_csi(H)
    check_choice(phase_fit, PHASE_FITS, "phase_fit")
    N, Mr, Mt = H.shape[-3:]
    rx, tx = ula_phase_layout(rx_array), ula_phase_layout(tx_array)
    if rx.num_elements != Mr or tx.num_elements != Mt:
        raise ValueError(f"H has M_r = {Mr}, M_t = {Mt} but the arrays have {rx.num_elements} and "
                         f"{tx.num_elements} elements")
    with torch.no_grad():
        d = paraming_delays(H, num_sources, subcarrier_spacing, sub_sizes, svd=svd, oversampling=oversampling,
                            power_iterations=power_iterations, chunk_size=chunk_size)
        G, ok = fit_spatial_signatures(H, d["delays"], subcarrier_spacing)
        ok = ok & d["valid"]
        aoa, aod, gain = rank_one_phase_fit(torch.nan_to_num(G), rx.spacing, tx.spacing, phase_fit)
        gain = gain * torch.polar(torch.ones_like(aoa), -(_reference_phase(rx, aoa) + _reference_phase(tx, aod)))
        est = torch.stack([aoa, aod, d["delays"]], -1)
        ok = ok & torch.isfinite(est).flatten(-2).all(-1)
        est = torch.where(ok[..., None, None], est, torch.full_like(est, math.nan))
        gain = torch.where(ok[..., None], gain, torch.full_like(gain, complex(math.nan, math.nan)))
    count = torch.where(ok, num_sources, 0).to(torch.int64)
    return EstimationResult(estimates=est, parameters=("aoa", "aod", "delay"), count=count, valid=ok,
                            extras={"gain": gain, "eigenvalues": d["eigenvalues"],
                                    "singular_values": d["singular_values"]})


# ---------------------------------------------------------------------------------------
# Doppler (seed §III-D)
# ---------------------------------------------------------------------------------------
def doppler_from_phases(phases: torch.Tensor, subframe_period: float) -> torch.Tensor:
    r"""Doppler from per-sub-frame phases by 1-D regression (seed 001, eq. 43).

    ψ_s = ψ_0 + 2π ν s T_sf + e_s: unwrap along s, LS slope, ν̂ = slope/(2π T_sf).
    Unambiguous for |ν| < 1/(2 T_sf).

    Args:
        phases: ``(..., S)`` radians (S ≥ 2).  subframe_period: T_sf in seconds.

    Returns:
        ``(...)`` Hz.

    Example:
        >>> s = torch.arange(10, dtype=torch.float64)
        >>> psi = torch.remainder(0.4 + 2 * math.pi * 1500.0 * s * 13e-6, 2 * math.pi)
        >>> round(float(doppler_from_phases(psi, 13e-6)), 6)
        1500.0
    """
    check_positive(subframe_period, "subframe_period")
    if phases.shape[-1] < 2:
        raise ValueError(f"Doppler regression needs at least 2 sub-frames, got {phases.shape[-1]}")
    mu, _ = _slope_intercept(_unwrap(phases))
    return mu / (2 * math.pi * float(subframe_period))


def _perms(K: int, device) -> torch.Tensor:
    return torch.tensor(list(itertools.permutations(range(K))), device=device)


def _associate(est: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Permutations ``(..., S, K)`` that align the paths of every sub-frame with sub-frame 0.

    est ``(..., S, K, P)``; cost = Σ_k ‖(est_s[π(k)] - est_0[k]) ⊙ weights‖²; exhaustive over K!
    permutations for K ≤ 5, else the (delay-sorted) order.
    """
    K = est.shape[-2]
    idx = torch.arange(K, device=est.device).expand(*est.shape[:-2], K)
    if K == 1 or K > 5:
        return idx
    P = _perms(K, est.device)  # (Π, K)
    ref = est[..., :1, :, :]  # (..., 1, K, P)
    cand = est[..., P, :]  # (..., S, Π, K, P)
    cost = (((cand - ref.unsqueeze(-3)) * weights) ** 2).nan_to_num(math.inf).sum((-1, -2))  # (..., S, Π)
    return P[cost.argmin(-1)]


def paraming_doppler(H: torch.Tensor, rx_array, tx_array, num_sources: int, subcarrier_spacing: float,
                     subframe_period: float, sub_sizes: tuple[int, int, int] | None = None, *,
                     method: str = "per_subframe", phase_fit: str = "rank1", svd: str = "subspace",
                     oversampling: int = 3, power_iterations: int = 4,
                     chunk_size: int = CHUNK_SIZE) -> EstimationResult:
    r"""PARAMING with Doppler over S sub-frames (seed 001, §III-D).

    Per sub-frame s, PARAMING gives (θ, φ, τ, α)_{k,s}; the paths are associated with those of
    sub-frame 0 (exhaustive assignment on (θ, φ, τ Δf N) distances), and

    * ``method="per_subframe"`` (the seed): ν̂_k from the phases ∠α̂_{k,s} (43);
    * ``method="shared_geometry"`` (ours): (θ̄, φ̄, τ̄)_k = the sub-frame averages, the gains
      of every sub-frame are refit by LS on the full CSI with the atoms
      b(τ̄_k) ⊗ a_r(θ̄_k) ⊗ a_t(φ̄_k) (eq. 21), then the same regression.  A geometry error
      then adds the same phase in every sub-frame and does not bias the slope.

    Args:
        H: ``(..., S, N, M_r, M_t)`` per-sub-frame CSI (S ≥ 2).
        subframe_period: T_sf in seconds (sub-frame s starts at s T_sf).
        Others: as :func:`paraming`.

    Returns:
        :class:`EstimationResult` with parameters ("aoa", "aod", "delay", "doppler"), the
        geometry averaged over sub-frames, rows in sub-frame 0's (delay) order; extras
        ``gain`` ``(..., S, K)`` (the per-sub-frame gains used by the regression).
    """
    check_choice(method, DOPPLER_METHODS, "method")
    check_positive(subframe_period, "subframe_period")
    if H.ndim < 4 or H.shape[-4] < 2:
        raise ValueError(f"H must have shape (..., S, N, M_r, M_t) with S ≥ 2 sub-frames, got {tuple(H.shape)}")
    res = paraming(H, rx_array, tx_array, num_sources, subcarrier_spacing, sub_sizes, phase_fit=phase_fit,
                   svd=svd, oversampling=oversampling, power_iterations=power_iterations, chunk_size=chunk_size)
    N, Mr, Mt = H.shape[-3:]
    with torch.no_grad():
        est = res.estimates  # (..., S, K, 3)
        weights = torch.tensor([1.0, 1.0, float(subcarrier_spacing) * N], dtype=est.dtype, device=est.device)
        perm = _associate(est, weights)  # delays in units of T_res
        est = est.gather(-2, perm[..., None].expand_as(est))
        gain = res.extras["gain"].gather(-1, perm)
        ok = res.valid.all(-1)
        geo = est.mean(-3)  # (..., K, 3)
        if method == "shared_geometry":
            gain = path_gains(H, geo, rx_array, tx_array, subcarrier_spacing)
        nu = doppler_from_phases(torch.angle(gain).movedim(-2, -1), subframe_period)  # (..., K)
        out = torch.cat([geo, nu[..., None]], -1)
        ok = ok & torch.isfinite(out).flatten(-2).all(-1)
        out = torch.where(ok[..., None, None], out, torch.full_like(out, math.nan))
    count = torch.where(ok, num_sources, 0).to(torch.int64)
    return EstimationResult(estimates=out, parameters=("aoa", "aod", "delay", "doppler"), count=count, valid=ok,
                            extras={"gain": gain})


def path_gains(H: torch.Tensor, geometry: torch.Tensor, rx_array, tx_array, subcarrier_spacing: float
               ) -> torch.Tensor:
    r"""LS path gains given the geometry (seed 001, eq. 21): α̂ = (Ā^H Ā)^{-1} Ā^H vec(Ĥ).

    Column k of Ā is the atom b(τ_k) ⊗ a_r(θ_k) ⊗ a_t(φ_k) (H's layout (N, M_r, M_t)); Ā^H Ā
    is the Hadamard product of the three factor Gram matrices (separable atoms), so nothing
    of size N M_r M_t × K is formed.

    Args:
        H: CSI ``(..., N, M_r, M_t)``, or ``(..., S, N, M_r, M_t)`` to fit every sub-frame with
            the same geometry.
        geometry: ``(..., K, 3)`` (θ, φ, τ) in radians and seconds (NaN rows are fit as zeros:
            flag them yourself).
        rx_array, tx_array: the assumed arrays (any :class:`ArrayGeometry`/``ArrayModel``).
        subcarrier_spacing: Δf.

    Returns:
        ``(..., K)`` or ``(..., S, K)`` complex.
    """
    N = H.shape[-3]
    geo = torch.nan_to_num(geometry).to(real_dtype_of(H))
    th, ph, tau = geo.unbind(-1)
    ar = rx_array.steering(th).to(H.dtype)  # (..., M_r, K)
    at = tx_array.steering(ph).to(H.dtype)
    b = delay_dictionary(tau, subcarrier_spacing, N).to(H.dtype)  # (..., N, K)
    gram = (ar.mH @ ar) * (at.mH @ at) * (b.mH @ b)  # (..., K, K)
    if H.ndim == geometry.ndim + 2:  # a sub-frame axis
        rhs = torch.einsum("...nk,...rk,...tk,...snrt->...sk", b.conj(), ar.conj(), at.conj(), H)
        return torch.linalg.solve(gram.unsqueeze(-3), rhs.unsqueeze(-1)).squeeze(-1)
    rhs = torch.einsum("...nk,...rk,...tk,...nrt->...k", b.conj(), ar.conj(), at.conj(), H)
    return torch.linalg.solve(gram, rhs.unsqueeze(-1)).squeeze(-1)


# ---------------------------------------------------------------------------------------
# registered estimator
# ---------------------------------------------------------------------------------------
@register("paraming")
class PARAMING(Estimator):
    """PARAMING (seed 001) on bistatic CSI ``(..., N, M_r, M_t)`` (:func:`paraming`).

    Estimates ``(..., K, 3)`` ("aoa", "aod", "delay"), rows sorted by delay; the complex gains
    are in ``extras["gain"]``.
    """

    input_kind = "csi"
    input_ndim = 3
    parameters = ("aoa", "aod", "delay")

    def __init__(self, rx_array, tx_array, num_sources: int = 1, subcarrier_spacing: float = 960e3,
                 sub_sizes: tuple[int, int, int] | None = None, *, phase_fit: str = "rank1",
                 svd: str = "subspace", oversampling: int = 3, power_iterations: int = 4,
                 chunk_size: int = CHUNK_SIZE):
        self.rx_array = rx_array
        self.tx_array = tx_array
        self.num_sources = num_sources
        self.subcarrier_spacing = subcarrier_spacing
        self.sub_sizes = sub_sizes
        self.phase_fit = phase_fit
        self.svd = svd
        self.oversampling = oversampling
        self.power_iterations = power_iterations
        self.chunk_size = chunk_size

    def estimate(self, H: torch.Tensor) -> EstimationResult:
        return paraming(H, self.rx_array, self.tx_array, self.num_sources, self.subcarrier_spacing,
                        self.sub_sizes, phase_fit=self.phase_fit, svd=self.svd, oversampling=self.oversampling,
                        power_iterations=self.power_iterations, chunk_size=self.chunk_size)

    @classmethod
    def example(cls, dtype=torch.complex128, device="cpu", generator=None):
        from ..geometry import ula
        from ..impairments import ArrayModel
        from ..signals import OFDMConfig, mimo_ofdm_channel
        rx, tx = ula(6), ula(5)
        cfg = OFDMConfig(16, 960e3, 30e9)
        truth = torch.tensor([[-0.3123, 0.4417, 1.234e-7], [0.3871, -0.2035, 4.71e-7]], dtype=torch.float64)
        gains = torch.polar(torch.ones(2, dtype=torch.float64),
                            2 * math.pi * torch.rand(2, generator=generator, dtype=torch.float64))
        H = mimo_ofdm_channel(ArrayModel(rx), ArrayModel(tx), truth[:, 0], truth[:, 1], truth[:, 2], gains, cfg)
        return cls(rx, tx, 2, 960e3), H.to(dtype=dtype, device=device), truth
