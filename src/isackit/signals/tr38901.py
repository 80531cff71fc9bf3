r"""3GPP TR 38.901 LoS scenarios (Sionna's channel models) seen through OUR array models.

Sionna 2.2 (``sionna.phy.channel.tr38901``) provides all five system-level scenarios:
``UMi``, ``UMa``, ``RMa``, ``InH`` (indoor office, "open"/"mixed") and ``InF`` (indoor
factory, sub-scenarios "SL", "DL", "SH", "DH", "HH").  We use Sionna to draw the
large-scale parameters and the rays (cluster delays, powers, per-ray angles, K-factor,
path loss, shadow fading) for one BS-UT link per batch entry, forced to LoS, and
synthesise the channel ourselves, ray by ray, with our (possibly impaired)
:class:`~isackit.impairments.ArrayModel` instead of Sionna's antenna arrays (seed 002
uses these scenarios with an impaired gNB array).

Per-ray coefficients (TR 38.901 eqs. 7.5-28 to 7.5-30 specialised to isotropic,
single-polarised (θ) elements, which is what our array models describe; the
cross-polar terms and the XPR therefore drop out):

* NLoS ray m of cluster n: sqrt(P_n / R) e^{jΦ_{n,m}} · sqrt(1/(K+1)), Φ ~ U[0, 2π) drawn
  with OUR generator (R = 20 rays per cluster);
* the LoS ray: sqrt(K/(K+1)) exp(-j 2π d_3D / λ) at the LoS angles;
* all scaled by 10^(-PL/20) sqrt(SF) when path loss / shadow fading are enabled.

Delays are Sionna's cluster delays plus, for the two strongest clusters, the sub-cluster
offsets of Table 7.5-5 (0, 1.28, 2.56 c_DS; the ray → sub-cluster map is Sionna's),
relative to the LoS path (delay 0); with ``absolute_delays`` d_3D / c is added to all.
Links are static (no Doppler).

Conversions (one helper, :func:`sionna_to_local`, tested on known geometry):

* zenith → elevation: ϑ = π/2 - θ_zenith;
* Sionna's global frame (azimuth from +x towards +y, zenith from +z) → the array's local
  frame by the inverse of TR 38.901's rotation R = R_z(α) R_y(β) R_x(γ) (eq. 7.1-4) for
  the array orientation (bearing α, downtilt β, slant γ); Sionna's panel and our arrays
  both have broadside +x and elements in the y-z plane, so no further axis swap is needed;
* normalisation: TR 38.901's array term exp(j 2π r̂·d̄/λ) (eq. 7.5-22) is unnormalised
  (|·| = 1 per antenna pair), like our steering vectors; the 1/sqrt(M) normalisation
  appears in Sionna only in beamformers/precoders, not in channel coefficients, so no
  factor is applied.  With path loss and shadow fading disabled, the expected power per
  antenna pair is Σ_p |g_p|² = K/(K+1) + Σ_n P_n/(K+1) ≈ 1.

Randomness: Sionna draws from its own global generators (``sionna.phy.config``); we seed
them from the caller's generator for the duration of the call and restore them afterwards
(the global torch RNG is not touched), so results are reproducible from our generator.
Sionna is imported lazily; objects are built on the CPU in double precision and the
results are cast to the requested dtype/device.
"""

from __future__ import annotations

import contextlib
import math
import random as _pyrandom
from dataclasses import dataclass

import numpy as np
import torch

from .._checks import check_positive
from ..constants import SPEED_OF_LIGHT
from ..conversions import db_to_amplitude
from ..impairments.base import ArrayModel
from .channels import mimo_ofdm_channel
from .ofdm import OFDMConfig
from ._sionna import sionna_module
from .random import _check_generator
from .._dtypes import complex_dtype

__all__ = [
    "TR38901_SCENARIOS",
    "sionna_to_local",
    "TR38901Paths",
    "tr38901_paths",
    "tr38901_channel",
]

TR38901_SCENARIOS = ("umi", "uma", "rma", "inh", "inf")


