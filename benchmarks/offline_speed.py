#!/usr/bin/env python
"""Offline speed of each model preset: parameters and real-time factor on 1 and 2 threads.

RTF = compute time / audio duration for one forward pass over a SECONDS-long stereo clip
(random weights; speed does not depend on them), median of REPEATS runs after a warm-up.
Prints a Markdown table and writes JSON.

    .venv/bin/python benchmarks/offline_speed.py --json experiments/bench/offline_speed.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from deepsampler.models import PRESETS, DeepSampler, preset_config


def time_forward(model: DeepSampler, x: torch.Tensor, repeats: int) -> float:
    with torch.inference_mode():
        model(x)  # warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def latency(row: dict) -> str:
    """Streaming latency applies to causal models; offline ones need the whole chunk."""
    return f"{row['latency_ms']:.1f} ms" if row["causal"] else "offline"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="+", default=sorted(PRESETS))
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    rows = []
    for name in args.presets:
        for causal in (True, False):
            cfg = preset_config(name, causal=causal)
            torch.manual_seed(0)
            model = DeepSampler(cfg).eval()
            x = torch.randn(1, cfg.audio_channels, int(args.seconds * cfg.sample_rate)) * 0.1
            row = {
                "preset": name,
                "causal": causal,
                "parameters": model.num_parameters(),
                "sample_rate": cfg.sample_rate,
                "latency_ms": round(cfg.latency_ms, 2) if causal else None,
            }
            for threads in (1, 2):
                torch.set_num_threads(threads)
                row[f"rtf_{threads}thread{'s' if threads > 1 else ''}"] = round(
                    time_forward(model, x, args.repeats) / args.seconds, 4
                )
            rows.append(row)
            print(f"done {name} causal={causal}", flush=True)

    print(
        f"\nOffline forward pass over {args.seconds:g} s of stereo audio, median of "
        f"{args.repeats} ({platform.machine()}, torch {torch.__version__})\n"
    )
    print("| preset | mode | parameters | rate | latency (causal) | RTF 1 thread | RTF 2 threads |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['preset']} | {'causal' if r['causal'] else 'offline'} | {r['parameters']:,} | "
            f"{r['sample_rate'] / 1000:g} kHz | {latency(r)} | {r['rtf_1thread']:.3f}"
            f" | {r['rtf_2threads']:.3f} |"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "seconds": args.seconds,
                    "repeats": args.repeats,
                    "torch": torch.__version__,
                    "rows": rows,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
