#!/usr/bin/env python
"""Two versions of the package, one streaming pipeline: real-time factor of a shipped model
streamed file-to-file one hop at a time on one thread (``StreamProcessor``, as ``deepsampler
stream --input`` and the speech benchmark run it), each version in a fresh process, the two
alternated round by round so that a machine whose speed drifts weighs on both alike.

    git worktree add /tmp/wt-old HEAD~1
    .venv/bin/python benchmarks/engine_revision.py --old /tmp/wt-old/src --new src \\
        --model speech-rt --model music4-rt --engine onnx --rounds 7 \\
        --json benchmarks/results/engine_revision.json

Prints, per model and engine, each version's median RTF and the median of the per-round ratios
new / old (the number to quote: ratios of neighbouring runs, never one absolute time).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

# run in the child: PYTHONPATH picks the version; prints one RTF
CHILD = """
import statistics, sys, time
import numpy as np, torch
torch.set_num_threads(1)
from deepsampler.separator import Separator
from deepsampler.streaming.processor import StreamProcessor
name, engine_kind, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
sep = Separator(name)
engine = sep.streaming_engine(engine_kind, threads=1)
cfg = sep.config
rng = np.random.default_rng(0)
x = (0.1 * rng.standard_normal((cfg.audio_channels, int(cfg.sample_rate * seconds))))
x = x.astype(np.float32)
def run():
    p = StreamProcessor(engine, cfg.sample_rate, cfg.hop)
    return p.push(x) + p.finish()
run()  # warm-up: caches, allocator
times = []
for _ in range(3):
    start = time.perf_counter()
    run()
    times.append(time.perf_counter() - start)
print(statistics.median(times) / seconds)
"""


def rtf(src: Path, model: str, engine: str, seconds: float) -> float:
    """One fresh process importing the package from ``src``: the pipeline's RTF."""
    env = {**os.environ, "PYTHONPATH": str(src.resolve())}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, model, engine, str(seconds)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(f"error: {src} {model} {engine}: {tail}")
    return float(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", type=Path, required=True, help="the old version's src folder")
    ap.add_argument("--new", type=Path, required=True, help="the new version's src folder")
    ap.add_argument("--model", action="append", help="shipped model (repeatable)")
    ap.add_argument("--engine", action="append", choices=["onnx", "torch"], help="(repeatable)")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--seconds", type=float, default=5.0, help="audio streamed per run")
    ap.add_argument("--json", type=Path, help="write the rows here")
    args = ap.parse_args(argv)
    for src in (args.old, args.new):
        if not (src / "deepsampler").is_dir():
            ap.error(f"{src}: no deepsampler package there")
    rows = []
    for model in args.model or ["speech-rt"]:
        for engine in args.engine or ["onnx"]:
            old, new = [], []
            for _ in range(args.rounds):
                old.append(rtf(args.old, model, engine, args.seconds))
                new.append(rtf(args.new, model, engine, args.seconds))
            ratios = [n / o for o, n in zip(old, new, strict=True)]
            rows.append(
                {
                    "model": model,
                    "engine": engine,
                    "rtf_old": statistics.median(old),
                    "rtf_new": statistics.median(new),
                    "ratio": statistics.median(ratios),
                    "ratios": [round(r, 4) for r in ratios],
                }
            )
    print("| model | engine | RTF old | RTF new | new / old (median of rounds) |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['model']} | {r['engine']} | {r['rtf_old']:.4f} | {r['rtf_new']:.4f} "
            f"| {r['ratio']:.3f}x |"
        )
    if args.json:
        record = {
            "old": str(args.old),
            "new": str(args.new),
            "rounds": args.rounds,
            "seconds": args.seconds,
            "machine": platform.machine(),
            "rows": rows,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
