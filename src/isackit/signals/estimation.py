r"""Least-squares MIMO-OFDM channel estimation from known pilots.

Per subcarrier n the receiver observes Y_n = H_n X_n + W_n with known pilots X_n
(M_t × L_p) and estimates (seed 001, LS channel estimate)

    Ĥ_n = Y_n X_n^† = Y_n X_n^H (X_n X_n^H)^{-1},

which requires L_p ≥ M_t and X_n of full row rank.  The Gram matrix X_n X_n^H is
factorised by Cholesky (``torch.linalg.cholesky_ex``); a failed factorisation (rank
deficiency) raises a ValueError instead of returning garbage.  For orthogonal pilots
(X X^H = L_p I, :func:`~isackit.signals.orthogonal_pilots`) Ĥ = Y X^H / L_p and the
estimation error is CN(0, σ²/L_p) per entry.

Batched over any leading dims (and over the subcarrier axis, which is just another batch
dim here); follows the dtype/device of Y; differentiable in Y and X.
"""

from __future__ import annotations

import torch

from .._checks import check_complex, check_finite, check_ndim_at_least
from .._dtypes import is_numerically_singular

__all__ = ["ls_channel_estimate", "ls_subframe_estimates"]


def ls_channel_estimate(Y: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    r"""Ĥ = Y X^H (X X^H)^{-1} per subcarrier (and per batch entry).

    Args:
        Y: ``(..., N, M_r, L_p)`` received pilots (``(..., M_r, L_p)`` also works: any
            leading dims are batch dims).
        X: ``(..., N, M_t, L_p)`` known pilots, broadcastable against Y's leading dims
            (e.g. ``(M_t, L_p)`` shared by all subcarriers and trials).

    Returns:
        ``(..., N, M_r, M_t)`` in Y's dtype/device.

    Raises:
        ValueError: L_p differs between Y and X, L_p < M_t, or some X_n is (numerically)
            rank deficient.

    Example:
        >>> from isackit.signals import orthogonal_pilots
        >>> X = orthogonal_pilots(2, 4, torch.complex128)
        >>> H = torch.randn(3, 2, dtype=torch.complex128)
        >>> torch.allclose(ls_channel_estimate(H @ X, X), H)
        True
    """
    check_ndim_at_least(Y, 2, "Y", "(..., N, M_r, L_p)")
    check_ndim_at_least(X, 2, "X", "(..., N, M_t, L_p)")
    check_complex(Y, "Y")
    check_complex(X, "X")
    check_finite(Y, "Y")
    check_finite(X, "X")
    mt, lp = X.shape[-2], X.shape[-1]
    if Y.shape[-1] != lp:
        raise ValueError(f"Y has L_p = {Y.shape[-1]} pilot symbols but X has {lp}")
    if lp < mt:
        raise ValueError(f"least squares needs L_p >= M_t pilot symbols (X_n must have full row rank), "
                         f"got L_p = {lp} < M_t = {mt}")
    X = X.to(device=Y.device, dtype=Y.dtype)
    Xh = X.conj().transpose(-1, -2)
    gram = X @ Xh  # (..., M_t, M_t)
    chol, info = torch.linalg.cholesky_ex(gram)
    # a numerically singular Gram matrix (condition number above 1/(10 eps)) gives a
    # meaningless least-squares solution: X_n is (numerically) rank deficient
    if bool((info != 0).any()) or bool(is_numerically_singular(torch.linalg.eigvalsh(gram)).any()):
        raise ValueError("pilot matrix X_n is rank deficient (X_n X_n^H is singular); "
                         "least squares needs X_n (M_t × L_p) of full row rank")
    # Ĥ G = Y X^H with G Hermitian  <=>  G Ĥ^H = X Y^H
    rhs = X @ Y.conj().transpose(-1, -2)
    return torch.cholesky_solve(rhs, chol).conj().transpose(-1, -2).resolve_conj()


def ls_subframe_estimates(Y: torch.Tensor, X: torch.Tensor, symbols_per_subframe: int) -> torch.Tensor:
    r"""LS channel estimates per sub-frame from resource grids (seed 001, eq. 9).

    Sub-frame s holds the OFDM symbols sL … sL + L - 1 (L = ``symbols_per_subframe``); per
    subcarrier n, Ĥ_n^{(s)} = Y_n^{(s)} X_n^{(s)†} with Y_n^{(s)} = [y_{n,sL} … y_{n,sL+L-1}]
    (:func:`ls_channel_estimate`).

    Args:
        Y: received grid ``(..., S·L, N, M_r)`` (symbol axis before the subcarrier axis, as
            :func:`~isackit.signals.received_signal` returns it with ``grid_dims=2``).
        X: transmitted grid ``(..., S·L, N, M_t)``, broadcastable against Y's leading dims.
        symbols_per_subframe: L ≥ M_t.

    Returns:
        ``(..., S, N, M_r, M_t)``.

    Example:
        >>> from isackit.signals import orthogonal_pilots
        >>> H = torch.randn(2, 4, 3, 2, dtype=torch.complex128)          # S=2, N=4, M_r=3, M_t=2
        >>> P = orthogonal_pilots(2, 2, torch.complex128).T               # (L=2, M_t=2)
        >>> X = P[None, :, None, :].expand(2, 2, 4, 2).reshape(4, 4, 2)   # (S·L, N, M_t)
        >>> Y = torch.einsum("snrt,slnt->slnr", H, X.reshape(2, 2, 4, 2)).reshape(4, 4, 3)
        >>> torch.allclose(ls_subframe_estimates(Y, X, 2), H)
        True
    """
    check_ndim_at_least(Y, 3, "Y", "(..., S·L, N, M_r)")
    check_ndim_at_least(X, 3, "X", "(..., S·L, N, M_t)")
    if isinstance(symbols_per_subframe, bool) or not isinstance(symbols_per_subframe, int) or symbols_per_subframe < 1:
        raise ValueError(f"symbols_per_subframe must be a positive integer, got {symbols_per_subframe!r}")
    L = symbols_per_subframe
    total = Y.shape[-3]
    if total % L or X.shape[-3] != total:
        raise ValueError(f"Y and X must hold S·L OFDM symbols with L = {L}; got {total} and {X.shape[-3]}")
    S = total // L

    def group(G: torch.Tensor) -> torch.Tensor:  # (..., S·L, N, M) -> (..., S, N, M, L)
        return G.reshape(*G.shape[:-3], S, L, *G.shape[-2:]).movedim(-3, -1)

    return ls_channel_estimate(group(Y), group(X))
