"""Adaptive segmentation and overlap-add: identity, length limits, cut placement, batching."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepsampler.stemprover.segments import (
    Segment,
    SegmentConfig,
    adaptive_boundaries,
    frame_energy,
    onset_strength,
    overlap_add,
    plan_segments,
    process_in_segments,
)

SR = 16000


def _click_train(seconds: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Clicks 0.2-0.3 s apart, each starting a decaying tone: ``[2, samples]``, click positions.

    The quietest frames lie just before each click (the previous note has decayed), so a cut
    placed by energy alone would land on the next attack; the onset penalty must move it away.
    """
    n = int(seconds * SR)
    x = np.zeros(n)
    clicks = []
    pos = 0.1
    while pos < seconds - 0.05:
        clicks.append(int(pos * SR))
        pos += rng.uniform(0.2, 0.3)
    clicks = np.asarray(clicks)
    for c in clicks:
        t = np.arange(n - c) / SR
        x[c:] += 0.3 * np.sin(2 * np.pi * 220 * t) * np.exp(-t / 0.04)
        x[c : c + 40] += 0.8 * np.exp(-np.arange(min(40, n - c)) / 8.0)
    x += 1e-4 * rng.standard_normal(n)
    return np.stack([x, 0.9 * x]).astype(np.float32), clicks


