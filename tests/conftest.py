"""Shared test configuration.

Tests run on CPU by default; ``--device cuda`` runs the device-parametrised tests on a GPU.
Torch uses at most 2 threads (the CI machine has 2 cores).
"""

import os

import pytest
import torch

torch.set_num_threads(min(2, torch.get_num_threads()))


def pytest_addoption(parser):
    parser.addoption("--device", action="store", default="cpu", help="torch device for device-aware tests")


@pytest.fixture
def device(request):
    name = request.config.getoption("--device")
    if name.startswith("cuda") and not torch.cuda.is_available():
        pytest.skip("CUDA not available")
    return torch.device(name)


@pytest.fixture
def gen():
    """A seeded CPU generator (tests must not use global RNG state)."""
    return torch.Generator().manual_seed(1234)


@pytest.fixture(autouse=True, scope="session")
def _private_model_cache(tmp_path_factory):
    """Trained models go to a per-session cache, never the user's ~/.cache (ISACKIT_MODEL_CACHE)."""
    old = os.environ.get("ISACKIT_MODEL_CACHE")
    os.environ["ISACKIT_MODEL_CACHE"] = str(tmp_path_factory.mktemp("model-cache"))
    yield
    if old is None:
        os.environ.pop("ISACKIT_MODEL_CACHE", None)
    else:
        os.environ["ISACKIT_MODEL_CACHE"] = old
