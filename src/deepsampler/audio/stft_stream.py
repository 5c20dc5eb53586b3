"""The STFT of :mod:`deepsampler.audio.stft`, one frame at a time, for streaming engines.

:class:`StreamingSTFT` frames a stream (input buffer, periodic Hann window, rfft) into exactly
the frames :class:`~deepsampler.audio.stft.STFT` gives for the whole signal; :class:`OverlapAdd`
is the matching iSTFT, hop by hop. Their state is explicit (tensors the caller keeps), so every
engine (PyTorch or onnxruntime) shares them.

Timing: frame ``t`` covers padded samples ``[t*hop, t*hop + n_fft)``, where the padded stream
starts with the offline STFT's centring pad of ``n_fft // 2`` zeros. Issue 25's end handling
holds here too: :meth:`StreamingSTFT.end` pads to a whole number of hops before the right-hand
centring pad, and the overlap-add divides by ``max(envelope, ENVELOPE_FLOOR)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from deepsampler.audio.stft import ENVELOPE_FLOOR, end_pad


class StreamingSTFT:
    """Analysis of a stream: samples in, complex STFT frames out.

    Args:
        n_fft: window and FFT size in samples.
        hop: hop size in samples.
        window: ``[n_fft]`` analysis window (the model's; periodic Hann).
    """

    def __init__(self, n_fft: int, hop: int, window: torch.Tensor) -> None:
        self.n_fft, self.hop, self.window = n_fft, hop, window

    @property
    def lead(self) -> int:
        """Padded positions before the stream's first sample (the centring pad)."""
        return self.n_fft // 2

    def initial_buffer(self, batch: int, channels: int) -> torch.Tensor:
        """The input buffer ``[b, c, n_fft // 2]`` before any sample: the centring pad."""
        return self.window.new_zeros(batch, channels, self.lead)

    def frames(self, buffer: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Every whole frame in ``buffer [b, c, m]`` -> (spectra ``[b, c, n_fft/2 + 1, k]``
        complex, ``k`` possibly 0; the buffer without the samples no later frame needs)."""
        n, hop = self.n_fft, self.hop
        if buffer.shape[-1] < n:
            complex_dtype = torch.complex128 if buffer.dtype == torch.float64 else torch.complex64
            none = buffer.new_zeros(*buffer.shape[:-1], n // 2 + 1, 0, dtype=complex_dtype)
            return none, buffer
        windows = buffer.unfold(-1, n, hop) * self.window  # [b, c, k, n]
        k = windows.shape[-2]
        return torch.fft.rfft(windows).transpose(-1, -2), buffer[..., k * hop :]

    def end(self, buffer: torch.Tensor, samples_in: int) -> torch.Tensor:
        """``buffer`` with the offline STFT's end padding of a ``samples_in``-long stream: zeros
        to a whole number of hops, then the centring pad (the last frame is centred at or after
        the last sample)."""
        pad = end_pad(samples_in, self.hop) + self.n_fft // 2
        return torch.cat([buffer, buffer.new_zeros(*buffer.shape[:-1], pad)], dim=-1)


@dataclass
class OverlapAddState:
    """Overlap-add buffers, from the first padded position not yet emitted.

    Attributes:
        acc: ``[..., n_fft]`` sum of windowed frames.
        weight: ``[n_fft]`` sum of squared windows (the envelope the samples divide by).
        to_drop: padded positions still to discard at the output (the centring pad).
    """

    acc: torch.Tensor
    weight: torch.Tensor
    to_drop: int


# saved inside a stream's state with torch.save (weights_only loads)
torch.serialization.add_safe_globals([OverlapAddState])


class OverlapAdd:
    """Synthesis of a stream: one spectrum frame in, one hop of finished samples out.

    Args as :class:`StreamingSTFT` (the same window for a perfect reconstruction).
    """

    def __init__(self, n_fft: int, hop: int, window: torch.Tensor) -> None:
        self.n_fft, self.hop, self.window = n_fft, hop, window
        self.window_sq = window**2

    def initial_state(self, lead_shape: tuple[int, ...]) -> OverlapAddState:
        """Empty buffers for frames of shape ``[*lead_shape, n_fft/2 + 1]``."""
        acc = self.window.new_zeros(*lead_shape, self.n_fft)
        return OverlapAddState(acc, self.window.new_zeros(self.n_fft), self.n_fft // 2)

    def add(self, spectrum: torch.Tensor, state: OverlapAddState) -> torch.Tensor:
        """Add the next frame ``[..., n_fft/2 + 1]`` (complex) and return the hop it finished,
        ``[..., hop']``: ``hop`` samples, fewer while the centring pad is dropped."""
        frame = torch.fft.irfft(spectrum, n=self.n_fft) * self.window
        state.acc = state.acc + frame
        state.weight = state.weight + self.window_sq
        return self.emit(state, self.hop)

    def finish(self, state: OverlapAddState) -> torch.Tensor:
        """Everything still in the buffers, once the last frame has been added."""
        return self.emit(state, self.n_fft)

    def emit(self, state: OverlapAddState, count: int) -> torch.Tensor:
        """The first ``count`` (now final) positions, normalised, less the centring pad."""
        weight = state.weight[:count]
        # kept samples have an envelope >= 0.5 (see audio.stft); the floor only keeps the
        # positions past the end of the stream, which the engines drop, from dividing by ~0
        done = state.acc[..., :count] / weight.clamp_min(ENVELOPE_FLOOR)
        state.acc = torch.cat([state.acc[..., count:], torch.zeros_like(done)], dim=-1)
        state.weight = torch.cat([state.weight[count:], torch.zeros_like(weight)])
        drop = min(state.to_drop, count)
        state.to_drop -= drop
        return done[..., drop:]
