"""Which files a run separates: the catalogue (folders, list files) and, against the manifest,
which of its files are complete, failed earlier or still to do."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepsampler.batch.job import SeparationJob
from deepsampler.batch.manifest import Manifest, file_identity, record_key
from deepsampler.errors import DeepSamplerError

LIST_SUFFIXES = (".txt", ".lst", ".list")


@dataclass
class Item:
    """One input of a run: where it is, its track folder, manifest key and length."""

    path: str
    track: str
    key: str
    identity: dict[str, Any]
    audio_seconds: float  # s, from the header (0 where it cannot be read: it will fail)


@dataclass
class Plan:
    """A run's inputs sorted by what the manifest says of them."""

    todo: list[Item] = field(default_factory=list)
    complete: list[Item] = field(default_factory=list)  # done earlier, stems present: skipped
    failed_earlier: list[Item] = field(default_factory=list)  # skipped without --retry-failed
    errors: dict[str, str] = field(default_factory=dict)  # key -> the earlier failure
    torn_lines: int = 0  # manifest lines that were not whole (a killed run's last line)

    @property
    def todo_seconds(self) -> float:
        return sum(i.audio_seconds for i in self.todo)


def audio_seconds(path: str | Path) -> float:
    """A file's length in s from its header (``soundfile.info``: no samples are read)."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
        return info.frames / info.samplerate if info.samplerate else 0.0
    except Exception:  # noqa: BLE001 - unreadable now: separate_file reports why
        return 0.0


def plan_run(
    files: Sequence[tuple[Path, str]], job: SeparationJob, manifest: Manifest, retry_failed: bool
) -> Plan:
    """Sort ``files`` (path, track) by the manifest: a file whose last record under this model
    and these options is ``done`` and whose stems are all still there is complete; one whose
    last record is ``failed`` is redone only with ``retry_failed``; the rest are to do."""
    latest = manifest.latest()
    plan = Plan(torn_lines=manifest.torn_lines)
    out = Path(job.out_dir)
    options = job.options()
    for path, track in files:
        identity = file_identity(path)
        key = record_key(identity, job.digest, options)
        item = Item(str(path), track, key, identity, audio_seconds(path))
        rec = latest.get(key)
        status = rec.get("status") if rec else None
        outputs = rec.get("outputs") or {} if rec else {}
        if status == "done" and all((out / o).is_file() for o in outputs.values()) and outputs:
            plan.complete.append(item)
        elif status == "failed" and not retry_failed:
            plan.failed_earlier.append(item)
            plan.errors[key] = str(rec.get("error"))
        else:
            plan.todo.append(item)
    return plan


def _track(path: Path, root: Path | None) -> str:
    """A track folder mirroring ``path`` under ``root`` (without the extension; a MUSDB-style
    ``<track>/mixture.*`` is its folder), so tracks of the same name in different folders of a
    catalogue do not collide; the file's own name where it is not under ``root``."""
    if root is not None and path.is_relative_to(root):
        rel = path.relative_to(root).with_suffix("")
        if rel.name == "mixture":
            rel = rel.parent if len(rel.parts) > 1 else Path(root.name)
        return rel.as_posix()
    return path.parent.name if path.stem == "mixture" and path.parent.name else path.stem


def find_audio(folder: Path, out: Path) -> list[Path]:
    """Audio files under ``folder``, sorted, as ``separate`` finds them: in a folder holding a
    ``mixture.*`` (MUSDB18-HQ layout) only the mixture, and nothing under the output folder."""
    from deepsampler.audio import AUDIO_EXTENSIONS

    skip = out.resolve()
    found = sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in AUDIO_EXTENSIONS and not p.resolve().is_relative_to(skip)
    )
    mixture_dirs = {p.parent for p in found if p.stem == "mixture"}
    found = [p for p in found if p.parent not in mixture_dirs or p.stem == "mixture"]
    if not found:
        raise DeepSamplerError(
            f"{folder}: folder holds no audio files ({', '.join(AUDIO_EXTENSIONS)})"
        )
    return found


def _read_list(list_file: Path) -> list[Path]:
    """A list file's paths, one a line (blank lines and ``#`` comments skipped); a relative path
    is relative to the list's folder."""
    try:
        lines = list_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DeepSamplerError(f"{list_file}: cannot read the list ({exc})") from None
    paths = [Path(s.strip()) for s in lines if s.strip() and not s.strip().startswith("#")]
    if not paths:
        raise DeepSamplerError(f"{list_file}: the list names no file")
    return [p if p.is_absolute() else list_file.parent / p for p in paths]


def catalogue_inputs(sources: Sequence[str], out: Path) -> list[tuple[Path, str]]:
    """``deepsampler batch``'s inputs: every audio file under a folder (found as ``separate``
    finds them), the files a ``.txt`` list names, or audio files given directly; tracks are
    their paths relative to the folder or the list's folder, so a catalogue's layout is kept
    under OUT. Two inputs writing one track folder are refused before any work."""
    found: list[tuple[Path, str]] = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            root = path.absolute()
            found += [(p, _track(p.absolute(), root)) for p in find_audio(path, out)]
        elif path.suffix.lower() in LIST_SUFFIXES:
            root = path.parent.absolute()
            found += [(p, _track(p.absolute(), root)) for p in _read_list(path)]
        else:
            found.append((path, _track(path, None)))
    seen: dict[str, Path] = {}
    for p, track in found:
        if track in seen and seen[track] != p:
            raise DeepSamplerError(
                f"{seen[track]} and {p} would both write to the track folder {track!r}; "
                "rename one or separate them into different -o folders"
            )
        seen[track] = p
    return found
