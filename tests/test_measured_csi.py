"""Measured-CSI loader (every supported format, layouts, splits, bad files) and phase-error curves."""

import math
import pickle

import h5py
import numpy as np
import pytest
import scipy.io
import torch

from isackit.geometry import ula
from isackit.impairments import (
    ArrayModel,
    MutualCoupling,
    SmoothPhaseError,
    phase_error_curves,
    tabulate_phase_error,
)
from isackit.signals import (
    MeasuredCSI,
    MeasuredDataError,
    estimate_phase_error,
    load_measured_csi,
    save_measured_csi,
)


def _arrays(S=12, M=4, K=6, seed=0):
    rng = np.random.default_rng(seed)
    csi = rng.standard_normal((S, M, K)) + 1j * rng.standard_normal((S, M, K))
    aoa = np.repeat(np.linspace(-50.0, 50.0, S // 3), 3)
    return csi, aoa


def _write(path, fmt, arrays):
    if fmt == "npz":
        np.savez(path, **arrays)
    elif fmt == "mat5":
        scipy.io.savemat(path, arrays)
    elif fmt == "h5":
        with h5py.File(path, "w") as f:
            for k, v in arrays.items():
                f.create_dataset(k, data=v)
    elif fmt == "mat73":  # MATLAB v7.3: HDF5 with a 512-byte header, column-major, {real, imag}
        with h5py.File(path, "w", userblock_size=512) as f:
            for k, v in arrays.items():
                v = np.asarray(v)
                v = v.T if v.ndim > 1 else v  # MATLAB writes the reversed axis order
                if np.iscomplexobj(v):
                    comp = np.empty(v.shape, dtype=[("real", "<f8"), ("imag", "<f8")])
                    comp["real"], comp["imag"] = v.real, v.imag
                    v = comp
                f.create_dataset(k, data=v)
        with open(path, "r+b") as fh:
            fh.write(b"MATLAB 7.3 MAT-file, written by a test".ljust(116, b" "))


SUFFIX = {"npz": ".npz", "mat5": ".mat", "h5": ".h5", "mat73": ".mat"}


@pytest.mark.parametrize("fmt", ["npz", "mat5", "h5", "mat73"])
def test_round_trip_every_format(tmp_path, fmt):
    csi, aoa = _arrays()
    path = tmp_path / f"data{SUFFIX[fmt]}"
    _write(path, fmt, {"CFR": csi, "angle": aoa, "fc": 4.85e9})
    data = load_measured_csi(path, fields={"csi": "CFR", "aoa_deg": "angle"}, dtype=torch.complex128)
    assert data.csi.shape == (12, 4, 6)
    assert torch.equal(data.csi, torch.as_tensor(csi))
    assert torch.allclose(data.aoa.double(), torch.deg2rad(torch.as_tensor(aoa)))
    assert data.carrier_frequency == 4.85e9
    assert data.group.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]  # distinct angles


@pytest.mark.parametrize("layout", ["SMK", "SKM", "MKS"])
def test_layouts_and_real_imag_split(tmp_path, layout):
    csi, aoa = _arrays()
    stored = np.transpose(csi, ["SMK".index(c) for c in layout])
    np.savez(tmp_path / "a.npz", csi=np.stack([stored.real, stored.imag], -1), aoa_deg=aoa)
    data = load_measured_csi(tmp_path / "a.npz", layout=layout, dtype=torch.complex128)
    assert torch.equal(data.csi, torch.as_tensor(csi))


def test_folder_concatenates_and_names_groups(tmp_path):
    csi, aoa = _arrays()
    np.savez(tmp_path / "b.npz", csi=csi[6:], aoa_deg=aoa[6:])
    scipy.io.savemat(tmp_path / "a.mat", {"csi": csi[:6], "aoa_deg": aoa[:6]})
    data = load_measured_csi(tmp_path, dtype=torch.complex128)
    assert torch.equal(data.csi, torch.as_tensor(csi))
    assert data.group.tolist() == [0] * 6 + [1] * 6
    assert data.meta["group_names"] == ["a.mat", "b.npz"]


def test_saved_files_load_back(tmp_path):
    csi, aoa = _arrays()
    orig = load_measured_csi(_npz(tmp_path, csi=csi, aoa_deg=aoa), dtype=torch.complex128)
    for suffix in (".npz", ".mat", ".h5"):
        back = load_measured_csi(save_measured_csi(orig, tmp_path / f"copy{suffix}"), dtype=torch.complex128)
        assert torch.equal(back.csi, orig.csi) and torch.equal(back.group, orig.group)
        assert torch.allclose(back.aoa, orig.aoa)


def _npz(tmp_path, name="x.npz", **arrays):
    p = tmp_path / name
    np.savez(p, **arrays)
    return p


def test_aoa_from_positions(tmp_path):
    csi, _ = _arrays(S=4)
    bs = np.array([-10.3, 9.5])
    ue = np.array([[0.0, 9.5], [-10.3, 20.0], [0.0, 0.0], [-20.0, 9.5]])
    data = load_measured_csi(_npz(tmp_path, csi=csi, position=ue), bs_position=bs, bs_orientation=0.0)
    expected = np.arctan2(ue[:, 1] - bs[1], ue[:, 0] - bs[0])
    assert np.allclose(data.aoa.numpy(), expected, atol=1e-6)
    assert data.meta["aoa_from"] == "position"
    rotated = load_measured_csi(_npz(tmp_path, csi=csi, position=ue), bs_position=bs, bs_orientation=math.pi / 2)
    assert np.allclose(rotated.aoa.numpy()[1], 0.0, atol=1e-6)
    unlabelled = load_measured_csi(_npz(tmp_path, csi=csi))
    assert not unlabelled.has_labels


def test_splits_follow_the_seed_and_never_split_a_position():
    S_per = 9
    angles = torch.linspace(-1.0, 1.0, 6)
    aoa = angles.repeat_interleave(S_per)
    data = MeasuredCSI(csi=torch.ones(aoa.numel(), 4, 2, dtype=torch.complex64), aoa=aoa,
                       group=torch.arange(6).repeat_interleave(S_per), subcarrier_index=torch.arange(2))
    train, val = data.split_per_label(6, 2)
    assert train.num_samples == 36 and val.num_samples == 12
    assert torch.equal(torch.unique(train.aoa), angles) and torch.equal(torch.unique(val.aoa), angles)
    # field rule: positions sorted by AoA, one of every 4 (offset 0) to validation
    perm = torch.randperm(6, generator=torch.Generator().manual_seed(0))
    shuffled = data.subset(torch.cat([torch.arange(p * S_per, (p + 1) * S_per) for p in perm]))
    tr, va = shuffled.split_every(4)
    assert set(va.group.tolist()) == {0, 4}  # ranks 0 and 4 of the six positions sorted by AoA
    assert not set(va.group.tolist()) & set(tr.group.tolist())
    tr2, va2 = shuffled.split_every(4)
    assert torch.equal(va2.group, va.group)  # deterministic
    kept = data.select_subcarriers(1)
    assert kept.num_subcarriers == 1 and kept.subcarrier_index.tolist() == [0]
    wide = MeasuredCSI(csi=torch.ones(2, 4, 3264, dtype=torch.complex64), aoa=torch.zeros(2),
                       group=torch.zeros(2, dtype=torch.long), subcarrier_index=torch.arange(3264))
    assert wide.select_subcarriers(16).subcarrier_index.tolist() == [204 * j for j in range(16)]
    assert data.filter(-0.5, 0.5).num_samples == 2 * S_per


def _bad_files(tmp_path):
    csi, aoa = _arrays()
    out = {}
    out["missing"] = tmp_path / "nope.npz"
    out["suffix"] = tmp_path / "x.txt"
    out["suffix"].write_text("csi")
    out["no_field"] = _npz(tmp_path, "nofield.npz", other=csi)
    out["shape"] = _npz(tmp_path, "shape.npz", csi=csi[0])
    bad = csi.copy()
    bad[0, 0, 0] = np.nan
    out["nonfinite"] = _npz(tmp_path, "nan.npz", csi=bad)
    out["labels"] = _npz(tmp_path, "labels.npz", csi=csi, aoa_deg=aoa[:3])
    out["corrupt"] = tmp_path / "corrupt.npz"
    out["corrupt"].write_bytes(b"PK\x03\x04 not really a zip")
    out["mat_corrupt"] = tmp_path / "corrupt.mat"
    out["mat_corrupt"].write_bytes(b"\x00" * 200)
    obj = np.empty(2, dtype=object)
    obj[0], obj[1] = {"a": 1}, "x"
    np.savez(tmp_path / "pickled.npz", csi=obj)
    out["pickle"] = tmp_path / "pickled.npz"
    out["empty_dir"] = tmp_path / "empty"
    out["empty_dir"].mkdir()
    return out


def test_bad_files_are_one_line_errors(tmp_path):
    for kind, path in _bad_files(tmp_path).items():
        with pytest.raises(MeasuredDataError) as err:
            load_measured_csi(path)
        msg = str(err.value)
        assert msg and "\n" not in msg, (kind, msg)
    with pytest.raises(MeasuredDataError, match="layout"):
        load_measured_csi(_npz(tmp_path, csi=_arrays()[0]), layout="SMX")
    with pytest.raises(MeasuredDataError, match="unknown measured-data field"):
        load_measured_csi(_npz(tmp_path, csi=_arrays()[0]), fields={"angles": "a"})


def test_loader_never_unpickles(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: calls.append(a) or None)
    monkeypatch.setattr(pickle, "load", lambda *a, **k: calls.append(a) or None)
    with pytest.raises(MeasuredDataError, match="pickled"):
        load_measured_csi(_bad_files(tmp_path)["pickle"])
    assert calls == []


# ---------------------------------------------------------------------------------------
# phase-error curves
# ---------------------------------------------------------------------------------------
def test_phase_error_curves_of_smooth_model_and_coupling():
    th = torch.deg2rad(torch.linspace(-60.0, 60.0, 121, dtype=torch.float64))
    imp = SmoothPhaseError.sample(4, 16, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    sc = torch.arange(16)
    psi = phase_error_curves(ArrayModel(ula(4), [imp]), ArrayModel(ula(4)), th, sc)
    assert psi.shape == (16, 4, 121)
    assert (psi - imp.phase(th, sc)).abs().max() < 1e-12
    assert psi[:, 0].abs().max() == 0  # reference element
    # rho scales psi linearly, rho = 0 is the ideal array exactly
    imp_half = SmoothPhaseError.sample(4, 16, generator=torch.Generator().manual_seed(3), dtype=torch.float64,
                                       degree=0.5)
    half = phase_error_curves(ArrayModel(ula(4), [imp_half]), ArrayModel(ula(4)), th, sc)
    assert (half - 0.5 * psi).abs().max() < 1e-12
    imp0 = SmoothPhaseError.sample(4, 16, generator=torch.Generator().manual_seed(3), dtype=torch.float64, degree=0.0)
    A0 = ArrayModel(ula(4), [imp0]).steering(th, subcarriers=sc)
    assert torch.equal(A0, ArrayModel(ula(4)).steering(th, subcarriers=sc))
    # mutual coupling: arg((C a)_m (C a)_0^*) − π m sin θ
    c = torch.tensor([1.0, 0.3 * np.exp(0.4j), 0.1 * np.exp(-1.0j)], dtype=torch.complex128)
    coup = MutualCoupling(c)
    a = ula(4).steering(th)
    Ca = coup.apply(a, th, None)
    expected = torch.angle(Ca * Ca[:1].conj()) - math.pi * torch.arange(4, dtype=torch.float64)[:, None] * torch.sin(th)
    expected = torch.remainder(expected + math.pi, 2 * math.pi) - math.pi
    got = phase_error_curves(ArrayModel(ula(4), [coup]), ArrayModel(ula(4)), th)
    assert torch.allclose(got, expected, atol=1e-12)
    tab = tabulate_phase_error(ArrayModel(ula(4), [imp]), ArrayModel(ula(4)), th, sc)
    assert (tab.phase(th, sc) - psi).abs().max() < 1e-9


def test_estimate_phase_error_recovers_the_curves():
    from isackit.systems.direction_finding import ScenarioConfig, chamber_surrogate, make_device

    sc = ScenarioConfig()
    device = make_device(sc, 0, 1, dtype=torch.float64)
    data = chamber_surrogate(device, sc, 50, 20.0, torch.Generator().manual_seed(0))
    assert data.num_samples == 121 * 50
    est = estimate_phase_error(data, device.assumed_array)
    th = est.angle_grid
    truth = device.true_array.impairments[0].phase(th, torch.arange(16)).transpose(0, 1)  # (M, K, G)
    err = torch.rad2deg(torch.remainder(est.table - truth + math.pi, 2 * math.pi) - math.pi)
    rms = err.pow(2).mean(-1).sqrt()  # per element and subcarrier
    assert float(rms.max()) < 1.0
