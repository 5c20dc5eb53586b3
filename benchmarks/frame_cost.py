#!/usr/bin/env python
"""What a bigger model would cost to stream: one-thread RTF of the ONNX frame step for a shipped
model's architecture and variants of it (random weights: speed does not depend on them).

Each variant is the base model's config with ``key=value`` changes (one ``--variant`` each,
comma-separated changes); ``opset=N`` exports that variant at ONNX opset ``N`` instead of the
package's (``deepsampler.export.onnx_engine.OPSET``). Rounds interleave the variants so that a
noisy machine slows them alike; the table gives the median RTF over rounds and its ratio to the
base.

    .venv/bin/python benchmarks/frame_cost.py --model speech-rt \\
        --variant attn_window=32 --variant depth=3 --variant enc_channels=48/64/96,dim=192 \\
        --json benchmarks/results/frame_cost.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepsampler.export.onnx_engine import OPSET, OnnxStreamingSeparator, export_onnx_bytes
from deepsampler.models import DeepSampler, load_checkpoint
from deepsampler.models.registry import resolve_model


def parse_variant(text: str) -> dict[str, Any]:
    """``depth=3,enc_channels=48/64/96`` -> ``{"depth": 3, "enc_channels": (48, 64, 96)}``."""
    changes: dict[str, Any] = {}
    for part in filter(None, text.split(",")):
        key, sep, value = part.partition("=")
        if not sep:
            raise SystemExit(f"--variant {text!r}: write key=value[,key=value...]")
        items = [int(v) if v.lstrip("-").isdigit() else float(v) for v in value.split("/")]
        changes[key.strip()] = tuple(items) if "/" in value else items[0]
    return changes


def seconds_per_run(engine: OnnxStreamingSeparator, audio: torch.Tensor, hop: int) -> float:
    """Wall seconds to stream ``audio [c, n]`` through ``engine`` four hops at a time."""
    state = engine.init_state()
    start = time.perf_counter()
    for i in range(0, audio.shape[-1], 4 * hop):
        _, state = engine.step(audio[:, i : i + 4 * hop], state)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="speech-rt", help="shipped name or checkpoint path")
    ap.add_argument("--variant", action="append", default=[], help="key=value[,key=value]")
    ap.add_argument("--seconds", type=float, default=8.0, help="audio streamed per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", type=Path, help="write the table as JSON")
    args = ap.parse_args(argv)

    torch.set_num_threads(1)
    base = load_checkpoint(resolve_model(args.model)).model.config
    import onnx

    variants = {"base": {}} | {v: parse_variant(v) for v in args.variant}
    engines, rows = {}, []
    for name, changes in variants.items():
        changes = dict(changes)
        opset = int(changes.pop("opset", OPSET))
        try:
            cfg = base.replace(**changes)
        except (TypeError, ValueError) as exc:
            raise SystemExit(f"--variant {name}: {exc}") from None
        torch.manual_seed(0)
        model = DeepSampler(cfg).eval()
        graph = export_onnx_bytes(model, opset=opset)
        engines[name] = OnnxStreamingSeparator(graph, cfg, threads=1)
        nodes = len(onnx.load_from_string(graph).graph.node)
        rows.append(
            {
                "variant": name,
                "opset": opset,
                "parameters": model.num_parameters(),
                "onnx_nodes": nodes,
            }
        )
    rng = np.random.default_rng(0)
    n = int(args.seconds * base.sample_rate)
    audio = torch.from_numpy(0.1 * rng.standard_normal((base.audio_channels, n)).astype("f4"))
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, engine in engines.items():
            times[name].append(seconds_per_run(engine, audio, base.hop) / args.seconds)
    base_rtf = float(np.median(times["base"]))
    print(f"{args.model}: ONNX frame step, 1 thread, median of {args.rounds} rounds")
    print("| variant | opset | parameters | ONNX nodes | RTF | x base |\n|---|---|---|---|---|---|")
    for row in rows:
        rtf = float(np.median(times[row["variant"]]))
        row |= {"rtf_1thread": round(rtf, 4), "ratio": round(rtf / base_rtf, 3)}
        print(
            f"| {row['variant']} | {row['opset']} | {row['parameters']:,} | {row['onnx_nodes']} "
            f"| {rtf:.3f} | {rtf / base_rtf:.2f} |"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        result = {
            "model": args.model,
            "rounds": args.rounds,
            "seconds": args.seconds,
            "machine": platform.machine(),
            "rows": rows,
        }
        args.json.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
