"""Speech recognition: transcribe recordings (``deepsampler transcribe``) and, incrementally,
live audio (captions).

- :class:`PocketSphinxRecogniser`: the default; PocketSphinx's wheel bundles its en-us model.
- :class:`WhisperRecogniser`: optional; faster-whisper or openai-whisper from local weights.
- :func:`make_recogniser`: one of them by engine name.
- :class:`IncrementalRecogniser`: ``push(block) -> [CaptionEvent]``, partial and final text.

Every recogniser takes mono float32 audio at 16 kHz (:func:`to_mono_16k` converts) and returns
a :class:`Transcript` whose :class:`Word` times are seconds from its first sample.
"""

from __future__ import annotations

from deepsampler.transcription.common import (
    SAMPLE_RATE,
    Recogniser,
    Transcript,
    Word,
    to_mono_16k,
)
from deepsampler.transcription.incremental import CaptionEvent, IncrementalRecogniser
from deepsampler.transcription.pocketsphinx_backend import PocketSphinxRecogniser
from deepsampler.transcription.whisper_backend import DEFAULT_WHISPER_MODEL, WhisperRecogniser

ENGINES = ("pocketsphinx", "whisper")


def make_recogniser(
    engine: str = "pocketsphinx",
    *,
    whisper_model: str = DEFAULT_WHISPER_MODEL,
    device: str = "cpu",
) -> Recogniser:
    """The recogniser named ``engine`` (``pocketsphinx`` or ``whisper``), loaded; a missing
    package or weights raise :class:`~deepsampler.errors.DeepSamplerError` (one line)."""
    from deepsampler.errors import DeepSamplerError

    if engine == "pocketsphinx":
        return PocketSphinxRecogniser()
    if engine == "whisper":
        return WhisperRecogniser(whisper_model, device=device)
    raise DeepSamplerError(f"engine {engine!r}: use one of {', '.join(ENGINES)}")


__all__ = [
    "DEFAULT_WHISPER_MODEL",
    "ENGINES",
    "SAMPLE_RATE",
    "CaptionEvent",
    "IncrementalRecogniser",
    "PocketSphinxRecogniser",
    "Recogniser",
    "Transcript",
    "WhisperRecogniser",
    "Word",
    "make_recogniser",
    "to_mono_16k",
]
