r"""Accuracy and detection metrics: errors after optimal assignment, RMSE, failure rate, GOSPA,
Pd/Pfa helpers; the symbol error rate is :func:`isackit.signals.constellations.symbol_error_rate`,
re-exported here so that all metrics are importable from one place.

Conventions (``shared/design/conventions.md``, "Metrics"):

* estimates ``(..., K̂, P)`` and truth ``(..., K, P)`` (P parameters per source, e.g. azimuth,
  delay); a NaN row is a source that was not found (estimates) or does not exist (truth);
* multi-source errors are computed after the optimal assignment (the permutation minimising
  the summed squared, optionally weighted and wrapped, error), or with GOSPA where the
  number of targets is unknown or may be wrong;
* RMSE = sqrt(mean of the squared error over trials and sources), per parameter.

Assignment: for n = max(K̂, K) ≤ ``max_enumerate`` (default 5, i.e. ≤ 120 permutations) all
permutations are scored at once in torch (fully batched, on the input's device); above that
:func:`scipy.optimize.linear_sum_assignment` (Hungarian / Jonker–Volgenant) runs per batch
element.  Both give the same optimum (``tests/test_metrics.py``).  Nothing here is meant to be
differentiated (assignments are discrete); values follow the input's dtype/device.

GOSPA: Rahmathullah, García-Fernández & Svensson, "Generalized optimal sub-pattern
assignment metric", FUSION 2017, with α = 2:
    d_p^(c)(X, Y) = [min_γ Σ_{(i,j)∈γ} d(x_i, y_j)^p + (c^p/2)(|X| + |Y| - 2|γ|)]^{1/p}.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from ._checks import check_choice, check_ndim_at_least, check_positive
from .signals.constellations import symbol_error_rate  # the one SER, re-exported here

__all__ = [
    "GospaResult",
    "assignment_errors",
    "detection_rates",
    "exceedance_probability",
    "failure_rate",
    "gospa",
    "match_estimates",
    "optimal_assignment",
    "ratio_interval",
    "rmse",
    "squared_errors",
    "symbol_error_rate",
    "threshold_for_false_alarm",
    "wilson_interval",
]


@lru_cache(maxsize=8)
def _permutations(n: int) -> torch.Tensor:
    return torch.tensor(list(itertools.permutations(range(n))), dtype=torch.long).reshape(-1, n)


def optimal_assignment(cost: torch.Tensor, max_enumerate: int = 5) -> torch.Tensor:
    r"""Row-to-column assignment minimising Σ_i cost[i, π(i)] for square costs ``(..., n, n)``.

    Args:
        cost: ``(..., n, n)`` real; NaN/Inf entries are treated as prohibitively large.
        max_enumerate: enumerate all n! permutations (batched torch) when n ≤ this value,
            otherwise call SciPy's ``linear_sum_assignment`` per batch element.

    Returns:
        ``(..., n)`` int64, column assigned to each row (ties resolved deterministically).
    """
    check_ndim_at_least(cost, 2, "cost", "(..., n, n)")
    n = cost.shape[-1]
    if cost.shape[-2] != n:
        raise ValueError(f"cost must be square (..., n, n), got {tuple(cost.shape)}")
    if cost.is_complex():
        raise TypeError("cost must be real")
    if n == 0:
        return torch.zeros(cost.shape[:-1], dtype=torch.long, device=cost.device)
    if not cost.is_floating_point():
        cost = cost.to(torch.float64)
    # NaN/Inf entries cost more than any permutation of finite entries can differ by, with a
    # value scaled to the finite costs of each batch element (so float32 keeps the resolution)
    finite = torch.isfinite(cost)
    scale = torch.where(finite, cost.abs(), torch.zeros_like(cost)).amax(dim=(-2, -1), keepdim=True)
    cost = torch.where(finite, cost, 2.0 * n * scale + 1.0)
    if n <= max_enumerate:
        perms = _permutations(n).to(cost.device)  # (n!, n)
        rows = torch.arange(n, device=cost.device)
        totals = cost[..., rows, perms].sum(-1)  # (..., n!)
        return perms[totals.argmin(-1)]
    flat = cost.reshape(-1, n, n).detach().cpu().numpy()
    out = np.empty((flat.shape[0], n), dtype=np.int64)
    for b in range(flat.shape[0]):  # SciPy fallback for large n: one call per batch element
        r, c = linear_sum_assignment(flat[b])
        out[b, r] = c
    return torch.from_numpy(out).reshape(cost.shape[:-1]).to(cost.device)


def _wrap(e: torch.Tensor, period) -> torch.Tensor:
    if period is None:
        return e
    per = torch.as_tensor(period, dtype=e.dtype, device=e.device)
    return torch.remainder(e + per / 2, per) - per / 2


def _check_pair(estimates, truth):
    check_ndim_at_least(estimates, 2, "estimates", "(..., K_hat, P)")
    check_ndim_at_least(truth, 2, "truth", "(..., K, P)")
    if estimates.shape[-1] != truth.shape[-1]:
        raise ValueError(f"estimates (..., K_hat, P={estimates.shape[-1]}) and truth (..., K, P={truth.shape[-1]}) "
                         "must have the same number of parameters P")
    if estimates.is_complex() or truth.is_complex():
        raise TypeError("estimates and truth must be real")
    truth = truth.to(device=estimates.device, dtype=estimates.dtype if estimates.is_floating_point() else None)
    batch = torch.broadcast_shapes(estimates.shape[:-2], truth.shape[:-2])
    return (estimates.expand(*batch, *estimates.shape[-2:]), truth.expand(*batch, *truth.shape[-2:]))


def _pad_rows(x: torch.Tensor, n: int) -> torch.Tensor:
    if x.shape[-2] == n:
        return x
    pad = torch.full((*x.shape[:-2], n - x.shape[-2], x.shape[-1]), float("nan"), dtype=x.dtype, device=x.device)
    return torch.cat([x, pad], dim=-2)


def _pair_diff(est, truth, weights, period):
    # (..., n, 1, P) - (..., 1, n, P) -> (..., n_est, n_true, P)
    d = _wrap(est.unsqueeze(-2) - truth.unsqueeze(-3), period)
    if weights is not None:
        d = d * torch.as_tensor(weights, dtype=d.dtype, device=d.device)
    return d


def match_estimates(estimates: torch.Tensor, truth: torch.Tensor, weights=None, period=None,
                    max_enumerate: int = 5) -> torch.Tensor:
    r"""Reorder the estimates to the true sources by optimal assignment.

    The cost of pairing estimate i with source k is Σ_p (w_p · wrap(x̂_ip - x_kp))²; missing
    estimates (NaN rows) are never preferred to real ones.

    Args:
        estimates: ``(..., K̂, P)``; truth: ``(..., K, P)`` (broadcast batch dims).
        weights: optional ``(P,)`` scale per parameter (to mix units, e.g. rad and s).
        period: optional wrap period (scalar or ``(P,)``, e.g. 2π for full-circle azimuths).

    Returns:
        ``(..., K, P)``: row k is the estimate assigned to source k (NaN if none).
    """
    est, tru = _check_pair(estimates, truth)
    k = tru.shape[-2]
    n = max(est.shape[-2], k)
    est_p, tru_p = _pad_rows(est, n), _pad_rows(tru, n)
    cost = (_pair_diff(est_p, tru_p, weights, period) ** 2).sum(-1)  # (..., n_est, n_true)
    # rows = true sources, columns = estimates
    perm = optimal_assignment(cost.mT, max_enumerate)  # (..., n): estimate index for each source
    aligned = torch.gather(est_p, -2, perm.unsqueeze(-1).expand(*perm.shape, est_p.shape[-1]))
    return aligned[..., :k, :]


def assignment_errors(estimates: torch.Tensor, truth: torch.Tensor, weights=None, period=None,
                      max_enumerate: int = 5) -> torch.Tensor:
    """Errors ``(..., K, P)`` = matched estimate − truth (wrapped with ``period``); NaN = missing."""
    est, tru = _check_pair(estimates, truth)
    aligned = match_estimates(est, tru, weights, period, max_enumerate)
    return _wrap(aligned - tru, period)


def squared_errors(estimates, truth, weights=None, period=None) -> torch.Tensor:
    """Squared errors after assignment ``(..., K, P)`` (NaN for missing sources)."""
    return assignment_errors(estimates, truth, weights, period) ** 2


def rmse(estimates: torch.Tensor, truth: torch.Tensor, missing: str = "propagate", period=None) -> torch.Tensor:
    r"""Per-parameter RMSE ``(P,)`` after optimal assignment, over all trials and sources.

    Args:
        missing: ``"propagate"`` (NaN if any source is missing) or ``"omit"`` (average over
            the matched sources only; report :func:`failure_rate` beside it).
    """
    check_choice(missing, ("propagate", "omit"), "missing")
    se = squared_errors(estimates, truth, period=period)
    se = se.reshape(-1, se.shape[-1])
    if missing == "omit":
        return torch.sqrt(torch.nanmean(se, dim=0))
    return torch.sqrt(se.mean(0))


def failure_rate(estimates: torch.Tensor, truth: torch.Tensor, threshold, period=None) -> torch.Tensor:
    r"""Fraction of trials in which some source is missing or has |error_p| > threshold_p.

    Args:
        threshold: scalar or ``(P,)`` (same units as the parameters).

    Returns:
        0-d tensor in [0, 1].
    """
    check_positive(threshold, "threshold")
    err = assignment_errors(estimates, truth, period=period)
    thr = torch.as_tensor(threshold, dtype=err.dtype, device=err.device)
    bad = ~(err.abs() <= thr)  # NaN counts as a failure
    true_rows = ~torch.isnan(truth.to(err.device)).any(-1).expand(err.shape[:-1])
    fail = (bad.any(-1) & true_rows).any(-1)
    return fail.to(err.dtype).mean()


@dataclass(frozen=True)
class GospaResult:
    """GOSPA (α = 2) and its decomposition, each ``(...)``.

    Attributes:
        distance: d_p^(c) (same unit as the states).
        localisation: Σ of d^p over the assigned pairs (d < c).
        missed: number of true targets left unassigned.
        false: number of estimates left unassigned (false targets).
        c, p: the metric's parameters (reported with the values).
    """

    distance: torch.Tensor
    localisation: torch.Tensor
    missed: torch.Tensor
    false: torch.Tensor
    c: float
    p: float


def gospa(estimates: torch.Tensor, truth: torch.Tensor, c: float, p: float = 2.0, weights=None,
          period=None, max_enumerate: int = 5) -> GospaResult:
    r"""GOSPA metric with α = 2 between estimated and true target sets (NaN rows = absent).

    Base distance d(x, y) = ‖w ⊙ wrap(x − y)‖₂.  Solved as an assignment on the padded
    n × n matrix (n = max(K̂, K)) with costs min(d, c)^p between real targets, c^p/2 between a
    real target and a padding slot, 0 between two padding slots.

    Args:
        estimates: ``(..., K̂, P)``; truth ``(..., K, P)``.
        c: cut-off distance (> 0); p: order (≥ 1).  S0 uses μ = p = 2.

    Returns:
        :class:`GospaResult`.
    """
    check_positive(c, "c")
    if not p >= 1:
        raise ValueError(f"p must be >= 1, got {p}")
    est, tru = _check_pair(estimates, truth)
    n = max(est.shape[-2], tru.shape[-2])
    est_p, tru_p = _pad_rows(est, n), _pad_rows(tru, n)
    d = torch.linalg.vector_norm(_pair_diff(est_p, tru_p, weights, period), dim=-1)  # (..., n_est, n_true)
    real_e = ~torch.isnan(est_p).any(-1)  # (..., n)
    real_t = ~torch.isnan(tru_p).any(-1)
    both = real_e.unsqueeze(-1) & real_t.unsqueeze(-2)
    one = real_e.unsqueeze(-1) ^ real_t.unsqueeze(-2)
    cp = float(c) ** p
    dc = torch.where(both, torch.nan_to_num(d, nan=float(c)).clamp(max=float(c)) ** p, torch.zeros_like(d))
    cost = dc + one.to(d.dtype) * (cp / 2)
    perm = optimal_assignment(cost, max_enumerate)  # (..., n): true slot for each estimate slot
    pair_cost = torch.gather(cost, -1, perm.unsqueeze(-1)).squeeze(-1)
    pair_d = torch.gather(torch.nan_to_num(d, nan=math.inf), -1, perm.unsqueeze(-1)).squeeze(-1)
    pair_both = torch.gather(both, -1, perm.unsqueeze(-1)).squeeze(-1)
    assigned = pair_both & (pair_d < float(c))
    total = pair_cost.sum(-1)
    n_assigned = assigned.sum(-1)
    loc = torch.where(assigned, pair_d ** p, torch.zeros_like(pair_d)).sum(-1)
    return GospaResult(distance=total.clamp_min(0) ** (1.0 / p), localisation=loc,
                       missed=real_t.sum(-1) - n_assigned, false=real_e.sum(-1) - n_assigned,
                       c=float(c), p=float(p))


def detection_rates(estimates: torch.Tensor, truth: torch.Tensor, radius: float, weights=None,
                    period=None) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Target-level detection probability and false estimates per trial.

    A true target is detected when the GOSPA assignment (cut-off ``radius``) pairs it with
    an estimate closer than ``radius``; unpaired estimates are false alarms.

    Returns:
        ``(pd, false_per_trial)``: 0-d tensors, pd = Σ detected / Σ true targets and the mean
        number of false estimates per trial.
    """
    g = gospa(estimates, truth, radius, 2.0, weights, period)
    _, tru = _check_pair(estimates, truth)
    n_true = (~torch.isnan(tru).any(-1)).sum(-1)
    detected = n_true - g.missed
    pd = detected.sum().to(torch.float64) / n_true.sum().clamp_min(1).to(torch.float64)
    return pd, g.false.to(torch.float64).mean()


