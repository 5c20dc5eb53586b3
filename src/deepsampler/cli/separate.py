"""``deepsampler separate``: audio files (or folders of them) into stems, optionally plotted
and refined with StemProver (``--enhance``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deepsampler.cli._common import (
    check_stems,
    collect_inputs,
    error,
    other_format_stems,
    refuse_overwriting_inputs,
    sayer,
    use_offline_threads,
)
from deepsampler.cli.batch import (
    add_model_options,
    add_resume_option,
    count_arg,
    load_separator,
    run_catalogue,
)
from deepsampler.cli.enhance import add_enhance_options, describe_result, make_enhancer
from deepsampler.errors import DeepSamplerError

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "synth_rock.flac"


def _plot_separation(mixture_path: Path, track: str, paths: dict[str, Path], sep) -> Path:
    """PNG of the mixture's and the written stems' spectrograms, beside the stems."""
    from deepsampler.audio import read_audio
    from deepsampler.evaluation.plots import plot_stem_spectrograms

    mixture, sr = read_audio(mixture_path)
    stems = {name: read_audio(stem_path)[0] for name, stem_path in paths.items()}
    folder = next(iter(paths.values())).parent
    return plot_stem_spectrograms(
        mixture,
        stems,
        sr,
        folder / "spectrograms.png",
        f"{track}: {sep.loaded.metadata.get('name', 'model')} ({sep.latency_ms:.1f} ms latency)",
    )


def _enhance_stems(enhancer, mixture: Path, paths: dict[str, Path], adapters: str, say) -> None:
    """``separate --enhance``: refine each written stem, with the mixture for the detectors and
    the refiner."""
    for name, stem_path in paths.items():
        out, refined = enhancer.enhance_file(
            stem_path,
            stem_path.parent / "enhanced" / f"{name}.wav",
            mixture=mixture,
            adapters=adapters,
            progress=False,
            source=name,
        )
        say("  " + describe_result(f"enhanced {name}", refined) + f" -> {out}")


def _extras(args, sep, enhancer, path: Path, track: str, paths: dict[str, Path], say) -> None:
    """``--plot`` and ``--enhance`` for one separated file."""
    if args.plot:
        say(f"  spectrograms: {_plot_separation(path, track, paths, sep)}")
    if enhancer is not None:
        _enhance_stems(enhancer, path, paths, args.adapters, say)


def cmd_separate(args: argparse.Namespace) -> int:
    """Separate every input; status 1 when any failed (the others are still written). A run
    with a folder among its inputs, or with ``--jobs``, is a catalogue run (cli.batch): it
    keeps OUT/manifest.jsonl and a rerun resumes from it."""
    inputs = list(args.inputs)
    if args.example:
        inputs.append(str(EXAMPLE))
    if not inputs:
        raise DeepSamplerError("no input given; pass audio files or folders (or --example)")
    if args.jobs is not None and (args.plot or args.enhance):
        raise DeepSamplerError("--plot and --enhance run in this process; leave out --jobs")
    threads, why = use_offline_threads(args.threads)
    files = collect_inputs(inputs, Path(args.output))
    sep = load_separator(args)
    stems = check_stems(args.stems, sep.sources, sep.name)
    refuse_overwriting_inputs(
        [f for f, _ in files], Path(args.output), stems or sep.sources, args.format
    )
    say = sayer(args.quiet)
    if args.jobs is not None:
        why = f"per worker, {args.jobs} worker process(es)"
        threads = 1 if args.threads is None else args.threads
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
    if args.jobs is not None or any(Path(i).is_dir() for i in inputs):
        out = Path(args.output)

        def after(o) -> None:
            paths = {s: out / rel for s, rel in o.outputs.items()}
            if o.status == "done" and (args.plot or enhancer is not None):
                _extras(args, sep, enhancer, Path(o.input), o.track, paths, say)

        runner = "inline" if args.jobs is None else "pool"
        return run_catalogue(args, sep, files, stems, runner=runner, on_outcome=after)
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
        _extras(args, sep, enhancer, path, result.track, result.stems, say)
    if failures:
        error(f"{failures} of {len(files)} input(s) failed")
        return 1
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``separate`` subcommand."""
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
    add_model_options(sep)
    sep.add_argument(
        "--jobs",
        type=count_arg,
        default=None,
        help="separate with N worker processes, one model and (by default) one thread each; "
        "keeps OUT/manifest.jsonl like a folder run",
    )
    add_resume_option(sep)
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
