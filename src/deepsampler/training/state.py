"""Resumable training state: one file holding everything an exact resume needs.

``last.pt`` holds the model and EMA weights, the optimizer and scheduler, every random number
generator (Python, NumPy, torch CPU and CUDA), the data position (epoch, batches done in it),
the step, the best validation score so far and the training seconds spent. Written atomically
(temporary file beside it, then rename), so a run killed at any moment leaves the previous
complete state. Read with ``weights_only=True``: only tensors and plain containers.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepsampler.atomic import atomic_torch_save
from deepsampler.errors import CheckpointError

STATE_FORMAT = "deepsampler.train-state"
STATE_VERSION = 1


def capture_rng() -> dict[str, Any]:
    """Every generator's state as tensors and plain values (safe for ``weights_only``)."""
    np_state = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    rng: dict[str, Any] = {
        "python": [py_version, list(py_state), py_gauss],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return rng


def restore_rng(rng: dict[str, Any]) -> None:
    """Set every generator from :func:`capture_rng`'s output, wherever its tensors were loaded
    (a state read with ``map_location="cuda"`` holds them on the GPU; generators take CPU bytes)."""
    version, state, gauss = rng["python"]
    random.setstate((version, tuple(state), gauss))
    name, key, *rest = rng["numpy"]
    np.random.set_state((name, key.cpu().numpy().astype(np.uint32), *rest))
    torch.set_rng_state(rng["torch"].cpu())
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in rng["cuda"]])


def save_state(path: Path, state: dict[str, Any]) -> Path:
    """Write ``state`` (plus the format header) atomically to ``path``."""
    payload = {"format": STATE_FORMAT, "format_version": STATE_VERSION, **state}
    return atomic_torch_save(payload, path)


def load_state(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a state written by :func:`save_state`; anything else is a one-line CheckpointError."""
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise CheckpointError(f"{path}: cannot read the training state ({reason})") from None
    if not isinstance(payload, dict) or payload.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{path}: not a DeepSampler training state")
    if payload.get("format_version") != STATE_VERSION:
        raise CheckpointError(
            f"{path}: training state v{payload.get('format_version')}, this deepsampler reads "
            f"v{STATE_VERSION}"
        )
    return payload
