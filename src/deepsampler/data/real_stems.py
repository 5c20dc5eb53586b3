"""Real recorded stems, held in memory, to swap into training examples.

A separator trained only on rendered stems does worse on real songs than one that also hears
real recordings (DESIGN.md section 4: swapping real stems into about half of the training
examples raised SDR on real songs by about 1 dB). :class:`RealStemPool` gathers, per source name
(``vocals``, ``drums``, ``bass``, ``other``), the real recordings available on this machine:

- the real-recordings pool (found by :func:`~deepsampler.data.real_pool.find_pool_root`; its
  index is :class:`~deepsampler.data.real_pool.RealPool`): ``music/isolated/<category>/`` (vocals,
  drums, bass; keys, guitar and strings_winds as ``other``; the mixed ``drums_bass`` submix is
  skipped) and the drum stems ``music/multitrack/mdbdrums_*/drums.flac``;
- Debian packages, where installed: ``sonic-pi-samples`` (CC0 drum loops, guitar phrases, a
  piano, a choir) and ``fretsonfire-songs-*`` (real lead-guitar tracks; their backing tracks are
  mixes and are not used).

Every part is optional: a source without material, or with less than
:data:`MIN_SOURCE_SECONDS` of it (a minute of real singing reused thousands of times made vocals
worse), gets no real stems (:meth:`summary` lists it), and an empty pool swaps nothing.
Recordings shorter than ``min_seconds`` or silent throughout are skipped; the rest are
resampled once (soxr) to the dataset's rate and kept as float32 ``[1 or 2, n]`` arrays (stereo
files whose channels are equal are kept mono).

:meth:`RealStemPool.draw` cuts a random segment (file chosen with probability proportional to
its length, random offset; shorter files looped or zero-padded at a random place), pans mono
material to a random constant-power position, re-draws silent segments and normalises the level
to a random RMS in ``rms_db`` (dBFS), never above full scale. It depends only on the generator
passed in.

Pickling (DataLoader workers started with ``spawn``) carries the file list, not the audio; the
copy loads its audio on first use. Workers started with ``fork`` (the Linux default) share the
parent's arrays.
"""

from __future__ import annotations

import csv
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from deepsampler.audio import resample
from deepsampler.data.levels import pan
from deepsampler.data.levels import rms_db as rms_dbfs  # draw() takes an rms_db range
from deepsampler.data.real_pool import NONE, POOL_ENV, RealPool, describe_auto, find_pool_root
from deepsampler.errors import DeepSamplerError
from deepsampler.sources import MUSIC4_SOURCES

DEFAULT_SOURCES = MUSIC4_SOURCES
#: Least real material (s) a source needs to get real stems; see :class:`RealStemPool`.
MIN_SOURCE_SECONDS = 120.0

#: ``music/isolated/<category>`` of the real pool -> source; ``drums_bass`` (a submix) is skipped.
ISOLATED_CATEGORIES = {
    "vocals": "vocals",
    "drums": "drums",
    "bass": "bass",
    "keys": "other",
    "guitar": "other",
    "strings_winds": "other",
}

SONIC_PI_DIR = Path("/usr/share/sonic-pi/samples")
#: Sonic Pi samples (all CC0, from freesound.org) that are real recordings of one source. Left out:
#: synthesised basses (bass_*), electronic one-shots and loops (elec_*, loop_electric,
#: loop_mehackit*, loop_weirdo), sound effects and drones, and clips shorter than a second.
SONIC_PI_STEMS = {
    "loop_amen": "drums",
    "loop_amen_full": "drums",
    "loop_breakbeat": "drums",
    "loop_compus": "drums",
    "loop_garzul": "drums",
    "loop_mika": "drums",
    "loop_safari": "drums",
    "loop_tabla": "drums",
    "loop_perc1": "drums",
    "loop_perc2": "drums",
    "drum_roll": "drums",
    "guit_e_fifths": "other",
    "guit_e_slide": "other",
    "guit_em9": "other",
    "guit_harmonics": "other",
    "ambi_piano": "other",
    "ambi_choir": "vocals",
}

FRETSONFIRE_DIR = Path("/usr/share/games/fretsonfire/data/songs")
#: Per Frets on Fire song folder: the guitar part(s) only; ``song.ogg`` is the backing mix.
FRETSONFIRE_STEMS = {"guitar.ogg": "other", "rhythm.ogg": "other"}
FRETSONFIRE_LICENCES = {"muldjord": "CC BY-SA 3.0", "sectoid": "MIT (Expat)"}

