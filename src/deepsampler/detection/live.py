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
from deepsampler.streaming.live import ThreadedListener


class LiveAlerts(ThreadedListener):
    """Feeds separated ``[s, c, n]`` blocks (the detector's separator, aligned, at its rate)
    to ``detector`` and hands each :class:`Alert` to ``show`` (``push``/``close``/``abort`` as
    :class:`ThreadedListener`; closing ends the stream, and an open event with it).
    ``latency_samples``: the separating engine's delay, for the alerts' times.
    """

    finished = "the detection"

    def __init__(
        self, detector: Detector, latency_samples: int, show: Callable[[Alert], None]
    ) -> None:
        self.stream = detector.stem_stream(latency_samples)
        super().__init__(show)

    @property
    def alerts(self) -> list[Alert]:
        """Every alert so far, in order."""
        return self.events

    def _feed(self, y: np.ndarray) -> list[Alert]:
        return self.stream.push_stems(y)

    def _finish(self) -> list[Alert]:
        return self.stream.finish()


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
