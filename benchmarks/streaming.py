#!/usr/bin/env python
"""Streaming speed: latency, per-hop compute p50/p99 and real-time factor on 1 and 2 threads,
for DeepSampler's PyTorch and onnxruntime engines and, in the same run on the same input, the
`hs-tasnet` package's small model (random weights) as the peer.

Models: `toy4-demo` (the shipped `small` architecture, 44.1 kHz stereo, 23.2 ms; `music4-rt`
will share it) and a speech-shaped configuration (16 kHz mono, 16 ms; random weights, as
`speech-rt` has not shipped). Speed does not depend on the weights.

    .venv/bin/python benchmarks/streaming.py --json experiments/bench/streaming.json

The peer is installed by `scripts/install_peers.sh` (see ../shared/PEERS.md); without it
the peer row is skipped with a note.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from deepsampler.export.onnx_engine import OnnxStreamingSeparator
from deepsampler.models import DeepSampler, load_checkpoint, preset_config, shipped_models
from deepsampler.streaming import StreamingSeparator


def time_engine(engine, audio: torch.Tensor, hop: int, warmup: int = 20) -> np.ndarray:
    """Per-hop compute times (ms) of feeding ``audio [c, n]`` one hop at a time."""
    state = engine.init_state()
    times = []
    for i in range(0, audio.shape[-1] - hop + 1, hop):
        start = time.perf_counter()
        _, state = engine.step(audio[:, i : i + hop], state)
        times.append(1000 * (time.perf_counter() - start))
    return np.asarray(times[warmup:])


def summarise(times_by_threads: dict[int, np.ndarray], hop_ms: float) -> dict[str, float]:
    one = times_by_threads[1]
    return {
        "hop_ms": round(hop_ms, 3),
        "p50_ms": round(float(np.percentile(one, 50)), 3),
        "p99_ms": round(float(np.percentile(one, 99)), 3),
        "rtf_1thread": round(float(one.mean() / hop_ms), 4),
        "rtf_2threads": round(float(times_by_threads[2].mean() / hop_ms), 4),
    }


def hs_tasnet_peer():
    """The hs-tasnet package's model class, imported behind peer_stubs' stand-ins for the
    I/O, plotting and data packages it imports but its model does not use."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import peer_stubs  # noqa: F401
    from hs_tasnet import HSTasNet

    return HSTasNet


class HsTasNetEngine:
    """hs-tasnet's own streaming function behind init_state/step (state lives in its closure,
    which is the package's design, not ours)."""

    def __init__(self, model) -> None:
        self.model = model
        self.latency_samples = (
            model.segment_len
        )  # one analysis window, as ../shared/PEERS.md measured

    def init_state(self):
        return self.model.init_stateful_transform_fn(device="cpu")

    def step(self, x, fn):
        return fn(x), fn


def test_input(channels: int, sample_rate: int, seconds: float) -> torch.Tensor:
    """The benchmark's input ``[c, n]``: the same samples for every system at a given format."""
    gen = torch.Generator().manual_seed(sample_rate * 10 + channels)
    return torch.rand(channels, int(seconds * sample_rate), generator=gen) * 0.2 - 0.1


def stand_ins() -> dict[str, DeepSampler]:
    """The shipped real-time models, or the same architectures where one has not shipped yet
    (speed does not depend on the weights)."""
    shipped = shipped_models()
    models: dict[str, DeepSampler] = {}
    if "music4-rt" in shipped:
        models["music4-rt"] = load_checkpoint(shipped["music4-rt"]).model
    else:
        models["toy4-demo (small, music4-rt architecture)"] = load_checkpoint(
            shipped["toy4-demo"]
        ).model
    if "speech-rt" in shipped:
        models["speech-rt"] = load_checkpoint(shipped["speech-rt"]).model
    else:
        speech = preset_config(
            "small",
            sources=["speech", "noise"],
            sample_rate=16000,
            audio_channels=1,
            n_fft=256,
            hop=128,
            freq_strides=[2, 2, 2],
            band_width=2,
        )
        models["speech config (16 kHz mono, random weights)"] = DeepSampler(speech).eval()
    return models


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    torch.manual_seed(0)
    models = stand_ins()
    rows, peers = [], []
    for name, model in models.items():
        cfg = model.config
        audio = test_input(cfg.audio_channels, cfg.sample_rate, args.seconds)
        hop_ms = 1000 * cfg.hop / cfg.sample_rate
        for engine_name in ("torch", "onnx"):
            times = {}
            for threads in (1, 2):
                torch.set_num_threads(threads)
                engine = (
                    StreamingSeparator(model)
                    if engine_name == "torch"
                    else OnnxStreamingSeparator.from_model(model, threads=threads)
                )
                times[threads] = time_engine(engine, audio, cfg.hop)
            rows.append(
                {
                    "model": name,
                    "engine": engine_name,
                    "latency_ms": round(cfg.latency_ms, 2),
                    **summarise(times, hop_ms),
                    "parameters": model.num_parameters(),
                }
            )
            print(f"done {name} {engine_name}", flush=True)
    try:
        HSTasNet = hs_tasnet_peer()
        torch.manual_seed(0)
        peer = HSTasNet(dim=128, small=True, num_basis=256).eval()
        engine = HsTasNetEngine(peer)
        audio = test_input(2, 44100, args.seconds)  # the same input as the 44.1 kHz model
        times = {}
        for threads in (1, 2):
            torch.set_num_threads(threads)
            times[threads] = time_engine(engine, audio, peer.overlap_len)
        peers.append(
            {
                "model": "hs-tasnet HSTasNet(dim=128, small=True, num_basis=256)",
                "engine": "torch",
                "latency_ms": round(1000 * engine.latency_samples / 44100, 2),
                **summarise(times, 1000 * peer.overlap_len / 44100),
                "parameters": sum(p.numel() for p in peer.parameters()),
            }
        )
    except ImportError as exc:
        print(f"peer hs-tasnet skipped: {exc}")

    print(
        f"\nStreaming one hop at a time over {args.seconds:g} s ({platform.machine()}, "
        f"torch {torch.__version__}); p50/p99 on 1 thread\n"
    )
    print("| model | engine | params | latency | hop | p50 | p99 | RTF 1 thread | RTF 2 threads |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows + peers:
        print(
            f"| {r['model']} | {r['engine']} | {r['parameters'] / 1e6:.2f} M | "
            f"{r['latency_ms']:.1f} ms | {r['hop_ms']:.1f} ms | {r['p50_ms']:.2f} ms | "
            f"{r['p99_ms']:.2f} ms | {r['rtf_1thread']:.3f} | {r['rtf_2threads']:.3f} |"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = {
            "results": rows,
            "peers": peers,
            "seconds": args.seconds,
            "torch": torch.__version__,
        }
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
