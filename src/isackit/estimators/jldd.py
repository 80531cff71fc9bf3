r"""Joint localisation and data detection over growing time windows (seed 003, Sec. IV,
Algorithms 1–2; specification ``shared/design/s3-pascal.md`` §2.11).

One subframe: signals y_1..y_N ``(..., M, N)`` at times t_1..t_N, signal 1 = the known pilot
p_k, signals 2..N = data symbols s_{k,i} from a PSK constellation, amplitudes c_k known.  Window
n holds y_1..y_n: the pilot, the symbols ŝ_2..ŝ_{n−1} already detected (never revised) and
s_n, detected in this window.

* :func:`mle_mle` — alternating MLE-MLE (Algorithm 1).  Window 1 = AO-ML on the pilot
  (:func:`~isackit.estimators.statistical.ao_ml`).  Window n ≥ 2, from η̂^{(n−1)} and the joint
  ML decision of s_n given η̂^{(n−1)} (an MRC decision is interference-limited for drones inside
  a beamwidth): phase 1 (18) = the angles of all drones given Doppler and symbols; phase 2
  (19) = s_n jointly over all Q^K symbol vectors given (angles, Doppler), then the Dopplers
  given angles and symbols; repeated until the stop rule (13) or ``window_iterations``.  The
  window likelihood ℓ_n is the statistical ℓ of :mod:`.statistical` with the pilot sequence
  replaced by (p, ŝ_2, …, ŝ_{n−1}, s_n) (frame coherence within the window; least squares
  when there are no errors).  The seed solves (18)–(19) by exhaustive search; here, from the
  warm start η̂^{(n−1)}, the continuous parameters are found by Fisher-scoring steps on the
  exact ℓ_n (the previous window's estimate lies in the main lobe of ℓ_n) — the symbol
  search is exhaustive.
* :func:`music_mle` — joint MUSIC-MLE (Algorithm 2).  Angles by 2-D MUSIC on
  R_n = Y_n Y_n^H / n (library :func:`~isackit.estimators.spectral.music2d_doa` at the first
  window with a noise subspace, n = K + 1, then :func:`~isackit.estimators.spectral.music_refine`
  from the previous window's angles); for n < K + 1 the window-1 AO-ML angles (X10).
  Compensation (the seed: Y_n "multiplied by [lost] to compensate for φ and ϑ"): by default
  z_i = Â^† y_i, which undoes the steering matrix of the MUSIC angles (our reading; the
  specification's a(θ̂_k)^H y_i / M, ``compensation="matched"``, leaves the other drones'
  signals in z_k and is interference-limited at ≈ 6 dB SINR for drones inside a beamwidth,
  where decision-directed Doppler tracking then fails even without noise); then per drone (22):
  (f̂_k, ŝ_{k,n}) = arg max_{f, s} Re Σ_{i≤n} z_{k,i} s*_{k,i} e^{−j2πf t_i}, s_{k,n} = s over the
  constellation, each candidate's f refined by Newton steps from f̂_k^{(n−1)} (the scalar-AWGN
  ML, interference treated as noise; no alternation).

Both return the estimates after every window ``(..., N, K, 3)`` and the detected symbol
indices ``(..., K, N)`` (index 0 of the time axis, the pilot, is −1).  Batched over trials;
the loops run over windows and iterations only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from .._checks import check_choice, check_complex, check_positive_int
from ..geometry.arrays import ArrayGeometry
from ..signals.frames import COHERENCES
from .statistical import (
    KnownPilots,
    LikelihoodSearch,
    _newton,
    _Problem,
    _problem,
    _steer,
    ao_ml,
    canonical_angles,
)
from .spectral import music2d_doa, music_refine

__all__ = ["WindowedDetection", "mle_mle", "music_mle", "mrc_detect"]


@dataclass(frozen=True)
class WindowedDetection:
    """Result of a JLDD run on one subframe.

    Attributes:
        estimates: ``(..., N, K, 3)`` (φ, ϑ, f) after each window n = 1..N.
        symbols: ``(..., K, N)`` int64 detected symbol indices (−1 at the pilot position).
        valid: ``(...)`` bool.
    """

    estimates: torch.Tensor
    symbols: torch.Tensor
    valid: torch.Tensor


def mrc_detect(y: torch.Tensor, eta: torch.Tensor, times: torch.Tensor, points: torch.Tensor,
               array: ArrayGeometry) -> torch.Tensor:
    r"""DLDD decision: MRC with ĥ_k = a(φ̂_k, ϑ̂_k) e^{j2πf̂_k t}, then the nearest constellation point.

    Args:
        y: ``(..., M, T)``.  eta: ``(..., K, 3)``.  times: ``(T,)``.  points: ``(Q,)`` constellation.

    Returns:
        ``(..., K, T)`` int64 indices.
    """
    A = _steer(array.positions_like(eta), array.wavelength, eta[..., 0], eta[..., 1]).to(y.dtype)
    ph = -2 * math.pi * eta[..., 2, None] * times.to(eta)[..., None, :]
    z = (A.mH @ y) * torch.polar(torch.ones_like(ph), ph)  # (..., K, T)
    return _nearest(z, points.to(y.dtype))


def _nearest(z: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    return (z[..., None] - points).abs().argmin(-1)


def _check(y, pilots, amplitudes, times, points, array):
    check_complex(y, "y")
    M, N = y.shape[-2:]
    if M != array.num_elements:
        raise ValueError(f"y must have shape (..., M={array.num_elements}, N), got {tuple(y.shape)}")
    if pilots.ndim != 1 or amplitudes.shape != pilots.shape:
        raise ValueError("pilots and amplitudes must both have shape (K,)")
    if times.shape[-1] != N:
        raise ValueError(f"times must have N={N} entries, got {tuple(times.shape)}")
    if points.ndim != 1 or points.numel() < 2:
        raise ValueError("points must be a (Q,) constellation")


def _window_problem(base: _Problem, y, wave, t, n) -> _Problem:
    return replace(base, y=y[..., :n], wave=wave[..., :n], t=t[..., :n])


def _symbol_search(prob: _Problem, eta: torch.Tensor, cand: torch.Tensor, amp: torch.Tensor) -> torch.Tensor:
    r"""arg min over the candidate symbol vectors ``cand`` ``(C, K)`` of ℓ_n (only the last
    signal of the window changes), returns candidate indices ``(B,)``."""
    B, M, n = prob.y.shape
    A = _steer(prob.pos, prob.lam, eta[..., 0], eta[..., 1]).to(prob.y.dtype)  # (B, M, K)
    tn = prob.t[:, -1]
    ph = 2 * math.pi * eta[..., 2] * tn[:, None]
    g = torch.polar(torch.ones_like(ph), ph) * amp  # (B, K)
    un = (A * g[:, None, :]) @ cand.T  # (B, M, C): ũ_{m,n}(s)
    yn = prob.y[..., -1]  # (B, M)
    mu = prob.mu[..., 0]  # (B, M)
    s2 = prob.s2[:, None, None]
    if prob.frame and n > 1 and prob.v > 0:
        U = prob.signal(eta)[..., :-1]  # (B, M, n-1) (the last column is replaced)
        yp = prob.y[..., :-1]
        P = (U.abs() ** 2).sum(-1)[..., None]  # (B, M, 1)
        R = (U.conj() * yp).sum(-1)[..., None]
        Yy = (yp.abs() ** 2).sum(-1)[..., None]
        nn = P + un.abs() ** 2
        uy = R + un.conj() * yn[..., None]
        yy = Yy + (yn.abs() ** 2)[..., None]
        mu_ = mu[..., None]
        ee = yy - 2 * (mu_.conj() * uy).real + mu_.abs() ** 2 * nn
        ue = uy - mu_ * nn
        v = prob.v
        val = (torch.log1p(v * nn / s2) + (ee - v * ue.abs() ** 2 / (s2 + v * nn)) / s2).sum(-2)
    else:  # independent signals (no errors, or per-signal errors): only the last signal matters
        e = yn[..., None] - mu[..., None] * un
        if prob.v > 0:
            s = prob.v * un.abs() ** 2 + s2
            val = (torch.log(s) + e.abs() ** 2 / s).sum(-2)
        else:
            val = (e.abs() ** 2).sum(-2)
    return val.argmin(-1)


def _all_vectors(Q: int, K: int, device) -> torch.Tensor:
    """All Q^K index vectors ``(Q^K, K)``."""
    grids = torch.meshgrid(*[torch.arange(Q, device=device)] * K, indexing="ij")
    return torch.stack([g.reshape(-1) for g in grids], -1)


def _setup(y, array, pilots, amplitudes, times, noise_var, errors, coherence):
    check_choice(coherence, COHERENCES, "coherence")
    N = y.shape[-1]
    K = pilots.shape[0]
    cdt = y.dtype
    wave0 = (pilots * amplitudes).to(cdt)[:, None].expand(K, N).contiguous()
    model = KnownPilots.from_errors(array, wave0, times, noise_var, errors, coherence)
    base, batch, valid = _problem(y, model)
    return base, batch, valid, model


def mle_mle(y: torch.Tensor, array: ArrayGeometry, pilots: torch.Tensor, amplitudes: torch.Tensor,
            times: torch.Tensor, points: torch.Tensor, noise_var, errors=None, coherence: str = "frame",
            search: LikelihoodSearch | None = None, window_iterations: int = 2,
            window_newton_steps: int = 2, init: torch.Tensor | None = None,
            init_doppler: str = "prior") -> WindowedDetection:
    r"""Alternating MLE-MLE over windows n = 1..N (see the module doc).

    Args:
        y: ``(..., M, N)`` one subframe (pilot first).  array: the receive array.
        pilots: ``(K,)`` known pilot symbols.  amplitudes: ``(K,)`` known real amplitudes c_k.
        times: ``(N,)`` sample times (s).  points: ``(Q,)`` constellation of the data symbols.
        noise_var: σ².  errors: error law / moments / ``None``.  coherence: of the errors.
        search: grids and stop rule (13) (window 1 = AO-ML with it; windows ≥ 2 use its
            tolerances).  window_iterations: cap of the alternations per window.
        window_newton_steps: Fisher-scoring steps per phase.
        init: optional ``(..., K, 3)`` window-1 estimate (skips the AO-ML on the pilot).
        init_doppler: ``"prior"`` (default) — the window-1 Dopplers are the centre of the Doppler
            search range (the prior mean): one pilot does not identify them (spec X7; they
            enter only through the phase 2πf t_1), so windows ≥ 2 estimate them from the
            detected symbols; ``"aoml"`` — keep the AO-ML value (noise-driven at t_1 ≪ 1/f).

    Returns:
        :class:`WindowedDetection`.
    """
    search = search or LikelihoodSearch()
    check_positive_int(window_iterations, "window_iterations")
    _check(y, pilots, amplitudes, times, points, array)
    with torch.no_grad():
        base, batch, valid, model = _setup(y, array, pilots, amplitudes, times, noise_var, errors, coherence)
        B, M, N = base.y.shape
        K = pilots.shape[0]
        cdt = base.y.dtype
        pts = points.to(cdt)
        amp = amplitudes.to(cdt)
        eta = _first_window_estimate(base, model, K, init, init_doppler, search)
        cand = pts[_all_vectors(pts.numel(), K, y.device)]  # (Q^K, K) symbol vectors
        cand_idx = _all_vectors(pts.numel(), K, y.device)
        sym = torch.full((B, K, N), -1, dtype=torch.int64, device=y.device)
        wave = base.wave.clone()  # (B, K, N): column i = amplitude × symbol i (pilot in column 0)
        out = torch.empty(B, N, K, 3, dtype=eta.dtype, device=eta.device)
        out[:, 0] = eta
        ang_free = [3 * k + j for k in range(K) for j in (0, 1)]
        dop_free = [3 * k + 2 for k in range(K)]
        wsearch = replace(search, newton_steps=window_newton_steps)
        for n in range(2, N + 1):
            i = n - 1
            whole = _window_problem(base, base.y, wave, base.t, n)
            s_idx = cand_idx[_symbol_search(whole, eta, cand, amp)]  # ŝ_n^(0): joint decision given η̂^(n−1)
            wave[..., i] = amp * pts[s_idx]
            active = torch.ones(B, dtype=torch.bool, device=y.device)
            for _ in range(window_iterations):
                ia = active.nonzero().squeeze(-1)
                if ia.numel() == 0:
                    break
                prob = _window_problem(base, base.y, wave, base.t, n).take(ia)
                e_old = eta[ia]
                e, _ = _newton(prob, e_old, ang_free, wsearch)  # phase 1 (18): angles
                e = canonical_angles(e)
                best = _symbol_search(prob, e, cand, amp)  # phase 2 (19): s_n jointly ...
                s_idx[ia] = cand_idx[best]
                wave[ia, :, i] = amp * pts[s_idx[ia]]
                prob = replace(prob, wave=wave[ia, :, :n])
                e, _ = _newton(prob, e, dop_free, wsearch)  # ... and the Dopplers
                d = e - e_old
                d_ang = torch.remainder(d[..., :2] + math.pi, 2 * math.pi) - math.pi
                done = (d_ang.abs() < search.angle_tol).all(-1).all(-1) & (d[..., 2].abs() < search.doppler_tol).all(-1)
                eta[ia] = e
                active[ia[done]] = False
            sym[..., i] = s_idx
            out[:, i] = eta
        out = torch.where(valid[:, None, None, None], out, torch.full_like(out, torch.nan))
        return WindowedDetection(out.reshape(*batch, N, K, 3), sym.reshape(*batch, K, N), valid.reshape(batch))


def _first_window_estimate(base: _Problem, model, K: int, init, init_doppler: str, search: LikelihoodSearch
                           ) -> torch.Tensor:
    """η after the pilot window ``(B, K, 3)``: AO-ML on the first (pilot) sample, or ``init``,
    then the window's Doppler start (:func:`_window_one`)."""
    B = base.y.shape[0]
    if init is None:
        m1 = replace(model, waveforms=model.waveforms[:, :1], times=model.times[..., :1])
        eta = ao_ml(base.y[..., :1], m1, search).estimates.reshape(B, K, 3)
    else:
        eta = init.to(base.y.real.dtype).reshape(B, K, 3).clone()
    return _window_one(eta, init_doppler, search)


