r"""Operation counts of the S1 estimators (seed 001 §IV, eqs. 14 and 44-48; Fig. 3).

Unit: real floating-point operations (additions + multiplications).  A complex multiplication
counts 6, a complex addition 2, a complex multiply–add 8; a complex (real) matrix
decomposition costs 4× (1×) the real flop counts of Golub & Van Loan, *Matrix Computations*
(3rd ed.), Table 5.4.1; a length-n complex FFT costs 5 n log2 n.  These are leading-order
counts, as in the seed.

* MLE (14): (G_τ G_θ G_φ G_α)^K · N L M_r (M_t + K) complex multiply–adds.
* DML (45) and MUSIC (46), D = M_r M_t N (the vectorised CSI), S snapshots, G voxels:
  DML  ≈ S D² + G (D² + 2D) complex mults and as many adds;
  MUSIC ≈ S D² + c_e D³ + G (D (D - K) + (D - K)) (c_e = 9, a Hermitian eigensolver's constant).
* PARAMING (44), seed form: the R-SVD "Σ, U_1, V" of X_1 (m × n, m ≥ n after transposing:
  6mn² + 20n³), Φ (mnK + mK² complex MACs), QZ (30 K³), CORDIC (K I_C iterations of 3 adds +
  2 shifts), the LS fit (M_r M_t N K + N K² + K³ complex MACs), K rank-one SVDs and regressions.
* PARAMING as implemented here (:mod:`isackit.estimators.parametric`): 2(q + 1) + 1 fast
  Hankel products of K + p vectors (two length-N FFTs per vector column and N products of
  (M_t'M_r') × (K_tK_r) matrices each), q + 1 QR factorisations, the Rayleigh–Ritz SVD, then
  the same LS / rank-one / regression steps.
* The grid baselines as implemented here (separable maps, never a D × G dictionary):
  Bartlett = the three contractions of the CSI with the 1-D dictionaries (delay axis first),
  |C|²/‖x‖² and a 3 × 3 × 3 local-maximum search; DML (AP) = the same contraction plus
  K + sweeps·K maps built from outer products of 1-D Gram tables; MUSIC = the smoothed
  covariance, its eigendecomposition and K separable projections; RootMUSIC-2D = two
  covariances, their eigendecompositions and the polynomial roots (companion eigenvalues).
* IFFT-C2VNN: the IDFT (M_r M_t FFTs of length N), the PDP, the peak search, and K forward
  passes (:func:`isackit.learning.c2vnn.forward_multiplications`, a multiplication paired with
  an addition).

Example:
    >>> ops = operation_counts(8, 10, 64, 3)
    >>> ops["MLE (eq. 14)"] > ops["DML (eq. 45)"] > ops["PARAMING (eq. 44)"] > ops["IFFT-C2VNN (W=7)"]
    True
"""

from __future__ import annotations

import math

from ..._checks import check_choice
from ...estimators.subspace import ROOT_MUSIC_2D_FIRST
from ...learning.c2vnn import C2VNNConfig, forward_multiplications

__all__ = ["bartlett_separable_ops", "c2vnn_ops", "dml_ap_ops", "dml_ops", "mle_ops", "music_ops",
           "music_smoothed_ops", "operation_counts", "paraming_ops", "paraming_ops_implemented",
           "root_music_2d_ops"]

CMAC, CMUL, CADD = 8.0, 6.0, 2.0


def _svd_flops(m: int, n: int) -> float:
    """R-SVD "Σ, U_1, V" of an m × n complex matrix (GVL Table 5.4.1, ×4 for complex)."""
    m, n = max(m, n), min(m, n)
    return 4.0 * (6.0 * m * n * n + 20.0 * n ** 3)


def mle_ops(Mt: int, Mr: int, N: int, K: int, L: int = 10, G_theta: int = 181, G_phi: int = 181,
            G_tau: int = 10, G_alpha: int = 1) -> float:
    """Brute-force grid MLE (eq. 14)."""
    return CMAC * float(G_tau * G_theta * G_phi * G_alpha) ** K * N * L * Mr * (Mt + K)


