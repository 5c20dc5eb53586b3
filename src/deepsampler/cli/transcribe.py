"""``deepsampler transcribe``: separate the speech from a recording, then recognise it.

Per file: read, isolate the speech (``--separate MODEL``, default speech-rt, its ``speech``
stem; ``none`` skips it), downmix to mono at 16 kHz, recognise, print ``FILE: text``. With
``-o DIR`` it also writes ``DIR/<name>.txt`` (the text and a newline) and ``DIR/<name>.json``
(see :func:`deepsampler.transcription.files.transcript_record`), both or neither, atomically.

A file in which nothing is recognised (silence, noise, music) is an error, not an empty
transcript: it prints ``FILE: no speech recognised``, writes nothing, and the exit status is 1.
An empty .txt would read like a transcript to whatever picks up the folder; a missing one is
what a failed file leaves, and the line says why. The other files are still transcribed.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from deepsampler.cli._common import error, sayer, use_offline_threads
from deepsampler.errors import DeepSamplerError

if TYPE_CHECKING:
    from deepsampler.separator import Separator
    from deepsampler.transcription import Recogniser, Transcript

SPEECH_SOURCE = "speech"
DEFAULT_SEPARATOR = "speech-rt"


def load_speech_separator(model: str, device: str = "cpu") -> Separator | None:
    """The separator that isolates the speech (None for ``none``); a model without a
    ``speech`` source, or an .onnx file (streaming step only), is refused in one line."""
    if model == "none":
        return None
    from deepsampler.separator import Separator

    # the recogniser takes mono, so more channels than the model takes are averaged
    sep = Separator(model, device=device, downmix=True)
    if SPEECH_SOURCE not in sep.sources:
        raise DeepSamplerError(
            f"--separate {model}: model {sep.name} has no '{SPEECH_SOURCE}' source (it gives "
            f"{', '.join(sep.sources)}); use a speech model such as {DEFAULT_SEPARATOR}, or "
            f"--separate none to transcribe the mixture as it is"
        )
    if sep.model is None:
        raise DeepSamplerError(
            f"--separate {model}: an .onnx file holds the streaming step only; use the model's "
            f".pt checkpoint"
        )
    return sep


def speech_at_16k(audio: np.ndarray, sample_rate: int, sep: Separator | None) -> np.ndarray:
    """``[c, n]`` float audio at ``sample_rate`` Hz -> the speech in it, ``[m]`` float32 mono at
    16 kHz: the separator's ``speech`` stem (fed at the model's own rate, so ``separate`` does
    not resample twice), or the audio itself without a separator."""
    from deepsampler.audio import resample
    from deepsampler.transcription import to_mono_16k

    if sep is None:
        return to_mono_16k(audio, sample_rate)
    x = resample(audio, sample_rate, sep.sample_rate)
    speech = sep.separate(x, sep.sample_rate)[SPEECH_SOURCE]  # [c_out, n] at the model's rate
    return to_mono_16k(speech, sep.sample_rate)


def _output_names(files: Sequence[Path]) -> dict[Path, str]:
    """Each input's output name (its file name without extension); two inputs that would write
    the same name are refused before any work."""
    seen: dict[str, Path] = {}
    for f in files:
        if f.stem in seen and seen[f.stem] != f:
            raise DeepSamplerError(
                f"{seen[f.stem]} and {f} would both write {f.stem}.txt/.json; rename one or "
                f"transcribe them into different -o folders"
            )
        seen[f.stem] = f
    return {f: f.stem for f in files}


def transcribe_file(
    path: Path, sep: Separator | None, recogniser: Recogniser
) -> tuple[Transcript, float]:
    """Read ``path``, isolate its speech, recognise it: the transcript and the wall time.
    Missing/corrupt files and files with nothing recognised raise one-line errors."""
    from deepsampler.audio import read_audio

    start = time.perf_counter()
    audio, sr = read_audio(path)
    result = recogniser.transcribe(speech_at_16k(audio, sr, sep))
    if result.empty:
        raise DeepSamplerError(
            f"{path}: no speech recognised"
            + (" in what the separator kept" if sep is not None else "")
            + "; no transcript written"
        )
    return result, time.perf_counter() - start


def cmd_transcribe(args: argparse.Namespace) -> int:
    """Transcribe every input; status 1 when any failed (the others are still written)."""
    from deepsampler.audio import created_dirs, ensure_writable_dir, remove_empty_dirs
    from deepsampler.transcription import make_recogniser
    from deepsampler.transcription.files import transcript_record, write_transcript

    files = [Path(f) for f in args.inputs]
    output = Path(args.output) if args.output else None
    names = _output_names(files) if output is not None else {}
    threads, why = use_offline_threads(args.threads)
    say = sayer(args.quiet)
    # both are loaded before any file, so a wrong model or engine fails at once, writing nothing
    sep = load_speech_separator(args.separate, args.device)
    recogniser = make_recogniser(args.engine, whisper_model=args.whisper_model, device=args.device)
    model = sep.name if sep is not None else None
    say(
        (f"{sep.describe()} | {threads or 'default'} thread(s) ({why})" if sep else "no separation")
        + f" | recogniser {recogniser.describe()}"
    )
    new_dirs: list[Path] = []
    if output is not None:
        new_dirs = created_dirs(output)
        ensure_writable_dir(output)
    failures = 0
    try:
        for path in files:
            try:
                result, seconds = transcribe_file(path, sep, recogniser)
                print(f"{path}: {result.text}", flush=True)
                if output is not None:
                    record = transcript_record(path, model, args.engine, result, seconds)
                    written = write_transcript(output, names[path], result.text, record)
                    say(f"  -> {', '.join(str(p) for p in written)}")
            except DeepSamplerError as exc:
                error(str(exc))
                failures += 1
    finally:
        # a folder this run created and wrote nothing into is not left behind
        remove_empty_dirs(new_dirs)
    if failures:
        error(f"{failures} of {len(files)} input(s) failed")
        return 1
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``transcribe`` subcommand."""
    from deepsampler.transcription import DEFAULT_WHISPER_MODEL, ENGINES

    tr = sub.add_parser(
        "transcribe",
        help="transcribe speech in audio files (speech separated first)",
        description="Isolate the speech of each file with a separator (default speech-rt), "
        "then recognise it: prints FILE: text; with -o DIR also writes DIR/<name>.txt and "
        "DIR/<name>.json (text, words with start/end seconds and confidence, duration). "
        "A file with no speech recognised is reported and gets no transcript (exit status 1); "
        "the other files are still transcribed.",
    )
    tr.add_argument("inputs", nargs="+", metavar="FILE", help="audio files")
    tr.add_argument(
        "--separate",
        default=DEFAULT_SEPARATOR,
        metavar="MODEL|none",
        help="separator whose 'speech' stem is transcribed: a shipped name or checkpoint, or "
        "none to transcribe the file as it is (default: %(default)s)",
    )
    tr.add_argument(
        "--engine",
        choices=ENGINES,
        default="pocketsphinx",
        help="recogniser: pocketsphinx (bundled en-us model, nothing to download) or whisper "
        "(faster-whisper or openai-whisper, with weights already on this machine) "
        "(default: %(default)s)",
    )
    tr.add_argument(
        "--whisper-model",
        default=DEFAULT_WHISPER_MODEL,
        metavar="NAME|PATH",
        help="Whisper model: a name found in the local caches, a CTranslate2 model folder "
        "(faster-whisper) or a .pt file (openai-whisper); never downloaded "
        "(default: %(default)s)",
    )
    tr.add_argument("-o", "--output", metavar="DIR", help="also write <name>.txt and .json here")
    tr.add_argument("--device", default="cpu", help="cpu or cuda (default: %(default)s)")
    tr.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads for the separator (default: every core on an idle machine, 1 on a "
        "busy one; 0 = torch's choice)",
    )
    tr.add_argument(
        "-q", "--quiet", action="store_true", help="print only the FILE: text lines and errors"
    )
    tr.set_defaults(func=cmd_transcribe)
