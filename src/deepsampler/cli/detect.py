"""``deepsampler detect``: siren events in audio files, and the detector of ``stream --detect``.

Per file: read, run the detector (its separator, then the network, then hysteresis) and print
one line per event on stdout, ``FILE  onset  offset  label  confidence`` (seconds, two spaces
apart), nothing else, so the output can be piped. Progress and "no siren" lines go to stderr.
``--jsonl OUT`` writes one JSON object per event of every file, atomically, and only when
every file succeeded (a file that failed would be missing from it with nothing to say so);
``--plot`` writes ``<plot-dir>/<name>-detect.png`` per file that succeeded. A missing,
corrupt or silent file is reported in one line and the others are still done (exit status 1).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from deepsampler.cli._common import error, sayer, use_offline_threads
from deepsampler.errors import AudioInputError, DeepSamplerError, OutputError

#: a file whose peak is below this (about -100 dBFS: zeros, or float noise around them) holds
#: nothing to detect, which usually means a muted input or a broken recording
SILENCE_PEAK = 1e-5


def _threshold(value: str) -> float:
    """``--threshold``: a probability strictly between 0 and 1."""
    try:
        p = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: use a probability between 0 and 1") from None
    if not 0 < p < 1:
        raise argparse.ArgumentTypeError(f"{value}: use a probability between 0 and 1")
    return p


def load_detector(model: str | None, threshold: float | None = None, **kwargs):
    """The detector ``model`` names (default: the shipped one, which says in one line that none
    ships yet), with ``threshold`` as its onset threshold if given."""
    from deepsampler.detection import DEFAULT_DETECTOR, Detector

    det = Detector(model or DEFAULT_DETECTOR, **kwargs)
    if threshold is not None:
        det.events = det.events.with_threshold(threshold)
    return det


def _plot_paths(files: Sequence[Path], folder: Path) -> dict[Path, Path]:
    """Each input's PNG; two inputs that would write the same one are refused before any work."""
    seen: dict[Path, Path] = {}
    for f in files:
        target = folder / f"{f.stem}-detect.png"
        if target in seen and seen[target] != f:
            raise DeepSamplerError(
                f"{seen[target]} and {f} would both write {target}; rename one or plot them "
                f"into different --plot-dir folders"
            )
        seen[target] = f
    return {f: t for t, f in seen.items()}


def _check_outputs(jsonl: Path | None, plot_dir: Path | None) -> None:
    """Refuse outputs that cannot be written, before any work."""
    if jsonl is not None and jsonl.is_dir():
        raise OutputError(f"--jsonl {jsonl}: is a folder; give a file name")
    if plot_dir is not None and plot_dir.exists() and not plot_dir.is_dir():
        raise OutputError(f"--plot-dir {plot_dir}: is not a folder")


def read_for_detection(path: Path) -> tuple[np.ndarray, int]:
    """``[c, n]`` samples and rate of ``path``; missing, corrupt, empty and silent files raise
    one-line errors."""
    from deepsampler.audio import read_audio

    audio, sr = read_audio(path)
    if audio.size == 0 or float(np.abs(audio).max()) < SILENCE_PEAK:
        raise AudioInputError(f"{path}: is silent (peak below -100 dBFS); nothing to detect")
    return audio, sr


