"""Foundation helpers: the dtype rule and tolerances (``isackit._dtypes``), unit conversions
(``isackit.conversions``), noise at an SNR, impairment names, the ULA spacing of a geometry."""

from __future__ import annotations

import math

import pytest
import torch

from isackit._dtypes import (
    check_supported_dtype,
    common_complex_dtype,
    complex_dtype,
    complex_dtype_of,
    eps,
    is_numerically_singular,
    is_rank_deficient,
    rank_threshold,
    real_dtype,
    real_dtype_of,
    singular_threshold,
    tolerance,
)
from isackit.conversions import amplitude_to_db, db_to_amplitude, db_to_linear, deg_to_rad, linear_to_db, rad_to_deg
from isackit.geometry import ula, ula_spacing, ura
from isackit.impairments import IDEAL, check_impairment_name, make_chain
from isackit.signals import add_noise_at_snr, noise_variance_from_snr


def test_dtype_pairs():
    for r, c in ((torch.float32, torch.complex64), (torch.float64, torch.complex128)):
        assert complex_dtype(r) == c and complex_dtype(c) == c and real_dtype(c) == r and real_dtype(r) == r
        assert real_dtype_of(torch.zeros(1, dtype=c)) == r and complex_dtype_of(torch.zeros(1, dtype=r)) == c


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.int64])
def test_unsupported_dtypes_are_one_line_errors(dtype):
    with pytest.raises(TypeError) as info:
        check_supported_dtype(torch.zeros(2, dtype=dtype), "x")
    assert "\n" not in str(info.value) and "x must be" in str(info.value)
    with pytest.raises(TypeError, match="complex"):
        check_supported_dtype(torch.zeros(2), "x", complex_only=True)


def test_mixed_complex_dtypes_are_an_error():
    a, b = torch.zeros(2, dtype=torch.complex64), torch.zeros(2, dtype=torch.complex128)
    assert common_complex_dtype(a, a) == torch.complex64
    with pytest.raises(TypeError, match="R: complex64, A: complex128"):
        common_complex_dtype(a, b, names=("R", "A"))


def test_tolerances_and_singularity_rules():
    assert eps(torch.complex64) == torch.finfo(torch.float32).eps
    assert tolerance(torch.float64, condition=10.0, factor=2.0) == 20 * eps(torch.float64)
    assert singular_threshold(torch.float32) == 10 * eps(torch.float32)
    assert rank_threshold(torch.float64, 8) == 80 * eps(torch.float64)
    e = eps(torch.float64)
    w = torch.tensor([[5 * e, 0.5, 1.0], [20 * e, 0.5, 1.0], [-1.0, -0.5, 0.0]], dtype=torch.float64)
    assert is_numerically_singular(w).tolist() == [True, False, True]
    # rank 2 of 3: the second-largest eigenvalue is what matters
    assert is_rank_deficient(w, 2).tolist() == [False, False, True]
    assert is_rank_deficient(torch.tensor([0.0, 1e-17, 1.0], dtype=torch.float64), 2).item()


def test_db_and_degree_conversions():
    assert db_to_linear(20.0) == pytest.approx(100.0) and linear_to_db(1000.0) == pytest.approx(30.0)
    assert db_to_amplitude(20.0) == pytest.approx(10.0) and amplitude_to_db(-0.1) == pytest.approx(-20.0)
    assert linear_to_db(0.0) == -math.inf
    with pytest.raises(ValueError, match=">= 0"):
        linear_to_db(-1.0)
    x = torch.linspace(-30, 30, 7, dtype=torch.float64)
    torch.testing.assert_close(linear_to_db(db_to_linear(x)), x)
    torch.testing.assert_close(amplitude_to_db(db_to_amplitude(x) * torch.exp(1j * x)), x)  # complex: |a|
    assert db_to_linear(torch.tensor([10])).dtype == torch.get_default_dtype()  # integer in, float out
    assert deg_to_rad(180.0) == pytest.approx(math.pi) and rad_to_deg(torch.tensor(math.pi)).item() == pytest.approx(180.0)
    with pytest.raises(TypeError):
        db_to_linear(torch.tensor([1j]))


def test_noise_at_snr():
    assert noise_variance_from_snr(20.0) == pytest.approx(0.01)
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(2, 20000, dtype=torch.complex128)
    y = add_noise_at_snr(x, torch.tensor([0.0, 10.0], dtype=torch.float64), g)
    power = y.abs().pow(2).mean(-1)
    # the mean of 20 000 |CN(0, σ²)|² draws has a relative std of 1/sqrt(20 000) ≈ 0.7 %
    torch.testing.assert_close(power, torch.tensor([1.0, 0.1], dtype=torch.float64), rtol=0.03, atol=0)
    with pytest.raises(TypeError):
        add_noise_at_snr(torch.zeros(3), 0.0, g)


def test_impairment_names_are_the_preset_registry():
    assert check_impairment_name(IDEAL) == "ideal" and make_chain([IDEAL]) == []
    assert check_impairment_name("seed004-coupling") == "seed004-coupling"
    with pytest.raises(ValueError, match="unknown impairment 'gain_phase'") as info:
        check_impairment_name("gain_phase")
    assert "seed004-coupling" in str(info.value) and "\n" not in str(info.value)


def test_ula_spacing():
    assert ula_spacing(ula(6, spacing=0.3, wavelength=0.01)) == pytest.approx(0.3, rel=1e-12)
    assert ula_spacing(ula(5, centered=True)) == 0.5
    with pytest.raises(ValueError, match="uniform linear array"):
        ula_spacing(ura(2, 3))
    with pytest.raises(ValueError, match="at least 2"):
        ula_spacing(ula(1))
