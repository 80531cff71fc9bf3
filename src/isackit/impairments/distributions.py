r"""Distributions of random per-element gain and phase errors, with closed-form moments.

A random gain-phase error of element m is c_m = g_m e^{jψ_m} with the gain g_m and the
phase ψ_m independent, and independent across elements (seed 003, Sec. II-A).  The
statistical estimators and the average bounds of seed 003 need the moments of c:

* E[c] = E[g] · E[e^{jψ}],      E[|c|²] = E[g²],      E[c²] = E[g²] · E[e^{j2ψ}];
* element mean vector μ 1, correlation E[c c^H] = |μ|² 1 1^T + v I with v = E[g²] - |μ|²,
  covariance Cov(c) = v I, pseudo-covariance E[(c-μ)(c-μ)^T] = (E[c²] - μ²) I.

Gain laws (``mean()``, ``second_moment()``, ``sample()``):

* :class:`RicianGain` (ν, σ): g = |ν + σ (x + j y)|, x, y ~ N(0, 1) i.i.d.;
  E[g] = σ √(π/2) L_{1/2}(-ν²/(2σ²)), E[g²] = 2σ² + ν², with the Laguerre function
  L_{1/2}(x) = e^{x/2} [(1 - x) I_0(-x/2) - x I_1(-x/2)]; evaluated with the exponentially
  scaled Bessel functions i0e/i1e so that it is stable for large ν/σ (seed 003, Theorem 1).
* :class:`LogNormalGain` (std_db): g = 10^{X/20}, X ~ N(0, s²) (a Gaussian gain error in dB);
  with a = s ln(10)/20, E[g] = e^{a²/2}, E[g²] = e^{2a²}.
* :class:`UniformGain` (low, high): E[g] = (l + h)/2, E[g²] = (l² + lh + h²)/3.

Phase laws (``circular_moment(n)`` = E[e^{jnψ}], ``sample()``):

* :class:`VonMisesPhase` (κ, loc): E[e^{jnψ}] = e^{jn·loc} I_n(κ)/I_0(κ); I_1/I_0 = i1e/i0e
  and I_2/I_0 = 1 - 2 (I_1/I_0)/κ.  Sampled with the Best–Fisher (1979) rejection method,
  vectorised (the loop runs over rejection rounds, never over draws).
* :class:`GaussianPhase` (std): E[e^{jnψ}] = e^{-n² s²/2}.
* :class:`UniformPhase` (low, high): E[e^{jnψ}] = (e^{jnh} - e^{jnl}) / (jn(h - l)).

Higher moments (seed 003, Theorem 1 and Appendix A; the SDR analysis needs order 4):

* ``GainDistribution.moment(n)`` = E[gⁿ].  Rician: E[gⁿ] = (2σ²)^{n/2} Γ(1 + n/2)
  ₁F₁(−n/2; 1; −ν²/(2σ²)) — the *raw* moment with the complete Γ (the seed calls it the
  "n-th central moment" and writes a lower incomplete Γ; see the S3 specification, X5).
  ₁F₁(−n/2; 1; −x) is evaluated by the contiguous recurrence in its first argument
  (DLMF 13.3.1) from ₁F₁(1/2; 1; −x) = e^{−x/2} I_0(x/2) and ₁F₁(−1/2; 1; −x) = L_{1/2}(−x)
  (odd n) or from 1 and e^{−x} (even n), with exponentially scaled Bessel functions, so it
  is stable for large ν/σ.  E[g²] = ν² + 2σ², E[g⁴] = ν⁴ + 8ν²σ² + 8σ⁴.
* ``PhaseDistribution.circular_moment(n)`` = E[e^{jnψ}] for any integer n (von Mises:
  e^{jn·loc} I_n(κ)/I_0(κ); the seed derives R_1 by Taylor series, it is exactly I_1/I_0).
* :class:`ElementErrorDistribution` — the common interface of per-element error laws ζ:
  ``raw_moment(a, b)`` = E[ζ^a ζ*^b] (for independent gain and phase,
  E[g^{a+b}] E[e^{j(a−b)ψ}]), ``central_moment(a, b)`` = E[(ζ−μ)^a (ζ−μ)*^b] by the binomial
  expansion, and :meth:`~ElementErrorDistribution.moments` — the :class:`ErrorMoments`
  (μ, v, p̃, t₃, t₄) that the statistical likelihood, the average CRLB and the average-SDR
  analysis of seed 003 use: μ = E ζ, v = E|ζ−μ|², p̃ = E(ζ−μ)², t₃ = E[(ζ−μ)|ζ−μ|²],
  t₄ = E|ζ−μ|⁴.
* :class:`ComplexGaussianErrors` (μ, v): ζ ~ CN(μ, v), the complex-Gaussian law with the
  same mean and variance as another law (``ComplexGaussianErrors.matching(law)``): p̃ = 0,
  t₃ = 0, t₄ = 2v².  It is the law the seed's likelihood *assumes* ("gain-phase defects
  follow a complex Gaussian distribution"); drawing from it gives the data the statistical
  MLE and its CRLB are exact for.

All samplers take an explicit ``torch.Generator``; the generator's device must match
``device``.  Moments are returned as 0-d tensors of the requested dtype (float64 default).

Example:
    >>> law = GainPhaseDistribution(RicianGain(1.0, 0.1), VonMisesPhase(10.0))
    >>> m = law.moments()
    >>> round(m.mean.real, 6), round(m.variance, 6), round(m.pseudo_variance.real, 6)
    (0.953355, 0.111114, -0.0824)
    >>> round(float(RicianGain(1.0, 0.1).moment(3)), 6)
    1.045113
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from scipy import special as _sp

from .._dtypes import complex_dtype

__all__ = [
    "GainDistribution",
    "PhaseDistribution",
    "RicianGain",
    "LogNormalGain",
    "UniformGain",
    "VonMisesPhase",
    "GaussianPhase",
    "UniformPhase",
    "GainPhaseDistribution",
    "ElementErrorDistribution",
    "ComplexGaussianErrors",
    "ErrorMoments",
]




def _shape(shape) -> tuple[int, ...]:
    if isinstance(shape, int):
        shape = (shape,)
    shape = tuple(int(s) for s in shape)
    if any(s < 0 for s in shape):
        raise ValueError(f"sample shape must have non-negative sizes, got {shape}")
    return shape


def _check_float(x, name: str, *, positive: bool = False) -> float:
    v = float(x)
    if not math.isfinite(v) or (positive and v <= 0) or (not positive and v < 0):
        kind = "positive" if positive else "non-negative"
        raise ValueError(f"{name} must be {kind} and finite, got {x}")
    return v


class GainDistribution:
    """A law of a positive per-element gain g (interface)."""

    def sample(self, shape, generator: torch.Generator | None = None, dtype=torch.float32,
               device=None) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def mean(self, dtype=torch.float64) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def second_moment(self, dtype=torch.float64) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def moment(self, n: int, dtype=torch.float64) -> torch.Tensor:
        """E[gⁿ] for an integer n ≥ 0 (real 0-d).  Laws without a closed form for n > 2 raise."""
        n = _check_order(n)
        if n == 0:
            return torch.ones((), dtype=dtype)
        if n == 1:
            return self.mean(dtype)
        if n == 2:
            return self.second_moment(dtype)
        raise NotImplementedError(f"{type(self).__name__} has no closed-form moment of order {n}")


def _check_order(n) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"moment order must be a non-negative integer, got {n!r}")
    return n


def _kummer_neg_half_orders(n: int, x: float) -> float:
    r"""₁F₁(−n/2; 1; −x) for an integer n ≥ 0 and x ≥ 0.

    Contiguous recurrence in a (DLMF 13.3.1 with b = 1, z = −x):
    M(a−1) = [a M(a+1) − (2a − 1 − x) M(a)] / (1 − a), started from
    (M(1/2), M(−1/2)) = (e^{−x/2} I_0(x/2), L_{1/2}(−x)) for odd n and (M(1), M(0)) = (e^{−x}, 1)
    for even n.
    """
    if n % 2:
        h = x / 2
        i0e, i1e = float(_sp.i0e(h)), float(_sp.i1e(h))
        upper, cur, a = i0e, (1 + x) * i0e + x * i1e, -0.5
    else:
        upper, cur, a = math.exp(-x), 1.0, 0.0
    while a > -n / 2:
        upper, cur = cur, (a * upper - (2 * a - 1 - x) * cur) / (1 - a)
        a -= 1.0
    return cur


class PhaseDistribution:
    """A law of a per-element phase error ψ (radians) (interface)."""

    def sample(self, shape, generator: torch.Generator | None = None, dtype=torch.float32,
               device=None) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def circular_moment(self, n: int = 1, dtype=torch.float64) -> torch.Tensor:  # pragma: no cover
        """E[e^{jnψ}] as a complex 0-d tensor."""
        raise NotImplementedError


class RicianGain(GainDistribution):
    """Rician gain, location ν ≥ 0 and scale σ > 0 (seed 003): g = |ν + σ(x + jy)|."""

    def __init__(self, nu: float = 1.0, sigma: float = 0.1):
        self.nu = _check_float(nu, "nu")
        self.sigma = _check_float(sigma, "sigma", positive=True)

    def __repr__(self):
        return f"RicianGain(nu={self.nu}, sigma={self.sigma})"

    def sample(self, shape, generator=None, dtype=torch.float32, device=None):
        shape = _shape(shape)
        z = torch.randn((*shape, 2), generator=generator, dtype=dtype, device=device) * self.sigma
        return torch.sqrt((z[..., 0] + self.nu) ** 2 + z[..., 1] ** 2)

    def mean(self, dtype=torch.float64):
        x = torch.tensor(-self.nu ** 2 / (2 * self.sigma ** 2), dtype=torch.float64)
        # e^{x/2} I_k(-x/2) = i_ke(-x/2) since -x/2 >= 0
        lag = (1 - x) * torch.special.i0e(-x / 2) - x * torch.special.i1e(-x / 2)
        return (self.sigma * math.sqrt(math.pi / 2) * lag).to(dtype)

    def second_moment(self, dtype=torch.float64):
        return torch.tensor(2 * self.sigma ** 2 + self.nu ** 2, dtype=dtype)

    def moment(self, n: int, dtype=torch.float64):
        """E[gⁿ] = (2σ²)^{n/2} Γ(1 + n/2) ₁F₁(−n/2; 1; −ν²/(2σ²)) (seed 003, Theorem 1)."""
        n = _check_order(n)
        if n in (1, 2):
            return super().moment(n, dtype)
        x = self.nu ** 2 / (2 * self.sigma ** 2)
        val = (2 * self.sigma ** 2) ** (n / 2) * math.gamma(1 + n / 2) * _kummer_neg_half_orders(n, x)
        return torch.tensor(val, dtype=dtype)


class LogNormalGain(GainDistribution):
    """Gain with a Gaussian error in dB: g = 10^{X/20}, X ~ N(0, std_db²)."""

    def __init__(self, std_db: float = 0.5):
        self.std_db = _check_float(std_db, "std_db")

    def __repr__(self):
        return f"LogNormalGain(std_db={self.std_db})"

    @property
    def _a(self) -> float:
        return self.std_db * math.log(10.0) / 20.0

    def sample(self, shape, generator=None, dtype=torch.float32, device=None):
        x = torch.randn(_shape(shape), generator=generator, dtype=dtype, device=device)
        return torch.exp(x * self._a)

    def mean(self, dtype=torch.float64):
        return torch.tensor(math.exp(self._a ** 2 / 2), dtype=dtype)

    def second_moment(self, dtype=torch.float64):
        return torch.tensor(math.exp(2 * self._a ** 2), dtype=dtype)

    def moment(self, n: int, dtype=torch.float64):
        """E[gⁿ] = e^{n² a²/2}."""
        n = _check_order(n)
        return torch.tensor(math.exp((n * self._a) ** 2 / 2), dtype=dtype)


class UniformGain(GainDistribution):
    """Gain uniform on [low, high] (0 ≤ low ≤ high)."""

    def __init__(self, low: float = 0.9, high: float = 1.1):
        self.low = _check_float(low, "low")
        self.high = _check_float(high, "high")
        if self.high < self.low:
            raise ValueError(f"need low <= high, got low={low}, high={high}")

    def __repr__(self):
        return f"UniformGain(low={self.low}, high={self.high})"

    def sample(self, shape, generator=None, dtype=torch.float32, device=None):
        u = torch.rand(_shape(shape), generator=generator, dtype=dtype, device=device)
        return self.low + (self.high - self.low) * u

    def mean(self, dtype=torch.float64):
        return torch.tensor((self.low + self.high) / 2, dtype=dtype)

    def second_moment(self, dtype=torch.float64):
        lo, hi = self.low, self.high
        return torch.tensor((lo * lo + lo * hi + hi * hi) / 3, dtype=dtype)

    def moment(self, n: int, dtype=torch.float64):
        """E[gⁿ] = (hⁿ⁺¹ − lⁿ⁺¹) / ((n + 1)(h − l))."""
        n = _check_order(n)
        lo, hi = self.low, self.high
        val = lo ** n if hi == lo else (hi ** (n + 1) - lo ** (n + 1)) / ((n + 1) * (hi - lo))
        return torch.tensor(val, dtype=dtype)


class VonMisesPhase(PhaseDistribution):
    """Von Mises phase, concentration κ > 0 and location ``loc`` (seed 003: loc = 0)."""

    def __init__(self, kappa: float = 10.0, loc: float = 0.0):
        self.kappa = _check_float(kappa, "kappa", positive=True)
        self.loc = float(loc)
        if not math.isfinite(self.loc):
            raise ValueError(f"loc must be finite, got {loc}")

    def __repr__(self):
        return f"VonMisesPhase(kappa={self.kappa}, loc={self.loc})"

    def bessel_ratio(self, n: int = 1, dtype=torch.float64) -> torch.Tensor:
        """I_n(κ)/I_0(κ) for an integer n ≥ 0 (exponentially scaled Bessel functions)."""
        k = torch.tensor(self.kappa, dtype=torch.float64)
        r1 = torch.special.i1e(k) / torch.special.i0e(k)
        if n == 0:
            out = torch.ones_like(k)
        elif n == 1:
            out = r1
        elif n == 2:
            # I_2 = I_0 - (2/κ) I_1; series κ²/8 - κ⁴/96 for small κ (cancellation)
            out = torch.where(k < 1e-3, k ** 2 / 8 - k ** 4 / 96, 1 - 2 * r1 / k)
        elif isinstance(n, int) and not isinstance(n, bool) and n > 2:
            out = torch.tensor(float(_sp.ive(n, self.kappa) / _sp.ive(0, self.kappa)), dtype=torch.float64)
        else:
            raise ValueError(f"bessel_ratio needs an integer n >= 0, got {n!r}")
        return out.to(dtype)

    def circular_moment(self, n: int = 1, dtype=torch.float64):
        n = int(n)
        r = self.bessel_ratio(abs(n), torch.float64)
        out = r * torch.exp(torch.tensor(1j * n * self.loc, dtype=torch.complex128))
        return out.to(complex_dtype(dtype))

    def sample(self, shape, generator=None, dtype=torch.float32, device=None):
        shape = _shape(shape)
        kappa = self.kappa
        tau = 1.0 + math.sqrt(1.0 + 4.0 * kappa * kappa)
        rho = (tau - math.sqrt(2.0 * tau)) / (2.0 * kappa)
        r = (1.0 + rho * rho) / (2.0 * rho)
        n = math.prod(shape)
        out = torch.empty(n, dtype=torch.float64, device=device)
        pending = torch.arange(n, device=device)
        while pending.numel() > 0:  # rejection rounds (acceptance ≥ 0.65), not a loop over draws
            u = torch.rand((3, pending.numel()), generator=generator, dtype=torch.float64, device=device)
            z = torch.cos(math.pi * u[0])
            f = (1.0 + r * z) / (r + z)
            c = kappa * (r - f)
            ok = (c * (2.0 - c) - u[1] > 0) | (torch.log(c / u[1]) + 1.0 - c >= 0)
            theta = torch.sign(u[2] - 0.5) * torch.acos(f.clamp(-1.0, 1.0))
            out[pending[ok]] = theta[ok]
            pending = pending[~ok]
        out = torch.remainder(out + self.loc + math.pi, 2 * math.pi) - math.pi
        return out.reshape(shape).to(dtype)


class GaussianPhase(PhaseDistribution):
    """Phase error ψ ~ N(0, std²), std in radians (use ``math.radians`` for degrees)."""

    def __init__(self, std: float = math.radians(5.0)):
        self.std = _check_float(std, "std")

    def __repr__(self):
        return f"GaussianPhase(std={self.std})"

    def sample(self, shape, generator=None, dtype=torch.float32, device=None):
        return torch.randn(_shape(shape), generator=generator, dtype=dtype, device=device) * self.std

    def circular_moment(self, n: int = 1, dtype=torch.float64):
        return torch.tensor(math.exp(-(n * self.std) ** 2 / 2) + 0j, dtype=complex_dtype(dtype))


class UniformPhase(PhaseDistribution):
    """Phase error uniform on [low, high] radians."""

    def __init__(self, low: float = -math.pi / 36, high: float = math.pi / 36):
        self.low, self.high = float(low), float(high)
        if not (math.isfinite(self.low) and math.isfinite(self.high)) or self.high < self.low:
            raise ValueError(f"need finite low <= high, got low={low}, high={high}")

    def __repr__(self):
        return f"UniformPhase(low={self.low}, high={self.high})"

    def sample(self, shape, generator=None, dtype=torch.float32, device=None):
        u = torch.rand(_shape(shape), generator=generator, dtype=dtype, device=device)
        return self.low + (self.high - self.low) * u

    def circular_moment(self, n: int = 1, dtype=torch.float64):
        lo, hi, n = self.low, self.high, int(n)
        if n == 0:
            val = 1.0 + 0j
        elif hi == lo:
            val = complex(math.cos(n * lo), math.sin(n * lo))
        else:
            e = lambda t: complex(math.cos(n * t), math.sin(n * t))  # noqa: E731
            val = (e(hi) - e(lo)) / (1j * n * (hi - lo))
        return torch.tensor(val, dtype=complex_dtype(dtype))


@dataclass(frozen=True)
class ErrorMoments:
    r"""Central moments of a per-element error ζ (Python numbers, double precision).

    Attributes:
        mean: μ = E[ζ] (complex).
        variance: v = E|ζ − μ|² (real ≥ 0).
        pseudo_variance: p̃ = E[(ζ − μ)²] (complex; real and usually negative for a
            von Mises phase with loc = 0: the errors are improper).
        third: t₃ = E[(ζ − μ)|ζ − μ|²] (complex).
        fourth: t₄ = E|ζ − μ|⁴ (real ≥ 0).
    """

    mean: complex
    variance: float
    pseudo_variance: complex
    third: complex
    fourth: float

    @classmethod
    def ideal(cls) -> ErrorMoments:
        """ζ ≡ 1 (no errors): μ = 1, every central moment 0."""
        return cls(1.0 + 0j, 0.0, 0j, 0j, 0.0)


class ElementErrorDistribution:
    r"""Law of i.i.d. complex per-element errors ζ_m (interface).

    Subclasses implement :meth:`sample` and :meth:`raw_moment`; every other moment follows.
    """

    def sample(self, num_elements: int, batch_shape=(), generator=None, dtype=torch.float32,
               device=None) -> torch.Tensor:  # pragma: no cover - interface
        """Draw ζ ``(*batch_shape, M)`` complex (complex128 for float64)."""
        raise NotImplementedError

    def raw_moment(self, a: int, b: int, dtype=torch.float64) -> torch.Tensor:  # pragma: no cover
        """E[ζ^a ζ*^b] (complex 0-d)."""
        raise NotImplementedError

    def central_moment(self, a: int, b: int, dtype=torch.float64) -> torch.Tensor:
        r"""E[(ζ − μ)^a (ζ − μ)*^b] = Σ_{i,j} C(a,i) C(b,j) (−μ)^{a−i} (−μ*)^{b−j} E[ζ^i ζ*^j]."""
        a, b = _check_order(a), _check_order(b)
        mu = complex(self.raw_moment(1, 0))
        tot = 0j
        for i in range(a + 1):
            for j in range(b + 1):
                tot += (math.comb(a, i) * math.comb(b, j) * (-mu) ** (a - i) * (-mu.conjugate()) ** (b - j)
                        * complex(self.raw_moment(i, j)))
        return torch.tensor(tot, dtype=complex_dtype(dtype))

    def moments(self) -> ErrorMoments:
        """The :class:`ErrorMoments` (μ, v, p̃, t₃, t₄) of this law."""
        return ErrorMoments(
            mean=complex(self.raw_moment(1, 0)),
            variance=max(float(self.central_moment(1, 1).real), 0.0),
            pseudo_variance=complex(self.central_moment(2, 0)),
            third=complex(self.central_moment(2, 1)),
            fourth=max(float(self.central_moment(2, 2).real), 0.0),
        )

    # -- first and second moments (seed 003, (9)-(12)) --------------------------------------
    def mean(self, dtype=torch.float64) -> torch.Tensor:
        """μ = E[ζ] (complex 0-d)."""
        return self.raw_moment(1, 0, dtype)

    def second_moment(self, dtype=torch.float64) -> torch.Tensor:
        """E[|ζ|²] (real 0-d)."""
        return self.raw_moment(1, 1, torch.float64).real.to(dtype)

    def pseudo_second_moment(self, dtype=torch.float64) -> torch.Tensor:
        """E[ζ²] (complex 0-d)."""
        return self.raw_moment(2, 0, dtype)

    def variance(self, dtype=torch.float64) -> torch.Tensor:
        """v = E[|ζ - μ|²] = E|ζ|² - |μ|²."""
        return (self.second_moment(torch.float64) - self.mean().abs() ** 2).to(dtype)

    def correlation(self, num_elements: int, dtype=torch.float64, device=None) -> torch.Tensor:
        """E[ζ ζ^H] = |μ|² 1 1^T + v I, ``(M, M)`` complex."""
        m = int(num_elements)
        mu2 = float(self.mean().abs() ** 2)
        v = float(self.variance())
        out = torch.full((m, m), mu2, dtype=dtype, device=device) + v * torch.eye(m, dtype=dtype, device=device)
        return out.to(complex_dtype(dtype))

    def covariance(self, num_elements: int, dtype=torch.float64, device=None) -> torch.Tensor:
        """Cov(ζ) = E[(ζ - μ)(ζ - μ)^H] = v I, ``(M, M)`` complex (independent elements)."""
        m = int(num_elements)
        return (float(self.variance()) * torch.eye(m, dtype=dtype, device=device)).to(complex_dtype(dtype))

    def pseudo_covariance(self, num_elements: int, dtype=torch.float64, device=None) -> torch.Tensor:
        """E[(ζ - μ)(ζ - μ)^T] = (E[ζ²] - μ²) I, ``(M, M)`` complex."""
        m = int(num_elements)
        val = complex(self.pseudo_second_moment() - self.mean() ** 2)
        return val * torch.eye(m, dtype=complex_dtype(dtype), device=device)


class GainPhaseDistribution(ElementErrorDistribution):
    r"""Joint law of independent per-element errors c_m = g_m e^{jψ_m} (seed 003).

    Args:
        gain: a :class:`GainDistribution` (e.g. ``RicianGain(ν, σ)``).
        phase: a :class:`PhaseDistribution` (e.g. ``VonMisesPhase(κ)``).

    Raw moments: E[c^a c*^b] = E[g^{a+b}] E[e^{j(a−b)ψ}] (gain independent of phase).

    Example:
        >>> d = GainPhaseDistribution(RicianGain(1.0, 0.1), VonMisesPhase(10.0))
        >>> c = d.sample(8, (100,), torch.Generator().manual_seed(0))   # (100, 8) complex64
    """

    def __init__(self, gain: GainDistribution, phase: PhaseDistribution):
        if not isinstance(gain, GainDistribution):
            raise TypeError(f"gain must be a GainDistribution, got {type(gain).__name__}")
        if not isinstance(phase, PhaseDistribution):
            raise TypeError(f"phase must be a PhaseDistribution, got {type(phase).__name__}")
        self.gain, self.phase = gain, phase

    def __repr__(self):
        return f"GainPhaseDistribution({self.gain!r}, {self.phase!r})"

    def sample_gain_phase(self, num_elements: int, batch_shape=(), generator=None,
                          dtype=torch.float32, device=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw gains and phases, each ``(*batch_shape, M)`` real."""
        m = int(num_elements)
        if m <= 0:
            raise ValueError(f"num_elements must be a positive integer, got {num_elements}")
        shape = (*_shape(batch_shape), m)
        return (self.gain.sample(shape, generator, dtype, device),
                self.phase.sample(shape, generator, dtype, device))

    def sample(self, num_elements: int, batch_shape=(), generator=None, dtype=torch.float32,
               device=None) -> torch.Tensor:
        """Draw c ``(*batch_shape, M)`` complex (complex128 for float64)."""
        g, psi = self.sample_gain_phase(num_elements, batch_shape, generator, dtype, device)
        return torch.polar(g, psi)

    def raw_moment(self, a: int, b: int, dtype=torch.float64) -> torch.Tensor:
        """E[c^a c*^b] = E[g^{a+b}] E[e^{j(a−b)ψ}] (complex 0-d)."""
        a, b = _check_order(a), _check_order(b)
        val = self.gain.moment(a + b, torch.float64) * self.phase.circular_moment(a - b, torch.float64)
        return val.to(complex_dtype(dtype))

    def mean(self, dtype=torch.float64) -> torch.Tensor:
        """μ = E[c] = E[g] E[e^{jψ}] (complex 0-d)."""
        return (self.gain.mean(torch.float64) * self.phase.circular_moment(1)).to(complex_dtype(dtype))

    def second_moment(self, dtype=torch.float64) -> torch.Tensor:
        """E[|c|²] = E[g²] (real 0-d)."""
        return self.gain.second_moment(dtype)

    def pseudo_second_moment(self, dtype=torch.float64) -> torch.Tensor:
        """E[c²] = E[g²] E[e^{j2ψ}] (complex 0-d)."""
        return (self.gain.second_moment(torch.float64) * self.phase.circular_moment(2)).to(complex_dtype(dtype))


