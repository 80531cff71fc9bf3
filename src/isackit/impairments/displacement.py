r"""Element displacement and spacing errors: p_m = p̄_m + δ_m.

:class:`ElementDisplacement` adds δ ``(..., M, 3)`` metres to the nominal positions (it acts
through ``perturb_positions``, so the steering vector and its angle derivatives follow
exactly from the perturbed geometry).  With ``learnable=True`` δ is an ``nn.Parameter``
(S0 learns the element positions of both its Tx and its Rx ULA: give each array model its own
``ElementDisplacement``).

Seed 004 (eq. 4) perturbs the inter-element distances of a ULA: d = λ/2·1 + γ,
γ_k ~ N(0, σ_λ²), k = 1..M-1.  We read γ as a perturbation of each GAP, so that the element
positions are the cumulative sums p_m = Σ_{k<m} d_k, i.e. δ_m = Σ_{k<m} γ_k along the array
axis (``model="gaps"``, the default): d is introduced in the seed as "the vector of
inter-element distances", and an error in one gap physically shifts every later element.
The seed's next line writes [ã]_k = exp(j2πk (d_k/λ) sin θ), i.e. p_k = k·d_k; that literal
reading (δ_k = k γ_k) is available as ``model="scaled"``.  The two agree for γ = 0 and
have position error variances k σ² (gaps) and k² σ² (scaled).
"""

from __future__ import annotations

import torch
from torch import nn

from .._checks import check_finite
from .base import Impairment

__all__ = ["ElementDisplacement"]

_AXES = {"x": 0, "y": 1, "z": 2}


