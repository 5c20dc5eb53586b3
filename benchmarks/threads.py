#!/usr/bin/env python
"""Threads and engines: which defaults make separation fastest on this machine.

Two measurements, each setting run in turn within every repeat (so that a busy spell of a shared
machine hits all settings alike), medians over the repeats:

* offline: ``Separator.separate`` of a SECONDS-long stereo clip (several lengths) with 1 torch
  thread and with one per core; RTF = compute time / audio duration;
* streaming: the torch and onnx engines fed hop by hop, with 1 thread and with one per core;
  RTF = total compute / audio duration, missed = hops whose compute exceeded the hop.

    .venv/bin/python benchmarks/threads.py --json experiments/bench/threads.json
    .venv/bin/python benchmarks/threads.py --load 1 --json experiments/bench/threads-load1.json

``--load N`` keeps N other processes spinning on the CPU meanwhile: a busy machine, where a
thread per core has to share its core.

The CLI's defaults (1 thread for streaming, the onnx engine where installed, 1 thread for offline
separation of short files) are chosen from this table; the README quotes it.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from deepsampler.separator import Separator


def offline_rtf(sep: Separator, x: np.ndarray, threads: int) -> float:
    torch.set_num_threads(threads)
    start = time.perf_counter()
    sep.separate(x, sep.sample_rate)
    return (time.perf_counter() - start) / (x.shape[-1] / sep.sample_rate)


def streaming_run(engine, x: np.ndarray, hop: int, threads: int) -> tuple[float, int]:
    """Feed ``x [c, n]`` hop by hop; (RTF, missed deadlines)."""
    torch.set_num_threads(threads)
    state = engine.init_state()
    missed, total = 0, 0.0
    for i in range(0, x.shape[-1] - hop + 1, hop):
        block = torch.from_numpy(np.ascontiguousarray(x[:, i : i + hop]))
        start = time.perf_counter()
        _, state = engine.step(block, state)
        took = time.perf_counter() - start
        total += took
        missed += int(took > hop / engine.config.sample_rate)
    return total / (x.shape[-1] / engine.config.sample_rate), missed


def _spin(stop) -> None:
    """A busy process: keeps one core occupied until ``stop`` is set."""
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="music4-rt")
    ap.add_argument("--offline-seconds", type=float, nargs="+", default=[5.0, 60.0])
    ap.add_argument("--stream-seconds", type=float, default=8.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--load", type=int, default=0, help="busy processes meanwhile (default 0)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if args.repeats < 1:
        ap.error("--repeats must be >= 1")
    cores = os.cpu_count() or 1
    thread_counts = sorted({1, cores})
    sep = Separator(args.model, shifts=1, flip=False)
    cfg = sep.config
    rng = np.random.default_rng(0)

    def clip(seconds: float) -> np.ndarray:
        n = round(seconds * cfg.sample_rate)
        return rng.uniform(-0.5, 0.5, (cfg.audio_channels, n)).astype(np.float32)

    offline = {(s, t): [] for s in args.offline_seconds for t in thread_counts}
    clips = {s: clip(s) for s in args.offline_seconds}
    sep.separate(clips[args.offline_seconds[0]][:, : cfg.sample_rate], cfg.sample_rate)  # warm-up
    engines = {}
    for kind in ("torch", "onnx"):
        for t in thread_counts:
            try:
                engines[(kind, t)] = sep.streaming_engine(kind, t)
            except Exception as exc:  # onnxruntime missing: say so in the table
                print(f"skipping the {kind} engine: {exc}")
                break
    streaming = {k: [] for k in engines}
    stream_clip = clip(args.stream_seconds)
    stop = multiprocessing.Event()
    spinners = [multiprocessing.Process(target=_spin, args=(stop,)) for _ in range(args.load)]
    for p in spinners:
        p.start()
    try:
        for _ in range(args.repeats):
            for (s, t), runs in offline.items():
                runs.append(offline_rtf(sep, clips[s], t))
            for (kind, t), runs in streaming.items():
                runs.append(streaming_run(engines[(kind, t)], stream_clip, cfg.hop, t))
    finally:
        stop.set()
        for p in spinners:
            p.join()

    rows = []
    print(
        f"model {args.model} | {cores} cores | {args.load} busy process(es) | medians of "
        f"{args.repeats} interleaved runs\n"
    )
    print("| mode | input | engine | threads | RTF | missed hops |")
    print("|---|---|---|---|---|---|")
    for (s, t), runs in offline.items():
        rtf = statistics.median(runs)
        rows.append({"mode": "offline", "seconds": s, "engine": "torch", "threads": t, "rtf": rtf})
        print(f"| offline | {s:g} s | torch | {t} | {rtf:.3f} | |")
    hops = int(stream_clip.shape[-1] // cfg.hop)
    for (kind, t), runs in streaming.items():
        rtf = statistics.median(r for r, _ in runs)
        missed = statistics.median(m for _, m in runs)
        rows.append(
            {
                "mode": "streaming",
                "seconds": args.stream_seconds,
                "engine": kind,
                "threads": t,
                "rtf": rtf,
                "missed": missed,
                "hops": hops,
            }
        )
        print(
            f"| streaming | {args.stream_seconds:g} s | {kind} | {t} | {rtf:.3f} | "
            f"{missed:g} of {hops} |"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "model": args.model,
            "cores": cores,
            "repeats": args.repeats,
            "machine": platform.processor() or platform.machine(),
            "torch": torch.__version__,
            "rows": rows,
        }
        args.json.write_text(json.dumps(record, indent=2))
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
