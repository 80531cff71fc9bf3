r"""The dtype rule, eps-relative tolerances and the "numerically singular" test, in one place.

**Dtype rule.**  isackit computes in float32/complex64 (simulation, learning) or
float64/complex128 (bounds, references).  Real and complex dtypes come in pairs:

==========  ============
real        complex
==========  ============
float32     complex64
float64     complex128
==========  ============

:func:`complex_dtype` and :func:`real_dtype` map across the pair; :func:`real_dtype_of` /
:func:`complex_dtype_of` read the pair off a tensor.  Half precision (float16, bfloat16,
complex32) is not supported: eigen-decompositions and solves have no half kernels and its
eps (≈ 1e-3) is above every tolerance the estimators use; :func:`check_supported_dtype`
rejects it with a one-line message.

**Tolerances.**  A floating-point result carries rounding errors of order κ·ε (κ the
condition number of the problem, ε the unit roundoff of the dtype).  Tests and algorithms
state their tolerances in those terms with :func:`eps` and :func:`tolerance`, never as a bare
``1e-9`` that is too loose in float64 and meaningless in float32, and never as bitwise
equality between computations that are batched differently (BLAS kernels differ by CPU
instruction set and thread count).

**Numerically singular, numerically rank-deficient.**  Two tests on the eigenvalues
λ_min = λ_1 ≤ … ≤ λ_n = λ_max of a Hermitian positive semi-definite n × n matrix, both
here and nowhere else:

* *singular* (:func:`is_numerically_singular`): λ_min ≤ 10·ε·λ_max, i.e. the condition
  number exceeds 1/(10 ε), so a solve or an inverse has a relative error above about 10 %
  (it is κ·ε); an estimator that inverts the matrix (MVDR, a least-squares fit) flags the
  batch element instead of returning a meaningless number;
* *rank < K* (:func:`is_rank_deficient`): λ_{n-K+1} ≤ 10·n·ε·λ_max, i.e. the K-th largest
  eigenvalue is within the rounding error of a backward-stable eigen-solver (of order
  n·ε·λ_max) of zero, so a K-dimensional signal subspace is not determined.

Example:
    >>> complex_dtype(torch.float64), real_dtype(torch.complex64)
    (torch.complex128, torch.float32)
    >>> eps(torch.complex128) == torch.finfo(torch.float64).eps
    True
    >>> rank_threshold(torch.float64, 8) == 80 * eps(torch.float64)
    True
    >>> is_numerically_singular(torch.tensor([1e-17, 1.0], dtype=torch.float64))
    tensor(True)
"""

from __future__ import annotations

import torch

__all__ = [
    "REAL_DTYPES",
    "COMPLEX_DTYPES",
    "complex_dtype",
    "real_dtype",
    "real_dtype_of",
    "complex_dtype_of",
    "check_supported_dtype",
    "common_complex_dtype",
    "eps",
    "tolerance",
    "singular_threshold",
    "rank_threshold",
    "is_numerically_singular",
    "is_rank_deficient",
    "abs2",
]

#: the supported real dtypes, and their complex partners
REAL_DTYPES = (torch.float32, torch.float64)
COMPLEX_DTYPES = (torch.complex64, torch.complex128)
_PAIR = {torch.float32: torch.complex64, torch.float64: torch.complex128}
_REAL = {torch.complex64: torch.float32, torch.complex128: torch.float64,
         torch.float32: torch.float32, torch.float64: torch.float64}


def complex_dtype(dtype: torch.dtype) -> torch.dtype:
    """The complex dtype paired with ``dtype``: complex128 for float64/complex128, else complex64."""
    return torch.complex128 if dtype in (torch.float64, torch.complex128) else torch.complex64


def real_dtype(dtype: torch.dtype) -> torch.dtype:
    """The real dtype paired with ``dtype``: float64 for float64/complex128, else float32."""
    return torch.float64 if dtype in (torch.float64, torch.complex128) else torch.float32


def real_dtype_of(x: torch.Tensor) -> torch.dtype:
    """The real dtype of the pair ``x`` belongs to (float64 for complex128/float64, else float32)."""
    return real_dtype(x.dtype)


def complex_dtype_of(x: torch.Tensor) -> torch.dtype:
    """The complex dtype of the pair ``x`` belongs to (complex128 for complex128/float64, else complex64)."""
    return complex_dtype(x.dtype)


