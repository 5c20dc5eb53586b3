#!/usr/bin/env python
"""Held-out real street streams with sirens at known times, for siren detection: report only.

NEVER train, tune, pick a checkpoint, a threshold or a hysteresis on these streams: they are the
project's held-out measure (``benchmarks/events.py``), built only from recordings that no corpus
uses for training or validation:

- **sirens**: the real-recordings pool's *test* split of ``siren/`` (empty today: its four ESC-50
  sirens hash to train (3) and valid (1), see ``data.synth.common.split_of``) and the held-out
  Debian recordings (``data.debian_sirens``, split ``test``: tuxpaint-stamps-default's fire
  engine and micropolis-data's siren), found under ``--debian-root`` (``/`` when installed);
- **backgrounds**: the pool's test split of ``background/`` (street, aircraft, bells, horns) and of
  ``noise/`` classes that sound like a steady bed (wind, rain, engines, fire, water ...), plus
  micropolis-data's heavy traffic;
- **confusers** (sounds a siren detector must not take for a siren): the pool's test split of the
  other ``noise/`` classes (alarm clocks, birds, animals, knocks, glass ...), read speech and
  solo music, and micropolis-data's car horns.

Each stream (``--stream-seconds``, 1-3 minutes by default, 16 kHz mono) is a chain of background
recordings joined with 0.5 s equal-power crossfades at a per-recording level jitter of +-3 dB, with
confusers laid on top at 0..+10 dB over the bed. In siren streams, sirens are inserted at known
times, 4-15 s each with 8-30 s between them, at an SNR drawn from ``--snr`` (siren RMS over its
active part against everything else over the same samples): each insert is a held-out recording
re-pitched (x0.85-1.18), repeated with crossfades to length and driven past the listener (Doppler
by reading it at the emission times, a 1/distance gain ramp floored at -8 dB, a distance-weighted
low-pass for air absorption), with 0.15 s fades at its ends. Siren-free streams
(``--free-fraction`` of the minutes) hold more confusers and no siren: false alarms are counted
on them.

Written to ``--out``: ``<stream>.wav`` (32-bit float), ``<stream>.txt`` (sed_eval / DCASE
annotations, one ``onset<TAB>offset<TAB>siren`` line per event, in s; empty for a siren-free
stream) and ``streams.json`` (per stream: seconds, siren-free or not, events with SNRs and
sources, confusers, the background chain; the held-out material with licences; the command).
Deterministic for a seed and the same installed material.

    .venv/bin/python scripts/make_siren_streams.py --out experiments/heldout-sirens

``--stems DIR`` also writes each siren event, with 1 s on each side, as a separation item
``DIR/<stream>_<k>/{mixture,siren,background}.wav`` (stems that add up to the mixture to float
rounding), so that ``deepsampler evaluate --data DIR --model siren-rt`` measures siren-rt on the
same held-out real sirens and streets (report only, like the streams).

``--split valid`` builds the same kind of streams from the pool's *valid* split instead (its one
ESC-50 siren, scorched3d-data's two Debian sirens where installed, its backgrounds and
confusers): the streams on which event thresholds and gap lengths may be chosen, since the test
streams may not be used for that.

    .venv/bin/python scripts/make_siren_streams.py --split valid --out experiments/valid-sirens

``--synthetic-sirens K`` (not with the test split) adds K synthetic siren recordings to the
split's real ones: the kinds of the ``siren-real`` corpus (wail, yelp, hi-lo, steady; not its
air horn, whose blasts with gaps make no continuous event and which the streams' car-horn
confusers resemble), drawn with its parameters, coloured by a horn loudspeaker and equalised as
that corpus does, rendered standing still for 12 s; the streams then drive them past as they do
the recordings. A valid split with few real sirens would otherwise choose the event rule for
those few recordings.

    .venv/bin/python scripts/make_siren_streams.py --out DIR --debian-root /tmp/debsirens/x
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import sys
from pathlib import Path

import numpy as np

from deepsampler.audio import resample, write_audio
from deepsampler.data.debian_sirens import (
    DEBIAN_CONFUSERS,
    DebianSound,
    find_debian_sirens,
    find_debian_sounds,
    load_debian_sound,
)
from deepsampler.data.levels import db_to_gain, rms_db
from deepsampler.data.real_pool import AUTO, RealPool, describe_auto, load_real
from deepsampler.data.splits import stable_hash
from deepsampler.data.synth import noise as N
from deepsampler.data.synth.mixing import trim_silence
from deepsampler.data.synth.siren import (
    SIREN_KINDS,
    SIREN_WEIGHTS,
    distance,
    draw_synthetic_siren,
    emission_time,
    render_synthetic_siren,
)
from deepsampler.data.synth.siren_real import apply_colour, draw_colour
from deepsampler.data.synth.speech_real import apply_eq, draw_eq
from deepsampler.errors import DeepSamplerError

SAMPLE_RATE = 16000
LABEL = "siren"
#: ``noise/`` classes (ESC-50 / MUSAN) that make a steady bed; every other class is a confuser.
BED_NOISE_CLASSES = frozenset(
    {
        "wind",
        "rain",
        "thunderstorm",
        "sea_waves",
        "insects",
        "crickets",
        "crackling_fire",
        "pouring_water",
        "water_drops",
        "vacuum_cleaner",
        "washing_machine",
        "engine",
        "train",
        "helicopter",
        "airplane",
        "footsteps",
        "noise",
    }
)
#: Confuser classes drawn more often (the issue's list: horns, alarms, birds, speech, music);
#: every other class weighs 1, shared among its recordings.
CONFUSER_WEIGHTS = {
    "car_horn": 3.0,
    "clock_alarm": 3.0,
    "chirping_birds": 3.0,
    "crow": 2.0,
    "rooster": 2.0,
    "hen": 1.5,
    "speech": 2.0,
    "music": 1.5,
    "church_bells": 1.5,
}
CROSSFADE_S = 0.5
SIREN_FADE_S = 0.15
GAIN_FLOOR_DB = -8.0  # a siren far off is still within 8 dB of its closest approach
EVENT_SECONDS = (4.0, 15.0)
GAP_SECONDS = (8.0, 30.0)
CONFUSER_MAX_S = 8.0
CONFUSER_DB = (0.0, 10.0)


class Clip:
    """One held-out recording: ``audio [n]`` mono float32 at 16 kHz, where it comes from (a pool
    path or ``package:/usr/share/...``), its class and licence. (A plain class: scripts are
    loaded without a module entry, which a dataclass needs.)"""

    __slots__ = ("source", "kind", "licence", "audio")

    def __init__(self, source: str, kind: str, licence: str, audio: np.ndarray) -> None:
        self.source, self.kind, self.licence, self.audio = source, kind, licence, audio


# --------------------------------------------------------------------------------------------
# material


def manifest_rows(pool: RealPool) -> dict[str, dict[str, str]]:
    """``{local_file: row}`` of the pool's MANIFEST.tsv."""
    with (pool.root / "MANIFEST.tsv").open(newline="") as fh:
        return {row["local_file"]: row for row in csv.DictReader(fh, delimiter="\t")}


