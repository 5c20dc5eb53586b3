"""Artifact detectors for separated stems (DESIGN.md section 6, step 2).

One detector per artifact type in :data:`ARTIFACTS`. Each returns an :class:`ArtifactMap`: a
``[bands, frames]`` map in ``[0, 1]`` over log-spaced frequency bands, the per-band thresholds it
used and a severity. :func:`detect_artifacts` runs them all and turns severities into adapter
weights (:class:`DetectionReport`).

Every threshold is *adaptive*: it is derived from the signals' own statistics — a robust spread
(``1.4826 * MAD``, the standard deviation for Gaussian data) times ``DetectorConfig.k``, or the
spread a statistic would have if the artifact were absent — and never a fixed absolute level.
Each rule also has a floor (``min_*`` in :class:`DetectorConfig`), a relative quantity (dB,
coherence, a fraction), so that a perfectly clean signal, whose spread is ~0, does not flag its
float rounding. A statistic's own distribution would hide an artifact that covers most of the
signal, so the spread is taken from something the artifact does not touch: the mixture, other
bands, a null model, or the side of the distribution the artifact does not push.

- ``bleed``: the stem and the mixture residual ``mixture - stem`` (the other sources) share
  coherent content: the normalised real cross-spectrum of stem and residual over a short
  band-by-frames patch, i.e. the share of the stem's amplitude that moves in phase with the
  residual. Threshold: ``k`` times its standard deviation if the two were independent.
- ``musical_noise``: isolated, short-lived spectral peaks (what a thresholded mask leaves): bins
  standing above both their time and their frequency neighbourhood medians by a margin read
  from the mixture's bins (capped), counted per band over a few frames against the mixture's
  own rate of such peaks.
- ``band_limit``: missing highs: the stem-to-mixture level ratio collapses above a band and
  never recovers (without a mixture: the stem's level falls off a cliff below the trend of its
  own lower bands); threshold from how much the ratio wanders across the lower bands.
- ``phase_smear``: impulsive transients lose their phase alignment: at a band's onsets the
  group delay of a clean transient is the same in every bin; its magnitude-weighted circular
  concentration is compared with the mixture's (or the stem's best bands'); threshold from
  the estimates' noise.

Inputs are ``[channels, samples]`` (or ``[samples]``) float arrays at ``sample_rate`` Hz; channels
are averaged. Maps are ``[n, t]``: ``n`` bands, ``t`` frames (``ceil(samples / hop) + 1``, frame
``t`` centred on sample ``t * hop``).
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from deepsampler.audio.bands import log_band_edges
from deepsampler.audio.stft import STFT, frame_count
from deepsampler.stemprover.degradations import ARTIFACTS

_MAD_TO_SIGMA = 1.4826  # MAD of a Gaussian times this is its standard deviation


@dataclass(frozen=True)
class DetectorConfig:
    """Analysis geometry and threshold rules of the detectors.

    Args:
        n_fft, hop: STFT size and hop in samples (periodic Hann, centred frames).
        bands: number of log-spaced bands from ``fmin_hz`` to Nyquist; band 0 also holds the
            bins below ``fmin_hz``.
        fmin_hz: lower edge of band 1's log spacing, in Hz.
        k: MAD (or null standard deviation) multiplier of every adaptive threshold.
        activity_db: band-frames more than this far below the loudest band-frame are silent
            and never flagged.
        bleed_frames: frames in the bleed patch (centred; odd).
        min_coherence: floor of the bleed threshold (coherence, 0-1).
        residual_floor_db: bleed ignores band-frames whose residual is more than this far below
            the mixture (nothing left to leak).
        context_frames, context_bins: musical-noise neighbourhood (odd sizes): a peak must stand
            above the median of this many frames (same bin) and this many bins (same frame).
        min_peak_db, max_peak_db: floor and cap of the musical-noise peak margin in dB.
        density_frames: frames over which flagged peaks are counted (odd).
        min_density: floor of the musical-noise density threshold (fraction of bins).
        min_drop_db: floor of the band-limit threshold (dB), when a mixture is given.
        self_min_drop_db: the same without a mixture (the self-reference is rougher).
        smooth_frames: median smoothing of band-limit levels over frames (odd).
        min_coherence_loss: floor of the phase-smear threshold (loss of coherence, 0-1).
        min_flux_db: floor of the phase-smear onset threshold: a band's level rise in dB over
            the quietest of the previous ``n_fft // hop`` frames.
        min_severity, full_severity: severities mapping to adapter weight 0 and 1 (linear
            between; below ``min_severity`` the adapter is off).
    """

    n_fft: int = 2048
    hop: int = 512
    bands: int = 8
    fmin_hz: float = 60.0
    k: float = 3.0
    activity_db: float = 60.0
    bleed_frames: int = 9
    min_coherence: float = 0.15
    residual_floor_db: float = 30.0
    context_frames: int = 9
    context_bins: int = 15
    min_peak_db: float = 6.0
    max_peak_db: float = 12.0
    density_frames: int = 5
    min_density: float = 0.002
    min_drop_db: float = 15.0
    self_min_drop_db: float = 30.0
    smooth_frames: int = 5
    min_coherence_loss: float = 0.25
    min_flux_db: float = 9.0
    min_severity: float = 0.02
    full_severity: float = 0.25

    def __post_init__(self) -> None:
        if self.n_fft < 16 or not 1 <= self.hop <= self.n_fft // 2:
            raise ValueError(
                f"need n_fft >= 16 and 1 <= hop <= n_fft/2, got n_fft={self.n_fft} hop={self.hop}"
            )
        if self.bands < 2:
            raise ValueError(f"bands must be >= 2, got {self.bands}")
        odd = ("bleed_frames", "context_frames", "context_bins", "density_frames", "smooth_frames")
        for name in odd:
            value = getattr(self, name)
            if value < 1 or value % 2 == 0:
                raise ValueError(f"{name} must be a positive odd number, got {value}")
        positive = ("fmin_hz", "k", "activity_db", "residual_floor_db", "min_drop_db")
        for name in (*positive, "self_min_drop_db", "min_flux_db"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("min_coherence", "min_coherence_loss", "min_density"):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"{name} must be in (0, 1), got {getattr(self, name)}")
        if not 0 <= self.min_peak_db <= self.max_peak_db:
            raise ValueError(
                "need 0 <= min_peak_db <= max_peak_db, got "
                f"{self.min_peak_db} and {self.max_peak_db}"
            )
        if not 0 <= self.min_severity < self.full_severity <= 1:
            raise ValueError(
                "need 0 <= min_severity < full_severity <= 1, got "
                f"{self.min_severity} and {self.full_severity}"
            )


@dataclass
class ArtifactMap:
    """Where one artifact type was found.

    Attributes:
        name: the artifact, one of :data:`ARTIFACTS`.
        band_edges_hz: ``[n + 1]`` band edges in Hz (0 to Nyquist).
        frame_times_s: ``[t]`` frame centres in seconds.
        map: ``[n, t]`` in ``[0, 1]``: 0 below the threshold, rising linearly to 1 at twice it;
            0 in silent band-frames (and, for phase smear, away from onsets).
        threshold: ``[n]`` the adaptive threshold of each band, in the units of the detector's
            statistic (see :data:`UNITS`); NaN where a band cannot be judged.
        severity: in ``[0, 1]``: the mean over non-silent bands of ``band_scores``.
        band_scores: ``[n]`` in ``[0, 1]``: per band, the mean of ``map`` over its non-silent
            frames, weighted by level (dB above the silence floor).
        note: why the map is empty or how it was computed, when that is not the default.
    """

    name: str
    band_edges_hz: np.ndarray
    frame_times_s: np.ndarray
    map: np.ndarray
    threshold: np.ndarray
    severity: float
    band_scores: np.ndarray = field(default_factory=lambda: np.zeros(0))
    note: str = ""

    def bands_flagged(self, min_fraction: float = 0.1) -> list[int]:
        """Bands whose level-weighted flagged fraction (``band_scores``) is >= ``min_fraction``."""
        return [int(b) for b in np.flatnonzero(self.band_scores >= min_fraction)]


# what each detector's statistic (and threshold) measures
UNITS = {
    "bleed": "coherence of stem and residual (0-1)",
    "musical_noise": "fraction of band bins that are isolated peaks",
    "band_limit": "level drop in dB",
    "phase_smear": "loss of group-delay coherence (0-1)",
}


@dataclass
class DetectionReport:
    """All detectors' maps and the adapter weight of each artifact (0 when not detected)."""

    maps: dict[str, ArtifactMap]
    weights: dict[str, float]

    @property
    def adapters(self) -> list[str]:
        """Artifacts with a non-zero weight, the heaviest first."""
        active = [name for name, w in self.weights.items() if w > 0]
        return sorted(active, key=lambda name: (-self.weights[name], ARTIFACTS.index(name)))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary: adapters, weights and, per artifact, severity, thresholds, flagged
        bands and band edges (NaN written as ``None``)."""

        def floats(values: np.ndarray) -> list[float | None]:
            return [None if not np.isfinite(v) else round(float(v), 6) for v in values]

        artifacts = {}
        for name, m in self.maps.items():
            artifacts[name] = {
                "severity": round(float(m.severity), 6),
                "weight": round(float(self.weights.get(name, 0.0)), 6),
                "bands_flagged": m.bands_flagged(),
                "band_scores": floats(m.band_scores),
                "threshold": floats(m.threshold),
                "threshold_units": UNITS.get(name, ""),
                "band_edges_hz": floats(m.band_edges_hz),
                "note": m.note,
            }
        return {
            "adapters": self.adapters,
            "weights": {k: round(float(v), 6) for k, v in self.weights.items()},
            "artifacts": artifacts,
        }


# ----- shared analysis ------------------------------------------------------------------------
def band_edges(n_fft: int, sample_rate: int, bands: int, fmin_hz: float = 60.0) -> np.ndarray:
    """The detectors' bands: :func:`deepsampler.audio.bands.log_band_edges` from 60 Hz."""
    return log_band_edges(n_fft, sample_rate, bands, fmin_hz)


