"""Events from per-frame probabilities: hysteresis, gap merging, a minimum length, confidence.

The rule, over frames ``t = 0, 1, ...`` with probabilities ``p[t]``:

1. *Hysteresis.* A raw segment starts at the first frame with ``p > on_threshold`` and ends
   (exclusive) at the next frame with ``p < off_threshold``, or at the end of the signal.
2. *Gaps.* Consecutive raw segments less than ``min_gap`` frames apart (from one's end to the
   next's start) are one event, the gap included.
3. *Length.* Events shorter than ``min_frames`` frames are dropped.
4. *Onset.* With an ``onset_threshold``, an event's onset moves back over the frames just
   before its first segment whose probability is above that threshold (at most
   ``onset_lookback_seconds``, never into the previous event's span): a siren fades in from far
   away, and the frames where it was already rising belong to it. The decision times do not
   change; only the estimate of when the event began does.
5. *Confidence* of an event: the mean probability of its frames from the on-crossing on (gaps
   included).

:func:`find_events` applies it to a whole curve; :class:`EventTracker` applies it frame by
frame with explicit state, deciding each start as soon as the event is sure to be kept (it has
lasted ``min_frames``) and each end as soon as no later onset could merge into it (``min_gap``
frames after its last frame above ``off_threshold``). Fed the same probabilities in any blocks,
it gives exactly :func:`find_events`'s events. Frames are turned into seconds by the caller.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np


@dataclass(frozen=True)
class EventConfig:
    """Hysteresis thresholds (probabilities) and the minimum event and gap lengths (seconds).

    ``on_threshold`` must be >= ``off_threshold``; equal thresholds are a plain threshold.
    """

    on_threshold: float = 0.5
    off_threshold: float = 0.3
    min_event_seconds: float = 0.5
    min_gap_seconds: float = 0.5
    onset_threshold: float | None = None
    onset_lookback_seconds: float = 3.0

    def __post_init__(self) -> None:
        if not 0.0 < self.off_threshold <= self.on_threshold < 1.0:
            raise ValueError(
                f"need 0 < off_threshold <= on_threshold < 1, got {self.off_threshold} and "
                f"{self.on_threshold}"
            )
        if self.min_event_seconds < 0 or self.min_gap_seconds < 0:
            raise ValueError("min_event_seconds and min_gap_seconds must be >= 0")
        if self.onset_threshold is not None and not 0 < self.onset_threshold <= self.on_threshold:
            raise ValueError("need 0 < onset_threshold <= on_threshold (or None: no look-back)")
        if self.onset_lookback_seconds < 0:
            raise ValueError("onset_lookback_seconds must be >= 0")

    def lookback_frames(self, frame_seconds: float) -> int:
        """Frames an onset may move back (0 without an ``onset_threshold``)."""
        if self.onset_threshold is None:
            return 0
        return max(0, round(self.onset_lookback_seconds / frame_seconds))

    def in_frames(self, frame_seconds: float) -> tuple[int, int]:
        """``(min_frames >= 1, min_gap frames >= 0)`` at ``frame_seconds`` per frame."""
        return (
            max(1, round(self.min_event_seconds / frame_seconds)),
            max(0, round(self.min_gap_seconds / frame_seconds)),
        )

    def with_threshold(self, on_threshold: float) -> EventConfig:
        """This config with another onset threshold; the offset threshold stays at most it."""
        onset = self.onset_threshold
        return EventConfig(
            on_threshold,
            min(self.off_threshold, on_threshold),
            self.min_event_seconds,
            self.min_gap_seconds,
            None if onset is None else min(onset, on_threshold),
            self.onset_lookback_seconds,
        )


@dataclass(frozen=True)
class Event:
    """A detected (or reference) event: ``onset`` and ``offset`` in seconds from the start of
    the signal, its ``label`` and ``confidence`` (mean frame probability, 0..1)."""

    onset: float
    offset: float
    label: str = "siren"
    confidence: float = 1.0

    @property
    def duration(self) -> float:
        return self.offset - self.onset

    def to_json(self) -> dict[str, Any]:
        """``{"onset": s, "offset": s, "label": str, "confidence": p}`` (0.1 ms, 4 decimals)."""
        return {
            "onset": round(self.onset, 4),
            "offset": round(self.offset, 4),
            "label": self.label,
            "confidence": round(self.confidence, 4),
        }


@dataclass(frozen=True)
class Alert:
    """A streaming decision: an event has started (``kind == "start"``) or ended (``"end"``).

    ``time``: seconds of the stream (since its first sample) at which it was decided; ``onset``:
    the event's estimated onset (s); ``confidence``: mean probability of the event's frames so
    far (start) or in all (end); ``offset`` (end alerts): the event's offset (s), so the start
    and end alerts of one event give back its :class:`Event` (:func:`events_from_alerts`).
    """

    kind: Literal["start", "end"]
    time: float
    onset: float
    confidence: float
    label: str = "siren"
    offset: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "time": round(self.time, 4),
            "onset": round(self.onset, 4),
            "offset": None if self.offset is None else round(self.offset, 4),
            "label": self.label,
            "confidence": round(self.confidence, 4),
        }


class FrameEvent(NamedTuple):
    """An event in frames: ``[start, end)`` (``start`` after the onset look-back) and its mean
    probability."""

    start: int
    end: int
    confidence: float


class FrameAlert(NamedTuple):
    """A decision in frames: ``kind``, the frame whose probability decided it (None: the end of
    the stream), the event's first frame, its end (end alerts) and confidence."""

    kind: Literal["start", "end"]
    frame: int | None
    start: int
    end: int | None
    confidence: float


