"""Which optional extra of the package brings a missing module: the hint of ``main`` when a
command raises ImportError (``pip install 'deepsampler[eval]'``).

Kept here, in one place, rather than read from the installed metadata
(``importlib.metadata.requires``): an editable install keeps the metadata of the day it was
installed, so a newer extra would be missing from it, and a distribution's name is not always
the module's (``pyfluidsynth`` installs ``fluidsynth``). ``tests/test_cli_extras.py`` checks
every entry against pyproject.toml: the extra lists the module's distribution, and it is the
first extra (other than ``dev``) that does.
"""

from __future__ import annotations

#: top-level module -> the extra that installs it
EXTRAS: dict[str, str] = {
    "matplotlib": "eval",
    "pesq": "eval",
    "pystoi": "eval",
    "norbert": "eval",
    "peft": "enhance",
    "diffusers": "enhance",
    "scipy": "eval",
    "fluidsynth": "data",
    "music21": "data",
    "pyworld": "data",
    "tensorboard": "train",
    "pocketsphinx": "transcribe",
    "jiwer": "transcribe",
    "ray": "cluster",
    "fastapi": "web",
    "uvicorn": "web",
}

#: top-level module -> its distribution, where the names differ
DISTRIBUTIONS: dict[str, str] = {"fluidsynth": "pyfluidsynth"}


def install_hint(module: str) -> str:
    """How to get ``module``: the pip command of its extra, or ``reinstall`` for a module the
    package itself should have brought."""
    return f"pip install 'deepsampler[{EXTRAS[module]}]'" if module in EXTRAS else "reinstall"
