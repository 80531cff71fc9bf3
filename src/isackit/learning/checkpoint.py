"""Saving and loading trained models safely: weights + the config that made them.

A checkpoint is a directory with ``weights.safetensors`` (the state dict, tensors only) and
``config.json`` (plain JSON).  Loading never executes code from the files: safetensors holds
raw tensors, and the ``.pt`` fallback is read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from .._io import atomic_write_bytes

__all__ = ["save_checkpoint", "load_checkpoint"]


def save_checkpoint(directory: str | Path, state_dict: dict[str, torch.Tensor], config: dict[str, Any]) -> Path:
    """Write ``state_dict`` and the JSON-serialisable ``config`` to ``directory`` atomically.

    Complex tensors are stored as their real view (safetensors has no complex dtype) and the
    list of such keys is recorded in the config under ``"_complex_keys"``.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    tensors, complex_keys = {}, []
    for k, v in state_dict.items():
        if not isinstance(v, torch.Tensor):
            raise TypeError(f"state_dict[{k!r}] must be a tensor, got {type(v).__name__}")
        v = v.detach().cpu().contiguous().clone()  # safetensors refuses tensors that share storage
        if v.is_complex():
            complex_keys.append(k)
            v = torch.view_as_real(v).contiguous()
        tensors[k] = v
    tmp = d / "weights.safetensors.partial"
    save_file(tensors, str(tmp))
    os.replace(tmp, d / "weights.safetensors")
    meta = dict(config)
    meta["_complex_keys"] = complex_keys
    atomic_write_bytes(d / "config.json", json.dumps(meta, indent=2, sort_keys=True).encode())
    return d


def load_checkpoint(directory: str | Path, map_location: str | torch.device = "cpu"
                    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`: ``(state_dict, config)``.

    A directory holding ``weights.pt`` instead is read with ``torch.load(weights_only=True)``.
    """
    d = Path(directory)
    cfg_path = d / "config.json"
    if not cfg_path.is_file():
        raise ValueError(f"no checkpoint at {d}: config.json is missing")
    config = json.loads(cfg_path.read_text())
    complex_keys = set(config.pop("_complex_keys", []))
    if (d / "weights.safetensors").is_file():
        tensors = load_file(str(d / "weights.safetensors"), device=str(map_location))
    elif (d / "weights.pt").is_file():
        tensors = torch.load(d / "weights.pt", map_location=map_location, weights_only=True)
    else:
        raise ValueError(f"no checkpoint at {d}: weights.safetensors is missing")
    state = {k: (torch.view_as_complex(v) if k in complex_keys else v) for k, v in tensors.items()}
    return state, config
