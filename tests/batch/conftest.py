"""A small generated catalogue, its stems from a plain ``separate`` run, and helpers to compare
stems and read manifests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from deepsampler.cli import main
from tests.conftest import write_tone

SOURCES = ("vocals", "drums", "bass", "other")
TRACKS = tuple(f"t{i}" for i in range(6))


def make_catalogue(folder: Path, tracks=TRACKS, seconds: float = 1.5) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(tracks):
        write_tone(folder / f"{name}.wav", seconds=seconds, seed=i)
    return folder


def corrupt(path: Path) -> Path:
    path.write_bytes(b"RIFF" + bytes(60))
    return path


def stems_of(out: Path, track: str) -> dict[str, np.ndarray]:
    return {s: sf.read(str(out / track / f"{s}.wav"), dtype="float32")[0] for s in SOURCES}


def assert_same_stems(a: Path, b: Path, tracks=TRACKS) -> None:
    """The samples are bit-exact (the files' bytes are not: libsndfile's PEAK chunk of a float
    WAV holds the time it was written)."""
    for track in tracks:
        sa, sb = stems_of(a, track), stems_of(b, track)
        for s in SOURCES:
            assert np.array_equal(sa[s], sb[s]), f"{track}/{s}"


def manifest(out: Path) -> list[dict]:
    path = out / "manifest.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def partials(out: Path) -> list[Path]:
    return sorted(out.rglob("*.partial"))


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory) -> Path:
    return make_catalogue(tmp_path_factory.mktemp("catalogue") / "in")


@pytest.fixture(scope="module")
def reference(tmp_path_factory, catalogue, tiny_checkpoint) -> Path:
    """Stems of each file separated on its own by a plain ``separate FILE`` (no manifest, no
    workers): what every other way of running must equal."""
    out = tmp_path_factory.mktemp("reference")
    files = [str(catalogue / f"{t}.wav") for t in TRACKS]
    assert main(["separate", *files, "-o", str(out), "--model", str(tiny_checkpoint), "-q"]) == 0
    assert not (out / "manifest.jsonl").exists()  # single files keep no manifest
    return out
