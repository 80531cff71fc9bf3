r"""Cramér–Rao bounds for direction finding and for paths with unknown complex gains.

Every function takes an :class:`~isackit.impairments.ArrayModel` and uses its (possibly
impaired, batched) response, so the bound is that of the array the data come from.  Two
independent routes compute each bound:

* ``method="closed_form"``: the matrix formulas below, with D = ∂A/∂θ from
  ``ArrayModel.steering_and_derivatives``;
* ``method="slepian_bangs"``: the generic Fisher information of :mod:`.fisher` with autograd
  Jacobians of ``ArrayModel.steering``, all nuisance parameters in η, marginalised by
  :func:`~.fisher.crb_from_fim`.

They agree to rounding in float64 (``tests/test_bounds.py``).

Closed forms (Stoica & Nehorai 1989/1990; Stoica, Larsson & Gershman, IEEE SPL 2001), with
Π⊥_A = I - A(A^H A)⁻¹A^H:

* stochastic model, x_n ~ CN(0, R), R = A P A^H + σ² I, P an unknown Hermitian source
  covariance, σ² unknown:  CRB_θ = σ²/(2N) {Re[(D^H Π⊥_A D) ⊙ (P A^H R⁻¹ A P)^T]}⁻¹;
* deterministic model, x_n = A s_n + w_n with unknown signals:
  CRB_θ = σ²/(2N) {Re[(D^H Π⊥_A D) ⊙ P̂^T]}⁻¹, P̂ = (1/N) Σ_n s_n s_n^H;
* one path with an unknown complex gain, y = α b(θ) + w with b = (F^T a(θ)) ⊙ s (seed 004,
  eq. for the AoD with precoder F (M × T) and pilots s):
  CRB_θ = σ² / (2|α|² (‖ḃ‖² - |b^H ḃ|²/‖b‖²)).

Angles are azimuths in radians (elevation, if given, is known); CRBs are in rad².
Shapes: angles ``(..., K)``, source covariance ``(..., K, K)``, outputs ``(..., K, K)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .._checks import (
    check_choice,
    check_finite,
    check_last_dims,
    check_ndim_at_least,
    check_positive,
    check_positive_int,
)
from .._dtypes import REAL_DTYPES, complex_dtype, is_numerically_singular
from ..impairments.base import ArrayModel
from .fisher import (
    crb_from_fim,
    fisher_deterministic,
    fisher_stochastic,
    merge_complex,
    split_complex,
)

__all__ = [
    "crb_doa_deterministic",
    "crb_doa_stochastic",
    "crb_single_path",
    "crb_unknown_gains",
]

_METHODS = ("closed_form", "slepian_bangs")


def _check_model(array_model) -> ArrayModel:
    if not isinstance(array_model, ArrayModel):
        raise TypeError(f"array_model must be an ArrayModel, got {type(array_model).__name__}")
    return array_model


def _angles(angles) -> torch.Tensor:
    t = torch.as_tensor(angles)
    if t.dtype not in REAL_DTYPES:
        raise TypeError(f"angles must be a float32/float64 tensor (..., K) in radians, got {t.dtype}")
    check_ndim_at_least(t, 1, "angles", "(..., K)")
    return check_finite(t, "angles")


def _check_sources(array_model: ArrayModel, k: int) -> None:
    """K < M: with K ≥ M steering vectors Π⊥_A = 0 and the angles are not identifiable."""
    m = array_model.num_elements
    if k >= m:
        raise ValueError(f"a DOA CRB needs fewer sources than array elements, got K = {k} sources for M = {m}")


def _projector_perp(A: torch.Tensor) -> torch.Tensor:
    G = A.mH @ A
    if bool(is_numerically_singular(torch.linalg.eigvalsh(G)).any()):
        raise ValueError("the steering vectors of the sources are linearly dependent (equal angles, or an "
                         "ambiguity of the array): the angles are not identifiable and the CRB is not defined")
    eye = torch.eye(A.shape[-2], dtype=A.dtype, device=A.device)
    return eye - A @ torch.linalg.solve(G, A.mH)


def _hermitian_params(P: torch.Tensor) -> torch.Tensor:
    """Hermitian ``(..., K, K)`` → real ``(..., K²)``: diagonal, then Re/Im of the upper triangle."""
    k = P.shape[-1]
    iu = torch.triu_indices(k, k, offset=1, device=P.device)
    up = P[..., iu[0], iu[1]]
    return torch.cat([torch.diagonal(P, dim1=-2, dim2=-1).real, up.real, up.imag], dim=-1)


def _hermitian_from_params(x: torch.Tensor, k: int) -> torch.Tensor:
    iu = torch.triu_indices(k, k, offset=1, device=x.device)
    n_up = iu.shape[1]
    diag, re, im = x[..., :k], x[..., k:k + n_up], x[..., k + n_up:k + 2 * n_up]
    cdtype = complex_dtype(x.dtype)
    # built from a constant basis (no in-place writes into tensors carrying tangents)
    rows, cols = iu[0], iu[1]
    z = torch.complex(re, im)  # (..., n_up)
    basis = torch.zeros(n_up, k, k, dtype=cdtype, device=x.device)
    basis[torch.arange(n_up, device=x.device), rows, cols] = 1.0
    U = torch.einsum("...u,uab->...ab", z, basis)
    return U + U.mH + torch.diag_embed(diag.to(cdtype))


def crb_doa_stochastic(array_model: ArrayModel, angles, source_cov: torch.Tensor, noise_var,
                       num_snapshots: int, elevation=None, method: str = "closed_form") -> torch.Tensor:
    r"""Stochastic (unconditional) CRB on the azimuths, ``(..., K, K)`` in rad².

    Model: N i.i.d. snapshots x ~ CN(0, A P A^H + σ² I) with A the (impaired) response of
    ``array_model``; unknowns θ (K), the Hermitian P (K² real parameters), σ².
    CRB = σ²/(2N) {Re[(D^H Π⊥_A D) ⊙ (P A^H R⁻¹ A P)^T]}⁻¹.

    Args:
        array_model: the TRUE array model (impairments applied; may be batched).
        angles: ``(..., K)`` azimuths, radians.
        source_cov: P, ``(..., K, K)`` Hermitian PSD (correlated sources allowed, P A^H R⁻¹ A P
            must be non-singular).
        noise_var: σ², scalar or ``(...)``.
        num_snapshots: N.
        elevation: known elevations ``(..., K)`` or None.
        method: ``"closed_form"`` or ``"slepian_bangs"`` (autograd, independent route).
    """
    array_model = _check_model(array_model)
    check_choice(method, _METHODS, "method")
    th = _angles(angles)
    check_last_dims(source_cov, (th.shape[-1], th.shape[-1]), "source_cov", "(..., K, K)")
    check_positive(noise_var, "noise_var")
    num_snapshots = check_positive_int(num_snapshots, "num_snapshots")
    k = th.shape[-1]
    _check_sources(array_model, k)
    cdtype = complex_dtype(th.dtype)
    P = source_cov.to(cdtype)
    s2 = torch.as_tensor(noise_var, dtype=th.dtype, device=th.device)
    if method == "closed_form":
        A, (D, _) = array_model.steering_and_derivatives(th, elevation)
        m = A.shape[-2]
        R = A @ P @ A.mH + s2[..., None, None] * torch.eye(m, dtype=cdtype, device=th.device)
        H = D.mH @ _projector_perp(A) @ D
        G = P @ A.mH @ torch.linalg.solve(R, A) @ P
        fim = (H * G.mT).real * (2.0 * num_snapshots / s2[..., None, None])
        return crb_from_fim(fim)
    batch = torch.broadcast_shapes(th.shape[:-1], P.shape[:-2], s2.shape)
    eta = torch.cat([th.expand(*batch, k), _hermitian_params(P.expand(*batch, k, k)).to(th.dtype),
                     s2.expand(batch)[..., None]], dim=-1)

    def cov_fn(e):
        A = array_model.steering(e[..., :k], elevation)
        Pm = _hermitian_from_params(e[..., k:k + k * k], k)
        eye = torch.eye(A.shape[-2], dtype=A.dtype, device=A.device)
        return A @ Pm @ A.mH + e[..., -1, None, None] * eye

    return crb_from_fim(fisher_stochastic(cov_fn, eta, num_snapshots), list(range(k)))


def crb_doa_deterministic(array_model: ArrayModel, angles, noise_var, *, signals: torch.Tensor | None = None,
                          source_cov: torch.Tensor | None = None, num_snapshots: int | None = None,
                          elevation=None, method: str = "closed_form") -> torch.Tensor:
    r"""Deterministic (conditional) CRB on the azimuths, ``(..., K, K)`` in rad².

    Model: x_n = A s_n + w_n, w ~ CN(0, σ² I), unknown θ and signals s_n (n = 1..N).
    CRB = σ²/(2N) {Re[(D^H Π⊥_A D) ⊙ P̂^T]}⁻¹, P̂ = S S^H / N.

    Give either ``signals`` S ``(..., K, N)`` or ``source_cov`` P̂ ``(..., K, K)`` with
    ``num_snapshots`` (the closed form only needs P̂; with the true P it is the usual
    large-N value).  ``method="slepian_bangs"`` needs ``signals`` (its parameter vector holds
    θ and Re/Im of every s_n: K(2N+1) real parameters).
    """
    array_model = _check_model(array_model)
    check_choice(method, _METHODS, "method")
    th = _angles(angles)
    check_positive(noise_var, "noise_var")
    k = th.shape[-1]
    _check_sources(array_model, k)
    cdtype = complex_dtype(th.dtype)
    s2 = torch.as_tensor(noise_var, dtype=th.dtype, device=th.device)
    if signals is not None:
        check_ndim_at_least(signals, 2, "signals", "(..., K, N)")
        if signals.shape[-2] != k:
            raise ValueError(f"signals must have shape (..., K={k}, N), got {tuple(signals.shape)}")
        S = signals.to(cdtype)
        n = S.shape[-1]
        Phat = S @ S.mH / n
    elif method == "slepian_bangs":
        raise ValueError("method='slepian_bangs' needs signals=(..., K, N)")
    else:
        if source_cov is None or num_snapshots is None:
            raise ValueError("give signals=(..., K, N), or source_cov=(..., K, K) and num_snapshots")
        check_last_dims(source_cov, (k, k), "source_cov", "(..., K, K)")
        Phat, n = source_cov.to(cdtype), check_positive_int(num_snapshots, "num_snapshots")
    if method == "closed_form":
        A, (D, _) = array_model.steering_and_derivatives(th, elevation)
        H = D.mH @ _projector_perp(A) @ D
        fim = (H * Phat.mT).real * (2.0 * n / s2[..., None, None])
        return crb_from_fim(fim)
    batch = torch.broadcast_shapes(th.shape[:-1], S.shape[:-2])
    eta = torch.cat([th.expand(*batch, k), split_complex(S.expand(*batch, k, n).reshape(*batch, k * n))], dim=-1)

    def mean_fn(e):
        A = array_model.steering(e[..., :k], elevation)
        return A @ merge_complex(e[..., k:]).reshape(*e.shape[:-1], k, n)

    fim = fisher_deterministic(mean_fn, eta, s2, event_ndim=2)
    return crb_from_fim(fim, list(range(k)))


def crb_unknown_gains(response_fn: Callable[[torch.Tensor], torch.Tensor], params: torch.Tensor,
                      gains: torch.Tensor, noise_var) -> torch.Tensor:
    r"""Deterministic CRB on η for y = B(η) α + w with unknown complex gains α (nuisance).

    A generic multi-path model: column l of B(η) ``(..., D, L)`` is the noise-free response
    of path l (e.g. vec(a_r(θ_l) (a_t(θ_l)^T f) (x ⊙ b(τ_l))^T) for an angle–delay CRB),
    α ``(..., L)`` the complex gains, w ~ CN(0, σ² I).  The FIM is that of
    η' = (η, Re α, Im α) by :func:`~.fisher.fisher_deterministic`; the returned block is
    marginalised over the gains.

    Args:
        response_fn: ``(..., Q)`` → ``(..., D, L)`` complex, batch-element-wise.
        params: η, ``(..., Q)`` real.
        gains: α, ``(..., L)`` complex.
        noise_var: σ².

    Returns:
        ``(..., Q, Q)``.
    """
    if not isinstance(gains, torch.Tensor) or not gains.is_complex():
        raise TypeError("gains must be a complex tensor (..., L)")
    q = params.shape[-1]
    batch = torch.broadcast_shapes(params.shape[:-1], gains.shape[:-1])
    eta = torch.cat([params.expand(*batch, q), split_complex(gains.expand(*batch, gains.shape[-1])).to(params.dtype)],
                    dim=-1)

    def mean_fn(e):
        B = response_fn(e[..., :q])
        return (B @ merge_complex(e[..., q:]).unsqueeze(-1).to(B.dtype)).squeeze(-1)

    return crb_from_fim(fisher_deterministic(mean_fn, eta, noise_var), list(range(q)))


def crb_single_path(array_model: ArrayModel, angle, precoder: torch.Tensor, gain, noise_var,
                    pilots: torch.Tensor | None = None, method: str = "closed_form") -> torch.Tensor:
    r"""CRB on the AoD θ of y = α (F^T a(θ)) ⊙ s + w with unknown complex gain α (seed 004).

    CRB_θ = σ² / (2|α|² (‖ḃ‖² - |b^H ḃ|²/‖b‖²)), b = (F^T a(θ)) ⊙ s, ḃ = (F^T ∂a/∂θ) ⊙ s,
    with a the TRUE (impaired) response of ``array_model``.

    Args:
        array_model: transmit array model (M elements).
        angle: θ, ``(...)`` radians.
        precoder: F, ``(..., M, T)`` complex.
        gain: α, complex scalar or ``(...)``.
        noise_var: σ².
        pilots: s, ``(..., T)`` (default all ones).
        method: ``"closed_form"`` or ``"slepian_bangs"`` (via :func:`crb_unknown_gains`).

    Returns:
        ``(...)`` CRB in rad².
    """
    array_model = _check_model(array_model)
    check_choice(method, _METHODS, "method")
    th = _angles(torch.as_tensor(angle).unsqueeze(-1))
    check_ndim_at_least(precoder, 2, "precoder", "(..., M, T)")
    if precoder.shape[-2] != array_model.num_elements:
        raise ValueError(f"precoder must have shape (..., M={array_model.num_elements}, T), got {tuple(precoder.shape)}")
    check_positive(noise_var, "noise_var")
    cdtype = complex_dtype(th.dtype)
    F = precoder.to(cdtype)
    s = torch.ones(F.shape[-1], dtype=cdtype, device=F.device) if pilots is None else pilots.to(cdtype)
    alpha = torch.as_tensor(gain).to(device=th.device, dtype=cdtype)
    s2 = torch.as_tensor(noise_var, dtype=th.dtype, device=th.device)
    if method == "closed_form":
        a, (da, _) = array_model.steering_and_derivatives(th)
        b = (F.mT @ a).squeeze(-1) * s
        bd = (F.mT @ da).squeeze(-1) * s
        nb = (b.abs() ** 2).sum(-1)
        info = (bd.abs() ** 2).sum(-1) - ((b.conj() * bd).sum(-1)).abs() ** 2 / nb
        return s2 / (2.0 * alpha.abs() ** 2 * info)

    def response_fn(t):
        a = array_model.steering(t)
        return (F.mT @ a) * s.unsqueeze(-1)

    return crb_unknown_gains(response_fn, th, alpha.unsqueeze(-1), s2)[..., 0, 0]
