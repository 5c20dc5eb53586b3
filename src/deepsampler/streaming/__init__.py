"""Real-time streaming: explicit state, frame-by-frame separation with a fixed latency."""

from deepsampler.streaming.separator import StreamingSeparator
from deepsampler.streaming.state import StreamState

__all__ = ["StreamState", "StreamingSeparator"]
