"""``deepsampler separate``: audio files (or folders of them) into stems, optionally plotted
and refined with StemProver (``--enhance``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deepsampler.cli._common import (
    Say,
    add_offline_options,
    check_stems,
    collect_inputs,
    error,
    other_format_stems,
    refuse_overwriting_inputs,
    sayer,
    use_offline_threads,
)
from deepsampler.cli.enhance import add_enhance_options, describe_result, make_enhancer
from deepsampler.errors import DeepSamplerError

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "synth_rock.flac"


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


def _enhance_stems(enhancer, mixture: Path, result, adapters: str, say: Say) -> None:
    """``separate --enhance``: refine each written stem, with the mixture for the detectors and
    the refiner."""
    for name, stem_path in result.stems.items():
        out, refined = enhancer.enhance_file(
            stem_path,
            stem_path.parent / "enhanced" / f"{name}.wav",
            mixture=mixture,
            adapters=adapters,
            progress=False,
            source=name,
        )
        say("  " + describe_result(f"enhanced {name}", refined) + f" -> {out}")


def cmd_separate(args: argparse.Namespace) -> int:
    """Separate every input; status 1 when any failed (the others are still written)."""
    from deepsampler.separator import Separator

    inputs = list(args.inputs)
    if args.example:
        inputs.append(str(EXAMPLE))
    if not inputs:
        raise DeepSamplerError("no input given; pass audio files or folders (or --example)")
    threads, why = use_offline_threads(args.threads)
    files = collect_inputs(inputs, Path(args.output))
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
    stems = check_stems(args.stems, sep.sources, sep.name)
    refuse_overwriting_inputs(
        [f for f, _ in files], Path(args.output), stems or sep.sources, args.format
    )
    say = sayer(args.quiet)
    say(f"{sep.describe()} | {threads or 'default'} thread(s) ({why})")
    caveat = sep.loaded.metadata.get("caveat")
    if caveat:
        say(f"note: {caveat}")
    if not sep.trained:
        print("WARNING: untrained weights: the output is NOT a separation", file=sys.stderr)
    enhancer = None
    if args.enhance:
        enhancer = make_enhancer(
            args.stemprover_model,
            steps=args.steps,
            strength=args.strength,
            batch_size=args.batch_size,
            device=args.device,
            seed=args.seed,
        )
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
            error(str(exc))
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
        older = other_format_stems(folder, list(result.stems), args.format)
        if older:
            say(
                f"  note: {folder} still holds {', '.join(p.name for p in older)} from an "
                f"earlier run in another format; they were not replaced (remove them if unwanted)"
            )
        if args.plot:
            say(f"  spectrograms: {_plot_separation(path, result, sep)}")
        if enhancer is not None:
            _enhance_stems(enhancer, path, result, args.adapters, say)
    if failures:
        error(f"{failures} of {len(files)} input(s) failed")
        return 1
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``separate`` subcommand."""
    from deepsampler.separator import DEFAULT_MODEL

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
    add_offline_options(sep)
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
