"""Audio file reading and atomic writing (soundfile: wav, flac, ogg, mp3, aiff).

Every failure becomes an :class:`AudioInputError` or :class:`OutputError` with one line that
names the file and says what to do; a file that reads but is cut short gives an
:class:`AudioWarning`. Writers write to a hidden temporary name in the target folder
and rename on success, so no half-written file is ever left under the final name.
"""

from __future__ import annotations

import os
import struct
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf

from deepsampler.atomic import temp_path_beside
from deepsampler.errors import AudioInputError, AudioWarning, OutputError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")
OUTPUT_FORMATS = {"wav": ("WAV", "FLOAT"), "flac": ("FLAC", "PCM_24")}
READABLE_FORMATS = "wav, flac, ogg, mp3 or aiff"

_SNIFF_BYTES = 512
# Streaming writers (ffmpeg or arecord to a pipe) cannot seek back to fill in the data size, so
# they leave one of these; such a size says nothing about how long the file should be.
_PLACEHOLDER_SIZES = (0, 0x7FFFFFFF, 0xFFFFFFFF)
# WAVE format tags whose frames all take block_align bytes: PCM, IEEE float, A-law, mu-law.
_FIXED_FRAME_TAGS = (1, 3, 6, 7)
_MPEG_FRAME = 1152


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


def sniff_audio(head: bytes) -> str | None:
    """The format a file's first bytes announce ("wav", "flac", "ogg", "mp3", "aiff"), or None.

    None does not mean unreadable (libsndfile knows more formats, e.g. CAF or AU), only that the
    bytes do not announce one of those this package documents.
    """
    if head[:4] in (b"RIFF", b"RIFX", b"RF64", b"BW64", b"riff"):  # riff: Sony Wave64
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:4] == b"FORM":
        return "aiff"
    if head[:3] == b"ID3" or _is_mpeg_sync(head):
        return "mp3"
    return None


def _is_mpeg_sync(head: bytes) -> bool:
    """Whether ``head`` starts with an MPEG audio frame header (11 sync bits, valid fields)."""
    if len(head) < 3 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    layer, bitrate, rate = (head[1] >> 1) & 3, head[2] >> 4, (head[2] >> 2) & 3
    return layer != 0 and bitrate != 15 and rate != 3


def looks_like_text(head: bytes) -> bool:
    """Whether ``head`` (a file's first bytes) reads as UTF-8 text: printable or white space."""
    head = head.removeprefix(b"\xef\xbb\xbf")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # not merely a character cut by the end of the sample
            return False
        text = head[: exc.start].decode("utf-8")
    return bool(text) and all(c.isprintable() or c in "\t\n\r\f\v" for c in text)


@contextmanager
def _c_stderr_silenced(active: bool = True) -> Iterator[None]:
    """Point file descriptor 2 at the null device while libsndfile opens a file.

    libsndfile's MPEG decoder (libmpg123) prints notes such as "Illegal Audio-MPEG-Header" from C
    straight to fd 2 whenever it probes a file that is not MPEG audio, which redirecting
    sys.stderr cannot catch. What went wrong is said by this module's own one-line error or
    warning instead. fd 2 is shared by the whole process, so this wraps only the open call.
    """
    saved = None
    if active:
        try:
            sys.stderr.flush()  # what Python wrote so far belongs before the silence
            saved = os.dup(2)
        except (AttributeError, OSError, ValueError):  # no stderr, or fd 2 closed
            saved = None
    if saved is None:
        yield
        return
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, 2)
        finally:
            os.close(null)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _sniff(path: Path) -> tuple[str | None, bytes | None]:
    """The format a regular file announces and its first bytes; refuse an empty file.

    Pipes and devices are left to libsndfile unread (reading would consume or block on them),
    shown by ``None`` bytes.
    """
    try:
        if not path.is_file():
            return None, None
        with open(path, "rb") as f:
            head = f.read(_SNIFF_BYTES)
    except OSError as exc:
        raise _open_error(path, exc) from None
    if not head:
        raise AudioInputError(
            f"{path}: is empty (0 bytes), not an audio file; check the path or export it again"
        )
    return sniff_audio(head), head


def _mpeg_may_probe(path: Path, kind: str | None, head: bytes | None) -> bool:
    """Whether opening may start libmpg123, which prints to fd 2: when the bytes look like MPEG
    or are of no sniffed format, or the name ends in .mp3 (measured: libsndfile then falls back to
    MPEG for any bytes it does not recognise, a damaged wav header included)."""
    return head is not None and (kind in (None, "mp3") or path.suffix.lower() == ".mp3")


