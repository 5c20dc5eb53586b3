#!/usr/bin/env python
"""Training speed of each preset: steps/hour for batch BATCH x SECONDS of stereo on THREADS.

One step = forward, L1 waveform loss, backward, AdamW update on random input (data loading and
spectral losses excluded: they are the trainer's choice). Median over REPEATS steps after two
warm-up steps. Prints a table and writes JSON.

    .venv/bin/python benchmarks/train_speed.py --json experiments/bench/train_speed.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from deepsampler.models import DeepSampler, preset_config
from deepsampler.training.losses import multisrc_l1_waveform


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="+", default=["tiny", "small", "base"])
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=6)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for name in args.presets:
        cfg = preset_config(name)
        torch.manual_seed(0)
        model = DeepSampler(cfg)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        n = int(args.seconds * cfg.sample_rate)
        ref = 0.1 * torch.randn(args.batch, len(cfg.sources), cfg.audio_channels, n)
        mix = ref.sum(1)
        times = []
        for i in range(args.repeats + 2):
            start = time.perf_counter()
            loss = multisrc_l1_waveform(model(mix), ref)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if i >= 2:
                times.append(time.perf_counter() - start)
        step = statistics.median(times)
        rows.append(
            {
                "preset": name,
                "parameters": model.num_parameters(),
                "seconds_per_step": round(step, 3),
                "steps_per_hour": round(3600 / step),
            }
        )
    print(
        f"\nTraining step, batch {args.batch} x {args.seconds:g} s stereo, {args.threads} "
        f"threads, median of {args.repeats}\n"
    )
    print("| preset | parameters | s/step | steps/hour |")
    print("|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['preset']} | {r['parameters']:,} | {r['seconds_per_step']:.3f} | "
            f"{r['steps_per_hour']:,} |"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps({"args": vars(args) | {"json": str(args.json)}, "rows": rows}, indent=2)
        )


if __name__ == "__main__":
    main()