def threshold_for_false_alarm(noise_statistics: torch.Tensor, pfa: float) -> torch.Tensor:
    r"""Empirical detection threshold: the (1 − P_fa) quantile of a test statistic under H0.

    Args:
        noise_statistics: ``(T, ...)`` statistic on T target-free trials (e.g. the peak of a
            spectrum); the quantile is taken over the first dim.
        pfa: desired false-alarm probability in (0, 1).
    """
    if not 0.0 < pfa < 1.0:
        raise ValueError(f"pfa must lie in (0, 1), got {pfa}")
    check_ndim_at_least(noise_statistics, 1, "noise_statistics", "(T, ...)")
    x = noise_statistics.to(torch.float64) if not noise_statistics.is_floating_point() else noise_statistics
    return torch.quantile(x, 1.0 - pfa, dim=0)


def exceedance_probability(statistics: torch.Tensor, threshold) -> torch.Tensor:
    """P(statistic > threshold) over the first dim: P_fa under H0 data, P_d under H1 data."""
    check_ndim_at_least(statistics, 1, "statistics", "(T, ...)")
    thr = torch.as_tensor(threshold, dtype=statistics.dtype, device=statistics.device)
    return (statistics > thr).to(torch.float64).mean(0)


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    r"""Wilson score interval of a binomial proportion p̂ = successes / n (an error rate, a P_d).

    (p̂ + z²/2n ± z √(p̂(1−p̂)/n + z²/4n²)) / (1 + z²/n); z = 1.96 gives the 95 % interval.
    ``(nan, nan)`` for n = 0.  Reference: Wilson, JASA 1927.

    Example:
        >>> lo, hi = wilson_interval(0, 100)
        >>> lo, round(hi, 4)
        (0.0, 0.037)
    """
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return math.nan, math.nan
    p = successes / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(c - h, 0.0), min(c + h, 1.0)


