r"""Cramér–Rao bound of multipath MIMO-OFDM channel parameters (bistatic sensing, seed 001).

Observation (seed 001, eqs. 6, 9 and 12): on subcarrier n of sub-frame s the radar receives
Y_n^{(s)} = H_n^{(s)} X_n^{(s)} + W, W with i.i.d. CN(0, σ²) entries, known pilots X (M_t × L),

    H_n^{(s)} = Σ_k α_k e^{j2π ν_k s T_sf} b_n(τ_k) a_r(θ_k) a_t(φ_k)^T,  b_n(τ) = e^{-j2π nΔf τ},

with a_r, a_t the TRUE responses of two :class:`~isackit.impairments.ArrayModel` objects.
Without Dopplers there is one sub-frame (S = 1) and no ν.  Unknowns (seed Appendix A)

    η = (θ_1..K, φ_1..K, τ_1..K, [ν_1..K,] Re α_1..K, Im α_1..K),  σ² known (it decouples).

Fisher information (52): F_pq = (2/σ²) Re Σ_{s,n} tr( (∂H/∂η_p)^H (∂H/∂η_q) R_{s,n} ),
R_{s,n} = X X^H (= L I for orthogonal pilots).  Two independent routes:

* ``method="closed_form"`` — the FIM blocks of Appendix A.  Every derivative is rank one,
  ∂H/∂η_p = w_p(s, n) u_p v_p^T with (u, v, w) =
  (ȧ_r, a_t, α d b) for θ_k, (a_r, ȧ_t, α d b) for φ_k, (a_r, a_t, -j2πnΔf α d b) for τ_k,
  (a_r, a_t, j2π s T_sf α d b) for ν_k, (a_r, a_t, d b) for Re α_k and (a_r, a_t, j d b)
  for Im α_k (d = e^{j2πν s T_sf}), so that

      F_pq = (2/σ²) Re[ (u_p^H u_q) Σ_{s,n} w̄_p w_q (v_q^T R_{s,n} v̄_p) ],

  which for orthogonal pilots is (2L/σ²) Re[(u_p^H u_q)(v_p^H v_q) Σ_{s,n} w̄_p w_q];
* ``method="slepian_bangs"`` — the generic FIM of :func:`~.fisher.fisher_deterministic`
  with autograd Jacobians of the mean vec(H_n^{(s)} X_n^{(s)}) built by
  :func:`~isackit.signals.mimo_ofdm_channel`.

They agree to rounding in float64 (``tests/test_bounds_channel.py``).  The bound on
(θ, φ, τ[, ν]) is the corresponding block of F⁻¹ (the gains marginalised,
:func:`~.fisher.crb_from_fim`) — eq. (53).

Closed forms for one path (unit-modulus ULA, orthogonal pilots, S = 1), a check:
var(τ) = σ² / (2L|α|² M_r M_t (2πΔf)² N(N²-1)/12),
var(θ) = σ² / (2L|α|² N M_t (2π d_r cos θ)² M_r(M_r²-1)/12).

Units: radians, seconds, Hz; variances in rad², s², Hz².  Shapes: angles, delays, Dopplers,
gains ``(..., K)``; pilots ``(..., [S,] N, M_t, L)``; outputs ``(..., P, P)``.  Work in
float64.  Differentiable in the path parameters (closed form).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .._checks import check_choice, check_positive, check_positive_int
from .._dtypes import complex_dtype
from ..impairments.base import ArrayModel
from ..signals.ofdm import OFDMConfig
from .fisher import crb_from_fim, fisher_deterministic, merge_complex, split_complex

__all__ = ["BistaticCRB", "crb_bistatic", "fisher_bistatic"]

_METHODS = ("closed_form", "slepian_bangs")


@dataclass(frozen=True)
class BistaticCRB:
    """A CRB on bistatic path parameters.

    Attributes:
        matrix: ``(..., P, P)`` over ``parameters`` × K, ordered (θ_1..K, φ_1..K, τ_1..K[, ν_1..K]).
        parameters: ``("aoa", "aod", "delay")`` or with ``"doppler"``.
        name: the label of the bound in tables and figures.
    """

    matrix: torch.Tensor
    parameters: tuple[str, ...]
    name: str = "CRB"

    @property
    def num_paths(self) -> int:
        return self.matrix.shape[-1] // len(self.parameters)

    def variance(self, parameter: str) -> torch.Tensor:
        """Diagonal of the bound for one parameter, ``(..., K)`` (rad², s² or Hz²)."""
        if parameter not in self.parameters:
            raise ValueError(f"unknown parameter {parameter!r}; this bound has {self.parameters}")
        i, K = self.parameters.index(parameter), self.num_paths
        return torch.diagonal(self.matrix, dim1=-2, dim2=-1)[..., i * K:(i + 1) * K]


def _inputs(rx_array, tx_array, aoa, aod, delays, gains, dopplers):
    for name, m in (("rx_array", rx_array), ("tx_array", tx_array)):
        if not isinstance(m, ArrayModel):
            raise TypeError(f"{name} must be an ArrayModel, got {type(m).__name__}")
    gains = torch.as_tensor(gains)
    if not gains.is_complex():
        raise TypeError("gains must be complex (..., K)")
    rdt = gains.real.dtype
    vals = [torch.as_tensor(x, dtype=rdt, device=gains.device) for x in (aoa, aod, delays)]
    if dopplers is not None:
        vals.append(torch.as_tensor(dopplers, dtype=rdt, device=gains.device))
    K = gains.shape[-1]
    for v in vals:
        if v.ndim < 1 or v.shape[-1] != K:
            raise ValueError(f"aoa, aod, delays (and dopplers) must have shape (..., K) with K = {K}")
    batch = torch.broadcast_shapes(gains.shape, *(v.shape for v in vals))
    return [v.expand(batch) for v in vals], gains.expand(batch)


def _pilot_gram(pilots, num_pilots, S: int, N: int, Mt: int, dtype, device):
    """R_{s,n} = X X^H ``(..., S, N, M_t, M_t)`` or None for L·I (returned as the scalar L)."""
    if pilots is None:
        return None, float(check_positive_int(num_pilots, "num_pilots"))
    X = torch.as_tensor(pilots).to(dtype=dtype, device=device)
    if X.ndim < 3 or X.shape[-2] != Mt or X.shape[-3] != N:
        raise ValueError(f"pilots must have shape (..., [S,] N={N}, M_t={Mt}, L), got {tuple(X.shape)}")
    if X.ndim < 4 or X.shape[-4] != S:
        X = X.unsqueeze(-4)
    return X @ X.mH, None


def fisher_bistatic(rx_array: ArrayModel, tx_array: ArrayModel, aoa, aod, delays, gains, config: OFDMConfig,
                    noise_var, *, pilots: torch.Tensor | None = None, num_pilots: int = 1, dopplers=None,
                    subframe_period: float | None = None, num_subframes: int | None = None,
                    method: str = "closed_form") -> torch.Tensor:
    r"""Fisher information of η = (θ, φ, τ, [ν,] Re α, Im α) for the bistatic OFDM channel.

    Args:
        rx_array, tx_array: true array models (receive M_r, transmit M_t elements).
        aoa, aod, delays: ``(..., K)`` radians, radians, seconds.
        gains: α ``(..., K)`` complex (its dtype sets the precision; use complex128).
        config: OFDM numerology (N, Δf).
        noise_var: σ² of the received samples (scalar or ``(...)``).
        pilots: known pilots X ``(..., [S,] N, M_t, L)``; ``None`` means orthogonal pilots with
            X X^H = ``num_pilots``·I (with ``num_pilots = 1`` the bound is that of the CSI
            Ĥ = H + E with E of variance σ² per entry).
        dopplers: ν ``(..., K)`` Hz, or ``None`` for a static channel (S = 1).
        subframe_period, num_subframes: T_sf and S (required with Dopplers).
        method: ``"closed_form"`` or ``"slepian_bangs"`` (see the module doc).

    Returns:
        ``(..., P, P)`` real symmetric, P = 5K (6K with Dopplers).
    """
    check_choice(method, _METHODS, "method")
    if not isinstance(config, OFDMConfig):
        raise TypeError(f"config must be an OFDMConfig, got {type(config).__name__}")
    check_positive(noise_var, "noise_var")
    (vals, alpha) = _inputs(rx_array, tx_array, aoa, aod, delays, gains, dopplers)
    th, ph, tau = vals[:3]
    nu = vals[3] if dopplers is not None else None
    if nu is not None:
        if subframe_period is None or num_subframes is None:
            raise ValueError("dopplers need subframe_period (T_sf) and num_subframes (S)")
        check_positive(subframe_period, "subframe_period")
        S = check_positive_int(num_subframes, "num_subframes")
    else:
        S = 1
    N, df = config.num_subcarriers, config.subcarrier_spacing
    Mt = tx_array.num_elements
    rdt, cdt = th.dtype, complex_dtype(th.dtype)
    R, L = _pilot_gram(pilots, num_pilots, S, N, Mt, cdt, th.device)
    s2 = torch.as_tensor(noise_var, dtype=rdt, device=th.device)
    if method == "slepian_bangs":
        return _fisher_generic(rx_array, tx_array, th, ph, tau, nu, alpha, config, s2, pilots, L, S,
                               subframe_period)
    K = th.shape[-1]
    ar, (dar, _) = rx_array.steering_and_derivatives(th)  # (..., M_r, K)
    at, (dat, _) = tx_array.steering_and_derivatives(ph)
    n = torch.arange(N, dtype=rdt, device=th.device)
    ph_tau = -2 * math.pi * df * n[:, None] * tau[..., None, :]
    b = torch.polar(torch.ones_like(ph_tau), ph_tau)
    s = torch.arange(S, dtype=rdt, device=th.device)
    if nu is not None:
        ph_nu = 2 * math.pi * subframe_period * s[:, None] * nu[..., None, :]
        d = torch.polar(torch.ones_like(ph_nu), ph_nu)
    else:
        d = torch.ones(*th.shape[:-1], 1, K, dtype=cdt, device=th.device)
    base = d[..., :, None, :] * b[..., None, :, :]  # (..., S, N, K) = d_s b_n
    one = torch.ones_like(alpha)
    ga = alpha[..., None, None, :] * base
    fn = (-2j * math.pi * df * n).to(cdt)[:, None]
    fs = (2j * math.pi * (subframe_period or 0.0) * s).to(cdt)[:, None, None]
    W = [ga, ga, ga * fn] + ([ga * fs] if nu is not None else []) + [base * one[..., None, None, :],
                                                                      1j * base * one[..., None, None, :]]
    U = [dar, ar, ar] + ([ar] if nu is not None else []) + [ar, ar]
    V = [at, dat, at] + ([at] if nu is not None else []) + [at, at]
    Wt = torch.cat(W, -1)  # (..., S, N, P)
    Ut = torch.cat(U, -1).to(cdt)  # (..., M_r, P)
    Vt = torch.cat(V, -1).to(cdt)  # (..., M_t, P)
    Gu = Ut.mH @ Ut  # u_p^H u_q
    if R is None:
        Gv = L * (Vt.mH @ Vt)  # v_q^T (L I) v̄_p = L v_p^H v_q
        C = torch.einsum("...snp,...snq->...pq", Wt.conj(), Wt)
        M = Gu * Gv * C
    else:
        # T[s,n,p,q] = v_q^T R_{sn} v̄_p
        RV = R @ Vt.conj().unsqueeze(-3).unsqueeze(-3)  # (..., S, N, M_t, P): R v̄_p
        T = torch.einsum("...mq,...snmp->...snpq", Vt, RV)
        M = Gu * torch.einsum("...snp,...snq,...snpq->...pq", Wt.conj(), Wt, T)
    F = 2.0 * M.real / s2[..., None, None]
    return 0.5 * (F + F.mT)


def _fisher_generic(rx_array, tx_array, th, ph, tau, nu, alpha, config, s2, pilots, L, S, T_sf):
    """The Slepian–Bangs route: autograd Jacobian of vec(H X) (or √L·vec(H) for orthogonal pilots)."""
    from ..signals.channels import mimo_ofdm_channel

    K = th.shape[-1]
    cdt = complex_dtype(th.dtype)
    parts = [th, ph, tau] + ([nu] if nu is not None else [])
    eta = torch.cat(parts + [split_complex(alpha).to(th.dtype)], -1)
    X = None if pilots is None else torch.as_tensor(pilots).to(cdt)
    s = torch.arange(S, dtype=th.dtype, device=th.device)

    def mean_fn(e):
        q = len(parts)
        th_, ph_, tau_ = e[..., :K], e[..., K:2 * K], e[..., 2 * K:3 * K]
        g = merge_complex(e[..., q * K:])
        if nu is not None:
            nu_ = e[..., 3 * K:4 * K]
            g = g[..., None, :] * torch.polar(torch.ones_like(nu_[..., None, :] * s[:, None]),
                                              2 * math.pi * T_sf * s[:, None] * nu_[..., None, :])
            th_, ph_, tau_ = (x[..., None, :].expand(g.shape) for x in (th_, ph_, tau_))
        else:
            g = g[..., None, :]
            th_, ph_, tau_ = th_[..., None, :], ph_[..., None, :], tau_[..., None, :]
        H = mimo_ofdm_channel(rx_array, tx_array, th_, ph_, tau_, g, config)  # (..., S, N, M_r, M_t)
        if X is None:
            return math.sqrt(L) * H
        Xs = X if X.ndim >= 4 and X.shape[-4] == S else X.unsqueeze(-4)
        return H @ Xs

    return fisher_deterministic(mean_fn, eta, s2, event_ndim=4)


def crb_bistatic(rx_array: ArrayModel, tx_array: ArrayModel, aoa, aod, delays, gains, config: OFDMConfig,
                 noise_var, *, pilots: torch.Tensor | None = None, num_pilots: int = 1, dopplers=None,
                 subframe_period: float | None = None, num_subframes: int | None = None,
                 method: str = "closed_form") -> BistaticCRB:
    r"""CRB on (θ, φ, τ[, ν]) of every path with the complex gains unknown (seed 001, eq. 53).

    Same arguments as :func:`fisher_bistatic`.

    Returns:
        :class:`BistaticCRB`; ``.variance("aoa")`` etc. give ``(..., K)`` diagonals.

    Example:
        >>> from isackit.geometry import ula
        >>> cfg = OFDMConfig(64, 960e3, 30e9)
        >>> crb = crb_bistatic(ArrayModel(ula(10)), ArrayModel(ula(8)), torch.tensor([0.0], dtype=torch.float64),
        ...                    torch.tensor([0.0], dtype=torch.float64), torch.tensor([1e-7], dtype=torch.float64),
        ...                    torch.tensor([1.0 + 0j], dtype=torch.complex128), cfg, 1.0, num_pilots=10)
        >>> closed = 1.0 / (2 * 10 * 10 * 8 * (2 * math.pi * 960e3) ** 2 * 64 * (64 ** 2 - 1) / 12)
        >>> abs(float(crb.variance("delay")[0]) / closed - 1) < 1e-9
        True
    """
    F = fisher_bistatic(rx_array, tx_array, aoa, aod, delays, gains, config, noise_var, pilots=pilots,
                        num_pilots=num_pilots, dopplers=dopplers, subframe_period=subframe_period,
                        num_subframes=num_subframes, method=method)
    K = torch.as_tensor(gains).shape[-1]
    names = ("aoa", "aod", "delay") + (("doppler",) if dopplers is not None else ())
    return BistaticCRB(crb_from_fim(F, list(range(len(names) * K))), names)