@dataclass
class _Setup:
    config: DetectorConfig
    sample_rate: int
    edges: np.ndarray  # [n + 1] bins
    edges_hz: np.ndarray  # [n + 1]
    times: np.ndarray  # [t]
    stem: np.ndarray  # [samples] float64, mono
    mixture: np.ndarray | None  # [samples] float64, mono

    # every detector reads the same two spectra: computed once per detect_artifacts call
    @functools.cached_property
    def stem_spec(self) -> np.ndarray:
        """``[f, t]`` complex128 STFT of the stem."""
        return _stft(self.stem, self.config)

    @functools.cached_property
    def mixture_spec(self) -> np.ndarray:
        """``[f, t]`` complex128 STFT of the mixture (which must be given)."""
        assert self.mixture is not None
        return _stft(self.mixture, self.config)

    @property
    def slices(self) -> list[slice]:
        return [slice(self.edges[b], self.edges[b + 1]) for b in range(len(self.edges) - 1)]

    def band_sum(self, cells: np.ndarray) -> np.ndarray:
        """``[f, t]`` -> ``[n, t]``: sums over each band's bins."""
        return np.add.reduceat(cells, self.edges[:-1], axis=0)

    def empty(self, name: str, note: str) -> ArtifactMap:
        n = len(self.edges) - 1
        return ArtifactMap(
            name=name,
            band_edges_hz=self.edges_hz,
            frame_times_s=self.times,
            map=np.zeros((n, len(self.times))),
            threshold=np.full(n, np.nan),
            severity=0.0,
            band_scores=np.zeros(n),
            note=note,
        )


