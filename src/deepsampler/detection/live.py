"""Siren alerts for ``deepsampler stream --detect``: a listener of the separated stream.

Like live captions (``streaming/captions.py``), it takes the stream's separated blocks (from
``StreamProcessor.on_output`` for a file, ``record_live``'s listeners live) and runs the
detector on a thread of its own, so detection never holds up the stems; every alert is handed
to ``show`` (from that thread) as it is decided. The stems are all it needs: the detector's
mixture is their sum (see ``deepsampler.detection.detector``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

import numpy as np

from deepsampler.detection.detector import Detector
from deepsampler.detection.events import Alert
from deepsampler.errors import DeepSamplerError
from deepsampler.streaming.live import ThreadedWriter


class LiveAlerts:
    """Feeds separated ``[s, c, n]`` blocks (the detector's separator, aligned, at its rate)
    to ``detector`` and hands each :class:`Alert` to ``show``.

    ``push`` returns at once (the block is copied onto a queue); ``close`` drains the queue,
    ends the stream (an open event ends with it) and returns every alert; ``abort`` drops what
    is queued. ``latency_samples``: the separating engine's delay, for the alerts' times.
    """

    def __init__(
        self, detector: Detector, latency_samples: int, show: Callable[[Alert], None]
    ) -> None:
        self.stream = detector.stem_stream(latency_samples)
        self.show = show
        self.alerts: list[Alert] = []
        self._worker = ThreadedWriter(self._consume)
        self._closed = False
        self._aborted = False

    def _emit(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            self.alerts.append(alert)
            self.show(alert)

    def _consume(self, y: np.ndarray) -> None:
        if not self._aborted:
            self._emit(self.stream.push_stems(y))

    def push(self, y: np.ndarray) -> None:
        """Queue one separated block ``[s, c, n]``."""
        if self._closed:
            raise DeepSamplerError("push after close(): the detection is finished")
        self._worker.write(y)

    def close(self) -> list[Alert]:
        """Wait for the queued audio, end the stream and return all alerts (an error on the
        detector's thread is raised here)."""
        if not self._closed:
            self._closed = True
            self._worker.close()
            self._emit(self.stream.finish())
        return self.alerts

    def abort(self) -> None:
        """End without detecting what is still queued (the run failed); errors are dropped."""
        self._aborted = True
        if not self._closed:
            self._closed = True
            try:
                self._worker.close()
            except Exception:
                pass


def format_alert(alert: Alert) -> str:
    """One line: ``ALERT siren started at 4.62 s (onset 4.17 s, 0.45 s since onset), ...``."""
    since = alert.time - alert.onset
    what = "started" if alert.kind == "start" else "ended  "
    tail = "" if alert.offset is None else f", offset {alert.offset:.2f} s"
    return (
        f"ALERT {alert.label} {what} at {alert.time:7.2f} s (onset {alert.onset:.2f} s, "
        f"{since:.2f} s since onset{tail}), confidence {alert.confidence:.2f}"
    )


class AlertPrinter:
    """Prints each alert as one line (:func:`format_alert`) and flushes."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def __call__(self, alert: Alert) -> None:
        print(format_alert(alert), file=self.stream, flush=True)
