r"""Measured CSI files: a safe loader, the seed's splits, and phase-error curves from data.

Seed 002 (MoD-DNN) works on the channel frequency response (CFR) that a commercial gNB's
BBU outputs per UL-SRS symbol: M antennas × K subcarriers, labelled by the turntable angle
(anechoic chamber) or by the UE position (field test, AoA = bearing from the RRU).
:func:`load_measured_csi` reads such data into one :class:`MeasuredCSI`:

* formats: NumPy ``.npz`` (``numpy.load(allow_pickle=False)``), MATLAB ``.mat`` v5
  (``scipy.io.loadmat``, numeric arrays only), MATLAB ``.mat`` v7.3 / HDF5 ``.h5``/``.hdf5``
  (``h5py``; a v7.3 file's axes are reversed back to MATLAB's order, complex compounds
  ``{real, imag}`` are recognised), or a folder of such files (sorted by name, concatenated
  along the sample axis; the file index is the ``group`` when none is stored);
* field names are configurable (``fields={"csi": "CFR", "aoa_deg": "angle"}``), defaults
  :data:`DEFAULT_FIELDS`; CSI either complex or real with a trailing axis of 2 (Re, Im);
  ``layout`` names the axis order of the CSI array (``"SMK"``, ``"SKM"``, ``"MKS"``, …: S
  samples, M antennas, K subcarriers);
* AoA in degrees in the file (radians inside the library); when no angle is stored it comes
  from the UE ``position`` and the BS position/orientation
  (:func:`isackit.geometry.scene.local_angles`, azimuth only);
* nothing in a file is ever executed or unpickled: object arrays, MATLAB objects and
  structs are rejected; every problem (missing file or field, bad shape, non-finite CSI)
  is a one-line :class:`MeasuredDataError` (a ``ValueError``; exit code 2 from the CLI).

Splits (seed 002, Secs. 6.1–6.2): :meth:`MeasuredCSI.split_per_label` (chamber: per angle
the first ``train`` symbols train, the next ``val`` validate) and
:meth:`MeasuredCSI.split_every` (field: positions sorted by AoA, one of every n to
validation; a position's symbols never straddle the split).

:func:`estimate_phase_error` is the paper's chamber measurement of Fig. 1b from the same
files: per label angle θ, ψ_{m,k}(θ) = arg Σ_s h_{m,k,s} h_{r,k,s}^* − arg(a_m a_r^*)(θ),
unwrapped along θ, returned as a :class:`~isackit.impairments.TabulatedPhaseError`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..geometry.scene import local_angles
from ..impairments.angle_phase import TabulatedPhaseError
from ..impairments.base import ArrayModel
from ..impairments.phase_curves import unwrap_phase

__all__ = [
    "DEFAULT_FIELDS",
    "SUPPORTED_SUFFIXES",
    "MeasuredCSI",
    "MeasuredDataError",
    "estimate_phase_error",
    "load_measured_csi",
    "save_measured_csi",
]

#: Our names → the default names in a file (override any of them with ``fields=``).
DEFAULT_FIELDS: dict[str, str] = {
    "csi": "csi",                          # (S, M, K) complex, or (..., 2) real/imag
    "aoa_deg": "aoa_deg",                  # (S,) degrees
    "position": "position",                # (S, 2|3) metres
    "group": "group",                      # (S,) integer position/angle label
    "subcarrier_index": "subcarrier_index",  # (K,) integers
    "carrier_frequency": "fc",             # scalar, Hz
    "subcarrier_spacing": "scs",           # scalar, Hz
    "timestamp": "timestamp",              # (S,) seconds
}
SUPPORTED_SUFFIXES = (".npz", ".mat", ".h5", ".hdf5")
_LAYOUT_LETTERS = "SMK"


class MeasuredDataError(ValueError):
    """A measured-data file or folder that cannot be used (one-line message)."""


def _err(msg: str) -> MeasuredDataError:
    return MeasuredDataError(" ".join(str(msg).split()))


@dataclass(frozen=True, eq=False)
class MeasuredCSI:
    r"""Measured CSI samples (one UL-SRS symbol each) with their labels.

    Attributes:
        csi: ``(S, M, K)`` complex CFR.
        aoa: ``(S,)`` azimuth in radians (NaN where unknown).
        group: ``(S,)`` int64 label of the position / angle step a sample belongs to.
        subcarrier_index: ``(K,)`` int64 indices of the stored subcarriers.
        position: ``(S, 3)`` metres or None.
        timestamp: ``(S,)`` seconds or None.
        carrier_frequency, subcarrier_spacing: Hz or None.
        meta: free-form description (source files, group names, …).
    """

    csi: torch.Tensor
    aoa: torch.Tensor
    group: torch.Tensor
    subcarrier_index: torch.Tensor
    position: torch.Tensor | None = None
    timestamp: torch.Tensor | None = None
    carrier_frequency: float | None = None
    subcarrier_spacing: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        c = self.csi
        if not isinstance(c, torch.Tensor) or not c.is_complex() or c.ndim != 3:
            raise _err(f"csi must be a complex (S, M, K) tensor, got {getattr(c, 'dtype', type(c).__name__)} "
                       f"{tuple(getattr(c, 'shape', ()))}")
        S, _, K = c.shape
        for name, t, shape in (("aoa", self.aoa, (S,)), ("group", self.group, (S,)),
                               ("subcarrier_index", self.subcarrier_index, (K,))):
            if tuple(t.shape) != shape:
                raise _err(f"{name} must have shape {shape}, got {tuple(t.shape)}")
        if self.position is not None and (self.position.ndim != 2 or self.position.shape != (S, 3)):
            raise _err(f"position must have shape ({S}, 3), got {tuple(self.position.shape)}")
        if self.timestamp is not None and tuple(self.timestamp.shape) != (S,):
            raise _err(f"timestamp must have shape ({S},), got {tuple(self.timestamp.shape)}")

    # -- sizes ------------------------------------------------------------------------------
    @property
    def num_samples(self) -> int:
        return int(self.csi.shape[0])

    @property
    def num_elements(self) -> int:
        return int(self.csi.shape[1])

    @property
    def num_subcarriers(self) -> int:
        return int(self.csi.shape[2])

    @property
    def has_labels(self) -> bool:
        """Whether every sample has a finite AoA."""
        return bool(torch.isfinite(self.aoa).all())

    # -- selections -------------------------------------------------------------------------
    def subset(self, index) -> MeasuredCSI:
        """Samples ``index`` (a bool mask ``(S,)`` or int64 indices), in that order."""
        idx = torch.as_tensor(index)
        if idx.dtype == torch.bool:
            if idx.shape != (self.num_samples,):
                raise _err(f"a sample mask must have shape ({self.num_samples},), got {tuple(idx.shape)}")
            idx = torch.nonzero(idx).flatten()
        idx = idx.long()

        def pick(t):
            return None if t is None else t[idx]

        return replace(self, csi=self.csi[idx], aoa=self.aoa[idx], group=self.group[idx],
                       position=pick(self.position), timestamp=pick(self.timestamp))

    def select_subcarriers(self, count: int, mode: str = "uniform") -> MeasuredCSI:
        r"""Keep ``count`` of the K stored subcarriers: ``"uniform"`` keeps k_j = j·⌊K/count⌋,
        j = 0..count−1 (seed 002: 16 of 3264 → every 204th), ``"first"`` the first ``count``."""
        n = int(count)
        K = self.num_subcarriers
        if not 1 <= n <= K:
            raise _err(f"cannot select {count} of {K} subcarriers")
        if mode == "uniform":
            keep = torch.arange(n) * (K // n)
        elif mode == "first":
            keep = torch.arange(n)
        else:
            raise _err(f"unknown subcarrier selection mode {mode!r}; expected 'uniform' or 'first'")
        return replace(self, csi=self.csi[..., keep], subcarrier_index=self.subcarrier_index[keep])

    def filter(self, aoa_min: float = -math.pi / 3, aoa_max: float = math.pi / 3) -> MeasuredCSI:
        """Samples whose AoA (radians) lies in [aoa_min, aoa_max] (default ±60°, the seed's FoV)."""
        a = self.aoa
        return self.subset((a >= aoa_min - 1e-12) & (a <= aoa_max + 1e-12))

    def split_per_label(self, train: int, val: int) -> tuple[MeasuredCSI, MeasuredCSI]:
        r"""Per distinct AoA label (chamber), the first ``train`` samples (in stored order)
        train and the next ``val`` validate (seed 002: 400 / 50 of 450 per angle).  Labels
        with fewer than ``train + val`` samples are a :class:`MeasuredDataError`."""
        self._need_labels()
        labels, inv = torch.unique(self.aoa, return_inverse=True)
        order = torch.argsort(inv, stable=True)  # samples grouped by label, stored order kept
        counts = torch.bincount(inv, minlength=labels.numel())
        if int(counts.min()) < int(train) + int(val):
            raise _err(f"split_per_label({train}, {val}) needs {int(train) + int(val)} samples per angle, "
                       f"but some angle has only {int(counts.min())}")
        start = torch.cumsum(counts, 0) - counts
        rank = torch.empty_like(order)
        rank[order] = torch.arange(order.numel()) - start[inv[order]]
        return self.subset(rank < int(train)), self.subset((rank >= int(train)) & (rank < int(train) + int(val)))

    def split_every(self, n: int = 4, offset: int = 0) -> tuple[MeasuredCSI, MeasuredCSI]:
        r"""Field split (seed 002, Sec. 6.2): groups (positions) sorted by their mean AoA; of
        every ``n`` consecutive groups the one at ``offset`` goes to validation, the others to
        training.  Returns ``(train, val)``; a group's samples never straddle the split."""
        self._need_labels()
        n, offset = int(n), int(offset)
        if n < 2 or not 0 <= offset < n:
            raise _err(f"split_every needs n >= 2 and 0 <= offset < n, got n={n}, offset={offset}")
        groups, inv = torch.unique(self.group, return_inverse=True)
        mean_aoa = torch.zeros(groups.numel(), dtype=self.aoa.dtype).index_add_(0, inv, self.aoa)
        mean_aoa = mean_aoa / torch.bincount(inv, minlength=groups.numel()).to(self.aoa.dtype)
        rank = torch.empty(groups.numel(), dtype=torch.long)
        rank[torch.argsort(mean_aoa, stable=True)] = torch.arange(groups.numel())
        val_group = (rank % n) == offset
        is_val = val_group[inv]
        return self.subset(~is_val), self.subset(is_val)

    def _need_labels(self):
        if not self.has_labels:
            raise _err("this operation needs an AoA for every sample (store aoa_deg, or position with bs_position)")

    # -- tensors ----------------------------------------------------------------------------
    def covariances(self) -> torch.Tensor:
        """Sample covariances over the subcarriers, R = H Hᴴ / K, ``(S, M, M)``."""
        return self.csi @ self.csi.mH / self.num_subcarriers

    def to(self, dtype: torch.dtype | None = None, device=None) -> MeasuredCSI:
        """The same data with ``csi`` in complex ``dtype`` (and real labels in the matching real
        dtype) on ``device``."""
        cd = dtype or self.csi.dtype
        rd = torch.float64 if cd == torch.complex128 else torch.float32

        def mv(t, d):
            return None if t is None else t.to(dtype=d, device=device)

        return replace(self, csi=self.csi.to(dtype=cd, device=device), aoa=mv(self.aoa, rd),
                       group=self.group.to(device=device), position=mv(self.position, rd),
                       timestamp=mv(self.timestamp, torch.float64))


# ---------------------------------------------------------------------------------------
# reading files
# ---------------------------------------------------------------------------------------
def _is_hdf5(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(1024)
    return b"\x89HDF\r\n\x1a\n" in head[:8] or head[512:520] == b"\x89HDF\r\n\x1a\n"


def _numeric(name: str, arr, path: Path) -> np.ndarray:
    a = np.asarray(arr)
    if a.dtype.kind not in "biufc":
        raise _err(f"{path.name}: field {name!r} is not a numeric array (dtype {a.dtype}); "
                   "only plain numeric arrays are read")
    return a


def _read_npz(path: Path, names: list[str]) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = list(z.files)
            out = {}
            for n in names:
                if n in keys:
                    out[n] = _numeric(n, z[n], path)
            out["__keys__"] = keys
            return out
    except MeasuredDataError:
        raise
    except ValueError as err:
        if "pickle" in str(err).lower():
            raise _err(f"{path.name} holds object (pickled) arrays; isackit never unpickles data") from None
        raise _err(f"cannot read {path.name} as .npz: {err}") from None
    except Exception as err:  # noqa: BLE001 - any malformed archive is one line
        raise _err(f"cannot read {path.name} as .npz: {err}") from None


def _read_mat5(path: Path, names: list[str]) -> dict[str, np.ndarray]:
    import scipy.io

    try:
        keys = [k for k, *_ in scipy.io.whosmat(str(path))]
        wanted = [n for n in names if n in keys]
        raw = scipy.io.loadmat(str(path), variable_names=wanted, squeeze_me=False, mat_dtype=False,
                               struct_as_record=True, chars_as_strings=True) if wanted else {}
    except Exception as err:  # noqa: BLE001 - any malformed file (MatReadError, zlib, struct …) is one line
        raise _err(f"cannot read {path.name} as a MATLAB v5 file: {err}") from None
    out = {n: _numeric(n, raw[n], path) for n in wanted}
    out["__keys__"] = keys
    return out


def _h5_to_numpy(name: str, ds, path: Path, matlab: bool) -> np.ndarray:
    a = ds[()]
    a = np.asarray(a)
    if a.dtype.names is not None:
        if set(a.dtype.names) >= {"real", "imag"}:
            a = a["real"] + 1j * a["imag"]
        else:
            raise _err(f"{path.name}: field {name!r} is a compound dataset {a.dtype.names}; "
                       "only numeric arrays (or {real, imag}) are read")
    a = _numeric(name, a, path)
    if matlab and a.ndim > 1:  # MATLAB v7.3 stores column-major: reverse to MATLAB's axis order
        a = np.ascontiguousarray(a.transpose(tuple(range(a.ndim))[::-1]))
    return a


def _read_h5(path: Path, names: list[str], matlab: bool) -> dict[str, np.ndarray]:
    try:
        import h5py
    except ImportError:  # pragma: no cover - h5py is a dependency
        raise _err("reading .h5 / MATLAB v7.3 files needs h5py (pip install h5py)") from None
    try:
        with h5py.File(path, "r") as f:
            keys = []
            f.visit(lambda k: keys.append(k) if isinstance(f[k], h5py.Dataset) else None)
            out = {}
            for n in names:
                if n in f and isinstance(f[n], h5py.Dataset):
                    out[n] = _h5_to_numpy(n, f[n], path, matlab)
            out["__keys__"] = keys
            return out
    except MeasuredDataError:
        raise
    except Exception as err:  # noqa: BLE001 - any malformed HDF5 file is one line
        raise _err(f"cannot read {path.name} as HDF5: {err}") from None


def _read_file(path: Path, names: list[str]) -> dict[str, np.ndarray]:
    suf = path.suffix.lower()
    if suf == ".npz":
        return _read_npz(path, names)
    if suf == ".mat":
        return _read_h5(path, names, matlab=True) if _is_hdf5(path) else _read_mat5(path, names)
    if suf in (".h5", ".hdf5"):
        return _read_h5(path, names, matlab=False)
    raise _err(f"unsupported measured-data file {path.name!r}; expected one of {', '.join(SUPPORTED_SUFFIXES)} "
               "or a folder of them")


def _check_layout(layout: str) -> str:
    if not isinstance(layout, str) or sorted(layout.upper()) != sorted(_LAYOUT_LETTERS):
        raise _err(f"layout must be a permutation of 'SMK' (S samples, M antennas, K subcarriers), got {layout!r}")
    return layout.upper()


def _csi_array(a: np.ndarray, layout: str, path: Path, name: str) -> np.ndarray:
    if not np.iscomplexobj(a):
        if a.ndim == 4 and a.shape[-1] == 2:
            a = a[..., 0] + 1j * a[..., 1]
        else:
            raise _err(f"{path.name}: CSI field {name!r} must be complex with 3 axes ({layout}) or real with "
                       f"a trailing axis of 2 (Re, Im); got a real array of shape {a.shape}")
    if a.ndim != 3:
        raise _err(f"{path.name}: CSI field {name!r} must have 3 axes ({layout}), got shape {a.shape}")
    perm = tuple(layout.index(c) for c in _LAYOUT_LETTERS)
    a = np.ascontiguousarray(a.transpose(perm))
    if not np.isfinite(a).all():
        raise _err(f"{path.name}: CSI field {name!r} contains NaN or Inf values")
    return a


def _vector(a: np.ndarray | None, S: int, path: Path, name: str) -> np.ndarray | None:
    if a is None:
        return None
    v = np.asarray(a).reshape(-1) if np.asarray(a).size == S else None
    if v is None:
        raise _err(f"{path.name}: field {name!r} must hold {S} values (one per sample), got shape {np.shape(a)}")
    if np.iscomplexobj(v):
        raise _err(f"{path.name}: field {name!r} must be real")
    return v


def _scalar(a: np.ndarray | None, path: Path, name: str) -> float | None:
    if a is None:
        return None
    v = np.asarray(a).reshape(-1)
    if v.size != 1 or np.iscomplexobj(v) or not np.isfinite(v).all() or float(v[0]) <= 0:
        raise _err(f"{path.name}: field {name!r} must be one positive number, got shape {np.shape(a)}")
    return float(v[0])


def _positions(a: np.ndarray | None, S: int, path: Path, name: str) -> np.ndarray | None:
    if a is None:
        return None
    p = np.asarray(a, dtype=np.float64)
    if p.ndim == 2 and p.shape[0] != S and p.shape[1] == S:  # (2|3, S) stored transposed
        p = p.T
    if p.ndim != 2 or p.shape[0] != S or p.shape[1] not in (2, 3):
        raise _err(f"{path.name}: field {name!r} must have shape ({S}, 2) or ({S}, 3), got {np.shape(a)}")
    if not np.isfinite(p).all():
        raise _err(f"{path.name}: field {name!r} contains NaN or Inf values")
    if p.shape[1] == 2:
        p = np.concatenate([p, np.zeros((S, 1))], 1)
    return p


def _load_one(path: Path, names: dict[str, str], layout: str) -> dict[str, Any]:
    raw = _read_file(path, list(names.values()))
    keys = raw.pop("__keys__")
    cname = names["csi"]
    if cname not in raw:
        raise _err(f"{path.name} has no CSI field {cname!r} (fields: {', '.join(map(str, keys)) or 'none'}); "
                   "set fields={'csi': ...}")
    csi = _csi_array(raw[cname], layout, path, cname)
    S = csi.shape[0]
    get = lambda k: raw.get(names[k])  # noqa: E731
    aoa = _vector(get("aoa_deg"), S, path, names["aoa_deg"])
    if aoa is not None and not np.isfinite(aoa).all():
        raise _err(f"{path.name}: field {names['aoa_deg']!r} contains NaN or Inf values")
    group = _vector(get("group"), S, path, names["group"])
    if group is not None and (not np.isfinite(group).all() or not np.all(group == np.round(group))):
        raise _err(f"{path.name}: field {names['group']!r} must hold integers")
    sc = get("subcarrier_index")
    if sc is not None:
        sc = np.asarray(sc).reshape(-1)
        if sc.size != csi.shape[2] or not np.all(np.isfinite(sc)) or not np.all(sc == np.round(sc)):
            raise _err(f"{path.name}: field {names['subcarrier_index']!r} must hold {csi.shape[2]} integers")
    ts = _vector(get("timestamp"), S, path, names["timestamp"])
    return dict(csi=csi, aoa_deg=aoa, group=group, subcarrier_index=sc, timestamp=ts,
                position=_positions(get("position"), S, path, names["position"]),
                carrier_frequency=_scalar(get("carrier_frequency"), path, names["carrier_frequency"]),
                subcarrier_spacing=_scalar(get("subcarrier_spacing"), path, names["subcarrier_spacing"]))


def _files(path: Path) -> list[Path]:
    if not path.exists():
        raise _err(f"measured-data path {str(path)!r} does not exist")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES)
        if not files:
            raise _err(f"folder {str(path)!r} holds no {', '.join(SUPPORTED_SUFFIXES)} files")
        return files
    return [path]


def _same(values: list, what: str):
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    first = vals[0]
    for v in vals[1:]:
        if isinstance(first, np.ndarray):
            if v.shape != first.shape or not np.array_equal(v, first):
                raise _err(f"the files disagree on {what}")
        elif not math.isclose(v, first, rel_tol=1e-12):
            raise _err(f"the files disagree on {what}: {first} vs {v}")
    if len(vals) != len(values):
        raise _err(f"{what} is stored in some files but not in others")
    return first


def load_measured_csi(path, *, fields: Mapping[str, str] | None = None, layout: str = "SMK",
                      bs_position=None, bs_orientation: float = 0.0,
                      dtype: torch.dtype = torch.complex64) -> MeasuredCSI:
    r"""Load measured CSI from a ``.npz``, ``.mat`` (v5 or v7.3), ``.h5`` file or a folder of them.

    Args:
        path: file or folder.
        fields: our names → the file's names (see :data:`DEFAULT_FIELDS`); unknown keys are
            an error.
        layout: axis order of the CSI array, a permutation of ``"SMK"``.
        bs_position: ``(2|3,)`` metres; with ``position`` in the file and no stored angle,
            the AoA is the local azimuth of the UE seen from this position.
        bs_orientation: array bearing ψ (radians, rotation about z; broadside = +x rotated by ψ).
        dtype: complex dtype of the CSI tensor.

    Returns:
        :class:`MeasuredCSI`.  Never unpickles, imports or executes anything from the file.

    Raises:
        MeasuredDataError: one-line message for any unusable input.
    """
    names = dict(DEFAULT_FIELDS)
    for k, v in dict(fields or {}).items():
        if k not in DEFAULT_FIELDS:
            raise _err(f"unknown measured-data field key {k!r}; expected one of: {', '.join(DEFAULT_FIELDS)}")
        if not isinstance(v, str) or not v:
            raise _err(f"the file field name for {k!r} must be a non-empty string, got {v!r}")
        names[k] = v
    layout = _check_layout(layout)
    if dtype not in (torch.complex64, torch.complex128):
        raise _err(f"dtype must be complex64 or complex128, got {dtype}")
    root = Path(path)
    files = _files(root)
    parts = [_load_one(f, names, layout) for f in files]
    M = {p["csi"].shape[1] for p in parts}
    K = {p["csi"].shape[2] for p in parts}
    if len(M) > 1 or len(K) > 1:
        raise _err(f"the files have different antenna/subcarrier counts: M in {sorted(M)}, K in {sorted(K)}")
    csi = np.concatenate([p["csi"] for p in parts], 0)
    S = csi.shape[0]
    if S == 0:
        raise _err(f"{root.name} holds no samples")
    sizes = [p["csi"].shape[0] for p in parts]

    def cat(key):
        have = [p[key] is not None for p in parts]
        if not any(have):
            return None
        if not all(have):
            raise _err(f"field {names[key]!r} is stored in some files but not in others")
        return np.concatenate([p[key] for p in parts], 0)

    meta: dict[str, Any] = {"source": str(root), "files": [f.name for f in files], "layout": layout,
                            "fields": names}
    group = cat("group")
    if group is None:
        if len(parts) > 1:
            group = np.repeat(np.arange(len(parts)), sizes)
            meta["group_names"] = [f.name for f in files]
        else:  # distinct positions, else distinct angles, else one group
            pos0 = parts[0]["position"]
            key = pos0 if pos0 is not None else (parts[0]["aoa_deg"][:, None] if parts[0]["aoa_deg"] is not None
                                                  else np.zeros((S, 1)))
            group = np.unique(key, axis=0, return_inverse=True)[1].reshape(-1)
    position = cat("position")
    aoa_deg = cat("aoa_deg")
    rd = torch.float64 if dtype == torch.complex128 else torch.float32
    if aoa_deg is not None:
        aoa = torch.deg2rad(torch.as_tensor(aoa_deg, dtype=torch.float64))
    elif position is not None and bs_position is not None:
        bs = np.asarray(bs_position, dtype=np.float64).reshape(-1)
        if bs.size not in (2, 3) or not np.isfinite(bs).all():
            raise _err(f"bs_position must be 2 or 3 finite numbers, got {bs_position!r}")
        bs = np.concatenate([bs, np.zeros(3 - bs.size)])
        aoa, _ = local_angles(torch.as_tensor(position), torch.as_tensor(bs), torch.tensor(float(bs_orientation),
                                                                                            dtype=torch.float64))
        meta["aoa_from"] = "position"
    else:
        aoa = torch.full((S,), math.nan, dtype=torch.float64)
    sc = _same([p["subcarrier_index"] for p in parts], "subcarrier_index")
    sc = torch.arange(csi.shape[2]) if sc is None else torch.as_tensor(sc).long()
    ts = cat("timestamp")
    return MeasuredCSI(
        csi=torch.as_tensor(csi).to(dtype), aoa=aoa.to(rd), group=torch.as_tensor(group).long(),
        subcarrier_index=sc, position=None if position is None else torch.as_tensor(position, dtype=rd),
        timestamp=None if ts is None else torch.as_tensor(ts, dtype=torch.float64),
        carrier_frequency=_same([p["carrier_frequency"] for p in parts], "the carrier frequency"),
        subcarrier_spacing=_same([p["subcarrier_spacing"] for p in parts], "the subcarrier spacing"),
        meta=meta)


def save_measured_csi(data: MeasuredCSI, path) -> Path:
    r"""Write ``data`` with the default field names, layout SMK: ``.npz`` (complex arrays),
    ``.mat`` (MATLAB v5 via SciPy) or ``.h5`` (HDF5 via h5py, complex as h5py's {r, i}
    compound).  Only the caller's ``path`` is written.  Returns the path."""
    p = Path(path)
    arrays: dict[str, np.ndarray] = {
        "csi": data.csi.detach().cpu().numpy(),
        "group": data.group.cpu().numpy(),
        "subcarrier_index": data.subcarrier_index.cpu().numpy(),
    }
    if data.has_labels:
        arrays["aoa_deg"] = np.rad2deg(data.aoa.detach().cpu().double().numpy())
    if data.position is not None:
        arrays["position"] = data.position.cpu().numpy()
    if data.timestamp is not None:
        arrays["timestamp"] = data.timestamp.cpu().numpy()
    if data.carrier_frequency is not None:
        arrays["fc"] = np.asarray(data.carrier_frequency)
    if data.subcarrier_spacing is not None:
        arrays["scs"] = np.asarray(data.subcarrier_spacing)
    suf = p.suffix.lower()
    if suf == ".npz":
        np.savez(p, **arrays)
    elif suf == ".mat":
        import scipy.io
        scipy.io.savemat(str(p), arrays, do_compression=True)
    elif suf in (".h5", ".hdf5"):
        import h5py
        with h5py.File(p, "w") as f:
            for k, v in arrays.items():
                f.create_dataset(k, data=v)
    else:
        raise _err(f"unsupported file type {p.suffix!r}; expected .npz, .mat or .h5")
    return p


def estimate_phase_error(data: MeasuredCSI, array: ArrayModel, *, per_subcarrier: bool = True,
                         reference: int = 0) -> TabulatedPhaseError:
    r"""Phase-error curves from labelled measurements (seed 002's chamber calibration, Fig. 1b).

    Per distinct label angle θ_g (sorted), ψ_{m,k}(θ_g) = arg Σ_{s: θ_s = θ_g} h_{m,k,s} h_{r,k,s}^*
    − arg(a_m(θ_g) a_r(θ_g)^*), with a the ``array`` model (the ideal array), unwrapped along θ.
    The path phase common to all antennas cancels in h_m h_r^*.

    Args:
        data: labelled :class:`MeasuredCSI` (at least two distinct angles).
        array: the assumed :class:`ArrayModel` (M elements).
        per_subcarrier: a table per stored subcarrier ``(M, K, G)``; otherwise the correlation
            is also summed over subcarriers ``(M, G)``.
        reference: reference element r.

    Returns:
        :class:`~isackit.impairments.TabulatedPhaseError` on the label angles (float64).
    """
    data._need_labels()
    if not isinstance(array, ArrayModel):
        raise TypeError(f"array must be an ArrayModel, got {type(array).__name__}")
    if array.num_elements != data.num_elements:
        raise _err(f"the array has {array.num_elements} elements but the data {data.num_elements}")
    labels, inv = torch.unique(data.aoa.double(), return_inverse=True)
    if labels.numel() < 2:
        raise _err("estimate_phase_error needs at least two distinct label angles")
    H = data.csi.to(torch.complex128)  # (S, M, K)
    corr = H * H[:, reference:reference + 1, :].conj()  # (S, M, K)
    acc = torch.zeros(labels.numel(), *corr.shape[1:], dtype=corr.dtype).index_add_(0, inv, corr)  # (G, M, K)
    if not per_subcarrier:
        acc = acc.sum(-1, keepdim=True)
    a = array.steering(labels)  # (M, G)
    ideal = (a * a[reference:reference + 1].conj()).T.unsqueeze(-1)  # (G, M, 1)
    psi = torch.angle(acc * ideal.conj())  # (G, M, K')
    psi = unwrap_phase(psi.permute(1, 2, 0), -1)  # (M, K', G)
    table = psi if per_subcarrier else psi[:, 0, :]
    return TabulatedPhaseError(labels, table, per_subcarrier=per_subcarrier)
