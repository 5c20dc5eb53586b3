"""Shared pieces of the corpus synthesiser: what a track is before and after rendering, the real
recordings pool, stable split assignment, and small signal helpers used by every preset.

Shapes: audio is ``[channels, samples]`` float32 at the preset's sample rate (Hz).
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SPLITS = ("train", "valid", "test")
#: Fraction of source material (pieces, speakers, noise files) that goes to each split.
SPLIT_FRACTIONS = {"train": 0.8, "valid": 0.1, "test": 0.1}


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


def stable_hash(text: str) -> int:
    """A 64-bit hash of ``text`` that is the same in every process and Python run."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def split_of(key: str, fractions: dict[str, float] = SPLIT_FRACTIONS) -> str:
    """The split a piece of source material belongs to, fixed by its name alone."""
    u = (stable_hash(key) % 1_000_000) / 1_000_000
    acc = 0.0
    for split in SPLITS:
        acc += fractions[split]
        if u < acc:
            return split
    return SPLITS[-1]


def db_to_gain(db: float) -> float:
    return float(10.0 ** (db / 20.0))


def rms_db(x: np.ndarray) -> float:
    """RMS level in dBFS over all channels (float audio: 1.0 is full scale); silence is -120."""
    flat = np.ravel(x).astype(np.float32, copy=False)
    # einsum, not np.dot: a BLAS call would start OpenBLAS threads that compete with the other
    # render workers for the cores
    rms = (
        float(np.sqrt(np.einsum("i,i->", flat, flat, dtype=np.float64) / flat.size))
        if flat.size
        else 0.0
    )
    return 20.0 * np.log10(rms) if rms > 1e-6 else -120.0


def pan(mono: np.ndarray, channels: int, position: float) -> np.ndarray:
    """Constant-power pan of ``mono [n]`` to ``[channels, n]``; ``position`` in [-1, 1]."""
    if channels == 1:
        return mono[None].astype(np.float32)
    theta = (np.clip(position, -1, 1) + 1) * np.pi / 4
    gains = np.array([np.cos(theta), np.sin(theta)]) * np.sqrt(2)
    return (gains[:, None] * mono[None]).astype(np.float32)


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


@dataclass(frozen=True)
class RealFile:
    """One recording of the real training pool (``../shared/train-real``)."""

    path: Path
    category: str  # e.g. "speech", "noise", "music/isolated/drums"
    seconds: float
    split: str


def _split_key(rel: str) -> str:
    """What must not cross splits: a speaker for read speech, a song for multitracks, else the
    file itself."""
    p = Path(rel)
    if p.parts[0] == "speech":
        corpus, _, rest = p.stem.partition("__")
        speaker = rest.split("-")[0] if corpus == "libri" else ""
        return f"speech:{corpus}:{speaker}"
    if len(p.parts) > 2 and p.parts[1] == "multitrack":
        return "/".join(p.parts[:3])
    return rel


class RealPool:
    """Index of a real-recordings folder laid out like ``../shared/train-real`` (a MANIFEST.tsv
    with ``local_file``, ``category``, ``duration_s`` columns). Each file is assigned to one split
    by its name, so no recording is shared between train, valid and test.

    The pool is optional: presets must render without it (``RealPool.empty()``).
    """

    def __init__(self, root: Path | None, files: list[RealFile]):
        self.root = root
        self.files = files

    @classmethod
    def empty(cls) -> RealPool:
        return cls(None, [])

    @classmethod
    def open(cls, root: str | Path) -> RealPool:
        from deepsampler.errors import DeepSamplerError

        root = Path(root)
        manifest = root / "MANIFEST.tsv"
        if not manifest.is_file():
            raise DeepSamplerError(
                f"{root}: not a real-recordings pool (no MANIFEST.tsv); pass --real none to "
                f"render without real recordings"
            )
        files = []
        with manifest.open(newline="") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                rel = row["local_file"]
                path = root / rel
                if not path.is_file():
                    continue
                category = str(Path(rel).parent)
                files.append(
                    RealFile(
                        path, category, float(row.get("duration_s") or 0), split_of(_split_key(rel))
                    )
                )
        return cls(root, files)

    @classmethod
    def default(cls) -> RealPool:
        """The pool named by ``$DEEPSAMPLER_TRAIN_REAL`` or found at ``../shared/train-real``
        next to the working directory, else an empty pool."""
        env = os.environ.get("DEEPSAMPLER_TRAIN_REAL")
        for cand in ([Path(env)] if env else []) + [Path.cwd().parent / "shared" / "train-real"]:
            if (cand / "MANIFEST.tsv").is_file():
                return cls.open(cand)
        return cls.empty()

    def select(self, category_prefix: str, split: str) -> list[RealFile]:
        """Files of ``split`` whose category starts with ``category_prefix`` (e.g. "speech")."""
        return [
            f for f in self.files if f.split == split and f.category.startswith(category_prefix)
        ]

    def __bool__(self) -> bool:
        return bool(self.files)


def load_real(f: RealFile, sr: int) -> np.ndarray:
    """A real recording as mono float32 ``[n]`` at ``sr`` Hz."""
    from deepsampler.audio import read_audio, resample

    audio, file_sr = read_audio(f.path)
    mono = audio.mean(axis=0)
    if file_sr != sr:
        mono = resample(mono[None], file_sr, sr)[0]
    return mono.astype(np.float32)


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
