"""The ``siren`` preset: emergency sirens over urban background, 16 kHz mono, sources ``siren``
and ``background``.

Sirens are synthesised (wail, yelp, hi-lo, two-tone air horn, steady tone) as band-limited
harmonic series carried by a vehicle that drives past the listener on a straight line: the
received signal is the source signal at the emission time ``tau(t)`` solved exactly from
``t = tau + d(tau) / c``, which gives Doppler shift ``c / (c - v_radial)``, propagation delay,
``1 / distance`` gain and, per harmonic, air absorption that grows with frequency and distance.
Sirens may switch on or off inside the track. The few real sirens of the pool are used with
heavy augmentation (re-pitching, repetition, time shift, the same drive-past). Backgrounds mix
1-3 of: synthetic traffic (engines, tyre swells, the odd car horn), babble, distant music,
coloured noise, hum, machinery, and real background/noise clips of the track's split.

Audio is float32, stems ``[1, samples]`` at 16 kHz; distances in m, speeds in m/s, frequencies
in Hz, levels in dB.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deepsampler.data.debian_sirens import DebianSound
from deepsampler.data.levels import db_to_gain, rms_db
from deepsampler.data.real_pool import RealPool
from deepsampler.data.splits import stable_hash
from deepsampler.data.synth import noise as N
from deepsampler.data.synth.common import (
    RenderedTrack,
    TrackPlan,
    add_reverb,
    fit_length,
    require_program,
)
from deepsampler.data.synth.mixing import (
    draw_components,
    limit_peaks,
    load_pool_file,
    real_files_of,
    rel_path,
    render_components,
    trim_silence,
)

SR = 16000
SPEED_OF_SOUND = 343.0  # m/s at 20 °C
#: Air absorption alpha(f) = A1 f + A2 f^2 dB/m with f in kHz: fitted to ISO 9613-1 at 20 °C
#: and 70 % humidity (about 4.7 dB/km at 1 kHz, 33 dB/km at 4 kHz, 105 dB/km at 8 kHz).
AIR_A1 = 0.0035
AIR_A2 = 0.0012

#: Frequency ratios of the extra tones of air horns (minor/major third, fourth, fifth, sixth).
HORN_RATIOS = [1.19, 1.26, 1.335, 1.5, 1.68]
SIREN_KINDS = ("wail", "yelp", "hilo", "horn", "steady")
SIREN_WEIGHTS = np.array([3.0, 2.5, 2.5, 1.2, 0.3])
#: Background kinds (synthetic, then pool categories) and their weights.
BACKGROUND_WEIGHTS = {"traffic": 3.0, "babble": 0.8, "music": 0.6, "pink": 0.5, "brown": 0.6,
                      "coloured": 0.4, "hum": 0.4, "machine": 0.8}  # fmt: skip
BACKGROUND_REAL = {"background": 3.0, "noise": 2.0}


# --------------------------------------------------------------------------------------------
# a source driving past the listener


def emission_time(
    t: np.ndarray, speed: float, closest_m: float, t_closest: float, c: float = SPEED_OF_SOUND
) -> np.ndarray:
    """Emission times ``tau [n]`` (s) of the sound heard at listener times ``t [n]`` from a
    source moving on a straight line at ``speed`` m/s that is ``closest_m`` m away at
    ``tau = t_closest``: the root of ``t = tau + d(tau)/c`` with
    ``d(u)^2 = closest_m^2 + (speed u)^2``, ``u = tau - t_closest`` (exact, no iteration)."""
    big_t = t - t_closest
    c2, v2 = c * c, speed * speed
    root = np.sqrt(c2 * v2 * big_t**2 + (c2 - v2) * closest_m**2)
    return t_closest + (c2 * big_t - root) / (c2 - v2)


def distance(tau: np.ndarray, speed: float, closest_m: float, t_closest: float) -> np.ndarray:
    """Source-listener distance (m) at emission times ``tau``."""
    return np.sqrt(closest_m**2 + (speed * (tau - t_closest)) ** 2)


def doppler_factor(
    tau: np.ndarray, speed: float, closest_m: float, t_closest: float, c: float = SPEED_OF_SOUND
) -> np.ndarray:
    """d tau / d t: the received/emitted frequency ratio ``c / (c - v_radial)`` (``v_radial`` > 0
    while approaching) for sound emitted at ``tau``."""
    u = tau - t_closest
    return 1.0 / (1.0 + speed * speed * u / (c * distance(tau, speed, closest_m, t_closest)))


# --------------------------------------------------------------------------------------------
# siren patterns (source frame)


def _sweep(x: np.ndarray, rise: float) -> np.ndarray:
    """Periodic sweep in [0, 1] for phase ``x`` in cycles: a raised-cosine rise over ``rise`` of
    the period, then a raised-cosine fall."""
    x = x % 1.0
    up = 0.5 - 0.5 * np.cos(np.pi * np.minimum(x / rise, 1.0))
    down = 0.5 + 0.5 * np.cos(np.pi * np.clip((x - rise) / (1 - rise), 0.0, 1.0))
    return np.where(x < rise, up, down)


def source_frequency(tau: np.ndarray, s: dict[str, Any]) -> np.ndarray:
    """Instantaneous fundamental (Hz) of siren ``s`` at source times ``tau [n]``."""
    kind = s["kind"]
    x = tau / s.get("period_s", 1.0) + s.get("phase", 0.0)
    if kind in ("wail", "yelp"):
        f = s["f_lo"] + (s["f_hi"] - s["f_lo"]) * _sweep(x, s["rise"])
    elif kind == "hilo":
        # two tones with short glides between them (sharpness sets the glide time)
        k = s["sharpness"]
        w = 0.5 + 0.5 * np.tanh(k * np.sin(2 * np.pi * x)) / np.tanh(k)
        f = s["f_lo"] + (s["f_hi"] - s["f_lo"]) * w
    else:  # horn, steady: constant pitch
        f = np.full(tau.shape, float(s["f_lo"]))
    if kind == "horn":
        # air horns start flat and settle: a 5 % pitch droop decaying over 50 ms after each
        # blast onset (computed only near the onsets: tau is increasing)
        for start, _ in s["blasts"]:
            lo, hi = np.searchsorted(tau, [start, start + 0.4])
            f[lo:hi] *= 1 - 0.05 * np.exp(-(tau[lo:hi] - start) / 0.05)
    if kind == "wail" and s.get("spin_up_s"):
        # a mechanical wail spinning up after being switched on: pitch rises from a third
        on = s["on_s"] if s["on_s"] is not None else -1e9
        ramp = np.clip((tau - on) / s["spin_up_s"], 0.0, 1.0)
        f = f * (0.3 + 0.7 * np.sqrt(ramp))
    return f


def source_envelope(tau: np.ndarray, s: dict[str, Any]) -> np.ndarray:
    """Amplitude envelope in [0, 1] of siren ``s`` at source times ``tau``: switched on at
    ``on_s`` and off at ``off_s`` (None = before/after the track) with 40 ms ramps (a wail
    spinning down fades over a second); horns sound only during their blasts."""
    env = np.ones(tau.shape)
    ramp = 0.04
    if s["on_s"] is not None:
        env *= np.clip((tau - s["on_s"]) / ramp, 0.0, 1.0)
    if s["off_s"] is not None:
        fall = 1.0 if s["kind"] == "wail" else ramp
        env *= np.clip((s["off_s"] + fall - tau) / fall, 0.0, 1.0)
    if s["kind"] == "horn":
        blasts = np.zeros(tau.shape)
        for start, length in s["blasts"]:
            lo, hi = np.searchsorted(tau, [start, start + length])
            seg = tau[lo:hi]
            ramp_in_out = np.minimum(seg - start, start + length - seg) / 0.02
            blasts[lo:hi] = np.maximum(blasts[lo:hi], np.clip(ramp_in_out, 0.0, 1.0))
        env *= blasts
    return env


def harmonic_series(
    phase: np.ndarray, freq: np.ndarray, dist: np.ndarray, amps: np.ndarray, sr: int
) -> np.ndarray:
    """Sum over k of ``amps[k-1] * sin(2 pi k phase)`` with, per harmonic and per sample, air
    absorption over ``dist`` m at frequency ``k * freq`` and a fade-out approaching Nyquist
    (band limiting). ``phase`` in cycles, ``freq`` (Hz) and ``dist`` (m) all ``[n]``.

    sin(k x) and the absorption gain 10^(-(A1 k f + A2 k^2 f^2) d / 20) both follow
    multiplicative recurrences in k, so each harmonic costs a few multiply-adds, not a sin/exp.
    """
    # float32 from here: twice as fast, and the recurrences stay accurate to about -85 dB
    theta = (2 * np.pi) * (phase % 1.0)
    two_cos = (2 * np.cos(theta)).astype(np.float32)
    s_prev, s_cur = np.zeros(theta.shape, np.float32), np.sin(theta).astype(np.float32)
    fk = freq / 1000.0
    e1 = 10.0 ** (-AIR_A1 * fk * dist / 20)
    e2 = 10.0 ** (-AIR_A2 * fk * fk * dist / 20)
    e2sq = (e2 * e2).astype(np.float32)
    gain = (e1 * e2).astype(np.float32)  # harmonic 1
    step = (e1 * e2 * e2sq).astype(np.float32)  # gain_{k+1} / gain_k = e1 * e2^(2k+1)
    out = np.zeros(theta.shape, np.float32)
    f_lo, f_hi = float(freq.min()), float(freq.max())
    nyq_fade_lo, nyq_fade_hi = 0.42 * sr, 0.47 * sr
    for k, a in enumerate(amps, 1):
        if k * f_lo >= nyq_fade_hi:
            break
        term = np.float32(a) * gain * s_cur
        if k * f_hi > nyq_fade_lo:
            fade = np.clip((nyq_fade_hi - k * freq) / (nyq_fade_hi - nyq_fade_lo), 0, 1)
            term *= fade.astype(np.float32)
        out += term
        s_prev, s_cur = s_cur, two_cos * s_cur - s_prev
        gain *= step
        step *= e2sq
    return out


def render_synthetic_siren(s: dict[str, Any], n: int, sr: int) -> np.ndarray:
    """The siren ``s`` heard by the listener, float32 ``[n]`` (gain 1 at ``closest_m``)."""
    tr = s["trajectory"]
    t = np.arange(n) / sr
    tau = emission_time(t, tr["speed"], tr["closest_m"], tr["t_closest"])
    env = source_envelope(tau, s)
    out = np.zeros(n, np.float32)
    on = np.flatnonzero(env > 0)
    if on.size == 0:
        return out
    # synthesise only the span where the siren sounds
    lo, hi = int(on[0]), int(on[-1]) + 1
    tau, env = tau[lo:hi], env[lo:hi]
    dist = distance(tau, tr["speed"], tr["closest_m"], tr["t_closest"])
    dopp = doppler_factor(tau, tr["speed"], tr["closest_m"], tr["t_closest"])
    # source phase = integral of the source frequency over a uniform emission-time grid, read
    # at the emission times (the phase is smooth, so linear interpolation is accurate); the
    # received frequency is the source frequency times the Doppler factor d tau / d t
    grid = np.linspace(tau[0] - 1.0 / sr, tau[-1] + 1.0 / sr, tau.size + 2)
    f_grid = source_frequency(grid, s)
    phase_grid = np.concatenate([[0.0], np.cumsum(f_grid[:-1] * np.diff(grid))])
    base_phase = np.interp(tau, grid, phase_grid)
    base_freq = np.interp(tau, grid, f_grid) * dopp
    amps = np.asarray(s["amps"], np.float64)
    seg = np.zeros(tau.size, np.float32)
    for i, ratio in enumerate(s.get("ratios", [1.0])):
        phase = ratio * base_phase + 0.37 * i
        seg += harmonic_series(phase, ratio * base_freq, dist, amps, sr)
    out[lo:hi] = seg * (env * (tr["closest_m"] / dist)).astype(np.float32)
    # horn loudspeakers / air horns radiate a band, roughly 300 Hz - 5 kHz
    return N.fft_filter(out, sr, N.band_gain(s["band_hz"][0], s["band_hz"][1], 1.0))


def render_real_siren(s: dict[str, Any], n: int, sr: int, pool: RealPool) -> np.ndarray:
    """A real siren recording, re-pitched (resampled by ``pitch``), repeated ``repeats`` times
    from ``start_s`` (source time) and driven past the listener: Doppler by reading the source
    at the emission times, 1/distance gain, a distance-weighted low-pass for air absorption.
    float32 ``[n]``."""
    return drive_past_clip(trim_silence(load_pool_file(pool, s["file"], sr), sr), s, n, sr)


def drive_past_clip(x: np.ndarray, s: dict[str, Any], n: int, sr: int) -> np.ndarray:
    """The recorded siren ``x [m]`` (float32 at ``sr`` Hz) with the augmentation of ``s``
    (``pitch``, ``repeats``, ``start_s``, ``trajectory``; see :func:`render_real_siren`),
    float32 ``[n]``."""
    from deepsampler.audio import resample

    x = resample(x[None], int(round(sr * s["pitch"])), sr)[0]
    # repeat with 50 ms crossfades at the joins (no clicks), fade in and out at the ends
    fade = min(int(0.05 * sr), x.size // 4)
    ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
    one = x.astype(np.float32).copy()
    one[:fade] *= ramp
    one[-fade:] *= ramp[::-1]
    hop = one.size - fade
    x = np.zeros(hop * s["repeats"] + fade, np.float32)
    for r in range(s["repeats"]):
        x[r * hop : r * hop + one.size] += one
    tr = s["trajectory"]
    t = np.arange(n) / sr
    tau = emission_time(t, tr["speed"], tr["closest_m"], tr["t_closest"])
    dist = distance(tau, tr["speed"], tr["closest_m"], tr["t_closest"])
    y = np.interp(tau, s["start_s"] + np.arange(x.size) / sr, x, left=0.0, right=0.0)
    y *= tr["closest_m"] / dist
    lp = N.fft_filter(y, sr, N.lowpass_gain(2500.0, 1.0))
    w = 1 - np.exp(-dist / 150.0)
    return ((1 - w) * y + w * lp).astype(np.float32)


# --------------------------------------------------------------------------------------------
# planning


def draw_trajectory(rng: np.random.Generator, seconds: float) -> dict[str, float]:
    """A drive-past: speed 5-25 m/s, closest distance 3-50 m, time of closest approach
    anywhere from before the track to after it (so some sirens only approach or only leave)."""
    return {
        "speed": round(float(rng.uniform(5, 25)), 3),
        "closest_m": round(float(rng.uniform(3, 50)), 3),
        "t_closest": round(float(rng.uniform(-0.2, 1.2) * seconds), 3),
    }


def draw_presence(rng: np.random.Generator, seconds: float) -> tuple[float | None, float | None]:
    """Switch-on and switch-off times (s; None = on before / still on after the track): half
    the sirens sound throughout, the others enter, leave or both, for at least 1 s (or the
    whole track if it is shorter than 2 s)."""
    mode = rng.choice(["full", "enter", "leave", "burst"], p=[0.5, 0.2, 0.2, 0.1])
    if mode == "full" or seconds < 2.0:
        return None, None
    on = round(float(rng.uniform(0.05, 0.6) * seconds), 3) if mode in ("enter", "burst") else None
    off = None
    if mode in ("leave", "burst"):
        lo = max((on or 0.0) + 1.0, 0.4 * seconds)
        off = round(float(rng.uniform(lo, max(lo, 0.95 * seconds))), 3)
    return on, off


def draw_synthetic_siren(rng: np.random.Generator, seconds: float, kind: str) -> dict[str, Any]:
    """JSON-able parameters of a synthetic siren of ``kind`` (see :data:`SIREN_KINDS`)."""
    on, off = draw_presence(rng, seconds)
    s: dict[str, Any] = {
        "kind": kind,
        "on_s": on,
        "off_s": off,
        "phase": round(float(rng.random()), 4),
    }
    if kind == "wail":
        s["f_lo"], s["f_hi"] = rng.uniform(500, 800), rng.uniform(1100, 1600)
        s["period_s"], s["rise"] = rng.uniform(3, 6), rng.uniform(0.35, 0.6)
        spin = on is not None and rng.random() < 0.5  # a mechanical siren spinning up
        s["spin_up_s"] = rng.uniform(0.8, 2.0) if spin else None
    elif kind == "yelp":
        s["f_lo"], s["f_hi"] = rng.uniform(550, 900), rng.uniform(1200, 1700)
        s["period_s"], s["rise"] = rng.uniform(0.2, 0.4), rng.uniform(0.5, 0.9)
    elif kind == "hilo":
        s["f_lo"] = rng.uniform(400, 800)
        s["f_hi"] = s["f_lo"] * rng.uniform(1.2, 1.5)
        s["period_s"], s["sharpness"] = 2 * rng.uniform(0.35, 0.7), rng.uniform(4, 20)
    elif kind == "horn":
        # a two/three-tone air horn: a harsh chord of blasts (0.3-1.5 s) with gaps
        extra = rng.choice(HORN_RATIOS, int(rng.integers(1, 3)), replace=False)
        s.update(f_lo=rng.uniform(220, 450), ratios=[1.0, *sorted(float(r) for r in extra)])
        blasts, t = [], float(rng.uniform(-1.0, 0.5))
        while t < seconds + 0.5:
            length = float(rng.uniform(0.3, 1.5))
            blasts.append([round(t, 3), round(length, 3)])
            t += length + float(rng.uniform(0.1, 0.8))
        s["blasts"] = blasts
    else:  # steady
        s.update(f_lo=rng.uniform(500, 1200))
    # harmonic content: square-ish (weak even harmonics) to saw-ish; horns brighter
    count = 20 if kind == "horn" else 16
    rolloff = rng.uniform(0.7, 1.1) if kind == "horn" else rng.uniform(0.9, 1.6)
    amps = N.harmonic_amps(rng, count, float(rolloff), 0.4)
    amps[1::2] *= rng.uniform(0.05, 1.0)
    s["amps"] = [round(float(a), 4) for a in amps]
    s["band_hz"] = [round(float(rng.uniform(200, 500)), 1), round(float(rng.uniform(3e3, 7e3)), 1)]
    s["trajectory"] = draw_trajectory(rng, seconds)
    return {
        k: (round(float(v), 4) if isinstance(v, float | np.floating) else v) for k, v in s.items()
    }


def draw_real_siren(
    rng: np.random.Generator,
    seconds: float,
    pool: RealPool,
    split: str,
    debian: tuple[DebianSound, ...] = (),
) -> dict[str, Any] | None:
    """A real siren clip of ``split`` (the pool's, then the installed ``debian`` recordings)
    with its augmentation, or None if there is none. A pool clip is named by ``file`` (its
    path in the pool), a Debian one by ``debian`` (``package:path``)."""
    files = pool.select("siren", split)
    choices: list[tuple[str, str, float]] = [("file", rel_path(pool, f), f.seconds) for f in files]
    choices += [("debian", f"{d.package}:{d.path}", d.seconds) for d in debian]
    if not choices:
        return None
    key, name, clip_seconds = choices[int(rng.integers(len(choices)))]
    pitch = float(rng.uniform(0.8, 1.25))
    repeats = int(rng.integers(1, 4))
    # start so that at least half of the (repeated) clip falls inside the track
    total = max(clip_seconds, 1.0) * repeats / pitch
    return {
        "kind": "real",
        key: name,
        "pitch": round(pitch, 4),
        "repeats": repeats,
        "start_s": round(float(rng.uniform(-0.5 * total, 0.5 * seconds)), 3),
        "trajectory": draw_trajectory(rng, seconds),
    }


class SirenPreset:
    """Emergency sirens (synthetic with Doppler/distance, a few real) over urban background."""

    name = "siren"
    sources = ("siren", "background")
    sample_rate = SR
    channels = 1
    #: share of sirens drawn from real recordings (where the split has any)
    real_share = 0.1
    #: share of tracks with street reflections on the siren
    reverb_share = 0.4
    #: siren-to-background ratio range (dB, on the siren's active part)
    sbr_range = (-10.0, 10.0)
    background_weights = BACKGROUND_WEIGHTS
    background_real = BACKGROUND_REAL

    def debian_sirens(self, split: str) -> tuple[DebianSound, ...]:
        """Real siren recordings from Debian packages for ``split`` (none in this preset)."""
        return ()

    def check(self) -> None:
        """Raise DeepSamplerError naming the Debian package if espeak-ng (babble) is missing."""
        require_program("espeak-ng", "espeak-ng")

    def plan(self, split: str, index: int, seed: int, seconds: float, pool: RealPool) -> TrackPlan:
        """Decide 1-2 sirens (kind, pitch pattern, harmonics, trajectory, on/off), the
        background components, the siren-to-background ratio (-10..10 dB), level and reverb."""
        rng = np.random.default_rng([seed, stable_hash(split), index])
        name = f"siren_{split}_{index:05d}"
        track_seed = int(rng.integers(2**62))
        sirens = []
        for i in range(1 if rng.random() < 0.8 else 2):
            real = (
                draw_real_siren(rng, seconds, pool, split, self.debian_sirens(split))
                if rng.random() < self.real_share
                else None
            )
            if real is not None:
                sirens.append(real)
            else:
                kind = SIREN_KINDS[
                    int(rng.choice(len(SIREN_KINDS), p=SIREN_WEIGHTS / SIREN_WEIGHTS.sum()))
                ]
                sirens.append(draw_synthetic_siren(rng, seconds, kind))
            sirens[-1]["gain_db"] = 0.0 if i == 0 else round(float(rng.uniform(-8, 0)), 2)
        reverb = None
        if rng.random() < self.reverb_share:  # street reflections
            reverb = {
                "wet": round(float(rng.uniform(0.05, 0.3)), 3),
                "rt60": round(float(rng.uniform(0.3, 1.5)), 3),
            }
        background = draw_components(
            rng, split, seconds, pool, self.background_weights, self.background_real
        )
        params = {
            "sirens": sirens,
            "reverb": reverb,
            "background": background,
            "sbr_db": round(float(rng.uniform(*self.sbr_range)), 2),
            "level_db": round(float(rng.uniform(-24, -16)), 2),
        }
        params["real_files"] = sorted(set(real_files_of({"s": sirens, "b": background})))
        reals = [s.get("file") or s["debian"] for s in sirens if s["kind"] == "real"]
        piece = "real-siren:" + ",".join(reals) if reals else f"synth-siren:{split}:{seed}:{index}"
        return TrackPlan(name, split, track_seed, float(seconds), piece, params)

    def render_siren(self, s: dict[str, Any], n: int, sr: int, pool: RealPool) -> np.ndarray:
        """One planned siren as heard, float32 ``[n]`` (its level is set by the caller)."""
        if s["kind"] == "real":
            return render_real_siren(s, n, sr, pool)
        return render_synthetic_siren(s, n, sr)

    def render(self, plan: TrackPlan, pool: RealPool) -> RenderedTrack:
        """Stems ``{"siren": [1, n], "background": [1, n]}`` float32, n = round(seconds * 16000):
        the louder stem at ``level_db`` and the planned siren-to-background ratio, both measured
        while the siren is active."""
        sr = self.sample_rate
        n = int(round(plan.seconds * sr))
        p = plan.params
        rng_siren = np.random.default_rng([plan.seed, 1])
        rng_bg = np.random.default_rng([plan.seed, 2])
        siren = np.zeros(n, np.float32)
        sinfo = []
        for s in p["sirens"]:
            x = fit_length(self.render_siren(s, n, sr, pool), n)
            lvl = N.masked_rms_db(x, N.active_mask(x, sr))
            siren += x * np.float32(db_to_gain(s["gain_db"] - lvl))
            tr = s["trajectory"]
            keys = ("kind", "file", "debian", "pitch", "f_lo", "f_hi", "period_s", "on_s", "off_s")
            sinfo.append(
                {k: s[k] for k in keys if k in s}
                | {"speed_mps": tr["speed"], "closest_m": tr["closest_m"]}
                | {"t_closest_s": tr["t_closest"], "level_db": round(s["gain_db"], 2)}
            )
        if p["reverb"]:
            siren = add_reverb(siren[None], rng_siren, sr, **p["reverb"])[0]
        mask = N.active_mask(siren, sr)
        background, bfacts = render_components(p["background"], rng_bg, n, sr, pool)
        sbr = p["sbr_db"]
        # the louder of the two stems sits at level_db
        siren_db, bg_db = p["level_db"] + min(sbr, 0.0), p["level_db"] - max(sbr, 0.0)
        siren *= np.float32(db_to_gain(siren_db - N.masked_rms_db(siren, mask)))
        background *= np.float32(db_to_gain(bg_db - N.masked_rms_db(background, mask)))
        stems = {
            "siren": siren[None].astype(np.float32),
            "background": background[None].astype(np.float32),
        }
        limited = limit_peaks(stems)
        realised = N.masked_rms_db(stems["siren"][0], mask) - N.masked_rms_db(
            stems["background"][0], mask
        )
        info = {
            "sirens": sinfo,
            "siren_kinds": [s["kind"] for s in p["sirens"]],
            "sbr_db": sbr,
            "sbr_realised_db": round(float(realised), 2),
            "siren_active_fraction": round(float(mask.mean()), 3),
            "reverb": p["reverb"],
            "background": bfacts,
            "background_kinds": [c["kind"] for c in p["background"]],
            "peak_limit_db": limited,
            "real_files": p["real_files"],
            "loudness_db": {k: round(float(rms_db(v)), 2) for k, v in stems.items()},
        }
        return RenderedTrack(stems, info)
