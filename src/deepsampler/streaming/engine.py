"""What every streaming engine does around the model's frame step: samples in, frames through
the step, separated samples out with a fixed delay.

The engines differ only in who runs :func:`deepsampler.models.frame_step.step_frame`: PyTorch
eagerly (:class:`deepsampler.streaming.StreamingSeparator`) or onnxruntime on its export
(:class:`deepsampler.export.onnx_engine.OnnxStreamingSeparator`). Framing and overlap-add are
:mod:`deepsampler.audio.stft_stream`'s. Everything here works on the engine's array kind (its
window's): torch tensors for the eager engine, numpy arrays for the onnx engine, whose hops
then never cross between the two; ``step`` and ``flush`` return torch tensors either way.

Timing: frame ``t`` is analysed once the padded samples ``[t*hop, t*hop + n_fft)`` have
arrived; its masks come out of the step ``lookahead`` frames later, when it is synthesised,
which finishes the padded samples ``[t*hop, (t+1)*hop)``. The output is the offline pass
delayed by exactly ``latency_samples`` (zeros before it).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import torch
from array_api_compat import device as array_device

from deepsampler.audio.stft_stream import (
    Array,
    OverlapAdd,
    StreamingSTFT,
    complex_dtype,
    zeros_as,
)
from deepsampler.models.config import ModelConfig
from deepsampler.models.frame_step import FrameState
from deepsampler.streaming.state import StreamState


class FrameEngine(ABC):
    """``init_state``, ``step`` and ``flush`` of a stream, for a model's frame step.

    ``step`` takes any number of new samples ``[b, c, m]`` (or ``[c, m]``; a tensor or an
    array) and returns exactly ``m`` samples ``[b, s, c, m]`` (or ``[s, c, m]``) of the
    separated stream, which is the offline output delayed by ``latency_samples``; ``flush``
    returns the last ``latency_samples`` ``[b, s, c, L]``. The state is updated in place as well
    as returned: :meth:`StreamState.clone` it first to keep it.

    Args:
        config: the model's config.
        window: ``[n_fft]`` STFT window: a torch tensor on the device the audio is to be
            processed on, or a numpy array for an engine whose step works on numpy arrays.
    """

    kind = "frame"  # which engine this is, for messages ("torch", "onnx")

    def __init__(self, config: ModelConfig, window: Array) -> None:
        self.config = config
        self.stft = StreamingSTFT(config.n_fft, config.hop, window)
        self.overlap_add = OverlapAdd(config.n_fft, config.hop, window)
        self.xp = self.stft.xp
        self._present = {
            p: self.xp.asarray([p], device=array_device(window)) for p in (True, False)
        }

    # ---- what each engine provides ---------------------------------------------------------
    @abstractmethod
    def initial_frame_state(self, batch: int) -> FrameState:
        """The frame step's state before the first frame."""

    @abstractmethod
    def step_frame(self, spectrum: Array, present: Array, state: Any) -> tuple[Array, Any]:
        """The model's frame step: ``spectrum [b, c, F]`` complex, ``present [1]`` bool ->
        masks ``[b, s, c, F]`` of the frame ``lookahead`` earlier, and the new state (arrays
        of the engine's kind)."""

    # ---- what it is ------------------------------------------------------------------------
    @property
    def latency_samples(self) -> int:
        """Fixed delay of the output stream: analysis window + look-ahead frames x hop."""
        return self.config.latency_samples

    @property
    def latency_ms(self) -> float:
        return self.config.latency_ms

    @property
    def hop(self) -> int:
        return self.config.hop

    # ---- the public calls ------------------------------------------------------------------
    def init_state(self, batch: int = 1) -> StreamState:
        """A fresh state for ``batch`` independent streams."""
        cfg, window = self.config, self.stft.window
        c, s = cfg.audio_channels, len(cfg.sources)
        spectra_shape = (batch, c, cfg.n_fft // 2 + 1, cfg.lookahead)
        return StreamState(
            inbuf=self.stft.initial_buffer(batch, c),
            frame=self.initial_frame_state(batch),
            spectra=zeros_as(window, spectra_shape, complex_dtype(self.xp, window.dtype)),
            ola=self.overlap_add.initial_state((batch, s, c)),
            outq=zeros_as(window, (batch, s, c, self.latency_samples)),
        )

    def _as_array(self, samples: torch.Tensor | np.ndarray) -> Array:
        """Input samples as the engine's arrays (its window's kind, dtype and device)."""
        window = self.stft.window
        if isinstance(window, torch.Tensor):
            return torch.as_tensor(samples).to(window)
        x = samples.numpy(force=True) if isinstance(samples, torch.Tensor) else samples
        return np.asarray(x, dtype=window.dtype)

    @staticmethod
    def _as_tensor(y: Array) -> torch.Tensor:
        return y if isinstance(y, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(y))

    @torch.inference_mode()
    def step(
        self, samples: torch.Tensor | np.ndarray, state: StreamState
    ) -> tuple[torch.Tensor, StreamState]:
        """Feed ``[b, c, m]`` (or ``[c, m]``) new samples; return ``[b, s, c, m]`` (or
        ``[s, c, m]``) separated samples and the state."""
        x = self._as_array(samples)
        squeeze = x.ndim == 2
        x = x[None] if squeeze else x
        if state.flushed:
            raise RuntimeError("this stream was flushed; start a new one with init_state()")
        batch = state.inbuf.shape[0]
        if x.ndim != 3 or x.shape[1] != self.config.audio_channels or x.shape[0] != batch:
            raise ValueError(
                f"expected [{batch}, {self.config.audio_channels}, samples], got {list(x.shape)}"
            )
        m = x.shape[-1]
        state.samples_in += m
        state.inbuf = self.xp.concat([state.inbuf, x], axis=-1)
        self._run_ready_frames(state)
        if state.outq.shape[-1] < m:  # cannot happen with latency >= n_fft + lookahead * hop
            raise AssertionError("streaming pipeline fell behind its fixed latency")
        out, state.outq = state.outq[..., :m], state.outq[..., m:]
        state.samples_out += m
        return self._as_tensor(out[0] if squeeze else out), state

    @torch.inference_mode()
    def flush(self, state: StreamState) -> tuple[torch.Tensor, StreamState]:
        """End the stream: return its last ``latency_samples`` samples ``[b, s, c, L]``."""
        state.inbuf = self.stft.end(state.inbuf, state.samples_in)
        self._run_ready_frames(state)
        # drain the look-ahead with frames past the end (never attended) until the last real
        # frame is synthesised; a stream shorter than the look-ahead synthesises from frame 0
        last = state.next_frame - 1
        silence = zeros_as(state.spectra, state.spectra.shape[:-1])
        while state.next_frame - self.config.lookahead <= last:
            self._run_frame(silence, self._present[False], state)
        state.outq = self.xp.concat([state.outq, self.overlap_add.finish(state.ola)], axis=-1)
        total = state.samples_in + self.latency_samples
        tail = state.outq[..., : total - state.samples_out]
        state.outq = state.outq[..., :0]
        state.samples_out = total
        state.flushed = True
        return self._as_tensor(tail), state

    # ---- internals -------------------------------------------------------------------------
    def _run_ready_frames(self, state: StreamState) -> None:
        spectra, state.inbuf = self.stft.frames(state.inbuf)
        for t in range(spectra.shape[-1]):
            self._run_frame(spectra[..., t], self._present[True], state)

    def _run_frame(self, spectrum: Array, present: Array, state: StreamState) -> None:
        """One frame through the step; synthesise the frame its masks are for, if it exists."""
        la, xp = self.config.lookahead, self.xp
        masks, state.frame = self.step_frame(spectrum, present, state.frame)
        index = state.next_frame - la  # the frame the masks are for
        if la:  # its spectrum waited in slot index mod la, which the new frame takes
            slot = state.next_frame % la
            delayed = xp.asarray(state.spectra[..., slot], copy=True)
            state.spectra[..., slot] = spectrum
            spectrum = delayed
        state.next_frame += 1
        if index >= 0:
            stems = spectrum[:, None] * masks  # [b, s, c, F]
            state.outq = xp.concat([state.outq, self.overlap_add.add(stems, state.ola)], axis=-1)
