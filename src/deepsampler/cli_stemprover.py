"""The StemProver subcommands of ``deepsampler``: ``enhance`` and ``stemprover train|cache|detect``.

Kept apart from ``cli.py`` so that each file has one job; ``cli.build_parser`` calls
``add_parsers``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from deepsampler.errors import DeepSamplerError
from deepsampler.sources import KNOWN_SOURCES


def _say(quiet: bool):
    return (lambda *a: None) if quiet else (lambda *a: print(*a, flush=True))


def make_enhancer(args: argparse.Namespace):
    """An Enhancer from the shared options (``--stemprover-model``, ``--steps``, ...)."""
    from deepsampler.stemprover.enhancer import Enhancer

    try:
        return Enhancer(
            args.stemprover_model,
            steps=args.steps,
            strength=args.strength,
            batch_size=args.batch_size,
            device=args.device,
            seed=args.seed,
        )
    except (ValueError, FileNotFoundError) as exc:
        raise DeepSamplerError(str(exc)) from None


def describe_result(name: str, result) -> str:
    if "skipped" in result.extra:
        return f"{name}: {result.extra['skipped']}"
    used = ", ".join(f"{k} {w:.2f}" for k, w in result.weights.items()) or "none"
    return (
        f"{name}: {result.audio.shape[-1] / result.sample_rate:.1f} s refined in "
        f"{result.seconds:.2f} s (real-time factor {result.real_time_factor:.3f}, "
        f"{result.steps} steps, {result.segments} segments); adapters: {used}"
    )


def cmd_enhance(args: argparse.Namespace) -> int:
    from deepsampler.threads import set_threads

    set_threads(args.threads)
    say = _say(args.quiet)
    if args.mixture and len(args.stems) > 1:
        raise DeepSamplerError("--mixture applies to one stem; enhance stems one by one")
    enhancer = make_enhancer(args)
    failures = 0
    for stem in args.stems:
        try:
            out, result = enhancer.enhance_file(
                stem,
                args.output,
                mixture=args.mixture,
                adapters=args.adapters,
                progress=not args.quiet,
                source=args.source,
            )
        except DeepSamplerError as exc:
            print(f"deepsampler: error: {exc}", file=sys.stderr)
            failures += 1
            continue
        say(describe_result(str(stem), result) + f" -> {out}")
        if args.report and result.report is not None:
            report = out.with_suffix(".artifacts.json")
            report.write_text(json.dumps(result.report.to_dict(), indent=2))
            say(f"  artifact report: {report}")
    return 1 if failures else 0


def cmd_stemprover_train(args: argparse.Namespace) -> int:
    from deepsampler.stemprover.train import (
        STAGES,
        StemProverTrainer,
        load_stemprover_config,
    )

    try:
        config = load_stemprover_config(args.config, args.overrides)
    except ValueError as exc:
        raise DeepSamplerError(str(exc)) from None
    stages = [s.strip() for s in args.stages.split(",")] if args.stages else list(STAGES)
    retrain = [s.strip() for s in args.retrain.split(",")] if args.retrain else []
    out = Path(args.out) if args.out else Path("experiments") / config.name
    results = StemProverTrainer(config, out, progress=not args.quiet).run(stages, retrain)
    if not results:
        print(
            f"stemprover: nothing to train: {', '.join(stages)} already done (in {out}, or in "
            f"init_from; --retrain STAGES trains init_from's stages again)"
        )
    for r in results:
        print(
            f"{r.stage}: {r.steps} steps in {r.seconds / 60:.1f} min, "
            f"loss {r.first_loss:.4f} -> {r.last_loss:.4f}"
        )
    print(f"stemprover: model in {out / 'stemprover.pt'}")
    return 0


def cmd_stemprover_cache(args: argparse.Namespace) -> int:
    from deepsampler.stemprover.pairs import cache_separator_outputs

    tracks = cache_separator_outputs(
        Path(args.data) / args.split, args.out, args.model, args.limit, progress=not args.quiet
    )
    print(f"separator outputs of {len(tracks)} tracks in {args.out}")
    return 0


def cmd_stemprover_detect(args: argparse.Namespace) -> int:
    from deepsampler.audio import read_audio
    from deepsampler.stemprover.detectors import detect_artifacts
    from deepsampler.stemprover.enhancer import read_mixture

    stem, sr = read_audio(args.stem)
    mix = read_mixture(args.mixture, sr) if args.mixture else None
    try:
        report = detect_artifacts(stem, sr, mixture=mix)
    except ValueError as exc:
        raise DeepSamplerError(f"{args.stem}: {exc}") from None
    summary = report.to_dict()
    print(json.dumps(summary, indent=2) if args.json else _format_report(report))
    if args.plot:
        from deepsampler.stemprover.plots import plot_artifact_maps

        print(f"wrote {plot_artifact_maps(report, args.plot, title=str(args.stem))}")
    return 0


def _format_report(report) -> str:
    lines = ["artifact        severity  weight  flagged bands (Hz)"]
    for name, m in report.maps.items():
        edges = m.band_edges_hz
        bands = ", ".join(f"{edges[b]:.0f}-{edges[b + 1]:.0f}" for b in m.bands_flagged())
        lines.append(
            f"{name:<15} {m.severity:8.3f}  {report.weights.get(name, 0.0):6.2f}  {bands or '-'}"
        )
    return "\n".join(lines)


def add_enhance_options(p: argparse.ArgumentParser, prefix: str = "") -> None:
    """Options shared by ``enhance`` and ``separate --enhance``."""
    p.add_argument(
        f"--{prefix}steps",
        dest="steps",
        type=int,
        default=None,
        help="DDIM sampling steps: more is slower and (up to a point) cleaner; 0 runs the "
        "predictive stage alone, no diffusion (needs the mixture) (default: the model's)",
    )
    p.add_argument(
        f"--{prefix}adapters",
        dest="adapters",
        default="auto",
        help="LoRA adapters: auto (chosen and weighted by the artifact detectors), none, or a "
        "comma list of bleed,musical_noise,band_limit,phase_smear (default: %(default)s)",
    )
    p.add_argument(
        f"--{prefix}strength",
        dest="strength",
        type=float,
        default=None,
        help="how far (0-1] the stem is noised before denoising (default: the model's)",
    )
    p.add_argument(
        "--stemprover-model",
        default="stemprover",
        help="shipped StemProver name or model file (default: %(default)s)",
    )
    p.add_argument(
        f"--{prefix}batch-size",
        dest="batch_size",
        type=int,
        default=4,
        help="segments per forward pass (default: %(default)s)",
    )
    p.add_argument("--seed", type=int, default=0, help="sampler noise seed (default: 0)")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    enh = sub.add_parser(
        "enhance",
        help="reduce separation artifacts in stems (StemProver)",
        description="Refine separated stems with StemProver: detect artifacts (bleed, musical "
        "noise, band-limiting, phase smear), then remove them with latent diffusion steered by "
        "the matching LoRA adapters. Writes 32-bit float WAV.",
    )
    enh.add_argument("stems", nargs="+", metavar="STEM", help="stem audio files")
    enh.add_argument("-o", "--output", default="enhanced", help="output folder or file")
    enh.add_argument(
        "--mixture",
        help="the mixture the stem came from: the detectors find bleed and lost highs "
        "against it, and the refiner reads it (recommended)",
    )
    add_enhance_options(enh)
    enh.add_argument("--device", default="cpu", help="cpu or cuda (default: %(default)s)")
    enh.add_argument(
        "--source",
        choices=KNOWN_SOURCES,
        help="the stem's source (default: the file's name when it names one, e.g. vocals.wav); "
        "a model guided by a music separator leaves stems of other sources (speech, noise, "
        "...) unchanged",
    )
    enh.add_argument("--threads", type=int, default=0, help="CPU threads (default: torch's)")
    enh.add_argument(
        "--report", action="store_true", help="also write <out>.artifacts.json (detections)"
    )
    enh.add_argument("-q", "--quiet", action="store_true", help="no progress or summary")
    enh.set_defaults(func=cmd_enhance)

    sp = sub.add_parser("stemprover", help="train StemProver, cache pairs, inspect artifacts")
    sp_sub = sp.add_subparsers(dest="stemprover_command", required=True, metavar="ACTION")
    tr = sp_sub.add_parser(
        "train",
        help="train the StemProver stages",
        description="Train autoencoder, base denoiser, control branch, LoRA adapters and the "
        "regression control, in order; re-running resumes after the last finished stage.",
    )
    tr.add_argument("--config", help="YAML preset (e.g. configs/stemprover.yaml)")
    tr.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    tr.add_argument("--out", help="run folder (default: experiments/<name>)")
    tr.add_argument("--stages", help="comma list of stages to run (default: all)")
    tr.add_argument(
        "--retrain",
        help="comma list of stages that init_from finished and this run trains again",
    )
    tr.add_argument("-q", "--quiet", action="store_true")
    tr.set_defaults(func=cmd_stemprover_train)
    ca = sp_sub.add_parser(
        "cache",
        help="separate a corpus split with a separator (pairs for training/evaluation)",
    )
    ca.add_argument("--data", required=True, help="corpus root (MUSDB18-HQ layout)")
    ca.add_argument("--split", default="train", help="split folder (default: %(default)s)")
    ca.add_argument("--out", required=True, help="folder for <track>/<source>.wav")
    ca.add_argument("--model", default="music4-rt", help="separator (default: %(default)s)")
    ca.add_argument("--limit", type=int, default=None, help="first N tracks only")
    ca.add_argument("-q", "--quiet", action="store_true")
    ca.set_defaults(func=cmd_stemprover_cache)
    de = sp_sub.add_parser("detect", help="detect artifacts in a stem and print/plot the maps")
    de.add_argument("stem", help="stem audio file")
    de.add_argument("--mixture", help="the mixture the stem came from")
    de.add_argument("--json", action="store_true", help="print JSON instead of a table")
    de.add_argument("--plot", help="write a PNG of the per-band maps here")
    de.set_defaults(func=cmd_stemprover_detect)