def check_supported_dtype(x: torch.Tensor, name: str, *, complex_only: bool = False) -> torch.Tensor:
    """Raise a one-line ``TypeError`` unless ``x`` is float32/float64/complex64/complex128.

    With ``complex_only`` only complex64/complex128 are accepted.
    """
    allowed = COMPLEX_DTYPES if complex_only else REAL_DTYPES + COMPLEX_DTYPES
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in allowed:
        hint = " (half precision is not supported: use float32/complex64 or float64/complex128)" \
            if x.dtype in (torch.float16, torch.bfloat16, torch.complex32) else ""
        raise TypeError(f"{name} must be {' or '.join(str(d).replace('torch.', '') for d in allowed)}, "
                        f"got {str(x.dtype).replace('torch.', '')}{hint}")
    return x


def common_complex_dtype(*tensors: torch.Tensor, names: tuple[str, ...] | None = None) -> torch.dtype:
    """The one complex dtype shared by ``tensors``; mixed complex64/complex128 raises ``TypeError``.

    Silent promotion would run a float32 estimator in float64 (or truncate a float64
    reference to float32), so the caller must convert explicitly.
    """
    dts = {t.dtype for t in tensors}
    if len(dts) != 1 or next(iter(dts)) not in COMPLEX_DTYPES:
        names = names or tuple(f"input {i}" for i in range(len(tensors)))
        got = ", ".join(f"{n}: {str(t.dtype).replace('torch.', '')}" for n, t in zip(names, tensors, strict=True))
        raise TypeError(f"inputs must share one complex dtype (complex64 or complex128), got {got}")
    return next(iter(dts))


def eps(dtype: torch.dtype) -> float:
    """Unit roundoff ε of ``dtype`` (of its real partner for complex dtypes)."""
    return torch.finfo(_REAL.get(dtype, dtype)).eps


def tolerance(dtype: torch.dtype, condition: float = 1.0, factor: float = 100.0) -> float:
    r"""Relative tolerance ``factor · condition · ε(dtype)`` for comparing two results.

    ``condition`` is the condition number of the computation (the factor by which it can
    amplify relative rounding errors), ``factor`` the allowance for the number of operations
    (a few hundred for a batched eigen-decomposition or a chain of matrix products).
    """
    return float(factor) * float(condition) * eps(dtype)


def singular_threshold(dtype: torch.dtype) -> float:
    """10·ε: a PSD matrix with λ_min ≤ 10·ε·λ_max is numerically singular (see the module doc)."""
    return 10.0 * eps(dtype)


def rank_threshold(dtype: torch.dtype, size: int) -> float:
    """10·n·ε: an eigenvalue ≤ 10·n·ε·λ_max of an n × n PSD matrix is numerically zero."""
    return 10.0 * int(size) * eps(dtype)


def is_numerically_singular(eigenvalues: torch.Tensor) -> torch.Tensor:
    """``(...)`` bool: True where ascending eigenvalues ``(..., n)`` of a PSD matrix have
    λ_min ≤ 10·ε·λ_max (or λ_max ≤ 0): its inverse is not accurate to 10 %."""
    lmax = eigenvalues[..., -1]
    return (eigenvalues[..., 0] <= singular_threshold(eigenvalues.dtype) * lmax.abs()) | (lmax <= 0)


def is_rank_deficient(eigenvalues: torch.Tensor, rank: int) -> torch.Tensor:
    """``(...)`` bool: True where ascending eigenvalues ``(..., n)`` of a PSD matrix have fewer
    than ``rank`` eigenvalues above 10·n·ε·λ_max (or λ_max ≤ 0)."""
    n = eigenvalues.shape[-1]
    lmax = eigenvalues[..., -1]
    lk = eigenvalues[..., n - int(rank)]
    return (lk <= rank_threshold(eigenvalues.dtype, n) * lmax.abs()) | (lmax <= 0)


def abs2(z: torch.Tensor) -> torch.Tensor:
    """|z|² as Re(z)² + Im(z)² (real; no square root, so cheaper than ``z.abs() ** 2`` forward
    and backward, and differentiable at 0)."""
    return z.real.square() + z.imag.square()
