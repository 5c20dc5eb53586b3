"""Training and validation examples from any folder in the MUSDB18-HQ layout.

``ROOT/{train,valid,test}/<track>/{mixture,<source>...}.{wav,flac,...}`` is what our synthesised
corpus, MUSDB18-HQ itself and a user's own stems look like. :class:`StemDataset` scans such a
folder once, from file headers only, and refuses anything it cannot use with a one-line
:class:`~deepsampler.errors.DeepSamplerError` that names the track folder and the fix.

Training examples are mixed on the fly: a random segment per source, optionally each from another
track (cross-track remixing), random per-stem gains and channel swaps; the mixture is always the
exact sum of the returned stems (a ``mixture`` file on disk is never used). With
``real_stem_probability`` > 0, each source's segment is replaced, with that probability, by a
segment of a real recording of that source (:class:`~deepsampler.data.real_stems.RealStemPool`)
before the gains and channel swaps. Only the segment is
read from disk, and no file stays open between items, so long tracks and many DataLoader workers
are cheap. Every random choice comes from a generator seeded by ``(seed, epoch, index)``: an
example is the same whatever the worker count or order.

Validation examples are a fixed list of evenly spaced segments, all stems from the same track,
without augmentation or real stems.

Sample rates are not converted: stems at another rate than ``DatasetConfig.sample_rate`` are an
error (resample the corpus once, beforehand, rather than every segment at every epoch).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import Dataset, get_worker_info

from deepsampler.audio import AUDIO_EXTENSIONS, audio_info
from deepsampler.data.levels import rms_db
from deepsampler.data.real_pool import NONE
from deepsampler.data.real_stems import RealStemPool
from deepsampler.errors import AudioInputError, ConfigError, DeepSamplerError
from deepsampler.sources import MUSIC4_SOURCES

LAYOUT_HINT = "expected ROOT/<split>/<track>/<source>.wav, the MUSDB18-HQ layout"
SPLIT_NAMES = ("train", "valid", "test")
_MAX_WORKER_SLOTS = 256
_STAT_NAMES = (
    "examples",
    "silent_redraws",
    "gave_up",
    "silent_examples",
    "all_silent_examples",
    "real_stems",
)


@dataclass(frozen=True)
class DatasetConfig:
    """How examples are cut and mixed.

    ``segment_seconds`` (s) long segments at ``sample_rate`` Hz with ``channels`` channels of
    ``sources``. Training: each source comes from an independently drawn track and offset with
    probability ``remix_probability`` (else from the example's base track and offset), gets a
    uniform random gain in ``gain_db`` (dB) and its channels reversed with probability
    ``channel_swap``. With ``skip_silent``, a draw holding a source whose RMS is below
    ``silence_db`` (dBFS) is re-drawn, at most ``max_tries`` times in all; after that the last
    draw is kept and counted in :attr:`StemDataset.stats`. ``examples_per_epoch`` is the training
    length, ``valid_examples`` the most segments in the fixed validation set.

    Real stems (training only): each source of an example is, with probability
    ``real_stem_probability``, a segment of a real recording of that source instead, at a random
    RMS level in ``real_rms_db`` (dBFS; the corpus stems sit around -27, p10..p90 -31..-22),
    before gains and channel swaps. ``real_pool`` says where the recordings come from: "auto"
    (the pool :func:`~deepsampler.data.real_pool.find_pool_root` finds, ``$DEEPSAMPLER_TRAIN_REAL``
    first, plus the installed Debian packages, see :meth:`RealStemPool.from_default`), "none",
    or a pool folder.
    """

    segment_seconds: float = 3.0
    sources: tuple[str, ...] = MUSIC4_SOURCES
    sample_rate: int = 44100
    channels: int = 2
    remix_probability: float = 1.0
    gain_db: tuple[float, float] = (-6.0, 3.0)
    channel_swap: float = 0.5
    skip_silent: bool = False
    silence_db: float = -60.0
    max_tries: int = 20
    examples_per_epoch: int = 1000
    valid_examples: int = 64
    seed: int = 0
    real_stem_probability: float = 0.0
    real_rms_db: tuple[float, float] = (-32.0, -22.0)
    real_pool: str = "auto"

    def __post_init__(self) -> None:
        problems = []
        if not self.segment_seconds > 0:
            problems.append(f"segment_seconds must be > 0, got {self.segment_seconds}")
        if not self.sources or len(set(self.sources)) != len(self.sources):
            problems.append(f"sources must be distinct names, got {list(self.sources)}")
        if "mixture" in self.sources:
            problems.append("sources must not include 'mixture' (it is the sum of the stems)")
        if self.sample_rate <= 0 or self.channels <= 0:
            problems.append("sample_rate and channels must be > 0")
        for name in ("remix_probability", "channel_swap", "real_stem_probability"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                problems.append(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if len(self.gain_db) != 2 or self.gain_db[0] > self.gain_db[1]:
            problems.append(f"gain_db must be (low, high) with low <= high, got {self.gain_db}")
        if len(self.real_rms_db) != 2 or self.real_rms_db[0] > self.real_rms_db[1]:
            problems.append(
                f"real_rms_db must be (low, high) with low <= high, got {self.real_rms_db}"
            )
        if not str(self.real_pool).strip():
            problems.append("real_pool must be 'auto', 'none' or a folder")
        if self.max_tries < 1 or self.examples_per_epoch < 1 or self.valid_examples < 1:
            problems.append("max_tries, examples_per_epoch and valid_examples must be >= 1")
        if problems:
            raise ConfigError(f"invalid dataset config: {'; '.join(problems)}")

    @property
    def segment_samples(self) -> int:
        """Samples per segment: ``round(segment_seconds * sample_rate)``."""
        return int(round(self.segment_seconds * self.sample_rate))


@dataclass(frozen=True)
class StemTrack:
    """One usable track: ``paths[source]``, each ``frames`` samples with ``channels`` channels."""

    folder: Path
    paths: dict[str, Path]
    frames: int
    channels: int


def _audio_files(folder: Path) -> dict[str, Path]:
    """``{name: path}`` of the audio files in ``folder``; two files for one name is an error."""
    files: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if not (p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS):
            continue
        if p.stem in files:
            raise DeepSamplerError(
                f"{folder}: two files for {p.stem!r} ({files[p.stem].name}, {p.name}); "
                f"keep one of them"
            )
        files[p.stem] = p
    return files


def _split_folder(root: Path, split: str | None) -> Path:
    if not root.is_dir():
        raise DeepSamplerError(f"{root}: dataset folder not found; check the path")
    if split is None:
        return root
    folder = root / split
    if not folder.is_dir():
        present = sorted(p.name for p in root.iterdir() if p.is_dir())
        raise DeepSamplerError(
            f"{folder}: split folder {split!r} not found ({root} holds {present}); {LAYOUT_HINT}, "
            f"or pass the split folder itself as ROOT"
        )
    return folder


def _track_folders(folder: Path, sources: tuple[str, ...]) -> list[Path]:
    """Track folders in a split folder (non-hidden subfolders); ``folder`` itself may be one."""
    subdirs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if any(s in _audio_files(folder) for s in sources) and not subdirs:
        return [folder]
    with_audio = [p for p in subdirs if _audio_files(p)]
    splits = [p.name for p in subdirs if p.name in SPLIT_NAMES]
    if splits and not with_audio:
        raise DeepSamplerError(
            f"{folder}: holds split folders {splits}, not tracks; choose a split "
            f"(e.g. {folder / splits[0]})"
        )
    if not subdirs:
        raise DeepSamplerError(f"{folder}: no track folders ({LAYOUT_HINT})")
    return subdirs


def _scan_track(folder: Path, config: DatasetConfig) -> StemTrack:
    """Check a track from its file headers; raise a one-line error naming ``folder``."""
    files = _audio_files(folder)
    stems = sorted(set(files) - {"mixture"})
    missing = [s for s in config.sources if s not in files]
    if missing:
        raise DeepSamplerError(
            f"{folder}: track lacks stem(s) {missing}; training needs {list(config.sources)}, the "
            f"track has {stems}; add the missing stems or train on sources every track has"
        )
    infos = {s: audio_info(files[s]) for s in config.sources}
    for what, attr in (("sample rates", "sample_rate"), ("lengths", "frames")):
        values = {s: getattr(i, attr) for s, i in infos.items()}
        if len(set(values.values())) > 1:
            raise DeepSamplerError(
                f"{folder}: stems have different {what} {values}; re-export the stems together "
                f"so they share one sample rate and length"
            )
    channels = {s: i.channels for s, i in infos.items()}
    if len(set(channels.values())) > 1:
        raise DeepSamplerError(
            f"{folder}: stems have different channel counts {channels}; re-export them all "
            f"mono or all with {config.channels} channels"
        )
    info = next(iter(infos.values()))
    if info.sample_rate != config.sample_rate:
        raise DeepSamplerError(
            f"{folder}: stems are at {info.sample_rate} Hz but the dataset is configured for "
            f"{config.sample_rate} Hz; resample the stems to {config.sample_rate} Hz first "
            f"(e.g. sox in.wav -r {config.sample_rate} out.wav) or set sample_rate to "
            f"{info.sample_rate}"
        )
    if info.channels != 1 and info.channels != config.channels:
        raise DeepSamplerError(
            f"{folder}: stems have {info.channels} channels but the dataset takes "
            f"{config.channels}; convert the stems to mono or {config.channels} channels, or set "
            f"channels to {info.channels}"
        )
    return StemTrack(folder, {s: files[s] for s in config.sources}, info.frames, info.channels)


def scan_tracks(root: str | Path, split: str | None, config: DatasetConfig) -> list[StemTrack]:
    """Find and check every track under ``root/split`` (or ``root`` when ``split`` is None).

    Headers only, no audio is read. Tracks shorter than one segment are skipped with a warning;
    an error is raised when none remain.
    """
    folder = _split_folder(Path(root), split)
    tracks = [_scan_track(t, config) for t in _track_folders(folder, config.sources)]
    n = config.segment_samples
    usable = [t for t in tracks if t.frames >= n]
    short = [t.folder.name for t in tracks if t.frames < n]
    if not usable:
        raise DeepSamplerError(
            f"{folder}: every track is shorter than one {config.segment_seconds} s segment; "
            f"use longer tracks or a shorter segment_seconds"
        )
    if short:
        shown = ", ".join(short[:5]) + (f" and {len(short) - 5} more" if len(short) > 5 else "")
        warnings.warn(
            f"{folder}: skipping {len(short)} track(s) shorter than one "
            f"{config.segment_seconds} s segment: {shown}",
            stacklevel=3,
        )
    return usable


def read_segment(path: Path, offset: int, frames: int, channels: int) -> np.ndarray:
    """Read ``frames`` samples from ``offset`` as ``[channels, frames]`` float32 (mono duplicated).

    Only that part of the file is read; the file is closed again before returning.
    """
    try:
        data = sf.read(str(path), start=offset, frames=frames, dtype="float32", always_2d=True)[0]
    except Exception as exc:  # soundfile raises several types for bad files
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise AudioInputError(f"{path}: cannot be read ({reason}); re-export the file") from None
    if data.shape[0] != frames:
        raise AudioInputError(
            f"{path}: holds fewer samples than its header says (wanted {frames} from {offset}, "
            f"got {data.shape[0]}); re-export the file"
        )
    if not np.isfinite(data).all():
        raise AudioInputError(f"{path}: contains NaN/Inf samples; repair or re-export the file")
    segment = np.ascontiguousarray(data.T)
    if segment.shape[0] == 1 and channels > 1:
        segment = np.repeat(segment, channels, axis=0)
    return segment


class StemDataset(Dataset):
    """Examples ``{"mixture": [c, n], "stems": [s, c, n]}`` (float32) from stem folders.

    ``root`` is a folder in the MUSDB18-HQ layout and ``split`` one of its split folders, or None
    when ``root`` is itself a split folder (or a single track folder). ``n`` is
    ``config.segment_samples``, ``s`` follows ``config.sources``, ``c`` is ``config.channels``;
    ``mixture == stems.sum(0)`` exactly.

    ``train=True``: ``config.examples_per_epoch`` random remixed and augmented examples; item
    ``i`` depends only on ``(config.seed, epoch, i)`` — call :meth:`set_epoch` before each
    epoch. ``train=False``: a fixed list of at most ``config.valid_examples`` segments (see
    :meth:`validation_plan`).

    ``real_pool`` (training only) is the pool of real stems to swap in when
    ``config.real_stem_probability`` > 0, instead of the one ``config.real_pool`` names (built
    here, once; DataLoader workers inherit it). Validation datasets never swap.

    Counters of silent draws and swapped stems, shared with DataLoader workers, are in
    :attr:`stats`.
    """

    def __init__(
        self,
        root: str | Path,
        split: str | None,
        config: DatasetConfig,
        train: bool,
        real_pool: RealStemPool | None = None,
    ) -> None:
        self.root = Path(root)
        self.split = split
        self.config = config
        self.train = train
        self.tracks = scan_tracks(self.root, split, config)
        self.segment_samples = config.segment_samples
        frames = np.array([t.frames for t in self.tracks], dtype=np.float64)
        self._track_weights = frames / frames.sum()
        self._valid_plan = self.validation_plan() if not train else []
        self.real_pool = self._real_pool(real_pool) if train else None
        # Shared memory, so that workers see set_epoch and the trainer sees the workers' counts;
        # one row per worker (row 0: the main process), so no two processes write the same cell.
        self._epoch = torch.zeros(1, dtype=torch.int64).share_memory_()
        self._stats = torch.zeros(
            _MAX_WORKER_SLOTS + 1, len(_STAT_NAMES), dtype=torch.int64
        ).share_memory_()

    def _real_pool(self, given: RealStemPool | None) -> RealStemPool | None:
        cfg = self.config
        if cfg.real_stem_probability <= 0:
            return given
        if given is None:
            if cfg.real_pool == NONE:
                return None
            given = RealStemPool.from_default(cfg.sample_rate, cfg.sources, root=cfg.real_pool)
        if given.sample_rate != cfg.sample_rate:
            raise ConfigError(
                f"real stem pool is at {given.sample_rate} Hz but the dataset at "
                f"{cfg.sample_rate} Hz; build the pool with sample_rate={cfg.sample_rate}"
            )
        return given

    def __len__(self) -> int:
        return self.config.examples_per_epoch if self.train else len(self._valid_plan)

    @property
    def epoch(self) -> int:
        return int(self._epoch.item())

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose random examples are drawn (also in running workers)."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self._epoch.fill_(int(epoch))

    @property
    def stats(self) -> dict[str, int]:
        """Counts since construction or :meth:`reset_stats`, over all worker processes.

        ``examples`` returned; ``silent_redraws``: draws re-done because a source was silent
        (``skip_silent``); ``gave_up``: examples returned with a silent source after
        ``max_tries`` draws; ``silent_examples``: examples returned with at least one silent
        source; ``all_silent_examples``: examples whose every source (so the mixture) is silent;
        ``real_stems``: stems replaced by a real recording.
        """
        totals = self._stats.sum(0).tolist()
        return dict(zip(_STAT_NAMES, (int(v) for v in totals), strict=True))

    def reset_stats(self) -> None:
        self._stats.zero_()

    def _count(self, name: str, amount: int = 1) -> None:
        info = get_worker_info()
        row = 0 if info is None else 1 + info.id % _MAX_WORKER_SLOTS
        self._stats[row, _STAT_NAMES.index(name)] += amount

    def validation_plan(self) -> list[tuple[int, int]]:
        """``(track index, offset in samples)`` of the fixed validation segments.

        Segments are dealt to the tracks in turn (track order, then again) until
        ``config.valid_examples`` are placed or every track is full (a track holds
        ``frames // n`` non-overlapping segments); a track's ``k`` segments are evenly spaced
        from its start to its end (one segment: the middle). Sorted by track, then offset.
        """
        n = self.segment_samples
        capacity = [t.frames // n for t in self.tracks]
        counts = [0] * len(self.tracks)
        placed, total = 0, min(self.config.valid_examples, sum(capacity))
        while placed < total:
            for i, cap in enumerate(capacity):
                if placed < total and counts[i] < cap:
                    counts[i] += 1
                    placed += 1
        plan = []
        for i, (track, k) in enumerate(zip(self.tracks, counts, strict=True)):
            span = track.frames - n
            if k == 1:
                plan.append((i, span // 2))
            elif k > 1:
                plan.extend((i, int(round(j * span / (k - 1)))) for j in range(k))
        return plan

    def _read(self, track: int, source: str, offset: int) -> np.ndarray:
        path = self.tracks[track].paths[source]
        return read_segment(path, offset, self.segment_samples, self.config.channels)

    def _draw_place(self, rng: np.random.Generator) -> tuple[int, int]:
        track = int(rng.choice(len(self.tracks), p=self._track_weights))
        offset = int(rng.integers(0, self.tracks[track].frames - self.segment_samples + 1))
        return track, offset

    def _train_stems(self, index: int) -> list[np.ndarray]:
        """Per-source ``[c, n]`` segments after augmentation, for training item ``index``."""
        cfg = self.config
        rng = np.random.default_rng([cfg.seed, self.epoch, index])
        # Which sources are real recordings: drawn first, and only when swapping is on, so that
        # with probability 0 (or no pool) the examples are exactly those without real stems.
        pool = self.real_pool
        real = [False] * len(cfg.sources)
        if pool and cfg.real_stem_probability > 0:
            chosen = rng.random(len(cfg.sources)) < cfg.real_stem_probability
            real = [bool(c) and pool.has(src) for c, src in zip(chosen, cfg.sources, strict=True)]
        # Group 0 is the base place shared by the sources not remixed; each remixed source is a
        # group of its own. A silent source re-draws its group's place (skip_silent).
        remixed = rng.random(len(cfg.sources)) < cfg.remix_probability
        group = [1 + s if remixed[s] else 0 for s in range(len(cfg.sources))]
        places = {g: self._draw_place(rng) for g in sorted(set(group))}
        n, c = self.segment_samples, cfg.channels
        stems = [
            np.zeros((c, n), np.float32) if real[s] else self._read(places[g][0], src, places[g][1])
            for s, (g, src) in enumerate(zip(group, cfg.sources, strict=True))
        ]
        silent = [not real[s] and rms_db(x) < cfg.silence_db for s, x in enumerate(stems)]
        tries = 1
        while cfg.skip_silent and any(silent) and tries < cfg.max_tries:
            redraw = sorted({g for g, quiet in zip(group, silent, strict=True) if quiet})
            for g in redraw:
                places[g] = self._draw_place(rng)
            for s, (g, src) in enumerate(zip(group, cfg.sources, strict=True)):
                if g in redraw and not real[s]:
                    stems[s] = self._read(places[g][0], src, places[g][1])
                    silent[s] = rms_db(stems[s]) < cfg.silence_db
            self._count("silent_redraws", len(redraw))
            tries += 1
        for s, src in enumerate(cfg.sources):
            if real[s]:
                assert pool is not None
                stems[s] = pool.draw(src, n, c, rng, rms_db=cfg.real_rms_db)
                silent[s] = rms_db(stems[s]) < cfg.silence_db
                self._count("real_stems")
        if cfg.skip_silent and any(silent):
            self._count("gave_up")
        self._count_silence(silent)

        low, high = cfg.gain_db
        gains = 10.0 ** (rng.uniform(low, high, len(cfg.sources)) / 20.0)
        swaps = rng.random(len(cfg.sources)) < cfg.channel_swap
        for s in range(len(stems)):
            stems[s] = stems[s] * np.float32(gains[s])
            if swaps[s]:
                stems[s] = stems[s][::-1]
        return stems

    def _count_silence(self, silent: list[bool]) -> None:
        self._count("examples")
        if any(silent):
            self._count("silent_examples")
        if all(silent):
            self._count("all_silent_examples")

    def _valid_stems(self, index: int) -> list[np.ndarray]:
        track, offset = self._valid_plan[index]
        stems = [self._read(track, src, offset) for src in self.config.sources]
        self._count_silence([rms_db(x) < self.config.silence_db for x in stems])
        return stems

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} examples")
        stems_np = self._train_stems(index) if self.train else self._valid_stems(index)
        stems = torch.from_numpy(np.ascontiguousarray(np.stack(stems_np), dtype=np.float32))
        return {"mixture": stems.sum(0), "stems": stems}
