r"""CRB of one direction seen on several OFDM tones through a subcarrier-dependent response.

Seed 002's CSI sample is one source observed on K tones ("frequency snapshots"), h(k) =
s_k ã_k(θ) + n(k), n(k) ~ CN(0, σ² I), with a response ã_k that may differ per tone
(subcarrier-dependent phase errors, or the wideband model) and an unknown complex amplitude
s_k per tone (the deterministic model).  Eliminating the s_k (Schur complement per tone):

    J(θ) = (2/σ²) Σ_k |s_k|² ( ‖ḋ_k‖² − |ã_kᴴ ḋ_k|² / ‖ã_k‖² ),   ḋ_k = ∂ã_k/∂θ,

and CRB(θ) = 1/J(θ).  With a tone-independent response it is the deterministic CRB of
:func:`~isackit.bounds.crb_doa_deterministic` with K snapshots (tested).  The response and
its derivative come from the TRUE :class:`~isackit.impairments.ArrayModel` (a receiver that
knows the impairments), so the bound is that of the array the data come from.
"""

from __future__ import annotations

import torch

from .._checks import check_positive
from ..impairments.base import ArrayModel

__all__ = ["crb_doa_tones"]


def crb_doa_tones(array_model: ArrayModel, azimuth, noise_var, subcarriers=None, powers=None,
                  num_tones: int | None = None) -> torch.Tensor:
    r"""CRB (rad²) of the azimuth of one source observed on K tones (module docstring).

    Args:
        array_model: the true array (subcarrier-dependent impairments allowed).
        azimuth: ``(...)`` radians.
        noise_var: σ² (scalar or broadcastable to ``(...)``).
        subcarriers: ``(K,)`` tone indices (needed for a subcarrier-dependent model).
        powers: |s_k|² ``(K,)`` or ``(..., K)`` (default 1 on every tone).
        num_tones: K when the model is tone-independent and no ``subcarriers`` are given.

    Returns:
        ``(...)`` CRB in rad², in the azimuth's real dtype.

    Example:
        >>> from isackit.geometry import ula
        >>> crb = crb_doa_tones(ArrayModel(ula(4)), torch.tensor(0.0, dtype=torch.float64), 0.1, num_tones=16)
        >>> round(float(crb) ** 0.5 * 180 / 3.141592653589793, 3)   # √CRB in degrees at 10 dB
        0.456
    """
    if not isinstance(array_model, ArrayModel):
        raise TypeError(f"array_model must be an ArrayModel, got {type(array_model).__name__}")
    az = torch.as_tensor(azimuth)
    if not az.is_floating_point():
        az = az.to(torch.get_default_dtype())
    check_positive(noise_var, "noise_var")
    A, (D, _) = array_model.steering_and_derivatives(az.unsqueeze(-1), subcarriers=subcarriers)
    if subcarriers is None:  # (..., M, 1): one response for all tones
        K = 1 if num_tones is None else int(num_tones)
        A, D = A.unsqueeze(-3), D.unsqueeze(-3)
    else:
        K = A.shape[-3]
    a, d = A[..., 0], D[..., 0]  # (..., K', M)
    na = (a.abs() ** 2).sum(-1)
    per_tone = (d.abs() ** 2).sum(-1) - ((a.conj() * d).sum(-1).abs() ** 2) / na  # (..., K')
    if powers is None:
        p = torch.ones(K, dtype=per_tone.dtype, device=per_tone.device)
    else:
        p = torch.as_tensor(powers, dtype=per_tone.dtype, device=per_tone.device)
    s2 = torch.as_tensor(noise_var, dtype=per_tone.dtype, device=per_tone.device)
    J = 2.0 / s2 * (p * per_tone).sum(-1)  # a tone-independent response broadcasts over the K powers
    return 1.0 / J
