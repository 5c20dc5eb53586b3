"""The files of ``deepsampler transcribe -o DIR``: ``<name>.txt`` (the text and a newline) and
``<name>.json`` (:func:`transcript_record`), written both or neither (:func:`write_transcript`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from deepsampler.errors import OutputError
from deepsampler.transcription.common import Transcript


def transcript_record(
    path: Path, model: str | None, engine: str, result: Transcript, compute_seconds: float
) -> dict:
    """The .json of one file: ``file`` (as given), ``model`` (the separator, or null for
    ``--separate none``), ``engine`` (``pocketsphinx`` / ``whisper``), ``recogniser`` (which
    one, with version or weights), ``text``, ``words`` ([{word, start, end, confidence?}],
    seconds from the start of the file), ``seconds`` (the file's duration) and
    ``compute_seconds`` (separation and recognition, wall time)."""
    return {
        "file": str(path),
        "model": model,
        "engine": engine,
        "recogniser": result.engine,
        "text": result.text,
        "words": [w.to_dict() for w in result.words],
        "seconds": round(result.seconds, 3),
        "compute_seconds": round(compute_seconds, 3),
    }


def write_transcript(folder: Path, name: str, text: str, record: dict) -> list[Path]:
    """Write ``folder/<name>.txt`` and ``folder/<name>.json`` all or nothing: both go to
    temporary files beside their names first, then are renamed; on any failure or interrupt the
    temporaries are removed, and a .txt already renamed is removed again."""
    from deepsampler.atomic import temp_path_beside

    targets = {
        folder / f"{name}.txt": text + "\n",
        folder / f"{name}.json": json.dumps(record, indent=2, ensure_ascii=False) + "\n",
    }
    temps: list[Path] = []
    done: list[Path] = []
    try:
        for target, content in targets.items():
            tmp = temp_path_beside(target)
            temps.append(tmp)
            tmp.write_text(content, encoding="utf-8")
        for tmp, target in zip(temps, targets, strict=True):
            os.replace(tmp, target)
            done.append(target)
    except OSError as exc:
        for path in done:
            path.unlink(missing_ok=True)
        raise OutputError(
            f"{folder / name}.txt/.json: writing failed ({exc.strerror or exc}); check free "
            f"space and -o"
        ) from None
    except BaseException:
        for path in done:
            path.unlink(missing_ok=True)
        raise
    finally:
        for tmp in temps:
            tmp.unlink(missing_ok=True)
    return done
