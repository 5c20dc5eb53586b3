"""Each detector finds a planted artifact of its own type in the right bands and stays quiet on
the clean signal. Signals are 1.5 s, seeded; the planted artifacts are made here, independently
of the detectors' code."""

import json

import numpy as np
import pytest
import torch

from deepsampler.audio.stft import STFT
from deepsampler.stemprover import detectors
from deepsampler.stemprover.detectors import (
    ARTIFACTS,
    DetectorConfig,
    adapter_weight,
    band_edges,
    detect_artifacts,
    detect_band_limit,
    detect_bleed,
    detect_musical_noise,
    detect_phase_smear,
)

QUIET = 0.01  # severity a clean signal must stay under (weights are 0 below min_severity)


# ----- signals ---------------------------------------------------------------------------------
def pink(n: int, rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum /= np.sqrt(np.maximum(np.arange(spectrum.size), 1))
    x = np.fft.irfft(spectrum, n)
    return x / np.abs(x).max()


def band_pass(x: np.ndarray, sr: int, lo: float, hi: float) -> np.ndarray:
    """Brick-wall FFT filter keeping ``lo..hi`` Hz."""
    spectrum = np.fft.rfft(x)
    f = np.fft.rfftfreq(x.size, 1 / sr)
    spectrum[(f < lo) | (f > hi)] = 0
    return np.fft.irfft(spectrum, x.size)


def source(sr: int, seed: int, f0: float = 220.0, seconds: float = 1.5) -> np.ndarray:
    """A broadband stem: six harmonics of ``f0`` over pink noise."""
    n = int(seconds * sr)
    t = np.arange(n) / sr
    tones = sum(np.sin(2 * np.pi * f0 * h * t + h) / h for h in range(1, 7))
    return 0.15 * tones + 0.3 * pink(n, np.random.default_rng(seed))


def stft_edit(x: np.ndarray, edit, n_fft: int = 2048, hop: int = 512) -> np.ndarray:
    stft = STFT(n_fft, hop)
    spec = stft(torch.from_numpy(x)).numpy()
    return stft.inverse(torch.from_numpy(edit(spec)), x.size).numpy()


def bands_between(edges_hz: np.ndarray, lo: float, hi: float) -> set[int]:
    """Bands lying entirely inside ``lo..hi`` Hz."""
    return {b for b in range(len(edges_hz) - 1) if edges_hz[b] >= lo and edges_hz[b + 1] <= hi}


def bands_touching(edges_hz: np.ndarray, lo: float, hi: float) -> set[int]:
    """Bands overlapping ``lo..hi`` Hz."""
    return {b for b in range(len(edges_hz) - 1) if edges_hz[b + 1] > lo and edges_hz[b] < hi}


def assert_quiet(amap) -> None:
    assert amap.severity < QUIET, (amap.name, amap.severity, amap.band_scores)
    assert amap.bands_flagged() == []
    assert adapter_weight(amap.severity) == 0.0


def assert_well_formed(amap, bands: int, frames: int) -> None:
    assert amap.map.shape == (bands, frames) and amap.frame_times_s.shape == (frames,)
    assert amap.threshold.shape == (bands,) and amap.band_scores.shape == (bands,)
    assert amap.map.min() >= 0 and amap.map.max() <= 1 and 0 <= amap.severity <= 1
    assert np.all(np.diff(amap.band_edges_hz) > 0) and amap.band_edges_hz[0] == 0


# ----- band limit -------------------------------------------------------------------------------
SR_WIDE = 44100


@pytest.fixture(scope="module")
def broadband():
    stem = source(SR_WIDE, seed=0)
    mixture = stem + source(SR_WIDE, seed=1, f0=330.0)
    return stem, mixture


@pytest.mark.parametrize("with_mixture", [True, False])
def test_band_limit_flags_the_bands_above_the_cutoff(broadband, with_mixture):
    stem, mixture = broadband
    low_passed = band_pass(stem, SR_WIDE, 0, 4000)
    amap = detect_band_limit(low_passed, mixture if with_mixture else None, SR_WIDE)
    assert_well_formed(amap, 8, -(-low_passed.size // 512) + 1)
    flagged = set(amap.bands_flagged())
    above = bands_between(amap.band_edges_hz, 4000, SR_WIDE / 2)
    below = bands_between(amap.band_edges_hz, 0, 4000)
    assert above and above <= flagged and not flagged & below
    assert adapter_weight(amap.severity) > 0
    assert bool(amap.note) != with_mixture  # the self-reference says so


@pytest.mark.parametrize("with_mixture", [True, False])
def test_band_limit_is_quiet_on_the_full_band_stem(broadband, with_mixture):
    stem, mixture = broadband
    assert_quiet(detect_band_limit(stem, mixture if with_mixture else None, SR_WIDE))


# ----- bleed -------------------------------------------------------------------------------------
SR = 16000


@pytest.fixture(scope="module")
def bleed_sources():
    clean = source(SR, seed=2)
    rng = np.random.default_rng(5)
    other = band_pass(rng.standard_normal(clean.size), SR, 750, 1150)  # inside one band
    return clean, 0.3 * other / np.abs(other).max()


def test_bleed_flags_the_band_of_the_leaking_source(bleed_sources):
    clean, other = bleed_sources
    amap = detect_bleed(clean + 0.3 * other, clean + other, SR)
    assert_well_formed(amap, 8, -(-clean.size // 512) + 1)
    assert amap.bands_flagged() == sorted(bands_touching(amap.band_edges_hz, 750, 1150))
    assert adapter_weight(amap.severity) > 0


def test_bleed_is_quiet_on_the_clean_stem(bleed_sources):
    clean, other = bleed_sources
    assert_quiet(detect_bleed(clean, clean + other, SR))
    # also against a broadband, tonal other source sharing the stem's every band
    broadband_other = source(SR, seed=3, f0=147.0)
    amap = detect_bleed(clean, clean + broadband_other, SR)
    assert_quiet(amap)
    # the thresholds adapt per band: few bins or tonal energy need more coherence
    assert np.nanmax(amap.threshold) > 1.5 * np.nanmin(amap.threshold)
    # and the same other source leaking into the stem is found
    leaky = detect_bleed(clean + 0.3 * broadband_other, clean + broadband_other, SR)
    assert adapter_weight(leaky.severity) > 0


# ----- musical noise ------------------------------------------------------------------------------
def plant_peaks(spec: np.ndarray, rng: np.random.Generator, lo: float, hi: float) -> np.ndarray:
    """Add isolated single-bin, single-frame peaks (1% of the cells of ``lo..hi`` Hz, ~30 dB
    above their bin's median magnitude, random phases)."""
    f = np.arange(spec.shape[0]) * SR / 2048
    region = (f >= lo) & (f <= hi)
    cells = (rng.random(spec.shape) < 0.01) & region[:, None]
    level = 30 * np.median(np.abs(spec), axis=1, keepdims=True)
    return spec + cells * level * np.exp(2j * np.pi * rng.random(spec.shape))


def test_musical_noise_flags_the_bands_of_the_peaks():
    clean = source(SR, seed=2)
    noisy = stft_edit(clean, lambda s: plant_peaks(s, np.random.default_rng(7), 2000, 4000))
    amap = detect_musical_noise(noisy, SR)
    assert_well_formed(amap, 8, -(-clean.size // 512) + 1)
    flagged = set(amap.bands_flagged())
    assert flagged and flagged <= bands_touching(amap.band_edges_hz, 2000, 4000)
    assert int(np.searchsorted(amap.band_edges_hz, 3000)) - 1 in flagged
    assert adapter_weight(amap.severity) > 0


def test_musical_noise_everywhere_cannot_raise_its_own_threshold():
    """Dense peaks over the whole spectrum widen the stem's own excess distribution; the margin
    comes from the mixture (or is capped) and the density threshold from its peak rate."""
    clean = source(SR, seed=2)
    noisy = stft_edit(clean, lambda s: plant_peaks(s, np.random.default_rng(8), 200, SR / 2))
    for mixture in (clean, None):
        amap = detect_musical_noise(noisy, SR, mixture=mixture)
        upper = bands_between(amap.band_edges_hz, 400, SR / 2)
        assert len(upper & set(amap.bands_flagged())) >= len(upper) - 1
    assert_quiet(detect_musical_noise(clean, SR, mixture=clean))


@pytest.mark.parametrize("seed", [2, 3])
def test_musical_noise_is_quiet_on_clean_stems(seed):
    assert_quiet(detect_musical_noise(source(SR, seed=seed), SR))
    rng = np.random.default_rng(seed)
    assert_quiet(detect_musical_noise(rng.standard_normal(SR), SR))  # white noise is not


# ----- phase smear --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def clicks():
    """A click train (4 per second, each a click and a short noisy decay) over a -60 dB floor."""
    rng = np.random.default_rng(11)
    n = int(1.5 * SR_WIDE)
    x = 1e-3 * rng.standard_normal(n)
    for pos in range(4000, n - 4000, SR_WIDE // 4):
        x[pos] += 1.0
        x[pos + 1 : pos + 200] += 0.3 * np.exp(-np.arange(199) / 30) * rng.standard_normal(199)
    return x


def jitter_phases(spec: np.ndarray, rng: np.random.Generator, lo: float) -> np.ndarray:
    """Random phase per bin and frame above ``lo`` Hz."""
    f = np.arange(spec.shape[0]) * SR_WIDE / 2048
    return np.where((f >= lo)[:, None], spec * np.exp(2j * np.pi * rng.random(spec.shape)), spec)


@pytest.mark.parametrize("with_mixture", [True, False])
def test_phase_smear_flags_the_scrambled_bands(clicks, with_mixture):
    smeared = stft_edit(clicks, lambda s: jitter_phases(s, np.random.default_rng(3), 4000))
    amap = detect_phase_smear(smeared, SR_WIDE, mixture=clicks if with_mixture else None)
    assert_well_formed(amap, 8, -(-clicks.size // 512) + 1)
    flagged = set(amap.bands_flagged())
    above = bands_between(amap.band_edges_hz, 4000, SR_WIDE / 2)
    assert above and above <= flagged
    assert not flagged & bands_between(amap.band_edges_hz, 0, 4000)
    assert adapter_weight(amap.severity) > 0


@pytest.mark.parametrize("with_mixture", [True, False])
def test_phase_smear_is_quiet_on_the_clean_clicks(clicks, with_mixture):
    assert_quiet(detect_phase_smear(clicks, SR_WIDE, mixture=clicks if with_mixture else None))


def test_phase_smear_without_onsets_judges_nothing(broadband):
    stem, _ = broadband  # stationary tones and noise
    amap = detect_phase_smear(stem, SR_WIDE)
    assert_quiet(amap)


# ----- all together -------------------------------------------------------------------------------
def test_detect_artifacts_reports_weights_and_a_json_summary(broadband):
    stem, mixture = broadband
    degraded = band_pass(stem, SR_WIDE, 0, 4000)
    report = detect_artifacts(degraded[None].repeat(2, 0), SR_WIDE, mixture=mixture[None])
    assert set(report.maps) == set(ARTIFACTS) == set(report.weights)
    assert report.adapters[0] == "band_limit"
    assert all(0 <= w <= 1 for w in report.weights.values())
    summary = json.loads(json.dumps(report.to_dict()))
    assert summary["adapters"] == report.adapters
    assert summary["artifacts"]["band_limit"]["bands_flagged"] == [6, 7]

    clean = detect_artifacts(stem, SR_WIDE, mixture=mixture)
    assert clean.adapters == [] and all(w == 0 for w in clean.weights.values())


def test_detect_artifacts_without_mixture_skips_bleed(broadband):
    stem, _ = broadband
    report = detect_artifacts(stem, SR_WIDE)
    assert report.weights["bleed"] == 0 and "mixture" in report.maps["bleed"].note
    assert report.to_dict()["artifacts"]["bleed"]["threshold"] == [None] * 8


@pytest.mark.parametrize("with_mixture", [True, False])
def test_detect_artifacts_takes_each_spectrum_once_and_matches_the_detectors(
    broadband, with_mixture, monkeypatch
):
    """The four detectors share one STFT of the stem (and one of the mixture), and sharing it
    changes no map: each equals its detector run on its own."""
    stem, mixture = broadband
    mixture = mixture if with_mixture else None
    degraded = band_pass(stem, SR_WIDE, 0, 4000)
    alone = {
        "musical_noise": detect_musical_noise(degraded, SR_WIDE, mixture=mixture),
        "band_limit": detect_band_limit(degraded, mixture, SR_WIDE),
        "phase_smear": detect_phase_smear(degraded, SR_WIDE, mixture=mixture),
    }
    if with_mixture:
        alone["bleed"] = detect_bleed(degraded, mixture, SR_WIDE)
    calls = []
    real_stft = detectors._stft
    monkeypatch.setattr(detectors, "_stft", lambda x, c: calls.append(x) or real_stft(x, c))
    report = detect_artifacts(degraded, SR_WIDE, mixture=mixture)
    assert len(calls) == (2 if with_mixture else 1)
    for name, amap in alone.items():
        np.testing.assert_array_equal(report.maps[name].map, amap.map)
        assert report.maps[name].severity == amap.severity


def test_results_do_not_depend_on_the_level(broadband):
    """Thresholds are relative to the signal: scaling stem and mixture changes nothing."""
    stem, mixture = broadband
    degraded = band_pass(stem, SR_WIDE, 0, 4000)
    a = detect_artifacts(degraded, SR_WIDE, mixture=mixture)
    b = detect_artifacts(degraded * 0.01, SR_WIDE, mixture=mixture * 0.01)
    for name in ARTIFACTS:
        assert a.maps[name].severity == pytest.approx(b.maps[name].severity, abs=1e-6)


def test_band_edges_are_log_spaced_and_cover_the_spectrum():
    edges = band_edges(2048, 44100, 8, fmin_hz=60.0)
    assert edges[0] == 0 and edges[-1] == 1025 and np.all(np.diff(edges) >= 1)
    ratios = np.diff(np.log(edges[1:-1]))
    assert np.ptp(ratios) < 0.3  # near-constant ratio between successive edges
    many = band_edges(256, 8000, 100, fmin_hz=20.0)  # more bands than low bins: none empty
    assert np.all(np.diff(many) >= 1) and many[-1] == 129


@pytest.mark.parametrize(
    "stem, mixture, match",
    [
        (np.zeros((2, 3, 5000)), None, "channels, samples"),
        (np.zeros((5000, 2)), None, "transpose"),
        (np.full(5000, np.nan), None, "NaN"),
        (np.zeros(1000), None, "fewer than one frame"),
        (np.zeros(5000, dtype=np.int16), None, "float"),
        (np.zeros(5000), np.zeros(4000), "equal length"),
    ],
)
def test_bad_inputs_are_refused(stem, mixture, match):
    with pytest.raises(ValueError, match=match):
        detect_artifacts(stem, 16000, mixture=mixture)


def test_bleed_needs_a_mixture_and_config_is_checked():
    with pytest.raises(ValueError, match="mixture"):
        detect_bleed(np.zeros(5000), None, 16000)
    with pytest.raises(ValueError, match="sample_rate"):
        detect_musical_noise(np.zeros(5000), 0)
    with pytest.raises(ValueError, match="odd"):
        DetectorConfig(context_bins=4)
    with pytest.raises(ValueError, match="min_severity"):
        DetectorConfig(min_severity=0.5, full_severity=0.2)


def test_running_median_matches_a_direct_one():
    from deepsampler.stemprover.detectors import _running_median

    x = np.random.default_rng(0).standard_normal((40, 23))
    for size, axis in [(1, 0), (5, 0), (9, 1), (15, 1)]:
        half = size // 2
        moved = np.moveaxis(x, axis, -1)
        padded = np.pad(moved, [(0, 0), (half, half)], mode="edge")
        direct = np.stack(
            [np.median(padded[:, i : i + size], axis=1) for i in range(moved.shape[1])], axis=1
        )
        assert np.allclose(_running_median(x, size, axis), np.moveaxis(direct, -1, axis))
