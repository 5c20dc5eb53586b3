#!/usr/bin/env python
"""Deepen a trained DeepSampler by RoFormer blocks that start as the identity, so that training
continues from exactly the function the checkpoint computes instead of from scratch.

    .venv/bin/python scripts/grow_depth.py stages/speech-rt-real-s2.pt --depth 3 \\
        --out experiments/grown/speech-rt-d3-init.pt

A block is two pre-norm residual layers (time, then band): ``x + attn(x)``, ``x + ff(x)``.
A new block's attention output projection and its feed-forward's last layer are zero, so both
residual branches add nothing and the deeper model's separation equals the source's (checked
here on a random input before anything is written); their other weights are drawn as
``DeepSampler`` draws them (``--seed``), so the branches learn as soon as training moves the
zeroed weights. New blocks go after the existing ones (``latent.blocks.<depth>...``).

Why not a wider or a fresh model: at this size the causal speech model levelled off (stage 3 of
issue 26 gained 0.04 dB in 1,400 steps); a block more costs 1.39x the frame step (see
``benchmarks/frame_cost.py``) and keeps every trained weight.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import torch

from deepsampler.errors import DeepSamplerError
from deepsampler.models import DeepSampler, load_checkpoint, save_checkpoint


def grow(model: DeepSampler, depth: int, seed: int = 0) -> DeepSampler:
    """A copy of ``model`` with ``depth`` RoFormer blocks, the new ones identities."""
    have = model.config.depth
    if depth <= have:
        raise DeepSamplerError(f"--depth {depth}: the model already has {have} block(s)")
    torch.manual_seed(seed)
    grown = DeepSampler(dataclasses.replace(model.config, depth=depth))
    state = grown.state_dict()
    for name, tensor in model.state_dict().items():
        state[name] = tensor.clone()
    for i in range(have, depth):
        for layer in ("time", "band"):
            prefix = f"latent.blocks.{i}.{layer}"
            for name in (".attn.out.weight", ".ff.net.4.weight", ".ff.net.4.bias"):
                state[prefix + name].zero_()
    grown.load_state_dict(state)
    return grown.eval()


def same_function(a: DeepSampler, b: DeepSampler, seconds: float = 1.0) -> float:
    """Largest absolute difference of the two models' separations of one random input."""
    cfg = a.config
    x = torch.randn(1, cfg.audio_channels, int(seconds * cfg.sample_rate)) * 0.1
    with torch.inference_mode():
        return float((a.eval()(x) - b.eval()(x)).abs().max())


def main(argv: list[str] | None = None) -> int:
    """Write the deepened checkpoint; 0 on success, 2 on a refused invocation."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", type=Path, help="a trained DeepSampler checkpoint")
    ap.add_argument("--depth", type=int, required=True, help="blocks in the grown model")
    ap.add_argument("--out", type=Path, required=True, help="checkpoint to write")
    ap.add_argument("--seed", type=int, default=0, help="draws the new blocks' other weights")
    ap.add_argument("--force", action="store_true", help="replace an existing --out")
    args = ap.parse_args(argv)
    if args.out.exists() and not args.force:
        print(f"error: {args.out} exists; give --force to replace it", file=sys.stderr)
        return 2
    try:
        loaded = load_checkpoint(args.checkpoint)
        if not isinstance(loaded.model, DeepSampler):
            raise DeepSamplerError(f"{args.checkpoint}: not a DeepSampler separator")
        grown = grow(loaded.model, args.depth, args.seed)
    except DeepSamplerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    diff = same_function(loaded.model, grown)
    if diff > 1e-5:  # the zeroed branches must leave the output as it was
        print(f"error: the grown model differs from the source by {diff:.2e}", file=sys.stderr)
        return 2
    training = dict(loaded.training or {})
    training["grown"] = {"from": str(args.checkpoint), "depth": args.depth, "seed": args.seed}
    metadata = {**loaded.metadata, "name": f"{loaded.metadata.get('name', 'model')}-d{args.depth}"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(args.out, grown, training=training, metadata=metadata)
    print(f"wrote {args.out}: depth {loaded.model.config.depth} -> {args.depth}, "
          f"{sum(p.numel() for p in grown.parameters()):,} parameters, "
          f"output unchanged (max difference {diff:.1e})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