def cmd_detect(args: argparse.Namespace) -> int:
    """Print the events of every input; status 1 when any failed (the others are still done)."""
    from deepsampler.atomic import atomic_write_bytes

    files = [Path(f) for f in args.inputs]
    jsonl = Path(args.jsonl) if args.jsonl else None
    plot_dir = Path(args.plot_dir) if args.plot else None
    _check_outputs(jsonl, plot_dir)
    plots = _plot_paths(files, plot_dir) if plot_dir is not None else {}
    threads, why = use_offline_threads(args.threads)
    say = sayer(args.quiet, sys.stderr)
    det = load_detector(
        args.model, args.threshold, device=args.device, allow_untrained=args.allow_untrained
    )
    say(f"{det.describe()} | {threads or 'default'} thread(s) ({why})")
    records: list[dict] = []
    failures = 0
    for path in files:
        try:
            audio, sr = read_for_detection(path)
            times, prob = det.probabilities(audio, sr)
            events = det.events_of(prob)
            for e in events:
                print(f"{path}  {e.onset:.2f}  {e.offset:.2f}  {e.label}  {e.confidence:.3f}")
            sys.stdout.flush()
            if not events:
                say(f"{path}: no {det.label} detected")
            records += [{"file": str(path), **e.to_json()} for e in events]
            if plot_dir is not None:
                from deepsampler.detection.plot import plot_detection

                png = plot_detection(
                    audio, sr, times, prob, events, det.events, plots[path], f"{path.name}"
                )
                say(f"  -> {png}")
        except DeepSamplerError as exc:
            error(str(exc))
            failures += 1
    if failures:
        unwritten = f"; {jsonl} not written" if jsonl is not None else ""
        error(f"{failures} of {len(files)} input(s) failed{unwritten}")
        return 1
    if jsonl is not None:
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        try:
            atomic_write_bytes(text.encode("utf-8"), jsonl)
        except OSError as exc:
            raise OutputError(f"--jsonl {jsonl}: writing failed ({exc.strerror or exc})") from None
        say(f"wrote {len(records)} event(s) to {jsonl}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``detect`` subcommand."""
    from deepsampler.detection import DEFAULT_DETECTOR

    dp = sub.add_parser(
        "detect",
        help="find siren events in audio files (separated first)",
        description="Separate each file with the detector's separator, compute a siren "
        "probability per frame and find events by hysteresis. Prints one line per event, "
        "FILE  onset  offset  label  confidence (seconds); --jsonl writes them as JSON lines, "
        "--plot draws the spectrogram with the probability curve and the events.",
    )
    dp.add_argument("inputs", nargs="+", metavar="FILE", help="audio files")
    dp.add_argument(
        "--model",
        metavar="NAME_OR_PATH",
        help=f"detector: a shipped name or a checkpoint written by `deepsampler train` with "
        f"configs/siren-sde.yaml (default: {DEFAULT_DETECTOR}); it names its own separator",
    )
    dp.add_argument("--jsonl", metavar="OUT.jsonl", help="also write the events as JSON lines")
    dp.add_argument("--plot", action="store_true", help="also write <name>-detect.png per file")
    dp.add_argument(
        "--plot-dir", default=".", help="folder of the --plot PNGs (default: %(default)s)"
    )
    dp.add_argument(
        "--threshold",
        type=_threshold,
        metavar="P",
        help="onset probability (default: the detector's; its offset threshold stays at most P)",
    )
    dp.add_argument("--device", default="cpu", help="cpu or cuda (default: %(default)s)")
    dp.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads (default: every core on an idle machine, 1 on a busy one)",
    )
    dp.add_argument("--allow-untrained", action="store_true", help=argparse.SUPPRESS)
    dp.add_argument("-q", "--quiet", action="store_true", help="print only the event lines")
    dp.set_defaults(func=cmd_detect)


def add_stream_options(parser: argparse.ArgumentParser) -> None:
    """``stream --detect [--detector NAME_OR_PATH]``."""
    parser.add_argument(
        "--detect",
        action="store_true",
        help="siren alerts: an ALERT line on stdout when a siren starts and when it ends, with "
        "the time since its onset, while the stems keep flowing (the separator is the "
        "detector's unless --model names the same one)",
    )
    parser.add_argument(
        "--detector", metavar="NAME_OR_PATH", help="detector for --detect (default: the shipped)"
    )


def stream_detector(detect: bool, detector: str | None, allow_untrained: bool = False):
    """The detector of ``stream --detect [--detector NAME_OR_PATH]`` (None without
    --detect)."""
    if detector is not None and not detect:
        raise DeepSamplerError("--detector goes with --detect")
    if not detect:
        return None
    det = load_detector(detector, allow_untrained=allow_untrained)
    if det.separator is None:
        raise DeepSamplerError(
            f"--detect: detector {det.name} reads the mixture alone, not a separator's stems; "
            f"use `deepsampler detect` for it"
        )
    return det


def check_stream_separator(det, sep) -> None:
    """Refuse a stream whose separator is not the one the detector reads (another model or
    another version of it): its stems would not be what the detector was trained on."""
    digest = sep.loaded.digest or (sep.export_metadata.digest if sep.onnx is not None else "")
    if digest != det.separator.loaded.digest:
        raise DeepSamplerError(
            f"--detect: detector {det.name} reads the stems of {det.settings.separator}, not of "
            f"{sep.name}; leave --model out (or pass {det.settings.separator})"
        )


def live_alerts(det, latency_samples: int):
    """The listener that prints alerts from the stream's separated blocks."""
    from deepsampler.detection.live import AlertPrinter, LiveAlerts

    return LiveAlerts(det, latency_samples, AlertPrinter())