def sound_class(row: dict[str, str]) -> str:
    """The recording's class, the note's first field (``dog; orig 44100 Hz`` -> ``dog``)."""
    return (row.get("note") or "").split(";")[0].split("(")[0].strip() or "unknown"


def _pool_clips(
    pool: RealPool, prefix: str, rows: dict[str, dict[str, str]], split: str = "test"
) -> list[Clip]:
    """The audible ``split`` files of ``prefix``, sorted by path (determinism)."""
    out = []
    for f in sorted(pool.select(prefix, split), key=lambda f: str(f.path)):
        rel = f.path.relative_to(pool.root).as_posix()
        row = rows.get(rel, {})
        audio = load_real(f, SAMPLE_RATE)
        if rms_db(audio) <= -100:
            continue  # silent: no level to set
        kind = "speech" if prefix == "speech" else sound_class(row)
        kind = "music" if prefix.startswith("music") else kind
        out.append(Clip(rel, kind, row.get("licence", ""), audio))
    return out


def _debian_clips(sounds: list[DebianSound], root: Path | None) -> list[Clip]:
    return [
        Clip(f"{s.package}:{s.path}", s.kind, s.licence, load_debian_sound(s, SAMPLE_RATE, root))
        for s in sounds
    ]


def gather(
    pool: RealPool, debian_root: Path | None, split: str = "test"
) -> tuple[dict[str, list[Clip]], list[str]]:
    """Clips of ``split`` ``{"siren", "bed", "confuser": [Clip]}`` and notes on what is
    missing. Raises DeepSamplerError without a siren or background of the split."""
    rows = manifest_rows(pool) if pool.root is not None else {}
    sirens = _pool_clips(pool, "siren", rows, split) if pool else []
    found, notes = find_debian_sirens(split, debian_root)
    sirens += _debian_clips(found, debian_root)
    if not sirens:
        raise DeepSamplerError(
            (
                "no held-out real siren recording (the pool's test split has none); "
                if split == "test"
                else f"no real siren recording in the {split} split; "
            )
            + "; ".join(notes)
            + " (or unpack them with dpkg -x and pass --debian-root)"
        )
    bed = _pool_clips(pool, "background", rows, split) if pool else []
    confusers = []
    for clip in _pool_clips(pool, "noise", rows, split) if pool else []:
        (bed if clip.kind in BED_NOISE_CLASSES else confusers).append(clip)
    if pool:
        confusers += _pool_clips(pool, "speech", rows, split)
        confusers += _pool_clips(pool, "music/isolated", rows, split)
    extra, extra_notes = find_debian_sounds(DEBIAN_CONFUSERS, split, debian_root)
    notes += [n for n in extra_notes if n not in notes]
    if split != "test":  # Debian material is assigned to train and test only: no news
        notes = [n for n in notes if "assigned" not in n]
    for clip in _debian_clips(extra, debian_root):
        (bed if clip.kind == "traffic" else confusers).append(clip)
    if not bed:
        raise DeepSamplerError(
            f"{pool.root}: its {split} split holds no background or steady noise recording; "
            "a stream needs one"
        )
    for c in sirens + confusers:
        c.audio = trim_silence(c.audio, SAMPLE_RATE)
    for c in bed:  # a bed must not drop out: ESC-50 pads short clips with digital silence
        c.audio = drop_digital_silence(c.audio, SAMPLE_RATE)
    return {"siren": sirens, "bed": bed, "confuser": confusers}, notes


