"""Locally generated noises for the speech and siren presets: coloured noise, mains hum, rotating
machinery, a procedural music bed and road traffic, plus the small signal helpers they share
(smooth random curves, FFT-domain filtering, a wavetable oscillator, active-signal masks).

Every generator returns mono float32 ``[n]`` at ``sr`` Hz with an RMS of 1 (0 dBFS RMS): the
caller sets levels. Randomness comes only from the ``rng`` argument, so a generator is
deterministic given its parameters and generator state. Only numpy is needed (no scipy), so
the presets run wherever the core package runs.

Each synthetic kind has a ``draw`` function (cheap, JSON-able parameters, used by the planners)
and a ``render`` function; :data:`KINDS` maps a kind to both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

TWO_PI = 2.0 * np.pi


# --------------------------------------------------------------------------------------------
# helpers


def fast_len(n: int) -> int:
    """The smallest 2^a 3^b 5^c >= ``n``: FFTs of such lengths are fast, prime lengths are not."""
    best = 1 << max(0, (n - 1).bit_length())
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            p = p35
            while p < n:
                p *= 2
            best = min(best, p)
            p35 *= 3
        p5 *= 5
    return best


def normalise_rms(x: np.ndarray, target: float = 1.0) -> np.ndarray:
    """``x`` scaled to RMS ``target`` (silence stays silence), as float32."""
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0
    if rms < 1e-12:
        return np.zeros_like(x, dtype=np.float32)
    return (x * (target / rms)).astype(np.float32)


def smooth_curve(rng: np.random.Generator, n: int, sr: int, period_s: float) -> np.ndarray:
    """A smooth random curve ``[n]`` in [-1, 1]: uniform random knots every ``period_s`` seconds,
    joined by raised-cosine segments (continuous slope 0 at each knot, so no clicks)."""
    step = max(1, int(period_s * sr))
    knots = rng.uniform(-1.0, 1.0, n // step + 2)
    # evaluated every 16 samples and linearly interpolated: the curve is slow, cosines are not
    # free, and this runs for every noise component
    coarse = np.arange(0, n + 16, 16)
    pos = coarse / step
    i = pos.astype(np.int64)
    w = 0.5 - 0.5 * np.cos(np.pi * (pos - i))
    curve = (1 - w) * knots[i] + w * knots[np.minimum(i + 1, len(knots) - 1)]
    return np.interp(np.arange(n), coarse, curve).astype(np.float32)


def slow_gain(
    rng: np.random.Generator, n: int, sr: int, depth_db: float, period_s: float
) -> np.ndarray:
    """A slowly varying gain ``[n]`` (linear) swinging by up to ±``depth_db`` dB, with changes
    every ``period_s`` seconds: noises that swell and fade instead of staying perfectly steady."""
    if depth_db <= 0:
        return np.ones(n, np.float32)
    return (10.0 ** (depth_db * smooth_curve(rng, n, sr, period_s) / 20.0)).astype(np.float32)


def fft_filter(x: np.ndarray, sr: int, gain: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Zero-phase filtering of ``x [n]`` by a magnitude response ``gain(freqs_hz)`` applied to
    the whole signal's spectrum. 4096 samples of zero padding keep the end from wrapping onto
    the start (a siren that starts late must be silent before), for the gentle filters used
    here whose responses die out well within that."""
    n = x.shape[-1]
    m = fast_len(n + 4096)
    spec = np.fft.rfft(x, m)
    spec *= gain(np.fft.rfftfreq(m, 1.0 / sr))
    return np.fft.irfft(spec, m)[:n].astype(np.float32)


