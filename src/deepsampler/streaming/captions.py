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
from deepsampler.streaming.live import ThreadedWriter
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


class LiveCaptions:
    """Feeds stem ``index`` of separated ``[s, c, n]`` blocks at ``sample_rate`` Hz to a
    recogniser and hands every :class:`CaptionEvent` to ``show``, in order.

    ``push`` returns at once (the block is copied onto a queue); ``close`` drains the queue,
    finalises the last utterance and returns every event made. ``show`` is called from the
    recogniser's thread.
    """

    def __init__(
        self,
        index: int,
        sample_rate: int,
        show: Callable[[CaptionEvent], None],
        recogniser: IncrementalRecogniser | None = None,
    ) -> None:
        self.index = index
        self.show = show
        self.recogniser = recogniser or IncrementalRecogniser(sample_rate)
        self.events: list[CaptionEvent] = []
        self._worker = ThreadedWriter(self._consume)
        self._closed = False
        self._aborted = False

    def _emit(self, events: list[CaptionEvent]) -> None:
        for event in events:
            self.events.append(event)
            self.show(event)

    def _consume(self, y: np.ndarray) -> None:
        if not self._aborted:
            self._emit(self.recogniser.push(y[self.index]))

    def push(self, y: np.ndarray) -> None:
        """Queue one separated block ``[s, c, n]``."""
        if self._closed:
            raise DeepSamplerError("push after close(): the captions are finished")
        self._worker.write(y)

    def close(self) -> list[CaptionEvent]:
        """Wait for the queued audio, finalise, and return all events (an error on the
        recogniser's thread is raised here)."""
        if not self._closed:
            self._closed = True
            self._worker.close()
            self._emit(self.recogniser.finish())
        return self.events

    def abort(self) -> None:
        """End without decoding what is still queued (the run failed); errors are dropped."""
        self._aborted = True
        if not self._closed:
            self._closed = True
            try:
                self._worker.close()
            except Exception:
                pass


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
