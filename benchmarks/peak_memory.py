#!/usr/bin/env python
"""Peak memory of `deepsampler separate` on a long generated stereo file.

Writes a MINUTES-long stereo noise-and-tones file, separates it in a child process and reports
the child's peak resident memory (VmHWM). Prints a table and writes JSON.

    .venv/bin/python benchmarks/peak_memory.py --minutes 10 --model toy4-demo --json out.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

# The child reports its own peak: VmHWM of its address space, which starts fresh at exec.
# (ru_maxrss would not do: RUSAGE_CHILDREN counts every earlier child of the caller, and even a
# child's RUSAGE_SELF keeps the RSS it had as a fork of the caller before exec — a big pytest
# process made a 650 MB separation read 2 GB.)
CHILD = (
    "import sys\n"
    "from deepsampler.cli import main\n"
    "rc = main(sys.argv[1:])\n"
    "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0].split()[1]\n"
    "print('peak_rss_kb', hwm, file=sys.stderr)\n"
    "sys.exit(rc)\n"
)


def write_long_file(path: Path, minutes: float, sample_rate: int) -> float:
    """Write ``minutes`` of 16-bit stereo audio block by block; return its length in seconds."""
    total = int(minutes * 60 * sample_rate)
    rng = np.random.default_rng(0)
    with sf.SoundFile(str(path), "w", sample_rate, 2, subtype="PCM_16") as f:
        for start in range(0, total, sample_rate * 10):
            n = min(sample_rate * 10, total - start)
            t = (start + np.arange(n)) / sample_rate
            block = 0.2 * np.sin(2 * np.pi * 220 * t)[:, None] + 0.05 * rng.standard_normal((n, 2))
            f.write(block.astype(np.float32))
    return total / sample_rate


def measure(minutes: float, model: str, sample_rate: int, threads: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        song = Path(tmp) / "long.wav"
        seconds = write_long_file(song, minutes, sample_rate)
        cmd = [
            sys.executable,
            "-c",
            CHILD,
            "separate",
            str(song),
            "-o",
            str(Path(tmp) / "out"),
            "--model",
            model,
            "-q",
            "--threads",
            str(threads),
        ]
        start = time.perf_counter()
        done = subprocess.run(cmd, check=True, capture_output=True, text=True)
        wall = time.perf_counter() - start
        peak_mb = int(done.stderr.strip().splitlines()[-1].split()[-1]) / 1024
        written = sum(p.stat().st_size for p in (Path(tmp) / "out").rglob("*")) / 1e6
    return {
        "model": model,
        "audio_seconds": seconds,
        "sample_rate": sample_rate,
        "peak_rss_mb": round(peak_mb, 1),
        "wall_seconds": round(wall, 1),
        "output_mb": round(written, 1),
        "threads": threads,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--model", default="toy4-demo")
    ap.add_argument("--sample-rate", type=int, default=44100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    r = measure(args.minutes, args.model, args.sample_rate, args.threads)
    print("| model | audio | peak RSS | wall | output written |")
    print("|---|---|---|---|---|")
    print(
        f"| {r['model']} | {r['audio_seconds'] / 60:.1f} min @ {r['sample_rate']} Hz stereo | "
        f"{r['peak_rss_mb']:.0f} MB | {r['wall_seconds']:.0f} s | {r['output_mb']:.0f} MB |"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(r, indent=2))


if __name__ == "__main__":
    main()
