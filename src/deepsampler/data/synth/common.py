"""Shared pieces of the corpus synthesiser: what a track is before and after rendering, rooms
(synthetic reverberation) and the missing-program error used by every preset.

Levels (``rms_db``, ``db_to_gain``, ``pan``) are in :mod:`deepsampler.data.levels`, split
assignment in :mod:`deepsampler.data.splits`, and the real-recordings pool in
:mod:`deepsampler.data.real_pool`, where the runtime dataset finds them too.

Shapes: audio is ``[channels, samples]`` float32 at the preset's sample rate (Hz).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Re-exported for the ``data synth`` command, which imports the pool from here.
from deepsampler.data.real_pool import RealPool as RealPool


@dataclass(frozen=True)
class TrackPlan:
    """Everything needed to render one track, decided before any rendering happens.

    ``piece`` names the source material (a score, a generator seed, a speaker); the planner
    guarantees that no piece appears in two splits. ``params`` is preset-specific and must be
    JSON-serialisable: it is written to ``corpus.json`` so a track can be re-rendered exactly.
    """

    name: str
    split: str
    seed: int
    seconds: float
    piece: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class RenderedTrack:
    """Stems ``{source: [channels, samples]}`` (float32, equal shapes) and JSON-able facts."""

    stems: dict[str, np.ndarray]
    info: dict[str, Any]


def fit_length(x: np.ndarray, n: int) -> np.ndarray:
    """Cut or zero-pad the last axis of ``x`` to ``n`` samples."""
    if x.shape[-1] >= n:
        return x[..., :n]
    pad = [(0, 0)] * (x.ndim - 1) + [(0, n - x.shape[-1])]
    return np.pad(x, pad)


def room_impulse(rng: np.random.Generator, sr: int, channels: int, rt60: float) -> np.ndarray:
    """A synthetic room response ``[channels, n]``: a direct path plus exponentially decaying,
    decorrelated noise per channel (late reverb), with high frequencies decaying faster."""
    n = max(1, int(rt60 * sr))
    t = np.arange(n) / sr
    decay = np.exp(-6.9 * t / rt60)
    ir = rng.standard_normal((channels, n)) * decay
    # darker tail: a one-pole low-pass whose cut-off falls over time is approximated by mixing
    # the noise with its smoothed copy, more smoothed later on
    smooth = np.cumsum(ir, axis=1)
    smooth -= np.concatenate([np.zeros((channels, 8)), smooth[:, :-8]], axis=1)
    smooth /= 8.0
    w = np.clip(t / rt60, 0, 1)
    ir = (1 - w) * ir + w * smooth
    ir[:, 0] = 0.0
    ir /= np.sqrt(np.sum(ir**2, axis=1, keepdims=True)) + 1e-12
    return ir.astype(np.float32)


def add_reverb(
    x: np.ndarray, rng: np.random.Generator, sr: int, wet: float, rt60: float
) -> np.ndarray:
    """``x [c, n]`` plus ``wet`` (0..1) of a synthetic room of reverberation time ``rt60`` s.
    The output keeps the input's length (the tail past the end is cut)."""
    if wet <= 0:
        return x
    return add_shared_reverb({"x": x}, {"x": wet}, rng, sr, rt60)["x"]


def require_program(program: str, package: str) -> str:
    """Path of ``program``; a one-line error naming the Debian package when it is missing."""
    import shutil

    from deepsampler.errors import DeepSamplerError

    path = shutil.which(program)
    if path is None:
        raise DeepSamplerError(
            f"'{program}' not found: install the Debian package with "
            f"'sudo apt-get install {package}' (or run 'scripts/setup.sh data')"
        )
    return path


def add_shared_reverb(
    stems: dict[str, np.ndarray],
    wets: dict[str, float],
    rng: np.random.Generator,
    sr: int,
    rt60: float,
) -> dict[str, np.ndarray]:
    """Put every stem ``[c, n]`` in one room, each with its own ``wets[source]`` send (0..1).

    The response's spectrum is computed once for all stems (``add_reverb`` is the one-stem
    case)."""
    import scipy.fft

    first = next(iter(stems.values()))
    channels, n = first.shape
    ir = room_impulse(rng, sr, channels, rt60)
    size = scipy.fft.next_fast_len(n + ir.shape[1] - 1, real=True)
    spec = scipy.fft.rfft(ir, size, axis=1)
    out = {}
    for name, x in stems.items():
        wet = wets.get(name, 0.0)
        if wet <= 0 or not np.any(x):
            out[name] = x
            continue
        tail = scipy.fft.irfft(scipy.fft.rfft(x, size, axis=1) * spec, size, axis=1)[:, :n]
        out[name] = ((1 - wet) * x + wet * tail).astype(np.float32)
    return out
