"""``deepsampler enhance``: reduce separation artifacts in stems with StemProver, and the
options ``separate --enhance`` shares with it."""

from __future__ import annotations

import argparse
import json

from deepsampler.cli._common import error, sayer
from deepsampler.errors import DeepSamplerError
from deepsampler.sources import KNOWN_SOURCES


def make_enhancer(
    model: str,
    *,
    steps: int | None,
    strength: float | None,
    batch_size: int,
    device: str,
    seed: int,
):
    """An Enhancer from the shared options (``--stemprover-model``, ``--steps``, ...); a bad
    model file is refused in one line."""
    from deepsampler.stemprover.enhancer import Enhancer

    try:
        return Enhancer(
            model, steps=steps, strength=strength, batch_size=batch_size, device=device, seed=seed
        )
    except (ValueError, FileNotFoundError) as exc:
        raise DeepSamplerError(str(exc)) from None


def describe_result(name: str, result) -> str:
    """One line on a refined stem: its timing and the adapters used, or why it was skipped."""
    if "skipped" in result.extra:
        return f"{name}: {result.extra['skipped']}"
    used = ", ".join(f"{k} {w:.2f}" for k, w in result.weights.items()) or "none"
    return (
        f"{name}: {result.audio.shape[-1] / result.sample_rate:.1f} s refined in "
        f"{result.seconds:.2f} s (real-time factor {result.real_time_factor:.3f}, "
        f"{result.steps} steps, {result.segments} segments); adapters: {used}"
    )


def cmd_enhance(args: argparse.Namespace) -> int:
    """Refine each stem; status 1 when any failed (the others are still written)."""
    from deepsampler.threads import set_threads

    set_threads(args.threads)
    say = sayer(args.quiet)
    if args.mixture and len(args.stems) > 1:
        raise DeepSamplerError("--mixture applies to one stem; enhance stems one by one")
    enhancer = make_enhancer(
        args.stemprover_model,
        steps=args.steps,
        strength=args.strength,
        batch_size=args.batch_size,
        device=args.device,
        seed=args.seed,
    )
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
            error(str(exc))
            failures += 1
            continue
        say(describe_result(str(stem), result) + f" -> {out}")
        if args.report and result.report is not None:
            report = out.with_suffix(".artifacts.json")
            report.write_text(json.dumps(result.report.to_dict(), indent=2))
            say(f"  artifact report: {report}")
    return 1 if failures else 0


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


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``enhance`` subcommand."""
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