def spectral_noise(
    rng: np.random.Generator, n: int, sr: int, gain: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """Gaussian noise ``[n]`` whose amplitude spectrum follows ``gain(freqs_hz)``, RMS 1."""
    m = fast_len(n)
    # shaping the spectrum of white noise directly is exact and far cheaper than long IIR/FIR
    # filters; generating m samples (not n) keeps the noise stationary up to the last sample
    spec = np.fft.rfft(rng.standard_normal(m))
    spec *= gain(np.fft.rfftfreq(m, 1.0 / sr))
    spec[0] = 0.0
    return normalise_rms(np.fft.irfft(spec, m)[:n])


def coloured_noise(
    rng: np.random.Generator, n: int, sr: int, exponent: float, f_min: float = 20.0
) -> np.ndarray:
    """Noise ``[n]`` with power spectral density ∝ f^-``exponent`` above ``f_min`` Hz (flat
    below it, no DC): 0 white, 1 pink (-3 dB/octave), 2 brown (-6 dB/octave). RMS 1."""
    return spectral_noise(rng, n, sr, lambda f: np.maximum(f, f_min) ** (-exponent / 2.0))


def band_gain(lo: float, hi: float, order: float = 2.0) -> Callable[[np.ndarray], np.ndarray]:
    """A smooth band-pass magnitude response (Butterworth-like skirts of ``order``), Hz."""

    def gain(f: np.ndarray) -> np.ndarray:
        f = np.maximum(f, 1e-3)
        return 1.0 / np.sqrt((1 + (lo / f) ** (2 * order)) * (1 + (f / hi) ** (2 * order)))

    return gain


def lowpass_gain(fc: float, order: float = 1.0) -> Callable[[np.ndarray], np.ndarray]:
    """A Butterworth-like low-pass magnitude response with cut-off ``fc`` Hz."""
    return lambda f: 1.0 / np.sqrt(1 + (f / fc) ** (2 * order))


def wavetable(amps: np.ndarray, size: int = 2048) -> np.ndarray:
    """One period ``[size + 1]`` of ``sum_k amps[k-1] sin(2π k x)`` (last sample closes the
    period so that linear interpolation wraps)."""
    x = np.arange(size + 1) / size
    k = np.arange(1, len(amps) + 1)
    # a broadcast sum, not a matrix product: BLAS would wake its threads for this tiny job and
    # spin them, costing more CPU time than the whole table
    return (np.asarray(amps, np.float64)[:, None] * np.sin(TWO_PI * np.outer(k, x))).sum(axis=0)


def table_osc(phase_cycles: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Wavetable oscillator: ``table`` read at ``phase_cycles [n]`` (phase in cycles), linear
    interpolation. Band-limiting is the caller's job (choose the harmonics in the table)."""
    size = len(table) - 1
    pos = (phase_cycles % 1.0) * size
    return np.interp(pos, np.arange(size + 1), table).astype(np.float32)


def harmonic_amps(
    rng: np.random.Generator, count: int, rolloff: float, jitter: float = 0.5
) -> np.ndarray:
    """Amplitudes ``[count]`` of a harmonic series falling as k^-``rolloff``, each scaled by a
    random factor in [1 - jitter, 1] so that timbres differ."""
    k = np.arange(1, count + 1)
    return k ** (-rolloff) * rng.uniform(1 - jitter, 1.0, count)


def active_mask(
    x: np.ndarray, sr: int, frame_s: float = 0.02, range_db: float = 30.0
) -> np.ndarray:
    """Boolean ``[n]``: samples in 20 ms frames whose energy is within ``range_db`` dB of the
    loud frames (the 99th percentile, so one click does not set the reference) and above -100
    dBFS. Speech pauses, a recording's room tone and a siren that has left are excluded, so
    levels and SNRs measured on the mask describe the signal while it is there."""
    n = x.shape[-1]
    hop = max(1, int(frame_s * sr))
    m = -(-n // hop)
    frames = np.zeros(m * hop, np.float64)
    frames[:n] = np.square(x, dtype=np.float64).reshape(-1, n).mean(axis=0)
    db = 10 * np.log10(frames.reshape(m, hop).mean(axis=1) + 1e-20)
    act = db > max(float(np.percentile(db, 99)) - range_db, -100.0)
    return np.repeat(act, hop)[:n]


def masked_rms_db(x: np.ndarray, mask: np.ndarray) -> float:
    """RMS in dBFS of ``x [..., n]`` over the samples where ``mask [n]`` is true (all if none)."""
    sel = x[..., mask] if mask.any() else x
    rms = float(np.sqrt(np.mean(np.square(sel, dtype=np.float64)))) if sel.size else 0.0
    return 20.0 * np.log10(rms) if rms > 1e-10 else -200.0


def midi_hz(note: float) -> float:
    return float(440.0 * 2.0 ** ((note - 69.0) / 12.0))


# --------------------------------------------------------------------------------------------
# coloured noise

COLOUR_EXPONENT = {"white": 0.0, "pink": 1.0, "brown": 2.0}


def draw_colour(rng: np.random.Generator, kind: str) -> dict[str, Any]:
    """Parameters of a coloured noise; kind "coloured" picks a random exponent in [-0.5, 2.3]
    (from slightly blue to darker than brown) and a random high cut."""
    if kind == "coloured":
        return {"exponent": round(float(rng.uniform(-0.5, 2.3)), 3), "f_max": float(8000)}
    return {
        "exponent": COLOUR_EXPONENT[kind],
        # white noise at full band is a harsh hiss; real "white-ish" noises are band limited
        "f_max": float(rng.choice([4000, 6000, 8000])) if kind == "white" else 8000.0,
    }


def render_colour(
    rng: np.random.Generator, n: int, sr: int, exponent: float, f_max: float = 8000.0
) -> np.ndarray:
    """Coloured noise ``[n]`` (see :func:`coloured_noise`), low-passed at ``f_max`` Hz, RMS 1."""
    if f_max >= sr / 2:
        return coloured_noise(rng, n, sr, exponent)
    lp = lowpass_gain(f_max, 4)
    return spectral_noise(rng, n, sr, lambda f: np.maximum(f, 20.0) ** (-exponent / 2.0) * lp(f))


# --------------------------------------------------------------------------------------------
# mains hum


def draw_hum(rng: np.random.Generator) -> dict[str, Any]:
    """Mains frequency (50 or 60 Hz), harmonic amplitudes (fundamental strongest, a "buzz"
    variant with strong odd harmonics as from transformers and dimmers), drift in Hz."""
    count = int(rng.integers(3, 16))
    buzz = bool(rng.random() < 0.4)
    amps = harmonic_amps(rng, count, float(rng.uniform(0.7, 1.6)), 0.6)
    if buzz:
        amps[2::2] *= 2.0  # odd harmonics 3, 5, 7... (indices 2, 4, ...)
    amps[1:] = np.minimum(amps[1:], 0.8)  # the fundamental stays the strongest line
    return {
        "mains_hz": float(rng.choice([50.0, 60.0])),
        "amps": [round(float(a), 4) for a in amps],
        "drift_hz": round(float(rng.uniform(0.02, 0.3)), 3),
        "noise_db": round(float(rng.uniform(-40, -20)), 1),
    }


def render_hum(
    rng: np.random.Generator,
    n: int,
    sr: int,
    mains_hz: float,
    amps: list[float],
    drift_hz: float,
    noise_db: float = -30.0,
) -> np.ndarray:
    """Mains hum ``[n]``: harmonics of ``mains_hz`` with amplitudes ``amps`` whose frequency
    drifts slowly by up to ±``drift_hz`` Hz (grids are never exactly on frequency), plus a faint
    pink noise floor at ``noise_db`` dB. RMS 1."""
    f = mains_hz + drift_hz * smooth_curve(rng, n, sr, float(rng.uniform(1.0, 4.0)))
    phase = np.cumsum(f, dtype=np.float64) / sr + rng.random()
    amps_bl = [a for k, a in enumerate(amps, 1) if k * (mains_hz + drift_hz) < 0.45 * sr]
    x = table_osc(phase, wavetable(np.asarray(amps_bl)))
    x = normalise_rms(x) + coloured_noise(rng, n, sr, 1.0) * (10 ** (noise_db / 20))
    return normalise_rms(x)


# --------------------------------------------------------------------------------------------
# rotating machinery


def draw_machine(rng: np.random.Generator, sub: str | None = None) -> dict[str, Any]:
    """A rotating machine: "engine" (firing harmonics of 25-90 Hz with half orders, RPM changes,
    chugging noise), "fan" (weak blade-pass tones over broadband humped noise) or "motor"
    (a whining harmonic series, 80-400 Hz, with hiss)."""
    sub = sub or str(rng.choice(["engine", "fan", "motor"]))
    if sub == "engine":
        f0, count, roll, tonal = rng.uniform(25, 90), 40, rng.uniform(0.6, 1.2), rng.uniform(-6, 3)
    elif sub == "fan":
        f0, count, roll, tonal = (
            rng.uniform(60, 250),
            4,
            rng.uniform(1.0, 2.0),
            rng.uniform(-18, -6),
        )
    else:
        f0, count, roll, tonal = rng.uniform(80, 400), 20, rng.uniform(0.7, 1.5), rng.uniform(-3, 6)
    return {
        "sub": sub,
        "f0_hz": round(float(f0), 2),
        "amps": [round(float(a), 4) for a in harmonic_amps(rng, count, float(roll), 0.7)],
        "rpm_depth": round(float(rng.uniform(0.01, 0.3 if sub == "engine" else 0.05)), 3),
        "rpm_period_s": round(float(rng.uniform(1.5, 6.0)), 2),
        "tonal_db": round(float(tonal), 1),  # tones vs noise
        "noise_hz": round(float(rng.uniform(300, 3000)), 1),  # noise hump / cut-off
        "am_depth": round(float(rng.uniform(0.0, 0.6)), 3),
    }


def render_machine(
    rng: np.random.Generator,
    n: int,
    sr: int,
    sub: str,
    f0_hz: float,
    amps: list[float],
    rpm_depth: float,
    rpm_period_s: float,
    tonal_db: float,
    noise_hz: float,
    am_depth: float,
) -> np.ndarray:
    """Rotating machinery ``[n]``, RMS 1: a harmonic series at ``f0_hz`` (FM'd by RPM changes
    of ±``rpm_depth``), amplitude-modulated at the shaft rate, over filtered noise that is
    modulated by the same rotation (the "chug" of an engine, the "whoosh" of fan blades)."""
    f = f0_hz * (1 + rpm_depth * smooth_curve(rng, n, sr, rpm_period_s))
    phase = np.cumsum(f, dtype=np.float64) / sr + rng.random()
    fmax = f0_hz * (1 + rpm_depth)
    a = np.asarray(amps, np.float64)
    if sub == "engine":
        # half orders: cylinders never fire identically, so the table runs at f0/2 with the
        # firing harmonics on even indices and weaker half orders on odd ones
        half = np.zeros(2 * len(a))
        half[1::2] = a
        half[0::2] = a * rng.uniform(0.05, 0.3, len(a))
        a, phase, fmax = half, phase / 2, fmax / 2
    keep = (np.arange(1, len(a) + 1) * fmax) < 0.45 * sr
    tone = normalise_rms(table_osc(phase, wavetable(a[keep])))
    if sub == "fan":
        noise = spectral_noise(rng, n, sr, band_gain(noise_hz / 8, noise_hz, 1.0))
    elif sub == "engine":
        noise = spectral_noise(
            rng,
            n,
            sr,
            lambda fr: lowpass_gain(noise_hz / 2, 2)(fr) / (1 + 20.0 / np.maximum(fr, 1.0)),
        )
    else:
        noise = coloured_noise(rng, n, sr, 0.5)
    # the rotation modulates the noise too: per revolution for engines/fans (not for motors)
    rev = np.sin(TWO_PI * phase).astype(np.float32)
    noise = noise * (1 + am_depth * rev) if sub != "motor" else noise
    x = tone * (10 ** (tonal_db / 20)) + noise
    return normalise_rms(x)


# --------------------------------------------------------------------------------------------
# procedural music bed

#: Chord progressions as scale degrees (0 = tonic), common in pop, folk and jazz-lite.
PROGRESSIONS = [
    [0, 4, 5, 3], [0, 5, 3, 4], [0, 3, 4, 4], [5, 3, 0, 4], [0, 3, 0, 4], [1, 4, 0, 0],
    [0, 0, 3, 4], [0, 5, 1, 4], [3, 4, 2, 5], [0, 2, 3, 4],
]  # fmt: skip
MAJOR = [0, 2, 4, 5, 7, 9, 11]
MINOR = [0, 2, 3, 5, 7, 8, 10]


def draw_music(rng: np.random.Generator) -> dict[str, Any]:
    """A music bed: key (MIDI root 40-51), mode, tempo 66-140 bpm, progression, texture
    (pad, arpeggio, both), bass, timbre (harmonic count and roll-off), distance (low-pass)."""
    return {
        "root": int(rng.integers(40, 52)),
        "minor": bool(rng.random() < 0.4),
        "tempo": round(float(rng.uniform(66, 140)), 1),
        "progression": [int(d) for d in PROGRESSIONS[int(rng.integers(len(PROGRESSIONS)))]],
        "pad": bool(rng.random() < 0.7),
        "arp": bool(rng.random() < 0.7),
        "bass": bool(rng.random() < 0.8),
        "harmonics": int(rng.integers(3, 12)),
        "rolloff": round(float(rng.uniform(0.8, 2.2)), 3),
        "arp_decay_s": round(float(rng.uniform(0.12, 0.5)), 3),
        "cutoff_hz": round(float(rng.uniform(1500, 8000)), 1),
    }


def _note(
    freq: float, length: int, sr: int, table: np.ndarray, attack: int, decay_s: float | None
) -> np.ndarray:
    """One note ``[length]``: the table at ``freq`` Hz with a linear attack of ``attack`` samples
    then either an exponential decay (plucked) or a sustain with a 50 ms release (pad)."""
    t = np.arange(length)
    x = table_osc(t * (freq / sr), table)
    env = np.minimum(1.0, (t + 1) / max(attack, 1))
    if decay_s is not None:
        env = env * np.exp(-t / (decay_s * sr))
    else:
        rel = min(length, int(0.05 * sr))
        env[length - rel :] *= np.linspace(1, 0, rel)
    return (x * env).astype(np.float32)


def render_music(
    rng: np.random.Generator,
    n: int,
    sr: int,
    root: int,
    minor: bool,
    tempo: float,
    progression: list[int],
    pad: bool,
    arp: bool,
    bass: bool,
    harmonics: int,
    rolloff: float,
    arp_decay_s: float,
    cutoff_hz: float,
) -> np.ndarray:
    """A simple music bed ``[n]`` by additive synthesis (band-limited wavetables), RMS 1: one
    chord per bar from ``progression``, sustained pads, 8th-note arpeggios, a bass on beats 1
    and 3, humanised timing and velocity, low-passed at ``cutoff_hz`` (distant music)."""
    if not (pad or arp or bass):
        pad = True
    scale = MINOR if minor else MAJOR
    beat = 60.0 / tempo
    bar = int(4 * beat * sr)
    out = np.zeros(n + 4 * bar, np.float32)
    tables: dict[int, np.ndarray] = {}

    def table_for(midi: int) -> np.ndarray:
        if midi not in tables:
            k = max(1, min(harmonics, int(0.45 * sr / midi_hz(midi))))
            tables[midi] = wavetable(harmonic_amps(rng, k, rolloff, 0.3))
        return tables[midi]

    def place(x: np.ndarray, start: int, vel: float) -> None:
        if start < 0:  # a note that began before the bed: keep only its tail
            x, start = x[-start:], 0
        end = min(len(out), start + len(x))
        out[start:end] += vel * x[: end - start]

    # start anywhere in the progression and part way into a bar: a bed, not a song's intro
    offset = int(rng.integers(0, bar))
    first = int(rng.integers(len(progression)))
    for b in range(-(-(n + offset) // bar)):
        degree = progression[(first + b) % len(progression)]
        chord = [root + 12 + scale[(degree + i) % 7] + 12 * ((degree + i) // 7) for i in (0, 2, 4)]
        t0 = b * bar - offset
        if pad:
            for m in chord:
                jit = int(rng.normal(0, 0.01) * sr)
                place(_note(midi_hz(m), bar, sr, table_for(m), int(0.15 * sr), None), t0 + jit, 0.3)
        if arp:
            seq = chord + [chord[0] + 12, chord[1] + 12]
            for i in range(8):
                m = seq[i % len(seq)] + 12
                jit = int(rng.normal(0, 0.008) * sr)
                vel = float(rng.uniform(0.25, 0.45))
                note = _note(midi_hz(m), int(beat * sr), sr, table_for(m), 40, arp_decay_s)
                place(note, t0 + int(i * beat / 2 * sr) + jit, vel)
        if bass:
            m = root + scale[degree % 7] - 12 * (root + scale[degree % 7] > 52)
            for i in (0, 2):
                note = _note(midi_hz(m), int(2 * beat * sr), sr, table_for(m), 80, 0.6)
                place(note, t0 + int(i * beat * sr), 0.6)
    x = out[:n]
    if cutoff_hz < 0.45 * sr:
        x = fft_filter(x, sr, lowpass_gain(cutoff_hz, 2))
    return normalise_rms(x)


# --------------------------------------------------------------------------------------------
# road traffic


def draw_traffic(rng: np.random.Generator) -> dict[str, Any]:
    """Road traffic: a near engine (idling/accelerating), passing cars per minute, tyre-noise
    band, distant road rumble level and car-horn rate per minute (mostly none)."""
    return {
        "engine": draw_machine(rng, "engine") if rng.random() < 0.7 else None,
        "engine_db": round(float(rng.uniform(-12, 0)), 1),
        "cars_per_min": round(float(rng.uniform(3, 40)), 1),
        "tyre_hz": [
            round(float(rng.uniform(300, 800)), 1),
            round(float(rng.uniform(1.5e3, 4e3)), 1),
        ],
        "rumble_db": round(float(rng.uniform(-12, 0)), 1),
        "horns_per_min": round(float(rng.choice([0, 0, 0, 1, 3])), 1),
    }


def render_traffic(
    rng: np.random.Generator,
    n: int,
    sr: int,
    engine: dict[str, Any] | None,
    engine_db: float,
    cars_per_min: float,
    tyre_hz: list[float],
    rumble_db: float,
    horns_per_min: float,
) -> np.ndarray:
    """Road traffic ``[n]``, RMS 1: distant road rumble (brown noise), passing cars as swells of
    band-passed tyre noise (Gaussian envelopes 0.7-3 s wide), an engine with RPM changes, and
    now and then a short car horn (two detuned harmonic tones)."""
    t = np.arange(n) / sr
    seconds = n / sr
    x = render_colour(rng, n, sr, 2.0, 2000.0) * (10 ** (rumble_db / 20))
    # two tyre-noise colours, each car uses one: one FFT per colour instead of one per car
    tyres = [
        spectral_noise(rng, n, sr, band_gain(tyre_hz[0] * s, tyre_hz[1] * s, 1.5)) for s in (0.7, 1)
    ]
    envs = [np.zeros(n, np.float32), np.zeros(n, np.float32)]
    cars = int(rng.poisson(cars_per_min * (seconds + 4) / 60))
    for _ in range(cars):
        centre, width = rng.uniform(-2, seconds + 2), rng.uniform(0.7, 3.0)
        # +-4.5 widths: the Gaussian is down 88 dB there, so cutting it leaves no audible step
        lo = int(max(0, (centre - 4.5 * width) * sr))
        hi = int(min(n, (centre + 4.5 * width) * sr))
        if hi <= lo:
            continue
        seg = t[lo:hi]
        envs[int(rng.integers(2))][lo:hi] += float(rng.uniform(0.3, 3.0)) * np.exp(
            -0.5 * ((seg - centre) / width) ** 2
        )
    x = x + tyres[0] * envs[0] + tyres[1] * envs[1]
    if engine is not None:
        x = x + render_machine(rng, n, sr, **engine) * (10 ** (engine_db / 20))
    horns = int(rng.poisson(horns_per_min * seconds / 60))
    for _ in range(horns):
        f1 = rng.uniform(350, 520)
        length = int(rng.uniform(0.15, 0.8) * sr)
        start = int(rng.integers(0, max(1, n - length)))
        tt = np.arange(length) / sr
        amps = harmonic_amps(rng, max(1, int(0.45 * sr / (1.3 * f1))), 1.0)
        tab = wavetable(amps)
        tone = table_osc(tt * f1, tab) + table_osc(tt * f1 * rng.uniform(1.19, 1.3), tab)
        ramp = np.minimum(1, np.minimum(tt, tt[::-1]) / 0.01)
        end = min(n, start + length)
        x[start:end] += float(rng.uniform(0.5, 2.0)) * (tone * ramp)[: end - start]
    return normalise_rms(x)


# --------------------------------------------------------------------------------------------
# registry

KINDS: dict[str, tuple[Callable[..., dict[str, Any]], Callable[..., np.ndarray]]] = {
    "white": (lambda rng: draw_colour(rng, "white"), render_colour),
    "pink": (lambda rng: draw_colour(rng, "pink"), render_colour),
    "brown": (lambda rng: draw_colour(rng, "brown"), render_colour),
    "coloured": (lambda rng: draw_colour(rng, "coloured"), render_colour),
    "hum": (draw_hum, render_hum),
    "machine": (draw_machine, render_machine),
    "music": (draw_music, render_music),
    "traffic": (draw_traffic, render_traffic),
}


def draw(kind: str, rng: np.random.Generator) -> dict[str, Any]:
    """JSON-able parameters of a synthetic noise of ``kind`` (a key of :data:`KINDS`)."""
    return KINDS[kind][0](rng)


def render(kind: str, params: dict[str, Any], rng: np.random.Generator, n: int, sr: int):
    """Noise of ``kind`` with ``params`` from :func:`draw`: float32 ``[n]`` at ``sr`` Hz, RMS 1."""
    return KINDS[kind][1](rng, n, sr, **params)
