"""Data, by job.

At training time: the dataset over MUSDB18-HQ-layout folders (``dataset``), the real stems it
may swap in (``real_stems``), procedural toy mixtures (``toy``: tests, demo) and the real siren
recordings of Debian packages (``debian_sirens``). Shared with the corpus synthesiser: where the
real-recordings pool is and its index (``real_pool``: the one place that finds it), split
assignment (``splits``) and levels (``levels``). The corpus synthesiser itself (``synth``:
``deepsampler data synth``) is imported only by the command and the scripts that render.
"""

from deepsampler.data.dataset import DatasetConfig, StemDataset
from deepsampler.data.toy import TOY_SOURCES, toy_stems

__all__ = ["TOY_SOURCES", "DatasetConfig", "StemDataset", "toy_stems"]
