"""Input checks shared by the StemProver signal modules (one-line ValueErrors)."""

from __future__ import annotations

import numpy as np


def check_wave(name: str, wave: np.ndarray) -> np.ndarray:
    """A finite, non-empty float ``[samples]`` or ``[channels, samples]`` array, else ValueError."""
    wave = np.asarray(wave)
    if wave.ndim not in (1, 2):
        raise ValueError(f"{name} must be [samples] or [channels, samples], got {wave.shape}")
    if wave.size == 0:
        raise ValueError(f"{name} is empty (shape {wave.shape})")
    if not np.issubdtype(wave.dtype, np.floating):
        raise ValueError(f"{name} must be a float array, got dtype {wave.dtype}")
    if not np.all(np.isfinite(wave)):
        raise ValueError(f"{name} contains NaN or infinite samples")
    return wave