_LICENCE_PATTERNS = (
    (r"CC[ -]?BY[ -]NC[ -]SA", "CC BY-NC-SA"),
    (r"CC[ -]?BY[ -]NC[ -]ND", "CC BY-NC-ND"),
    (r"CC[ -]?BY[ -]NC", "CC BY-NC"),
    (r"CC[ -]?BY[ -]SA", "CC BY-SA"),
    (r"CC[ -]?BY", "CC BY"),
    (r"CC0", "CC0"),
    (r"public domain", "public domain"),
    (r"MIT", "MIT"),
)


def licence_kind(text: str) -> str:
    """The licence family in a free-text licence note ("BRID: CC BY-NC-SA 4.0" -> "CC BY-NC-SA");
    the text itself when no known family is named."""
    for pattern, kind in _LICENCE_PATTERNS:
        if re.search(pattern, text, flags=re.IGNORECASE):
            return kind
    return text.strip() or "unknown"


@dataclass(frozen=True)
class RealStemFile:
    """One recording usable as ``source``: where it comes from and under which licence."""

    path: Path
    source: str
    origin: str  # "train-real", "sonic-pi-samples", "fretsonfire-songs-muldjord", ...
    licence: str


def _source_of_pool_file(rel: Path) -> str | None:
    parts = rel.parts
    if len(parts) == 4 and parts[:2] == ("music", "isolated"):
        return ISOLATED_CATEGORIES.get(parts[2])
    if (
        len(parts) == 4
        and parts[:2] == ("music", "multitrack")
        and parts[2].startswith("mdbdrums_")
        and rel.stem == "drums"
    ):
        return "drums"
    return None


def _manifest_licences(root: Path) -> dict[str, str]:
    with (root / "MANIFEST.tsv").open(newline="") as fh:
        return {
            row["local_file"]: row.get("licence") or ""
            for row in csv.DictReader(fh, delimiter="\t")
        }


def pool_files(root: str | Path) -> list[RealStemFile]:
    """The stem recordings of a real-recordings pool (a folder with a MANIFEST.tsv, see
    :mod:`deepsampler.data.real_pool`). Every file is used whatever its corpus split: the
    synthesised corpus does not use these music files, and the evaluation sets share no
    recording with the pool."""
    pool = RealPool.open(root)
    assert pool.root is not None
    licences = _manifest_licences(pool.root)
    files = []
    for f in pool.files:
        rel = f.path.relative_to(pool.root)
        source = _source_of_pool_file(rel)
        if source is not None:
            files.append(RealStemFile(f.path, source, "train-real", licences.get(str(rel), "")))
    return files


def debian_files(
    sonic_pi_dir: Path | None = None, fretsonfire_dir: Path | None = None
) -> list[RealStemFile]:
    """Stem recordings of the Debian packages ``sonic-pi-samples`` and ``fretsonfire-songs-*``
    that are installed (none when they are not); the folders default to where Debian puts them
    (:data:`SONIC_PI_DIR`, :data:`FRETSONFIRE_DIR`)."""
    sonic_pi_dir = SONIC_PI_DIR if sonic_pi_dir is None else sonic_pi_dir
    fretsonfire_dir = FRETSONFIRE_DIR if fretsonfire_dir is None else fretsonfire_dir
    files = []
    for name, source in SONIC_PI_STEMS.items():
        path = Path(sonic_pi_dir) / f"{name}.flac"
        if path.is_file():
            files.append(RealStemFile(path, source, "sonic-pi-samples", "CC0"))
    fof = Path(fretsonfire_dir)
    if fof.is_dir():
        for path in sorted(fof.glob("*/*/*")):
            source = FRETSONFIRE_STEMS.get(path.name)
            if source is not None and path.is_file():
                pack = path.parent.parent.name
                licence = FRETSONFIRE_LICENCES.get(pack, "see /usr/share/doc/fretsonfire-songs-*")
                files.append(RealStemFile(path, source, f"fretsonfire-songs-{pack}", licence))
    return files


