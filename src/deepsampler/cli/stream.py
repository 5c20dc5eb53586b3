"""``deepsampler stream``: separate in real time, a file hop by hop or a live audio device, with
live captions (``--transcribe``) and siren alerts (``--detect``) on the separated stems.

This module checks the options and sets the engine up; :mod:`deepsampler.cli._stream_run` runs
the file or the live session (whose audio loop is :func:`deepsampler.streaming.recording
.record_live`)."""

from __future__ import annotations

import argparse

from deepsampler.cli._common import check_stems, sayer
from deepsampler.cli._stream_run import stream_file, stream_live
from deepsampler.cli.detect import (
    add_stream_options,
    check_stream_separator,
    live_alerts,
    stream_detector,
)
from deepsampler.cli.transcribe import DEFAULT_SEPARATOR as CAPTION_MODEL
from deepsampler.errors import DeepSamplerError
from deepsampler.threads import set_threads


def _device(value: str | None) -> int | str | None:
    """A PortAudio device: an index given as digits, else a name (sounddevice matches names by
    substring, so "1" must become the index 1)."""
    return int(value) if value is not None and value.isdigit() else value


def engine_kind(engine) -> str:
    """``torch`` or ``onnx``: which streaming engine an object is."""
    return "onnx" if type(engine).__name__.startswith("Onnx") else "torch"


def _check_io(args: argparse.Namespace) -> None:
    """Refuse option combinations that give the stream nowhere to come from or go to."""
    if args.caption_stem is not None and not args.transcribe:
        raise DeepSamplerError("--caption-stem goes with --transcribe")
    if (args.input is None) == (args.input_device is None):
        raise DeepSamplerError("give one of --input FILE or --input-device DEVICE")
    listening = args.transcribe or args.detect
    if args.input is not None and args.output is None and not listening:
        raise DeepSamplerError(
            "--input FILE needs --output DIR, --transcribe and/or --detect (or use "
            "`deepsampler separate`)"
        )
    if (
        args.input_device is not None
        and args.output is None
        and args.output_device is None
        and not listening
    ):
        raise DeepSamplerError(
            "--input-device needs --output DIR, --output-device DEVICE, --transcribe and/or "
            "--detect"
        )


