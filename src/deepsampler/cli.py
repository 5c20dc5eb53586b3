"""The ``deepsampler`` command: one entry point with subcommands."""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

from deepsampler.errors import DeepSamplerError
from deepsampler.threads import offline_threads, set_threads

EXAMPLE = Path(__file__).resolve().parent / "examples" / "synth_rock.flac"


def _error(message: str) -> None:
    print(f"deepsampler: error: {message}", file=sys.stderr)


def track_name(path: Path) -> str:
    """A track is named by its file, or by its folder for MUSDB18-style `<track>/mixture.wav`."""
    return path.parent.name if path.stem == "mixture" and path.parent.name else path.stem


def _collect_inputs(inputs: Sequence[str], output: Path) -> list[tuple[Path, str]]:
    """Files to separate with their track names. Folders are searched recursively; in a folder
    holding a ``mixture.*`` (MUSDB18-HQ layout) only the mixture is taken, not the stems beside
    it; files under the output folder (earlier results) are skipped."""
    from deepsampler.audio import AUDIO_EXTENSIONS

    out = output.resolve()
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if not path.is_dir():
            files.append(path)  # missing or unreadable files are reported per file later
            continue
        found = sorted(
            p
            for p in path.rglob("*")
            if p.suffix.lower() in AUDIO_EXTENSIONS and not p.resolve().is_relative_to(out)
        )
        mixture_dirs = {p.parent for p in found if p.stem == "mixture"}
        found = [p for p in found if p.parent not in mixture_dirs or p.stem == "mixture"]
        if not found:
            raise DeepSamplerError(
                f"{path}: folder holds no audio files ({', '.join(AUDIO_EXTENSIONS)})"
            )
        files.extend(found)
    seen: dict[str, Path] = {}
    for f in files:
        name = track_name(f)
        if name in seen and seen[name] != f:
            raise DeepSamplerError(
                f"{seen[name]} and {f} would both write to the track folder {name!r}; "
                f"rename one or separate them into different -o folders"
            )
        seen[name] = f
    return [(f, track_name(f)) for f in files]


def _plot_separation(mixture_path: Path, result, sep) -> Path:
    """PNG of the mixture's and the written stems' spectrograms, beside the stems."""
    from deepsampler.audio import read_audio
    from deepsampler.evaluation.plots import plot_stem_spectrograms

    mixture, sr = read_audio(mixture_path)
    stems = {name: read_audio(stem_path)[0] for name, stem_path in result.stems.items()}
    folder = next(iter(result.stems.values())).parent
    return plot_stem_spectrograms(
        mixture,
        stems,
        sr,
        folder / "spectrograms.png",
        f"{result.track}: {sep.loaded.metadata.get('name', 'model')} "
        f"({sep.latency_ms:.1f} ms latency)",
    )


def _enhance_stems(enhancer, mixture: Path, result, args: argparse.Namespace, say) -> None:
    """``separate --enhance``: refine each written stem, with the mixture for the detectors and
    the refiner."""
    from deepsampler.cli_stemprover import describe_result

    for name, stem_path in result.stems.items():
        out, refined = enhancer.enhance_file(
            stem_path,
            stem_path.parent / "enhanced" / f"{name}.wav",
            mixture=mixture,
            adapters=args.adapters,
            progress=False,
            source=name,
        )
        say("  " + describe_result(f"enhanced {name}", refined) + f" -> {out}")


def _other_format_stems(folder: Path, stems: dict[str, Path], fmt: str) -> list[Path]:
    """Stem files of another output format beside the ones just written (an earlier run)."""
    from deepsampler.audio import OUTPUT_FORMATS

    return [
        folder / f"{name}.{other}"
        for name in stems
        for other in OUTPUT_FORMATS
        if other != fmt and (folder / f"{name}.{other}").exists()
    ]