@settings(deadline=None, max_examples=25)
@given(
    length=st.integers(1, 40000),
    channels=st.sampled_from([0, 1, 2]),  # 0: a 1-D wave
    rate=st.sampled_from([1000, 8000, 16000]),
    min_s=st.floats(0.05, 0.6),
    span=st.floats(1.0, 3.0),
    fade_frac=st.floats(0.0, 0.9),
    frame_frac=st.floats(0.01, 1.0),
    seed=st.integers(0, 2**16),
)
def test_identity_overlap_add_is_exact(
    length, channels, rate, min_s, span, fade_frac, frame_frac, seed
):
    rng = np.random.default_rng(seed)
    shape = (length,) if channels == 0 else (channels, length)
    wave = rng.standard_normal(shape).astype(np.float32)
    wave[..., length // 3 : length // 2] = 0.0  # a silent stretch, so cuts are not all alike
    config = SegmentConfig(min_s, min_s * span, min_s * fade_frac, min_s * frame_frac)
    out = process_in_segments(wave, rate, lambda p: p, config)
    assert out.dtype == wave.dtype
    np.testing.assert_array_equal(out, wave)


@settings(deadline=None, max_examples=20)
@given(
    length=st.integers(1, 60000),
    min_s=st.floats(0.1, 0.5),
    span=st.floats(2.0, 3.0),
    seed=st.integers(0, 2**16),
)
def test_every_segment_length_within_range(length, min_s, span, seed):
    rng = np.random.default_rng(seed)
    wave = rng.standard_normal((2, length)) * rng.uniform(0, 1, (1, length))
    config = SegmentConfig(min_s, min_s * span, 0.02, 0.01)
    lo, hi, fade, _ = config.samples(SR)
    cuts = adaptive_boundaries(wave, SR, config)
    bounds = np.concatenate([[0], cuts, [length]])
    spans = np.diff(bounds)
    if length <= hi:
        assert len(cuts) == 0
    else:
        assert np.all(spans >= lo) and np.all(spans <= hi), (spans, lo, hi)
    segments = plan_segments(length, cuts, fade)
    assert segments[0].start == 0 and segments[-1].end == length
    for a, b in zip(segments[:-1], segments[1:], strict=True):
        assert a.end - b.start == fade


@pytest.mark.parametrize("fade", [0.0, 0.05])  # without a fade only the onset penalty helps
def test_cuts_avoid_transients(fade):
    wave, clicks = _click_train(30.0, np.random.default_rng(1))
    cuts = adaptive_boundaries(wave, SR, SegmentConfig(fade_seconds=fade))
    assert len(cuts) >= 6
    gaps = np.abs(cuts[:, None] - clicks[None, :]).min(axis=1) / SR
    assert np.all(gaps > 0.02), gaps


def test_cuts_prefer_a_silent_gap():
    rng = np.random.default_rng(2)
    n = 10 * SR
    wave = rng.standard_normal((2, n)) * (0.5 + 0.4 * np.sin(np.arange(n) / SR * 7.0))
    gap = (int(3.1 * SR), int(3.3 * SR))
    wave[:, gap[0] : gap[1]] = 0.0
    cuts = adaptive_boundaries(wave.astype(np.float32), SR, SegmentConfig())
    assert gap[0] < cuts[0] < gap[1]


def test_onset_strength_peaks_at_clicks():
    wave, clicks = _click_train(3.0, np.random.default_rng(3))
    flux = onset_strength(wave, SR, 0.01)
    energy = frame_energy(wave, SR, 0.01)
    assert flux.shape == energy.shape == (int(np.ceil(wave.shape[-1] / 160)),)
    assert np.all(flux >= 0)
    strong = set(np.flatnonzero(flux > 10.0))
    assert strong == {int(c // 160) for c in clicks}


@pytest.mark.parametrize("length", [1, 100, SR, int(2.5 * SR)])
def test_short_input_is_one_segment(length):
    wave = np.random.default_rng(4).standard_normal((2, length)).astype(np.float32)
    assert len(adaptive_boundaries(wave, SR, SegmentConfig(2.0, 4.0))) == 0
    out = process_in_segments(wave, SR, lambda p: 2 * p)
    np.testing.assert_array_equal(out, 2 * wave)


@pytest.mark.parametrize("batch_size", [None, 1, 2, 5])
def test_batched_path_equals_unbatched(batch_size):
    rng = np.random.default_rng(5)
    wave = (rng.standard_normal((2, 12 * SR)) * 0.3).astype(np.float32)
    config = SegmentConfig(1.0, 2.0, 0.05, 0.01)

    def fn(p: np.ndarray) -> np.ndarray:
        return np.tanh(3 * p) + p.mean()  # nonlinear and piece-dependent

    calls = []

    def batch_fn(pieces: list[np.ndarray]) -> list[np.ndarray]:
        calls.append(len(pieces))
        return [fn(p) for p in pieces]

    single = process_in_segments(wave, SR, fn, config)
    batched = process_in_segments(wave, SR, config=config, batch_size=batch_size, batch_fn=batch_fn)
    np.testing.assert_array_equal(single, batched)
    n_segments = len(adaptive_boundaries(wave, SR, config)) + 1
    assert sum(calls) == n_segments
    assert max(calls) == (n_segments if batch_size is None else min(batch_size, n_segments))


def test_crossfade_blends_between_pieces():
    segments = plan_segments(100, [50], 10)
    assert segments == [Segment(0, 55), Segment(45, 100)]
    out = overlap_add([np.zeros(55), np.ones(55)], segments, 100, 10)
    assert np.all(out[:45] == 0) and np.all(out[55:] == 1)
    ramp = out[45:55]
    assert np.all(np.diff(ramp) > 0) and 0 < ramp[0] < 0.1 and 0.9 < ramp[-1] < 1


@pytest.mark.parametrize(
    "wave",
    [
        np.array([[0.0, np.nan, 0.0]]),
        np.zeros((2, 0)),
        np.zeros((1, 2, 100)),
        np.zeros((2, 100), dtype=np.int16),
    ],
    ids=["nan", "empty", "3d", "int"],
)
def test_bad_inputs_raise(wave):
    with pytest.raises(ValueError):
        process_in_segments(wave, SR, lambda p: p)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_seconds": 0.0},
        {"min_seconds": 3.0, "max_seconds": 2.0},
        {"fade_seconds": 2.0},
        {"fade_seconds": -0.1},
        {"frame_seconds": 0.0},
        {"max_seconds": float("nan")},
    ],
)
def test_bad_config_raises(kwargs):
    with pytest.raises(ValueError, match="SegmentConfig"):
        SegmentConfig(**kwargs)


def test_misuse_raises():
    wave = np.zeros((1, 5 * SR), dtype=np.float32)
    with pytest.raises(ValueError, match="exactly one"):
        process_in_segments(wave, SR)
    with pytest.raises(ValueError, match="shape"):
        process_in_segments(wave, SR, lambda p: p[..., :-1])
    with pytest.raises(ValueError, match="increasing"):
        plan_segments(100, [60, 40], 4)
    with pytest.raises(ValueError, match="too close"):
        plan_segments(100, [50, 52], 10)
