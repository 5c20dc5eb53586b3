"""Adaptive segmentation and cross-faded overlap-add for segment-wise refinement of a long stem.

StemProver refines a stem segment by segment (DESIGN.md section 6, step 4). Fixed-length chunks
would put seams through drum hits, where a cross-fade between two independently refined versions
is most audible, so the cuts are placed adaptively: each cut lies ``min_seconds`` to
``max_seconds`` after the previous one, at the frame that is quiet and away from transients.

Around each cut the neighbouring segments overlap by ``fade`` samples and are cross-faded with
complementary raised-cosine weights that sum to exactly one, so unmodified pieces give back the
input exactly.

Shapes: ``wave`` is ``[c, samples]`` (or ``[samples]`` for mono); cut positions and segment
bounds are in samples; frame-wise features are ``[frames]``, frame ``i`` covering samples
``[i * frame, (i + 1) * frame)`` (the last frame may be shorter).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from deepsampler.stemprover.checks import check_wave

PieceFn = Callable[[np.ndarray], np.ndarray]
BatchFn = Callable[[list[np.ndarray]], list[np.ndarray]]

# onset-proximity guard: a cut's cross-fade should not come closer than this to a strong onset
ONSET_GUARD_SECONDS = 0.03
# a high-passed log-energy rise of this many dB from one frame to the next counts as an onset
ONSET_THRESHOLD_DB = 6.0
# rises this large (dB) get the full proximity penalty; smaller ones a proportional share
ONSET_FULL_DB = 20.0
# the proximity penalty outweighs the energy term (in [0, 1]), so quiet-but-near-onset loses
ONSET_WEIGHT = 2.0
# dynamic range of the energy term: frames this far below the loudest frame count as silent
ENERGY_RANGE_DB = 60.0


@dataclass(frozen=True)
class SegmentConfig:
    """How a stem is cut into segments.

    Args:
        min_seconds: shortest segment (cut to cut) in seconds.
        max_seconds: longest segment in seconds (``>= min_seconds``).
        fade_seconds: cross-fade length around each cut in seconds (``< min_seconds``).
        frame_seconds: resolution of the energy / onset analysis in seconds.
    """

    min_seconds: float = 2.0
    max_seconds: float = 4.0
    fade_seconds: float = 0.05
    frame_seconds: float = 0.01

    def __post_init__(self) -> None:
        for name in ("min_seconds", "max_seconds", "fade_seconds", "frame_seconds"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"SegmentConfig.{name} must be a finite number, got {value!r}")
        if self.min_seconds <= 0:
            raise ValueError(f"SegmentConfig.min_seconds must be > 0, got {self.min_seconds}")
        if self.max_seconds < self.min_seconds:
            raise ValueError(
                f"SegmentConfig.max_seconds ({self.max_seconds}) must be >= "
                f"min_seconds ({self.min_seconds})"
            )
        if not 0 <= self.fade_seconds < self.min_seconds:
            raise ValueError(
                f"SegmentConfig.fade_seconds must be in [0, min_seconds={self.min_seconds}), "
                f"got {self.fade_seconds}"
            )
        if not 0 < self.frame_seconds <= self.min_seconds:
            raise ValueError(
                f"SegmentConfig.frame_seconds must be in (0, min_seconds={self.min_seconds}], "
                f"got {self.frame_seconds}"
            )

    def samples(self, sample_rate: int) -> tuple[int, int, int, int]:
        """``(min, max, fade, frame)`` in samples at ``sample_rate`` Hz.

        ``fade`` is kept below ``min`` so that the cross-fades around consecutive cuts never
        overlap; ``min`` and ``frame`` are at least one sample.
        """
        _check_rate(sample_rate)
        lo = max(1, round(self.min_seconds * sample_rate))
        hi = max(lo, round(self.max_seconds * sample_rate))
        fade = min(round(self.fade_seconds * sample_rate), lo - 1)
        frame = max(1, round(self.frame_seconds * sample_rate))
        return lo, hi, fade, frame


@dataclass
class Segment:
    """One segment ``[start, end)`` in samples, cross-fade margins included."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start


def _check_rate(sample_rate: int) -> None:
    if not isinstance(sample_rate, (int, np.integer)) or sample_rate < 1:
        raise ValueError(f"sample_rate must be a positive integer in Hz, got {sample_rate!r}")