def _mono(name: str, x: np.ndarray, config: DetectorConfig) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype.kind != "f":
        raise ValueError(f"{name} must be a float array, got dtype {x.dtype}; convert with .astype")
    if x.ndim == 2:
        if x.shape[0] > x.shape[1]:
            raise ValueError(
                f"{name} has shape {x.shape}, which looks like [samples, channels]; "
                "pass [channels, samples] (transpose it)"
            )
        x = x.mean(axis=0)
    elif x.ndim != 1:
        raise ValueError(f"{name} must be [channels, samples] or [samples], got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or infinite samples; clean or clip it first")
    if x.shape[0] < config.n_fft:
        raise ValueError(
            f"{name} has {x.shape[0]} samples, fewer than one frame (n_fft={config.n_fft}); "
            "pass a longer signal or lower n_fft"
        )
    return x.astype(np.float64)


def _prepare(
    stem: np.ndarray,
    mixture: np.ndarray | None,
    sample_rate: int,
    config: DetectorConfig | None,
) -> _Setup:
    """Validates the inputs (clear errors) and makes their mono float64 copies and the bands."""
    config = config or DetectorConfig()
    if not isinstance(sample_rate, (int, np.integer)) or sample_rate < 1:
        raise ValueError(f"sample_rate must be a positive integer in Hz, got {sample_rate!r}")
    s = _mono("stem", stem, config)
    m = None
    if mixture is not None:
        m = _mono("mixture", mixture, config)
        if m.shape != s.shape:
            raise ValueError(
                f"stem has {s.shape[0]} samples but mixture has {m.shape[0]}; "
                "pass time-aligned signals of equal length"
            )
    edges = band_edges(config.n_fft, int(sample_rate), config.bands, config.fmin_hz)
    edges_hz = np.minimum(edges * sample_rate / config.n_fft, sample_rate / 2)
    frames = frame_count(s.shape[0], config.hop)
    times = np.arange(frames) * config.hop / sample_rate
    return _Setup(config, int(sample_rate), edges, edges_hz, times, s, m)


def _stft(x: np.ndarray, config: DetectorConfig) -> np.ndarray:
    """``[samples]`` -> ``[f, t]`` complex128 (the project's STFT convention)."""
    return STFT(config.n_fft, config.hop)(torch.from_numpy(x)).numpy()


def _power(spec: np.ndarray) -> np.ndarray:
    return spec.real**2 + spec.imag**2


def _active(band_power: np.ndarray, config: DetectorConfig) -> np.ndarray:
    """``[n, t]`` bool: band-frames within ``activity_db`` of the loudest one."""
    peak = band_power.max()
    if peak <= 0:
        return np.zeros(band_power.shape, dtype=bool)
    return band_power > peak * 10 ** (-config.activity_db / 10)


def _level_weights(
    band_power: np.ndarray, active: np.ndarray, config: DetectorConfig
) -> np.ndarray:
    """``[n, t]`` dB above the silence floor (0 where silent): louder band-frames count more."""
    floor = band_power.max() * 10 ** (-config.activity_db / 10)
    with np.errstate(divide="ignore"):
        level = 10 * np.log10(np.maximum(band_power, 1e-300) / max(floor, 1e-300))
    return np.where(active, np.clip(level, 0, None), 0.0)


def _robust(values: np.ndarray) -> tuple[float, float]:
    """Median and ``1.4826 * MAD`` of the finite ``values`` (NaN, NaN when there are none)."""
    values = values[np.isfinite(values)]
    if values.size == 0:
        return math.nan, math.nan
    med = float(np.median(values))
    return med, _MAD_TO_SIGMA * float(np.median(np.abs(values - med)))


