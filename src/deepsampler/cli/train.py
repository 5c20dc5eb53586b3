"""``deepsampler train``: train a separator (or a detector) from a YAML config."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from deepsampler.errors import DeepSamplerError


def cmd_train(args: argparse.Namespace) -> int:
    """Train (or resume) and, on the first process, print where the run stands."""
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


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``train`` subcommand."""
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
