r"""Per-element gain-phase errors: A ↦ diag(c) A, c_m = g_m e^{jψ_m}.

The error of element m multiplies row m of the steering matrix (its RF chain scales and
rotates every direction alike; seed 002 eq. 6 Γ, seed 003 Sec. II-A, S0's Tx and Rx arrays).
Fixed values, learnable values (``learnable=True`` makes the gains and phases
``nn.Parameter``s, which is how S0 calibrates an array) and random draws from a
:class:`~isackit.impairments.distributions.GainPhaseDistribution` all use this one class.

Shapes: ``gain`` and ``phase`` are ``(..., M)`` real; the leading dims (one draw per trial
or device) broadcast with the batch dims of the steering matrix ``(..., M, K)`` (or
``(..., N, M, K)`` with a subcarrier axis, which the map leaves alone).  Differentiable in
the gains, the phases and A.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .._checks import check_finite
from .._dtypes import real_dtype
from ..conversions import db_to_amplitude
from .base import Impairment
from .distributions import (
    GainPhaseDistribution,
    GaussianPhase,
    LogNormalGain,
    RicianGain,
    UniformGain,
    UniformPhase,
    VonMisesPhase,
)

__all__ = ["GainPhaseError"]


def _real_tensor(x, name: str) -> torch.Tensor:
    t = torch.as_tensor(x)
    if t.is_complex():
        raise TypeError(f"{name} must be real, got a complex tensor")
    if not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    if t.ndim < 1 or t.shape[-1] < 1:
        raise ValueError(f"{name} must have shape (..., M) with M >= 1, got {tuple(t.shape)}")
    return check_finite(t, name)


class GainPhaseError(Impairment):
    r"""Per-element complex gain c_m = g_m e^{jψ_m}; the impaired response is diag(c) A.

    Args:
        gain: ``(..., M)`` real gains g (1 = no gain error).
        phase: ``(..., M)`` phases ψ in radians (0 = no phase error); broadcastable with gain.
        known: whether the receiver knows these errors.
        learnable: store gain and phase as ``nn.Parameter`` (calibration).

    Example:
        >>> from isackit.geometry import ula
        >>> from isackit.impairments import ArrayModel
        >>> imp = GainPhaseError.rician_von_mises(8, nu=1.0, sigma=0.1, kappa=10.0,
        ...                                       generator=torch.Generator().manual_seed(0))
        >>> ArrayModel(ula(8), [imp]).steering(torch.tensor([0.1])).shape
        torch.Size([8, 1])
    """

    def __init__(self, gain, phase=None, known: bool = False, learnable: bool = False):
        super().__init__(known)
        g = _real_tensor(gain, "gain")
        p = torch.zeros_like(g) if phase is None else _real_tensor(phase, "phase").to(device=g.device, dtype=g.dtype)
        try:
            g, p = torch.broadcast_tensors(g, p)
        except RuntimeError as err:
            raise ValueError(f"gain {tuple(g.shape)} and phase {tuple(p.shape)} must be broadcastable") from err
        g, p = g.clone(), p.clone()
        self.learnable = bool(learnable)
        if self.learnable:
            self.gain, self.phase = nn.Parameter(g), nn.Parameter(p)
        else:
            self.register_buffer("gain", g)
            self.register_buffer("phase", p)

    # -- constructors -----------------------------------------------------------------------
    @classmethod
    def identity(cls, num_elements: int, dtype=torch.float32, device=None, **kwargs) -> GainPhaseError:
        """No error: g = 1, ψ = 0 (a learnable starting point with ``learnable=True``)."""
        m = int(num_elements)
        if m <= 0:
            raise ValueError(f"num_elements must be a positive integer, got {num_elements}")
        return cls(torch.ones(m, dtype=dtype, device=device), torch.zeros(m, dtype=dtype, device=device), **kwargs)

    @classmethod
    def from_coefficients(cls, coefficients, **kwargs) -> GainPhaseError:
        """From complex coefficients c ``(..., M)``: g = |c|, ψ = arg c."""
        c = torch.as_tensor(coefficients)
        if not c.is_complex():
            raise TypeError("coefficients must be complex; use GainPhaseError(gain, phase) for real values")
        check_finite(torch.view_as_real(c), "coefficients")
        return cls(c.abs(), c.angle(), **kwargs)

    @classmethod
    def from_gains_phases(cls, gain, phase, degrees: bool = False, gain_db: bool = False,
                          **kwargs) -> GainPhaseError:
        """From gains (linear, or dB with ``gain_db``) and phases (rad, or deg with ``degrees``)."""
        g = _real_tensor(gain, "gain")
        p = _real_tensor(phase, "phase")
        if gain_db:
            g = db_to_amplitude(g)
        if degrees:
            p = torch.deg2rad(p)
        return cls(g, p, **kwargs)

    @classmethod
    def sample(cls, distribution: GainPhaseDistribution, num_elements: int, batch_shape=(),
               generator: torch.Generator | None = None, dtype=torch.float32, device=None,
               **kwargs) -> GainPhaseError:
        """Draw gains and phases ``(*batch_shape, M)`` from ``distribution``."""
        if not isinstance(distribution, GainPhaseDistribution):
            raise TypeError(f"distribution must be a GainPhaseDistribution, got {type(distribution).__name__}")
        g, p = distribution.sample_gain_phase(num_elements, batch_shape, generator, dtype, device)
        return cls(g, p, **kwargs)

    @classmethod
    def rician_von_mises(cls, num_elements: int, nu: float = 1.0, sigma: float = 0.1,
                         kappa: float = 10.0, batch_shape=(), generator=None, dtype=torch.float32,
                         device=None, **kwargs) -> GainPhaseError:
        """Seed 003: g ~ Rician(ν, σ), ψ ~ von Mises(0, κ), i.i.d. over elements."""
        dist = GainPhaseDistribution(RicianGain(nu, sigma), VonMisesPhase(kappa))
        return cls.sample(dist, num_elements, batch_shape, generator, dtype, device, **kwargs)

    @classmethod
    def gaussian(cls, num_elements: int, gain_std_db: float = 0.5, phase_std_deg: float = 5.0,
                 batch_shape=(), generator=None, dtype=torch.float32, device=None,
                 **kwargs) -> GainPhaseError:
        """Gain error N(0, gain_std_db²) in dB and phase error N(0, phase_std_deg²) in degrees."""
        dist = GainPhaseDistribution(LogNormalGain(gain_std_db), GaussianPhase(math.radians(phase_std_deg)))
        return cls.sample(dist, num_elements, batch_shape, generator, dtype, device, **kwargs)

    @classmethod
    def uniform(cls, num_elements: int, gain_range=(0.9, 1.1), phase_range_deg=(-5.0, 5.0),
                batch_shape=(), generator=None, dtype=torch.float32, device=None,
                **kwargs) -> GainPhaseError:
        """Gain uniform on ``gain_range``, phase uniform on ``phase_range_deg`` (degrees)."""
        dist = GainPhaseDistribution(UniformGain(*gain_range),
                                     UniformPhase(*(math.radians(v) for v in phase_range_deg)))
        return cls.sample(dist, num_elements, batch_shape, generator, dtype, device, **kwargs)

    # -- the map ------------------------------------------------------------------------------
    @property
    def num_elements(self) -> int:
        return int(self.gain.shape[-1])

    def coefficients(self, like: torch.Tensor | None = None) -> torch.Tensor:
        """c = g e^{jψ}, ``(..., M)`` complex (in ``like``'s precision when given)."""
        g, p = self.gain, self.phase
        if like is not None:
            real = real_dtype(like.dtype)
            g, p = g.to(real), p.to(real)
        return torch.polar(g, p)

    def apply(self, A, azimuth=None, elevation=None, subcarriers=None):
        if A.shape[-2] != self.num_elements:
            raise ValueError(f"GainPhaseError has M = {self.num_elements} elements but the steering "
                             f"matrix has {A.shape[-2]} rows")
        c = self.coefficients(A).unsqueeze(-1)  # (..., M, 1)
        if subcarriers is not None:
            c = c.unsqueeze(-3)  # (..., 1, M, 1) against (..., N, M, K)
        return c * A

    def extra_repr(self) -> str:
        return (f"M={self.num_elements}, batch={tuple(self.gain.shape[:-1])}, known={self.known}, "
                f"learnable={self.learnable}")
