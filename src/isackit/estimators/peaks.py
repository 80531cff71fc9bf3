r"""Vectorised peak search on gridded spectra, off-grid refinement, soft (differentiable) peaks.

* :func:`find_peaks` — the K largest LOCAL maxima of a 1-D, 2-D or 3-D spectrum for every
  batch element at once (a point is a local maximum if it equals the maximum of its 3, 3×3
  or 3×3×3 neighbourhood; grid edges are candidates; a NaN point and its neighbours never are).  Fewer than K maxima → the missing
  ones are flagged ``found = False``.  No Python loop over the batch.
* :func:`peaks_to_coordinates` — grid indices → parameter values, NaN where not found.
* :func:`refine_parabolic` — batched derivative-free maximisation of any function of one
  continuous parameter around a starting point by successive three-point parabolic fits
  with a shrinking bracket (used when the spectrum has no cheap derivatives, e.g.
  Bartlett/MVDR); with a smooth function it reaches machine-precision-limited accuracy in a
  handful of steps.
* :func:`soft_argmax` — a softmax-weighted peak location with a temperature (optionally
  restricted to a window around the hard arg-max): the differentiable relaxation of the
  arg-max used when training through a grid search (system S0).

Differentiability: ``find_peaks`` returns indices (not differentiable) and the peak values
(differentiable by gathering); ``soft_argmax`` is differentiable w.r.t. the spectrum.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

__all__ = ["find_peaks", "local_maxima", "peaks_to_coordinates", "refine_parabolic", "soft_argmax"]

_POOLS = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}


def local_maxima(spectrum: torch.Tensor, ndim: int = 1) -> torch.Tensor:
    """Boolean mask ``(..., *S)`` of local maxima over the last ``ndim`` (1, 2 or 3) axes."""
    if ndim not in _POOLS:
        raise ValueError(f"ndim must be 1, 2 or 3, got {ndim}")
    if spectrum.is_complex():
        raise TypeError("spectrum must be real")
    if spectrum.ndim < ndim:
        raise ValueError(f"spectrum must have at least {ndim} dims, got shape {tuple(spectrum.shape)}")
    shape = spectrum.shape
    if ndim == 1:  # two neighbour comparisons on views (cheaper than max-pooling)
        mask = torch.ones(shape, dtype=torch.bool, device=spectrum.device)
        mask[..., 1:] &= spectrum[..., 1:] >= spectrum[..., :-1]
        mask[..., :-1] &= spectrum[..., :-1] >= spectrum[..., 1:]
        if shape[-1] == 1:  # no neighbour compared it: a lone NaN must not pass
            mask &= ~torch.isnan(spectrum)
        return mask
    s = spectrum.reshape(-1, 1, *shape[spectrum.ndim - ndim:])
    pooled = _POOLS[ndim](s, kernel_size=3, stride=1, padding=1)
    return (s >= pooled).reshape(shape)  # NaN compares False; -inf never wins topk


def find_peaks(spectrum: torch.Tensor, num_peaks: int, ndim: int = 1
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""The ``num_peaks`` largest local maxima of a batch of spectra.

    Args:
        spectrum: ``(..., S_1[, S_2[, S_3]])`` real.
        num_peaks: K.
        ndim: number of trailing grid axes (1, 2 or 3).

    Returns:
        ``(values (..., K), indices (..., K, ndim) int64, found (..., K) bool)``, sorted by
        decreasing value; ``values`` is ``-inf`` and ``indices`` 0 where not found.
    """
    if isinstance(num_peaks, bool) or int(num_peaks) < 1:
        raise ValueError(f"num_peaks must be a positive integer, got {num_peaks!r}")
    K = int(num_peaks)
    mask = local_maxima(spectrum, ndim)
    grid_shape = spectrum.shape[spectrum.ndim - ndim:]
    batch = spectrum.shape[:spectrum.ndim - ndim]
    flat = spectrum.reshape(*batch, -1)
    fmask = mask.reshape(*batch, -1)
    G = flat.shape[-1]
    masked = torch.where(fmask, flat, -torch.inf)
    k = min(K, G)
    values, idx = torch.topk(masked, k, dim=-1)
    found = torch.isfinite(values)
    if k < K:
        pad = K - k
        values = torch.cat([values, values.new_full((*batch, pad), -torch.inf)], -1)
        idx = torch.cat([idx, idx.new_zeros((*batch, pad))], -1)
        found = torch.cat([found, found.new_zeros((*batch, pad))], -1)
    idx = torch.where(found, idx, torch.zeros_like(idx))
    # unravel flat indices
    coords = []
    rem = idx
    for size in reversed(grid_shape):
        coords.append(rem % size)
        rem = torch.div(rem, size, rounding_mode="floor")
    return values, torch.stack(coords[::-1], dim=-1), found


def peaks_to_coordinates(indices: torch.Tensor, found: torch.Tensor, grids: Sequence[torch.Tensor]) -> torch.Tensor:
    """Map peak indices ``(..., K, P)`` to grid values ``(..., K, P)`` (NaN where not found)."""
    if indices.shape[-1] != len(grids):
        raise ValueError(f"indices have {indices.shape[-1]} axes but {len(grids)} grids were given")
    cols = [g[indices[..., p]] for p, g in enumerate(grids)]
    out = torch.stack(cols, dim=-1)
    return torch.where(found[..., None], out, torch.full_like(out, torch.nan))


