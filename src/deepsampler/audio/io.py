"""Audio file reading and atomic writing (soundfile: wav, flac, ogg, mp3, aiff).

Every failure becomes an :class:`AudioInputError` or :class:`OutputError` with one line that
names the file and says what to do. Writers write to a hidden temporary name in the target folder
and rename on success, so no half-written file is ever left under the final name.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from deepsampler.atomic import temp_path_beside
from deepsampler.errors import AudioInputError, OutputError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")
OUTPUT_FORMATS = {"wav": ("WAV", "FLOAT"), "flac": ("FLAC", "PCM_24")}


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds: ``frames`` samples per channel at ``sample_rate`` Hz."""

    path: Path
    sample_rate: int
    channels: int
    frames: int

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate


def _open_error(path: Path, exc: Exception) -> AudioInputError:
    if not path.exists():
        return AudioInputError(f"{path}: file not found; check the path")
    if path.is_dir():
        return AudioInputError(f"{path}: is a folder, not an audio file")
    if not os.access(path, os.R_OK):
        return AudioInputError(f"{path}: permission denied; make the file readable (chmod +r)")
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return AudioInputError(
        f"{path}: cannot be read as audio ({reason}); re-export it as wav, flac, ogg or mp3"
    )


def audio_info(path: str | Path) -> AudioInfo:
    """Header information; raises AudioInputError if missing, unreadable or empty."""
    path = Path(path)
    try:
        info = sf.info(str(path))
    except Exception as exc:  # soundfile raises several types for bad files
        raise _open_error(path, exc) from None
    if info.frames <= 0:
        raise AudioInputError(f"{path}: contains no audio samples (0 frames); check the export")
    return AudioInfo(path, int(info.samplerate), int(info.channels), int(info.frames))


def _check_finite(path: Path, block: np.ndarray, offset: int, sample_rate: int) -> None:
    if not np.isfinite(block).all():
        first = int(np.argmax(~np.isfinite(block).all(axis=0)))
        at = (offset + first) / sample_rate
        raise AudioInputError(
            f"{path}: contains NaN/Inf samples (first at {at:.3f} s); "
            f"repair or re-export the file with finite samples"
        )


def iter_blocks(path: str | Path, block_frames: int = 65536) -> Iterator[np.ndarray]:
    """Yield ``[c, n]`` float32 blocks of a file, checking every sample is finite."""
    path = Path(path)
    info = audio_info(path)
    offset = 0
    try:
        with sf.SoundFile(str(path)) as f:
            while True:
                data = f.read(block_frames, dtype="float32", always_2d=True)
                if data.shape[0] == 0:
                    break
                block = np.ascontiguousarray(data.T)
                _check_finite(path, block, offset, info.sample_rate)
                offset += block.shape[1]
                yield block
    except AudioInputError:
        raise
    except Exception as exc:
        raise _open_error(path, exc) from None
    if offset == 0:
        raise AudioInputError(f"{path}: contains no audio samples (0 frames); check the export")


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Read a whole file as ``[c, samples]`` float32 and its sample rate in Hz."""
    info = audio_info(path)
    return np.concatenate(list(iter_blocks(path)), axis=1), info.sample_rate


def ensure_writable_dir(folder: str | Path) -> Path:
    """Create ``folder`` if needed and prove a file can be written there."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".deepsampler-probe-"):
            pass
    except (OSError, PermissionError) as exc:
        reason = exc.strerror or type(exc).__name__
        raise OutputError(
            f"{folder}: cannot write output here ({reason}); choose another folder with -o"
        ) from None
    return folder


class AtomicAudioWriter:
    """Write ``[c, n]`` blocks to a temporary file beside ``path``; :meth:`commit` renames it.

    Use as a context manager: leaving the block without :meth:`commit` (or with an exception)
    deletes the temporary file, so nothing half-written remains.
    """

    def __init__(self, path: str | Path, sample_rate: int, channels: int, fmt: str = "wav") -> None:
        if fmt not in OUTPUT_FORMATS:
            raise OutputError(f"unknown output format {fmt!r}; use one of {list(OUTPUT_FORMATS)}")
        self.path = Path(path)
        self.fmt = fmt
        self.clipped = 0
        major, subtype = OUTPUT_FORMATS[fmt]
        self.tmp_path = temp_path_beside(self.path)
        tmp = str(self.tmp_path)
        try:
            self._file = sf.SoundFile(
                tmp, "w", samplerate=sample_rate, channels=channels, format=major, subtype=subtype
            )
        except Exception as exc:
            self.tmp_path.unlink(missing_ok=True)
            raise OutputError(f"{self.path}: cannot be written ({exc})") from None

    def _failed(self, exc: Exception) -> OutputError:
        reason = getattr(exc, "strerror", None) or str(exc).splitlines()[0] or type(exc).__name__
        return OutputError(f"{self.path}: writing failed ({reason}); check free space and -o")

    def write(self, block: np.ndarray) -> None:
        """Append ``[c, n]`` float samples (integer formats are clipped to [-1, 1])."""
        if self.fmt != "wav":
            over = np.abs(block) > 1.0
            self.clipped += int(over.sum())
            block = np.clip(block, -1.0, 1.0)
        try:
            self._file.write(np.ascontiguousarray(block.T))
        except (OSError, RuntimeError) as exc:  # soundfile's errors are RuntimeErrors
            raise self._failed(exc) from None

    def close(self) -> None:
        """Flush and close the temporary file (still under its temporary name)."""
        try:
            self._file.close()
        except (OSError, RuntimeError) as exc:
            raise self._failed(exc) from None

    def commit(self) -> Path:
        """Close and rename to the final name."""
        self.close()
        try:
            os.replace(self.tmp_path, self.path)
        except OSError as exc:
            raise self._failed(exc) from None
        return self.path

    def abort(self) -> None:
        if not self._file.closed:
            self._file.close()
        self.tmp_path.unlink(missing_ok=True)

    def __enter__(self) -> AtomicAudioWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.tmp_path.exists():
            self.abort()


def commit_all(writers: list[AtomicAudioWriter]) -> list[Path]:
    """Commit several writers all or nothing: close every file first (where a full disk shows),
    then rename; if anything fails, the files already renamed are removed again."""
    done: list[Path] = []
    try:
        for w in writers:
            w.close()
        for w in writers:
            done.append(w.commit())
    except BaseException:
        for path in done:
            path.unlink(missing_ok=True)
        for w in writers:
            w.abort()
        raise
    return done


def created_dirs(folder: str | Path) -> list[Path]:
    """The folders, deepest first, that creating ``folder`` would create (those missing now)."""
    missing = []
    folder = Path(folder).absolute()
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def remove_empty_dirs(folders: list[Path]) -> None:
    """Remove ``folders`` (deepest first) where they exist and are empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            break


def write_audio(path: str | Path, audio: np.ndarray, sample_rate: int, fmt: str = "wav") -> Path:
    """Write ``[c, samples]`` audio atomically and return the final path."""
    with AtomicAudioWriter(path, sample_rate, audio.shape[0], fmt) as writer:
        writer.write(audio)
        return writer.commit()