def cmd_separate(args: argparse.Namespace) -> int:

    from deepsampler.separator import Separator

    inputs = list(args.inputs)
    if args.example:
        inputs.append(str(EXAMPLE))
    if not inputs:
        raise DeepSamplerError("no input given; pass audio files or folders (or --example)")
    threads, why = offline_threads(args.threads)
    set_threads(threads)
    files = _collect_inputs(inputs, Path(args.output))
    sep = Separator(
        args.model,
        device=args.device,
        chunk_seconds=args.chunk_seconds,
        overlap_seconds=args.overlap_seconds,
        allow_untrained=args.allow_untrained,
        downmix=args.downmix,
        wiener=args.wiener,
        shifts=args.shifts,
        flip=args.flip,
    )
    if sep.model is None:
        raise DeepSamplerError(
            f"{args.model}: an .onnx file holds the streaming step only; stream it with "
            "`deepsampler stream --model FILE.onnx` or separate with the model's .pt checkpoint"
        )
    stems = _check_stems(args.stems, sep.sources, sep.name)
    _refuse_overwriting_inputs(
        [f for f, _ in files], Path(args.output), stems or sep.sources, args.format
    )
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, flush=True))
    say(f"{sep.describe()} | {threads or 'default'} thread(s) ({why})")
    caveat = sep.loaded.metadata.get("caveat")
    if caveat:
        say(f"note: {caveat}")
    if not sep.trained:
        print("WARNING: untrained weights: the output is NOT a separation", file=sys.stderr)
    enhancer = None
    if args.enhance:
        from deepsampler.cli_stemprover import make_enhancer

        enhancer = make_enhancer(args)
    failures = 0
    for path, track in files:
        try:
            result = sep.separate_file(
                path,
                args.output,
                stems=stems,
                fmt=args.format,
                progress=not args.quiet,
                track=track,
            )
        except DeepSamplerError as exc:
            _error(str(exc))
            failures += 1
            continue
        folder = Path(args.output) / result.track
        say(
            f"{result.track}: {result.audio_seconds:.1f} s separated in "
            f"{result.compute_seconds:.2f} s (real-time factor {result.real_time_factor:.3f}) -> "
            f"{folder}/{{{','.join(result.stems)}}}.{args.format}"
        )
        if result.clipped_samples:
            say(
                f"  note: {result.clipped_samples} samples clipped to [-1, 1] for {args.format}; "
                f"use --format wav (32-bit float) to keep them"
            )
        older = _other_format_stems(folder, result.stems, args.format)
        if older:
            say(
                f"  note: {folder} still holds {', '.join(p.name for p in older)} from an "
                f"earlier run in another format; they were not replaced (remove them if unwanted)"
            )
        if args.plot:
            say(f"  spectrograms: {_plot_separation(path, result, sep)}")
        if enhancer is not None:
            _enhance_stems(enhancer, path, result, args, say)
    if failures:
        _error(f"{failures} of {len(files)} input(s) failed")
        return 1
    return 0