class RealStemPool:
    """Real recordings per source, in memory at ``sample_rate`` Hz, and random segments of them.

    ``files`` are loaded at once (unreadable ones skipped with a warning); only those of
    ``sources`` are kept. ``rms_db`` is the default ``(low, high)`` range of segment RMS levels
    (dBFS; the corpus stems sit around -27, p10..p90 -31..-22), ``pan_width`` the largest pan
    position of mono material (0: centre, 1: hard left/right). A segment is silent when its RMS
    is below ``silence_db`` (dBFS) or more than ``relative_silence_db`` dB below its file's RMS;
    :meth:`draw` tries ``max_tries`` segments before keeping a silent one.

    A source with less than ``min_source_seconds`` (default :data:`MIN_SOURCE_SECONDS`) of
    material in all gets no real stems (listed
    under ``too_little`` in :meth:`summary`): DESIGN.md measured that one minute of real singing
    swapped into half of the examples made vocals *worse* (it was reused thousands of times).
    """

    def __init__(
        self,
        files: list[RealStemFile],
        sample_rate: int,
        sources: tuple[str, ...] = DEFAULT_SOURCES,
        *,
        min_seconds: float = 1.0,
        rms_db: tuple[float, float] = (-32.0, -22.0),
        pan_width: float = 0.5,
        silence_db: float = -60.0,
        relative_silence_db: float = 30.0,
        max_tries: int = 8,
        min_source_seconds: float | None = None,
    ) -> None:
        if sample_rate <= 0 or max_tries < 1 or len(rms_db) != 2 or rms_db[0] > rms_db[1]:
            raise DeepSamplerError(
                f"RealStemPool: need sample_rate > 0, max_tries >= 1 and rms_db (low, high) with "
                f"low <= high; got {sample_rate}, {max_tries}, {rms_db}"
            )
        self.sample_rate = int(sample_rate)
        self.sources = tuple(sources)
        self.files = [f for f in files if f.source in self.sources]
        self.min_seconds = float(min_seconds)
        self.rms_db = (float(rms_db[0]), float(rms_db[1]))
        self.pan_width = float(pan_width)
        self.silence_db = float(silence_db)
        self.relative_silence_db = float(relative_silence_db)
        self.max_tries = int(max_tries)
        self.min_source_seconds = float(
            MIN_SOURCE_SECONDS if min_source_seconds is None else min_source_seconds
        )
        self._load()

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_default(
        cls,
        sample_rate: int,
        sources: tuple[str, ...] = DEFAULT_SOURCES,
        root: str | Path | None = None,
        debian: bool = True,
        **options,
    ) -> RealStemPool:
        """The real-recordings pool ``root`` names (a pool setting: None or ``"auto"``,
        ``"none"`` or a folder; see :func:`~deepsampler.data.real_pool.find_pool_root`) plus,
        with ``debian``, the installed Debian packages. Warns when nothing at all is found (the
        pool is then empty and swaps nothing); an explicit folder that is not a pool is an
        error."""
        pool_root = find_pool_root(root)
        files = pool_files(pool_root) if pool_root is not None else []
        if debian:
            files += debian_files()
        pool = cls(files, sample_rate, sources, **options)
        if not pool:
            looked = [str(pool_root)] if pool_root else [] if root == NONE else [describe_auto()]
            if debian:
                looked += [str(SONIC_PI_DIR), str(FRETSONFIRE_DIR)]
            little = pool.summary()["too_little"]
            found = f" (too little for {little} s)" if little else ""
            warnings.warn(
                f"no real stems found for {list(sources)}{found} (looked in {', '.join(looked)}): "
                f"training uses the corpus stems only; set {POOL_ENV} to a "
                f"real-recordings pool or install sonic-pi-samples / fretsonfire-songs-*",
                stacklevel=2,
            )
        return pool

    def _read(self, f: RealStemFile) -> np.ndarray | None:
        """``[1 or 2, n]`` float32 at the pool's rate, or None (unusable, with a warning)."""
        try:
            info = sf.info(str(f.path))
            if info.frames < self.min_seconds * info.samplerate:
                return None
            data, rate = sf.read(str(f.path), dtype="float32", always_2d=True)
        except Exception as exc:  # soundfile raises several types for bad files
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            warnings.warn(f"{f.path}: skipped, cannot be read ({reason})", stacklevel=3)
            return None
        if not np.isfinite(data).all():
            warnings.warn(f"{f.path}: skipped, holds NaN/Inf samples", stacklevel=3)
            return None
        audio = np.ascontiguousarray(data.T)
        if audio.shape[0] > 2 or (audio.shape[0] == 2 and np.array_equal(audio[0], audio[1])):
            audio = audio.mean(axis=0, keepdims=True)
        if rate != self.sample_rate:
            audio = resample(audio, rate, self.sample_rate)
        return np.ascontiguousarray(audio, dtype=np.float32)

    def _load(self) -> None:
        self._clips: dict[str, list[np.ndarray]] = {s: [] for s in self.sources}
        self._levels: dict[str, list[float]] = {s: [] for s in self.sources}
        self._used: dict[str, list[RealStemFile]] = {s: [] for s in self.sources}
        for f in self.files:
            audio = self._read(f)
            if audio is None:
                continue
            level = rms_dbfs(audio)
            if level < self.silence_db:
                continue
            self._clips[f.source].append(audio)
            self._levels[f.source].append(level)
            self._used[f.source].append(f)
        self._too_little = {}
        for s, clips in self._clips.items():
            seconds = sum(c.shape[1] for c in clips) / self.sample_rate
            if clips and seconds < self.min_source_seconds:
                self._too_little[s] = round(seconds, 1)
                self._clips[s], self._levels[s], self._used[s] = [], [], []
        self._weights = {}
        for s, clips in self._clips.items():
            lengths = np.array([c.shape[1] for c in clips], dtype=np.float64)
            self._weights[s] = lengths / lengths.sum() if clips else lengths
        self._summary = self._make_summary()

    def _make_summary(self) -> dict:
        per_source: dict[str, dict] = {}
        origins: dict[str, dict] = {}
        for s in self.sources:
            seconds = [c.shape[1] / self.sample_rate for c in self._clips[s]]
            licences: dict[str, float] = {}
            for f, sec in zip(self._used[s], seconds, strict=True):
                kind = licence_kind(f.licence)
                licences[kind] = round(licences.get(kind, 0.0) + sec, 1)
                o = origins.setdefault(f.origin, {"files": 0, "seconds": 0.0})
                o["files"] += 1
                o["seconds"] = round(o["seconds"] + sec, 1)
            per_source[s] = {
                "files": len(seconds),
                "seconds": round(sum(seconds), 1),
                "mb": round(sum(c.nbytes for c in self._clips[s]) / 1e6, 1),
                "licences": dict(sorted(licences.items())),
            }
        return {
            "sample_rate": self.sample_rate,
            "sources": per_source,
            "missing": [s for s in self.sources if not self._clips[s]],
            "too_little": self._too_little,
            "origins": origins,
            "mb": round(sum(v["mb"] for v in per_source.values()), 1),
        }

    # -- pickling: the file list travels, the audio is loaded again on first use ---------------

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        for name in ("_clips", "_levels", "_used", "_weights", "_too_little"):
            state.pop(name, None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    def _ensure_loaded(self) -> None:
        if "_clips" not in self.__dict__:
            self._load()

    # -- queries --------------------------------------------------------------------------------

    def summary(self) -> dict:
        """``{"sources": {source: {"files", "seconds", "mb", "licences": {kind: seconds}}},
        "missing": [sources without real stems], "too_little": {source: seconds found, fewer
        than min_source_seconds}, "origins": {origin: {"files", "seconds"}},
        "mb": total, "sample_rate"}``."""
        return self._summary

    def has(self, source: str) -> bool:
        """Whether ``source`` has real material."""
        return self._summary["sources"].get(source, {}).get("files", 0) > 0

    def __bool__(self) -> bool:
        return any(v["files"] for v in self._summary["sources"].values())

    def draw(
        self,
        source: str,
        frames: int,
        channels: int,
        rng: np.random.Generator,
        rms_db: tuple[float, float] | None = None,
    ) -> np.ndarray:
        """A random real ``source`` segment ``[channels, frames]`` float32 at a random RMS in
        ``rms_db`` (dBFS; default: the pool's range), never above full scale. A segment that
        stays silent after ``max_tries`` draws is returned as read (not amplified)."""
        if not self.has(source):
            raise DeepSamplerError(f"RealStemPool: no real recordings for {source!r}")
        self._ensure_loaded()
        clips, levels = self._clips[source], self._levels[source]
        for _ in range(self.max_tries):
            k = int(rng.choice(len(clips), p=self._weights[source]))
            segment = self._cut(clips[k], frames, rng)
            segment = self._to_channels(segment, channels, rng)
            level = rms_dbfs(segment)
            if level >= max(self.silence_db, levels[k] - self.relative_silence_db):
                break
        else:
            return segment
        low, high = self.rms_db if rms_db is None else rms_db
        gain = 10.0 ** ((rng.uniform(low, high) - level) / 20.0)
        peak = float(np.max(np.abs(segment)))
        gain = min(gain, 1.0 / peak) if peak > 0 else gain
        return (segment * np.float32(gain)).astype(np.float32, copy=False)

    @staticmethod
    def _cut(clip: np.ndarray, frames: int, rng: np.random.Generator) -> np.ndarray:
        n = clip.shape[1]
        if n >= frames:
            offset = int(rng.integers(0, n - frames + 1))
            return clip[:, offset : offset + frames].copy()
        if rng.random() < 0.5:  # loop from a random phase
            start = int(rng.integers(0, n))
            return clip[:, (start + np.arange(frames)) % n]
        out = np.zeros((clip.shape[0], frames), dtype=np.float32)
        at = int(rng.integers(0, frames - n + 1))
        out[:, at : at + n] = clip
        return out

    def _to_channels(
        self, segment: np.ndarray, channels: int, rng: np.random.Generator
    ) -> np.ndarray:
        if segment.shape[0] == channels:
            return segment
        if segment.shape[0] == 1:
            if channels == 2:
                return pan(segment[0], 2, rng.uniform(-self.pan_width, self.pan_width))
            return np.repeat(segment, channels, axis=0)
        mono = segment.mean(axis=0)
        return mono[None].repeat(channels, axis=0).astype(np.float32, copy=False)
