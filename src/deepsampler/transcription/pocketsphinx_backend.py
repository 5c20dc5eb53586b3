"""PocketSphinx: the default recogniser (its wheel bundles the en-us model, nothing is downloaded).

Audio goes through three steps before the decoder sees it, for reasons measured on espeak-ng
speech (6 sentences, 52 words, voice en-us at 140 words/minute; WER by jiwer):

1. **Level** (offline only): scaled to a 0.5 peak, by at most +30 dB. PocketSphinx's cepstral
   mean normalisation removes a fixed gain, but the noise floor of step 2 is fixed, so the level
   sets the signal-to-floor ratio; the gain cap keeps a near-silent file (or the faint residue
   a separator leaves of a recording without speech) near silent instead of raising its noise
   to speech level, where the recogniser would read words into it.
2. **Noise floor**: Gaussian noise of RMS 1e-3 (-60 dBFS), seeded, so transcripts repeat.
   Digital silence (exact zeros between synthetic words, or after a separator's mask) lies far
   outside the recordings the acoustic model learnt from: WER 0.80 without a floor, 0.33-0.37
   with 1e-3 (0.35-0.52 with 5e-4, 0.35-0.46 with 2e-3, over noise seeds).
3. **Utterances** by PocketSphinx's voice-activity endpointer (``pocketsphinx.Endpointer``,
   WebRTC's VAD, 0.3 s decision window), each decoded as a whole (``full_utt=True``) and
   capped at ``max_utterance`` seconds so long files decode in bounded memory. On the same 6
   sentences as one stream, decoding each utterance this way gave WER 0.26 where the live
   decoder (``full_utt=False``, running cepstral mean) gave 0.63: the live mean needs a few
   seconds of speech to settle. So the incremental recogniser shows live partials but decodes
   each finished utterance again for its final text.

The cepstral mean (CMN) is state: even a ``full_utt`` decode starts from the running mean the
decoder was left with, and the result depends on it (the digits sentence decoded after a live
pass over itself: WER 0.7; by a fresh decoder: 0.0; ``set_cmn`` back to the initial mean did not
help, its running sums stay). So :func:`decode_utterance` rebuilds the feature state first
(``reinit_feat``, 40 us): every utterance is decoded from the model's initial mean, a file's
transcript does not depend on the files before it, and the incremental recogniser's finals are
what the offline path gives for the same utterance.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from deepsampler.errors import DeepSamplerError
from deepsampler.transcription.common import SAMPLE_RATE, Transcript, Word, check_audio

if TYPE_CHECKING:
    from pocketsphinx import Decoder

TARGET_PEAK = 0.5  # offline level: peak after scaling
MAX_GAIN = 10 ** (30 / 20)  # +30 dB at most (see the module docstring)
NOISE_FLOOR = 1e-3  # RMS of the added floor, full scale 1.0 (-60 dBFS)
FRAME_RATE = 100  # PocketSphinx's feature frames per second (its -frate default)
VAD_WINDOW = 0.3  # seconds the endpointer decides over (its default)
MAX_UTTERANCE = 20.0  # seconds: a longer stretch of speech is cut and decoded in parts

# pronunciation variants: "the(2)" is the word "the"
_VARIANT = re.compile(r"\(\d+\)$")


def load_pocketsphinx() -> Any:
    """The ``pocketsphinx`` module, or one line saying how to install it."""
    try:
        import pocketsphinx
    except ImportError:
        raise DeepSamplerError(
            "transcription needs PocketSphinx: pip install 'deepsampler[transcribe]' "
            "(or pip install pocketsphinx)"
        ) from None
    return pocketsphinx


def new_decoder(**options: Any) -> Decoder:
    """A PocketSphinx decoder with its bundled en-us model (about 0.4 s to load); ``options``
    are decoder settings (``lw=``, ``beam=``, ...). Its INFO lines are turned off."""
    ps = load_pocketsphinx()
    try:
        return ps.Decoder(loglevel="FATAL", **options)
    except (ValueError, RuntimeError, KeyError) as exc:
        raise DeepSamplerError(f"PocketSphinx refused options {options}: {exc}") from None


def level(audio: np.ndarray) -> np.ndarray:
    """``[n]`` float audio scaled to a :data:`TARGET_PEAK` peak, by at most :data:`MAX_GAIN`."""
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    gain = MAX_GAIN if peak * MAX_GAIN <= TARGET_PEAK else TARGET_PEAK / peak
    return (audio * gain).astype(np.float32)


class NoiseFloor:
    """Adds seeded Gaussian noise of RMS ``rms`` to consecutive ``[n]`` blocks (the same
    stream whatever the block sizes, so a file and its blocks get the same floor)."""

    def __init__(self, rms: float = NOISE_FLOOR, seed: int = 0) -> None:
        self.rms = rms
        self._rng = np.random.default_rng(seed)

    def __call__(self, block: np.ndarray) -> np.ndarray:
        noise = self._rng.standard_normal(block.shape[-1], dtype=np.float32)
        return (block + self.rms * noise).astype(np.float32)


def to_pcm16(audio: np.ndarray) -> bytes:
    """``[n]`` float in [-1, 1] -> little-endian int16 bytes (beyond full scale is clipped)."""
    return np.round(np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def clean_word(word: str) -> str | None:
    """A segment's word as text: None for fillers (``<s>``, ``<sil>``, ``[NOISE]``), variant
    markers dropped (``the(2)`` -> ``the``)."""
    if not word or word[0] in "<[+":
        return None
    return _VARIANT.sub("", word)


def decode_utterance(decoder: Decoder, pcm: bytes, offset: float = 0.0) -> list[Word]:
    """Decode one utterance, ``pcm`` int16 bytes at 16 kHz, as a whole, from the model's
    initial cepstral mean; its words with times in seconds from ``offset`` (where the utterance
    starts) and their posterior probabilities."""
    decoder.reinit_feat()  # forget the running mean of earlier passes (module docstring)
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    words = []
    for seg in decoder.seg():
        text = clean_word(seg.word)
        if text is None:
            continue
        start = offset + seg.start_frame / FRAME_RATE
        end = offset + (seg.end_frame + 1) / FRAME_RATE  # end_frame is inclusive
        prob = float(seg.prob)
        words.append(Word(text, start, end, min(max(prob, 0.0), 1.0)))
    return words


@dataclass
class SpeechChunk:
    """What the endpointer let through on one frame: ``pcm`` (int16 bytes at 16 kHz) of the
    utterance that started at ``start`` seconds; ``first`` when it opens the utterance, and
    ``utterance`` (all its bytes) when it closes it (a pause, the cap, or the stream's end)."""

    pcm: bytes
    start: float
    first: bool
    utterance: bytes | None = None

    @property
    def last(self) -> bool:
        return self.utterance is not None


class SpeechSegmenter:
    """Cuts a stream of int16 bytes at 16 kHz into utterances with PocketSphinx's endpointer.

    ``push(pcm)`` takes any number of bytes and returns the :class:`SpeechChunk` of every whole
    30 ms frame it completed (frames the endpointer calls non-speech return nothing); the
    endpointer answers ``window`` seconds late, which is the incremental captions' delay.
    ``finish()`` closes an utterance still open at the end.
    """

    def __init__(
        self,
        window: float = VAD_WINDOW,
        vad_mode: int = 0,
        max_utterance: float = MAX_UTTERANCE,
    ) -> None:
        ps = load_pocketsphinx()
        self._ep = ps.Endpointer(window=window, vad_mode=vad_mode, sample_rate=SAMPLE_RATE)
        self.frame_bytes: int = self._ep.frame_bytes
        self.max_bytes = int(max_utterance * SAMPLE_RATE) * 2
        self._pending = bytearray()  # less than one frame, waiting for the next push
        self._utterance = bytearray()
        self._start = 0.0
        self._open = False

    def _chunk(self, pcm: bytes, starts: bool, ends: bool) -> SpeechChunk:
        if starts:
            self._utterance = bytearray()
        self._utterance += pcm
        # a stretch of speech longer than the cap ends an utterance here; the next one goes on
        ends = ends or len(self._utterance) >= self.max_bytes
        chunk = SpeechChunk(pcm, self._start, starts, bytes(self._utterance) if ends else None)
        if ends:
            self._start += len(self._utterance) / 2 / SAMPLE_RATE
            self._utterance = bytearray()
        self._open = not ends
        return chunk

    def push(self, pcm: bytes) -> list[SpeechChunk]:
        self._pending += pcm
        chunks = []
        whole = len(self._pending) // self.frame_bytes * self.frame_bytes
        for i in range(0, whole, self.frame_bytes):
            frame = bytes(self._pending[i : i + self.frame_bytes])
            was_speech = self._ep.in_speech
            speech = self._ep.process(frame)
            if speech is None:
                continue
            if not was_speech:  # a new stretch of speech (after a cap, speech goes on)
                self._start = self._ep.speech_start
            chunks.append(self._chunk(speech, not self._open, not self._ep.in_speech))
        del self._pending[:whole]
        return chunks

    def position(self) -> float:
        """Seconds from the stream's start to the end of the open utterance so far."""
        return self._start + len(self._utterance) / 2 / SAMPLE_RATE

    def finish(self) -> list[SpeechChunk]:
        """The end of the stream: the last utterance, if one is open, with what remains."""
        rest = bytes(self._pending)
        self._pending.clear()
        if not self._ep.in_speech:
            return []
        # the endpointer is within a stretch of speech, so _start is already where it began
        # (or where the cap cut it)
        # end_stream refuses an empty buffer: one silent sample stands in for none
        speech = self._ep.end_stream(rest or b"\0\0") or b""
        return [self._chunk(speech, not self._open, True)]


def segment_utterances(
    pcm: bytes, window: float = VAD_WINDOW, max_utterance: float = MAX_UTTERANCE
) -> list[tuple[float, bytes]]:
    """``(start seconds, int16 bytes)`` of each utterance in a whole recording."""
    seg = SpeechSegmenter(window, max_utterance=max_utterance)
    chunks = seg.push(pcm) + seg.finish()
    return [(c.start, c.utterance) for c in chunks if c.utterance is not None]


class PocketSphinxRecogniser:
    """PocketSphinx with its bundled en-us model, for whole recordings.

    Args:
        options: decoder settings passed to ``pocketsphinx.Decoder`` (default: its own).
        max_utterance: seconds; longer stretches of speech are decoded in parts.

    ``transcribe(audio)``: ``[n]`` float32 at 16 kHz -> :class:`Transcript`, word times in
    seconds from the first sample. The decoder is loaded once and reused across calls.
    """

    name = "pocketsphinx"

    def __init__(
        self, options: dict[str, Any] | None = None, max_utterance: float = MAX_UTTERANCE
    ) -> None:
        self.options = dict(options or {})
        self.max_utterance = max_utterance
        self.decoder = new_decoder(**self.options)

    def describe(self) -> str:
        from importlib.metadata import PackageNotFoundError, version

        try:
            v = version("pocketsphinx")
        except PackageNotFoundError:  # a source build without metadata
            v = "?"
        return f"pocketsphinx {v} (bundled en-us model)"

    def transcribe(self, audio: np.ndarray) -> Transcript:
        x = check_audio(audio)
        seconds = x.shape[-1] / SAMPLE_RATE
        pcm = to_pcm16(NoiseFloor()(level(x)))
        words: list[Word] = []
        for start, utterance in segment_utterances(pcm, max_utterance=self.max_utterance):
            words += decode_utterance(self.decoder, utterance, start)
        return Transcript(
            " ".join(w.word for w in words), _clamp(words, seconds), seconds, self.describe()
        )


def _clamp(words: Sequence[Word], seconds: float) -> list[Word]:
    """Word times kept within ``[0, seconds]`` (the endpointer's last frame may pad past the
    end of the audio by up to a frame)."""
    return [
        Word(w.word, min(max(w.start, 0.0), seconds), min(max(w.end, 0.0), seconds), w.confidence)
        for w in words
    ]
