"""Incremental recognition for live captions: push audio blocks, get partial and final text.

The intended use is ``stream --transcribe``: the speech stem of a streaming separator, block by
block, into :class:`IncrementalRecogniser`; each ``push`` returns the caption events it made.

Timing: PocketSphinx's endpointer decides ``vad_window`` seconds (0.3) after the audio, so an
utterance's first partial comes about that late, and its final after a pause of that length.
The final is the utterance decoded again as a whole (see ``pocketsphinx_backend``: WER 0.26
against 0.63 for the live pass on espeak-ng sentences), which costs about a third of the
utterance's duration on one core of this 2-core machine, inside the ``push`` that ends it; a
live caller runs the recogniser off the audio thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from deepsampler.audio import StreamResampler
from deepsampler.errors import DeepSamplerError
from deepsampler.transcription.common import SAMPLE_RATE, Word
from deepsampler.transcription.pocketsphinx_backend import (
    MAX_UTTERANCE,
    VAD_WINDOW,
    NoiseFloor,
    SpeechChunk,
    SpeechSegmenter,
    decode_utterance,
    new_decoder,
    to_pcm16,
)


@dataclass(frozen=True)
class CaptionEvent:
    """A caption update.

    ``kind``: ``partial`` (the current utterance so far; a later event replaces it) or
    ``final`` (the utterance's text, decided; the next event starts a new utterance).
    ``start``/``end``: seconds since the first sample pushed; for a partial, ``end`` is how far
    the recogniser has heard. ``words`` (finals only) carry times on the same clock. A final's
    ``text`` is '' when an utterance that showed partials turned out to hold no word, so a
    caption line can be cleared.
    """

    kind: Literal["partial", "final"]
    text: str
    start: float
    end: float
    words: tuple[Word, ...] = ()


class IncrementalRecogniser:
    """PocketSphinx fed block by block, cut into utterances by its voice-activity endpointer.

    Args:
        sample_rate: rate of the blocks pushed, Hz (resampled to 16 kHz inside).
        partials: also run the live decoder (``process_raw(full_utt=False)``) and report
            partial text while an utterance goes on; off, only finals are made (about half
            the compute).
        partial_interval: seconds of speech between partial events (at most one per push).
        max_utterance: seconds; longer stretches of speech are finalised in parts.
        vad_window: the endpointer's decision window, seconds (its delay; shorter cuts
            utterances at shorter pauses).
        vad_mode: WebRTC VAD aggressiveness, 0 (loose) to 3 (strict).
        options: PocketSphinx decoder settings.

    No level normalisation (a stream has no peak to know in advance): the same noise floor as
    offline is added, RMS 1e-3, so give it speech at a usual level (peaks around -6 dBFS).
    """

    def __init__(
        self,
        sample_rate: int = SAMPLE_RATE,
        *,
        partials: bool = True,
        partial_interval: float = 0.3,
        max_utterance: float = MAX_UTTERANCE,
        vad_window: float = VAD_WINDOW,
        vad_mode: int = 0,
        options: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(sample_rate, int) or sample_rate <= 0:
            raise DeepSamplerError(f"sample_rate {sample_rate!r}: use a positive whole number")
        if not 0 <= vad_mode <= 3:
            raise DeepSamplerError(f"vad_mode {vad_mode}: use 0 (loose) to 3 (strict)")
        self.sample_rate = sample_rate
        self.partials = partials
        self.partial_interval = partial_interval
        self._resampler = StreamResampler(sample_rate, SAMPLE_RATE, 1)
        self._floor = NoiseFloor()
        self._segmenter = SpeechSegmenter(vad_window, vad_mode, max_utterance)
        self._decoder = new_decoder(**(options or {}))
        # the live pass starts each utterance from the cepstral mean the last final pass
        # ended with (the best estimate so far); None before the first
        self._final_cmn: str | None = None
        self._live = False  # the live decoder is inside an utterance
        self._heard = 0.0  # seconds of speech decoded live since the last partial
        self._shown = ""  # the last partial's text
        self._finished = False

    def push(self, block: np.ndarray) -> list[CaptionEvent]:
        """Feed ``[n]`` or ``[c, n]`` float samples at ``sample_rate`` (channels averaged);
        return the events they completed, in order (often none)."""
        if self._finished:
            raise DeepSamplerError("push after finish(): make a new IncrementalRecogniser")
        x = np.asarray(block, dtype=np.float32)
        if x.ndim == 1:
            x = x[None]
        if x.ndim != 2:
            raise DeepSamplerError(f"expected a block [n] or [channels, n], got {x.shape}")
        if not np.isfinite(x).all():
            raise DeepSamplerError("block contains NaN/Inf samples; pass finite audio")
        y = self._resampler.push(x.mean(axis=0, keepdims=True))[0]
        return self._events(self._segmenter.push(to_pcm16(self._floor(y))))

    def finish(self) -> list[CaptionEvent]:
        """The end of the stream: finalise what is still open. The recogniser is done after."""
        if self._finished:
            return []
        self._finished = True
        tail = self._resampler.push(np.zeros((1, 0), np.float32), last=True)[0]
        pcm = to_pcm16(self._floor(tail))
        return self._events(self._segmenter.push(pcm) + self._segmenter.finish())

    def _events(self, chunks: list[SpeechChunk]) -> list[CaptionEvent]:
        events: list[CaptionEvent] = []
        for chunk in chunks:
            if self.partials:
                partial = self._live_step(chunk)
                if partial is not None:
                    events.append(partial)
            if chunk.utterance is not None:
                final = self._final(chunk)
                if final is not None:
                    events.append(final)
        return events

    def _live_step(self, chunk: SpeechChunk) -> CaptionEvent | None:
        """Feed the live decoder; a partial event when enough speech has passed and the
        hypothesis changed."""
        if chunk.first:
            self._decoder.reinit_feat()
            if self._final_cmn is not None:
                self._decoder.set_cmn(self._final_cmn)
            self._decoder.start_utt()
            self._live, self._heard, self._shown = True, 0.0, ""
        self._decoder.process_raw(chunk.pcm, full_utt=False)
        self._heard += len(chunk.pcm) / 2 / SAMPLE_RATE
        if chunk.last:
            self._decoder.end_utt()  # the final decodes the utterance again
            self._live = False
            return None
        if self._heard < self.partial_interval:
            return None
        self._heard = 0.0
        hyp = self._decoder.hyp()
        text = " ".join(hyp.hypstr.split()) if hyp is not None else ""
        if not text or text == self._shown:
            return None
        self._shown = text
        return CaptionEvent("partial", text, chunk.start, self._utterance_end(chunk), ())

    def _final(self, chunk: SpeechChunk) -> CaptionEvent | None:
        assert chunk.utterance is not None
        words = decode_utterance(self._decoder, chunk.utterance, chunk.start)
        self._final_cmn = self._decoder.get_cmn()
        text = " ".join(w.word for w in words)
        shown, self._shown = self._shown, ""
        if not text and not shown:
            return None  # a noise the endpointer let through: nothing to show or clear
        return CaptionEvent("final", text, chunk.start, self._utterance_end(chunk), tuple(words))

    def _utterance_end(self, chunk: SpeechChunk) -> float:
        """Seconds at the end of what the segmenter has given of the current utterance."""
        if chunk.utterance is not None:
            return chunk.start + len(chunk.utterance) / 2 / SAMPLE_RATE
        return self._segmenter.position()