def sionna_to_local(azimuth, zenith, orientation=None) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Sionna/TR 38.901 global (azimuth, zenith) → our local (azimuth, elevation).

    u_g = (sin θ cos φ, sin θ sin φ, cos θ) in the global frame; u_l = R^T u_g with
    R = R_z(α) R_y(β) R_x(γ) (TR 38.901 eq. 7.1-4); local azimuth atan2(u_l,y, u_l,x) and
    elevation ϑ = asin(u_l,z) (= π/2 - θ for a level array).

    Args:
        azimuth, zenith: ``(...)`` radians in Sionna's global frame.
        orientation: ``None`` (identity), a scalar yaw/bearing α (rotation about z, the
            library's station orientation ψ), or ``(..., 3)`` (α, β, γ) in radians
            (broadcast against the angles' shape with the last dim of 3 removed).

    Returns:
        ``(azimuth, elevation)`` in the array's local frame, radians, azimuth in (-π, π].
        Differentiable.
    """
    az = torch.as_tensor(azimuth)
    if not az.is_floating_point():
        az = az.to(torch.get_default_dtype())
    zen = torch.as_tensor(zenith, dtype=az.dtype, device=az.device)
    if not (torch.isfinite(az).all() and torch.isfinite(zen).all()):
        raise ValueError("azimuth and zenith must be finite")
    st = torch.sin(zen)
    u = torch.stack([st * torch.cos(az), st * torch.sin(az), torch.cos(zen)], dim=-1)
    if orientation is not None:
        o = torch.as_tensor(orientation, dtype=az.dtype, device=az.device)
        if not torch.isfinite(o).all():
            raise ValueError("orientation must be finite")
        if o.ndim == 0:
            o = torch.stack([o, torch.zeros_like(o), torch.zeros_like(o)], dim=-1)
        elif o.shape[-1] != 3:
            raise ValueError(f"orientation must be a scalar yaw or (..., 3) (bearing, downtilt, slant), "
                             f"got shape {tuple(o.shape)}")
        a, b, c = o[..., 0], o[..., 1], o[..., 2]
        ca, sa, cb, sb, cc, sc = (torch.cos(a), torch.sin(a), torch.cos(b), torch.sin(b),
                                  torch.cos(c), torch.sin(c))
        R = torch.stack([
            torch.stack([ca * cb, ca * sb * sc - sa * cc, ca * sb * cc + sa * sc], -1),
            torch.stack([sa * cb, sa * sb * sc + ca * cc, sa * sb * cc - ca * sc], -1),
            torch.stack([-sb, cb * sc, cb * cc], -1)], -2)  # (..., 3, 3)
        u = (R.transpose(-1, -2) @ u.unsqueeze(-1)).squeeze(-1)
    local_az = torch.atan2(u[..., 1], u[..., 0])
    local_el = torch.asin(torch.clamp(u[..., 2], -1.0, 1.0))
    return local_az, local_el


@dataclass(frozen=True)
class TR38901Paths:
    """Ray-level path parameters of B TR 38.901 links (one BS-UT link per batch entry).

    All tensors are ``(B, P)`` with P = 1 + C·R paths; path 0 is the LoS ray.  Angles are
    in Sionna's GLOBAL frame (radians): ``rx_azimuth``/``rx_zenith`` at the receiver,
    ``tx_azimuth``/``tx_zenith`` at the transmitter; use :func:`sionna_to_local` with
    ``rx_orientation``/``tx_orientation`` ``(B, 3)`` to get local angles.

    Attributes:
        gains: complex per-ray coefficients (see module doc).
        delays: seconds (relative to the LoS path unless ``absolute_delays``).
        k_factor: ``(B,)`` Rician K (linear).
        scenario, direction: as requested; ``carrier_frequency`` in Hz.
    """

    gains: torch.Tensor
    delays: torch.Tensor
    rx_azimuth: torch.Tensor
    rx_zenith: torch.Tensor
    tx_azimuth: torch.Tensor
    tx_zenith: torch.Tensor
    rx_orientation: torch.Tensor
    tx_orientation: torch.Tensor
    k_factor: torch.Tensor
    scenario: str
    direction: str
    carrier_frequency: float

    def local_angles(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(rx azimuth, rx elevation, tx azimuth, tx elevation) in each array's local frame."""
        ra, re = sionna_to_local(self.rx_azimuth, self.rx_zenith, self.rx_orientation.unsqueeze(-2))
        ta, te = sionna_to_local(self.tx_azimuth, self.tx_zenith, self.tx_orientation.unsqueeze(-2))
        return ra, re, ta, te


@contextlib.contextmanager
def _sionna_rng(generator: torch.Generator):
    """Seed Sionna's global generators from ours for the duration of the block, then restore."""
    config = sionna_module("sionna.phy").config
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    saved = (config._py_rng, config._np_rng, dict(config._torch_rngs))
    try:
        config._py_rng = _pyrandom.Random(seed)
        config._np_rng = np.random.default_rng(seed)
        config._torch_rngs = {dev: torch.Generator(device=dev).manual_seed((seed + i) % 2**63)
                              for i, dev in enumerate(saved[2] or {"cpu": None})}
        with torch.random.fork_rng(devices=[]):  # belt and braces: keep the global CPU RNG
            yield
    finally:
        config._py_rng, config._np_rng, config._torch_rngs = saved


def _model(scenario: str, carrier_frequency: float, direction: str, pathloss: bool,
           shadow_fading: bool, options: dict):
    t38 = sionna_module("sionna.phy.channel.tr38901")
    InF, InH, PanelArray, RMa, UMa, UMi = t38.InF, t38.InH, t38.PanelArray, t38.RMa, t38.UMa, t38.UMi

    def arr():
        return PanelArray(num_rows_per_panel=1, num_cols_per_panel=1, polarization="single",
                          polarization_type="V", antenna_pattern="omni",
                          carrier_frequency=carrier_frequency, precision="double", device="cpu")

    common = dict(carrier_frequency=carrier_frequency, ut_array=arr(), bs_array=arr(), direction=direction,
                  enable_pathloss=pathloss, enable_shadow_fading=shadow_fading, precision="double",
                  device="cpu")
    cls = {"umi": UMi, "uma": UMa, "rma": RMa, "inh": InH, "inf": InF}[scenario]
    if scenario in ("umi", "uma"):
        options = {"o2i_model": "low", **options}
    return cls(**common, **options)


def _vec3(x, name: str, B: int | None) -> torch.Tensor:
    t = torch.as_tensor(x, dtype=torch.float64)
    if t.ndim == 1:
        t = t.unsqueeze(0)
    if t.ndim != 2 or t.shape[-1] != 3:
        raise ValueError(f"{name} must have shape (3,) or (B, 3), got {tuple(torch.as_tensor(x).shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} must be finite")
    return t


def _orient(x, B: int, name: str) -> torch.Tensor:
    t = torch.as_tensor(0.0 if x is None else x, dtype=torch.float64)
    if t.ndim == 0:  # a yaw shared by all links
        t = torch.stack([t, torch.zeros_like(t), torch.zeros_like(t)], -1)
    if t.ndim == 1:
        t = t.unsqueeze(0)
    if t.ndim != 2 or t.shape[-1] != 3 or t.shape[0] not in (1, B):
        raise ValueError(f"{name} must be a scalar yaw, (3,) or (B, 3) (bearing, downtilt, slant) "
                         f"with B = {B}, got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} must be finite")
    return t.expand(B, 3).clone()


def tr38901_paths(scenario: str, generator: torch.Generator, *, bs_position, ut_position,
                  carrier_frequency: float, bs_orientation=None, ut_orientation=None,
                  direction: str = "uplink", pathloss: bool = False, shadow_fading: bool = False,
                  absolute_delays: bool = False, dtype: torch.dtype = torch.float32, device=None,
                  **scenario_options) -> TR38901Paths:
    r"""Draw LoS TR 38.901 rays with Sionna for B BS-UT links.

    Args:
        scenario: one of ``umi``, ``uma``, ``rma``, ``inh``, ``inf`` (case-insensitive).
        generator: the source of randomness (seeds Sionna for this call, draws the ray phases).
        bs_position, ut_position: ``(3,)`` or ``(B, 3)`` metres (global frame, z up).
        carrier_frequency: Hz.
        bs_orientation, ut_orientation: a scalar yaw (rotation about z), or ``(3,)``/``(B, 3)``
            (bearing α, downtilt β, slant γ) in radians (TR 38.901 §7.1).  Our elements are
            isotropic and single-polarised, so only the direction conversion uses them.
        direction: ``"uplink"`` (UT → BS: the receiver is the BS) or ``"downlink"``.
        pathloss, shadow_fading: apply TR 38.901 path loss / shadow fading (default off:
            unit average power per antenna pair).
        absolute_delays: add the LoS propagation delay d_3D / c to every path.
        dtype: real dtype of the outputs (gains get the matching complex dtype).
        **scenario_options: passed to Sionna's model (e.g. ``indoor_scenario="mixed"`` for InH,
            ``factory_scenario="DH"`` for InF, ``o2i_model`` for UMi/UMa).

    Returns:
        :class:`TR38901Paths` with ``(B, P)`` tensors.  Not differentiable (random draws).
    """
    _check_generator(generator)
    if not isinstance(scenario, str) or scenario.lower() not in TR38901_SCENARIOS:
        raise ValueError(f"unknown TR 38.901 scenario {scenario!r}; expected one of: "
                         f"{', '.join(TR38901_SCENARIOS)}")
    scen = scenario.lower()
    if direction not in ("uplink", "downlink"):
        raise ValueError(f"direction must be 'uplink' or 'downlink', got {direction!r}")
    check_positive(carrier_frequency, "carrier_frequency")
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    bs = _vec3(bs_position, "bs_position", None)
    ut = _vec3(ut_position, "ut_position", None)
    B = max(bs.shape[0], ut.shape[0])
    try:
        bs, ut = bs.expand(B, 3), ut.expand(B, 3)
    except RuntimeError as err:
        raise ValueError(f"bs_position {tuple(bs.shape)} and ut_position {tuple(ut.shape)} must have "
                         "the same batch size B (or one of them none)") from err
    if bool((torch.linalg.norm(bs - ut, dim=-1) <= 0).any()):
        raise ValueError("bs_position and ut_position must differ")
    bs_o, ut_o = _orient(bs_orientation, B, "bs_orientation"), _orient(ut_orientation, B, "ut_orientation")

    cd = complex_dtype(dtype)
    with _sionna_rng(generator):
        model = _model(scen, float(carrier_frequency), direction, pathloss, shadow_fading, scenario_options)
        topo = dict(in_state=torch.full((B, 1), scen in ("inh", "inf")), los=True)
        if scen == "rma":
            topo["in_car"] = torch.zeros(B, 1, dtype=torch.bool)
        model.set_topology(ut.reshape(B, 1, 3).contiguous(), bs.reshape(B, 1, 3).contiguous(),
                           ut_o.reshape(B, 1, 3).contiguous(), bs_o.reshape(B, 1, 3).contiguous(),
                           torch.zeros(B, 1, 3, dtype=torch.float64), **topo)
        model.return_rays = True
        _, _, rays = model(1, 1.0)
        sc = model._scenario
        lsp = model._lsp
        k = lsp.k_factor.reshape(B).to(torch.float64)
        d3d = sc.distance_3d.reshape(B).to(torch.float64)
        c_ds = (sc.get_param("cDS") * 1e-9).reshape(B).to(torch.float64)
        gen = model._cir_sampler
        sub_ind = [gen._sub_cl_1_ind, gen._sub_cl_2_ind, gen._sub_cl_3_ind]
        sub_off = gen._sub_cl_delay_offsets.to(torch.float64)
        subclustering = bool(gen._subclustering)
        scale = torch.ones(B, dtype=torch.float64)
        if pathloss:
            scale = scale * db_to_amplitude(-lsp.pathloss.reshape(B).to(torch.float64))
        if shadow_fading:
            scale = scale * torch.sqrt(lsp.sf.reshape(B).to(torch.float64))
        # LoS angles in the downlink (BS → UT) view, degrees: aod/zod at the BS, aoa/zoa at the UT
        los = {n: torch.deg2rad(getattr(sc, f"los_{n}").reshape(B).to(torch.float64))
               for n in ("aoa", "aod", "zoa", "zod")}

    # rays are in the TX/RX view of the requested direction: aoa/zoa at the receiver
    C, R = rays.aoa.shape[-2:]
    powers = rays.powers.reshape(B, C).to(torch.float64)
    cl_delays = rays.delays.reshape(B, C).to(torch.float64)
    ray_delay = cl_delays.unsqueeze(-1).expand(B, C, R).clone()
    if subclustering:
        strongest = rays.strongest_cluster_indices
        strongest = (torch.argsort(powers, dim=-1, descending=True)[:, :2] if strongest is None
                     else strongest.reshape(B, 2))
        offsets = torch.zeros(R, dtype=torch.float64)
        for j, ind in enumerate(sub_ind):
            offsets[ind.cpu()] = sub_off[j].cpu()
        extra = torch.zeros(B, C, R, dtype=torch.float64)
        extra.scatter_(1, strongest.unsqueeze(-1).expand(B, 2, R),
                       (offsets * c_ds.reshape(B, 1, 1)).expand(B, 2, R).contiguous())
        ray_delay = ray_delay + extra
    phases = 2 * math.pi * torch.rand(B, C, R, generator=generator, dtype=torch.float64,
                                      device=generator.device).cpu()
    nlos_amp = torch.sqrt(powers / R / (k + 1).unsqueeze(-1)).unsqueeze(-1).expand(B, C, R)
    nlos = torch.polar(nlos_amp.contiguous(), phases)
    wavelength = SPEED_OF_LIGHT / float(carrier_frequency)
    los_gain = torch.polar(torch.sqrt(k / (k + 1)), -2 * math.pi * d3d / wavelength)
    gains = torch.cat([los_gain.unsqueeze(-1), nlos.reshape(B, C * R)], -1) * scale.unsqueeze(-1)
    delays = torch.cat([torch.zeros(B, 1, dtype=torch.float64), ray_delay.reshape(B, C * R)], -1)
    if absolute_delays:
        delays = delays + (d3d / SPEED_OF_LIGHT).unsqueeze(-1)

    def flat(x):
        return x.reshape(B, C * R).to(torch.float64)

    if direction == "downlink":  # tx = BS, rx = UT
        los_tx, los_rx = (los["aod"], los["zod"]), (los["aoa"], los["zoa"])
        tx_o, rx_o = bs_o, ut_o
    else:  # tx = UT, rx = BS: the arrival angles at the BS are the downlink departure angles
        los_tx, los_rx = (los["aoa"], los["zoa"]), (los["aod"], los["zod"])
        tx_o, rx_o = ut_o, bs_o

    def cat(l0, rays_angle):
        return torch.cat([l0.unsqueeze(-1), flat(rays_angle)], -1)

    out = dict(
        rx_azimuth=cat(los_rx[0], rays.aoa), rx_zenith=cat(los_rx[1], rays.zoa),
        tx_azimuth=cat(los_tx[0], rays.aod), tx_zenith=cat(los_tx[1], rays.zod),
    )
    dev = generator.device if device is None else torch.device(device)
    return TR38901Paths(
        gains=gains.to(dtype=cd, device=dev), delays=delays.to(dtype=dtype, device=dev),
        **{n: v.to(dtype=dtype, device=dev) for n, v in out.items()},
        rx_orientation=rx_o.to(dtype=dtype, device=dev), tx_orientation=tx_o.to(dtype=dtype, device=dev),
        k_factor=k.to(dtype=dtype, device=dev), scenario=scen, direction=direction,
        carrier_frequency=float(carrier_frequency))


def tr38901_channel(paths: TR38901Paths, config: OFDMConfig, rx_array: ArrayModel | None = None,
                    tx_array: ArrayModel | None = None) -> torch.Tensor:
    r"""Synthesise the MIMO-OFDM channel of TR 38.901 rays with our array models.

    H_n = Σ_p g_p a_r(φ_p^r, ϑ_p^r) a_t(φ_p^t, ϑ_p^t)^T exp(-j 2π n Δf τ_p), with the local
    angles from :func:`sionna_to_local`.  ``None`` for an array means a single isotropic
    antenna (e.g. the UT).

    Returns:
        ``(B, N, M_r, M_t)`` (M = 1 for a single antenna), in the paths' dtype/device.
    """
    if not isinstance(paths, TR38901Paths):
        raise TypeError(f"paths must be TR38901Paths, got {type(paths).__name__}")
    if not math.isclose(paths.carrier_frequency, config.carrier_frequency, rel_tol=1e-9):
        raise ValueError(f"config.carrier_frequency {config.carrier_frequency} differs from the paths' "
                         f"{paths.carrier_frequency}")
    ra, re, ta, te = paths.local_angles()
    H = mimo_ofdm_channel(rx_array, tx_array, ra, ta, paths.delays, paths.gains, config,
                          aoa_elevation=re, aod_elevation=te)
    return H
