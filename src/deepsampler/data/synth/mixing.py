"""Noise beds for the speech and siren presets: what both mix under their target.

Real clips of the pool (loaded once, cached, trimmed of room tone, laid end to end with
crossfades), babble (real talkers of the track's split or re-pitched espeak-ng voices), and
1-3 noise *components* (synthetic kinds of :mod:`~deepsampler.data.synth.noise`, babble, real
clips of a pool category) with their own gains and slow swells; plus the peak limiter that
scales all stems of a track together.

Audio is float32 ``[samples]`` at ``sr`` Hz (16 kHz by default); levels in dB.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from deepsampler.data.levels import db_to_gain, rms_db
from deepsampler.data.real_pool import RealFile, RealPool, load_real
from deepsampler.data.synth import noise as N
from deepsampler.data.synth.voices import SR, draw_utterance, draw_voice, espeak, estimate_seconds

#: Largest absolute sample any stem may reach; a render above it scales all its stems down.
PEAK_MAX = 0.95

# --------------------------------------------------------------------------------------------
# real recordings


@functools.lru_cache(maxsize=256)
def _load_cached(path: str, category: str, sr: int) -> np.ndarray:
    from pathlib import Path

    x = load_real(RealFile(Path(path), category, 0.0, ""), sr)
    x.setflags(write=False)
    return x


def load_pool_file(pool: RealPool, rel: str, sr: int = SR) -> np.ndarray:
    """The pool file ``rel`` (path relative to the pool root) as mono float32 ``[n]`` at ``sr``
    Hz, cached (read-only) because a corpus reuses the same clips many times."""
    from deepsampler.errors import DeepSamplerError

    if pool.root is None:
        raise DeepSamplerError(f"the plan uses the real recording {rel} but no pool was given")
    return _load_cached(str(pool.root / rel), str(rel).rsplit("/", 1)[0], sr)


def rel_path(pool: RealPool, f: RealFile) -> str:
    """``f``'s path relative to the pool root, as a string with forward slashes."""
    assert pool.root is not None
    return f.path.relative_to(pool.root).as_posix()


def trim_silence(x: np.ndarray, sr: int, range_db: float = 45.0) -> np.ndarray:
    """``x [n]`` without leading/trailing stretches quieter than ``range_db`` below its loudest
    10 ms frame (recordings start and end with room tone), keeping 50 ms of margin."""
    mask = N.active_mask(x, sr, 0.01, range_db)
    if not mask.any():
        return x
    idx = np.flatnonzero(mask)
    margin = int(0.05 * sr)
    return x[max(0, idx[0] - margin) : idx[-1] + margin]


def pick_files(
    rng: np.random.Generator, files: list[RealFile], seconds: float, max_files: int = 12
) -> list[RealFile]:
    """Random files (without repeats while possible) whose durations add up to ``seconds``."""
    out: list[RealFile] = []
    total = 0.0
    order = list(rng.permutation(len(files)))
    while total < seconds and len(out) < max_files and files:
        if not order:
            order = list(rng.permutation(len(files)))
        f = files[int(order.pop())]
        out.append(f)
        total += max(f.seconds, 0.5)
    return out


def loop_clips(
    rng: np.random.Generator, clips: list[np.ndarray], n: int, sr: int, fade_s: float = 0.05
) -> np.ndarray:
    """Clips laid end to end with ``fade_s`` crossfades, cycled until ``n`` samples are filled,
    starting at a random point of the first clip. float32 ``[n]``."""
    clips = [c for c in clips if c.size > 4 * int(fade_s * sr)] or [np.zeros(n, np.float32)]
    fade = int(fade_s * sr)
    ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
    out = np.zeros(n + fade, np.float32)
    pos = -int(rng.integers(0, max(1, clips[0].size - fade)))
    i = 0
    while pos < n:
        c = clips[i % len(clips)].astype(np.float32).copy()
        c[:fade] *= ramp
        c[-fade:] *= ramp[::-1]
        lo, hi = max(0, pos), min(n + fade, pos + c.size)
        out[lo:hi] += c[lo - pos : hi - pos]
        pos += c.size - fade
        i += 1
    return out[:n]


# --------------------------------------------------------------------------------------------
# babble


def draw_babble(
    rng: np.random.Generator, split: str, seconds: float, pool: RealPool
) -> dict[str, Any]:
    """Babble of 3-8 talkers: real read speech of ``split`` (when the pool has some, half the
    time) or 2 espeak-ng voices whose speech is re-pitched into the talkers."""
    talkers = int(rng.integers(3, 9))
    files = pool.select("speech", split)
    if files and rng.random() < 0.5:
        chosen = [files[int(i)] for i in rng.choice(len(files), min(talkers, len(files)), False)]
        return {"source": "real", "files": [rel_path(pool, f) for f in chosen]}
    voices = [draw_voice(rng, 0.5) for _ in range(2)]
    # each voice says about min(seconds, 6) s; longer tracks cycle it (babble is unintelligible)
    texts = []
    for v in voices:
        said, t = [], 0.0
        while t < min(seconds, 6.0) + 1:
            said.append(draw_utterance(rng, v["lang"]))
            t += estimate_seconds(said[-1], v["rate"]) + 0.2
        texts.append(said)
    factors = [round(float(f), 4) for f in rng.uniform(0.82, 1.22, talkers)]
    return {"source": "espeak", "voices": voices, "texts": texts, "factors": factors}


