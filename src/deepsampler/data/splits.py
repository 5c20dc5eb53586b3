"""Stable assignment of source material (a score, a speaker, a recording) to train/valid/test.

A piece's split is fixed by its name alone, the same in every process and Python run, so that
the corpus synthesiser and the real-recordings pool never put one piece in two splits.
"""

from __future__ import annotations

import hashlib

SPLITS = ("train", "valid", "test")
#: Fraction of source material (pieces, speakers, noise files) that goes to each split.
SPLIT_FRACTIONS = {"train": 0.8, "valid": 0.1, "test": 0.1}


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
