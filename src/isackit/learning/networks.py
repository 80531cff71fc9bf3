"""Shared network builders used by the learned models of several systems."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

__all__ = ["mlp"]


def mlp(sizes: Sequence[int], activation: Callable[[], nn.Module] = nn.ReLU,
        generator: torch.Generator | None = None) -> nn.Sequential:
    """Linear layers ``sizes[0] -> sizes[1] -> ... -> sizes[-1]`` with ``activation`` between them.

    No activation after the last layer.  Initialisation is PyTorch's ``nn.Linear`` default,
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases, drawn from ``generator`` when
    given (reproducible without touching the global RNG), else from the global RNG.

    Example:
        >>> from isackit.seeding import make_generator
        >>> net = mlp([3, 16, 16, 2], generator=make_generator(0, "doc"))
        >>> net(torch.zeros(5, 3)).shape
        torch.Size([5, 2])
    """
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or any(s < 1 for s in sizes):
        raise ValueError(f"mlp sizes must be at least two positive integers, got {list(sizes)}")
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        lin = nn.Linear(sizes[i], sizes[i + 1])
        if generator is not None:
            bound = 1.0 / math.sqrt(sizes[i])
            with torch.no_grad():
                lin.weight.uniform_(-bound, bound, generator=generator)
                lin.bias.uniform_(-bound, bound, generator=generator)
        layers.append(lin)
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)