def dml_ops(Mt: int, Mr: int, N: int, K: int, S: int = 10, G: int = 181 * 181 * 256) -> float:
    """Single-source DML score on a dictionary grid (eq. 45)."""
    D = Mr * Mt * N
    mult = S * D ** 2 + G * (D ** 2 + 2 * D)
    add = S * D ** 2 + G * (D ** 2 + 2 * D - 3)
    return CMUL * mult + CADD * add


def music_ops(Mt: int, Mr: int, N: int, K: int, S: int = 10, G: int = 181 * 181 * 256, c_e: float = 9.0
              ) -> float:
    """MUSIC on a dictionary grid with a D × D covariance (eq. 46)."""
    D = Mr * Mt * N
    mult = S * D ** 2 + c_e * D ** 3 + G * (D * (D - K) + (D - K))
    return (CMUL + CADD) * mult


def _tail_ops(Mt: int, Mr: int, N: int, K: int) -> float:
    """LS spatial signatures (36), K rank-one fits and phase regressions (37)-(41)."""
    ls = CMAC * (Mr * Mt * N * K + N * K * K + K ** 3)
    rank1 = K * (_svd_flops(Mr, Mt) + 4.0 * (Mr + Mt) * 2)
    return ls + rank1


def paraming_ops(Mt: int, Mr: int, N: int, K: int, sub_sizes=None, cordic_iterations: int = 16) -> float:
    """PARAMING in the seed's form (eq. 44): full R-SVD of X_1."""
    mr, mt, nn = sub_sizes or ((Mr + 1) // 2, (Mt + 1) // 2, (N + 1) // 2)
    m = mt * nn * mr
    n = (Mt - mt + 1) * (N - nn) * (Mr - mr + 1)
    phi = CMAC * (m * n * K + m * K * K)
    return _svd_flops(m, n) + phi + 4.0 * 30 * K ** 3 + 5.0 * K * cordic_iterations + _tail_ops(Mt, Mr, N, K)


def paraming_ops_implemented(Mt: int, Mr: int, N: int, K: int, sub_sizes=None, power_iterations: int = 4,
                             oversampling: int = 3) -> float:
    """PARAMING with the FFT-based Hankel products and block subspace iteration (this library)."""
    mr, mt, nn = sub_sizes or ((Mr + 1) // 2, (Mt + 1) // 2, (N + 1) // 2)
    kt, kr, kn1 = Mt - mt + 1, Mr - mr + 1, N - nn
    Pi, Pj = mt * mr, kt * kr
    ell = K + oversampling
    fft = 5.0 * N * math.log2(N)

    def product(cols: int, p_in: int, p_out: int) -> float:
        return cols * (p_in * fft + p_out * fft) + CMAC * N * Pi * Pj * cols

    products = (power_iterations + 1) * (product(ell, Pj, Pi) + product(ell, Pi, Pj)) + product(K, Pj, Pi)
    Di, Dj = nn * Pi, kn1 * Pj
    qr = (2 * power_iterations + 1) * CMAC * 2 * ell * ell * max(Di, Dj)
    rr = _svd_flops(Dj, ell) + CMAC * Di * ell * K
    phi = CMAC * Di * K * K + 4.0 * 30 * K ** 3
    return products + qr + rr + phi + _tail_ops(Mt, Mr, N, K)


def _contraction(Mt: int, Mr: int, N: int, Gr: int, Gt: int, Gd: int) -> float:
    return CMAC * (N * Mr * Mt * Gd + Gd * Mr * Mt * Gt + Gd * Mr * Gt * Gr)


def bartlett_separable_ops(Mt: int, Mr: int, N: int, Gr: int = 181, Gt: int = 181, Gd: int = 65) -> float:
    """Grid-only Bartlett on separable maps: contraction, |C|²/‖x‖², 27-neighbour maxima."""
    G = Gr * Gt * Gd
    return _contraction(Mt, Mr, N, Gr, Gt, Gd) + 4.0 * G + 27.0 * G


def dml_ap_ops(Mt: int, Mr: int, N: int, K: int, sweeps: int = 2, Gr: int = 181, Gt: int = 181, Gd: int = 65
               ) -> float:
    """K-source DML by alternating projection on separable maps (grid-only)."""
    G = Gr * Gt * Gd
    total = _contraction(Mt, Mr, N, Gr, Gt, Gd)
    steps = [k for k in range(K)] + [K - 1] * (sweeps * K)  # number of fixed paths per AP step
    for s in steps:
        total += G * (4.0 + 10.0 * s + 4.0 * s + 10.0 * s * (s - 1) / 2 + 2.0)
    return total


def music_smoothed_ops(Mt: int, Mr: int, N: int, K: int, windows=(5, 4, 16), Gr: int = 181, Gt: int = 181,
                       Gd: int = 65) -> float:
    """Grid-only MUSIC with spatial–frequency smoothing (D = M_r' M_t' N')."""
    wr, wt, wn = windows
    D = wr * wt * wn
    I = (Mr - wr + 1) * (Mt - wt + 1) * (N - wn + 1)
    G = Gr * Gt * Gd
    energy = CMAC * K * (D * Gr + wt * wn * Gr * Gt + wn * Gr * Gt * Gd)
    return CMAC * D * D * I + 4.0 * 9.0 * D ** 3 + energy + 4.0 * G + 27.0 * G


def root_music_2d_ops(Mt: int, Mr: int, N: int, K: int, first: str = "both") -> float:
    """RootMUSIC-2D: the full covariance and its eigendecomposition, then per rooting order
    (``first``: "aoa", "aod" or "both", as :func:`~isackit.estimators.root_music_2d`) the
    first side's covariance, eigendecomposition and polynomial roots, the K restricted
    polynomials and their roots; "both" adds the null spectrum of the 2 × K candidate pairs."""
    check_choice(first, ROOT_MUSIC_2D_FIRST, "first")
    D = Mr * Mt

    def order(m1: int, m2: int) -> float:  # first side m1 elements, second side m2
        cov = CMAC * m1 * m1 * N * m2
        roots = 4.0 * 10.0 * ((2 * m1 - 2) ** 3 + K * (2 * m2 - 2) ** 3)
        return cov + 4.0 * 9.0 * m1 ** 3 + roots + CMAC * K * (D * m2 * K + m2 * m2 * K)

    full = CMAC * D * D * N + 4.0 * 9.0 * D ** 3
    if first == "aoa":
        return full + order(Mr, Mt)
    if first == "aod":
        return full + order(Mt, Mr)
    return full + order(Mr, Mt) + order(Mt, Mr) + 2 * CMAC * K * (D * K + D)


def c2vnn_ops(Mt: int, Mr: int, N: int, K: int, window: int = 7, config: C2VNNConfig | None = None) -> float:
    """IFFT-C2VNN inference: IDFT, PDP, peak search and K forward passes."""
    cfg = (config or C2VNNConfig()).model_copy(update={"window": window})
    D = Mr * Mt
    idft = D * 5.0 * N * math.log2(N)
    pdp = (CMUL + CADD) * N * D
    peaks = 3.0 * N
    net = 2.0 * forward_multiplications(cfg, D)["total"]
    norm = window * D * (CMUL + CADD)
    return idft + pdp + peaks + K * (net + norm)


def operation_counts(Mt: int, Mr: int, N: int, K: int, *, windows=(3, 5, 7), delay_grid: int | None = None,
                     config: C2VNNConfig | None = None) -> dict[str, float]:
    """Every method's count at one size (the Fig. 3 settings of ``shared/design/s1-bistatic.md`` §2.7:
    MLE with G_α = 1, G_θ = G_φ = 181, G_τ = 10; DML/MUSIC on 181 × 181 × 4N voxels, S = 10)."""
    G = 181 * 181 * (4 * N if delay_grid is None else delay_grid)
    out = {"MLE (eq. 14)": mle_ops(Mt, Mr, N, K), "DML (eq. 45)": dml_ops(Mt, Mr, N, K, G=G),
           "MUSIC (eq. 46)": music_ops(Mt, Mr, N, K, G=G), "PARAMING (eq. 44)": paraming_ops(Mt, Mr, N, K),
           "PARAMING (this library)": paraming_ops_implemented(Mt, Mr, N, K)}
    for w in windows:
        out[f"IFFT-C2VNN (W={w})"] = c2vnn_ops(Mt, Mr, N, K, w, config)
    return out
