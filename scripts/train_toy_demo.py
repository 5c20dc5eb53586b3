#!/usr/bin/env python
"""Train the toy demo model `toy4-demo` on procedural toy mixtures (deepsampler.data.toy).

This is the stand-in shipped until the real `music4-rt` arrives with the training pipeline: it
proves the path from weights to stems end to end, on signals it was trained for. It is not a
music separator. Writes the checkpoint and its model card, and prints SDR on held-out toy mixes.

    MALLOC_MMAP_THRESHOLD_=34359738368 MALLOC_TRIM_THRESHOLD_=34359738368 \
        .venv/bin/python scripts/train_toy_demo.py --minutes 25 --out src/deepsampler/pretrained

(The malloc settings keep glibc from returning large tensors to the OS after every step: on this
VM the page faults that follow cost about a third of the step time.)
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from deepsampler.data.toy import TOY_SOURCES, toy_stems
from deepsampler.models import DeepSampler, preset_config, save_checkpoint
from deepsampler.training.losses import multisrc_l1_waveform, multisrc_multires_stft

TEST_SEEDS = range(1_000_000, 1_000_008)  # held out: training seeds count up from 0


def batch(seeds: list[int], seconds: float, sr: int) -> tuple[torch.Tensor, torch.Tensor]:
    stems = [toy_stems(seconds, sr, 2, seed=s) for s in seeds]
    ref = torch.from_numpy(np.stack([np.stack([st[k] for k in TOY_SOURCES]) for st in stems]))
    return ref.sum(1), ref


def sdr(est: np.ndarray, ref: np.ndarray) -> float:
    return float(10 * np.log10((ref**2).sum() / max(((ref - est) ** 2).sum(), 1e-12) + 1e-12))


@torch.inference_mode()
def evaluate(model: DeepSampler, seconds: float = 6.0) -> dict[str, dict[str, float]]:
    model.eval()
    scores = {s: [] for s in TOY_SOURCES}
    floor = {s: [] for s in TOY_SOURCES}
    for seed in TEST_SEEDS:
        mix, ref = batch([seed], seconds, model.config.sample_rate)
        est = model(mix)[0].numpy()
        for i, s in enumerate(TOY_SOURCES):
            scores[s].append(sdr(est[i], ref[0, i].numpy()))
            floor[s].append(sdr(mix[0].numpy(), ref[0, i].numpy()))
    model.train()
    return {
        s: {"sdr": float(np.mean(scores[s])), "mixture_sdr": float(np.mean(floor[s]))}
        for s in TOY_SOURCES
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=20.0, help="wall-clock training budget")
    ap.add_argument("--preset", default="small")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=2.0, help="segment length per example")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--stft-resolutions",
        type=int,
        nargs="+",
        default=[1024],
        help="n_fft of the multi-resolution STFT loss (each costs ~0.25 s/step)",
    )
    ap.add_argument("--out", type=Path, default=Path("src/deepsampler/pretrained"))
    ap.add_argument("--name", default="toy4-demo")
    args = ap.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    config = preset_config(args.preset, sources=list(TOY_SOURCES))
    model = DeepSampler(config)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    budget = args.minutes * 60
    start = time.time()
    step, seed = 0, 0
    bar = tqdm(total=round(budget), unit="s", desc="toy training")
    while time.time() - start < budget:
        frac = (time.time() - start) / budget
        lr = args.lr * min(1.0, (step + 1) / 100) * 0.5 * (1 + math.cos(math.pi * frac))
        for group in opt.param_groups:
            group["lr"] = lr
        mix, ref = batch(list(range(seed, seed + args.batch)), args.seconds, config.sample_rate)
        seed += args.batch
        est = model(mix)
        loss = multisrc_l1_waveform(est, ref) + 0.1 * multisrc_multires_stft(
            est, ref, tuple(args.stft_resolutions)
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        step += 1
        bar.n = round(time.time() - start)
        bar.set_postfix(step=step, loss=f"{loss.item():.4f}", lr=f"{lr:.2e}")
    bar.close()
    wall = time.time() - start
    results = evaluate(model)
    mean = float(np.mean([r["sdr"] for r in results.values()]))
    floor = float(np.mean([r["mixture_sdr"] for r in results.values()]))
    training = {
        "data": "procedural toy mixtures (deepsampler.data.toy), a fresh seed per example",
        "examples_seen": seed,
        "segment_seconds": args.seconds,
        "steps": step,
        "batch": args.batch,
        "wall_minutes": round(wall / 60, 1),
        "hardware": f"{platform.processor() or platform.machine()}, {args.threads} CPU threads",
        "command": "MALLOC_MMAP_THRESHOLD_=34359738368 MALLOC_TRIM_THRESHOLD_=34359738368 "
        f".venv/bin/python scripts/train_toy_demo.py --minutes {args.minutes:g}",
        "stft_loss_resolutions": list(args.stft_resolutions),
    }
    metadata = {
        "name": args.name,
        "summary": "toy demo: trained on procedural toy signals only, not on music",
        "caveat": "trained on oscillator/noise toy mixtures only; it does not separate real "
        "recordings (the real music4-rt model ships with the training pipeline)",
        "toy_test_sdr": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = save_checkpoint(
        args.out / f"{args.name}.pt", model, training=training, metadata=metadata
    )
    rows = "\n".join(
        f"| {s} | {r['sdr']:.2f} | {r['mixture_sdr']:.2f} |" for s, r in results.items()
    )
    card = f"""# {args.name} — toy demonstration model

**Not a music separator.** Trained only on DeepSampler's procedural toy mixtures
(`deepsampler.data.toy`: a vibrato oscillator "voice", synthetic drum hits, an additive bass line
and organ-like chords). It exists so that `make demo` shows the whole path from shipped weights to
written stems with a model that really was trained. It does not separate real recordings; the
real `music4-rt` model replaces it when the training pipeline lands.

| | |
|---|---|
| architecture | DeepSampler `{args.preset}` preset: {model.num_parameters():,} parameters |
| sources | {", ".join(TOY_SOURCES)} |
| audio | {config.sample_rate} Hz, {config.audio_channels} channels |
| streaming | causal, algorithmic latency {config.latency_ms:.1f} ms (n_fft {config.n_fft}, hop {config.hop}) |
| data | {seed:,} toy examples of {args.seconds:g} s, each drawn once from a fresh seed |
| training | {step:,} steps, batch {args.batch}, AdamW lr {args.lr:g} (warm-up + cosine), L1 waveform + 0.1 x STFT loss (n_fft {args.stft_resolutions}) |
| wall time / hardware | {wall / 60:.1f} min on {training["hardware"]} |

## Results on 8 held-out toy mixtures (6 s each, seeds 1,000,000-1,000,007)

Whole-signal SDR in dB, mean over mixtures; "mixture" is the mixture used as the estimate.

| source | SDR | mixture |
|---|---|---|
{rows}
| **mean** | **{mean:.2f}** | {floor:.2f} |

Reproduce: `{training["command"]}` (writes this card and `{args.name}.pt`).
"""
    (args.out / f"{args.name}.md").write_text(card)
    print(
        json.dumps(
            {
                "path": str(path),
                "steps": step,
                "mean_sdr": mean,
                "floor": floor,
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
