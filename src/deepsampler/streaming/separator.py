"""Streaming separation in eager PyTorch: the model's own frame step (``DeepSampler.step_frame``)
behind the engine's framing and overlap-add (:class:`~deepsampler.streaming.engine.FrameEngine`).

Its output equals the offline forward pass of the same causal model, delayed by exactly
``latency_samples``: ``stream(x)[latency:] == model(x)`` (to float rounding).
"""

from __future__ import annotations

import torch

from deepsampler.models.deepsampler import DeepSampler
from deepsampler.models.frame_step import FrameState
from deepsampler.streaming.engine import FrameEngine


class StreamingSeparator(FrameEngine):
    """Run a causal :class:`DeepSampler` on a stream (see :class:`FrameEngine` for the calls).

    The frame step writes the state's K/V rings in place (one slot per frame, no copy of the
    caches), so a state is spent by the step that takes it, as :meth:`FrameEngine.step` says.
    """

    kind = "torch"

    def __init__(self, model: DeepSampler) -> None:
        if not model.config.causal:
            raise ValueError("streaming needs a causal model (config.causal = True)")
        self.model = model.eval()
        super().__init__(model.config, model.stft.window)

    def initial_frame_state(self, batch: int) -> FrameState:
        return self.model.initial_frame_state(batch)

    def step_frame(
        self, spectrum: torch.Tensor, present: torch.Tensor, state: FrameState
    ) -> tuple[torch.Tensor, FrameState]:
        return self.model.step_frame(spectrum, state, present, inplace=True)
