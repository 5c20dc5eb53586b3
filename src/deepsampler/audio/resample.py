"""Resampling with soxr, whole arrays or block by block (bounded memory)."""

from __future__ import annotations

import numpy as np
import soxr


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample ``[c, samples]`` float audio from ``from_rate`` Hz to ``to_rate`` Hz."""
    if from_rate == to_rate:
        return audio
    out = soxr.resample(np.ascontiguousarray(audio.T), from_rate, to_rate, quality="HQ")
    return np.ascontiguousarray(out.T, dtype=np.float32)


class StreamResampler:
    """Block-wise resampler: feed ``[c, n]`` blocks of any size, get ``[c, m]`` blocks back.

    The concatenated output equals a one-shot resample up to soxr's stream/whole rounding; the
    total output length is ``round(total_in * to_rate / from_rate)``.
    """

    def __init__(self, from_rate: int, to_rate: int, channels: int) -> None:
        self.identity = from_rate == to_rate
        self.channels = channels
        if not self.identity:
            self._stream = soxr.ResampleStream(
                from_rate, to_rate, channels, dtype="float32", quality="HQ"
            )

    def push(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        """Resample ``[c, n]``; pass ``last=True`` with the final block to drain the filter."""
        if self.identity:
            return block
        out = self._stream.resample_chunk(
            np.ascontiguousarray(block.T, dtype=np.float32), last=last
        )
        return np.ascontiguousarray(out.T)