def _add_offline_options(parser: argparse.ArgumentParser) -> None:
    """``--wiener``, ``--shifts`` and ``--flip``: how an offline separation is post-processed
    and averaged (``separate`` and ``evaluate`` share them)."""
    parser.add_argument(
        "--wiener",
        type=_wiener_arg,
        default=-1,
        help="multichannel Wiener post-filter of each chunk: EM iterations (0 = soft mask), "
        "or off (default: off; see benchmarks/offline_options.py)",
    )
    parser.add_argument(
        "--shifts",
        type=int,
        default=None,
        help="average N offline passes whose STFT frames start k*hop/N samples later "
        "(N times the compute; default: the model's own: 2 for music4-hq, whose validation "
        "gained from it, 1 = one pass for the others; see benchmarks/offline_options.py)",
    )
    parser.add_argument(
        "--flip",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also average the pass with left and right swapped (twice the compute; default: "
        "the model's own: on for music4-hq, off for the others); --no-flip turns it off",
    )


def _wiener_arg(value: str) -> int:
    """``--wiener``: ``off`` (-1) or EM iterations (0 = soft mask)."""
    if value == "off":
        return -1
    if value.isdigit():
        return int(value)
    raise argparse.ArgumentTypeError(f"{value!r}: use off or a number of EM iterations")


def _device(value: str | None) -> int | str | None:
    """A PortAudio device: an index given as digits, else a name (sounddevice matches names by
    substring, so "1" must become the index 1)."""
    return int(value) if value is not None and value.isdigit() else value


def engine_kind(engine) -> str:
    """``torch`` or ``onnx``: which streaming engine an object is."""
    return "onnx" if type(engine).__name__.startswith("Onnx") else "torch"


def _check_stems(
    value: str | None, sources: Sequence[str], model: str, option: str = "--stems"
) -> list[str] | None:
    """A comma-separated stem list: None when not given (all stems), else known names only;
    an empty list (``--stems ""``) is refused rather than read as 'all'."""
    if value is None:
        return None
    stems = [s.strip() for s in value.split(",") if s.strip()]
    if not stems:
        raise DeepSamplerError(
            f"{option} {value!r} names no stem; give some of {', '.join(sources)} "
            f"(or leave {option} out for all)"
        )
    unknown = [s for s in stems if s not in sources]
    if unknown:
        raise DeepSamplerError(
            f"{option}: unknown stem(s) {unknown}; model {model} gives {list(sources)}"
        )
    return stems


def _refuse_overwriting_inputs(
    inputs: Sequence[Path], output: Path, stems: Sequence[str], fmt: str
) -> None:
    """Refuse a run whose output would replace one of its inputs (the same file by inode, so
    links and other spellings of the path count), before any work."""
    existing = {}
    for path in inputs:
        try:
            st = path.stat()
        except OSError:
            continue  # a missing input is reported when it is read
        existing[(st.st_dev, st.st_ino)] = path
    for track in {track_name(p) for p in inputs}:
        for stem in stems:
            out = output / track / f"{stem}.{fmt}"
            try:
                st = out.stat()
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in existing:
                raise DeepSamplerError(
                    f"{out}: this output would replace the input "
                    f"{existing[(st.st_dev, st.st_ino)]}; choose another -o folder"
                )


def _close_captions(captions) -> int | None:
    """Finish live captions: the number of utterances with words (None without captions); none
    heard is said in one line on stderr."""
    if captions is None:
        return None
    heard = sum(1 for e in captions.close() if e.kind == "final" and e.text)
    if heard == 0:
        print("captions: no speech recognised", file=sys.stderr, flush=True)
    return heard


def cmd_stream(args: argparse.Namespace) -> int:
    from deepsampler.cli_detect import check_stream_separator, live_alerts, stream_detector
    from deepsampler.cli_transcribe import DEFAULT_SEPARATOR as CAPTION_MODEL
    from deepsampler.separator import DEFAULT_MODEL, Separator
    from deepsampler.streaming.live import list_devices

    if args.list_devices:
        print(list_devices())
        return 0
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
    # the detector first: a missing or wrong one fails before the stream starts
    detector = stream_detector(args)
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
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, flush=True))
    say(f"{sep.describe()} | engine {engine_kind(engine)}, {threads} thread(s)")
    if detector is not None:
        say(detector.describe())
    stems = _check_stems(args.stems, cfg.sources, sep.name)
    if args.block < 0:
        raise DeepSamplerError(f"--block {args.block}: use a positive number of samples")
    block = args.block or cfg.hop
    play = _check_stems(args.play, cfg.sources, sep.name, "--play") or list(cfg.sources)
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
            return _stream_file(args, sep, engine, block, stems, captions, listeners, say)
        return _stream_live(args, sep, engine, block, stems, play, captions, listeners, say)
    except BaseException:
        for listener in listeners:
            listener.abort()  # its audio is moot: the thread ends without using the rest
        raise


def _fan_out(listeners):
    """One ``on_output`` callable feeding every listener, or None without any."""
    if not listeners:
        return None

    def push(y) -> None:
        for listener in listeners:
            listener.push(y)

    return push


def _close_alerts(listeners, say) -> None:
    """Finish siren alerts (if streaming with --detect): the stream's end closes an open event;
    a summary line follows."""
    from deepsampler.detection.live import LiveAlerts

    for listener in listeners:
        if isinstance(listener, LiveAlerts):
            events = sum(1 for a in listener.close() if a.kind == "end")
            say(f"detection: {events} siren event(s)")