def _window_one(eta: torch.Tensor, init_doppler: str, search: LikelihoodSearch) -> torch.Tensor:
    check_choice(init_doppler, ("prior", "aoml"), "init_doppler")
    eta = torch.nan_to_num(eta)
    if init_doppler == "prior":
        eta = eta.clone()
        eta[..., 2] = 0.5 * (search.doppler_grid.start + search.doppler_grid.stop)
    return eta


def _doppler_newton(w: torch.Tensor, t: torch.Tensor, f0: torch.Tensor, max_step: float, steps: int = 3):
    r"""Maximise J(f) = Re Σ_i w_i e^{−j2πf t_i} from f0 by safeguarded Newton steps.

    w ``(..., n)``, t ``(..., n)``, f0 ``(...)``; returns (f, J(f))."""
    def J(f):
        ph = -2 * math.pi * f[..., None] * t
        return (w * torch.polar(torch.ones_like(ph), ph)).real.sum(-1)

    f = f0.clone()
    val = J(f)
    for _ in range(steps):
        ph = -2 * math.pi * f[..., None] * t
        e = w * torch.polar(torch.ones_like(ph), ph)
        c = -2j * math.pi * t
        d1 = (e * c).real.sum(-1)
        d2 = (e * c * c).real.sum(-1)
        step = torch.where(d2 < 0, -d1 / d2.clamp(max=-torch.finfo(d2.dtype).tiny), torch.sign(d1) * max_step)
        step = torch.nan_to_num(step).clamp(-max_step, max_step)
        for frac in (1.0, 0.5, 0.25):
            cand = f + frac * step
            vc = J(cand)
            better = vc > val
            f = torch.where(better, cand, f)
            val = torch.where(better, vc, val)
            step = torch.where(better, torch.zeros_like(step), step)
    return f, val