def render_babble(
    rng: np.random.Generator, n: int, sr: int, pool: RealPool, **p: Any
) -> tuple[np.ndarray, dict[str, Any]]:
    """Babble ``[n]`` (RMS 1) and facts about it. Each talker is a loop of speech with its own
    start point, level and (for espeak) resampling factor, which shifts pitch and formants so
    that two voices become several distinct talkers."""
    from deepsampler.audio import resample

    streams: list[np.ndarray] = []
    if p["source"] == "real":
        for rel in p["files"]:
            streams.append(N.normalise_rms(trim_silence(load_pool_file(pool, rel, sr), sr)))
        used = {"files": p["files"]}
    else:
        bases, used_voices = [], []
        for v, texts in zip(p["voices"], p["texts"], strict=True):
            said = espeak(texts, v["voice"], v["rate"], v["pitch"], sr)
            used_voices.append(said["voice"])
            gap = np.zeros(int(0.15 * sr), np.float32)
            parts = [a for u in said["utterances"] for a in (u, gap)]
            bases.append(np.concatenate(parts) if parts else np.zeros(sr, np.float32))
        for i, f in enumerate(p["factors"]):
            base = bases[i % len(bases)]
            streams.append(N.normalise_rms(resample(base[None], int(round(sr * f)), sr)[0]))
        used = {"voices": used_voices, "factors": p["factors"]}
    out = np.zeros(n, np.float32)
    for s in streams:
        out += loop_clips(rng, [s], n, sr) * db_to_gain(float(rng.uniform(-6, 0)))
    return N.normalise_rms(out), {"talkers": len(streams), **used}


# --------------------------------------------------------------------------------------------
# noise components: what both presets mix under their target


def draw_component(
    kind: str, rng: np.random.Generator, split: str, seconds: float, pool: RealPool
) -> dict[str, Any]:
    """One noise component ``{"kind", "params", "gain_db", "swell_db", "swell_s"}``. Kinds:
    those of :data:`noise.KINDS`, "babble", and "real:<category>" (pool clips of ``split``)."""
    if kind == "babble":
        params = draw_babble(rng, split, seconds, pool)
    elif kind.startswith("real:"):
        files = pool.select(kind[5:], split)
        params = {"files": [rel_path(pool, f) for f in pick_files(rng, files, seconds + 1)]}
    else:
        params = N.draw(kind, rng)
    return {
        "kind": kind,
        "params": params,
        "gain_db": 0.0,
        "swell_db": round(float(rng.uniform(0, 6)), 2),
        "swell_s": round(float(rng.uniform(1, 5)), 2),
    }


def draw_components(
    rng: np.random.Generator,
    split: str,
    seconds: float,
    pool: RealPool,
    weights: dict[str, float],
    real: dict[str, float],
    most: int = 3,
) -> list[dict[str, Any]]:
    """1-``most`` distinct noise components drawn with ``weights`` over synthetic kinds and
    ``real`` weights over pool categories (used only when the split has files there), each
    component but the first at -10..0 dB relative to the first."""
    table = dict(weights)
    for cat, w in real.items():
        if pool.select(cat, split):
            table[f"real:{cat}"] = w
    kinds = list(table)
    probs = np.array([table[k] for k in kinds], np.float64)
    count = min(len(kinds), int(rng.integers(1, most + 1)))
    chosen = [kinds[int(i)] for i in rng.choice(len(kinds), count, False, probs / probs.sum())]
    comps = [draw_component(k, rng, split, seconds, pool) for k in chosen]
    for c in comps[1:]:
        c["gain_db"] = round(float(rng.uniform(-10, 0)), 2)
    return comps


def render_components(
    comps: list[dict[str, Any]], rng: np.random.Generator, n: int, sr: int, pool: RealPool
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """The sum ``[n]`` of the components (each RMS 1 times its gain and slow swell) and a JSON
    list describing each (kind, files/voices, level in dBFS before the final scaling)."""
    out = np.zeros(n, np.float32)
    facts = []
    for c in comps:
        kind, p = c["kind"], c["params"]
        fact: dict[str, Any] = {"kind": kind}
        if kind == "babble":
            x, more = render_babble(rng, n, sr, pool, **p)
            fact.update(more)
        elif kind.startswith("real:"):
            clips = [trim_silence(load_pool_file(pool, rel, sr), sr) for rel in p["files"]]
            x = N.normalise_rms(loop_clips(rng, [N.normalise_rms(c) for c in clips], n, sr))
            fact["files"] = p["files"]
        else:
            x = N.render(kind, p, rng, n, sr)
        x = x * db_to_gain(c["gain_db"]) * N.slow_gain(rng, n, sr, c["swell_db"], c["swell_s"])
        fact["rms_db"] = round(rms_db(x), 2)
        facts.append(fact)
        out += x
    return out, facts


def real_files_of(params: Any) -> list[str]:
    """Every pool path (string under a "files" key) referenced anywhere in ``params``."""
    found: list[str] = []
    if isinstance(params, dict):
        for k, v in params.items():
            if k in ("files", "file"):
                found += [v] if isinstance(v, str) else list(v)
            else:
                found += real_files_of(v)
    elif isinstance(params, list):
        for v in params:
            found += real_files_of(v)
    return found


def limit_peaks(stems: dict[str, np.ndarray], peak: float = PEAK_MAX) -> float:
    """Scale all ``stems`` (in place) by one gain so no stem exceeds ``peak``: ratios between
    stems (the SNR) stay as planned. Returns the gain in dB (0 when nothing was done)."""
    top = max(float(np.abs(s).max()) for s in stems.values())
    if top <= peak:
        return 0.0
    g = peak / top
    for k in stems:
        stems[k] *= np.float32(g)
    return round(20 * np.log10(g), 2)
