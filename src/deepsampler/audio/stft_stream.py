"""The STFT of :mod:`deepsampler.audio.stft`, one frame at a time, for streaming engines.

:class:`StreamingSTFT` frames a stream (input buffer, periodic Hann window, rfft) into exactly
the frames :class:`~deepsampler.audio.stft.STFT` gives for the whole signal; :class:`OverlapAdd`
is the matching iSTFT, hop by hop. Their state is explicit (arrays the caller keeps), so every
engine shares them: they work on whatever array type their window is, torch tensors for the
eager engine (on any device) and numpy arrays for the onnx engine, through the array API
(``array_api_compat``), so that the onnx engine never converts a hop between the two.

Timing: frame ``t`` covers padded samples ``[t*hop, t*hop + n_fft)``, where the padded stream
starts with the offline STFT's centring pad of ``n_fft // 2`` zeros. Issue 25's end handling
holds here too: :meth:`StreamingSTFT.end` pads to a whole number of hops before the right-hand
centring pad, and the overlap-add divides by ``max(envelope, ENVELOPE_FLOOR)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from array_api_compat import array_namespace
from array_api_compat import device as array_device

from deepsampler.audio.stft import ENVELOPE_FLOOR, end_pad

Array = Any  # a torch.Tensor or a numpy.ndarray, as the window is


def complex_dtype(xp: Any, real: Any) -> Any:
    """The complex dtype of ``real``'s precision in namespace ``xp``."""
    return xp.complex128 if real == xp.float64 else xp.complex64


def zeros_as(like: Array, shape: tuple[int, ...], dtype: Any = None) -> Array:
    """Zeros of ``shape`` of ``like``'s kind, on its device, in its dtype unless ``dtype``."""
    xp = array_namespace(like)
    return xp.zeros(shape, dtype=like.dtype if dtype is None else dtype, device=array_device(like))


class StreamingSTFT:
    """Analysis of a stream: samples in, complex STFT frames out.

    Args:
        n_fft: window and FFT size in samples.
        hop: hop size in samples.
        window: ``[n_fft]`` analysis window (the model's; periodic Hann): a torch tensor (on
            the device to work on) or a numpy array; buffers and frames are of its kind.
    """

    def __init__(self, n_fft: int, hop: int, window: Array) -> None:
        self.n_fft, self.hop, self.window = n_fft, hop, window
        self.xp = array_namespace(window)

    @property
    def lead(self) -> int:
        """Padded positions before the stream's first sample (the centring pad)."""
        return self.n_fft // 2

    def initial_buffer(self, batch: int, channels: int) -> Array:
        """The input buffer ``[b, c, n_fft // 2]`` before any sample: the centring pad."""
        return zeros_as(self.window, (batch, channels, self.lead))

    def frames(self, buffer: Array) -> tuple[Array, Array]:
        """Every whole frame in ``buffer [b, c, m]`` -> (spectra ``[b, c, n_fft/2 + 1, k]``
        complex, ``k`` possibly 0; the buffer without the samples no later frame needs)."""
        xp, n, hop = self.xp, self.n_fft, self.hop
        k = 0 if buffer.shape[-1] < n else (buffer.shape[-1] - n) // hop + 1
        if k == 0:
            shape = (*buffer.shape[:-1], n // 2 + 1, 0)
            return zeros_as(buffer, shape, complex_dtype(xp, buffer.dtype)), buffer
        if k == 1:  # a hop at a time, as a live stream comes: no stacking
            windows = buffer[..., None, :n]
        else:
            windows = xp.stack([buffer[..., i * hop : i * hop + n] for i in range(k)], axis=-2)
        spectra = xp.fft.rfft(windows * self.window, axis=-1)  # [b, c, k, F]
        return xp.matrix_transpose(spectra), buffer[..., k * hop :]

    def end(self, buffer: Array, samples_in: int) -> Array:
        """``buffer`` with the offline STFT's end padding of a ``samples_in``-long stream: zeros
        to a whole number of hops, then the centring pad (the last frame is centred at or after
        the last sample)."""
        pad = end_pad(samples_in, self.hop) + self.n_fft // 2
        return self.xp.concat([buffer, zeros_as(buffer, (*buffer.shape[:-1], pad))], axis=-1)


@dataclass
class OverlapAddState:
    """Overlap-add buffers, from the first padded position not yet emitted.

    Attributes:
        acc: ``[..., n_fft]`` sum of windowed frames.
        weight: ``[n_fft]`` sum of squared windows (the envelope the samples divide by).
        to_drop: padded positions still to discard at the output (the centring pad).
    """

    acc: Array
    weight: Array
    to_drop: int


# saved inside a stream's state with torch.save (weights_only loads)
torch.serialization.add_safe_globals([OverlapAddState])


class OverlapAdd:
    """Synthesis of a stream: one spectrum frame in, one hop of finished samples out.

    Args as :class:`StreamingSTFT` (the same window for a perfect reconstruction).
    """

    def __init__(self, n_fft: int, hop: int, window: Array) -> None:
        self.n_fft, self.hop, self.window = n_fft, hop, window
        self.window_sq = window**2
        self.xp = array_namespace(window)
        # an array, not a Python float: xp.maximum with a scalar is slow in torch, and clip
        # with a bound slow in numpy (a hop's worth of Python each)
        self.floor = self.xp.asarray(
            ENVELOPE_FLOOR, dtype=window.dtype, device=array_device(window)
        )

    def initial_state(self, lead_shape: tuple[int, ...]) -> OverlapAddState:
        """Empty buffers for frames of shape ``[*lead_shape, n_fft/2 + 1]``."""
        acc = zeros_as(self.window, (*lead_shape, self.n_fft))
        return OverlapAddState(acc, zeros_as(self.window, (self.n_fft,)), self.n_fft // 2)

    def add(self, spectrum: Array, state: OverlapAddState) -> Array:
        """Add the next frame ``[..., n_fft/2 + 1]`` (complex) and return the hop it finished,
        ``[..., hop']``: ``hop`` samples, fewer while the centring pad is dropped."""
        frame = self.xp.fft.irfft(spectrum, n=self.n_fft, axis=-1) * self.window
        state.acc = state.acc + frame
        state.weight = state.weight + self.window_sq
        return self.emit(state, self.hop)

    def finish(self, state: OverlapAddState) -> Array:
        """Everything still in the buffers, once the last frame has been added."""
        return self.emit(state, self.n_fft)

    def emit(self, state: OverlapAddState, count: int) -> Array:
        """The first ``count`` (now final) positions, normalised, less the centring pad."""
        xp = self.xp
        weight = state.weight[:count]
        # kept samples have an envelope >= 0.5 (see audio.stft); the floor only keeps the
        # positions past the end of the stream, which the engines drop, from dividing by ~0
        done = state.acc[..., :count] / xp.maximum(weight, self.floor)
        state.acc = xp.concat([state.acc[..., count:], xp.zeros_like(done)], axis=-1)
        state.weight = xp.concat([state.weight[count:], xp.zeros_like(weight)], axis=-1)
        drop = min(state.to_drop, count)
        state.to_drop -= drop
        return done[..., drop:]
