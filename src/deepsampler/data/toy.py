"""Procedural toy mixtures with exact stems: a sung-like melody, a drum kit, a bass line and
chords, made from oscillators and noise. Fast (numpy only) and deterministic for a seed.

They are for tests, the bundled demo example and the toy demo model; they are *not* music, and a
model trained on them does not separate real recordings.
"""

from __future__ import annotations

import numpy as np

from deepsampler.sources import MUSIC4_SOURCES

TOY_SOURCES = MUSIC4_SOURCES


def _adsr(n: int, sr: int, attack: float, release: float) -> np.ndarray:
    env = np.ones(n)
    a, r = max(1, int(attack * sr)), max(1, int(release * sr))
    env[: min(a, n)] = np.linspace(0, 1, min(a, n))
    env[max(0, n - r) :] *= np.linspace(1, 0, n - max(0, n - r))
    return env


def _tone(freq: np.ndarray, sr: int, harmonics: np.ndarray) -> np.ndarray:
    """Additive tone following instantaneous ``freq [n]`` (Hz); partials above Nyquist dropped."""
    phase = 2 * np.pi * np.cumsum(freq) / sr
    out = np.zeros_like(freq)
    for k, amp in enumerate(harmonics, start=1):
        alias = (k * freq) < sr / 2
        out += amp * np.sin(k * phase) * alias
    return out


def _notes(
    rng: np.random.Generator,
    total: int,
    sr: int,
    lo: float,
    hi: float,
    scale: np.ndarray,
    root: float,
) -> list[tuple[int, int, float]]:
    """(start, length, frequency) of notes filling ``total`` samples with short rests."""
    notes, pos = [], 0
    while pos < total:
        length = int(rng.uniform(lo, hi) * sr)
        step = int(rng.choice(scale)) + 12 * int(rng.integers(0, 2))
        notes.append((pos, min(length, total - pos), root * 2 ** (step / 12)))
        pos += length + int(rng.uniform(0, 0.08) * sr)
    return notes


def _pan(mono: np.ndarray, channels: int, position: float) -> np.ndarray:
    if channels == 1:
        return mono[None]
    left, right = np.cos((position + 1) * np.pi / 4), np.sin((position + 1) * np.pi / 4)
    gains = np.linspace(left, right, channels)[:, None] * np.sqrt(2)
    return gains * mono[None]


def toy_stems(
    seconds: float, sample_rate: int = 44100, channels: int = 2, seed: int = 0
) -> dict[str, np.ndarray]:
    """Return ``{source: [channels, samples]}`` float32 stems for ``TOY_SOURCES``.

    The mixture is their sum. Tempo, key, timbres, gains and pans vary with ``seed``.
    """
    rng = np.random.default_rng(seed)
    sr, n = sample_rate, int(round(seconds * sample_rate))
    t = np.arange(n) / sr
    major = np.array([0, 2, 4, 5, 7, 9, 11])
    key = 2 ** (rng.integers(-5, 6) / 12)
    bpm = rng.uniform(80, 140)
    beat = 60 / bpm

    # vocals: vibrato melody with a formant-like spectrum and breathy onsets
    vocals = np.zeros(n)
    for start, length, f in _notes(rng, n, sr, 0.18, 0.6, major, 261.6 * key):
        if length < 16:
            continue
        tt = np.arange(length) / sr
        freq = f * (1 + 0.012 * np.sin(2 * np.pi * rng.uniform(4.5, 6.5) * tt))
        harm = np.exp(-np.arange(12) / rng.uniform(1.5, 3.5)) * (1 + 0.8 * (np.arange(12) % 3 == 1))
        note = _tone(freq, sr, harm) * _adsr(length, sr, 0.03, 0.05)
        note += 0.05 * rng.standard_normal(length) * _adsr(length, sr, 0.005, length / sr * 0.9)
        vocals[start : start + length] += note

    # drums: kick on beats 1/3, snare on 2/4, hats on eighths, with humanised timing
    drums = np.zeros(n)
    step = beat / 2
    for i in range(int(seconds / step) + 1):
        pos = int((i * step + rng.normal(0, 0.004)) * sr)
        if pos < 0 or pos >= n:
            continue
        m = min(n - pos, int(0.35 * sr))
        tt = np.arange(m) / sr
        if i % 4 == 0:
            sweep = 50 + 90 * np.exp(-tt * 35)
            hit = np.sin(2 * np.pi * np.cumsum(sweep) / sr) * np.exp(-tt * 9)
        elif i % 4 == 2:
            hit = (0.7 * rng.standard_normal(m) + 0.5 * np.sin(2 * np.pi * 185 * tt)) * np.exp(
                -tt * 18
            )
        else:
            noise = rng.standard_normal(m)
            hit = 0.35 * np.diff(noise, prepend=0) * np.exp(-tt * 60)
        drums[pos : pos + m] += hit * rng.uniform(0.7, 1.0)

    # bass: one root per beat, a few harmonics, low register
    bass = np.zeros(n)
    roots = np.array([0, 5, 7, 9])
    for i in range(int(seconds / beat) + 1):
        pos, length = int(i * beat * sr), int(beat * sr * 0.9)
        length = min(length, n - pos)
        if length < 16:
            continue
        f = 55.0 * key * 2 ** (int(rng.choice(roots)) / 12)
        bass[pos : pos + length] += _tone(
            np.full(length, f), sr, np.array([1, 0.5, 0.3, 0.15])
        ) * _adsr(length, sr, 0.01, 0.08)

    # other: sustained three-note chords, organ-like, two bars each
    other = np.zeros(n)
    bar = 4 * beat
    for i in range(int(seconds / bar) + 1):
        pos, length = int(i * bar * sr), int(bar * sr)
        length = min(length, n - pos)
        if length < 16:
            continue
        root = int(rng.choice(roots))
        for interval in (0, 4, 7):
            f = 196.0 * key * 2 ** ((root + interval) / 12)
            other[pos : pos + length] += (
                0.4
                * _tone(np.full(length, f), sr, np.array([1, 0.2, 0.5, 0.1, 0.2]))
                * _adsr(length, sr, 0.08, 0.2)
            )

    stems = {}
    for name, mono, pan in (
        ("vocals", vocals, rng.uniform(-0.15, 0.15)),
        ("drums", drums, rng.uniform(-0.3, 0.3)),
        ("bass", bass, rng.uniform(-0.1, 0.1)),
        ("other", other, rng.uniform(-0.6, 0.6)),
    ):
        peak = np.abs(mono).max() or 1.0
        gain = 10 ** (rng.uniform(-8, -2) / 20) / peak
        stems[name] = (_pan(mono * gain, channels, pan)).astype(np.float32)
    del t
    return stems