def _stream_file(
    args: argparse.Namespace, sep, engine, block: int, stems, captions, listeners, say
) -> int:
    """``stream --input FILE``: stems to ``--output``, captions and/or siren alerts; status 1
    when captions alone were asked for and no speech was recognised."""
    from deepsampler.streaming.processor import StreamProcessor

    cfg = sep.config
    if args.output is not None:
        _refuse_overwriting_inputs(
            [Path(args.input)], Path(args.output), stems or cfg.sources, args.format
        )
    processor = StreamProcessor(
        engine,
        cfg.sample_rate,
        cfg.hop,
        block,
        args.realtime,
        on_output=_fan_out(listeners),
    )
    if args.output is not None:
        result = sep.separate_file(
            args.input,
            args.output,
            stems=stems,
            fmt=args.format,
            # captions print on stdout as they come: a bar beside them would garble both
            progress=not args.quiet and captions is None,
            processor=processor,
        )
        seconds, compute = result.audio_seconds, result.compute_seconds
        where = f" -> {Path(args.output) / result.track} (stems aligned: latency removed)"
    else:
        from deepsampler.audio import read_audio

        x, sr = read_audio(args.input)
        start = time.perf_counter()
        sep.separate(x, sr, processor=processor)
        seconds, compute = x.shape[-1] / sr, time.perf_counter() - start
        where = ""
    heard = _close_captions(captions)
    _close_alerts(listeners, say)
    say(f"{Path(args.input).name}: {seconds:.1f} s streamed in {compute:.2f} s{where}")
    say(
        f"latency {engine.latency_samples / cfg.sample_rate * 1000:.1f} ms | "
        f"{processor.stats.line()}"
    )
    return 1 if heard == 0 and args.output is None and not args.detect else 0


def _stream_live(
    args: argparse.Namespace, sep, engine, block: int, stems, play, captions, listeners, say
) -> int:
    """``stream --input-device``: until ``--seconds`` or a stop; stems played, written and
    captioned."""
    from deepsampler.streaming.recording import record_live

    cfg = sep.config

    def ready(folder: Path | None) -> None:
        say(
            f"live: latency {engine.latency_samples / cfg.sample_rate * 1000:.1f} ms + device "
            f"buffers; block {block} samples"
            + (f"; recording to {folder}" if folder else "")
            + "; Ctrl-C to stop"
        )

    result = record_live(
        engine,
        sample_rate=cfg.sample_rate,
        channels=cfg.audio_channels,
        sources=cfg.sources,
        hop=cfg.hop,
        block=block,
        input_device=_device(args.input_device),
        output_device=_device(args.output_device),
        play=play,
        output_dir=args.output,
        stems=stems,
        fmt=args.format,
        seconds=args.seconds,
        on_ready=ready,
        listeners=listeners,
    )
    _close_captions(captions)
    _close_alerts(listeners, say)
    if result.stopped_by:
        say(f"stopped by {result.stopped_by}; kept what was recorded")
    if result.files:
        say(f"wrote {', '.join(str(p) for p in result.files)} (delayed by the latency)")
    say(result.stats.line())
    return 0