def _not_audio(path: Path, head: bytes) -> AudioInputError:
    content = "text, not" if looks_like_text(head) else "not"
    return AudioInputError(
        f"{path}: not an audio file (its content is {content} {READABLE_FORMATS}); "
        f"check the path, or export the audio as wav, flac, ogg or mp3"
    )


def _open_error(path: Path, exc: Exception) -> AudioInputError:
    if not path.exists():
        return AudioInputError(f"{path}: file not found; check the path")
    if path.is_dir():
        return AudioInputError(f"{path}: is a folder, not an audio file")
    if not os.access(path, os.R_OK):
        return AudioInputError(f"{path}: permission denied; make the file readable (chmod +r)")
    # LibsndfileError.error_string is the reason without "Error opening '<path>': " before it
    reason = getattr(exc, "error_string", None) or str(exc)
    reason = reason.splitlines()[0] if reason else type(exc).__name__
    if "possibly a pipe" in reason and path.is_file():
        # libsndfile says this for a regular file when, after no header matched, its MPEG
        # decoder (tried for a .mp3 name or MPEG-like bytes) found no audio frames either
        reason = "no header or audio frames it recognises"
    return AudioInputError(
        f"{path}: cannot be read as audio ({reason}); re-export it as wav, flac, ogg or mp3"
    )


def _inspect(path: Path) -> tuple[AudioInfo, bool]:
    """Header information and whether opening the file needs fd 2 silenced."""
    kind, head = _sniff(path)
    quiet = _mpeg_may_probe(path, kind, head)
    try:
        with _c_stderr_silenced(quiet):
            info = sf.info(str(path))
    except Exception as exc:  # soundfile raises several types for bad files
        if kind is None and head is not None:
            raise _not_audio(path, head) from None
        raise _open_error(path, exc) from None
    if info.frames <= 0:
        raise AudioInputError(f"{path}: contains no audio samples (0 frames); check the export")
    return AudioInfo(path, int(info.samplerate), int(info.channels), int(info.frames)), quiet


def audio_info(path: str | Path) -> AudioInfo:
    """Header information; raises AudioInputError if missing, unreadable, not audio or empty."""
    return _inspect(Path(path))[0]


def _check_finite(path: Path, block: np.ndarray, offset: int, sample_rate: int) -> None:
    if not np.isfinite(block).all():
        first = int(np.argmax(~np.isfinite(block).all(axis=0)))
        at = (offset + first) / sample_rate
        raise AudioInputError(
            f"{path}: contains NaN/Inf samples (first at {at:.3f} s); "
            f"repair or re-export the file with finite samples"
        )


def iter_blocks(path: str | Path, block_frames: int = 65536) -> Iterator[np.ndarray]:
    """Yield ``[c, n]`` float32 blocks of a file, checking every sample is finite.

    A file that ends before its header says it should gives an :class:`AudioWarning` once all
    of it has been read; a file whose data cannot be decoded part way raises AudioInputError.
    """
    path = Path(path)
    info, quiet = _inspect(path)
    offset = 0
    opened = False
    try:
        with _c_stderr_silenced(quiet):
            f = sf.SoundFile(str(path))
        opened = True
        with f:
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
        if not opened:
            raise _open_error(path, exc) from None
        # the header was read, so the data is damaged or cut (a truncated flac ends this way)
        reason = getattr(exc, "error_string", None) or str(exc) or type(exc).__name__
        raise AudioInputError(
            f"{path}: damaged or truncated: decoding failed before the end of its "
            f"{info.seconds:.2f} s ({reason.splitlines()[0]}); export or copy it again"
        ) from None
    if offset == 0:
        raise AudioInputError(f"{path}: contains no audio samples (0 frames); check the export")
    _warn_if_truncated(path, info, offset)


def _warn_if_truncated(path: Path, info: AudioInfo, frames_read: int) -> None:
    """Warn when fewer frames were read than the file's header declares."""
    declared = _declared_frames(path, info)
    if declared is None:
        return
    frames, tolerance = declared
    if frames - frames_read > tolerance:
        sr = info.sample_rate
        warnings.warn(
            f"{path}: truncated: read {frames_read} of {frames} declared frames "
            f"({frames_read / sr:.2f} of {frames / sr:.2f} s); the rest is missing",
            AudioWarning,
            stacklevel=3,
        )


