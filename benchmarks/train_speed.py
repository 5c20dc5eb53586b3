#!/usr/bin/env python
"""Training speed: steps/hour for batch BATCH x SECONDS of stereo, per model and device.

One step = forward, L1 waveform loss, backward, AdamW update on random input (data loading and
spectral losses excluded: they are the trainer's choice). Median over REPEATS steps after two
warm-up steps. Models are presets (``--presets``) or the model of a training config
(``--configs configs/music4-hq.yaml``: its preset with its ``model:`` overrides). On CUDA each
model is timed with float32 and with the trainer's bfloat16 autocast (``amp``). Prints a table
and writes JSON.

    .venv/bin/python benchmarks/train_speed.py --json experiments/bench/train_speed.json
    python3 benchmarks/train_speed.py --presets --configs configs/music4-hq.yaml \
        --devices cuda --batch 4 16 --json $OUT/train_speed_cuda.json      # on a GPU machine
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from deepsampler.models import DeepSampler, ModelConfig, preset_config
from deepsampler.training.config import load_train_config
from deepsampler.training.losses import multisrc_l1_waveform


def time_steps(
    cfg: ModelConfig, device: torch.device, batch: int, seconds: float, amp: bool, repeats: int
) -> float:
    """Median seconds per training step of a freshly initialised model."""
    torch.manual_seed(0)
    model = DeepSampler(cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    n = int(seconds * cfg.sample_rate)
    ref = 0.1 * torch.randn(batch, len(cfg.sources), cfg.audio_channels, n, device=device)
    mix = ref.sum(1)
    times = []
    for i in range(repeats + 2):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            estimate = model(mix)
        loss = multisrc_l1_waveform(estimate.float(), ref)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= 2:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def device_name(device: torch.device, threads: int) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU, {threads} threads"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="*", default=["tiny", "small", "base"])
    ap.add_argument("--configs", nargs="*", type=Path, default=[], help="training YAML configs")
    ap.add_argument("--devices", nargs="+", default=["cpu"], help="cpu, cuda, cuda:1, ...")
    ap.add_argument("--batch", type=int, nargs="+", default=[4])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=6)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    models: list[tuple[str, ModelConfig]] = [(name, preset_config(name)) for name in args.presets]
    for path in args.configs:
        train = load_train_config(path)
        models.append((train.name, train.model_config()))
    if not models:
        raise SystemExit("nothing to time: give --presets and/or --configs")
    devices = [torch.device(d) for d in args.devices]
    if any(d.type == "cuda" for d in devices) and not torch.cuda.is_available():
        raise SystemExit("--devices names cuda, but torch sees no CUDA device here")
    rows = []
    for device in devices:
        for name, cfg in models:
            for batch in args.batch:
                for amp in (False, True) if device.type == "cuda" else (False,):
                    step = time_steps(cfg, device, batch, args.seconds, amp, args.repeats)
                    rows.append(
                        {
                            "model": name,
                            "device": device_name(device, args.threads),
                            "amp": amp,
                            "batch": batch,
                            "parameters": DeepSampler(cfg).num_parameters(),
                            "seconds_per_step": round(step, 4),
                            "steps_per_hour": round(3600 / step),
                            "audio_seconds_per_second": round(batch * args.seconds / step, 1),
                        }
                    )
                    print(f"  {name} {rows[-1]['device']} amp={amp} batch {batch}: {step:.4f} s")
    print(f"\nTraining step, batch x {args.seconds:g} s stereo, median of {args.repeats}\n")
    print("| model | device | amp | batch | parameters | s/step | steps/hour | audio s / s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['model']} | {r['device']} | {'bf16' if r['amp'] else 'fp32'} | {r['batch']} | "
            f"{r['parameters']:,} | {r['seconds_per_step']:.4f} | {r['steps_per_hour']:,} | "
            f"{r['audio_seconds_per_second']:,} |"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows}
        args.json.write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