def cmd_export_onnx(args: argparse.Namespace) -> int:
    from deepsampler.export.onnx_engine import export_onnx
    from deepsampler.separator import Separator

    sep = Separator(args.model, allow_untrained=args.allow_untrained)
    if sep.model is None:
        raise DeepSamplerError(f"{args.model} is already an ONNX export; pass a .pt model")
    if not sep.config.causal:
        raise DeepSamplerError(f"model {sep.name} is offline; only causal models export to ONNX")
    path = export_onnx(sep.model, args.output, sep.export_metadata)
    print(
        f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB): the per-frame streaming step of "
        f"{sep.name}, state as explicit inputs/outputs; STFT/iSTFT run outside the graph. "
        f"Run it with `deepsampler stream --model {path} --input-device N ...` or "
        f"deepsampler.export.onnx_engine.OnnxStreamingSeparator.from_file"
    )
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:

    from deepsampler.evaluation.evaluate import evaluate
    from deepsampler.separator import Separator
    from deepsampler.streaming.processor import StreamProcessor

    set_threads(offline_threads(args.threads)[0])
    if args.stream and (args.shifts not in (None, 1) or args.flip or args.wiener >= 0):
        # the streaming engine runs the model alone, frame by frame: it neither averages passes
        # nor post-filters, and a summary must not carry numbers of options that never ran
        raise DeepSamplerError(
            "--shifts/--flip/--wiener post-process a whole offline separation; "
            "drop them with --stream"
        )
    sep = Separator(
        args.model,
        device=args.device,
        allow_untrained=args.allow_untrained,
        wiener=args.wiener,
        # streamed: one pass whatever the model's offline default, so the label says so
        shifts=1 if args.stream else args.shifts,
        flip=False if args.stream else args.flip,
    )
    label = sep.options_label()
    cfg = sep.config
    if args.stream:
        engine = sep.streaming_engine("auto", 1 if args.threads is None else args.threads)

        def separate(mixture, sample_rate):
            return sep.separate(
                mixture, sample_rate, processor=StreamProcessor(engine, cfg.sample_rate, cfg.hop)
            )
    else:
        separate = sep.separate
    summary = evaluate(
        separate,
        args.data,
        args.out,
        sources=cfg.sources,
        n_fft=cfg.n_fft,
        hop=cfg.hop,
        model_name=sep.name + (f" ({label})" if label else ""),
        latency_ms=cfg.latency_ms,
        stream=args.stream,
        progress=not args.quiet,
    )
    if not args.quiet:
        from deepsampler.evaluation.evaluate import markdown_table

        print(markdown_table(summary))
        print(f"wrote {args.out}/summary.json, summary.md, scores.png, spectrograms_*.png")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from deepsampler.models import load_checkpoint, shipped_models
    from deepsampler.separator import default_passes

    models = shipped_models()
    if not models:
        print("no shipped models")
    for name, path in models.items():
        loaded = load_checkpoint(path, kind=None)  # separators and detectors ship side by side
        cfg = loaded.model.config
        summary = loaded.metadata.get("summary", "")
        if type(loaded.model).__name__ == "SDEModel":
            separator = loaded.metadata.get("detection", {}).get("separator") or "mixture"
            print(
                f"{name:14s} {'detector on ' + separator:28s} {cfg.sample_rate} Hz  "
                f"causal  {loaded.model.num_parameters() / 1e6:.2f} M  {summary}"
            )
            continue
        passes = default_passes(loaded.metadata, cfg.audio_channels)
        kind = (
            f"causal {cfg.latency_ms:.1f} ms"
            if cfg.causal
            else "offline" + (f", {passes} passes" if passes > 1 else "")
        )
        print(
            f"{name:14s} {'/'.join(cfg.sources):28s} {cfg.sample_rate} Hz  {kind}"
            f"  {loaded.model.num_parameters() / 1e6:.2f} M  {summary}"
        )
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    import json

    from deepsampler.config import to_dict
    from deepsampler.models import DeepSampler, load_checkpoint, preset_config, resolve_model
    from deepsampler.separator import inference_defaults

    if args.preset:
        model, extra = DeepSampler(preset_config(args.preset)), {"preset": args.preset}
    else:
        loaded = load_checkpoint(resolve_model(args.model))
        model = loaded.model
        extra = {
            "checkpoint": str(loaded.path),
            "training": loaded.training,
            "package_version": loaded.package_version,
            "offline_inference": inference_defaults(loaded.metadata),
        }
    cfg = model.config
    info = {
        **extra,
        "parameters": model.num_parameters(),
        "latency_ms": round(cfg.latency_ms, 2),
        "hop_ms": round(1000 * cfg.hop / cfg.sample_rate, 2),
        "config": to_dict(cfg),
    }
    print(json.dumps(info, indent=2, default=str))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from deepsampler import __version__
    from deepsampler.cli_detect import add_stream_options as add_detect_stream_options
    from deepsampler.cli_stemprover import add_enhance_options, add_parsers
    from deepsampler.cli_transcribe import DEFAULT_SEPARATOR as CAPTION_MODEL
    from deepsampler.separator import DEFAULT_MODEL

    parser = argparse.ArgumentParser(
        prog="deepsampler", description="Real-time audio source separation."
    )
    parser.add_argument("--version", action="version", version=f"deepsampler {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sep = sub.add_parser(
        "separate",
        help="separate audio files into stems",
        description="Separate audio files (or every audio file in folders) into stems, written "
        "as OUT/<track>/<stem>.<format>.",
    )
    sep.add_argument("inputs", nargs="*", metavar="INPUT", help="audio files or folders")
    sep.add_argument(
        "-o", "--output", default="separated", help="output folder (default: %(default)s)"
    )
    sep.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help="shipped model name or checkpoint path (default: %(default)s; "
        "see `deepsampler models`)",
    )
    sep.add_argument("--stems", help="comma-separated stems to write (default: all)")
    sep.add_argument(
        "--format",
        choices=["wav", "flac"],
        default="wav",
        help="wav = 32-bit float, flac = 24-bit (default: %(default)s)",
    )
    sep.add_argument("--device", default="cpu", help="cpu or cuda (default: %(default)s)")
    sep.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads (default: every core on an idle machine, 1 on a busy one, where more "
        "threads only contend; 0 = torch's choice)",
    )
    sep.add_argument(
        "--chunk-seconds",
        type=float,
        default=10.0,
        help="long inputs are processed in chunks of this length (default: %(default)s)",
    )
    sep.add_argument(
        "--overlap-seconds",
        type=float,
        default=1.0,
        help="cross-fade between chunks (default: %(default)s)",
    )
    _add_offline_options(sep)
    sep.add_argument(
        "--downmix",
        action="store_true",
        help="average inputs with more channels than the model takes",
    )
    sep.add_argument(
        "--allow-untrained",
        action="store_true",
        help="accept a checkpoint with untrained weights (pipeline testing only)",
    )
    sep.add_argument("--example", action="store_true", help="also separate the bundled example")
    sep.add_argument(
        "--plot",
        action="store_true",
        help="also write OUT/<track>/spectrograms.png (mixture and stems; needs matplotlib)",
    )
    sep.add_argument(
        "--enhance",
        action="store_true",
        help="also refine every stem with StemProver into OUT/<track>/enhanced/<stem>.wav",
    )
    add_enhance_options(sep, prefix="enhance-")
    sep.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    sep.set_defaults(func=cmd_separate)

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
    add_detect_stream_options(st)
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

    exp = sub.add_parser("export", help="export a model (onnx)")
    exp_sub = exp.add_subparsers(dest="format", required=True, metavar="FORMAT")
    onnx_p = exp_sub.add_parser(
        "onnx", help="the streaming step as ONNX, with its state as explicit inputs/outputs"
    )
    onnx_p.add_argument("--model", default=DEFAULT_MODEL, help="causal model name or checkpoint")
    onnx_p.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    onnx_p.add_argument("--allow-untrained", action="store_true", help=argparse.SUPPRESS)
    onnx_p.set_defaults(func=cmd_export_onnx)

    ev = sub.add_parser(
        "evaluate",
        help="score a model on a MUSDB18-HQ-layout folder, with floor and oracle rows",
        description="Separate every DIR/<track>/mixture.* and score it against the stems "
        "(BSS Eval v4 SDR/SIR/SAR as museval, SI-SDR, uSDR; PESQ/STOI for a speech source), "
        "beside the mixture-as-estimate floor and the oracle IRM1/IRM2 ceiling at the model's "
        "STFT. Writes OUT/summary.json, summary.md and PNG plots.",
    )
    ev.add_argument("--data", required=True, help="folder of track folders (or one track)")
    ev.add_argument("--model", default=DEFAULT_MODEL, help="model name or checkpoint")
    ev.add_argument("--out", required=True, help="output folder")
    ev.add_argument("--stream", action="store_true", help="separate through the streaming engine")
    ev.add_argument("--device", default="cpu")
    _add_offline_options(ev)
    ev.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads (default: every core on an idle machine, 1 on a busy one)",
    )
    ev.add_argument("--allow-untrained", action="store_true", help=argparse.SUPPRESS)
    ev.add_argument("-q", "--quiet", action="store_true")
    ev.set_defaults(func=cmd_evaluate)

    data = sub.add_parser("data", help="make or inspect a training corpus")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="COMMAND")
    syn = data_sub.add_parser(
        "synth",
        help="render a corpus with exact stems (MUSDB18-HQ layout)",
        description="Render a training corpus locally: music4 (vocals/drums/bass/other from "
        "music21 scores and generated songs through FluidSynth, sampled drum kits and a "
        "synthetic singer), speech or speech-real (speech/noise) or siren (siren/background). "
        "Writes OUT/{train,valid,test}/<track>/{mixture,<source>}.wav and OUT/corpus.json. Running "
        "the same command again resumes an interrupted run.",
    )
    syn.add_argument(
        "--preset",
        required=True,
        choices=["music4", "speech", "speech-real", "siren"],
        help="speech-real: the speech preset with real speech and real noise first, equalised",
    )
    syn.add_argument("--out", required=True, help="corpus folder to create (or resume)")
    syn.add_argument("--hours", type=float, default=1.0, help="total hours, split 80/10/10")
    syn.add_argument("--seed", type=int, default=0)
    syn.add_argument("--track-seconds", type=float, default=30.0, help="length of each track")
    syn.add_argument(
        "--workers", type=int, default=0, help="parallel render processes (0: one per CPU core)"
    )
    syn.add_argument(
        "--real",
        default="auto",
        help="real-recordings pool to mix in (a folder with MANIFEST.tsv), 'none', or 'auto': "
        "$DEEPSAMPLER_TRAIN_REAL or ../shared/train-real when present",
    )
    syn.add_argument("-q", "--quiet", action="store_true")
    syn.set_defaults(func=cmd_data_synth)
    stats = data_sub.add_parser("stats", help="hours, instruments and loudness of a corpus")
    stats.add_argument("corpus", help="corpus folder (holding corpus.json)")
    stats.add_argument("--plot", help="also write these statistics as a PNG")
    stats.set_defaults(func=cmd_data_stats)

    train = sub.add_parser(
        "train",
        help="train a separator from a YAML config",
        description="Train a separator as a YAML config says (configs/*.yaml), with key=value "
        "overrides (dotted keys reach sections: optim.lr=3e-4 data.segment_seconds=2). Writes "
        "OUT/config.yaml, checkpoints (last.pt resumable, best.pt, final.pt), metrics.jsonl and "
        "TensorBoard logs (OUT/tb). Running the same command again resumes from the last "
        "checkpoint exactly. Under `torchrun --nproc_per_node N` it trains with DDP.",
    )
    train.add_argument("--config", required=True, help="YAML training config")
    train.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. steps=2000"
    )
    train.add_argument("--out", help="run folder (default: experiments/<name>)")
    train.add_argument(
        "--minutes", type=float, help="stop cleanly after this much wall time (resume later)"
    )
    train.add_argument(
        "--max-steps", type=int, help="stop cleanly after this many steps in total (resume later)"
    )
    train.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=cmd_train)

    add_parsers(sub)
    from deepsampler.cli_transcribe import add_parser as add_transcribe_parser

    add_transcribe_parser(sub)
    from deepsampler.cli_detect import add_parser as add_detect_parser

    add_detect_parser(sub)

    models = sub.add_parser("models", help="list the shipped models")
    models.set_defaults(func=cmd_models)

    info = sub.add_parser("info", help="describe a model: parameters, latency, config")
    group = info.add_mutually_exclusive_group()
    group.add_argument(
        "--model", default=DEFAULT_MODEL, help="shipped model name or checkpoint path"
    )
    group.add_argument("--preset", help="an untrained size preset instead (tiny, small, base)")
    info.set_defaults(func=cmd_info)
    return parser


