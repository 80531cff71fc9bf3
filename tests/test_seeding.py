"""The one seeding helper: stable, named, independent child seeds."""

import hashlib
import json

import pytest
import torch

from isackit.experiments.units import unit_seed
from isackit.seeding import SEED_BITS, derive_seed, make_generator


def test_matches_independent_sha256_reference():
    ident = json.dumps([5, "train", {"b": 2, "a": 1.5}, 3], sort_keys=True)
    ref = int.from_bytes(hashlib.sha256(ident.encode()).digest()[:8], "big") & ((1 << 63) - 1)
    assert derive_seed(5, "train", {"a": 1.5, "b": 2}, 3) == ref


def test_names_separate_streams_and_range():
    seeds = {derive_seed(0, "stream", i) for i in range(1000)}
    assert len(seeds) == 1000
    assert all(0 <= s < 2**SEED_BITS for s in seeds)
    assert derive_seed(0, "a") != derive_seed(1, "a")
    assert derive_seed(0, "a", "b") != derive_seed(0, "ab")


def test_unit_seed_is_a_named_child_seed():
    point = {"snr_db": 10.0, "impairment": "none"}
    assert unit_seed(3, "doa", point, 2) == derive_seed(3, "doa", point, 2)


def test_generator_reproducible():
    a = torch.randn(4, generator=make_generator(1, "x"))
    b = torch.randn(4, generator=make_generator(1, "x"))
    c = torch.randn(4, generator=make_generator(1, "y"))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("bad", [1.5, "1", None, True])
def test_bad_root_seed(bad):
    with pytest.raises(TypeError):
        derive_seed(bad, "x")


def test_bad_name():
    with pytest.raises(TypeError, match="seed names"):
        derive_seed(0, object())
