"""Temporary files beside their final name, for write-then-rename (atomic) outputs.

A temporary file is named ``.<name>.<pid>-<random>.partial`` after the process that writes it.
A process stopped by SIGTERM or Ctrl-C removes its own (the CLI turns both into the same
interrupt); one killed outright (SIGKILL, a power cut) cannot, so whoever next writes the same
output removes the partial files of ``<name>`` whose process is gone
(:func:`remove_stale_partials`).
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

PARTIAL_SUFFIX = ".partial"


def _process_alive(pid: int) -> bool:
    """Whether another process with this id runs now (ours counts as gone: a partial file with
    our pid that we are not writing was left by an earlier process that had the same id)."""
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    except OSError:
        return False
    return True


def stale_partials(path: str | Path) -> list[Path]:
    """Partial files of ``path`` (beside it) left by processes that no longer run, including
    those of the older ``.<name>.<random>.partial`` naming, which carried no pid."""
    path = Path(path)
    pattern = re.compile(
        rf"^\.{re.escape(path.name)}\.(?:(\d+)-)?[A-Za-z0-9_]+{re.escape(PARTIAL_SUFFIX)}$"
    )
    try:
        entries = list(path.parent.iterdir())
    except OSError:
        return []
    stale = []
    for entry in entries:
        match = pattern.match(entry.name)
        if match and entry.is_file():
            pid = match.group(1)
            if pid is None or not _process_alive(int(pid)):
                stale.append(entry)
    return sorted(stale)


def remove_stale_partials(path: str | Path) -> list[Path]:
    """Remove :func:`stale_partials` of ``path``; return what was removed."""
    removed = []
    for entry in stale_partials(path):
        try:
            entry.unlink()
            removed.append(entry)
        except FileNotFoundError:  # another run removed it first
            pass
    return removed


def temp_path_beside(path: str | Path) -> Path:
    """Create an empty hidden ``.<name>.<pid>-*.partial`` file in ``path``'s folder and return
    it, after removing the stale partial files of ``path`` (see the module docstring).

    Its permissions follow the umask like a normally created file (``mkstemp`` alone would make
    it 0600, and the rename would carry that onto the final file).
    """
    path = Path(path)
    remove_stale_partials(path)
    fd, tmp = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.{os.getpid()}-", suffix=PARTIAL_SUFFIX
    )
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    return Path(tmp)


def atomic_write_bytes(data: bytes, path: str | Path) -> Path:
    """Write ``data`` to a temporary file beside ``path`` (folders made as needed), then rename:
    a reader, or a run killed mid-write, sees the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_beside(path)
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


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