def cmd_stream(args: argparse.Namespace) -> int:
    """Stream a file or a live device; see :func:`add_parser` for the options."""
    from deepsampler.separator import DEFAULT_MODEL, Separator
    from deepsampler.streaming.live import list_devices

    if args.list_devices:
        print(list_devices())
        return 0
    _check_io(args)
    # the detector first: a missing or wrong one fails before the stream starts
    detector = stream_detector(args.detect, args.detector, args.allow_untrained)
    # one frame is too little work to split over threads (issue 25: live RTF 1.55 with torch's
    # default against 0.81 with one thread), so streaming runs on one unless told otherwise
    threads = args.threads if args.threads is not None else 1
    set_threads(threads)
    # with --detect, the separator whose stems the detector reads (and was trained on)
    default = detector.settings.separator if detector is not None else None
    # the streaming engines run one pass; a model's offline default passes do not apply here
    sep = Separator(
        args.model or default or (CAPTION_MODEL if args.transcribe else DEFAULT_MODEL),
        allow_untrained=args.allow_untrained,
        downmix=args.downmix,
        shifts=1,
        flip=False,
    )
    if detector is not None:
        check_stream_separator(detector, sep)
    engine = sep.streaming_engine(args.engine, threads)
    cfg = sep.config
    say = sayer(args.quiet)
    say(f"{sep.describe()} | engine {engine_kind(engine)}, {threads} thread(s)")
    if detector is not None:
        say(detector.describe())
    stems = check_stems(args.stems, cfg.sources, sep.name)
    if args.block < 0:
        raise DeepSamplerError(f"--block {args.block}: use a positive number of samples")
    block = args.block or cfg.hop
    play = check_stems(args.play, cfg.sources, sep.name, "--play") or list(cfg.sources)
    captions = None
    if args.transcribe:
        from deepsampler.streaming.captions import CaptionPrinter, LiveCaptions, caption_stem

        stem = caption_stem(cfg.sources, sep.name, args.caption_stem)
        printer = CaptionPrinter()
        captions = LiveCaptions(cfg.sources.index(stem), cfg.sample_rate, printer)
        say(f"captions of the {stem} stem (PocketSphinx)")
    alerts = live_alerts(detector, engine.latency_samples) if detector is not None else None
    listeners = [x for x in (captions, alerts) if x is not None]
    try:
        if args.input is not None:
            heard = stream_file(
                sep,
                engine,
                args.input,
                args.output,
                block=block,
                stems=stems,
                fmt=args.format,
                realtime=args.realtime,
                progress=not args.quiet,
                captions=captions,
                listeners=listeners,
                say=say,
            )
            return 1 if heard == 0 and args.output is None and not args.detect else 0
        stream_live(
            sep,
            engine,
            _device(args.input_device),
            _device(args.output_device),
            args.output,
            block=block,
            stems=stems,
            play=play,
            fmt=args.format,
            seconds=args.seconds,
            captions=captions,
            listeners=listeners,
            say=say,
        )
        return 0
    except BaseException:
        for listener in listeners:
            listener.abort()  # its audio is moot: the thread ends without using the rest
        raise


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``stream`` subcommand."""
    from deepsampler.separator import DEFAULT_MODEL

    st = sub.add_parser(
        "stream",
        help="separate in real time: a file hop by hop, or a live audio device",
        description="Run the streaming engine: --input FILE --output DIR streams a file hop by "
        "hop (--realtime paces it like a live source); --input-device streams live audio to "
        "--output-device and/or files in --output DIR. Prints latency, per-hop compute time "
        "and missed deadlines.",
    )
    st.add_argument("--input", help="audio file to stream")
    st.add_argument("--output", help="output folder for the stems")
    st.add_argument("--input-device", help="PortAudio input device (name or index)")
    st.add_argument("--output-device", help="PortAudio output device (name or index)")
    st.add_argument("--list-devices", action="store_true", help="list audio devices and exit")
    st.add_argument(
        "--model",
        help="causal model: a shipped name, a .pt checkpoint or a .onnx file written by "
        f"`deepsampler export onnx` (default: {DEFAULT_MODEL}; with --transcribe, "
        f"{CAPTION_MODEL})",
    )
    st.add_argument(
        "--engine",
        choices=["auto", "torch", "onnx"],
        default="auto",
        help="onnxruntime or PyTorch eager; auto = onnx where onnxruntime is installed (the "
        "faster of the two, see the README), else torch (default: %(default)s)",
    )
    st.add_argument("--stems", help="comma-separated stems to write (default: all)")
    st.add_argument("--play", help="stems summed to the output device (default: all)")
    st.add_argument("--format", choices=["wav", "flac"], default="wav")
    st.add_argument(
        "--block",
        type=int,
        default=0,
        help="samples per processing block (default: the model's hop)",
    )
    st.add_argument("--realtime", action="store_true", help="pace a file like a live source")
    st.add_argument("--seconds", type=float, help="stop a live run after this long")
    st.add_argument(
        "--transcribe",
        action="store_true",
        help="live captions: the speech stem, as it is separated, into PocketSphinx; partial "
        "and final lines on stdout (times in seconds of the stream)",
    )
    st.add_argument(
        "--caption-stem",
        help="stem to caption (default: the model's speech or vocals stem)",
    )
    add_stream_options(st)
    st.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads (default: 1: one frame is too little work to split; 0 = torch's choice)",
    )
    st.add_argument(
        "--downmix",
        action="store_true",
        help="average inputs with more channels than the model takes",
    )
    st.add_argument("--allow-untrained", action="store_true", help=argparse.SUPPRESS)
    st.add_argument("-q", "--quiet", action="store_true")
    st.set_defaults(func=cmd_stream)
