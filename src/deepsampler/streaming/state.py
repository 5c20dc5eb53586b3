"""The explicit state of a streaming separation: every buffer and cache, nothing hidden."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import torch

from deepsampler.audio.stft_stream import Array, OverlapAddState


@dataclass
class StreamState:
    """Everything a streaming engine carries from one call to the next.

    Arrays are the engine's kind: torch tensors for the eager engine, numpy arrays for the onnx
    engine (whose ``frame`` is the graph's flat state). Axis legend: ``b`` batch, ``c`` audio
    channels, ``s`` sources, ``F`` ``n_fft // 2 + 1`` bins, ``la`` look-ahead frames. Only
    ``inbuf`` and ``outq`` change size (by less than a frame and a call's samples); the model's
    state is fixed-size.

    Attributes:
        inbuf: ``[b, c, m]`` zero-padded input samples not yet consumed by a whole STFT frame
            (starts with ``n_fft // 2`` zeros, the centring pad of the offline STFT).
        frame: the model's frame-step state (conv states, K/V rings, look-ahead queue).
        spectra: ``[b, c, F, la]`` complex mixture spectra of the frames awaiting their masks
            (frame ``p`` in slot ``p mod la``; their masks come ``la`` frames later).
        ola: the iSTFT overlap-add buffers.
        outq: ``[b, s, c, q]`` finished samples (with the fixed delay's leading zeros) not yet
            returned.
        next_frame: index of the next STFT frame to analyse.
        samples_in, samples_out: samples received / returned so far (per channel).
    """

    inbuf: Array
    frame: Any  # FrameState (eager engine) or the onnx engine's OnnxFrameState
    spectra: Array
    ola: OverlapAddState
    outq: Array
    next_frame: int = 0
    samples_in: int = 0
    samples_out: int = 0
    flushed: bool = field(default=False)

    @property
    def keys(self) -> list[torch.Tensor]:
        """Per time-attention layer, its ring of rotated keys ``[b*n, h, M_l, e]``."""
        return self.frame.keys

    def clone(self) -> StreamState:
        """A deep copy: continuing from it gives exactly what continuing from ``self`` would."""
        return copy.deepcopy(self)

    def nbytes(self) -> int:
        """Bytes held in tensors (to check that long streams stay bounded)."""
        total = self.frame.nbytes()
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, OverlapAddState):
                total += value.acc.nbytes + value.weight.nbytes
            elif isinstance(value, torch.Tensor | np.ndarray):
                total += value.nbytes
        return total
