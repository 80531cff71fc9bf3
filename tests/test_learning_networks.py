"""Shared networks."""

import pytest
import torch

from isackit.learning.networks import mlp
from isackit.seeding import make_generator


def test_mlp_structure_and_generator_init():
    net = mlp([3, 8, 8, 2], generator=make_generator(0, "mlp"))
    kinds = [type(m).__name__ for m in net]
    assert kinds == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    again = mlp([3, 8, 8, 2], generator=make_generator(0, "mlp"))
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), again.state_dict().values(), strict=True))
    bound = 1 / 3**0.5
    assert net[0].weight.abs().max() <= bound and net[0].weight.abs().max() > 0.5 * bound
    assert net(torch.zeros(4, 7, 3)).shape == (4, 7, 2)


def test_mlp_global_rng_matches_nn_linear_default():
    torch.manual_seed(5)
    net = mlp([4, 6, 1])
    torch.manual_seed(5)
    ref = torch.nn.Linear(4, 6)
    assert torch.equal(net[0].weight, ref.weight)


def test_mlp_bad_sizes():
    with pytest.raises(ValueError, match="at least two positive"):
        mlp([3])
    with pytest.raises(ValueError, match="at least two positive"):
        mlp([3, 0, 1])
