"""Receiving an upload safely: the request body is counted while it is read (over the limit:
413 before the rest arrives), the file part goes to a temporary file, and the job's input is
accepted by its content (``soundfile`` can read it), never by its name."""

from __future__ import annotations

import re
import shutil
import unicodedata
from collections.abc import AsyncGenerator
from pathlib import Path

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from deepsampler.audio import AudioInfo, audio_info
from deepsampler.errors import DeepSamplerError

#: multipart framing and the small form fields on top of the file's bytes
OVERHEAD = 64 * 1024


class UploadError(Exception):
    """An upload refused with ``status`` and a one-line message for the page."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def _limited(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise UploadError(413, _too_large(limit))
        yield chunk


def _too_large(limit: int) -> str:
    return f"the file is larger than this server's upload limit ({(limit - OVERHEAD) / 1e6:g} MB)"


async def read_form(request: Request, max_bytes: int) -> dict[str, str | UploadFile]:
    """The multipart form, its body at most ``max_bytes`` (+ framing); one file at most."""
    limit = max_bytes + OVERHEAD
    kind = request.headers.get("content-type", "")
    if not kind.startswith("multipart/form-data"):
        raise UploadError(415, "send the file as multipart/form-data (fields file, model)")
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise UploadError(413, _too_large(limit))
    parser = MultiPartParser(request.headers, _limited(request, limit), max_files=1, max_fields=8)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise UploadError(400, f"malformed upload: {exc.message}") from None
    return dict(form.multi_items())


def display_name(name: str | None) -> str:
    """The client's file name for display only (never a path here): its last part, printable
    characters, at most 100 of them."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = "".join(c for c in base if unicodedata.category(c)[0] not in "CZ" or c == " ")
    return base.strip()[:100] or "upload"


def save_upload(upload: UploadFile, target: Path) -> None:
    """Copy the received file to ``target`` (the job's ``input``)."""
    upload.file.seek(0)
    with open(target, "wb") as out:
        shutil.copyfileobj(upload.file, out, 1 << 20)


def check_audio(path: Path, name: str) -> AudioInfo:
    """The file's header if soundfile reads it as audio; else UploadError 415 whose message
    names the upload, not the server's path."""
    try:
        return audio_info(path)
    except DeepSamplerError as exc:
        raise UploadError(415, str(exc).replace(str(path), name)) from None
