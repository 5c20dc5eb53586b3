"""The explicit state of a streaming separation: every buffer and cache, nothing hidden."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields

import torch


@dataclass
class StreamState:
    """Everything a :class:`StreamingSeparator` carries from one call to the next.

    Axis legend: ``b`` batch, ``c`` audio channels, ``s`` sources, ``d`` features, ``f`` freq
    bins, ``n`` bands, ``h`` heads, ``e`` head features, ``P`` frames waiting for look-ahead.

    Attributes:
        inbuf: ``[b, c, m]`` zero-padded input samples not yet consumed by a full STFT frame
            (starts with ``n_fft // 2`` zeros, the centring pad of the offline STFT).
        next_frame: index of the next STFT frame to analyse.
        next_output_frame: index of the next frame to synthesise (``next_frame - P``).
        conv: per causal time convolution (encoder levels, then decoder levels), its last
            ``kernel - 1`` input frames ``[b, d, f, kernel - 1]``.
        keys, values: per time-attention layer, the rotated keys / values of its last frames
            ``[b*n, h, M, e]``; ``M`` is bounded by the attention window (+ look-ahead in the
            first layer).
        key_start: per time-attention layer, the frame index of ``keys[l][:, :, 0]``.
        pending_x, pending_q: first time layer's input tokens ``[b*n, P, d]`` and rotated queries
            ``[b*n, h, P, e]`` of frames whose look-ahead has not arrived yet.
        pending_z: their latent ``[b, d, f_L, P]``; pending_skips: their encoder skips;
            pending_spec: their mixture STFT frames ``[b, c, f+1, P]`` (complex).
        ola, ola_weight: overlap-add numerator ``[b, s, c, n_fft]`` and window-square sum
            ``[n_fft]`` of the iSTFT, from padded position ``next_output_frame * hop`` on.
        outq: ``[b, s, c, q]`` finished samples (with the fixed delay's leading zeros) not yet
            returned.
        to_drop: padded positions still to discard at the output (the offline centring pad).
        samples_in, samples_out: samples received / returned so far (per channel).
    """

    inbuf: torch.Tensor
    next_frame: int
    next_output_frame: int
    conv: list[torch.Tensor]
    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    key_start: list[int]
    pending_x: torch.Tensor
    pending_q: torch.Tensor
    pending_z: torch.Tensor
    pending_skips: list[torch.Tensor]
    pending_spec: torch.Tensor
    ola: torch.Tensor
    ola_weight: torch.Tensor
    outq: torch.Tensor
    to_drop: int
    samples_in: int = 0
    samples_out: int = 0
    flushed: bool = field(default=False)

    def clone(self) -> StreamState:
        """A deep copy: continuing from it gives exactly what continuing from ``self`` would."""
        return copy.deepcopy(self)

    def nbytes(self) -> int:
        """Bytes held in tensors (to check that long streams stay bounded)."""
        total = 0
        for f in fields(self):
            value = getattr(self, f.name)
            items = value if isinstance(value, list) else [value]
            total += sum(t.numel() * t.element_size() for t in items if isinstance(t, torch.Tensor))
        return total
