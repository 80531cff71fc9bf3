r"""Deterministic maximum likelihood (DML) direction finding for any array model.

With deterministic (unknown, non-random) source signals and white noise, the concentrated
negative log-likelihood of N snapshots is, up to constants, N·log tr(P_A^⊥ R̂), so

    θ̂ = arg max_θ  tr(P_A(θ) R̂) = arg min_θ  tr(P_A^⊥(θ) R̂),     P_A = A (A^H A)^{-1} A^H.

For one source this is the Bartlett maximiser a^H R̂ a / a^H a.  For K sources:

1. initialisation on a grid by alternating projection (AP; Ziskind & Wax, IEEE TASSP 1988):
   source k maximises the gain tr(P_[A_-k, a] R̂) - tr(P_{A_-k} R̂) = a^H P^⊥ R̂ P^⊥ a / a^H P^⊥ a
   (P^⊥ for the other sources) over the grid, sequentially, then ``sweeps`` cyclic passes;
   each pass is two fast quadratic forms per batch element on the grid
   (:class:`~isackit.estimators.spectral.QuadraticFormDictionary`).  ``init="music"`` uses the
   MUSIC grid peaks instead.
2. refinement by batched damped Newton steps on V(θ) = tr(P_A^⊥ R̂) with the exact gradient
   ∂V/∂θ_k = -2 Re[(A^† R̂ P_A^⊥ D)_kk] and the (asymptotic) Gauss–Newton Hessian
   H = 2 Re[(D^H P_A^⊥ D) ⊙ (A^† R̂ A^{†H})^T] (Viberg, Ottersten & Kailath, IEEE TSP 1991),
   D = [∂a(θ_1)/∂θ_1, …]; step clamped to ``max_step`` and accepted only if V decreases
   (backtracking).  The steering matrix and D come from ``model.steering_and_derivatives``,
   so the estimator works with ANY :class:`~isackit.impairments.ArrayModel`, in particular
   as a mismatched estimator (data from an impaired array, estimator assuming the ideal one).

Noise-free covariances are recovered to machine precision.  Differentiable pieces:
:func:`dml_cost` (autograd through A and R).  The DOA pipeline itself returns plain
estimates (no gradient).
"""

from __future__ import annotations

import torch

from .base import EstimationResult, Estimator, register
from .common import batch_chunks, example_covariance, flatten_covariance, make_result
from .grids import SearchGrid, quadratic_form_dictionary, steering_with_derivatives
from .spectral import music_grid_peaks

__all__ = ["DML", "DML_GRID", "alternating_projection", "dml_cost", "dml_doa", "dml_gradient_hessian", "dml_refine", "projector"]


def projector(A: torch.Tensor) -> torch.Tensor:
    r"""Orthogonal projector onto range(A): P_A = A (A^H A)^{-1} A^H, ``(..., M, M)``; differentiable."""
    G = A.mH @ A
    return A @ torch.linalg.solve(G, A.mH)