def _exceed(stat: np.ndarray, threshold: np.ndarray) -> np.ndarray:
    """``[n, t]`` statistic vs ``[n]`` positive thresholds -> ``[0, 1]``: 0 at the threshold, 1
    at twice it; NaN statistics or thresholds give 0."""
    thr = threshold[:, None]
    with np.errstate(invalid="ignore"):
        out = np.clip((stat - thr) / thr, 0.0, 1.0)
    return np.nan_to_num(out, nan=0.0)


def _finish(
    setup: _Setup,
    name: str,
    stat: np.ndarray,
    threshold: np.ndarray,
    weights: np.ndarray,
    note: str = "",
    judged: np.ndarray | None = None,
) -> ArtifactMap:
    """Map, band scores and severity from a ``[n, t]`` statistic, ``[n]`` thresholds and
    ``[n, t]`` non-negative weights (0: the band-frame does not count). ``judged`` (``[n, t]``
    bool, default ``weights > 0``) limits where the map may be non-zero: a band-frame that
    counts but is not judged reads as clean."""
    if judged is None:
        judged = weights > 0
    amap = _exceed(stat, threshold) * (judged & (weights > 0))
    total = weights.sum(axis=1)
    scores = np.where(total > 0, (amap * weights).sum(axis=1) / np.maximum(total, 1e-300), 0.0)
    counted = total > 0
    severity = float(scores[counted].mean()) if counted.any() else 0.0
    return ArtifactMap(
        name=name,
        band_edges_hz=setup.edges_hz,
        frame_times_s=setup.times,
        map=amap,
        threshold=threshold,
        severity=severity,
        band_scores=scores,
        note=note,
    )


