r"""S2 evaluation helpers: beamformer responses (eq. 33), spectra widths, training-loss spread
(Fig. 4h), the CRB over the field of view, and per-subregion error statistics (Fig. 5).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ...bounds.tones import crb_doa_tones
from ...learning.mod_dnn import MultiTaskAutoencoder, normalize_csi
from ...metrics import box_statistics
from ...signals.random import noise_variance_from_snr
from .config import ScenarioConfig
from .scenario import Device, nearest_grid_index, subregion_bounds, subregion_of

__all__ = [
    "autoencoder_responses",
    "branch_accuracy",
    "half_power_width",
    "epoch_loss_spread",
    "epochs_to_settle",
    "crb_over_angles",
    "subregion_box_statistics",
]


def autoencoder_responses(ae: MultiTaskAutoencoder, csi: torch.Tensor, aoa: torch.Tensor, scenario: ScenarioConfig
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Eq. (33) per subregion p as functions of the true grid angle, averaged over the samples
    at each angle and the tones:

        r_amp^p   = |h(k)ᴴ h_p(k)| / ‖h(k)‖²                 (1 in an ideal passband)
        r_phase^p = |h(k)ᴴ h_p(k)| / (‖h(k)‖ ‖h_p(k)‖)       (a normalised correlation)

    Returns ``(grid indices (G,), r_amp (P, G), r_phase (P, G))`` for the G distinct angles.
    """
    with torch.no_grad():
        H = normalize_csi(csi)
        Hp = ae(H)  # (S, P, M, K)
        inner = (H.conj().unsqueeze(1) * Hp).sum(-2).abs()  # (S, P, K)
        nh = (H.abs() ** 2).sum(-2).unsqueeze(1)  # (S, 1, K)
        nhp = (Hp.abs() ** 2).sum(-2)
        amp = (inner / nh.clamp_min(1e-30)).mean(-1)  # (S, P)
        phase = (inner / (nh * nhp).clamp_min(1e-30).sqrt()).mean(-1)
        idx = nearest_grid_index(aoa, scenario)
        uniq, inv = torch.unique(idx, return_inverse=True)
        cnt = torch.bincount(inv, minlength=uniq.numel()).to(amp.dtype)
        r_amp = torch.zeros(uniq.numel(), amp.shape[1], dtype=amp.dtype).index_add_(0, inv, amp) / cnt[:, None]
        r_ph = torch.zeros(uniq.numel(), amp.shape[1], dtype=amp.dtype).index_add_(0, inv, phase) / cnt[:, None]
    return uniq, r_amp.T, r_ph.T


def branch_accuracy(ae: MultiTaskAutoencoder, csi: torch.Tensor, aoa: torch.Tensor, scenario: ScenarioConfig,
                    margin_deg: float = 0.0) -> float:
    """Fraction of samples whose most energetic branch argmax_p ‖H_p‖² is their subregion, over
    the samples at least ``margin_deg`` away from every inner subregion boundary."""
    with torch.no_grad():
        Hp = ae(normalize_csi(csi))
        best = (Hp.abs() ** 2).sum((-2, -1)).argmax(-1)
    ok = best == subregion_of(aoa, scenario)
    if margin_deg > 0:
        g = scenario.grid
        b = subregion_bounds(g.size, g.subregions)[1:-1]
        edges = torch.tensor([g.min_deg + g.step_deg * (i - 0.5) for i in b], dtype=torch.float64)
        d = (torch.rad2deg(aoa.double())[:, None] - edges).abs().amin(-1) if len(b) else torch.full_like(
            aoa.double(), math.inf)
        ok = ok[d >= margin_deg]
    return float(ok.float().mean()) if ok.numel() else math.nan


def half_power_width(spectrum: torch.Tensor, grid_deg: torch.Tensor) -> tuple[float, float]:
    """(FWHM in degrees around the global maximum, the maximum's angle) of a 1-D spectrum."""
    s = spectrum.detach().double()
    s = s / s.max().clamp_min(1e-300)
    i = int(s.argmax())
    lo = i
    while lo > 0 and s[lo - 1] >= 0.5:
        lo -= 1
    hi = i
    while hi < s.numel() - 1 and s[hi + 1] >= 0.5:
        hi += 1

    def cross(a, b):  # linear interpolation of the 0.5 crossing between grid points a (>= .5) and b
        if b < 0 or b >= s.numel():
            return float(grid_deg[a])
        t = float((s[a] - 0.5) / (s[a] - s[b]).clamp_min(1e-300))
        return float(grid_deg[a] + t * (grid_deg[b] - grid_deg[a]))

    return cross(hi, hi + 1) - cross(lo, lo - 1), float(grid_deg[i])


def epoch_loss_spread(losses: list[float], steps_per_epoch: int) -> list[float]:
    r"""Fig. 4h: per epoch e, the spread of its batch losses around the converged loss,
    SD_e = sqrt(mean_{t∈e} (ℓ_t − ℓ_∞)²) with ℓ_∞ the mean loss of the last epoch,
    normalised by SD_1."""
    n = len(losses) // max(1, steps_per_epoch)
    if n == 0:
        return []
    x = torch.tensor(losses[: n * steps_per_epoch], dtype=torch.float64).reshape(n, steps_per_epoch)
    final = x[-1].mean()
    sd = ((x - final) ** 2).mean(-1).sqrt()
    return (sd / sd[0].clamp_min(1e-300)).tolist()


def epochs_to_settle(spread: list[float], level: float = 0.1) -> float:
    """First epoch (1-based) whose normalised spread is below ``level`` (NaN if never)."""
    for e, v in enumerate(spread, start=1):
        if v < level:
            return float(e)
    return math.nan


def crb_over_angles(device: Device, scenario: ScenarioConfig, aoa: torch.Tensor, snr_db: float) -> torch.Tensor:
    r"""CRB (rad²) of each angle for one CSI sample (K tones, unit power per element and tone)
    with the device's TRUE array (a receiver that knows the impairments): :func:`crb_doa_tones`."""
    sc = torch.arange(scenario.array.num_subcarriers)
    subcarrier_dependent = any(i.subcarrier_dependent for i in device.true_array.impairments)
    nv = noise_variance_from_snr(float(snr_db))
    return crb_doa_tones(device.true_array, aoa.double(), nv, subcarriers=sc if subcarrier_dependent else None,
                         num_tones=scenario.array.num_subcarriers)


def subregion_box_statistics(errors_deg: torch.Tensor, aoa: torch.Tensor, scenario: ScenarioConfig
                             ) -> list[dict[str, Any]]:
    """Box statistics of |error| per subregion under both outlier rules (Tukey's and the seed's)."""
    sub = subregion_of(aoa, scenario)
    out = []
    for p in range(scenario.grid.subregions):
        e = errors_deg[sub == p].abs()
        for rule in ("tukey", "seed002"):
            b = box_statistics(e, rule)
            out.append({"subregion": p, **b.__dict__})
    return out
