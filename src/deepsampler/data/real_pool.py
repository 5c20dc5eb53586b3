"""The real-recordings pool: where it is, and an index of its files by split.

The pool is a folder of real recordings with a ``MANIFEST.tsv`` (columns ``local_file``,
``category``, ``duration_s`` and, optionally, ``licence``): ``speech/``, ``noise/``,
``background/``, ``siren/`` and ``music/{isolated,multitrack}/...``. Both the corpus synthesiser
(``deepsampler data synth --real``) and the training dataset's real-stem swaps
(:class:`~deepsampler.data.real_stems.RealStemPool`, config key ``data.real_pool``) use it, and
both find it here, in :func:`find_pool_root`. A pool setting is one of

- ``"auto"`` (or None): the folder named by ``$DEEPSAMPLER_TRAIN_REAL`` when it holds a
  ``MANIFEST.tsv``, else :data:`DEFAULT_POOL` (relative to the working directory) when it holds
  one, else no pool;
- ``"none"``: no pool;
- any other text or path: that folder (:meth:`RealPool.open` refuses one without a manifest).

So an explicit setting (a config key, a command-line option) wins over the environment variable,
which wins over the default place. The pool is optional everywhere: without one the synthesiser
renders from synthetic material only and training swaps in no real stems from it.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepsampler.data.splits import split_of
from deepsampler.errors import DeepSamplerError

#: Environment variable naming the pool folder; an explicit setting wins over it.
POOL_ENV = "DEEPSAMPLER_TRAIN_REAL"
#: Where the pool is looked for when neither a setting nor :data:`POOL_ENV` names one, relative
#: to the working directory (the checkout's sibling ``shared/`` folder).
DEFAULT_POOL = "../shared/train-real"
#: The pool settings that are not a folder.
AUTO = "auto"
NONE = "none"
#: The file that makes a folder a pool.
MANIFEST = "MANIFEST.tsv"


def default_pool_path() -> Path:
    """:data:`DEFAULT_POOL` as an absolute path from the working directory (whether or not it
    exists)."""
    return Path(os.path.normpath(Path.cwd() / DEFAULT_POOL))


def pool_candidates() -> list[Path]:
    """The folders ``"auto"`` tries, in order: ``$DEEPSAMPLER_TRAIN_REAL`` (when set), then
    :func:`default_pool_path`."""
    env = os.environ.get(POOL_ENV)
    return ([Path(env)] if env else []) + [default_pool_path()]


def describe_auto() -> str:
    """Where ``"auto"`` looks, for help texts and messages."""
    return f"${POOL_ENV} or {DEFAULT_POOL}"


def is_pool(folder: str | Path) -> bool:
    """Whether ``folder`` holds a pool manifest."""
    return (Path(folder) / MANIFEST).is_file()


def find_pool_root(setting: str | Path | None = AUTO) -> Path | None:
    """The pool folder a setting names (see the module docstring for the precedence).

    ``None`` or ``"auto"``: the first of :func:`pool_candidates` that holds a manifest, else None.
    ``"none"``: None. Anything else: that folder, as given (not checked here;
    :meth:`RealPool.open` refuses a folder without a manifest)."""
    if setting is None or str(setting) == AUTO:
        for cand in pool_candidates():
            if is_pool(cand):
                return cand
        return None
    if str(setting) == NONE:
        return None
    return Path(setting)


@dataclass(frozen=True)
class RealFile:
    """One recording of the real-recordings pool."""

    path: Path
    category: str  # e.g. "speech", "noise", "music/isolated/drums"
    seconds: float
    split: str


def _split_key(rel: str) -> str:
    """What must not cross splits: a speaker for read speech, a song for multitracks, else the
    file itself."""
    p = Path(rel)
    if p.parts[0] == "speech":
        corpus, _, rest = p.stem.partition("__")
        speaker = rest.split("-")[0] if corpus == "libri" else ""
        return f"speech:{corpus}:{speaker}"
    if len(p.parts) > 2 and p.parts[1] == "multitrack":
        return "/".join(p.parts[:3])
    return rel


class RealPool:
    """Index of a real-recordings pool (a folder with a :data:`MANIFEST`). Each file is assigned
    to one split by its name, so no recording is shared between train, valid and test.

    The pool is optional: presets must render without it (``RealPool.empty()``).
    """

    def __init__(self, root: Path | None, files: list[RealFile]):
        self.root = root
        self.files = files

    @classmethod
    def empty(cls) -> RealPool:
        """A pool without files (``root`` None)."""
        return cls(None, [])

    @classmethod
    def open(cls, root: str | Path) -> RealPool:
        """The pool in ``root``; files listed in its manifest but missing are left out. A folder
        without a manifest is refused with a one-line :class:`DeepSamplerError`."""
        root = Path(root)
        manifest = root / MANIFEST
        if not manifest.is_file():
            raise DeepSamplerError(
                f"{root}: not a real-recordings pool (no {MANIFEST}); pass --real none to "
                f"render without real recordings"
            )
        files = []
        with manifest.open(newline="") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                rel = row["local_file"]
                path = root / rel
                if not path.is_file():
                    continue
                category = str(Path(rel).parent)
                files.append(
                    RealFile(
                        path, category, float(row.get("duration_s") or 0), split_of(_split_key(rel))
                    )
                )
        return cls(root, files)

    @classmethod
    def default(cls) -> RealPool:
        """The pool ``"auto"`` finds (:func:`find_pool_root`), else an empty pool."""
        return cls.from_setting(AUTO)

    @classmethod
    def from_setting(cls, setting: str | Path | None = AUTO) -> RealPool:
        """The pool a setting names (``"auto"``, ``"none"`` or a folder; see
        :func:`find_pool_root`), or an empty pool when it names none."""
        root = find_pool_root(setting)
        return cls.open(root) if root is not None else cls.empty()

    def select(self, category_prefix: str, split: str) -> list[RealFile]:
        """Files of ``split`` whose category starts with ``category_prefix`` (e.g. "speech")."""
        return [
            f for f in self.files if f.split == split and f.category.startswith(category_prefix)
        ]

    def __bool__(self) -> bool:
        return bool(self.files)


def load_real(f: RealFile, sr: int) -> np.ndarray:
    """A real recording as mono float32 ``[n]`` at ``sr`` Hz."""
    from deepsampler.audio import read_audio, resample

    audio, file_sr = read_audio(f.path)
    mono = audio.mean(axis=0)
    if file_sr != sr:
        mono = resample(mono[None], file_sr, sr)[0]
    return mono.astype(np.float32)
