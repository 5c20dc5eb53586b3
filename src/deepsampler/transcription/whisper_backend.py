"""Whisper, optional: ``faster-whisper`` (CTranslate2) if installed, else ``openai-whisper``.

Weights are never downloaded: faster-whisper loads with ``local_files_only=True`` (its
Hugging Face cache, or a model folder given as the model), openai-whisper only from a ``.pt``
file that is already on disk (its cache, ``$XDG_CACHE_HOME/whisper`` or ``~/.cache/whisper``,
or a path). openai-whisper's own loader would fetch a named model that is missing or whose
checksum differs, so it is only ever handed a file path.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from deepsampler.errors import DeepSamplerError
from deepsampler.transcription.common import SAMPLE_RATE, Transcript, Word, check_audio

DEFAULT_WHISPER_MODEL = "base.en"

INSTALL_HINT = (
    "pip install faster-whisper (or pip install openai-whisper), then put the model's weights "
    "on this machine: they are never downloaded"
)


def _try_import(name: str) -> Any | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def openai_whisper_cache() -> Path:
    """Where openai-whisper keeps its weights (``$XDG_CACHE_HOME/whisper``, else
    ``~/.cache/whisper``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "whisper"


def _openai_whisper_file(whisper: Any, model: str) -> Path | None:
    """The local ``.pt`` of ``model`` (a path, or a name in openai-whisper's cache), or None."""
    path = Path(model).expanduser()
    if path.is_file():
        return path
    urls = getattr(whisper, "_MODELS", {})
    name = os.path.basename(urls[model]) if model in urls else f"{model}.pt"
    cached = openai_whisper_cache() / name
    return cached if cached.is_file() else None


def _missing_weights(model: str, tried: list[str]) -> DeepSamplerError:
    """One line: the model is not here, where to put it (for the packages that are installed)."""
    where = []
    if "faster-whisper" in tried:
        repo = model if "/" in model else f"Systran/faster-whisper-{model}"
        where.append(
            f"faster-whisper needs the CTranslate2 model {repo} in the Hugging Face cache "
            f"(huggingface-cli download {repo} on a machine online) or its folder as "
            f"--whisper-model DIR"
        )
    if "openai-whisper" in tried:
        where.append(
            f"openai-whisper needs {model}.pt in {openai_whisper_cache()} or --whisper-model "
            "FILE.pt"
        )
    return DeepSamplerError(
        f"whisper model {model!r} is not on this machine and is never downloaded; "
        + "; ".join(where)
    )


class WhisperRecogniser:
    """Whisper through faster-whisper (preferred) or openai-whisper, from local weights only.

    Args:
        model: a model name (``base.en``, ``small``, ...) looked up in the local caches, or a
            path: a CTranslate2 model folder (faster-whisper) or a ``.pt`` file
            (openai-whisper).
        device: ``cpu`` or ``cuda``.
        language: spoken language code, or None to let Whisper detect it (``.en`` models are
            English only).

    Raises :class:`DeepSamplerError` (one line) when neither package is installed or the
    weights are not on this machine.
    """

    name = "whisper"

    def __init__(
        self,
        model: str | Path = DEFAULT_WHISPER_MODEL,
        *,
        device: str = "cpu",
        language: str | None = None,
    ) -> None:
        self.model_name = str(model)
        self.language = language
        faster = _try_import("faster_whisper")
        openai = _try_import("whisper")
        if faster is None and openai is None:
            raise DeepSamplerError(
                f"--engine whisper needs faster-whisper or openai-whisper: {INSTALL_HINT}"
            )
        tried = []
        self.backend = ""
        self._model: Any = None
        if faster is not None:
            tried.append("faster-whisper")
            path = Path(self.model_name).expanduser()
            # a folder is a converted model; anything else is a name for the local cache
            source = str(path) if path.is_dir() else self.model_name
            try:
                self._model = faster.WhisperModel(
                    source,
                    device=device,
                    compute_type="int8" if device == "cpu" else "default",
                    local_files_only=True,
                )
                self.backend = "faster-whisper"
            except Exception as exc:  # huggingface_hub's and CTranslate2's errors vary
                if path.is_dir():  # the user's own folder: say why it did not load
                    raise DeepSamplerError(
                        f"{path}: faster-whisper could not load this folder as a CTranslate2 "
                        f"Whisper model ({str(exc).splitlines()[0] if str(exc) else exc!r})"
                    ) from None
                self._model = None
        if self._model is None and openai is not None:
            tried.append("openai-whisper")
            weights = _openai_whisper_file(openai, self.model_name)
            if weights is not None:
                try:
                    self._model = openai.load_model(str(weights), device=device)
                    self.backend = "openai-whisper"
                except Exception as exc:  # a corrupt or foreign checkpoint
                    raise DeepSamplerError(
                        f"{weights}: openai-whisper could not load it ({exc})"
                    ) from None
        if self._model is None:
            raise _missing_weights(self.model_name, tried)

    def describe(self) -> str:
        return f"whisper {self.model_name} ({self.backend})"

    def transcribe(self, audio: np.ndarray) -> Transcript:
        x = check_audio(audio)
        seconds = x.shape[-1] / SAMPLE_RATE
        if self.backend == "faster-whisper":
            segments, _info = self._model.transcribe(
                x, language=self.language, word_timestamps=True
            )
            raw = [
                (w.word, w.start, w.end, getattr(w, "probability", None))
                for s in segments
                for w in (s.words or [])
            ]
        else:
            result = self._model.transcribe(
                x, language=self.language, word_timestamps=True, fp16=False
            )
            raw = [
                (w["word"], w["start"], w["end"], w.get("probability"))
                for s in result.get("segments", [])
                for w in s.get("words", [])
            ]
        words = [
            Word(
                text.strip(),
                min(max(float(start), 0.0), seconds),
                min(max(float(end), 0.0), seconds),
                None if prob is None else float(prob),
            )
            for text, start, end, prob in raw
            if text.strip()
        ]
        return Transcript(" ".join(w.word for w in words), words, seconds, self.describe())