def music_mle(y: torch.Tensor, array: ArrayGeometry, pilots: torch.Tensor, amplitudes: torch.Tensor,
              times: torch.Tensor, points: torch.Tensor, noise_var, errors=None, coherence: str = "frame",
              search: LikelihoodSearch | None = None, init: torch.Tensor | None = None,
              compensation: str = "pinv", init_doppler: str = "prior") -> WindowedDetection:
    r"""Joint MUSIC-MLE over windows n = 1..N (see the module doc).

    Args: as :func:`mle_mle` (``noise_var``, ``errors`` and ``coherence`` only enter the
    window-1 AO-ML that initialises it; ``init`` replaces that AO-ML), and
    compensation: ``"pinv"`` — z_i = Â^† y_i (the steering matrix of the MUSIC angles
    undone: each drone's stream without the others'), or ``"matched"`` — z_{k,i} = â_k^H y_i / M
    (interference treated as noise; interference-limited for drones inside a beamwidth).

    Returns:
        :class:`WindowedDetection`.
    """
    search = search or LikelihoodSearch()
    check_choice(compensation, ("pinv", "matched"), "compensation")
    _check(y, pilots, amplitudes, times, points, array)
    with torch.no_grad():
        base, batch, valid, model = _setup(y, array, pilots, amplitudes, times, noise_var, errors, coherence)
        B, M, N = base.y.shape
        K = pilots.shape[0]
        cdt = base.y.dtype
        pts = points.to(cdt)
        eta = _first_window_estimate(base, model, K, init, init_doppler, search)
        pos = array.positions_like(eta)
        sym = torch.full((B, K, N), -1, dtype=torch.int64, device=y.device)
        svals = torch.zeros(B, K, N, dtype=cdt, device=y.device)
        svals[..., 0] = pilots.to(cdt)
        out = torch.empty(B, N, K, 3, dtype=eta.dtype, device=eta.device)
        out[:, 0] = eta
        ang = eta[..., :2].clone()
        f = eta[..., 2].clone()
        fstep = 2 * search.doppler_grid.step
        R = torch.zeros(B, M, M, dtype=cdt, device=y.device)
        R += base.y[..., 0:1] @ base.y[..., 0:1].mH
        for n in range(2, N + 1):
            i = n - 1
            yi = base.y[..., i:n]
            R = R + yi @ yi.mH  # running sum of y y^H
            if n == K + 1:  # first window with a noise subspace: grid MUSIC, assigned to the drones
                res = music2d_doa(R / n, array, K, search.azimuth_grid, search.elevation_grid)
                peaks = torch.nan_to_num(res.estimates)
                ang = _assign_to_previous(peaks, ang, pos, array.wavelength)
            elif n > K + 1:
                ang = music_refine(R / n, array, ang, K, search.azimuth_grid.step)
            A = _steer(pos, array.wavelength, ang[..., 0], ang[..., 1]).to(cdt)  # (B, M, K)
            if compensation == "pinv":
                z = torch.linalg.lstsq(A, base.y[..., :n]).solution  # (A^H A)^{-1} A^H Y: (B, K, n)
            else:
                z = A.mH @ base.y[..., :n] / M
            w_prev = (z[..., :i] * svals[..., :i].conj())  # (B, K, i)
            # candidates for s_n: (B, K, Q)
            Q = pts.numel()
            w = torch.cat([w_prev[..., None, :].expand(B, K, Q, i), (z[..., i, None] * pts.conj())[..., None]], -1)
            tt = base.t[:, None, None, :n].expand(B, K, Q, n)
            fc, val = _doppler_newton(w, tt, f[..., None].expand(B, K, Q), fstep)
            best = val.argmax(-1)  # (B, K)
            f = fc.gather(-1, best[..., None])[..., 0]
            sym[..., i] = best
            svals[..., i] = pts[best]
            eta = canonical_angles(torch.cat([ang, f[..., None]], -1))
            ang = eta[..., :2]
            out[:, i] = eta
        out = torch.where(valid[:, None, None, None], out, torch.full_like(out, torch.nan))
        return WindowedDetection(out.reshape(*batch, N, K, 3), sym.reshape(*batch, K, N), valid.reshape(batch))


def _assign_to_previous(peaks: torch.Tensor, prev: torch.Tensor, pos, lam) -> torch.Tensor:
    """Order MUSIC peaks ``(B, K, 2)`` like the previous angles (drone identity), by the largest
    total |a(peak)^H a(prev)| over the K! orders."""
    import itertools

    K = peaks.shape[1]
    if K == 1:
        return peaks
    Ap = _steer(pos, lam, peaks[..., 0], peaks[..., 1])
    Ao = _steer(pos, lam, prev[..., 0], prev[..., 1])
    C = (Ap.mH @ Ao).abs()  # (B, peak, drone)
    perms = torch.tensor(list(itertools.permutations(range(K))), device=peaks.device)
    score = torch.stack([C[:, p, torch.arange(K)].sum(-1) for p in perms], -1)
    best = perms[score.argmax(-1)]
    return torch.gather(peaks, 1, best[..., None].expand(-1, -1, 2))
