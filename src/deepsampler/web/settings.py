"""What ``deepsampler serve`` is started with: one :class:`Settings` for the app factory."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from deepsampler.errors import DeepSamplerError


def default_data_dir() -> Path:
    """``<deepsampler cache>/web``: the server's own folder for uploads, stems and its queue."""
    from deepsampler.export.cache import cache_root

    return cache_root() / "web"


def shipped_separators() -> dict[str, Path]:
    """Name -> file of every shipped separator (what the page offers)."""
    from deepsampler.models.registry import shipped

    return {e.name: e.path for e in shipped("separator")}


def default_detector() -> str | None:
    """The shipped siren detector's name once it ships, else None (no detection)."""
    from deepsampler.detection.checkpoint import DEFAULT_DETECTOR
    from deepsampler.models.registry import shipped

    return (
        DEFAULT_DETECTOR if any(e.name == DEFAULT_DETECTOR for e in shipped("detector")) else None
    )


@dataclass
class Settings:
    """The server's settings.

    Args:
        data_dir: the server-owned folder (the job queue's SQLite file and one folder per job).
        max_upload_mb: the largest upload accepted, in MB (10^6 bytes).
        workers: jobs separated at once (0: none run; they wait in the queue).
        keep_hours: a finished job and its files are removed this long after it ended.
        max_uploads: uploads received at once; more are refused with 503.
        max_live: live sessions at once; more are refused.
        engine: the live mode's streaming engine (``auto``, ``onnx`` or ``torch``).
        models: name -> model file the page offers (default: the shipped separators).
        detector: a siren detector (shipped name or checkpoint path) run on the jobs of its
            separator, whose events the page draws (default: the shipped ``siren-sde`` once it
            ships, else none; None or ``"none"``: no detection).
    """

    data_dir: Path = field(default_factory=default_data_dir)
    max_upload_mb: float = 200.0
    workers: int = 1
    keep_hours: float = 24.0
    max_uploads: int = 4
    max_live: int = 4
    engine: str = "auto"
    models: dict[str, Path] = field(default_factory=shipped_separators)
    detector: str | Path | None = field(default_factory=default_detector)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        if self.detector is not None and str(self.detector).strip().lower() in ("", "none"):
            self.detector = None
        if self.max_upload_mb <= 0:
            raise DeepSamplerError(f"--max-upload-mb {self.max_upload_mb}: use a size > 0")
        if self.workers < 0:
            raise DeepSamplerError(f"--workers {self.workers}: use 0 or more")
        if self.keep_hours <= 0:
            raise DeepSamplerError(f"--keep-hours {self.keep_hours}: use a time > 0")
        if self.max_uploads < 1 or self.max_live < 0:
            raise DeepSamplerError("need at least one upload at a time and 0 or more live sessions")
        if self.engine not in ("auto", "onnx", "torch"):
            raise DeepSamplerError(f"engine {self.engine!r}: use auto, onnx or torch")
        if not self.models:
            raise DeepSamplerError("no separator to offer: no shipped model was found")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1_000_000)