def cmd_data_synth(args: argparse.Namespace) -> int:
    import os

    from deepsampler.data.synth.common import RealPool
    from deepsampler.data.synth.corpus import SynthSettings, synth_corpus
    from deepsampler.data.synth.report import format_summary

    if args.workers < 0:
        raise DeepSamplerError(f"--workers {args.workers}: use a positive number (0 = per core)")
    workers = args.workers or os.cpu_count() or 1
    if args.real == "none":
        real = None
    elif args.real == "auto":
        pool = RealPool.default()
        real = str(pool.root.resolve()) if pool else None
    else:
        real = str(RealPool.open(args.real).root.resolve())
    settings = SynthSettings(args.preset, args.hours, args.seed, args.track_seconds, real)
    summary = synth_corpus(settings, args.out, workers=workers, progress=not args.quiet)
    if not args.quiet:
        print(format_summary(summary))
        print(f"wrote {args.out} (statistics in {Path(args.out) / 'corpus.json'})")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from deepsampler.training.config import load_train_config
    from deepsampler.training.detect import DetectorTrainer
    from deepsampler.training.trainer import Trainer

    if args.minutes is not None and not args.minutes > 0:
        raise DeepSamplerError(f"--minutes {args.minutes}: use a positive number")
    if args.max_steps is not None and args.max_steps < 1:
        raise DeepSamplerError(f"--max-steps {args.max_steps}: use a positive number")
    config = load_train_config(args.config, args.overrides)
    out = Path(args.out) if args.out else Path("experiments") / config.name
    trainer = DetectorTrainer if config.task == "detect" else Trainer
    result = trainer(
        config, out, minutes=args.minutes, max_steps=args.max_steps, progress=not args.quiet
    ).run()
    if int(os.environ.get("RANK", "0")) == 0:
        state = "finished" if result.finished else "stopped (run the same command to resume)"
        unit = " dB" if result.score == "SDR" else ""
        best = (
            f"best valid {result.score} {result.best_sdr:.2f}{unit} at step {result.best_step}"
            if result.best_sdr is not None
            else "not validated yet"
        )
        print(
            f"train: {state} at step {result.step}/{config.steps} after "
            f"{result.train_seconds / 60:.1f} min of training; {best}; run folder {out}"
        )
    return 0


