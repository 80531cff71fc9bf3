r"""Misspecified Cramér–Rao bound (MCRB) for a receiver that assumes the wrong array model.

Data come from the TRUE model x ~ CN(μ, σ² I) (μ from the impaired array); the receiver
fits the ASSUMED deterministic model μ_a(η) = B(θ) α (e.g. the ideal array, columns of B
= assumed responses, α complex gains / signals).  Following Fortunati, Gini, Greco & Richmond
(IEEE SPM 2017) and Richmond & Horowitz (IEEE TSP 2015):

* pseudo-true parameter η₀ = argmin_η KL(p_true ‖ p_η) = argmin_η ‖μ - B(θ) α‖², computed
  by concentrating the gains (α₀ = B(θ)⁺ μ) and minimising ‖Π⊥_{B(θ)} μ‖² over θ with a
  batched Levenberg–Marquardt iteration on autograd gradients/Hessians, started at the true
  θ (or ``theta_init``);
* with d = μ - μ_a(η₀) and J = ∂μ_a/∂ηᵀ at η₀ (η = (θ, Re α, Im α)):
      A = (2/σ²) [∇²_η Re(dᴴ μ_a(η)) - Re(Jᴴ J)],   B = (2/σ²) Re(Jᴴ J),
      MCRB = A⁻¹ B A⁻¹   (covariance bound around η₀; the θ block is returned);
* the mean-squared error about the TRUE θ is bounded by MCRB + (θ₀ - θ)(θ₀ - θ)ᵀ: the bias
  term is reported separately (:class:`MisspecifiedBound`).

Because μ_a is linear in α, ∂²μ_a/∂α² = 0 and every derivative is taken with respect to θ
only (forward-mode autograd of ``response_fn``), so many nuisance gains (one per source and
snapshot in DOA) stay cheap.

At high SNR the bias term dominates: it is the error floor of any consistent mismatched
estimator (e.g. DML with the ideal array under a gain-phase error).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .._checks import check_finite, check_positive, check_positive_int
from .fisher import batched_jacobian

__all__ = ["MisspecifiedBound", "mcrb_deterministic", "mcrb_doa_deterministic", "minimise_lm", "pseudo_true_parameters"]


@dataclass(frozen=True)
class MisspecifiedBound:
    """Result of :func:`mcrb_deterministic`.

    Attributes:
        mcrb: ``(..., Q, Q)`` A⁻¹BA⁻¹ block of θ (error covariance around θ₀), rad².
        bias: ``(..., Q)`` θ₀ - θ_true.
        pseudo_true: θ₀ ``(..., Q)``.
        pseudo_true_gains: α₀ ``(..., L)``.
    """

    mcrb: torch.Tensor
    bias: torch.Tensor
    pseudo_true: torch.Tensor
    pseudo_true_gains: torch.Tensor

    @property
    def mse_bound(self) -> torch.Tensor:
        """MCRB + bias biasᵀ, ``(..., Q, Q)``: bound on the MSE about the true θ."""
        return self.mcrb + self.bias.unsqueeze(-1) * self.bias.unsqueeze(-2)


def _ls_gains(B: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
    return torch.linalg.lstsq(B, mu.unsqueeze(-1).to(B.dtype)).solution.squeeze(-1)


def _residual_cost(response_fn, mu, theta):
    B = response_fn(theta)
    m = mu.unsqueeze(-1).to(B.dtype)
    r = m - B @ torch.linalg.solve(B.mH @ B, B.mH @ m)  # residual form: no cancellation in ‖μ‖² − ‖Pμ‖²
    return (r.abs() ** 2).sum((-2, -1))  # ‖Π⊥ μ‖², (...)


def minimise_lm(cost_fn: Callable[[torch.Tensor], torch.Tensor], theta_init: torch.Tensor,
                iterations: int = 50, tol: float = 1e-13) -> torch.Tensor:
    r"""Batched Levenberg–Marquardt minimisation of a smooth cost, autograd gradient/Hessian.

    Args:
        cost_fn: θ ``(..., Q)`` → cost ``(...)`` (batch-element-wise).
        theta_init: start ``(..., Q)``; the local minimum next to it is returned.
        iterations: maximum number of steps; stops earlier once every step is below
            ``tol``·(1 + |θ|).

    Returns:
        θ ``(..., Q)`` (no gradient).
    """
    check_positive_int(iterations, "iterations")
    theta = check_finite(theta_init, "theta_init").detach().clone()
    q = theta.shape[-1]

    def cost1(t):
        return cost_fn(t)[..., None]

    def grad_fn(t):
        return batched_jacobian(cost1, t)[..., 0, :]

    lam = torch.full(theta.shape[:-1], 1e-3, dtype=theta.dtype, device=theta.device)
    eye = torch.eye(q, dtype=theta.dtype, device=theta.device)
    cost = cost_fn(theta)
    for _ in range(iterations):
        g = grad_fn(theta)
        H = batched_jacobian(grad_fn, theta)
        H = 0.5 * (H + H.mT)
        scale = torch.diagonal(H, dim1=-2, dim2=-1).abs().clamp_min(1e-300)
        step = -torch.linalg.solve(H + (lam[..., None] * scale)[..., None] * eye, g.unsqueeze(-1)).squeeze(-1)
        new_theta = theta + step
        new_cost = cost_fn(new_theta)
        better = new_cost < cost
        theta = torch.where(better[..., None], new_theta, theta)
        cost = torch.where(better, new_cost, cost)
        lam = torch.where(better, lam * 0.3, lam * 10.0).clamp(1e-12, 1e12)
        if bool((step.abs() <= tol * (1 + theta.abs())).all()):
            break
    return theta.detach()


def pseudo_true_parameters(true_mean: torch.Tensor, response_fn: Callable[[torch.Tensor], torch.Tensor],
                           theta_init: torch.Tensor, iterations: int = 50) -> tuple[torch.Tensor, torch.Tensor]:
    r"""θ₀ = argmin_θ ‖Π⊥_{B(θ)} μ‖² and α₀ = B(θ₀)⁺ μ (batched Levenberg–Marquardt).

    Args:
        true_mean: μ ``(..., D)`` complex.
        response_fn: assumed responses θ ``(..., Q)`` → B ``(..., D, L)`` complex (batch-wise).
        theta_init: ``(..., Q)`` start (e.g. the true θ); the local minimum next to it is found.
        iterations: maximum number of LM steps.

    Returns:
        ``(theta0 (..., Q), gains0 (..., L))``.
    """
    theta = check_finite(theta_init, "theta_init")
    q = theta.shape[-1]
    batch = torch.broadcast_shapes(theta.shape[:-1], true_mean.shape[:-1])
    mu = true_mean.expand(*batch, true_mean.shape[-1])
    theta = minimise_lm(lambda t: _residual_cost(response_fn, mu, t), theta.expand(*batch, q), iterations)
    return theta, _ls_gains(response_fn(theta), mu)


def mcrb_deterministic(true_mean: torch.Tensor, response_fn: Callable[[torch.Tensor], torch.Tensor],
                       theta_true: torch.Tensor, noise_var, theta_init: torch.Tensor | None = None,
                       iterations: int = 50,
                       pseudo_true: tuple[torch.Tensor, torch.Tensor] | None = None) -> MisspecifiedBound:
    r"""MCRB of θ for the assumed model μ_a = B(θ) α under data x ~ CN(μ, σ² I).

    Args:
        true_mean: μ ``(..., D)`` complex (all observations stacked).
        response_fn: assumed B(θ), ``(..., Q)`` → ``(..., D, L)``.
        theta_true: ``(..., Q)`` true parameters (for the bias), float64 recommended.
        noise_var: σ².
        theta_init: start of the pseudo-true search (default ``theta_true``).
        pseudo_true: ``(θ₀, α₀)`` when already known (e.g. from a structured, cheaper search);
            then no search is run.

    Returns:
        :class:`MisspecifiedBound`.
    """
    check_positive(noise_var, "noise_var")
    theta_true = check_finite(theta_true, "theta_true")
    if pseudo_true is None:
        theta0, alpha0 = pseudo_true_parameters(true_mean, response_fn,
                                                theta_true if theta_init is None else theta_init, iterations)
    else:
        theta0, alpha0 = pseudo_true
    q = theta0.shape[-1]
    # μ_a(η) = B(θ) α is linear in α: only Jacobians in θ are needed (cheap for many gains).
    B = response_fn(theta0)  # (..., D, L)
    mu = true_mean.to(B.dtype).expand(*B.shape[:-1])
    d = mu - (B @ alpha0.unsqueeze(-1).to(B.dtype)).squeeze(-1)
    dB = batched_jacobian(response_fn, theta0, event_ndim=2)  # (..., D, L, Q)
    J_theta = torch.einsum("...dlq,...l->...dq", dB, alpha0.to(B.dtype))
    J = torch.cat([J_theta, B, 1j * B], dim=-1)  # ∂μ_a/∂(θ, Re α, Im α)
    G = (J.mH @ J).real

    def misfit_gain(t):  # Re(dᴴ B(θ) α₀), (..., 1)
        return (d.conj() * (response_fn(t) @ alpha0.unsqueeze(-1).to(B.dtype)).squeeze(-1)).sum(-1).real[..., None]

    def misfit_grad(t):
        return batched_jacobian(misfit_gain, t)[..., 0, :]

    H_tt = batched_jacobian(misfit_grad, theta0)  # (..., Q, Q)
    dH = torch.einsum("...d,...dlq->...ql", d.conj(), dB)  # ∂(dᴴ b_l)/∂θ_q
    H_ta = torch.cat([dH.real, -dH.imag], dim=-1)  # (..., Q, 2L): ∂²/∂θ∂Re α, ∂²/∂θ∂Im α
    Hd = torch.zeros(*G.shape, dtype=G.dtype, device=G.device)
    Hd[..., :q, :q] = 0.5 * (H_tt + H_tt.mT)
    Hd[..., :q, q:] = H_ta
    Hd[..., q:, :q] = H_ta.mT
    s2 = torch.as_tensor(noise_var, dtype=theta0.dtype, device=theta0.device)[..., None, None]
    A = (2.0 / s2) * (Hd - G)
    Bm = (2.0 / s2) * G
    Ainv = torch.linalg.inv(A)
    full = Ainv @ Bm @ Ainv
    return MisspecifiedBound(full[..., :q, :q], theta0 - theta_true, theta0, alpha0)


def mcrb_doa_deterministic(true_model, assumed_model, angles: torch.Tensor, signals: torch.Tensor, noise_var,
                           elevation=None, theta_init: torch.Tensor | None = None,
                           iterations: int = 50, reduce: bool = True) -> MisspecifiedBound:
    r"""MCRB of the azimuths for snapshots X = A_true(θ) S + W fitted with A_assumed (DML model).

    The assumed model is X = A_assumed(θ) S' + W with unknown deterministic signals S' (the
    deterministic ML model; its estimator is :func:`isackit.estimators.likelihood.dml_doa`),
    i.e. B(θ) = I_N ⊗ A_assumed(θ) in the row-major layout of ``X.reshape(-1)``.

    Args:
        true_model, assumed_model: :class:`~isackit.impairments.ArrayModel` (data / receiver).
        angles: true azimuths ``(..., K)`` rad (float64 recommended).
        signals: S ``(..., K, N)`` complex, the same for every trial (deterministic model).
        noise_var: σ².
        reduce: replace the N snapshots by K "virtual snapshots" L (the Cholesky factor,
            L Lᴴ = S Sᴴ) when N > K.  The model is invariant to S ↦ S Q (Q unitary, N × N):
            rotating the data so that S Q = [L, 0] leaves N − K noise-only snapshots whose
            gains have zero pseudo-true value and decouple from θ, so the θ bound is
            unchanged while B shrinks from (M N) × (N K) to (M K) × K².  Then
            ``pseudo_true_gains`` refer to the virtual snapshots.

    Returns:
        :class:`MisspecifiedBound` (``mcrb``/``bias`` of the K azimuths).
    """
    th = check_finite(angles, "angles")
    k, n = signals.shape[-2], signals.shape[-1]
    if th.shape[-1] != k:
        raise ValueError(f"signals must have shape (..., K={th.shape[-1]}, N), got {tuple(signals.shape)}")
    A_true = true_model.steering(th, elevation)
    if reduce and n > k:
        S = signals.to(A_true.dtype)
        L, info = torch.linalg.cholesky_ex(S @ S.mH)
        if bool((info == 0).all()):  # full-rank S Sᴴ; otherwise keep all N snapshots
            signals, n = L, k
    m = A_true.shape[-2]
    X = A_true @ signals.to(A_true.dtype)

    def response(t):
        a = assumed_model.steering(t, elevation)  # (..., M, K)
        eye = torch.eye(n, dtype=a.dtype, device=a.device)
        return (a[..., :, None, None, :] * eye[:, :, None]).reshape(*a.shape[:-2], m * n, n * k)

    # structured pseudo-true search: ‖Π⊥_{I⊗A} vec X‖² = ‖Π⊥_A X‖_F², only M × K matrices
    def cost(t):
        a = assumed_model.steering(t, elevation)
        r = X - a @ torch.linalg.solve(a.mH @ a, a.mH @ X)
        return (r.abs() ** 2).sum((-2, -1))

    theta0 = minimise_lm(cost, th if theta_init is None else theta_init, iterations)
    a0 = assumed_model.steering(theta0, elevation)
    S0 = torch.linalg.lstsq(a0, X).solution  # (..., K, N) → gains ordered (n, k)
    alpha0 = S0.mT.reshape(*S0.shape[:-2], n * k)
    return mcrb_deterministic(X.reshape(*X.shape[:-2], m * n), response, th, noise_var,
                              pseudo_true=(theta0, alpha0))
