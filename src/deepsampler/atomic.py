"""Temporary files beside their final name, for write-then-rename (atomic) outputs."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def temp_path_beside(path: str | Path) -> Path:
    """Create an empty hidden ``.<name>.*.partial`` file in ``path``'s folder and return it.

    Its permissions follow the umask like a normally created file (``mkstemp`` alone would make
    it 0600, and the rename would carry that onto the final file).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    return Path(tmp)


def atomic_torch_save(obj: object, path: str | Path) -> Path:
    """``torch.save`` to a temporary file beside ``path``, then rename: a reader (or a run killed
    mid-write) sees the old file or the new one, never half of one."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_beside(path)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
