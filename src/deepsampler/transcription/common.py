"""What every recogniser shares: the 16 kHz mono input, and words with times."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from deepsampler.errors import DeepSamplerError

# PocketSphinx's bundled en-us model and Whisper both take 16 kHz audio
SAMPLE_RATE = 16000


@dataclass(frozen=True)
class Word:
    """One recognised word and where it lies: ``start``/``end`` in seconds from the start of
    the audio given to the recogniser; ``confidence`` in [0, 1] where the engine has one
    (PocketSphinx: the word's posterior probability; Whisper: its token probability)."""

    word: str
    start: float
    end: float
    confidence: float | None = None

    def to_dict(self) -> dict:
        """``{"word", "start", "end"[, "confidence"]}``, times rounded to 10 ms (PocketSphinx's
        frame) and the confidence to 3 decimals; no ``confidence`` key where there is none."""
        out: dict = {"word": self.word, "start": round(self.start, 3), "end": round(self.end, 3)}
        if self.confidence is not None:
            out["confidence"] = round(float(self.confidence), 3)
        return out


@dataclass
class Transcript:
    """A recogniser's result for one stretch of audio: ``text`` (words joined by spaces, '' when
    nothing was recognised), ``words`` in time order, ``seconds`` the audio's duration and
    ``engine`` the recogniser that made it (``Recogniser.describe()``)."""

    text: str
    words: list[Word] = field(default_factory=list)
    seconds: float = 0.0
    engine: str = ""

    @property
    def empty(self) -> bool:
        """No word recognised (silence, noise, or speech the engine could not read)."""
        return not self.words and not self.text.strip()


class Recogniser(Protocol):
    """A speech recogniser for whole recordings: ``transcribe(audio [n] float32 at 16 kHz)``."""

    name: str

    def transcribe(self, audio: np.ndarray) -> Transcript: ...

    def describe(self) -> str: ...


def to_mono_16k(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """``[n]`` or ``[c, n]`` float audio at ``sample_rate`` Hz -> ``[m]`` float32 mono at
    :data:`SAMPLE_RATE` (channels averaged; ``m = round(n * 16000 / sample_rate)``)."""
    from deepsampler.audio import resample

    x = np.asarray(audio, dtype=np.float32)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2:
        raise DeepSamplerError(f"expected audio [n] or [channels, n], got shape {x.shape}")
    mono = x.mean(axis=0, keepdims=True)
    return resample(mono, sample_rate, SAMPLE_RATE)[0].astype(np.float32, copy=False)


def check_audio(audio: np.ndarray) -> np.ndarray:
    """``audio`` as a finite ``[n]`` float32 array (what :meth:`Recogniser.transcribe` takes)."""
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim != 1:
        raise DeepSamplerError(f"expected mono audio [n] at 16 kHz, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise DeepSamplerError("audio contains NaN/Inf samples; pass finite audio")
    return x
