#!/usr/bin/env python
"""Average the weights of checkpoints of one model (stages of one lineage) into a new checkpoint,
and score it and its ingredients on the corpus's validation split.

    .venv/bin/python scripts/average_checkpoints.py \\
        experiments/music4-hq-5/checkpoints/best.pt experiments/music4-hq-6/checkpoints/best.pt \\
        --validate configs/music4-hq.yaml --out experiments/music4-hq-avg56

writes ``<out>/checkpoints/best.pt`` (a run folder ``scripts/ship_model.py --run`` reads), the
resolved validation table ``<out>/validation.json`` and prints it. The validation split is the
config's (``data_root``/``valid_split``, the segments the trainer validates on), so the numbers
compare with the runs' ``metrics.jsonl``; ../shared/eval plays no part in it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from deepsampler.data.dataset import StemDataset
from deepsampler.errors import DeepSamplerError
from deepsampler.models import load_checkpoint, save_checkpoint
from deepsampler.training.averaging import average_models, averaged_record
from deepsampler.training.config import load_train_config
from deepsampler.training.validate import validate


def build_parser() -> argparse.ArgumentParser:
    """The command line (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="+", type=Path, help="two or more checkpoints")
    ap.add_argument("--out", type=Path, required=True, help="run folder to write")
    ap.add_argument(
        "--weights", type=float, nargs="+", help="one weight per checkpoint (default: uniform)"
    )
    ap.add_argument(
        "--validate",
        type=Path,
        metavar="CONFIG",
        help="training config whose validation split scores the average (and each ingredient)",
    )
    ap.add_argument(
        "--no-ingredients",
        action="store_true",
        help="with --validate, score only the average (the ingredients' own numbers are in "
        "their runs' metrics.jsonl)",
    )
    ap.add_argument(
        "--force", action="store_true", help="replace an existing OUT/checkpoints/best.pt"
    )
    ap.add_argument("--threads", type=int, default=2)
    return ap


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    """Average, optionally validate, write ``OUT/checkpoints/best.pt``; 0 on success, 2 on a
    refused invocation (one ``error:`` line on stderr, nothing written)."""
    args = build_parser().parse_args(argv)
    if len(args.checkpoints) < 2:
        return fail("give at least two checkpoints to average")
    if args.weights is not None and len(args.weights) != len(args.checkpoints):
        return fail(f"{len(args.weights)} --weights for {len(args.checkpoints)} checkpoints")
    target = args.out / "checkpoints" / "best.pt"
    if target.exists() and not args.force:
        # a training run's own best.pt lives at the same place: never replace it silently
        return fail(f"{target} exists (a training run's?); choose another --out or give --force")
    torch.set_num_threads(args.threads)
    try:
        loaded = [load_checkpoint(p) for p in args.checkpoints]
        model = average_models(loaded, args.weights)
    except (DeepSamplerError, ValueError) as exc:
        return fail(str(exc))

    rows: list[dict[str, object]] = []
    valid = None
    if args.validate is not None:
        try:
            cfg = load_train_config(args.validate, [])
            dataset = StemDataset(cfg.data_root, cfg.valid_split, cfg.data, train=False)
        except (DeepSamplerError, FileNotFoundError) as exc:
            return fail(str(exc))
        loader = DataLoader(dataset, batch_size=cfg.batch_size, num_workers=0)
        # CPU: the numbers must compare with the CPU runs' metrics.jsonl to the last digits
        device = torch.device("cpu")
        candidates = [("average", model)]
        if not args.no_ingredients:
            candidates += [(str(m.path), m.model) for m in loaded]
        for name, candidate in candidates:
            result = validate(candidate, loader, device, silence_db=cfg.data.silence_db)
            rows.append({"model": name, "sdr": result["sdr"], "per_source": result["per_source"]})
            if name == "average":
                valid = result
            print(
                f"{result['sdr']:7.3f} dB  "
                + "  ".join(f"{s} {v:.2f}" for s, v in result["per_source"].items())
                + f"  {name}",
                flush=True,
            )

    record = averaged_record(loaded, args.weights, valid)
    save_checkpoint(
        target,
        model,
        training=record,
        metadata={
            "name": loaded[-1].metadata.get("name", ""),
            "selected_on": "validation SDR of the weight average"
            if valid is not None
            else "not validated",
        },
    )
    if rows:
        (args.out / "validation.json").write_text(
            json.dumps(
                {"config": str(args.validate), "split": cfg.valid_split, "rows": rows}, indent=2
            )
            + "\n"
        )
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
