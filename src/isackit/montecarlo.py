r"""Monte Carlo along the batch dimension: chunked, seeded per block, with accuracy metrics.

:func:`monte_carlo` runs ``num_trials`` trials of ``simulate`` → ``estimator`` and reduces them
to RMSE after optimal assignment, failure rate and the matching bound.

Reproducibility that does not depend on chunking: trials are grouped in fixed *blocks* of
``block_size`` trials; block b draws its randomness from its own generator, seeded with
``SeedSequence(seed, spawn_key=(b,))`` (NumPy's collision-resistant seed derivation).  A
*chunk* (what is held in memory and passed to the estimator in one call) is a whole number of
blocks, so any chunk size, any memory budget and any resumption point see the same trials.
The Python loop runs over blocks (data generation) and chunks (estimation), never over trials.

Memory: with ``max_memory_bytes`` the number of blocks per chunk is chosen from the size of
one simulated block times ``memory_factor`` (the estimator's working memory relative to its
input; 8 by default), so 10⁶ trials run in bounded memory.

Example:
    >>> def simulate(n, g):
    ...     return 0.1 + 0.01 * torch.randn(n, 1, 1, generator=g, dtype=torch.float64)
    >>> res = monte_carlo(simulate, lambda x: x, 1000, truth=torch.tensor([[0.1]]), seed=0)
    >>> round(float(res.rmse[0]), 2)
    0.01
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from ._checks import check_positive, check_positive_int
from .estimators.base import EstimationResult
from .metrics import assignment_errors

__all__ = ["MonteCarloResult", "block_seed", "monte_carlo"]


def block_seed(seed: int, block: int) -> int:
    """The 63-bit seed of block ``block`` derived from the root ``seed`` (SeedSequence)."""
    state = np.random.SeedSequence(int(seed), spawn_key=(int(block),)).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & ((1 << 63) - 1)


@dataclass(frozen=True)
class MonteCarloResult:
    """Summary of a Monte Carlo run (all per-parameter tensors are ``(P,)`` float64, CPU).

    Attributes:
        rmse: sqrt(mean squared error) over trials and matched sources (missing ones are
            excluded here and counted in ``missing_rate`` / ``failure_rate``).
        failure_rate: fraction of trials with a missing source or an error above
            ``failure_threshold``.
        missing_rate: fraction of true sources without an estimate.
        root_bound: sqrt(mean over sources of the bound's variances), or None.
        n_trials: trials run.
        parameters: parameter names when the estimator returned an :class:`EstimationResult`.
        failure_threshold: the threshold used (None: only missing sources count as failures).
        seed, block_size: what the trials are reproducible from.
    """

    rmse: torch.Tensor
    failure_rate: float
    missing_rate: float
    root_bound: torch.Tensor | None
    n_trials: int
    parameters: tuple[str, ...] | None = None
    failure_threshold: object = None
    seed: int = 0
    block_size: int = 1000
    extras: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        """Plain-Python summary (for JSON / tables)."""
        names = self.parameters or tuple(f"p{i}" for i in range(self.rmse.numel()))
        out = {"n_trials": self.n_trials, "failure_rate": self.failure_rate, "missing_rate": self.missing_rate,
               "seed": self.seed, "block_size": self.block_size}
        for i, n in enumerate(names):
            out[f"rmse_{n}"] = float(self.rmse[i])
            if self.root_bound is not None:
                out[f"root_bound_{n}"] = float(self.root_bound[i])
        return out


def _nbytes(x) -> int:
    if isinstance(x, torch.Tensor):
        return x.numel() * x.element_size()
    if isinstance(x, (tuple, list)):
        return sum(_nbytes(v) for v in x)
    return 0


def _cat(parts):
    if isinstance(parts[0], torch.Tensor):
        return torch.cat(parts, dim=0)
    return type(parts[0])(_cat([p[i] for p in parts]) for i in range(len(parts[0])))


def monte_carlo(simulate: Callable[[int, torch.Generator], object],
                estimator: Callable[[torch.Tensor], EstimationResult | torch.Tensor],
                num_trials: int, *, truth: torch.Tensor | None = None, seed: int | torch.Generator = 0,
                chunk_size: int | None = None, max_memory_bytes: int | None = None,
                block_size: int = 1000, memory_factor: float = 8.0, device: str | torch.device = "cpu",
                bound: torch.Tensor | None = None, failure_threshold=None, period=None,
                progress: bool = False, stop: Callable[[dict], bool] | None = None) -> MonteCarloResult:
    r"""Run trials in chunks along the batch dimension and summarise their accuracy.

    Args:
        simulate: ``simulate(n, generator) -> data`` or ``(data, truth)``; ``data`` is a tensor
            (or tuple of tensors) whose first dim is the n trials, created on
            ``generator.device`` from ``generator`` only.  ``truth`` is ``(n, K, P)``.
        estimator: maps ``data`` to an :class:`EstimationResult` or estimates ``(n, K̂, P)``.
        num_trials: number of trials.
        truth: ``(K, P)`` true parameters shared by all trials (if ``simulate`` does not return
            them).
        seed: root seed (int), or a generator from which one root seed is drawn.
        chunk_size: trials per estimator call (rounded up to whole blocks); default: one block,
            or what ``max_memory_bytes`` allows.
        max_memory_bytes: memory budget for one chunk (input × ``memory_factor``).
        block_size: trials per seeded block (fixes the random stream; keep it constant to
            reproduce a run).
        device: device of the generators (and so of the simulated data).
        bound: variances ``(K, P)`` / ``(P,)`` of the matching bound (e.g. CRB diagonal), in
            the squared units of the parameters.
        failure_threshold: scalar or ``(P,)``: |error| above it counts as a failure.
        period: wrap period of the parameters for the errors (e.g. 2π), or None.
        progress: show a rich progress bar.
        stop: optional stop rule, called after every chunk with the running counts
            ``{"n_trials", "failures", "missing", "sources"}``; returning True ends the run
            early (the result then reports the trials actually run, always whole chunks).

    Returns:
        :class:`MonteCarloResult`.
    """
    n_total = check_positive_int(num_trials, "num_trials")
    block = check_positive_int(block_size, "block_size")
    check_positive(memory_factor, "memory_factor")
    if isinstance(seed, torch.Generator):
        seed = int(torch.randint(0, 2**62, (1,), generator=seed, device=seed.device))
    seed = int(seed)
    device = torch.device(device)
    n_blocks = math.ceil(n_total / block)

    def run_block(b):
        g = torch.Generator(device=device).manual_seed(block_seed(seed, b))
        n = min(block, n_total - b * block)
        out = simulate(n, g)
        return out if isinstance(out, tuple) and truth is None else (out, None)

    first = run_block(0)
    if chunk_size is not None:
        blocks_per_chunk = max(1, math.ceil(check_positive_int(chunk_size, "chunk_size") / block))
    elif max_memory_bytes is not None:
        check_positive(max_memory_bytes, "max_memory_bytes")
        per_block = max(1, _nbytes(first[0])) * memory_factor
        blocks_per_chunk = max(1, int(max_memory_bytes // per_block))
    else:
        blocks_per_chunk = 1

    sse = cnt = None
    failures = missing = sources = done = 0
    params = None
    bar = None
    if progress:
        from rich.progress import Progress

        bar = Progress(transient=True)
        bar.start()
        task = bar.add_task("Monte Carlo", total=n_total)
    try:
        for c0 in range(0, n_blocks, blocks_per_chunk):
            parts = [first if b == 0 else run_block(b) for b in range(c0, min(n_blocks, c0 + blocks_per_chunk))]
            data = _cat([p[0] for p in parts])
            tru = _cat([p[1] for p in parts]) if parts[0][1] is not None else truth
            if tru is None:
                raise ValueError("give truth=(K, P), or let simulate return (data, truth)")
            out = estimator(data)
            if isinstance(out, EstimationResult):
                params = out.parameters
                est = out.estimates
            else:
                est = out
            tru = torch.as_tensor(tru).to(device=est.device, dtype=est.dtype)
            err = assignment_errors(est, tru, period=period).to(torch.float64)  # (n, K, P)
            exists = ~torch.isnan(tru).any(-1).expand(err.shape[:-1])  # (n, K)
            found = ~torch.isnan(err).any(-1) & exists
            se = torch.where(found.unsqueeze(-1), err ** 2, torch.zeros_like(err))
            sse = se.sum((0, 1)).cpu() if sse is None else sse + se.sum((0, 1)).cpu()
            n_found = found.sum().cpu()
            cnt = n_found if cnt is None else cnt + n_found
            missing += int((exists & ~found).sum())
            sources += int(exists.sum())
            bad = exists & ~found
            if failure_threshold is not None:
                thr = torch.as_tensor(failure_threshold, dtype=err.dtype, device=err.device)
                bad = bad | (found & (err.abs() > thr).any(-1))
            failures += int(bad.any(-1).sum())
            done += est.shape[0]
            if bar is not None:
                bar.update(task, advance=est.shape[0])
            first = None
            if stop is not None and done < n_total and stop(
                    {"n_trials": done, "failures": failures, "missing": missing, "sources": sources}):
                break
    finally:
        if bar is not None:
            bar.stop()

    rmse = torch.sqrt(sse / cnt.clamp_min(1)) if cnt is not None else torch.full((1,), float("nan"))
    if cnt is not None and int(cnt) == 0:
        rmse = torch.full_like(sse, float("nan"))
    root_bound = None
    if bound is not None:
        b = torch.as_tensor(bound, dtype=torch.float64).cpu()
        b = b.reshape(-1, b.shape[-1]) if b.ndim >= 1 else b.reshape(1, 1)
        root_bound = torch.sqrt(b.mean(0)).expand(rmse.shape).clone()
    return MonteCarloResult(rmse=rmse, failure_rate=failures / done, missing_rate=missing / max(sources, 1),
                            root_bound=root_bound, n_trials=done, parameters=params,
                            failure_threshold=failure_threshold, seed=seed, block_size=block)