def ratio_interval(sum_x: float, sum_y: float, sum_xx: float, sum_yy: float, sum_xy: float, n: int,
                   z: float = 1.96) -> tuple[float, float]:
    r"""Confidence interval of a ratio of sums R = Σ_i x_i / Σ_i y_i over n i.i.d. units.

    Every per-frame Monte Carlo metric is such a ratio: a mean (y_i = 1), a rate (detections
    over true targets), a mean squared error (squared errors over matched pairs, the frame as
    the unit, so that errors within a frame may be correlated).  By the delta method
    (linearisation of R around the estimate R̂, d_i = x_i − R̂ y_i):

        se(R̂) = sqrt(Σ_i d_i² / (n (n − 1))) / ȳ,   Σ_i d_i² = Σxx − 2 R̂ Σxy + R̂² Σyy,

    and the interval is R̂ ± z se (z = 1.96: 95 %).  An RMS value sqrt(R) has the interval
    (sqrt(lo), sqrt(hi)) (a monotone map).  Reference: Cochran, *Sampling Techniques*, 1977, §6.

    Args:
        sum_x, sum_y, sum_xx, sum_yy, sum_xy: Σx, Σy, Σx², Σy², Σxy over the n units.
        n: the number of units (≥ 2 for an interval).

    Returns:
        ``(lo, hi)``; ``(nan, nan)`` when n < 2 or Σy = 0.

    Example:
        >>> x = [1.0, 2.0, 3.0, 4.0]  # a plain mean: y = 1
        >>> lo, hi = ratio_interval(sum(x), 4, sum(v * v for v in x), 4, sum(x), 4)
        >>> round(lo, 3), round(hi, 3)
        (1.235, 3.765)
    """
    if n < 2 or sum_y == 0:
        return math.nan, math.nan
    r = sum_x / sum_y
    ss = max(sum_xx - 2.0 * r * sum_xy + r * r * sum_yy, 0.0)
    se = math.sqrt(ss / (n * (n - 1))) / (sum_y / n)
    return r - z * se, r + z * se


