"""Source names shared by the four-stem music models, corpora and tools."""

from __future__ import annotations

#: The MUSDB18 convention every music4 model, corpus and evaluation set follows, in this order
#: (the order of a model's output axis and of a corpus's stem files).
MUSIC4_SOURCES: tuple[str, ...] = ("vocals", "drums", "bass", "other")

#: Every source name our separators write (``<source>.wav``): a stem file named so says its source.
KNOWN_SOURCES: tuple[str, ...] = (*MUSIC4_SOURCES, "speech", "noise", "siren", "background")


def source_from_filename(path: str) -> str | None:
    """The source a stem file's name gives (``out/song/vocals.wav`` -> ``vocals``), or None."""
    from pathlib import Path

    name = Path(path).stem.lower()
    return name if name in KNOWN_SOURCES else None
