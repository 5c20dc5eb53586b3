"""Levels and panning shared by the runtime dataset, the real-stem pool and the corpus synthesiser.

Audio is float (1.0 is full scale); levels are in dBFS, gains in dB.
"""

from __future__ import annotations

import numpy as np


def db_to_gain(db: float) -> float:
    """The linear gain of ``db`` decibels."""
    return float(10.0 ** (db / 20.0))


def rms_db(x: np.ndarray) -> float:
    """RMS level in dBFS over all channels (float audio: 1.0 is full scale); silence is -120."""
    flat = np.ravel(x).astype(np.float32, copy=False)
    # einsum, not np.dot: a BLAS call would start OpenBLAS threads that compete with the other
    # render workers for the cores
    rms = (
        float(np.sqrt(np.einsum("i,i->", flat, flat, dtype=np.float64) / flat.size))
        if flat.size
        else 0.0
    )
    return 20.0 * np.log10(rms) if rms > 1e-6 else -120.0


def pan(mono: np.ndarray, channels: int, position: float) -> np.ndarray:
    """Constant-power pan of ``mono [n]`` to ``[channels, n]``; ``position`` in [-1, 1]."""
    if channels == 1:
        return mono[None].astype(np.float32)
    theta = (np.clip(position, -1, 1) + 1) * np.pi / 4
    gains = np.array([np.cos(theta), np.sin(theta)]) * np.sqrt(2)
    return (gains[:, None] * mono[None]).astype(np.float32)
