"""``deepsampler batch``: a catalogue (folders, list files) separated by a pool of processes or
on a Ray cluster, resumable from ``OUT/manifest.jsonl``; and the catalogue run that
``separate`` uses for folders and ``--jobs``. The work is in :mod:`deepsampler.batch`."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from deepsampler.cli._common import add_offline_options, check_stems, error, sayer
from deepsampler.errors import DeepSamplerError


def count_arg(value: str) -> int:
    """``--jobs`` / ``--actors``: a whole number of at least 1."""
    if value.isdigit() and int(value) >= 1:
        return int(value)
    raise argparse.ArgumentTypeError(f"{value!r}: use a whole number of 1 or more")


def add_model_options(p: argparse.ArgumentParser) -> None:
    """The model and how it separates: shared by ``separate`` and ``batch``."""
    from deepsampler.separator import DEFAULT_MODEL

    p.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help="shipped model name or checkpoint path (default: %(default)s; "
        "see `deepsampler models`)",
    )
    p.add_argument("--stems", help="comma-separated stems to write (default: all)")
    p.add_argument(
        "--format",
        choices=["wav", "flac"],
        default="wav",
        help="wav = 32-bit float, flac = 24-bit (default: %(default)s)",
    )
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: %(default)s)")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads (default: every core on an idle machine, 1 on a busy one, where more "
        "threads only contend; 0 = torch's choice; 1 per worker with --jobs or --ray)",
    )
    p.add_argument(
        "--chunk-seconds",
        type=float,
        default=10.0,
        help="long inputs are processed in chunks of this length (default: %(default)s)",
    )
    p.add_argument(
        "--overlap-seconds",
        type=float,
        default=1.0,
        help="cross-fade between chunks (default: %(default)s)",
    )
    add_offline_options(p)
    p.add_argument(
        "--downmix",
        action="store_true",
        help="average inputs with more channels than the model takes",
    )
    p.add_argument(
        "--allow-untrained",
        action="store_true",
        help="accept a checkpoint with untrained weights (pipeline testing only)",
    )


def add_resume_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--retry-failed",
        action="store_true",
        help="also try again the files OUT/manifest.jsonl records as failed (a rerun skips "
        "them, and the complete ones, by default)",
    )


def load_separator(args: argparse.Namespace, device: str | None = None):
    """The run's Separator from the model options; refuses an .onnx model (streaming only)."""
    from deepsampler.separator import Separator

    sep = Separator(
        args.model,
        device=device or args.device,
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
    return sep


def run_catalogue(
    args: argparse.Namespace,
    sep,
    files: Sequence[tuple[Path, str]],
    stems: list[str] | None,
    *,
    runner: str,
    on_outcome: Callable | None = None,
) -> int:
    """Plan ``files`` against OUT/manifest.jsonl, separate what is to do with ``runner``
    (``inline``: this process and ``sep``; ``pool``: ``args.jobs`` processes; ``ray``), record
    each file as it finishes; a summary line; status 1 when any file of the catalogue failed."""
    from deepsampler.batch import Manifest, SeparationJob, execute, plan_run
    from deepsampler.batch.local import run_inline, run_pool
    from deepsampler.batch.run import error_line

    say = sayer(args.quiet)
    threads = 1 if args.threads is None else args.threads
    job = SeparationJob.from_separator(sep, args.model, args.output, stems, args.format, threads)
    gpus = getattr(args, "gpus_per_actor", 0.0)
    if runner == "ray" and gpus > 0:  # the driver checked the model on its CPU
        job = dataclasses.replace(job, device="cuda")
    with Manifest(args.output) as manifest:
        plan = plan_run(files, job, manifest, args.retry_failed)
        torn = (
            f"; {plan.torn_lines} torn line(s) in the manifest skipped" if plan.torn_lines else ""
        )
        say(
            f"catalogue: {len(files)} file(s): {len(plan.todo)} to do "
            f"({plan.todo_seconds / 3600:.3f} h of audio), {len(plan.complete)} already "
            f"complete, {len(plan.failed_earlier)} failed earlier{torn} -> {manifest.path}"
        )
        for item in plan.failed_earlier:
            error(f"failed in an earlier run: {error_line(item.path, plan.errors[item.key])}")
        if runner == "inline":
            outcomes = run_inline(sep, job, plan.todo)
        elif runner == "pool":
            outcomes = run_pool(job, plan.todo, args.jobs)
        else:
            from deepsampler.batch.ray_runner import run_ray

            outcomes = run_ray(
                job, plan.todo, actors=args.actors, gpus_per_actor=gpus, address=args.ray or None
            )
        summary = execute(
            plan,
            outcomes,
            manifest,
            job,
            progress=not args.quiet,
            note=lambda line: print(line, file=sys.stderr, flush=True),
            on_outcome=on_outcome,
        )
    say(summary.line())
    if not summary.ok:
        error(f"{summary.failed + summary.failed_earlier} of {summary.files} input(s) failed")
        return 1
    return 0


def cmd_batch(args: argparse.Namespace) -> int:
    """Separate a catalogue on a pool of processes, or on Ray with ``--ray``."""
    from deepsampler.batch import catalogue_inputs

    if args.ray is None and (args.actors is not None or args.gpus_per_actor):
        raise DeepSamplerError("--actors and --gpus-per-actor go with --ray")
    if args.ray is not None and args.jobs is not None:
        raise DeepSamplerError("--jobs is for a local pool; on Ray say --actors N")
    if args.gpus_per_actor < 0:
        raise DeepSamplerError(f"--gpus-per-actor {args.gpus_per_actor}: use 0 or more")
    if args.ray is not None:
        from deepsampler.batch.ray_runner import check_reachable, import_ray

        import_ray()  # before the model loads: a missing extra is the first thing said
        if args.ray:
            check_reachable(args.ray)
        args.actors = args.actors or 2
    else:
        args.jobs = args.jobs or os.cpu_count() or 1
    files = catalogue_inputs(args.inputs, Path(args.output))
    sep = load_separator(args, device="cpu" if args.ray is not None else None)
    stems = check_stems(args.stems, sep.sources, sep.name)
    if not sep.trained:
        print("WARNING: untrained weights: the output is NOT a separation", file=sys.stderr)
    where = (
        f"Ray ({args.ray or 'local'}), {args.actors} actor(s)"
        if args.ray is not None
        else (f"{args.jobs} worker process(es)")
    )
    sayer(args.quiet)(f"{sep.describe()} | {where}")
    return run_catalogue(args, sep, files, stems, runner="pool" if args.ray is None else "ray")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``batch`` subcommand."""
    p = sub.add_parser(
        "batch",
        help="separate a catalogue, resumably, on many processes or a Ray cluster",
        description="Separate every audio file under folders or named in list files (one path "
        "a line, relative to the list) into OUT/<relative path>/<stem>.<format>, keeping "
        "OUT/manifest.jsonl: a rerun skips what is complete and redoes what is not.",
    )
    p.add_argument("inputs", nargs="+", metavar="DIR|LIST.txt", help="folders, lists or files")
    p.add_argument(
        "-o", "--output", required=True, help="output folder (on Ray: one every node sees)"
    )
    add_model_options(p)
    p.add_argument(
        "--jobs", type=count_arg, default=None, help="worker processes (default: every core)"
    )
    p.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help="run on Ray: the cluster at ADDRESS (host:port, ray://host:port or auto), or a "
        "local Ray started for the run (needs pip install 'deepsampler[cluster]')",
    )
    p.add_argument("--actors", type=count_arg, default=None, help="Ray actors (default: 2)")
    p.add_argument(
        "--gpus-per-actor",
        type=float,
        default=0.0,
        help="GPUs each Ray actor takes; above 0 the actors separate on CUDA (default: 0)",
    )
    add_resume_option(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=cmd_batch)
