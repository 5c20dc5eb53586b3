"""``OUT/manifest.jsonl``: one JSON object per finished file, appended and flushed as each file
finishes, so a run killed outright (``kill -9``, a power cut) loses at most the files in flight.

A line says which input it was (resolved path, size in bytes, modification time in ns), which
model (name and digest) with which options, what came of it (``status`` ``done`` with its
``outputs``, relative to the output folder, or ``failed`` with its ``error``) and how long it
took. Its ``key`` hashes the input's identity, the model's digest and the options that change
the stems: a file edited since, another model or another ``--stems`` is another key, so it is
done again. Later lines override earlier ones with the same key. Reading skips a line that is
not whole JSON (the torn last line of a killed run); writing first ends such a line.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from deepsampler.errors import DeepSamplerError

MANIFEST_NAME = "manifest.jsonl"


def file_identity(path: str | Path) -> dict[str, Any]:
    """``{"input": resolved path, "size": bytes, "mtime_ns": ns}``; size and time are None for a
    file that cannot be read now (it is then recorded as failed, and tried again once it can)."""
    p = Path(path)
    try:
        resolved = p.resolve()
        st = resolved.stat()
    except OSError:
        return {"input": str(p.absolute()), "size": None, "mtime_ns": None}
    return {"input": str(resolved), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def record_key(identity: dict[str, Any], digest: str, options: dict[str, Any]) -> str:
    """The manifest key of one input under one model and options (20 hex digits of SHA-256)."""
    text = json.dumps(
        [identity["input"], identity["size"], identity["mtime_ns"], digest, options],
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def now_utc() -> str:
    """The time a line was written, ISO 8601 UTC to the second."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Manifest:
    """The manifest of one output folder: read it whole, append to it line by line.

    Use as a context manager around a run: it holds an exclusive lock (``flock``) on the file
    so two runs into one folder do not interleave (where the file system has no locks, as some
    network ones, it goes on without).
    """

    def __init__(self, out_dir: str | Path) -> None:
        self.path = Path(out_dir) / MANIFEST_NAME
        self.torn_lines = 0  # lines of the last read() that were not whole JSON objects
        self._file: IO[str] | None = None

    def read(self) -> list[dict[str, Any]]:
        """Every whole record, in the order written; [] when there is no manifest yet."""
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return []
        records, self.torn_lines = [], 0
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                self.torn_lines += 1
                continue
            if isinstance(rec, dict) and isinstance(rec.get("key"), str):
                records.append(rec)
            else:
                self.torn_lines += 1
        return records

    def latest(self) -> dict[str, dict[str, Any]]:
        """key -> its last record."""
        return {rec["key"]: rec for rec in self.read()}

    def __enter__(self) -> Manifest:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the run
        try:
            import fcntl

            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.close()
            self._file = None
            raise DeepSamplerError(
                f"{self.path}: another run is writing to this output folder; wait for it to end "
                "or choose another -o"
            ) from None
        except (ImportError, OSError):  # no fcntl (Windows) or no locks on this file system
            pass
        # a run killed mid-line left a torn last line: end it, so the next record is whole
        self._file.seek(0, os.SEEK_END)
        if self._file.tell() > 0:
            with open(self.path, "rb") as f:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    self._file.write("\n")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.close()  # closing releases the lock
            self._file = None

    def append(self, record: dict[str, Any]) -> None:
        """Write one record as one line and flush it to the disk before the next file is
        recorded (``fsync``: a few ms, against seconds of separation per file)."""
        if self._file is None:
            raise RuntimeError("Manifest.append outside `with Manifest(...)`")
        self._file.write(json.dumps(record, sort_keys=True) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
