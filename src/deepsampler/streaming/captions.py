"""Live captions for ``deepsampler stream --transcribe``: one separated stem, block by block,
into an :class:`~deepsampler.transcription.IncrementalRecogniser`, and its caption events out.

The recogniser runs on a thread of its own (a final decodes a whole utterance again, which can
take a third of its length): the audio callback, or the file loop, only enqueues a copy of each
block, so captions never hold up the stems.

Times are seconds of the separated stream: for a file, the file's own clock (the engine's
latency is removed before the stems come out); live, the output clock, which is the input's
delayed by the engine's latency.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TextIO

import numpy as np

from deepsampler.errors import DeepSamplerError
from deepsampler.streaming.live import ThreadedListener
from deepsampler.transcription import CaptionEvent, IncrementalRecogniser

#: the stems that carry speech, in the order ``caption_stem`` looks for them
SPEECH_STEMS = ("speech", "vocals")


def caption_stem(sources: Sequence[str], model_name: str, stem: str | None = None) -> str:
    """The stem to caption: ``stem`` if given (and the model has it), else the model's
    ``speech`` or ``vocals`` stem; a model with neither is refused in one line."""
    if stem is not None:
        if stem not in sources:
            raise DeepSamplerError(
                f"--caption-stem {stem}: model {model_name} gives {', '.join(sources)}"
            )
        return stem
    for name in SPEECH_STEMS:
        if name in sources:
            return name
    raise DeepSamplerError(
        f"--transcribe: model {model_name} has no speech stem (it gives {', '.join(sources)}); "
        "use a speech model such as speech-rt, or name one with --caption-stem"
    )


class LiveCaptions(ThreadedListener):
    """Feeds stem ``index`` of separated ``[s, c, n]`` blocks at ``sample_rate`` Hz to a
    recogniser and hands every :class:`CaptionEvent` to ``show``, in order (from the
    recogniser's thread; ``push``/``close``/``abort`` as :class:`ThreadedListener`)."""

    finished = "the captions"

    def __init__(
        self,
        index: int,
        sample_rate: int,
        show: Callable[[CaptionEvent], None],
        recogniser: IncrementalRecogniser | None = None,
    ) -> None:
        self.index = index
        self.recogniser = recogniser or IncrementalRecogniser(sample_rate)
        super().__init__(show)

    def _feed(self, y: np.ndarray) -> list[CaptionEvent]:
        return self.recogniser.push(y[self.index])

    def _finish(self) -> list[CaptionEvent]:
        return self.recogniser.finish()


def format_caption(event: CaptionEvent) -> str:
    """``final    1.20-  3.45  text`` (a final with no words reads ``(nothing)``)."""
    text = event.text or "(nothing)"
    return f"{event.kind:<8} {event.start:6.2f}-{event.end:6.2f}  {text}"


class CaptionPrinter:
    """Prints caption events: on a terminal a partial rewrites the current line and a final
    ends it; elsewhere (a pipe, a log) every event is its own line, as ``format_caption``."""

    def __init__(self, stream: TextIO | None = None, tty: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        self.finals = 0

    def __call__(self, event: CaptionEvent) -> None:
        if event.kind == "final":
            self.finals += bool(event.text)
        if not self.tty:
            print(format_caption(event), file=self.stream, flush=True)
            return
        line = f"\r\033[K[{event.start:6.2f}] {event.text}"
        if event.kind == "final":
            # an utterance that came to nothing clears its partial line and leaves no line
            print(
                line if event.text else "\r\033[K",
                end="\n" if event.text else "",
                file=self.stream,
                flush=True,
            )
        else:
            print(line + " …", end="", file=self.stream, flush=True)
