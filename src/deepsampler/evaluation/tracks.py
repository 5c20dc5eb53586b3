"""Reading an evaluation folder in the MUSDB18-HQ layout: `DIR/<track>/{mixture,<source>}.wav`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepsampler.audio import AUDIO_EXTENSIONS, audio_info, read_audio
from deepsampler.errors import AudioInputError, DeepSamplerError


@dataclass
class Track:
    """One track: ``mixture [c, n]`` and ``stems {source: [c, n]}`` at ``sample_rate`` Hz."""

    name: str
    mixture: np.ndarray
    stems: dict[str, np.ndarray]
    sample_rate: int


def _audio_files(folder: Path) -> dict[str, Path]:
    return {
        p.stem: p
        for p in sorted(folder.iterdir())
        if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS
    }


def find_tracks(data: str | Path) -> list[Path]:
    """Track folders under ``data`` (each holds a ``mixture.*``); ``data`` itself may be one."""
    data = Path(data)
    if not data.is_dir():
        raise DeepSamplerError(f"{data}: evaluation folder not found")
    if "mixture" in _audio_files(data):
        return [data]
    tracks = sorted(p for p in data.iterdir() if p.is_dir() and "mixture" in _audio_files(p))
    if not tracks:
        raise DeepSamplerError(
            f"{data}: no track folders with a mixture file (expected DIR/<track>/mixture.wav "
            f"and one file per source, the MUSDB18-HQ layout)"
        )
    return tracks


def _missing_stems(folder: Path, model_sources: tuple[str, ...]) -> str | None:
    """Why ``folder`` cannot give every model source, or None when it holds them all."""
    stems = set(_audio_files(folder)) - {"mixture"}
    missing = [s for s in model_sources if s not in stems]
    if not missing:
        return None
    return (
        f"{folder}: track lacks stem(s) {missing}; the model gives {list(model_sources)}"
        f", the track has {sorted(stems)}"
    )


def _header_mismatch(folder: Path, sources: tuple[str, ...]) -> str | None:
    """Why the mixture and ``sources`` stems of ``folder`` do not line up sample for sample,
    read from the file headers only (no samples are decoded), or None when they do.

    Raises AudioInputError when a header cannot be read (the message names the file)."""
    files = _audio_files(folder)
    infos = {k: audio_info(files[k]) for k in ("mixture", *sources)}
    rates = {k: i.sample_rate for k, i in infos.items()}
    lengths = {k: i.frames for k, i in infos.items()}
    channels = {k: i.channels for k, i in infos.items()}
    # rates first: a stem at another rate has another length too, and the rate is the cause
    for what, values in (("sample rates", rates), ("lengths", lengths), ("channels", channels)):
        if len(set(values.values())) > 1:
            return f"{folder}: stems have different {what}: {values}"
    return None


def check_sources(data: str | Path, model_sources: tuple[str, ...]) -> None:
    """Every track must hold a stem for every model source (extra stems are ignored); the
    error names every track that lacks one."""
    folders = find_tracks(data)
    problems = [p for f in folders if (p := _missing_stems(f, model_sources)) is not None]
    if problems:
        raise DeepSamplerError(_problems_message(data, problems, len(folders)))


def check_tracks(data: str | Path, sources: tuple[str, ...]) -> list[Path]:
    """The track folders of ``data``, once every one is known to be usable: it holds a stem for
    each of ``sources``, and its mixture and those stems agree in sample rate, length (frames)
    and channel count. Only file headers are read, so this is cheap next to a separation and
    is meant to run before any model does; one DeepSamplerError names every bad track."""
    folders = find_tracks(data)
    problems = []
    for folder in folders:
        problem = _missing_stems(folder, sources)
        if problem is None:
            try:
                problem = _header_mismatch(folder, sources)
            except AudioInputError as exc:  # an unreadable file is one more bad track
                problem = str(exc)
        if problem is not None:
            problems.append(problem)
    if problems:
        raise DeepSamplerError(_problems_message(data, problems, len(folders)))
    return folders


def _problems_message(data: str | Path, problems: list[str], total: int) -> str:
    """One line (the CLI shows errors as one line) naming every bad track."""
    return (
        f"{data}: {len(problems)} of {total} track(s) cannot be evaluated; fix or remove them: "
        + "; ".join(problems)
    )


def load_track(folder: Path, sources: tuple[str, ...]) -> Track:
    """Load a track's mixture and ``sources``; refuse mismatched rates, lengths or channels.

    ``check_tracks`` has usually checked the headers already; they are checked again here
    because the files may have changed since, and a mismatch would break the scoring."""
    problem = _header_mismatch(folder, sources)
    if problem is not None:
        raise DeepSamplerError(problem)
    files = _audio_files(folder)
    mixture, sr = read_audio(files["mixture"])
    stems = {s: read_audio(files[s])[0] for s in sources}
    return Track(folder.name, mixture, stems, sr)
