"""``deepsampler data synth|stats``: render a training corpus with exact stems, or describe
one."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from deepsampler.data.real_pool import describe_auto
from deepsampler.errors import DeepSamplerError


def cmd_data_synth(args: argparse.Namespace) -> int:
    """Render (or resume) a corpus and print its summary."""
    from deepsampler.data.real_pool import RealPool
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


def cmd_data_stats(args: argparse.Namespace) -> int:
    """Print (and plot) the statistics of a corpus."""
    from deepsampler.data.synth.report import format_summary, load_summary, plot_summary

    summary = load_summary(args.corpus)
    print(format_summary(summary))
    if args.plot:
        print(f"wrote {plot_summary(summary, args.plot)}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``data`` subcommand and its actions."""
    data = sub.add_parser("data", help="make or inspect a training corpus")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="COMMAND")
    syn = data_sub.add_parser(
        "synth",
        help="render a corpus with exact stems (MUSDB18-HQ layout)",
        description="Render a training corpus locally: music4 (vocals/drums/bass/other from "
        "music21 scores and generated songs through FluidSynth, sampled drum kits and a "
        "synthetic singer), speech or speech-real (speech/noise), siren or siren-real "
        "(siren/background). Writes OUT/{train,valid,test}/<track>/{mixture,<source>}.wav "
        "and OUT/corpus.json. Running the same command again resumes an interrupted run.",
    )
    syn.add_argument(
        "--preset",
        required=True,
        choices=["music4", "speech", "speech-real", "siren", "siren-real"],
        help="speech-real / siren-real: the speech / siren preset with real recordings first, "
        "equalised (siren-real needs lincity-ng-data's sirens: scripts/setup.sh data)",
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
        f"{describe_auto()} when present",
    )
    syn.add_argument("-q", "--quiet", action="store_true")
    syn.set_defaults(func=cmd_data_synth)
    stats = data_sub.add_parser("stats", help="hours, instruments and loudness of a corpus")
    stats.add_argument("corpus", help="corpus folder (holding corpus.json)")
    stats.add_argument("--plot", help="also write these statistics as a PNG")
    stats.set_defaults(func=cmd_data_stats)