def find_events(prob: np.ndarray, config: EventConfig, frame_seconds: float) -> list[FrameEvent]:
    """Events of a whole probability curve ``[t]`` (see the module's rule), in order."""
    p = np.asarray(prob, dtype=np.float64).reshape(-1)
    min_frames, min_gap = config.in_frames(frame_seconds)
    segments: list[list[int]] = []
    start = None
    for t, value in enumerate(p):
        if start is None and value > config.on_threshold:
            start = t
        elif start is not None and value < config.off_threshold:
            segments.append([start, t])
            start = None
    if start is not None:
        segments.append([start, len(p)])
    merged: list[list[int]] = []
    for seg in segments:
        if merged and seg[0] - merged[-1][1] < min_gap:
            merged[-1][1] = seg[1]
        else:
            merged.append(seg)
    out, previous_end = [], 0
    for a, b in merged:
        if b - a >= min_frames:
            onset = look_back(p, a, previous_end, config, frame_seconds)
            out.append(FrameEvent(onset, b, float(np.mean(p[a:b]))))
        previous_end = b
    return out


def look_back(
    p: np.ndarray, start: int, floor: int, config: EventConfig, frame_seconds: float
) -> int:
    """The onset frame of an event whose first segment starts at ``start``: back over the
    frames before it above ``config.onset_threshold`` (at most the look-back, not before
    ``floor``). ``p`` needs only the frames before ``start`` (indices as in the stream)."""
    if config.onset_threshold is None:
        return start
    lowest = max(floor, start - config.lookback_frames(frame_seconds))
    onset = start
    while onset > lowest and p[onset - 1] > config.onset_threshold:
        onset -= 1
    return onset


class EventTracker:
    """:func:`find_events` frame by frame, with its state in plain attributes.

    ``push(probabilities [k]) -> [FrameAlert]`` for the next ``k`` frames; ``finish()`` ends
    the stream (an event still open ends at its last frame).
    """

    def __init__(self, config: EventConfig, frame_seconds: float) -> None:
        self.config = config
        self.min_frames, self.min_gap = config.in_frames(frame_seconds)
        self.frame = 0  # index of the next frame
        self.active = False  # inside a raw segment
        self.start: int | None = None  # first frame of the event being built
        self.last_end = 0  # end (exclusive) of its last raw segment, once one ended
        self.total = 0.0  # sum of probabilities over [start, frame)
        self.total_at_end = 0.0  # the same over [start, last_end)
        self.announced = False  # its start alert was given
        self.onset = 0  # its onset after the look-back
        self.previous_end = 0  # where the last event (kept or dropped) ended: the look-back floor
        self.lookback = config.lookback_frames(frame_seconds)
        self.history: deque[float] = deque(maxlen=self.lookback)  # the last frames' p

    def _look_back(self, t: int) -> int:
        """The onset of an event whose first segment starts at frame ``t`` (``look_back``
        over the remembered frames)."""
        if not self.lookback:
            return t
        first = t - len(self.history)  # frame index of history[0]: max(0, t - lookback)
        lowest, onset = max(self.previous_end, first), t
        while onset > lowest and self.history[onset - 1 - first] > self.config.onset_threshold:
            onset -= 1
        return onset

    def _close(self, frame: int | None) -> list[FrameAlert]:
        assert self.start is not None
        length = self.last_end - self.start
        self.start, self.announced = None, False
        self.previous_end = self.last_end
        if length < self.min_frames:  # never announced: it never lasted min_frames
            return []
        return [FrameAlert("end", frame, self.onset, self.last_end, self.total_at_end / length)]

    def push(self, probabilities: np.ndarray) -> list[FrameAlert]:
        """Feed the next frames' probabilities; return the decisions they allow, in order."""
        cfg, out = self.config, []
        for value in np.asarray(probabilities, dtype=np.float64).reshape(-1).tolist():
            t = self.frame
            if self.active:
                if value < cfg.off_threshold:
                    self.active = False
                    self.last_end, self.total_at_end = t, self.total
            elif value > cfg.on_threshold:
                # a new event, or (less than min_gap after the last segment, else it would
                # have been closed already) the next segment of the current one
                if self.start is None:
                    self.start, self.total = t, 0.0
                    self.onset = self._look_back(t)
                self.active = True
            if self.start is not None:
                self.total += value
                if self.active and not self.announced and t + 1 - self.start >= self.min_frames:
                    self.announced = True
                    mean = self.total / (t + 1 - self.start)
                    out.append(FrameAlert("start", t, self.onset, None, mean))
                # no onset from frame t + 1 on could merge: the event is over
                if not self.active and t + 1 - self.last_end >= self.min_gap:
                    out += self._close(t)
            if self.lookback:
                self.history.append(value)
            self.frame += 1
        return out

    def finish(self) -> list[FrameAlert]:
        """End of the stream: close the event being built, if any."""
        if self.start is None:
            return []
        if self.active:
            self.active = False
            self.last_end, self.total_at_end = self.frame, self.total
        return self._close(None)


def events_from_alerts(alerts: list[Alert]) -> list[Event]:
    """The events that a stream's alerts describe: each end alert closes the event its start
    alert opened (an end alert carries the event's onset, offset and confidence)."""
    return [
        Event(a.onset, a.offset, a.label, a.confidence)
        for a in alerts
        if a.kind == "end" and a.offset is not None
    ]