def _as_2d(wave: np.ndarray) -> np.ndarray:
    """Validate a ``[samples]`` or ``[c, samples]`` wave and return it as ``[c, samples]``."""
    wave = check_wave("wave", wave)
    return wave[None] if wave.ndim == 1 else wave


def _frame_power(x: np.ndarray, frame: int) -> np.ndarray:
    """Mean power per frame of ``[c, samples]`` -> ``[frames]`` (channels averaged)."""
    n = x.shape[-1]
    frames = -(-n // frame)
    power = np.square(x.astype(np.float64)).mean(axis=0)
    padded = np.zeros(frames * frame)
    padded[:n] = power
    sums = padded.reshape(frames, frame).sum(axis=1)
    counts = np.full(frames, frame, dtype=np.float64)
    counts[-1] = n - (frames - 1) * frame
    return sums / counts


def _frame_size(sample_rate: int, frame_seconds: float) -> int:
    _check_rate(sample_rate)
    if not frame_seconds > 0:
        raise ValueError(f"frame_seconds must be > 0, got {frame_seconds}")
    return max(1, round(frame_seconds * sample_rate))


def frame_energy(wave: np.ndarray, sample_rate: int, frame_seconds: float = 0.01) -> np.ndarray:
    """Mean power per frame (linear, channels averaged): ``[c, samples]`` -> ``[frames]``."""
    return _frame_power(_as_2d(wave), _frame_size(sample_rate, frame_seconds))


def onset_strength(wave: np.ndarray, sample_rate: int, frame_seconds: float = 0.01) -> np.ndarray:
    """Positive log-energy flux of the high-passed signal in dB: ``[c, samples]`` -> ``[frames]``.

    The first difference acts as a high-pass (pre-emphasis), so percussive attacks and clicks
    stand out against sustained low-frequency content; frame ``i``'s value is the rise in dB from
    frame ``i - 1`` (0 for the first frame and for falls). Levels more than ``ENERGY_RANGE_DB``
    below the loudest frame are clamped, so rises out of near-silence do not count as onsets.
    """
    x = _as_2d(wave)
    frame = _frame_size(sample_rate, frame_seconds)
    hp = np.diff(x, axis=-1, prepend=x[..., :1])
    power = _frame_power(hp, frame)
    floor = max(float(power.max()) * 10 ** (-ENERGY_RANGE_DB / 10), np.finfo(np.float64).tiny)
    level = 10 * np.log10(np.maximum(power, floor))
    flux = np.zeros_like(level)
    flux[1:] = np.maximum(level[1:] - level[:-1], 0.0)
    return flux


def _cut_cost(x: np.ndarray, sample_rate: int, frame: int, fade: int) -> np.ndarray:
    """Cost per frame of placing a cut (and its cross-fade) there: ``[frames]``, >= 0."""
    frame_seconds = frame / sample_rate
    power = _frame_power(x, frame)
    peak = float(power.max())
    if peak <= 0:
        return np.zeros(len(power))
    # quiet term in [0, 1]: 0 at or below ENERGY_RANGE_DB under the peak, 1 at the peak
    level = 10 * np.log10(np.maximum(power / peak, 10 ** (-ENERGY_RANGE_DB / 10)))
    quiet = 1.0 + level / ENERGY_RANGE_DB
    flux = onset_strength(x, sample_rate, frame_seconds)
    strength = np.where(flux >= ONSET_THRESHOLD_DB, np.minimum(flux / ONSET_FULL_DB, 1.0), 0.0)
    guard = math.ceil(ONSET_GUARD_SECONDS * sample_rate / frame)
    near = _running_max(strength, guard)
    cost = quiet + ONSET_WEIGHT * near
    # a cut is only as good as the worst frame its cross-fade covers
    return _running_max(cost, math.ceil(fade / 2 / frame))


def _running_max(values: np.ndarray, radius: int) -> np.ndarray:
    """Maximum over ``[i - radius, i + radius]`` for each ``i`` (edges clamped)."""
    if radius <= 0 or len(values) == 0:
        return values.copy()
    padded = np.pad(values, radius, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1)
    return windows.max(axis=1)


def adaptive_boundaries(
    wave: np.ndarray, sample_rate: int, config: SegmentConfig | None = None
) -> np.ndarray:
    """Cut positions in samples, ``[cuts]`` int64, strictly increasing, 0 and length excluded.

    Greedy from the start: each cut lies ``min_seconds`` to ``max_seconds`` after the previous
    one (or the start), at the frame centre that minimises a cost = frame energy relative to the
    loudest frame (quiet is cheap) + a penalty for lying within ``ONSET_GUARD_SECONDS`` of a
    strong onset, taken as the worst frame under the cut's cross-fade. Cuts are also kept at
    least ``min_seconds`` before the end; a remainder that cannot satisfy both limits is merged
    into the last segment (which then exceeds ``max_seconds``; only possible when
    ``max_seconds < 2 * min_seconds``). Inputs no longer than ``max_seconds`` get no cut.
    """
    config = config or SegmentConfig()
    x = _as_2d(wave)
    lo, hi, fade, frame = config.samples(sample_rate)
    length = x.shape[-1]
    if length <= hi:
        return np.zeros(0, dtype=np.int64)
    cost = _cut_cost(x, sample_rate, frame, fade)
    centres = np.arange(len(cost)) * frame + frame // 2
    cuts: list[int] = []
    prev = 0
    while length - prev > hi:
        first, last = prev + lo, min(prev + hi, length - lo)
        if first > last:
            break  # remainder merged into the last segment
        idx = np.flatnonzero((centres >= first) & (centres <= last))
        if len(idx) == 0:
            cut = (first + last) // 2
        else:
            # tie-break flat stretches (silence) towards the middle of the allowed range
            mid = (first + last) / 2
            tie = 1e-3 * np.abs(centres[idx] - mid) / max(last - first, 1)
            cut = int(centres[idx[np.argmin(cost[idx] + tie)]])
        cuts.append(cut)
        prev = cut
    return np.asarray(cuts, dtype=np.int64)


def plan_segments(length: int, cuts: Sequence[int] | np.ndarray, fade: int) -> list[Segment]:
    """Segments covering ``[0, length)`` in samples, overlapping by ``fade`` around each cut.

    Around cut ``p`` the earlier segment ends at ``p + fade - fade // 2`` and the later one
    starts at ``p - fade // 2``. Cuts must be strictly increasing, inside ``(0, length)`` and far
    enough apart (and from the ends) that the cross-fade regions stay disjoint and in range.
    """
    if length < 1:
        raise ValueError(f"length must be >= 1 sample, got {length}")
    if fade < 0:
        raise ValueError(f"fade must be >= 0 samples, got {fade}")
    cuts = [int(c) for c in np.asarray(cuts, dtype=np.int64).reshape(-1)]
    left, right = fade // 2, fade - fade // 2
    bounds = [0, *cuts, length]
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        if b <= a:
            raise ValueError(f"cuts must be strictly increasing inside (0, {length}), got {cuts}")
    for k, c in enumerate(cuts):
        # each cross-fade region [c - left, c + right) must fit between its neighbours' regions
        before = 0 if k == 0 else cuts[k - 1] + right
        after = length if k == len(cuts) - 1 else cuts[k + 1] - left
        if c - left < before or c + right > after:
            raise ValueError(
                f"cut at {c} is too close to its neighbours for a {fade}-sample cross-fade"
            )
    segments = []
    for k in range(len(bounds) - 1):
        start = bounds[k] - (left if k > 0 else 0)
        end = bounds[k + 1] + (right if k < len(bounds) - 2 else 0)
        segments.append(Segment(start, end))
    return segments


def fade_in_window(fade: int) -> np.ndarray:
    """Raised-cosine fade-in ``[fade]`` in (0, 1); the matching fade-out is ``1 - w``."""
    n = np.arange(fade, dtype=np.float64)
    return 0.5 - 0.5 * np.cos(np.pi * (n + 0.5) / fade)


def overlap_add(
    pieces: Sequence[np.ndarray], segments: Sequence[Segment], length: int, fade: int
) -> np.ndarray:
    """Cross-fade processed ``pieces`` (``[..., segment.length]`` each) into ``[..., length]``.

    Outside the overlaps each piece is copied; inside, the output is ``a + w * (b - a)`` with a
    raised-cosine fade-in ``w`` (weights ``1 - w`` and ``w`` sum to one), written this way so
    that identical overlapping samples come back bit-exactly: the unmodified slices of a signal
    reconstruct it exactly.
    """
    if len(pieces) != len(segments) or not segments:
        raise ValueError(f"need one piece per segment, got {len(pieces)} and {len(segments)}")
    if segments[0].start != 0 or segments[-1].end != length:
        raise ValueError(f"segments must cover [0, {length}), got {segments[0]}..{segments[-1]}")
    lead = np.asarray(pieces[0]).shape[:-1]
    # integer pieces are cross-faded in float (a fade of integers is not an integer)
    dtype = np.result_type(np.float32, *[np.asarray(p).dtype for p in pieces])
    for p, s in zip(pieces, segments, strict=True):
        if np.asarray(p).shape != (*lead, s.length):
            raise ValueError(
                f"piece shape {np.asarray(p).shape} does not match segment {s} "
                f"(expected {(*lead, s.length)})"
            )
    for a, b in zip(segments[:-1], segments[1:], strict=True):
        if a.end - b.start != fade:
            raise ValueError(f"segments {a} and {b} must overlap by exactly {fade} samples")
    last = len(segments) - 1
    for k, s in enumerate(segments):
        if s.length < (fade if k > 0 else 0) + (fade if k < last else 0):
            raise ValueError(f"segment {s} is shorter than its cross-fades ({fade} samples each)")
    out = np.empty((*lead, length), dtype=dtype)
    w = fade_in_window(fade).astype(dtype)
    for k, (piece, seg) in enumerate(zip(pieces, segments, strict=True)):
        piece = np.asarray(piece, dtype=dtype)
        head = fade if k > 0 else 0
        tail = fade if k < last else 0
        out[..., seg.start + head : seg.end - tail] = piece[..., head : seg.length - tail]
        if k > 0 and fade > 0:
            prev = np.asarray(pieces[k - 1], dtype=dtype)[..., -fade:]
            cur = piece[..., :fade]
            out[..., seg.start : seg.start + fade] = prev + w * (cur - prev)
    return out


def process_in_segments(
    wave: np.ndarray,
    sample_rate: int,
    fn: PieceFn | None = None,
    config: SegmentConfig | None = None,
    batch_size: int | None = None,
    batch_fn: BatchFn | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Apply ``fn`` (or ``batch_fn``) segment by segment and overlap-add: ``[c, samples]`` in/out.

    Args:
        wave: ``[c, samples]`` (or ``[samples]``) float, finite.
        sample_rate: in Hz.
        fn: maps one piece ``[c, n]`` to ``[c, n]``.
        config: segmentation settings (default :class:`SegmentConfig`).
        batch_size: with ``batch_fn``, how many pieces per call (``None``: all in one call).
        batch_fn: maps a list of pieces (of different lengths) to a list of the same shapes, so
            that inference can run several segments at once. Give exactly one of ``fn`` and
            ``batch_fn``.
        progress: show a tqdm bar over segments.

    Returns:
        ``[c, samples]`` in the pieces' dtype; an identity ``fn`` gives back ``wave`` exactly.
    """
    if (fn is None) == (batch_fn is None):
        raise ValueError("give exactly one of fn and batch_fn")
    if batch_size is not None and (batch_fn is None or batch_size < 1):
        raise ValueError(f"batch_size needs batch_fn and must be >= 1, got {batch_size}")
    config = config or SegmentConfig()
    _as_2d(wave)  # validate before anything else
    wave = np.asarray(wave)
    length = wave.shape[-1]
    _, _, fade, _ = config.samples(sample_rate)
    cuts = adaptive_boundaries(wave, sample_rate, config)
    segments = plan_segments(length, cuts, fade)
    inputs = [wave[..., s.start : s.end] for s in segments]
    step = len(inputs) if batch_fn is not None and batch_size is None else (batch_size or 1)

    from tqdm import tqdm

    outputs: list[np.ndarray] = []
    with tqdm(total=len(inputs), disable=not progress, desc="segments", unit="seg") as bar:
        for i in range(0, len(inputs), step):
            group = inputs[i : i + step]
            results = [fn(p) for p in group] if fn is not None else list(batch_fn(group))
            if len(results) != len(group):
                raise ValueError(f"batch_fn returned {len(results)} pieces for {len(group)}")
            for p, r in zip(group, results, strict=True):
                r = np.asarray(r)
                if r.shape != p.shape:
                    raise ValueError(f"fn changed a piece's shape from {p.shape} to {r.shape}")
                outputs.append(r)
            bar.update(len(group))
    return overlap_add(outputs, segments, length, fade)