# ---------------------------------------------------------------------------------------
# error distributions (seed 002, Fig. 5: CDFs and per-subregion box plots)
# ---------------------------------------------------------------------------------------
def empirical_cdf(errors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Empirical CDF of the finite entries of ``errors`` (any shape, flattened): sorted values
    x_(i) and F(x_(i)) = i/n, i = 1..n.

    >>> x, F = empirical_cdf(torch.tensor([3.0, 1.0, 2.0]))
    >>> x.tolist(), [round(v, 3) for v in F.tolist()]
    ([1.0, 2.0, 3.0], [0.333, 0.667, 1.0])
    """
    e = errors.detach().flatten()
    e = e[torch.isfinite(e)]
    x = torch.sort(e).values
    return x, torch.arange(1, x.numel() + 1, dtype=x.dtype, device=x.device) / max(x.numel(), 1)


@dataclass(frozen=True)
class BoxStatistics:
    """Box-plot statistics of a sample: quartiles, IQR, whiskers and outlier count under one rule."""

    q1: float
    median: float
    q3: float
    iqr: float
    whisker_low: float
    whisker_high: float
    outliers: int
    count: int
    rule: str


def box_statistics(values: torch.Tensor, rule: str = "tukey") -> BoxStatistics:
    r"""Quartiles (linear interpolation) and whiskers of the finite entries of ``values``.

    Rules: ``"tukey"`` — whiskers at the most extreme points within [Q1 − 1.5 IQR, Q3 + 1.5 IQR];
    ``"seed002"`` — seed 002's box plots (Fig. 5c/f): points above 1.5·Q3 are outliers, the
    whiskers are the minimum and maximum of the rest (for non-negative errors).

    >>> b = box_statistics(torch.tensor([1.0, 2.0, 3.0, 4.0, 100.0]))
    >>> (b.q1, b.median, b.q3, b.whisker_high, b.outliers)
    (2.0, 3.0, 4.0, 4.0, 1)
    """
    check_choice(rule, ("tukey", "seed002"), "rule")
    v = values.detach().double().flatten()
    v = v[torch.isfinite(v)]
    if v.numel() == 0:
        nan = math.nan
        return BoxStatistics(nan, nan, nan, nan, nan, nan, 0, 0, rule)
    q1, med, q3 = (float(q) for q in torch.quantile(v, torch.tensor([0.25, 0.5, 0.75], dtype=v.dtype)))
    iqr = q3 - q1
    if rule == "tukey":
        keep = (v >= q1 - 1.5 * iqr) & (v <= q3 + 1.5 * iqr)
    else:
        keep = v <= 1.5 * q3
    kept = v[keep] if bool(keep.any()) else v
    return BoxStatistics(q1, med, q3, iqr, float(kept.min()), float(kept.max()), int((~keep).sum()),
                         int(v.numel()), rule)


__all__ += ["BoxStatistics", "box_statistics", "empirical_cdf"]
