"""What every worker of a run needs (:class:`SeparationJob`), what it reports back for each file
(:class:`Outcome`) and the one function that separates a file for all runners."""

from __future__ import annotations

import hashlib
import os
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deepsampler.errors import DeepSamplerError

if TYPE_CHECKING:
    from deepsampler.separator import Separator


def model_digest(path: str | Path) -> str:
    """A checkpoint's own stored digest, or else the SHA-256 of the file's bytes: what the
    manifest compares to see that the model changed."""
    from deepsampler.export.onnx_engine import checkpoint_digest

    stored = checkpoint_digest(path)
    if stored:
        return stored
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            sha.update(block)
    return "sha256:" + sha.hexdigest()


@dataclass(frozen=True)
class SeparationJob:
    """A run's model and options as plain values, so it pickles to worker processes and Ray
    actors; each of them builds its own :class:`Separator` from it once.

    ``shifts`` and ``flip`` are resolved (never None): the manifest keys files by the options
    that change the stems, and the model's default spelled out or left implicit must not differ.
    """

    model: str  # checkpoint path, resolved
    model_name: str
    digest: str
    out_dir: str
    stems: tuple[str, ...]
    fmt: str = "wav"
    device: str = "cpu"
    chunk_seconds: float = 10.0  # s
    overlap_seconds: float = 1.0  # s
    downmix: bool = False
    wiener: int = -1
    shifts: int = 1
    flip: bool = False
    allow_untrained: bool = False
    threads: int = 1  # torch intra-op threads per worker (0 = torch's default)

    @classmethod
    def from_separator(
        cls,
        sep: Separator,
        model: str,
        out_dir: str | Path,
        stems: list[str] | None,
        fmt: str,
        threads: int,
    ) -> SeparationJob:
        """The job of a loaded separator (the driver loads the model once to check it and the
        options before any worker starts). ``model`` as the user gave it: a shipped model's
        name stays a name, which every node of a cluster finds in its own install; a path is
        resolved, and must be one the workers see."""
        from deepsampler.models.registry import shipped_models

        path = sep.loaded.path
        return cls(
            model=model if model in shipped_models() else str(Path(path).resolve()),
            model_name=sep.name,
            digest=model_digest(path),
            out_dir=str(out_dir),
            stems=tuple(stems or sep.sources),
            fmt=fmt,
            device=str(sep.device),
            chunk_seconds=sep.chunk / sep.sample_rate,
            overlap_seconds=sep.overlap / sep.sample_rate,
            downmix=sep.downmix,
            wiener=sep.wiener,
            shifts=sep.shifts,
            flip=sep.flip,
            allow_untrained=not sep.trained,
            threads=threads,
        )

    def options(self) -> dict[str, Any]:
        """The options that change the stems written (part of each file's manifest key)."""
        return {
            "stems": list(self.stems),
            "format": self.fmt,
            "chunk_seconds": self.chunk_seconds,
            "overlap_seconds": self.overlap_seconds,
            "downmix": self.downmix,
            "wiener": self.wiener,
            "shifts": self.shifts,
            "flip": self.flip,
        }

    def make_separator(self, verify: bool = False) -> Separator:
        """Load the model (in a worker: once, for all its files). ``verify``: refuse a model
        whose digest is not the driver's (a cluster node with another version installed would
        write other stems under the same manifest key)."""
        from deepsampler.models import resolve_model
        from deepsampler.separator import Separator

        if verify and (found := model_digest(resolve_model(self.model))) != self.digest:
            raise DeepSamplerError(
                f"model {self.model} on {socket.gethostname()} has digest {found}, the run's is "
                f"{self.digest}: install the same deepsampler (or model file) on every node"
            )
        return Separator(
            self.model,
            device=self.device,
            chunk_seconds=self.chunk_seconds,
            overlap_seconds=self.overlap_seconds,
            allow_untrained=self.allow_untrained,
            downmix=self.downmix,
            wiener=self.wiener,
            shifts=self.shifts,
            flip=self.flip,
        )


@dataclass
class Outcome:
    """One file's result as a runner reports it: ``status`` ``done`` (``outputs``: stem -> path
    relative to the output folder) or ``failed`` (``error``: one line)."""

    input: str
    track: str
    status: str
    outputs: dict[str, str] = field(default_factory=dict)
    audio_seconds: float = 0.0  # s of audio in the input
    seconds: float = 0.0  # s of wall time the worker spent on it
    error: str | None = None
    worker: str = ""  # host:pid of the process that separated it
    clipped: int = 0  # samples clipped to [-1, 1] (flac output)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Outcome:
        return cls(**d)


def worker_name() -> str:
    """``host:pid``: which process on which machine did a file (kill it, read its logs)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def one_line(exc: BaseException) -> str:
    """An exception as one line: our errors say it all, others get their type in front."""
    text = str(exc).strip().splitlines()
    line = text[0] if text else ""
    return line if isinstance(exc, DeepSamplerError) else f"{type(exc).__name__}: {line}"


def separate_one(sep: Separator, job: SeparationJob, path: str, track: str) -> Outcome:
    """Separate one file into ``job.out_dir/track`` (stems written atomically by
    ``separate_file``: a failure or a kill leaves no stem of it). A failure becomes a ``failed``
    outcome, never an exception, so one bad file does not stop a run; a stop (Ctrl-C, SIGTERM)
    still propagates."""
    start = time.perf_counter()
    try:
        result = sep.separate_file(
            path, job.out_dir, stems=list(job.stems), fmt=job.fmt, track=track
        )
    except Exception as exc:  # noqa: BLE001 - any failure of one file is recorded, not raised
        return Outcome(
            path,
            track,
            "failed",
            error=one_line(exc),
            seconds=time.perf_counter() - start,
            worker=worker_name(),
        )
    out = Path(job.out_dir)
    return Outcome(
        path,
        track,
        "done",
        outputs={s: str(p.relative_to(out)) for s, p in result.stems.items()},
        audio_seconds=result.audio_seconds,
        seconds=time.perf_counter() - start,
        worker=worker_name(),
        clipped=result.clipped_samples,
    )
