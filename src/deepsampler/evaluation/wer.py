"""Word error rate with a speech recogniser: PocketSphinx (its wheel bundles the en-us acoustic
model, language model and dictionary, so nothing is downloaded) transcribes, jiwer aligns.

- :func:`recognise`: ``audio [n]`` float at any rate -> lower-case transcript.
- :func:`word_errors`: ``(errors, reference words)`` of one hypothesis, so a corpus WER is
  total errors / total reference words (long items weigh more, as in every ASR benchmark).
- :func:`wer`: the ratio for one pair.

PocketSphinx is a small, old recogniser: on real read speech it transcribes well, on synthetic
voices poorly. Benchmarks therefore score a system's output against PocketSphinx's transcript of
the *clean* speech, not against the script the speaker read: the WER then measures what the
processing changed for this recogniser, and the clean speech scores 0 by construction.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np

from deepsampler.errors import DeepSamplerError
from deepsampler.transcription.common import SAMPLE_RATE as RECOGNISER_RATE
from deepsampler.transcription.pocketsphinx_backend import new_decoder, to_pcm16

if TYPE_CHECKING:
    from pocketsphinx import Decoder


@functools.lru_cache(maxsize=1)
def _decoder() -> Decoder:
    """The transcription backend's PocketSphinx decoder (bundled en-us model), loaded once
    (about 0.5 s) and shared by every call."""
    return new_decoder()


def recognise(audio: np.ndarray, sample_rate: int) -> str:
    """PocketSphinx's transcript of one utterance: ``audio [n]`` (or ``[c, n]``, averaged to
    mono) float in [-1, 1] at ``sample_rate`` Hz -> lower-case words separated by spaces ('' for
    no speech). Samples beyond full scale are clipped, as a 16-bit recording would be."""
    x = np.asarray(audio, dtype=np.float64)
    x = x.mean(axis=0) if x.ndim == 2 else x
    if x.ndim != 1:
        raise DeepSamplerError(f"recognise: expected audio [n] or [c, n], got {x.shape}")
    if sample_rate != RECOGNISER_RATE:
        import soxr

        x = soxr.resample(x, sample_rate, RECOGNISER_RATE)
    dec = _decoder()
    # the decoder is shared: forget the feature state (running cepstral mean) of the utterances
    # decoded before, else a transcript depends on what was decoded earlier (17 real-speech
    # mixtures decoded in reverse order gave 14 other transcripts; the transcription backend
    # does the same)
    dec.reinit_feat()
    dec.start_utt()
    dec.process_raw(to_pcm16(x), full_utt=True)  # one utterance: the whole signal, no endpointing
    dec.end_utt()
    hyp = dec.hyp()
    return " ".join(hyp.hypstr.split()) if hyp is not None else ""


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """``(substitutions + deletions + insertions, words in reference)`` of ``hypothesis``
    against ``reference`` (whitespace-separated words, compared as given)."""
    import jiwer

    out = jiwer.process_words(reference, hypothesis)
    return (
        out.substitutions + out.deletions + out.insertions,
        out.substitutions + out.deletions + out.hits,
    )


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate of one pair: errors / reference words (inf for an empty reference and a
    non-empty hypothesis, 0 for both empty)."""
    errors, words = word_errors(reference, hypothesis)
    if words == 0:
        return 0.0 if errors == 0 else float("inf")
    return errors / words
