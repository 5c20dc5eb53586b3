"""``deepsampler evaluate``: score a model on a MUSDB18-HQ-layout folder, beside the floor and
oracle rows."""

from __future__ import annotations

import argparse

from deepsampler.cli._common import add_offline_options, use_offline_threads
from deepsampler.errors import DeepSamplerError


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Separate and score every track; print the table unless ``--quiet``."""
    from deepsampler.evaluation.evaluate import evaluate
    from deepsampler.separator import Separator
    from deepsampler.streaming.processor import StreamProcessor

    use_offline_threads(args.threads)
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


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``evaluate`` subcommand."""
    from deepsampler.separator import DEFAULT_MODEL

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
    add_offline_options(ev)
    ev.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads (default: every core on an idle machine, 1 on a busy one)",
    )
    ev.add_argument("--allow-untrained", action="store_true", help=argparse.SUPPRESS)
    ev.add_argument("-q", "--quiet", action="store_true")
    ev.set_defaults(func=cmd_evaluate)