def _declared_frames(path: Path, info: AudioInfo) -> tuple[int, int] | None:
    """The frame count a file's header declares and the shortfall to tolerate, or None.

    libsndfile trims a wav or aiff header's count to the bytes present and reads to the end
    without a word, so sf.info cannot show that such a file was cut: the count is read from the
    header here. For flac, libsndfile's count is STREAMINFO's (exact); for mp3 it is exact only
    when a Xing/Info/VBRI header holds it (else an estimate from the file size, too rough to
    judge by). An ogg's length comes from its last page, so a cut ogg declares nothing.
    """
    try:
        with open(path, "rb") as f:
            kind = sniff_audio(f.read(_SNIFF_BYTES))
            f.seek(0)
            if kind == "wav":
                frames = _wav_declared_frames(f)
                return None if frames is None else (frames, 0)
            if kind == "aiff":
                frames = _aiff_declared_frames(f)
                return None if frames is None else (frames, 0)
            if kind == "flac":
                return (info.frames, 0)
            if kind == "mp3" and _has_mpeg_length_header(f):
                return (info.frames, 2 * _MPEG_FRAME)  # room for decoder delay and padding
    except (OSError, struct.error):  # an unparsable header: libsndfile's reading stands
        return None
    return None


def _wav_declared_frames(f: BinaryIO) -> int | None:
    """Frames declared by a RIFF/RIFX/RF64 WAVE file's data chunk (None: not stated)."""
    riff = f.read(12)
    if riff[:4] not in (b"RIFF", b"RIFX", b"RF64", b"BW64") or riff[8:12] != b"WAVE":
        return None
    endian = ">" if riff[:4] == b"RIFX" else "<"
    tag = block_align = fact = data_size64 = None
    for _ in range(64):  # a real header has a few chunks before the data
        chunk = f.read(8)
        if len(chunk) < 8:
            return None
        cid, size = chunk[:4], struct.unpack(endian + "I", chunk[4:])[0]
        body = f.tell()
        if cid == b"ds64":  # RF64: the 64-bit sizes the 32-bit fields cannot hold
            data_size64 = struct.unpack("<QQ", f.read(16))[1]
        elif cid == b"fmt ":
            fmt = f.read(min(size, 40))
            tag, _, _, _, block_align = struct.unpack(endian + "HHIIH", fmt[:14])
            if tag == 0xFFFE and len(fmt) >= 26:  # extensible: the real tag opens the GUID
                tag = struct.unpack(endian + "H", fmt[24:26])[0]
        elif cid == b"fact":
            fact = struct.unpack(endian + "I", f.read(4))[0]
        elif cid == b"data":
            if size == 0xFFFFFFFF and data_size64 is not None:
                size = data_size64
            elif size in _PLACEHOLDER_SIZES:
                return None
            if tag in _FIXED_FRAME_TAGS and block_align:
                return size // block_align
            return fact or None  # compressed data: only the fact chunk counts its frames
        f.seek(body + size + (size & 1))  # chunks are padded to an even length
    return None


def _aiff_declared_frames(f: BinaryIO) -> int | None:
    """Frames declared by an AIFF/AIFF-C file's COMM chunk (None: not stated)."""
    form = f.read(12)
    if form[:4] != b"FORM" or form[8:12] not in (b"AIFF", b"AIFC"):
        return None
    for _ in range(64):
        chunk = f.read(8)
        if len(chunk) < 8:
            return None
        cid, size = chunk[:4], struct.unpack(">I", chunk[4:])[0]
        body = f.tell()
        if cid == b"COMM":
            return struct.unpack(">hI", f.read(6))[1] or None
        f.seek(body + size + (size & 1))
    return None


def _has_mpeg_length_header(f: BinaryIO) -> bool:
    """Whether the first MPEG frame (after any ID3v2 tag) is a Xing, Info or VBRI header, which
    states the stream's exact length."""
    head = f.read(10)
    start = 0
    if head[:3] == b"ID3" and len(head) == 10:
        size = 0
        for byte in head[6:10]:  # a "syncsafe" integer: 7 bits per byte
            size = size << 7 | byte & 0x7F
        start = 10 + size + (10 if head[5] & 0x10 else 0)  # footer flag
    f.seek(start)
    frame = f.read(200)
    return _is_mpeg_sync(frame) and any(t in frame for t in (b"Xing", b"Info", b"VBRI"))


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
