"""``deepsampler stemprover train|cache|detect``: train StemProver, cache separator outputs
for it, inspect the artifacts in a stem."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from deepsampler.errors import DeepSamplerError


def cmd_stemprover_train(args: argparse.Namespace) -> int:
    """Train the stages asked for (all by default), resuming after the last finished one."""
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
    """Separate a corpus split: the separator outputs StemProver trains and is scored on."""
    from deepsampler.stemprover.pairs import cache_separator_outputs

    tracks = cache_separator_outputs(
        Path(args.data) / args.split, args.out, args.model, args.limit, progress=not args.quiet
    )
    print(f"separator outputs of {len(tracks)} tracks in {args.out}")
    return 0


def cmd_stemprover_detect(args: argparse.Namespace) -> int:
    """Print (and plot) the artifact maps of one stem."""
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
    """The artifact maps as a table: severity, weight and flagged bands per artifact."""
    lines = ["artifact        severity  weight  flagged bands (Hz)"]
    for name, m in report.maps.items():
        edges = m.band_edges_hz
        bands = ", ".join(f"{edges[b]:.0f}-{edges[b + 1]:.0f}" for b in m.bands_flagged())
        lines.append(
            f"{name:<15} {m.severity:8.3f}  {report.weights.get(name, 0.0):6.2f}  {bands or '-'}"
        )
    return "\n".join(lines)


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``stemprover`` subcommand and its actions."""
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