def cmd_data_stats(args: argparse.Namespace) -> int:
    from deepsampler.data.synth.report import format_summary, load_summary, plot_summary

    summary = load_summary(args.corpus)
    print(format_summary(summary))
    if args.plot:
        print(f"wrote {plot_summary(summary, args.plot)}")
    return 0


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Our own warnings (a truncated file) as one line, like errors; others as Python prints
    them."""
    from deepsampler.errors import AudioWarning

    if issubclass(category, AudioWarning):
        print(f"deepsampler: warning: {message}", file=sys.stderr)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def main(argv: Sequence[str] | None = None) -> int:
    from deepsampler.interrupts import exit_status, install_stop_handlers, stop_name

    parser = build_parser()
    args = parser.parse_args(argv)
    # SIGTERM / SIGHUP take Ctrl-C's path: unfinished outputs removed, a recording finalised
    install_stop_handlers()
    warnings.showwarning = _show_warning
    try:
        return args.func(args)
    except DeepSamplerError as exc:
        _error(str(exc))
        return 1
    except ImportError as exc:  # an optional extra is not installed
        extra = {
            "matplotlib": "eval",
            "pesq": "eval",
            "pystoi": "eval",
            "norbert": "eval",
            "peft": "enhance",
            "diffusers": "enhance",
            "scipy": "eval",
            "onnx": "export",
            "onnxruntime": "export",
            "onnxscript": "export",
            "fluidsynth": "data",
            "music21": "data",
            "pyworld": "data",
            "tensorboard": "train",
            "pocketsphinx": "transcribe",
            "jiwer": "transcribe",
        }
        name = (exc.name or "").split(".")[0]
        hint = f"pip install 'deepsampler[{extra[name]}]'" if name in extra else "reinstall"
        _error(f"this command needs the '{name or exc}' package: {hint}")
        return 1
    except KeyboardInterrupt as exc:
        _error(f"stopped by {stop_name(exc)}; unfinished outputs were removed")
        return exit_status(exc)


if __name__ == "__main__":
    sys.exit(main())