def _running_median(x: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Centred running median of ``size`` (odd) values along ``axis`` of a 2-D array, edges
    repeated (scipy's ``median_filter`` ``mode="nearest"``), in row chunks of bounded memory
    (numpy only: scipy is not a core dependency)."""
    if size == 1:
        return x.copy()
    moved = np.moveaxis(x, axis, -1)
    half = size // 2
    padded = np.pad(moved, [(0, 0), (half, half)], mode="edge")
    out = np.empty(moved.shape, dtype=np.result_type(x, np.float64))
    rows = max(1, (1 << 22) // max(1, moved.shape[1] * size))  # ~4M values per chunk
    for start in range(0, moved.shape[0], rows):
        windows = np.lib.stride_tricks.sliding_window_view(padded[start : start + rows], size, -1)
        out[start : start + rows] = np.median(windows, axis=-1)
    return np.moveaxis(out, -1, axis)


def _moving_sum(x: np.ndarray, width: int) -> np.ndarray:
    """Centred sum over ``width`` (odd) frames along the last axis, zeros beyond the ends."""
    half = width // 2
    padded = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(half + 1, half)])
    c = np.cumsum(padded, axis=-1)
    return c[..., width:] - c[..., :-width]


@functools.lru_cache(maxsize=8)
def _lattice_redundancy(n_fft: int, hop: int) -> float:
    """``sum |A(dk, dt)|^2`` over the STFT lattice, ``A`` the normalised ambiguity function of
    the window: how many cells one independent cell's worth of variance is spread over
    (``n_fft / hop`` for a Hann window with ``hop <= n_fft / 4``)."""
    w = torch.hann_window(n_fft, periodic=True, dtype=torch.float64).numpy()
    norm = float(np.sum(w**2))
    total = 0.0
    for dt in range(-(n_fft // hop), n_fft // hop + 1):
        s = dt * hop
        if abs(s) >= n_fft:
            continue
        prod = w[max(0, s) : n_fft + min(0, s)] * w[max(0, -s) : n_fft - max(0, s)]
        total += float(np.sum(np.abs(np.fft.fft(prod, n_fft)) ** 2)) / norm**2
    return total


# ----- detectors ------------------------------------------------------------------------------
def detect_bleed(
    stem: np.ndarray,
    mixture: np.ndarray,
    sample_rate: int,
    config: DetectorConfig | None = None,
) -> ArtifactMap:
    """Other sources leaking into ``stem``: its content coherent with ``mixture - stem``.

    Per band and frame, over a patch of the band's bins and ``bleed_frames`` frames, the
    statistic is ``rho = Re sum(S R*) / sqrt(sum |S|^2 sum |R|^2)`` (``S`` stem, ``R`` residual
    spectra): for a stem ``C + a O`` and residual ``(1 - a) O`` it is the share ``|a O| /
    |C + a O|`` of the stem's amplitude that is the other sources; for independent sources it
    is 0 on average. Threshold per band: ``max(min_coherence, k * sigma0)``, ``sigma0`` the
    median over frames of rho's standard deviation under independence (``sqrt(G/2 * sum
    |S|^2 |R|^2) / sqrt(sum |S|^2 sum |R|^2)``, ``G`` the STFT's redundancy), so a band with few
    bins or energy in few cells needs more coherence to be flagged.

    A stem that is a scaled-down copy of its source also shares content with the residual
    (the missing part of the source): the statistic cannot tell the two apart.

    Args:
        stem, mixture: ``[channels, samples]`` or ``[samples]`` float, equal length.
        sample_rate: in Hz.
    """
    if mixture is None:
        raise ValueError(
            "detect_bleed needs the mixture (bleed is measured against mixture - stem)"
        )
    return _bleed(_prepare(stem, mixture, sample_rate, config))


def _bleed(setup: _Setup) -> ArtifactMap:
    c = setup.config
    S, M = setup.stem_spec, setup.mixture_spec
    R = M - S
    ps, pr, pm = _power(S), _power(R), _power(M)

    def patch(cells: np.ndarray) -> np.ndarray:
        return _moving_sum(setup.band_sum(cells), c.bleed_frames)

    es, er, em = patch(ps), patch(pr), patch(pm)
    cross = patch((S * R.conj()).real)
    fourth = patch(ps * pr)
    denom = np.sqrt(es * er)
    ok = denom > 0
    safe = np.where(ok, denom, 1.0)
    rho = np.where(ok, cross / safe, np.nan)
    sigma0 = np.where(
        ok, np.sqrt(0.5 * _lattice_redundancy(c.n_fft, c.hop) * fourth) / safe, np.nan
    )

    band_s = setup.band_sum(ps)
    # non-silent relative to the mixture too: a stem far below it is silence, not a stem
    mixture_floor = setup.band_sum(pm).max() * 10 ** (-c.activity_db / 10)
    active = _active(band_s, c) & (band_s > mixture_floor)
    # a residual far below the mixture means nothing of the others is there to leak (and the
    # coherence would only measure the stem's gain error): such band-frames count as clean
    judged = active & ok & (er > em * 10 ** (-c.residual_floor_db / 10))
    threshold = np.full(c.bands, np.nan)
    for b in range(c.bands):
        if judged[b].any():
            threshold[b] = max(c.min_coherence, c.k * float(np.median(sigma0[b, judged[b]])))
    weights = _level_weights(band_s, active, c)
    return _finish(setup, "bleed", rho, threshold, weights, judged=judged)


def _peak_excess(
    power: np.ndarray, setup: _Setup, config: DetectorConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Power ``[f, t]`` -> (excess ``[f, t]`` dB, candidate bins ``[f, t]``, active ``[n, t]``).

    A bin's excess is ``min(L - median_time, L - median_freq)``, ``L`` its level in dB and the
    medians over ``context_frames`` frames of the same bin and ``context_bins`` bins of the
    same frame. Candidates are the bins of non-silent band-frames that are not more than
    ``activity_db + 20`` dB below the loudest bin."""
    c = config
    band = setup.band_sum(power)
    active = _active(band, c)
    floor = power.max() * 10 ** (-(c.activity_db + 20) / 10)
    level = 10 * np.log10(np.maximum(power, max(floor, 1e-300)))
    excess = np.minimum(
        level - _running_median(level, c.context_frames, axis=1),
        level - _running_median(level, c.context_bins, axis=0),
    )
    candidate = (power > floor) & np.repeat(active, np.diff(setup.edges), axis=0)
    return excess, candidate, active


def detect_musical_noise(
    stem: np.ndarray,
    sample_rate: int,
    config: DetectorConfig | None = None,
    mixture: np.ndarray | None = None,
) -> ArtifactMap:
    """Isolated short-lived spectral peaks ("musical noise") left by masking.

    A bin's excess over its neighbourhood (:func:`_peak_excess`: the smaller of its dB height
    above the median of ``context_frames`` frames and of ``context_bins`` bins) is large only
    for a peak that is both narrow and brief: a stationary partial has no time excess, a
    transient no frequency excess. A bin is a peak when its excess exceeds the margin
    ``clip(median + k * sigma, min_peak_db, max_peak_db)`` of the excess of the mixture's
    bins (natural audio), or of the stem's own without a mixture; the cap keeps musical noise
    that covers the whole spectrum, and so widens the stem's own distribution, from raising
    its own margin past what noise needs (a Gaussian noise bin exceeds its local median by
    12 dB with probability ~2e-5). The statistic is the fraction of a band's bins that are
    peaks over ``density_frames`` frames; threshold per band ``p + k * sqrt(p / cells)``,
    ``p`` the mixture's own peak rate in the band at that margin (at least ``min_density``;
    ``min_density`` without a mixture) and ``cells`` = bins x frames counted: a binomial
    allowance, so a band of few bins needs more than one stray peak.

    Gliding partials (fast vibrato, chirps) also stand out in both directions and may read
    as musical noise; holes (bins masked to silence) are not counted.

    Args:
        stem: ``[channels, samples]`` or ``[samples]`` float.
        sample_rate: in Hz.
        mixture: same length, or None.
    """
    return _musical_noise(_prepare(stem, mixture, sample_rate, config))


def _musical_noise(setup: _Setup) -> ArtifactMap:
    m = setup.mixture
    c = setup.config
    power = _power(setup.stem_spec)
    if power.max() <= 0:
        return setup.empty("musical_noise", "stem is silent")
    excess, candidate, active = _peak_excess(power, setup, c)
    ref_power = _power(setup.mixture_spec) if m is not None else None
    if ref_power is not None and ref_power.max() > 0:
        ref_excess, ref_candidate, _ = _peak_excess(ref_power, setup, c)
        note = ""
    else:
        ref_excess, ref_candidate = excess, candidate
        note = "no mixture" if m is None else "silent mixture"
        note += ": margin from the stem's own bins"
    med, sigma = _robust(ref_excess[ref_candidate])
    margin = min(max(c.min_peak_db, med + c.k * sigma), c.max_peak_db)
    peaks = (excess > margin) & candidate

    counts = _moving_sum(setup.band_sum(peaks.astype(np.float64)), c.density_frames)
    cells = _moving_sum(setup.band_sum(candidate.astype(np.float64)), c.density_frames)
    density = np.where(cells > 0, counts / np.maximum(cells, 1), 0.0)
    rate = np.full(c.bands, c.min_density)
    if ref_excess is not excess:
        ref_peaks = setup.band_sum(((ref_excess > margin) & ref_candidate).astype(np.float64))
        ref_cells = setup.band_sum(ref_candidate.astype(np.float64)).sum(axis=1)
        observed = ref_peaks.sum(axis=1) / np.maximum(ref_cells, 1)
        rate = np.maximum(rate, observed)
    n_cells = np.diff(setup.edges) * c.density_frames
    threshold = rate + c.k * np.sqrt(rate / n_cells)
    weights = _level_weights(setup.band_sum(power), active, c)
    note = "; ".join(filter(None, [note, f"peak margin {margin:.1f} dB"]))
    return _finish(setup, "musical_noise", density, threshold, weights, note)


def _cliff(level: np.ndarray) -> np.ndarray:
    """``[n, t]`` levels (NaN: not judged) -> drop of each band: the highest level below it
    minus the highest at or above it (a drop that never recovers higher up); NaN for band 0
    and where undefined."""
    filled = np.where(np.isnan(level), -np.inf, level)
    below = np.maximum.accumulate(filled, axis=0)  # best of bands 0..b
    above = np.maximum.accumulate(filled[::-1], axis=0)[::-1]  # best of bands b..n-1
    drop = np.full(level.shape, np.nan)
    with np.errstate(invalid="ignore"):
        drop[1:] = below[:-1] - above[1:]
    drop[~np.isfinite(drop)] = np.nan
    drop[np.isnan(level)] = np.nan
    return drop


def _spread_below(level: np.ndarray, reference: int) -> np.ndarray:
    """Per band ``b``: robust spread (dB) of the levels of bands ``1 .. min(b - 1, reference)``
    around their per-frame median: how much the level wanders between (presumably) clean bands.
    NaN where that is fewer than 2 bands."""
    n = level.shape[0]
    out = np.full(n, np.nan)
    for b in range(3, n):
        ref = level[1 : min(b, reference + 1)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN frames
            centre = np.nanmedian(ref, axis=0, keepdims=True)
        out[b] = _robust((ref - centre).ravel())[1]
    return out


def detect_band_limit(
    stem: np.ndarray,
    mixture: np.ndarray | None,
    sample_rate: int,
    config: DetectorConfig | None = None,
) -> ArtifactMap:
    """Missing highs: the stem's level collapses above some band and never recovers.

    With a mixture, the level of a band-frame is the stem-to-mixture energy ratio in dB
    (median-smoothed over ``smooth_frames``); without, it is the stem's own band level (dB
    per bin) minus the line fitted to its lower bands (``1 .. bands // 2``) against log
    frequency. The statistic of band ``b`` is the drop from the best level below ``b`` to the
    best level at or above it. Threshold per band: ``max(min_drop_db, k * sigma_b)``
    (``self_min_drop_db`` without a mixture), ``sigma_b`` the robust spread of the level
    across the (lower) bands below ``b``: a stem whose ratio wanders a lot between bands needs
    a deeper cliff. Band 0 (below ~2 * ``fmin_hz``, where bass and kick rule the ratio) takes
    no part, so bands 0 and 1 are never flagged. Only band-frames where the mixture (or, without
    one, the stem's frame) is not silent count.

    A stem whose source truly has no highs (a bass) reads as band-limited against a broadband
    mixture; the statistic cannot tell the two apart.

    Args:
        stem: ``[channels, samples]`` or ``[samples]`` float.
        mixture: same length, or None for the self-reference.
        sample_rate: in Hz.
    """
    return _band_limit(_prepare(stem, mixture, sample_rate, config))


def _band_limit(setup: _Setup) -> ArtifactMap:
    m = setup.mixture
    c = setup.config
    band_s = setup.band_sum(_power(setup.stem_spec))
    frame_s = band_s.sum(axis=0)
    if frame_s.max() <= 0:
        return setup.empty("band_limit", "stem is silent")
    stem_on = frame_s > frame_s.max() * 10 ** (-c.activity_db / 10)
    reference = max(2, c.bands // 2)
    if m is not None:
        band_m = setup.band_sum(_power(setup.mixture_spec))
        # a stem frame far below the mixture's loudest is silence (the stem rests), not a cliff
        stem_on &= frame_s > band_m.sum(axis=0).max() * 10 ** (-c.activity_db / 10)
        active = _active(band_m, c) & stem_on[None, :]
        tiny = band_m.max() * 1e-12 + 1e-300  # ratio floor: -120 dB below the mixture's peak
        ratio = 10 * np.log10((band_s + tiny) / (band_m + tiny))
        ratio = _running_median(ratio, c.smooth_frames, axis=1)
        level = np.where(active, ratio, np.nan)
        floor, weights_from, note = c.min_drop_db, band_m, ""
    else:
        # every band of a sounding frame counts, silent ones included: they are the cliff
        active = np.broadcast_to(stem_on[None, :], band_s.shape)
        tiny = band_s.max() * 1e-12 + 1e-300
        density = 10 * np.log10((band_s + tiny) / np.diff(setup.edges)[:, None])
        density = _running_median(density, c.smooth_frames, axis=1)
        centres = np.log2(np.maximum(setup.edges_hz[:-1] * setup.edges_hz[1:], 1.0)) / 2
        fit = list(range(1, min(reference, c.bands - 1) + 1))
        # one slope for the whole signal (per-frame fits on a few bands are too noisy to
        # extrapolate), one offset per frame
        slope = 0.0
        if len(fit) >= 2:
            slope = float(np.polyfit(centres[fit], np.median(density[fit], axis=1), 1)[0])
        trend = slope * centres[:, None]
        offset = np.median(density[fit] - trend[fit], axis=0, keepdims=True)
        level = np.where(active, density - trend - offset, np.nan)
        floor = c.self_min_drop_db
        # the missing bands have no level of their own: weigh them by the frame's level
        weights_from = np.broadcast_to(frame_s[None, :], band_s.shape)
        note = "no mixture: compared with the trend of the stem's own lower bands"
    level[0] = np.nan
    drop = _cliff(level)
    spread = _spread_below(level, reference)
    threshold = np.where(np.isnan(spread), floor, np.maximum(floor, c.k * spread))
    threshold[:2] = np.nan
    weights = _level_weights(weights_from, active & ~np.isnan(drop), c)
    return _finish(setup, "band_limit", np.nan_to_num(drop, nan=0.0), threshold, weights, note)


# bins between the two ends of a group-delay difference: 3 is past the Hann window's main lobe
# (+-2 bins), where the bins of noise are uncorrelated; adjacent bins of noise are correlated
# (-2/3) and would read as coherent
_COHERENCE_LAG = 3
# fewer bin pairs than this give too noisy a coherence (low bands of a short STFT)
_MIN_PAIRS = 8
# onsets (judged band-frames) a band needs before phase smear judges it
_MIN_ONSETS = 3


def _band_coherence(spec: np.ndarray, setup: _Setup) -> np.ndarray:
    """``[f, t]`` -> ``[n, t]``: magnitude-weighted resultant length (0-1) of the phase
    difference between bins ``k + 3`` and ``k`` within each band (the group delay, which is
    the same in every bin for a transient), with the bias of a finite number of random phases
    removed: squared length ``(|sum z|^2 - sum |z|^2) / ((sum |z|)^2 - sum |z|^2)``, ``z`` the
    products ``X[k + 3] X[k]*``. NaN for bands with fewer than 8 such pairs."""
    lag = _COHERENCE_LAG
    z = spec[lag:] * spec[:-lag].conj()  # pair k: bins k + lag and k
    mag = np.abs(z)
    out = np.full((len(setup.edges) - 1, spec.shape[1]), np.nan)
    for b, sl in enumerate(setup.slices):
        lo, hi = sl.start, sl.stop - lag  # pairs with both bins inside the band
        if hi - lo < _MIN_PAIRS:
            continue
        zb, mb = z[lo:hi], mag[lo:hi]
        s1, s2 = mb.sum(axis=0), (mb**2).sum(axis=0)
        num = np.abs(zb.sum(axis=0)) ** 2 - s2
        den = s1**2 - s2
        with np.errstate(invalid="ignore", divide="ignore"):
            out[b] = np.where(den > 0, np.sqrt(np.clip(num / den, 0.0, 1.0)), np.nan)
    return out


def _onsets(band_power: np.ndarray, config: DetectorConfig) -> np.ndarray:
    """``[n, t]`` bool: band-frames whose level (dB) rose, from the quietest of the previous
    ``n_fft // hop`` frames, by more than ``max(min_flux_db, median + k * sigma)`` of that rise
    over the band's frames. Looking back a whole window (not one frame) keeps a transient whose
    energy was smeared into the frame before it, and the frames after it that still hold it."""
    floor = band_power.max() * 10 ** (-config.activity_db / 10) + 1e-300
    level = 10 * np.log10(np.maximum(band_power, floor))
    back = max(1, config.n_fft // config.hop)
    padded = np.concatenate([np.repeat(level[:, :1], back, axis=1), level], axis=1)
    past = np.min(
        np.stack([padded[:, back - i : padded.shape[1] - i] for i in range(1, back + 1)]), axis=0
    )
    rise = level - past
    out = np.zeros(level.shape, dtype=bool)
    for b in range(level.shape[0]):
        med, sigma = _robust(rise[b])
        out[b] = rise[b] > max(config.min_flux_db, med + config.k * sigma)
    return out


def detect_phase_smear(
    stem: np.ndarray,
    sample_rate: int,
    config: DetectorConfig | None = None,
    mixture: np.ndarray | None = None,
) -> ArtifactMap:
    """Transients whose phases no longer line up across the bins of a band.

    At an onset, a clean impulsive transient has the same group delay in every bin of a band:
    the magnitude-weighted resultant length of the phase differences between bins ``k + 3``
    and ``k`` (bias-corrected, 0-1) is near 1; scrambled phases bring it towards 0. Band-frames
    are judged at onsets of that band (:func:`_onsets`, from the mixture when given), where
    the transient rules the band. The statistic is the coherence lost: the mixture's coherence
    minus the stem's; without a mixture, the 75th percentile of the stem's coherence over the
    bands judged in that frame (at least 3) minus the band's, so a quarter of those bands must
    be intact; a band needs at least 3 onsets to be judged. Threshold: ``max(min_coherence_loss,
    k * sigma)``, ``sigma`` the spread of the estimates' noise, read from the *negative* losses
    of all judged band-frames (``1.4826 *`` their median magnitude: a half-normal's): smear
    only adds positive losses, so however many bands it covers it cannot raise its own
    threshold, while a noisy reference (a mixture whose other sources dilute its transients)
    raises it.

    Noise-like transients (a snare's rattle) have random phases even when clean and lose no
    coherence; the detector sees smear of impulsive ones (clicks, kicks, plucks).

    Args:
        stem: ``[channels, samples]`` or ``[samples]`` float.
        sample_rate: in Hz.
        mixture: same length, or None.
    """
    return _phase_smear(_prepare(stem, mixture, sample_rate, config))


def _phase_smear(setup: _Setup) -> ArtifactMap:
    m = setup.mixture
    c = setup.config
    S = setup.stem_spec
    band_s = setup.band_sum(_power(S))
    if band_s.max() <= 0:
        return setup.empty("phase_smear", "stem is silent")
    coherence = _band_coherence(S, setup)
    if m is not None:
        M = setup.mixture_spec
        band_m = setup.band_sum(_power(M))
        judged = _active(band_s, c) & _active(band_m, c) & _onsets(band_m, c)
        reference = _band_coherence(M, setup)
        note = ""
    else:
        judged = _active(band_s, c) & _onsets(band_s, c) & np.isfinite(coherence)
        judged &= judged.sum(axis=0, keepdims=True) >= 3
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN frames
            best = np.nanpercentile(np.where(judged, coherence, np.nan), 75, axis=0)
        reference = np.broadcast_to(best, coherence.shape)
        note = "no mixture: compared with the stem's most coherent bands at each onset"
    judged &= np.isfinite(coherence) & np.isfinite(reference)
    # a band with fewer than _MIN_ONSETS onsets is too little evidence (chance rises in noise)
    judged &= judged.sum(axis=1, keepdims=True) >= _MIN_ONSETS
    if not judged.any():
        return setup.empty("phase_smear", "too few onsets found: nothing to judge")
    loss = np.where(judged, reference - coherence, np.nan)
    # smear only adds positive losses, and may fill most judged band-frames: the estimates' own
    # noise is read from the negative side (a clean stem loses 0 on average); with too few
    # negatives, from all losses (conservative: smear then widens the spread)
    gains = -loss[judged & (loss < 0)]
    if gains.size < _MIN_ONSETS:
        gains = np.abs(loss[judged])
    sigma = _MAD_TO_SIGMA * float(np.median(gains))
    threshold = np.full(c.bands, max(c.min_coherence_loss, c.k * sigma))
    weights = _level_weights(band_s, judged, c)
    return _finish(setup, "phase_smear", np.nan_to_num(loss, nan=0.0), threshold, weights, note)


def adapter_weight(severity: float, config: DetectorConfig | None = None) -> float:
    """Adapter weight in ``[0, 1]``: 0 up to ``min_severity``, linear to 1 at
    ``full_severity``."""
    c = config or DetectorConfig()
    return float(np.clip((severity - c.min_severity) / (c.full_severity - c.min_severity), 0, 1))


def detect_artifacts(
    stem: np.ndarray,
    sample_rate: int,
    mixture: np.ndarray | None = None,
    config: DetectorConfig | None = None,
) -> DetectionReport:
    """Run every detector on ``stem`` (and its ``mixture``, best given) -> maps and weights.

    Without a mixture, bleed reports an empty map (with a note) and the other detectors
    compare the stem with itself (noted in their maps).

    Args:
        stem: ``[channels, samples]`` or ``[samples]`` float.
        sample_rate: in Hz.
        mixture: ``[channels, samples]`` or ``[samples]`` float of the same length, or None.
    """
    config = config or DetectorConfig()
    setup = _prepare(stem, mixture, sample_rate, config)  # validate once, up front
    maps: dict[str, ArtifactMap] = {}
    if setup.mixture is None:
        maps["bleed"] = setup.empty("bleed", "no mixture: bleed needs mixture - stem; not run")
    else:
        maps["bleed"] = _bleed(setup)
    maps["musical_noise"] = _musical_noise(setup)
    maps["band_limit"] = _band_limit(setup)
    maps["phase_smear"] = _phase_smear(setup)
    weights = {name: adapter_weight(maps[name].severity, config) for name in ARTIFACTS}
    return DetectionReport(maps=maps, weights=weights)
