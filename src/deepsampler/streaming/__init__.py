"""Real-time streaming: explicit state, frame-by-frame separation with a fixed latency."""

from deepsampler.streaming.engine import FrameEngine
from deepsampler.streaming.separator import StreamingSeparator
from deepsampler.streaming.state import StreamState

__all__ = ["FrameEngine", "StreamState", "StreamingSeparator"]
