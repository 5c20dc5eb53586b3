#!/usr/bin/env python
"""Training speed: steps/hour for batch BATCH x SECONDS of stereo, per model and device.

One step is the trainer's step on random input: forward, L1 waveform loss, the finite-loss
check, backward, gradient clipping, AdamW update and the EMA update (data loading, the LR
scheduler and spectral losses excluded). Median over REPEATS steps after two warm-up steps.
Models are presets (``--presets``) or the model of a training config (``--configs
configs/music4-hq.yaml``: its preset with its ``model:`` overrides, its clipping and EMA). On
CUDA each model is timed with float32 (cuDNN may run convolutions in TF32, as in training) and
with the trainer's bfloat16 autocast (``amp``). Prints a table and writes JSON.

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
from torch.optim.swa_utils import AveragedModel

from deepsampler.models import DeepSampler, ModelConfig, preset_config
from deepsampler.training.config import OptimConfig, TrainConfig, load_train_config
from deepsampler.training.losses import multisrc_l1_waveform
from deepsampler.training.trainer import ema_with_warmup


def time_steps(
    cfg: ModelConfig,
    device: torch.device,
    batch: int,
    seconds: float,
    amp: bool,
    repeats: int,
    grad_clip: float = 5.0,
    ema_decay: float = 0.999,
) -> float:
    """Median seconds per training step of a freshly initialised model, as the trainer steps."""
    torch.manual_seed(0)
    model = DeepSampler(cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ema = (
        AveragedModel(model, multi_avg_fn=ema_with_warmup(ema_decay), use_buffers=True)
        if ema_decay > 0
        else None
    )
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
        if not torch.isfinite(loss):  # the trainer checks every step (a device sync on CUDA)
            raise FloatingPointError("non-finite loss")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()
        if ema is not None:
            ema.update_parameters(model)
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
    if args.repeats < 1 or args.seconds <= 0 or min(args.batch) < 1:
        raise SystemExit("--repeats and --batch must be >= 1 and --seconds > 0")
    torch.set_num_threads(args.threads)
    defaults = TrainConfig.__dataclass_fields__
    preset_step = {
        "grad_clip": OptimConfig().grad_clip,
        "ema_decay": defaults["ema_decay"].default,
    }
    models: list[tuple[str, ModelConfig, dict]] = [
        (name, preset_config(name), preset_step) for name in args.presets
    ]
    for path in args.configs:
        train = load_train_config(path)
        step = {"grad_clip": train.optim.grad_clip, "ema_decay": train.ema_decay}
        models.append((train.name, train.model_config(), step))
    if not models:
        raise SystemExit("nothing to time: give --presets and/or --configs")
    devices = [torch.device(d) for d in args.devices]
    if any(d.type == "cuda" for d in devices) and not torch.cuda.is_available():
        raise SystemExit("--devices names cuda, but torch sees no CUDA device here")
    rows = []
    for device in devices:
        for name, cfg, extra in models:
            for batch in args.batch:
                for amp in (False, True) if device.type == "cuda" else (False,):
                    step = time_steps(cfg, device, batch, args.seconds, amp, args.repeats, **extra)
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
        payload = {"args": vars(args), "rows": rows}
        args.json.write_text(json.dumps(payload, indent=2, default=str))


if __name__ == "__main__":
    main()
