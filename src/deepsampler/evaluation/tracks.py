"""Reading an evaluation folder in the MUSDB18-HQ layout: `DIR/<track>/{mixture,<source>}.wav`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepsampler.audio import AUDIO_EXTENSIONS, audio_info, read_audio
from deepsampler.errors import DeepSamplerError


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


def check_sources(data: str | Path, model_sources: tuple[str, ...]) -> None:
    """Every track must hold a stem for every model source (extra stems are ignored)."""
    for folder in find_tracks(data):
        stems = set(_audio_files(folder)) - {"mixture"}
        missing = [s for s in model_sources if s not in stems]
        if missing:
            raise DeepSamplerError(
                f"{folder}: track lacks stem(s) {missing}; the model gives {list(model_sources)}"
                f", the track has {sorted(stems)}"
            )


def load_track(folder: Path, sources: tuple[str, ...]) -> Track:
    """Load a track's mixture and ``sources``; refuse mismatched rates, lengths or channels."""
    files = _audio_files(folder)
    infos = {k: audio_info(files[k]) for k in ("mixture", *sources)}
    rates = {k: i.sample_rate for k, i in infos.items()}
    lengths = {k: i.frames for k, i in infos.items()}
    channels = {k: i.channels for k, i in infos.items()}
    for what, values in (("sample rates", rates), ("lengths", lengths), ("channels", channels)):
        if len(set(values.values())) > 1:
            raise DeepSamplerError(f"{folder}: stems have different {what}: {values}")
    mixture, sr = read_audio(files["mixture"])
    stems = {s: read_audio(files[s])[0] for s in sources}
    return Track(folder.name, mixture, stems, sr)