def dml_cost(R: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
    r"""DML criterion tr(P_A R) (to maximise), ``(...)`` real; differentiable in R and A.

    Args:
        R: ``(..., M, M)`` sample covariance.  A: ``(..., M, K)`` steering matrix.
    """
    G = A.mH @ A
    RA = R @ A
    return torch.diagonal(torch.linalg.solve(G, A.mH @ RA), dim1=-2, dim2=-1).real.sum(-1)


_TINY_STEP = 1e-7


def _residual_power(R, A):
    """tr(P_A^⊥ R), (...)."""
    return torch.diagonal(R, dim1=-2, dim2=-1).real.sum(-1) - dml_cost(R, A)


def dml_gradient_hessian(R: torch.Tensor, A: torch.Tensor, D: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Gradient and Gauss–Newton Hessian of V(θ) = tr(P_A^⊥ R) w.r.t. the K angles.

    ∂V/∂θ_k = -2 Re[(A^† R P_A^⊥ D)_kk],  H = 2 Re[(D^H P_A^⊥ D) ⊙ (A^† R A^{†H})^T]
    (Viberg, Ottersten & Kailath 1991; H is the exact Hessian's limit for R → A P A^H + σ²I).

    Args:
        R: ``(..., M, M)``; A: ``(..., M, K)``; D: ``(..., M, K)`` with column k = ∂a_k/∂θ_k.

    Returns:
        ``(grad (..., K), H (..., K, K))`` real.
    """
    Ad = torch.linalg.solve(A.mH @ A, A.mH)  # A^†, (..., K, M)
    Pp = torch.eye(R.shape[-1], dtype=R.dtype, device=R.device) - A @ Ad
    grad = -2 * torch.diagonal(Ad @ R @ Pp @ D, dim1=-2, dim2=-1).real
    H = 2 * ((D.mH @ Pp @ D) * (Ad @ R @ Ad.mH).transpose(-1, -2)).real
    return grad, H


def dml_refine(R: torch.Tensor, model, angles: torch.Tensor, iterations: int = 10,
               max_step: float = 0.01) -> torch.Tensor:
    r"""Damped Gauss–Newton refinement of K azimuths on tr(P_A^⊥ R) (see module docstring).

    Args:
        R: ``(B, M, M)``; model: ``ArrayGeometry``/``ArrayModel``; angles: ``(B, K)`` radians.
        iterations: Newton steps; max_step: largest step per angle and iteration (radians).

    Returns:
        ``(B, K)`` refined azimuths (no gradient).
    """
    with torch.no_grad():
        th = angles.clone()
        K = th.shape[-1]
        eye = torch.eye(K, dtype=R.real.dtype, device=R.device)
        V = _residual_power(R, model.steering(th).to(R.dtype))
        for _ in range(int(iterations)):
            A, (D, _) = steering_with_derivatives(model, th)
            grad, H = dml_gradient_hessian(R, A.to(R.dtype), D.to(R.dtype))
            scale = H.diagonal(dim1=-2, dim2=-1).abs().amax(-1).clamp_min(torch.finfo(H.dtype).tiny)
            step = -torch.linalg.solve_ex(H + 1e-10 * scale[..., None, None] * eye, grad.unsqueeze(-1))[0].squeeze(-1)
            step = torch.nan_to_num(step)
            # keep the direction if the largest component exceeds max_step
            big = step.abs().amax(-1, keepdim=True)
            step = step * torch.where(big > max_step, max_step / big.clamp_min(1e-300), torch.ones_like(big))
            best, vbest = th, V
            improved = torch.zeros_like(V, dtype=torch.bool)
            # steps below ~1e-7 rad change V by less than its rounding error: accept them
            # unconditionally (quadratic region), otherwise backtrack until V decreases
            tiny = step.abs().amax(-1) < _TINY_STEP
            for frac in (1.0, 0.5, 0.25):
                cand = th + frac * step
                vc = _residual_power(R, model.steering(cand).to(R.dtype))
                take = ((vc < vbest) | (tiny & (frac == 1.0))) & ~improved
                best = torch.where(take[..., None], cand, best)
                vbest = torch.where(take, vc, vbest)
                improved = improved | take
            th, V = best, vbest
            if not bool((step.abs() > 1e-10).any()):  # converged everywhere
                break
        return th


def alternating_projection(R: torch.Tensor, model, num_sources: int, grid: SearchGrid, sweeps: int = 2,
                           chunk_size: int = 256) -> torch.Tensor:
    r"""Grid DML initialisation by alternating projection (Ziskind & Wax 1988), batched.

    Args:
        R: ``(B, M, M)`` (Hermitian); grid: azimuth grid.

    Returns:
        ``(B, K)`` grid azimuths.
    """
    K = int(num_sources)
    with torch.no_grad():
        qf = quadratic_form_dictionary(grid, model, R)
        pts = grid.points_like(R)
        M = R.shape[-1]
        eye = torch.eye(M, dtype=R.dtype, device=R.device)
        out = []
        for sl in batch_chunks(R.shape[0], chunk_size):
            Rc = R[sl]
            th = torch.zeros(Rc.shape[0], K, dtype=pts.dtype, device=R.device)

            def best_given(others, Rc=Rc):
                if others.shape[-1] == 0:
                    Pp = eye.expand_as(Rc)
                else:
                    Pp = eye - projector(model.steering(others).to(R.dtype))
                num = qf(Pp @ Rc @ Pp)
                den = qf(Pp)
                ok = den > 1e-6 * qf.norms
                score = torch.where(ok, num / den.clamp_min(torch.finfo(den.dtype).tiny),
                                    torch.full_like(num, -torch.inf))
                return pts[score.argmax(-1)]

            for k in range(K):  # sequential start
                th[:, k] = best_given(th[:, :k])
            for _ in range(int(sweeps)):
                for k in range(K):
                    idx = [j for j in range(K) if j != k]
                    th[:, k] = best_given(th[:, idx])
            out.append(th)
        return torch.cat(out, 0)


def dml_doa(R: torch.Tensor, model, num_sources: int, grid: SearchGrid, *, init: str = "ap",
            sweeps: int = 2, iterations: int = 10, grid_only: bool = False,
            chunk_size: int = 256) -> EstimationResult:
    r"""Deterministic ML DOAs of K sources for any array model.

    Args:
        R: ``(..., M, M)`` sample covariance.
        model: the ``ArrayGeometry``/``ArrayModel`` the receiver assumes.
        num_sources: K.
        grid: azimuth grid of the initialisation.
        init: ``"ap"`` (alternating projection on the grid) or ``"music"`` (MUSIC grid peaks).
        sweeps: AP passes after the sequential start.
        iterations: Newton steps (0 or ``grid_only=True``: grid result only).

    Returns:
        :class:`EstimationResult` with estimates ``(..., K, 1)`` ("azimuth"), sorted by angle,
        and ``extras["cost"]`` = tr(P_A R̂) at the estimate.
    """
    if init not in ("ap", "music"):
        raise ValueError(f"unknown init {init!r}; expected 'ap' or 'music'")
    with torch.no_grad():
        batch, Rf, valid = flatten_covariance(R, model.num_elements)
        if not 0 < int(num_sources) < Rf.shape[-1]:
            raise ValueError(f"num_sources must be in [1, M-1] = [1, {Rf.shape[-1] - 1}], got {num_sources}")
        if init == "ap":
            th = alternating_projection(Rf, model, num_sources, grid, sweeps, chunk_size)
            found = torch.ones_like(th, dtype=torch.bool)
        else:
            ang, found, _, _ = music_grid_peaks(Rf, model, num_sources, grid, chunk_size, False)
            # a missing MUSIC peak is replaced by the best remaining grid point after AP
            th = ang[..., 0]
            if not bool(found.all()):
                fill = alternating_projection(Rf, model, num_sources, grid, 0, chunk_size)
                th = torch.where(found, th, fill)
                found = torch.ones_like(found)
        if not grid_only and iterations > 0:
            th = dml_refine(Rf, model, th, iterations, max_step=max(grid.step, 1e-3))
        cost = dml_cost(Rf, model.steering(th).to(Rf.dtype))
        return make_result(th[..., None], found, valid, batch, ("azimuth",),
                           extras={"cost": torch.where(valid, cost, torch.full_like(cost, torch.nan)).reshape(batch)})



#: default grid of the DML initialisation: 0.05° over [-90°, 90°] (refined afterwards)
DML_GRID = SearchGrid.degrees(-90.0, 90.0, 0.05)


@register("dml")
class DML(Estimator):
    """Deterministic maximum likelihood DOAs (:func:`dml_doa`) for any assumed array model.

    Args:
        array: the ``ArrayGeometry``/``ArrayModel`` the receiver assumes (may differ from the
            one that generated the data: mismatched ML).
        num_sources: K.  grid: initialisation grid.  init: ``"ap"`` or ``"music"``.
        sweeps: alternating-projection passes.  iterations: Newton steps.
    """

    input_kind = "covariance"
    parameters = ("azimuth",)

    def __init__(self, array, num_sources: int = 1, grid: SearchGrid = DML_GRID, init: str = "ap",
                 sweeps: int = 2, iterations: int = 10, grid_only: bool = False, chunk_size: int = 256):
        self.array = array
        self.num_sources = num_sources
        self.grid = grid
        self.init = init
        self.sweeps = sweeps
        self.iterations = iterations
        self.grid_only = grid_only
        self.chunk_size = chunk_size

    def estimate(self, R: torch.Tensor) -> EstimationResult:
        return dml_doa(R, self.array, self.num_sources, self.grid, init=self.init, sweeps=self.sweeps,
                       iterations=self.iterations, grid_only=self.grid_only, chunk_size=self.chunk_size)

    @classmethod
    def example(cls, dtype=torch.complex128, device="cpu", generator=None):
        from ..geometry import ula
        arr = ula(8)
        truth = torch.tensor([[-0.2], [0.15]], dtype=torch.float64)  # closer than a beamwidth
        R = example_covariance(arr, truth[:, 0], dtype=dtype, device=device, generator=generator)
        return cls(arr, 2), R, truth
