"""Data: procedural toy mixtures (tests, demo); the synthetic corpus and datasets come later."""

from deepsampler.data.toy import TOY_SOURCES, toy_stems

__all__ = ["TOY_SOURCES", "toy_stems"]
