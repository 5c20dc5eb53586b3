"""Data: the training dataset over MUSDB18-HQ-layout folders (``dataset``), the local corpus
synthesiser (``synth``: ``deepsampler data synth``) and procedural toy mixtures (tests, demo)."""

from deepsampler.data.dataset import DatasetConfig, StemDataset
from deepsampler.data.toy import TOY_SOURCES, toy_stems

__all__ = ["TOY_SOURCES", "DatasetConfig", "StemDataset", "toy_stems"]