SYNTHETIC_SECONDS = 12.0
# the corpus's siren kinds but its air horn: blasts with gaps are no continuous siren event, and
# the streams lay car horns in as confusers
SYNTHETIC_KINDS = tuple(k for k in SIREN_KINDS if k != "horn")
SYNTHETIC_WEIGHTS = np.array(
    [w for k, w in zip(SIREN_KINDS, SIREN_WEIGHTS, strict=True) if k != "horn"]
)
SYNTHETIC_WEIGHTS = SYNTHETIC_WEIGHTS / SYNTHETIC_WEIGHTS.sum()


def synthetic_sirens(count: int, seed: int) -> list[Clip]:
    """``count`` synthetic siren recordings ``Clip(source="synthetic:<kind>:<k>")``, 12 s at
    16 kHz, -20 dBFS RMS: kinds drawn with the siren corpus's weights (its air horn left out),
    each sounding throughout, standing still 10 m away (the stream drives it past), with a horn
    loudspeaker's colouring and a microphone equaliser as the ``siren-real`` corpus draws them."""
    clips = []
    for k in range(count):
        rng = np.random.default_rng([seed, stable_hash("synthetic-siren"), k])
        kind = SYNTHETIC_KINDS[int(rng.choice(len(SYNTHETIC_KINDS), p=SYNTHETIC_WEIGHTS))]
        s = draw_synthetic_siren(rng, SYNTHETIC_SECONDS, kind)
        # sounding throughout, no motion of its own: speed ~0 keeps the distance at 10 m
        s = {**s, "on_s": None, "off_s": None, "spin_up_s": None}
        s["trajectory"] = {"speed": 1e-3, "closest_m": 10.0, "t_closest": SYNTHETIC_SECONDS / 2}
        n = int(SYNTHETIC_SECONDS * SAMPLE_RATE)
        x = render_synthetic_siren(s, n, SAMPLE_RATE)
        x = apply_eq(apply_colour(x, SAMPLE_RATE, draw_colour(rng)), SAMPLE_RATE, draw_eq(rng))
        x = x * np.float32(db_to_gain(-20 - rms_db(x)))
        clips.append(Clip(f"synthetic:{kind}:{k}", kind, "generated", x.astype(np.float32)))
    return clips