class ComplexGaussianErrors(ElementErrorDistribution):
    r"""ζ ~ CN(μ, v): circular complex-Gaussian errors around a mean μ (seed 003's model law).

    Raw moments: with ζ = μ + δ, E[δ^i δ*^j] = i! vⁱ δ_ij, so
    E[ζ^a ζ*^b] = Σ_i C(a,i) C(b,i) i! vⁱ μ^{a−i} μ*^{b−i};  p̃ = 0, t₃ = 0, t₄ = 2v².

    Args:
        mean: μ (complex or real).
        variance: v ≥ 0.

    Example:
        >>> law = GainPhaseDistribution(RicianGain(1.0, 0.1), VonMisesPhase(10.0))
        >>> g = ComplexGaussianErrors.matching(law)
        >>> round(g.moments().variance, 6), g.moments().pseudo_variance
        (0.111114, 0j)
    """

    def __init__(self, mean: complex = 1.0, variance: float = 0.0):
        mu = complex(mean)
        if not (math.isfinite(mu.real) and math.isfinite(mu.imag)):
            raise ValueError(f"mean must be finite, got {mean}")
        self.mean_value = mu
        self.variance_value = _check_float(variance, "variance")

    @classmethod
    def matching(cls, law: ElementErrorDistribution) -> ComplexGaussianErrors:
        """The complex-Gaussian law with ``law``'s mean and variance."""
        if not isinstance(law, ElementErrorDistribution):
            raise TypeError(f"law must be an ElementErrorDistribution, got {type(law).__name__}")
        return cls(complex(law.mean()), float(law.variance()))

    def __repr__(self):
        return f"ComplexGaussianErrors(mean={self.mean_value}, variance={self.variance_value})"

    def sample(self, num_elements: int, batch_shape=(), generator=None, dtype=torch.float32,
               device=None) -> torch.Tensor:
        m = int(num_elements)
        if m <= 0:
            raise ValueError(f"num_elements must be a positive integer, got {num_elements}")
        shape = (*_shape(batch_shape), m)
        z = torch.randn((*shape, 2), generator=generator, dtype=dtype, device=device)
        z = torch.view_as_complex(z.contiguous()) * math.sqrt(self.variance_value / 2)
        return z + torch.tensor(self.mean_value, dtype=z.dtype, device=z.device)

    def raw_moment(self, a: int, b: int, dtype=torch.float64) -> torch.Tensor:
        a, b = _check_order(a), _check_order(b)
        mu, v = self.mean_value, self.variance_value
        tot = 0j
        for i in range(min(a, b) + 1):
            tot += math.comb(a, i) * math.comb(b, i) * math.factorial(i) * v ** i * mu ** (a - i) \
                * mu.conjugate() ** (b - i)
        return torch.tensor(tot, dtype=complex_dtype(dtype))
