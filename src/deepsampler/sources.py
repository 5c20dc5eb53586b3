"""Source names shared by the four-stem music models, corpora and tools."""

from __future__ import annotations

#: The MUSDB18 convention every music4 model, corpus and evaluation set follows, in this order
#: (the order of a model's output axis and of a corpus's stem files).
MUSIC4_SOURCES: tuple[str, ...] = ("vocals", "drums", "bass", "other")