def drop_digital_silence(x: np.ndarray, sr: int, frame_s: float = 0.02) -> np.ndarray:
    """``x [n]`` without its 20 ms frames of digital silence (peak below -90 dBFS), so that a
    chain of recordings never drops out; the cuts are where the signal is (almost) zero."""
    hop = int(frame_s * sr)
    m = x.size // hop
    frames = np.abs(x[: m * hop]).reshape(m, hop).max(axis=1)
    keep = np.repeat(frames > 10 ** (-90 / 20), hop)
    return np.concatenate([x[: m * hop][keep], x[m * hop :]]).astype(np.float32)


# --------------------------------------------------------------------------------------------
# rendering


def _ramp(n: int) -> np.ndarray:
    """Raised-cosine rise ``[n]`` from 0 to 1."""
    return (0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / max(n, 1))).astype(np.float32)


def crossfade_chain(parts: list[np.ndarray], fade: int) -> tuple[np.ndarray, list[int]]:
    """``parts`` joined end to start with equal-power crossfades of (at most) ``fade`` samples,
    and the sample where each part starts in the result."""
    out = parts[0].astype(np.float32).copy()
    starts = [0]
    for p in parts[1:]:
        k = min(fade, out.size // 2, p.size // 2)
        up = np.sqrt(_ramp(k))
        down = np.sqrt(1 - _ramp(k))
        joint = out[out.size - k :] * down + p[:k] * up
        starts.append(out.size - k)
        out = np.concatenate([out[: out.size - k], joint, p[k:]])
    return out, starts


def repeat_to(x: np.ndarray, n: int, fade: int) -> np.ndarray:
    """``x`` repeated with crossfades of ``fade`` samples until at least ``n`` samples."""
    parts = [x]
    while sum(p.size for p in parts) - fade * (len(parts) - 1) < n:
        parts.append(x)
    return crossfade_chain(parts, fade)[0]


def render_bed(
    rng: np.random.Generator, clips: list[Clip], n: int
) -> tuple[np.ndarray, list[dict]]:
    """A background chain ``[n]`` at 0 dBFS RMS +-3 dB per recording, and its record
    (source, start s, seconds, level jitter dB)."""
    fade = int(CROSSFADE_S * SAMPLE_RATE)
    weights = np.array([3.0 if c.source.startswith("background/") else 1.0 for c in clips])
    parts, record, length = [], [], 0
    order: list[int] = []
    while length < n:
        if not order:  # every recording once before any repeats, background/ ones earlier
            probs = weights / weights.sum()
            order = list(rng.choice(len(clips), len(clips), replace=False, p=probs))
        clip = clips[order.pop(0)]
        jitter = float(rng.uniform(-3, 3))
        x = clip.audio * np.float32(10 ** ((jitter - rms_db(clip.audio)) / 20))
        # the chain's exact length, with crossfade_chain's overlap rule
        length += x.size - (min(fade, length // 2, x.size // 2) if parts else 0)
        parts.append(x)
        record.append({"source": clip.source, "level_db": round(jitter, 2)})
    chain, starts = crossfade_chain(parts, fade)
    for r, start, p in zip(record, starts, parts, strict=True):
        r["start_s"] = round(start / SAMPLE_RATE, 3)
        r["seconds"] = round(p.size / SAMPLE_RATE, 3)
    return chain[:n], [r for r in record if r["start_s"] * SAMPLE_RATE < n]


def drive_past(rng: np.random.Generator, clip: Clip, n: int) -> tuple[np.ndarray, dict]:
    """``clip`` re-pitched, repeated and driven past the listener over ``n`` samples: float32
    ``[n]`` and its parameters (pitch factor, speed m/s, closest distance m, time of closest
    approach s from the insert's start)."""
    sr = SAMPLE_RATE
    pitch = float(rng.uniform(0.85, 1.18))
    x = resample(clip.audio[None], int(round(sr * pitch)), sr)[0]
    # the source must cover the emission times, which run up to ~8 % faster than the listener's
    src = repeat_to(x, int(1.15 * n) + sr, int(0.05 * sr))
    speed = float(rng.uniform(5, 25))
    closest = float(rng.uniform(5, 40))
    seconds = n / sr
    t_closest = float(rng.uniform(0.2, 0.8) * seconds)
    t = np.arange(n) / sr
    tau = emission_time(t, speed, closest, t_closest)
    dist = distance(tau, speed, closest, t_closest)
    start = float(rng.uniform(0, max(0.0, src.size / sr - (tau[-1] - tau[0]) - 0.1)))
    y = np.interp(tau - tau[0] + start, np.arange(src.size) / sr, src).astype(np.float32)
    lp = N.fft_filter(y, sr, N.lowpass_gain(2500.0, 1.0))
    w = 1 - np.exp(-dist / 150.0)
    y = (1 - w) * y + w * lp
    gain_db = np.maximum(20 * np.log10(closest / dist), GAIN_FLOOR_DB)
    y = y * 10 ** (gain_db / 20)
    k = min(int(SIREN_FADE_S * sr), n // 4)
    env = np.ones(n, np.float32)
    env[:k], env[n - k :] = _ramp(k), _ramp(k)[::-1]
    params = {
        "pitch": round(pitch, 4),
        "speed_mps": round(speed, 2),
        "closest_m": round(closest, 2),
        "t_closest_s": round(t_closest, 3),
        "start_in_source_s": round(start, 3),
    }
    return (y * env).astype(np.float32), params


def place(
    rng: np.random.Generator, n: int, length: int, busy: list[tuple[int, int]], margin: int
) -> int | None:
    """A start sample for ``length`` samples inside ``[margin, n - margin)`` clear of every
    ``busy`` span by ``margin`` samples, or None after 30 tries."""
    hi = n - margin - length
    for _ in range(30):
        if hi <= margin:
            return None
        s = int(rng.integers(margin, hi))
        if all(s + length + margin <= a or s >= b + margin for a, b in busy):
            return s
    return None


def level_on(x: np.ndarray, mask: np.ndarray) -> float:
    return N.masked_rms_db(x, mask)


def render_stream(
    rng: np.random.Generator,
    material: dict[str, list[Clip]],
    seconds: float,
    siren_free: bool,
    snr_db: tuple[float, float],
) -> tuple[np.ndarray, np.ndarray, dict]:
    """One stream: mixture ``[n]`` float32 at 16 kHz, its siren part alone ``[n]`` (scaled as
    in the mixture; the rest is the background) and its record (events, confusers, bed)."""
    sr = SAMPLE_RATE
    n = int(round(seconds * sr))
    bed, bed_record = render_bed(rng, material["bed"], n)
    mix = bed.copy()
    # sirens first (their spans are kept clear of confusers, so the SNR is against the bed)
    plans: list[tuple[int, int]] = []
    if not siren_free:
        t = float(rng.uniform(3, 10))
        while True:
            length = float(rng.uniform(*EVENT_SECONDS))
            length = min(length, seconds - 2 - t)
            if length < EVENT_SECONDS[0]:
                break
            plans.append((int(round(t * sr)), int(round((t + length) * sr))))
            t += length + float(rng.uniform(*GAP_SECONDS))
        if not plans:  # a short stream still gets one event
            length = min(EVENT_SECONDS[0], seconds / 2)
            a = int(round((seconds - length) / 2 * sr))
            plans.append((a, a + int(round(length * sr))))
    # confusers: about one per 12 s in a siren-free stream, one per 30 s beside sirens
    confusers, busy = [], list(plans)
    rate = 12.0 if siren_free else 30.0
    pool_c = material["confuser"]
    if pool_c:
        # a class's weight is shared by its recordings (32 speech files must not crowd out
        # the 2 alarm clocks)
        per_class: dict[str, int] = {}
        for c in pool_c:
            per_class[c.kind] = per_class.get(c.kind, 0) + 1
        w = np.array([CONFUSER_WEIGHTS.get(c.kind, 1.0) / per_class[c.kind] for c in pool_c])
        for _ in range(int(rng.poisson(seconds / rate))):
            clip = pool_c[int(rng.choice(len(pool_c), p=w / w.sum()))]
            x = clip.audio[: int(CONFUSER_MAX_S * sr)]
            s = place(rng, n, x.size, busy, sr)
            if s is None:
                continue
            busy.append((s, s + x.size))
            mask = N.active_mask(x, sr)
            cbr = float(rng.uniform(*CONFUSER_DB))
            gain = 10 ** ((cbr + level_on(bed[s : s + x.size], mask) - level_on(x, mask)) / 20)
            mix[s : s + x.size] += x * np.float32(gain)
            confusers.append(
                {
                    "onset": round(s / sr, 3),
                    "offset": round((s + x.size) / sr, 3),
                    "class": clip.kind,
                    "source": clip.source,
                    "db_over_bed": round(cbr, 2),
                }
            )
    events = []
    siren_track = np.zeros(n, np.float32)
    sirens = material["siren"]
    order = list(rng.permutation(len(sirens)))
    for i, (a, b) in enumerate(plans):
        clip = sirens[order[i % len(order)]]
        y, params = drive_past(rng, clip, b - a)
        mask = N.active_mask(y, sr)
        snr = float(rng.uniform(*snr_db))
        other = mix[a:b]
        y *= np.float32(10 ** ((snr + level_on(other, mask) - level_on(y, mask)) / 20))
        realised = level_on(y, mask) - level_on(other, mask)
        mix[a:b] = other + y
        siren_track[a:b] = y
        events.append(
            {
                "onset": round(a / sr, 3),
                "offset": round(b / sr, 3),
                "label": LABEL,
                "snr_db": round(snr, 2),
                "snr_realised_db": round(float(realised), 2),
                "source": clip.source,
                "kind": clip.kind,
                **params,
            }
        )
    # a street level (-32..-24 dBFS bed), never above 0.9 peak
    level = float(rng.uniform(-32, -24))
    scale = 10 ** ((level - rms_db(bed)) / 20)
    peak = float(np.abs(mix).max()) * scale
    scale *= min(1.0, 0.9 / peak) if peak > 0 else 1.0
    record = {
        "seconds": round(n / sr, 3),
        "siren_free": siren_free,
        "events": events,
        "confusers": confusers,
        "background": bed_record,
        "level_db": round(rms_db(mix * np.float32(scale)), 2),
    }
    g = np.float32(scale)
    return (mix * g).astype(np.float32), (siren_track * g).astype(np.float32), record


def write_separation_items(
    folder: Path, name: str, mixture: np.ndarray, siren: np.ndarray, events: list[dict]
) -> None:
    """One MUSDB18-HQ-layout item per siren event of a stream: ``folder/<name>_<k>/{mixture,
    siren,background}.wav`` over the event and 1 s on each side (clipped to the stream); the
    background is the mixture minus the siren, so the stems add up to the mixture (to float32
    rounding)."""
    sr = SAMPLE_RATE
    for k, e in enumerate(events):
        a = max(0, int(round((e["onset"] - 1.0) * sr)))
        b = min(mixture.size, int(round((e["offset"] + 1.0) * sr)))
        item = folder / f"{name}_{k:02d}"
        item.mkdir(parents=True, exist_ok=True)
        mix, sir = mixture[a:b], siren[a:b]
        for stem, x in (("mixture", mix), ("siren", sir), ("background", mix - sir)):
            write_audio(item / f"{stem}.wav", x[None], sr)


def stream_lengths(rng: np.random.Generator, seconds: float, lo: float, hi: float) -> list[float]:
    """Durations (s, 0.1 s steps) of about ``seconds / mean(lo, hi)`` streams drawn in
    ``[lo, hi]`` and scaled to add up to ``seconds``."""
    if seconds <= 0:
        return []
    count = max(1, int(round(seconds / ((lo + hi) / 2))))
    raw = rng.uniform(lo, hi, count)
    return [round(float(v), 1) for v in raw * seconds / raw.sum()]


def annotations(events: list[dict]) -> str:
    """sed_eval / DCASE reference lines ``onset\\toffset\\tlabel`` (s, 3 decimals)."""
    return "".join(f"{e['onset']:.3f}\t{e['offset']:.3f}\t{e['label']}\n" for e in events)


def make_streams(
    material: dict[str, list[Clip]],
    minutes: float,
    free_fraction: float,
    stream_seconds: tuple[float, float],
    snr_db: tuple[float, float],
    seed: int,
) -> list[tuple[str, np.ndarray, np.ndarray, dict]]:
    """``[(name, mixture [n], siren part [n], record)]``: siren streams ``siren_NN`` then
    siren-free ``free_NN``."""
    rng = np.random.default_rng(seed)
    total = minutes * 60
    free_s = total * free_fraction
    plan = [("siren", d) for d in stream_lengths(rng, total - free_s, *stream_seconds)]
    plan += [("free", d) for d in stream_lengths(rng, free_s, *stream_seconds)]
    out, counts = [], {"siren": 0, "free": 0}
    for kind, seconds in plan:
        name = f"{kind}_{counts[kind]:02d}"
        counts[kind] += 1
        child = np.random.default_rng([seed, stable_hash(name)])
        audio, siren, record = render_stream(child, material, seconds, kind == "free", snr_db)
        out.append((name, audio, siren, record))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--pool", default=AUTO, help=f"real-recordings pool folder (default: {describe_auto()})"
    )
    ap.add_argument("--out", required=True, help="folder to write (refused if it holds files)")
    ap.add_argument(
        "--split",
        choices=["test", "valid", "train"],
        default="test",
        help="whose recordings: test (default) is the held-out report set; valid builds "
        "streams to choose thresholds on (the pool's valid siren, backgrounds, confusers)",
    )
    ap.add_argument(
        "--stems",
        type=Path,
        help="also write each siren with 1 s around it as a separation item "
        "STEMS/<stream>_<k>/{mixture,siren,background}.wav (for `deepsampler evaluate`)",
    )
    ap.add_argument(
        "--synthetic-sirens",
        type=int,
        default=0,
        metavar="K",
        help="add K synthetic siren recordings of the siren-real corpus's kinds to the "
        "split's real ones (valid and train only; default 0)",
    )
    ap.add_argument("--minutes", type=float, default=30.0, help="total audio (default 30)")
    ap.add_argument("--seed", type=int, default=27)
    ap.add_argument("--snr", type=float, nargs=2, default=(-5.0, 10.0), metavar=("LO", "HI"))
    ap.add_argument(
        "--stream-seconds", type=float, nargs=2, default=(60.0, 180.0), metavar=("LO", "HI")
    )
    ap.add_argument(
        "--free-fraction", type=float, default=0.4, help="share of siren-free audio (0.4)"
    )
    ap.add_argument(
        "--debian-root",
        type=Path,
        default=None,
        help="where the Debian packages are unpacked (default $DEEPSAMPLER_DEBIAN_ROOT or /)",
    )
    args = ap.parse_args(argv)
    lo, hi = args.stream_seconds
    try:
        if args.minutes <= 0 or not 0 <= args.free_fraction < 1 or args.snr[0] > args.snr[1]:
            raise DeepSamplerError(
                "need --minutes > 0, 0 <= --free-fraction < 1 and --snr LO <= HI"
            )
        if not 10 <= lo <= hi:
            raise DeepSamplerError("need --stream-seconds LO HI with 10 <= LO <= HI")
        if args.synthetic_sirens < 0 or (args.synthetic_sirens and args.split == "test"):
            raise DeepSamplerError(
                "--synthetic-sirens takes K >= 0 and only with --split valid or train: "
                "the held-out test streams hold real sirens only"
            )
        pool = RealPool.from_setting(args.pool)
        if pool.root is None:
            raise DeepSamplerError("no real-recordings pool found; pass --pool DIR")
        out = Path(args.out)
        for folder in (out, args.stems):
            if folder is not None and folder.exists() and any(folder.iterdir()):
                raise DeepSamplerError(f"{folder}: exists and is not empty; choose a new folder")
        material, notes = gather(pool, args.debian_root, args.split)
        material["siren"] += synthetic_sirens(args.synthetic_sirens, args.seed)
        streams = make_streams(
            material, args.minutes, args.free_fraction, (lo, hi), tuple(args.snr), args.seed
        )
    except DeepSamplerError as exc:
        print(f"make_siren_streams: error: {exc}", file=sys.stderr)
        return 1
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for name, audio, siren, record in streams:
        if args.stems is not None:
            write_separation_items(args.stems, name, audio, siren, record["events"])
        write_audio(out / f"{name}.wav", audio[None], SAMPLE_RATE)
        (out / f"{name}.txt").write_text(annotations(record["events"]))
        sources = {e["source"] for e in record["events"] + record["confusers"]}
        sources |= {b["source"] for b in record["background"]}
        records.append(
            {"name": name, "audio": f"{name}.wav", "annotations": f"{name}.txt", **record}
            | {"sources": sorted(sources)}
        )
    used = {s for r in records for s in r["sources"]}
    material_record = {
        role: [
            {"source": c.source, "class": c.kind, "licence": c.licence,
             "seconds": round(c.audio.size / SAMPLE_RATE, 2)}
            for c in clips
            if c.source in used
        ]
        for role, clips in material.items()
    }  # fmt: skip
    free = [r for r in records if r["siren_free"]]
    index = {
        "purpose": "held-out real siren streams: report only; never train, tune or choose on it"
        if args.split == "test"
        else f"real siren streams of the pool's {args.split} split: for choosing, not reporting",
        "split": args.split,
        "command": shlex.join(["scripts/make_siren_streams.py", *(argv or sys.argv[1:])]),
        "pool": str(pool.root),
        "pool_split": f"{args.split} (by recording)",
        "debian_split": f"{args.split} (by package; test: tuxpaint-stamps-default, "
        "micropolis-data; train: lincity-ng-data)",
        "notes": notes,
        "seed": args.seed,
        "snr_db": list(args.snr),
        "sample_rate": SAMPLE_RATE,
        "label": LABEL,
        "minutes": round(sum(r["seconds"] for r in records) / 60, 2),
        "siren_free_minutes": round(sum(r["seconds"] for r in free) / 60, 2),
        "events": sum(len(r["events"]) for r in records),
        "material": material_record,
        "streams": records,
    }
    index["digest"] = f"{stable_hash(json.dumps(records, sort_keys=True)):016x}"
    (out / "streams.json").write_text(json.dumps(index, indent=2) + "\n")
    print(
        f"wrote {len(records)} streams ({index['minutes']:.1f} min, {index['events']} sirens, "
        f"{index['siren_free_minutes']:.1f} siren-free min, "
        f"{len(material_record['siren'])} siren recordings) to {out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
