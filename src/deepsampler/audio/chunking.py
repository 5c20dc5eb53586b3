"""Chunked processing with cross-faded overlap-add, for streams of any length.

Long files never pass through a model in one piece: :class:`ChunkedOverlapAdd` cuts the incoming
stream into chunks of ``chunk`` samples that overlap by ``overlap``, applies a function to each,
and cross-fades the results. Memory is bounded by one chunk (plus the block being pushed),
whatever the stream's length, and the weights are normalised so that an identity function gives
back its input exactly.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

ChunkFn = Callable[[np.ndarray], np.ndarray]


def crossfade_window(chunk: int, overlap: int) -> np.ndarray:
    """Weights ``[chunk]``: linear ramps of ``overlap`` samples at both ends, 1 between.

    Every weight is strictly positive, so the normalised sum is defined everywhere.
    """
    w = np.ones(chunk, dtype=np.float64)
    if overlap > 0:
        ramp = np.arange(1, overlap + 1, dtype=np.float64) / (overlap + 1)
        w[:overlap] = ramp
        w[chunk - overlap :] = ramp[::-1]
    return w


class ChunkedOverlapAdd:
    """Apply ``fn`` to overlapping chunks of a ``[c, samples]`` stream; emit finished samples.

    ``fn`` maps ``[c, n]`` to ``[..., n]`` (same length; e.g. ``[s, c, n]`` for a separator) and
    must accept any ``n <= chunk`` (the last chunk is shorter). Push blocks of any size with
    :meth:`push`, then call :meth:`finish`; together they return exactly as many samples as were
    pushed, in order.

    Args:
        fn: the per-chunk function.
        chunk: chunk length in samples.
        overlap: overlap between consecutive chunks in samples, ``0 <= overlap < chunk``.
    """

    def __init__(self, fn: ChunkFn, chunk: int, overlap: int) -> None:
        if chunk < 1 or not 0 <= overlap < chunk:
            raise ValueError(f"need chunk >= 1 and 0 <= overlap < chunk, got {chunk}, {overlap}")
        self.fn = fn
        self.chunk = chunk
        self.overlap = overlap
        self.stride = chunk - overlap
        self.window = crossfade_window(chunk, overlap)
        self._inbuf: np.ndarray | None = None  # [c, m]: samples from the current chunk start on
        self._acc: np.ndarray | None = None  # [..., chunk] weighted sum of outputs
        self._wsum = np.zeros(chunk, dtype=np.float64)
        self._processed_any = False
        self.samples_in = 0
        self.samples_out = 0

    def _accumulate(self, x: np.ndarray, weights: np.ndarray) -> None:
        y = np.asarray(self.fn(x))
        n = x.shape[-1]
        if y.shape[-1] != n:
            raise ValueError(f"chunk function changed the length: {n} -> {y.shape[-1]}")
        if self._acc is None:
            self._acc = np.zeros((*y.shape[:-1], self.chunk), dtype=np.float64)
        self._acc[..., :n] += weights[:n] * y
        self._wsum[:n] += weights[:n]
        self._processed_any = True

    def _emit(self, n: int) -> np.ndarray:
        out = (self._acc[..., :n] / self._wsum[:n]).astype(np.float32)
        self._acc = np.concatenate(
            [self._acc[..., n:], np.zeros((*self._acc.shape[:-1], n))], axis=-1
        )
        self._wsum = np.concatenate([self._wsum[n:], np.zeros(n)])
        self.samples_out += n
        return out

    def push(self, block: np.ndarray) -> list[np.ndarray]:
        """Add ``[c, n]`` samples; return the list of output blocks that are now final."""
        block = np.asarray(block, dtype=np.float32)
        self.samples_in += block.shape[-1]
        self._inbuf = block if self._inbuf is None else np.concatenate([self._inbuf, block], -1)
        outputs = []
        while self._inbuf.shape[-1] >= self.chunk:
            self._accumulate(self._inbuf[:, : self.chunk], self.window)
            outputs.append(self._emit(self.stride))
            self._inbuf = self._inbuf[:, self.stride :]
        return outputs

    def finish(self) -> list[np.ndarray]:
        """Process what is left and return the final output blocks."""
        if self._inbuf is None or self._inbuf.shape[-1] == 0:
            return []
        n = self._inbuf.shape[-1]
        covered = self.overlap if self._processed_any else 0
        if n > covered:
            # the last chunk has no successor: no fade-out at its end
            weights = self.window.copy()
            weights[self.chunk - self.overlap :] = 1.0
            self._accumulate(self._inbuf, weights)
        self._inbuf = self._inbuf[:, n:]
        return [self._emit(n)]
