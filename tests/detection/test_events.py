"""Events from probability curves: the hysteresis rule on hand-made curves, and the streaming
tracker giving exactly the offline events, in any blocks, with alerts as early as allowed."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepsampler.detection import (
    Alert,
    Event,
    EventConfig,
    EventTracker,
    events_from_alerts,
    find_events,
)
from deepsampler.detection.events import FrameEvent

FRAME = 0.1  # seconds per frame in these tests: lengths below are in tenths of a second


def config(
    min_frames: int = 1,
    min_gap: int = 0,
    on: float = 0.5,
    off: float = 0.3,
    onset: float | None = None,
    lookback: int = 30,
):
    return EventConfig(on, off, min_frames * FRAME, min_gap * FRAME, onset, lookback * FRAME)


def curve(*runs: tuple[float, int]) -> np.ndarray:
    """``curve((0.1, 3), (0.9, 5))``: 3 frames at 0.1, then 5 at 0.9."""
    return np.concatenate([np.full(n, v) for v, n in runs])


def track(prob: np.ndarray, cfg: EventConfig, cuts: list[int] = ()) -> tuple[list, list]:
    """Run an EventTracker over ``prob`` cut at ``cuts``: (events, alerts in frames)."""
    tracker = EventTracker(cfg, FRAME)
    alerts = []
    edges = [0, *sorted(cuts), len(prob)]
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        alerts += tracker.push(prob[a:b])
    alerts += tracker.finish()
    events = [FrameEvent(a.start, a.end, a.confidence) for a in alerts if a.kind == "end"]
    return events, alerts


def spans(events) -> list[tuple[int, int]]:
    return [(e.start, e.end) for e in events]


def test_a_bump_is_one_event_with_its_mean_probability():
    p = curve((0.1, 4), (0.8, 3), (0.6, 2), (0.1, 4))
    (event,) = find_events(p, config(), FRAME)
    assert (event.start, event.end) == (4, 9)
    assert event.confidence == pytest.approx((3 * 0.8 + 2 * 0.6) / 5)


def test_hysteresis_keeps_an_event_through_dips_above_the_off_threshold():
    # 0.4 is below on (0.5) but above off (0.3): it neither starts nor ends an event
    p = curve((0.4, 3), (0.9, 2), (0.4, 3), (0.9, 2), (0.2, 2), (0.4, 3))
    assert spans(find_events(p, config(), FRAME)) == [(3, 10)]
    # with equal thresholds the dips split it
    assert spans(find_events(p, config(on=0.5, off=0.5), FRAME)) == [(3, 5), (8, 10)]


def test_short_events_are_dropped_and_close_gaps_merged():
    p = curve((0.0, 2), (0.9, 2), (0.0, 2), (0.9, 3), (0.0, 5), (0.9, 1), (0.0, 3))
    assert spans(find_events(p, config(), FRAME)) == [(2, 4), (6, 9), (14, 15)]
    assert spans(find_events(p, config(min_frames=3), FRAME)) == [(6, 9)]
    # a gap of 2 frames merges with min_gap 3 (gap < min_gap), the 5-frame one does not
    merged = find_events(p, config(min_frames=3, min_gap=3), FRAME)
    assert spans(merged) == [(2, 9)]
    assert merged[0].confidence == pytest.approx(5 * 0.9 / 7)


def test_an_event_open_at_the_end_ends_with_the_signal():
    p = curve((0.1, 3), (0.9, 4))
    assert spans(find_events(p, config(), FRAME)) == [(3, 7)]
    assert spans(track(p, config())[0]) == [(3, 7)]


def test_alerts_come_as_early_as_the_rule_allows():
    cfg = config(min_frames=4, min_gap=3)
    p = curve((0.1, 2), (0.9, 6), (0.1, 10))
    _, alerts = track(p, cfg)
    start, end = alerts
    # start: once the event has lasted min_frames (frames 2..5), decided by frame 5
    assert (start.kind, start.frame, start.start) == ("start", 5, 2)
    # end: its last frame above off is 7; no onset at frames 8..10 can merge any more, so the
    # decision comes with frame 8 + min_gap - 1 = 10
    assert (end.kind, end.frame, end.start, end.end) == ("end", 10, 2, 8)
    # an event that never lasts min_frames is never announced
    assert track(curve((0.9, 3), (0.1, 5)), cfg)[1] == []


def test_event_config_refuses_inverted_thresholds():
    with pytest.raises(ValueError, match="off_threshold <= on_threshold"):
        EventConfig(on_threshold=0.3, off_threshold=0.5)
    assert config(on=0.6, off=0.3).with_threshold(0.2).off_threshold == 0.2


def test_onset_looks_back_over_the_rise_but_not_into_the_last_event():
    p = curve((0.0, 3), (0.2, 4), (0.8, 4), (0.0, 2), (0.2, 2), (0.9, 3), (0.0, 3))
    assert spans(find_events(p, config(), FRAME)) == [(7, 11), (15, 18)]
    assert spans(find_events(p, config(onset=0.1), FRAME)) == [(3, 11), (13, 18)]
    assert spans(find_events(p, config(onset=0.1, lookback=2), FRAME)) == [(5, 11), (13, 18)]
    assert spans(find_events(p, config(onset=0.3), FRAME)) == [(7, 11), (15, 18)]
    # a gap-merged second segment never looks back: only an event's first segment does
    assert spans(find_events(p, config(min_gap=5, onset=0.1), FRAME)) == [(3, 18)]
    events, _ = track(p, config(onset=0.1, lookback=2), [4, 9, 14])
    assert spans(events) == [(5, 11), (13, 18)]
    with pytest.raises(ValueError, match="onset_threshold"):
        EventConfig(0.5, 0.3, onset_threshold=0.6)


def test_end_alerts_give_back_the_events():
    alerts = [
        Alert("start", 1.0, 0.5, 0.8),
        Alert("end", 3.0, 0.5, 0.7, offset=2.5),
        Alert("start", 5.0, 4.5, 0.9),
    ]
    assert events_from_alerts(alerts) == [Event(0.5, 2.5, "siren", 0.7)]
    assert Event(0.5, 2.5, confidence=0.71234567).to_json() == {
        "onset": 0.5,
        "offset": 2.5,
        "label": "siren",
        "confidence": 0.7123,
    }


# values on and around the thresholds, so ties (p == on, p == off) are exercised too
LEVELS = st.sampled_from([0.0, 0.1, 0.3, 0.4, 0.5, 0.6, 0.95])


@settings(max_examples=300, deadline=None)
@given(
    prob=st.lists(LEVELS, max_size=80),
    min_frames=st.integers(1, 6),
    min_gap=st.integers(0, 6),
    thresholds=st.sampled_from([(0.5, 0.3), (0.5, 0.5), (0.6, 0.1)]),
    cuts=st.lists(st.integers(0, 80), max_size=6),
    onset=st.sampled_from([None, 0.05, 0.3]),
    lookback=st.integers(0, 8),
)
def test_streaming_tracker_equals_offline_events(
    prob, min_frames, min_gap, thresholds, cuts, onset, lookback
):
    p = np.array(prob, dtype=np.float64)
    cfg = config(min_frames, min_gap, *thresholds, onset=onset, lookback=lookback)
    offline = find_events(p, cfg, FRAME)
    events, alerts = track(p, cfg, [c for c in cuts if c <= len(p)])
    assert spans(events) == spans(offline)
    assert [e.confidence for e in events] == pytest.approx([e.confidence for e in offline])
    # the rule itself: long enough, apart enough, started above on (or looked back over
    # frames above the onset threshold, at most lookback of them, to a frame above on)
    plain = find_events(p, config(min_frames, min_gap, *thresholds), FRAME)
    assert [e.end for e in offline] == [e.end for e in plain]
    for e, q in zip(offline, plain, strict=True):
        assert q.end - q.start >= min_frames and p[q.start] > cfg.on_threshold
        assert q.start - lookback <= e.start <= q.start
        assert (p[e.start : q.start] > (onset or 1.0)).all()
    for a, b in zip(offline, offline[1:], strict=False):
        assert b.start >= a.end
    # every event is announced once, before (or when) it ends, in order
    starts = [a for a in alerts if a.kind == "start"]
    assert [a.start for a in starts] == [e.start for e in offline]
    for s, e in zip(starts, (a for a in alerts if a.kind == "end"), strict=True):
        # no earlier than min_frames after its onset (later only when a gap intervened)
        assert s.frame >= s.start + min_frames - 1
        assert e.frame is None or e.frame >= s.frame