class ElementDisplacement(Impairment):
    r"""Element position errors δ ``(..., M, 3)`` (or ``(..., M, 2)``: z = 0) in metres.

    Args:
        displacement: δ, added to the nominal positions (leading dims = batch of draws).
        known: whether the receiver knows the true positions.
        learnable: make δ an ``nn.Parameter``.
    """

    def __init__(self, displacement, known: bool = False, learnable: bool = False):
        super().__init__(known)
        d = torch.as_tensor(displacement)
        if d.is_complex():
            raise TypeError("displacement must be real (metres)")
        if not d.is_floating_point():
            d = d.to(torch.get_default_dtype())
        if d.ndim < 2 or d.shape[-1] not in (2, 3) or d.shape[-2] < 1:
            raise ValueError(f"displacement must have shape (..., M, 3) or (..., M, 2) metres, got {tuple(d.shape)}")
        check_finite(d, "displacement")
        if d.shape[-1] == 2:
            d = torch.cat([d, torch.zeros_like(d[..., :1])], dim=-1)
        d = d.clone()
        self.learnable = bool(learnable)
        if self.learnable:
            self.displacement = nn.Parameter(d)
        else:
            self.register_buffer("displacement", d)

    @property
    def num_elements(self) -> int:
        return int(self.displacement.shape[-2])

    # -- constructors -------------------------------------------------------------------------
    @classmethod
    def zeros(cls, num_elements: int, dtype=torch.float32, device=None, **kwargs) -> ElementDisplacement:
        """δ = 0 (e.g. the starting point of a learnable geometry)."""
        m = int(num_elements)
        if m <= 0:
            raise ValueError(f"num_elements must be a positive integer, got {num_elements}")
        return cls(torch.zeros(m, 3, dtype=dtype, device=device), **kwargs)

    @classmethod
    def gaussian(cls, num_elements: int, std: float, batch_shape=(), axes: str = "xyz",
                 generator: torch.Generator | None = None, dtype=torch.float32, device=None,
                 **kwargs) -> ElementDisplacement:
        """δ_m i.i.d. N(0, std²) (metres) along each of ``axes`` (e.g. ``"xy"``), 0 elsewhere."""
        m = int(num_elements)
        if m <= 0:
            raise ValueError(f"num_elements must be a positive integer, got {num_elements}")
        std = float(std)
        if not std >= 0 or std == float("inf"):
            raise ValueError(f"std must be non-negative and finite (metres), got {std}")
        if not axes or any(a not in _AXES for a in axes):
            raise ValueError(f"axes must be letters from 'xyz', got {axes!r}")
        mask = torch.zeros(3, dtype=dtype, device=device)
        mask[[_AXES[a] for a in axes]] = 1.0
        z = torch.randn((*tuple(batch_shape), m, 3), generator=generator, dtype=dtype, device=device)
        return cls(z * std * mask, **kwargs)

    @staticmethod
    def spacing_offsets(gaps: torch.Tensor, model: str = "gaps") -> torch.Tensor:
        r"""Position offsets ``(..., M)`` along the array axis from gap errors γ ``(..., M-1)``.

        ``"gaps"``: δ_0 = 0, δ_m = Σ_{k<m} γ_k (cumulative, the default);
        ``"scaled"``: δ_0 = 0, δ_m = m γ_m (the seed's literal [ã]_k = e^{j2πk d_k sinθ/λ}).
        """
        if model not in ("gaps", "scaled"):
            raise ValueError(f"unknown spacing model {model!r}; expected one of: gaps, scaled")
        zero = torch.zeros_like(gaps[..., :1])
        if model == "gaps":
            return torch.cat([zero, torch.cumsum(gaps, dim=-1)], dim=-1)
        m = torch.arange(1, gaps.shape[-1] + 1, dtype=gaps.dtype, device=gaps.device)
        return torch.cat([zero, m * gaps], dim=-1)

    @classmethod
    def from_spacing_errors(cls, gaps, axis: str = "y", model: str = "gaps", **kwargs) -> ElementDisplacement:
        """A ULA along ``axis`` whose gaps are perturbed by γ ``(..., M-1)`` metres (seed 004 eq. 4).

        The elements must be ordered along the axis (as :func:`~isackit.geometry.ula` builds them).
        """
        g = torch.as_tensor(gaps)
        if not g.is_floating_point():
            g = g.to(torch.get_default_dtype())
        if g.ndim < 1:
            raise ValueError(f"gaps must have shape (..., M-1), got {tuple(g.shape)}")
        check_finite(g, "gaps")
        if axis not in _AXES:
            raise ValueError(f"axis must be one of 'x', 'y', 'z', got {axis!r}")
        off = cls.spacing_offsets(g, model)
        d = torch.zeros((*off.shape, 3), dtype=off.dtype, device=off.device)
        d[..., _AXES[axis]] = off
        return cls(d, **kwargs)

    @classmethod
    def spacing_perturbation(cls, num_elements: int, std: float, batch_shape=(), axis: str = "y",
                             model: str = "gaps", generator: torch.Generator | None = None,
                             dtype=torch.float32, device=None, **kwargs) -> ElementDisplacement:
        r"""Seed 004: d = d̄ + γ, γ_k ~ N(0, std²) i.i.d. (std in metres; the seed uses λ/100)."""
        m = int(num_elements)
        if m <= 0:
            raise ValueError(f"num_elements must be a positive integer, got {num_elements}")
        std = float(std)
        if not std >= 0 or std == float("inf"):
            raise ValueError(f"std must be non-negative and finite (metres), got {std}")
        g = torch.randn((*tuple(batch_shape), m - 1), generator=generator, dtype=dtype, device=device) * std
        return cls.from_spacing_errors(g, axis, model, **kwargs)

    # -- the map ------------------------------------------------------------------------------
    def perturb_positions(self, positions: torch.Tensor) -> torch.Tensor:
        if positions.shape[-2] != self.num_elements:
            raise ValueError(f"ElementDisplacement has M = {self.num_elements} elements but the array "
                             f"has {positions.shape[-2]}")
        return positions + self.displacement.to(positions.dtype)

    def extra_repr(self) -> str:
        return (f"M={self.num_elements}, batch={tuple(self.displacement.shape[:-2])}, known={self.known}, "
                f"learnable={self.learnable}")
