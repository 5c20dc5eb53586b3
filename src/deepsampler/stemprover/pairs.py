"""Paired (degraded, clean) stem segments for StemProver training and evaluation.

Two kinds of pairs, both from a MUSDB18-HQ-style corpus (``root/split/<track>/<source>.wav``):

* **separator pairs**: our separator's estimate of a stem against the true stem. The estimates are
  computed once per track by ``cache_separator_outputs`` into ``cache/<track>/<source>.wav``;
* **simulated pairs**: the true stem degraded by one artifact type at a time
  (``degradations.degrade``: bleed of the other sources, musical noise from a perturbed mask,
  band-limiting, phase jitter), so that each LoRA adapter has examples of its own artifact.

Segments are mono (one random channel of a stereo stem), ``segment_seconds`` long, at the
corpus's sample rate; near-silent clean segments are skipped, since there is nothing to refine.
Each pair carries the matching mixture segment (the sum of the track's stems, the signal the
separator saw) for mixture-conditioned models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from deepsampler.data.dataset import DatasetConfig, StemTrack, read_segment, scan_tracks
from deepsampler.errors import DeepSamplerError
from deepsampler.sources import MUSIC4_SOURCES
from deepsampler.stemprover.degradations import ARTIFACTS, degrade

SEPARATOR = "separator"


@dataclass(frozen=True)
class PairConfig:
    """Where pairs come from and how long they are."""

    root: str = "data/music4-4h"
    split: str = "train"
    sources: tuple[str, ...] = MUSIC4_SOURCES
    sample_rate: int = 44100
    channels: int = 2
    segment_seconds: float = 1.5
    separator_cache: str | None = None
    separator_probability: float = 0.5
    min_rms_db: float = -45.0
    tracks_limit: int | None = None
    artifacts: tuple[str, ...] = ARTIFACTS
    pool_size: int = 0  # > 0: draw this many pairs per kind once (PairPool) and reuse them
    pool_workers: int = 1
    artifact_pool_size: int = 0  # pool size of the one-artifact pools (adapters); 0: pool_size
    separator_pool_size: int = 0  # pool size of the separator-pair pool (predictor); 0: pool_size
    # segment length of that pool; 0: segment_seconds. A guided predictor should see segments as
    # long as `enhance` gives it (2-4 s): its guide separator reads more context in longer ones
    separator_segment_seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.segment_seconds <= 0:
            raise ValueError(f"segment_seconds must be positive, got {self.segment_seconds}")
        if self.separator_segment_seconds < 0:
            raise ValueError("separator_segment_seconds must be >= 0 (0: segment_seconds)")
        if self.separator_segment_seconds > 0 and self.pool_size <= 0:
            raise ValueError(
                "separator_segment_seconds sets the predictor's pool: it needs pool_size > 0"
            )
        if not 0.0 <= self.separator_probability <= 1.0:
            raise ValueError("separator_probability must be in [0, 1]")
        bad = sorted(set(self.artifacts) - set(ARTIFACTS))
        if bad:
            raise ValueError(f"unknown artifacts {bad}; valid: {list(ARTIFACTS)}")

    @property
    def segment_samples(self) -> int:
        return int(round(self.segment_seconds * self.sample_rate))


@dataclass
class Pair:
    """One training pair: mono ``degraded``, ``clean`` and ``mixture`` ``[samples]`` float32 and
    its origin."""

    degraded: np.ndarray
    clean: np.ndarray
    mixture: np.ndarray
    kind: str  # an artifact name or SEPARATOR
    track: str
    source: str
    offset: int
    params: dict = field(default_factory=dict)


class PairSampler:
    """Draws pairs at random from a corpus (deterministic for a given ``numpy`` generator)."""

    def __init__(self, config: PairConfig) -> None:
        self.config = config
        ds = DatasetConfig(
            sources=config.sources,
            sample_rate=config.sample_rate,
            channels=config.channels,
            segment_seconds=config.segment_seconds,
        )
        tracks = scan_tracks(config.root, config.split, ds)
        if config.tracks_limit:
            tracks = tracks[: config.tracks_limit]
        self.tracks: list[StemTrack] = tracks
        self.cache = Path(config.separator_cache) if config.separator_cache else None
        self.cached: list[int] = []
        if self.cache is not None:
            self.cached = [
                i
                for i, t in enumerate(tracks)
                if all((self.cache / t.folder.name / f"{s}.wav").is_file() for s in config.sources)
            ]
            if not self.cached:
                raise DeepSamplerError(
                    f"{self.cache}: no separator outputs for the tracks of "
                    f"{config.root}/{config.split}; run `deepsampler stemprover cache` first"
                )

    def _read(self, track: StemTrack, source: str, offset: int) -> np.ndarray:
        n = self.config.segment_samples
        return read_segment(track.paths[source], offset, n, self.config.channels)

    def _draw_clean(
        self, rng: np.random.Generator, tracks: list[int]
    ) -> tuple[int, str, int, np.ndarray]:
        n = self.config.segment_samples
        for _ in range(50):
            ti = int(tracks[rng.integers(len(tracks))])
            track = self.tracks[ti]
            source = self.config.sources[rng.integers(len(self.config.sources))]
            offset = int(rng.integers(0, track.frames - n + 1))
            clean = self._read(track, source, offset)
            rms = float(np.sqrt(np.mean(clean**2)) + 1e-12)
            if 20 * np.log10(rms) > self.config.min_rms_db:
                return ti, source, offset, clean
        raise DeepSamplerError(
            f"{self.config.root}: 50 draws in a row gave near-silent stems; lower min_rms_db"
        )

    def draw(self, rng: np.random.Generator, kind: str | None = None) -> Pair:
        """One pair of ``kind`` (an artifact name, ``SEPARATOR``, or None: the configured mix)."""
        cfg = self.config
        if kind is None:
            use_sep = self.cache is not None and rng.random() < cfg.separator_probability
            kind = SEPARATOR if use_sep else cfg.artifacts[rng.integers(len(cfg.artifacts))]
        if kind == SEPARATOR and self.cache is None:
            raise DeepSamplerError("separator pairs need separator_cache (separator outputs)")
        if kind != SEPARATOR and kind not in ARTIFACTS:
            raise ValueError(f"unknown pair kind {kind!r}; use one of {[*ARTIFACTS, SEPARATOR]}")
        pool = self.cached if kind == SEPARATOR else list(range(len(self.tracks)))
        ti, source, offset, clean = self._draw_clean(rng, pool)
        track = self.tracks[ti]
        channel = int(rng.integers(clean.shape[0]))
        params: dict = {}
        others = sum(self._read(track, s, offset) for s in cfg.sources if s != source)
        if kind == SEPARATOR:
            est_path = self.cache / track.folder.name / f"{source}.wav"
            degraded = read_segment(est_path, offset, cfg.segment_samples, cfg.channels)
        else:
            degraded, params = degrade(clean, others, cfg.sample_rate, kind, rng)
        return Pair(
            degraded=np.asarray(degraded[channel], np.float32),
            clean=np.asarray(clean[channel], np.float32),
            mixture=np.asarray((clean + others)[channel], np.float32),
            kind=kind,
            track=track.folder.name,
            source=source,
            offset=offset,
            params=params,
        )

    def batch(
        self, rng: np.random.Generator, size: int, kind: str | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[Pair]]:
        """``size`` pairs stacked: (degraded, clean, mixture, each ``[size, samples]``; pairs)."""
        pairs = [self.draw(rng, kind) for _ in range(size)]
        return (
            np.stack([p.degraded for p in pairs]),
            np.stack([p.clean for p in pairs]),
            np.stack([p.mixture for p in pairs]),
            pairs,
        )


def cache_separator_outputs(
    folder: str | Path,
    out: str | Path,
    model: str = "music4-rt",
    limit: int | None = None,
    progress: bool = True,
) -> list[Path]:
    """Separate ``folder/<track>/mixture.*`` with ``model`` into ``out/<track>/<source>.wav``.

    Tracks already cached are skipped, so the command resumes. Returns the track folders
    (the first ``limit``, sorted by name).
    """
    from deepsampler.separator import Separator

    folder = Path(folder)
    if not folder.is_dir():
        raise DeepSamplerError(f"{folder}: no such folder")
    tracks = sorted(p for p in folder.iterdir() if any(p.glob("mixture.*")))
    if not tracks:
        raise DeepSamplerError(f"{folder}: no track folders with a mixture file")
    tracks = tracks[:limit] if limit else tracks
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sep = Separator(model)
    for track in tqdm(tracks, desc=f"separating with {model}", disable=not progress):
        if all((out / track.name / f"{s}.wav").is_file() for s in sep.sources):
            continue
        sep.separate_file(next(track.glob("mixture.*")), out, track=track.name)
    return tracks


#: the pair sampler of a PairPool worker process, built once by ``_start_worker``
_worker_sampler: PairSampler | None = None


def _start_worker(config: PairConfig) -> None:
    """Pool worker set-up: one torch thread (the pool has one process per core; torch's own
    threads in every worker oversubscribed a 16-core machine), and the corpus indexed once."""
    global _worker_sampler
    import torch

    torch.set_num_threads(1)
    _worker_sampler = PairSampler(config)


def _draw(
    sampler: PairSampler, task: tuple[int, str | None, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``count`` pairs of ``kind`` drawn with a generator seeded with ``seed``."""
    seed, kind, count = task
    return sampler.batch(np.random.default_rng(seed), count, kind)[:3]


