"""File-to-file streaming: a streaming engine behind the push/finish interface of
:class:`deepsampler.audio.ChunkedOverlapAdd`, so ``Separator`` runs the same read / resample /
write path whether it separates offline in chunks or streams hop by hop."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch

from deepsampler.streaming.live import Engine
from deepsampler.streaming.stats import HopStats


class StreamProcessor:
    """Feed ``[c, n]`` blocks through ``engine`` in pieces of ``block`` samples and return the
    separated ``[s, c, n]`` samples aligned with the input (the engine's fixed latency removed).

    With ``realtime``, each piece is processed no earlier than it would arrive from a live
    source (pacing), so the timing statistics show what a live run would see. ``on_output``,
    if given, also receives every aligned output block (e.g. live captions), as a live
    session's ``on_output`` does.
    """

    def __init__(
        self,
        engine: Engine,
        sample_rate: int,
        hop: int,
        block: int | None = None,
        realtime: bool = False,
        on_output: Callable[[np.ndarray], None] | None = None,
    ) -> None:
        self.engine = engine
        self.state = engine.init_state()
        self.block = block or hop
        self.sample_rate = sample_rate
        self.realtime = realtime
        self.on_output = on_output
        self.stats = HopStats(sample_rate, hop)
        self._to_skip = engine.latency_samples
        self._pending: np.ndarray | None = None
        self._fed = 0
        self._t0: float | None = None

    def _trim(self, y: np.ndarray) -> list[np.ndarray]:
        skip = min(self._to_skip, y.shape[-1])
        self._to_skip -= skip
        if y.shape[-1] <= skip:
            return []
        if self.on_output is not None:
            self.on_output(y[..., skip:])
        return [y[..., skip:]]

    def _run(self, x: np.ndarray) -> list[np.ndarray]:
        if self.realtime:
            if self._t0 is None:
                self._t0 = time.perf_counter()
            arrival = self._t0 + (self._fed + x.shape[-1]) / self.sample_rate
            delay = arrival - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        self._fed += x.shape[-1]
        start = time.perf_counter()
        y, self.state = self.engine.step(torch.from_numpy(np.ascontiguousarray(x)), self.state)
        self.stats.add(time.perf_counter() - start, x.shape[-1])
        return self._trim(y.cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y))

    def push(self, x: np.ndarray) -> list[np.ndarray]:
        self._pending = x if self._pending is None else np.concatenate([self._pending, x], -1)
        out = []
        while self._pending.shape[-1] >= self.block:
            out += self._run(self._pending[:, : self.block])
            self._pending = self._pending[:, self.block :]
        return out

    def finish(self) -> list[np.ndarray]:
        out = []
        if self._pending is not None and self._pending.shape[-1]:
            out += self._run(self._pending)
        tail, self.state = self.engine.flush(self.state)
        tail = tail.cpu().numpy() if isinstance(tail, torch.Tensor) else np.asarray(tail)
        out += self._trim(tail[0] if tail.ndim == 4 else tail)  # flush keeps the batch axis
        return out
