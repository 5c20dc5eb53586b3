"""The web app's job queue: one SQLite file (standard library), so queued and finished jobs
survive a restart of the server.

A job is named by a random token (``secrets.token_urlsafe``), never by anything the client
sent; its files live in ``<data dir>/jobs/<token>/`` (:meth:`JobStore.folder`). Status goes
``queued -> running -> done | failed``; a job still ``running`` when a store opens was cut off
by a stop, and goes back to ``queued`` (:meth:`JobStore.recover`).
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

#: what a job token looks like (token_urlsafe(16): 22 characters of [A-Za-z0-9_-])
TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    model TEXT NOT NULL,
    enhance INTEGER NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    progress REAL NOT NULL DEFAULT 0,
    error TEXT,
    result TEXT,
    created REAL NOT NULL,
    finished REAL
)
"""


@dataclass
class Job:
    """One row: ``result`` holds what a finished job gives (stems, sample rate, seconds)."""

    id: str
    model: str
    enhance: bool
    name: str
    status: str
    progress: float
    error: str | None
    created: float
    finished: float | None
    seq: int
    result: dict = field(default_factory=dict)


class JobStore:
    """Jobs in ``<data_dir>/jobs.sqlite3``, their files in ``<data_dir>/jobs/<token>/``; safe to
    share between threads (one connection behind a lock)."""

    def __init__(self, data_dir: str | Path) -> None:
        self.root = Path(data_dir)
        (self.root / "jobs").mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.root / "jobs.sqlite3", check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        with self._lock, self._db:
            self._db.execute(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def folder(self, job_id: str) -> Path:
        """A job's folder; only for a token this store made (``TOKEN`` checked again here)."""
        if not TOKEN.fullmatch(job_id):
            raise ValueError(f"not a job token: {job_id!r}")
        return self.root / "jobs" / job_id

    def new_folder(self) -> tuple[str, Path]:
        """A fresh token and its (created, empty) folder, before the job is queued."""
        while True:
            token = secrets.token_urlsafe(16)
            folder = self.folder(token)
            try:
                folder.mkdir()
            except FileExistsError:
                continue
            return token, folder

    def add(self, job_id: str, model: str, enhance: bool, name: str) -> None:
        """Queue the job whose folder :meth:`new_folder` made (its input already written)."""
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO jobs (id, model, enhance, name, status, created) "
                "VALUES (?, ?, ?, ?, 'queued', ?)",
                (job_id, model, int(enhance), name, time.time()),
            )

    def get(self, job_id: str) -> Job | None:
        """The job with this token, or None (any other string, too)."""
        if not TOKEN.fullmatch(job_id):
            return None
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job(row) if row is not None else None

    def position(self, job: Job) -> int | None:
        """1 for the next queued job to run, 2 for the one after...; None once it runs."""
        if job.status != "queued":
            return None
        with self._lock:
            (ahead,) = self._db.execute(
                "SELECT COUNT(*) FROM jobs WHERE status = 'queued' AND seq < ?", (job.seq,)
            ).fetchone()
        return ahead + 1

    def claim(self) -> Job | None:
        """Take the oldest queued job (now ``running``), or None if none waits."""
        with self._lock, self._db:
            row = self._db.execute(
                "SELECT * FROM jobs WHERE status = 'queued' ORDER BY seq LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            self._db.execute(
                "UPDATE jobs SET status = 'running', progress = 0 WHERE seq = ?", (row["seq"],)
            )
        job = _job(row)
        job.status = "running"
        return job

    def set_progress(self, job_id: str, progress: float) -> None:
        with self._lock, self._db:
            self._db.execute(
                "UPDATE jobs SET progress = ? WHERE id = ?", (min(max(progress, 0.0), 1.0), job_id)
            )

    def finish(self, job_id: str, result: dict) -> None:
        with self._lock, self._db:
            self._db.execute(
                "UPDATE jobs SET status = 'done', progress = 1, result = ?, finished = ? "
                "WHERE id = ?",
                (json.dumps(result), time.time(), job_id),
            )

    def fail(self, job_id: str, message: str) -> None:
        with self._lock, self._db:
            self._db.execute(
                "UPDATE jobs SET status = 'failed', error = ?, finished = ? WHERE id = ?",
                (message, time.time(), job_id),
            )

    def recover(self) -> int:
        """Jobs left ``running`` by a stopped server go back to the queue; how many."""
        with self._lock, self._db:
            cur = self._db.execute(
                "UPDATE jobs SET status = 'queued', progress = 0 WHERE status = 'running'"
            )
        return cur.rowcount

    def remove_expired(self, keep_seconds: float, now: float | None = None) -> list[str]:
        """Delete the jobs finished more than ``keep_seconds`` ago, with their files; their ids.
        Folders of no job (an upload cut off before it was queued) older than that go too."""
        now = time.time() if now is None else now
        with self._lock, self._db:
            rows = self._db.execute(
                "SELECT id FROM jobs WHERE finished IS NOT NULL AND finished < ?",
                (now - keep_seconds,),
            ).fetchall()
            ids = [r["id"] for r in rows]
            self._db.executemany("DELETE FROM jobs WHERE id = ?", [(i,) for i in ids])
            known = {r["id"] for r in self._db.execute("SELECT id FROM jobs").fetchall()}
        for job_id in ids:
            shutil.rmtree(self.folder(job_id), ignore_errors=True)
        for folder in (self.root / "jobs").iterdir():
            if folder.name in known or not TOKEN.fullmatch(folder.name):
                continue
            try:
                stale = folder.stat().st_mtime < now - keep_seconds
            except FileNotFoundError:  # a refused upload's folder, removed meanwhile
                continue
            if stale:
                shutil.rmtree(folder, ignore_errors=True)
        return ids


def _job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        model=row["model"],
        enhance=bool(row["enhance"]),
        name=row["name"],
        status=row["status"],
        progress=row["progress"],
        error=row["error"],
        created=row["created"],
        finished=row["finished"],
        seq=row["seq"],
        result=json.loads(row["result"]) if row["result"] else {},
    )
