"""Offline separation by a causal separator that equals its streaming engine's output.

``Separator.separate`` cross-fades 10 s chunks, each separated from a cold start, so its output
near a seam differs from the streaming engine's (which never restarts) by up to ~1e-3 on
siren-rt; a detector fed one or the other would not give the same probabilities offline and
live. :class:`CausalChunks` cuts the stream instead into hop-aligned chunks that each start
with enough *past context* (the separator's receptive field, :func:`receptive_field`) and end
with enough margin that every output sample it keeps was computed from exactly the samples the
streaming engine used: the kept parts join with no cross-fade, and the result is the causal
model's one-pass output over the whole signal (to float rounding) with bounded memory.
"""

from __future__ import annotations

import numpy as np
import torch

from deepsampler.models.deepsampler import DeepSampler


def receptive_field(model: DeepSampler) -> tuple[int, int]:
    """``(past, future)`` frames the model's masks depend on (:meth:`DeepSampler.receptive_field`);
    a module-level name so that tests can shrink it."""
    return model.receptive_field()


def _round_up(value: int, step: int) -> int:
    return -(-value // step) * step


class CausalChunks:
    """Separate a ``[c, n]`` stream with a causal :class:`DeepSampler` in chunks of about
    ``chunk_seconds``, exactly as one pass would (a ``BlockProcessor``: ``push`` returns the
    finished ``[s, c, m]`` blocks, ``finish`` the rest; together as many samples as pushed).

    Chunk ``k`` keeps output samples ``[k*B, (k+1)*B)`` and is computed from the input
    ``[k*B - C, (k+1)*B + M)`` (clipped to the signal), where ``C`` covers the receptive field
    in the past plus one window (the chunk's first frames see its zero centring pad) and ``M``
    one window plus the look-ahead frames; all are whole hops, so the chunk's STFT frames are
    the whole signal's.
    """

    def __init__(
        self, model: DeepSampler, chunk_seconds: float = 10.0, device: torch.device | None = None
    ) -> None:
        cfg = model.config
        if not cfg.causal:
            raise ValueError("CausalChunks needs a causal model")
        self.model = model.eval()
        self.device = device or next(model.parameters()).device
        past, future = receptive_field(model)
        hop, n = cfg.hop, cfg.n_fft
        self.context = _round_up((past + 2) * hop + n, hop)
        self.margin = _round_up(n + (future + 2) * hop, hop)
        self.body = max(hop, _round_up(round(chunk_seconds * cfg.sample_rate), hop))
        self._buf = np.zeros((cfg.audio_channels, 0), np.float32)
        self._buf_start = 0  # global index of self._buf[:, 0]
        self._done = 0  # output samples emitted
        self._total = 0  # input samples pushed

    @torch.inference_mode()
    def _run(self, end: int) -> np.ndarray:
        """Separate from ``self._done`` to ``end`` (exclusive), with context and margin."""
        start = max(0, self._done - self.context)
        stop = min(self._total, end + self.margin)
        x = self._buf[:, start - self._buf_start : stop - self._buf_start]
        wave = torch.from_numpy(np.ascontiguousarray(x)).to(self.device)[None]
        y = self.model(wave)[0].float().cpu().numpy()
        out = y[..., self._done - start : end - start]
        self._done = end
        # the next chunk needs `context` samples before its start, nothing earlier
        drop = max(0, self._done - self.context) - self._buf_start
        if drop > 0:
            self._buf = self._buf[:, drop:]
            self._buf_start += drop
        return out

    def push(self, x: np.ndarray) -> list[np.ndarray]:
        """Add ``[c, m]`` samples; return the ``[s, c, k]`` blocks that are now final."""
        self._buf = np.concatenate([self._buf, np.asarray(x, np.float32)], axis=-1)
        self._total += x.shape[-1]
        out = []
        while self._total - self._done >= self.body + self.margin:
            out.append(self._run(self._done + self.body))
        return out

    def finish(self) -> list[np.ndarray]:
        """Separate what is left."""
        if self._done >= self._total:
            return []
        return [self._run(self._total)]