def refine_parabolic(func: Callable[[torch.Tensor], torch.Tensor], x0: torch.Tensor, step: float,
                     iterations: int = 8, shrink: float = 4.0) -> torch.Tensor:
    r"""Batched derivative-free local maximisation of ``func`` around ``x0``.

    Each iteration evaluates f at x - h, x, x + h, moves to the vertex of the interpolating
    parabola (clamped to [x - h, x + h]; towards the larger neighbour when the parabola is
    not concave) if that increases f, and divides h by ``shrink``.  With h₀ = grid step the
    bracket always contains the local maximum found on the grid.

    Args:
        func: maps ``x (...)`` → ``f(x) (...)`` real, elementwise (any batch shape).
        x0: ``(...)`` starting points (NaN entries stay NaN).
        step: initial half-bracket h₀ (the grid step).
        iterations: number of parabolic steps.

    Returns:
        ``(...)`` refined maximisers (not differentiable: use the returned points as data).
    """
    x = x0.detach()
    h = float(step)
    with torch.no_grad():
        f0 = func(x)
        for _ in range(int(iterations)):
            fm, fp = func(x - h), func(x + h)
            curv = fm - 2.0 * f0 + fp
            concave = curv < 0
            delta = torch.where(concave, 0.5 * h * (fm - fp) / torch.where(concave, curv, torch.ones_like(curv)),
                                torch.where(fp > fm, torch.full_like(x, h), torch.full_like(x, -h)))
            delta = delta.clamp(-h, h)
            xn = x + delta
            fn = func(xn)
            better = fn > f0
            x = torch.where(better, xn, x)
            f0 = torch.where(better, fn, f0)
            h = h / shrink
    return x


def soft_argmax(spectrum: torch.Tensor, grids: Sequence[torch.Tensor], temperature: float = 1.0,
                window: int | None = None, normalize: bool = True) -> torch.Tensor:
    r"""Differentiable peak location: Σ_g softmax(s_g / T)_g · x_g over the grid.

    Args:
        spectrum: ``(..., G_1[, …, G_P])`` real (e.g. the OMP correlation map |c|²).
        grids: P 1-D grids ``(G_p,)`` (the coordinates of each axis).
        temperature: T > 0; with ``normalize`` the spectrum is first divided by its
            maximum (differentiably), so T is relative to the peak height (T → 0 gives the hard
            arg-max, large T the centroid of the window / grid).
        window: if given, only the (2w+1)^P points within ±``window`` grid indices (per axis)
            of the hard arg-max take part (points outside the grid are dropped), so other
            peaks (other targets) do not pull the estimate, and the cost is O((2w+1)^P)
            after the arg-max instead of O(G).

    Returns:
        ``(..., P)`` real coordinates, differentiable w.r.t. ``spectrum`` (not w.r.t. the
        position of the hard arg-max, which is discrete).
    """
    P = len(grids)
    if P < 1 or spectrum.ndim < P:
        raise ValueError(f"spectrum of shape {tuple(spectrum.shape)} does not match {P} grids")
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature!r}")
    gshape = spectrum.shape[spectrum.ndim - P:]
    for p, g in enumerate(grids):
        if g.ndim != 1 or g.shape[0] != gshape[p]:
            raise ValueError(f"grid {p} has shape {tuple(g.shape)}, expected ({gshape[p]},)")
    grids = [g.to(dtype=spectrum.dtype, device=spectrum.device) for g in grids]
    batch = spectrum.shape[:spectrum.ndim - P]
    flat = spectrum.reshape(*batch, -1)
    best = flat.detach().argmax(-1, keepdim=True)  # (..., 1)
    peak = torch.gather(flat, -1, best).abs().clamp_min(torch.finfo(flat.dtype).tiny)
    scale = (1.0 / (peak * temperature)) if normalize else torch.full_like(peak, 1.0 / temperature)
    if window is None:
        w = torch.softmax(flat * scale, dim=-1).reshape(spectrum.shape)
        out = []
        for p in range(P):
            other = [spectrum.ndim - P + q for q in range(P) if q != p]
            marg = w.sum(other) if other else w
            out.append((marg * grids[p]).sum(-1))
        return torch.stack(out, -1)
    win = int(window)
    offs = torch.arange(-win, win + 1, device=spectrum.device)
    # centre indices per axis
    rem = best[..., 0]
    centre = []
    for size in reversed(gshape):
        centre.append(rem % size)
        rem = torch.div(rem, size, rounding_mode="floor")
    centre = centre[::-1]
    # per-axis candidate indices (..., 2w+1) and validity
    idx = [c[..., None] + offs for c in centre]
    ok = [(i >= 0) & (i < n) for i, n in zip(idx, gshape, strict=True)]
    idx = [i.clamp(0, n - 1) for i, n in zip(idx, gshape, strict=True)]
    # flattened patch indices (..., (2w+1)^P)
    strides = [1] * P
    for p in range(P - 2, -1, -1):
        strides[p] = strides[p + 1] * gshape[p + 1]
    L = 2 * win + 1
    lin = torch.zeros(*batch, *([L] * P), dtype=torch.long, device=spectrum.device)
    valid = torch.ones(*batch, *([L] * P), dtype=torch.bool, device=spectrum.device)
    coords = []
    for p in range(P):
        shape = [1] * P
        shape[p] = L
        lin = lin + (idx[p] * strides[p]).reshape(*batch, *shape)
        valid = valid & ok[p].reshape(*batch, *shape)
        coords.append(grids[p][idx[p]].reshape(*batch, *shape).expand(*batch, *([L] * P)))
    lin = lin.reshape(*batch, -1)
    valid = valid.reshape(*batch, -1)
    vals = torch.gather(flat, -1, lin) * scale
    w = torch.softmax(vals.masked_fill(~valid, -torch.inf), dim=-1)
    return torch.stack([(w * c.reshape(*batch, -1)).sum(-1) for c in coords], -1)