def _draw_chunk(task: tuple[int, str | None, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Worker: :func:`_draw` with the worker's sampler."""
    assert _worker_sampler is not None, "_start_worker did not run"
    return _draw(_worker_sampler, task)


class PairPool:
    """A fixed set of pairs drawn once (in parallel), then sampled into batches.

    Making a pair costs tens of milliseconds (file reads, STFT-domain degradations) — more than a
    training step on a GPU — so long runs draw a pool up front with ``workers`` processes and
    reuse it. The pool's content depends only on ``seed`` and ``size`` (``chunk`` pairs per seed),
    not on the number of workers.
    """

    def __init__(
        self,
        config: PairConfig,
        size: int,
        kind: str | None = None,
        workers: int = 1,
        seed: int = 0,
        chunk: int = 32,
        progress: bool = False,
    ) -> None:
        if size < 1:
            raise ValueError(f"pool size must be >= 1, got {size}")
        counts = [min(chunk, size - i) for i in range(0, size, chunk)]
        tasks = [(seed * 100003 + i, kind, c) for i, c in enumerate(counts)]
        label = f"drawing {size} {kind or 'mixed'} pairs"
        if workers <= 1:
            sampler = PairSampler(config)
            parts = [_draw(sampler, t) for t in tqdm(tasks, desc=label, disable=not progress)]
        else:
            import multiprocessing as mp

            # spawn, not fork: forking a process whose torch threads are running can deadlock
            ctx = mp.get_context("spawn")
            with ctx.Pool(workers, initializer=_start_worker, initargs=(config,)) as pool:
                parts = list(
                    tqdm(
                        pool.imap(_draw_chunk, tasks),
                        total=len(tasks),
                        desc=label,
                        disable=not progress,
                    )
                )
        self.degraded = np.concatenate([p[0] for p in parts])
        self.clean = np.concatenate([p[1] for p in parts])
        self.mixture = np.concatenate([p[2] for p in parts])
        self.kind = kind

    def __len__(self) -> int:
        return len(self.clean)

    def batch(
        self, rng: np.random.Generator, size: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``size`` random pairs (with replacement): (degraded, clean, mixture), each
        ``[size, samples]``."""
        idx = rng.integers(0, len(self), size)
        return self.degraded[idx], self.clean[idx], self.mixture[idx]
