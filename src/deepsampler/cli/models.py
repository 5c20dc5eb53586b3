"""``deepsampler models`` (the shipped models) and ``deepsampler info`` (one model described)."""

from __future__ import annotations

import argparse
import json


def cmd_models(args: argparse.Namespace) -> int:
    """One line per shipped model: sources (or what a detector reads), rate, latency, size."""
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
    """A model (or an untrained preset) as JSON: parameters, latency, hop, config."""
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


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """The ``models`` and ``info`` subcommands."""
    from deepsampler.separator import DEFAULT_MODEL

    models = sub.add_parser("models", help="list the shipped models")
    models.set_defaults(func=cmd_models)

    info = sub.add_parser("info", help="describe a model: parameters, latency, config")
    group = info.add_mutually_exclusive_group()
    group.add_argument(
        "--model", default=DEFAULT_MODEL, help="shipped model name or checkpoint path"
    )
    group.add_argument("--preset", help="an untrained size preset instead (tiny, small, base)")
    info.set_defaults(func=cmd_info)
