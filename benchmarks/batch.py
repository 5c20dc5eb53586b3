#!/usr/bin/env python
"""Catalogue throughput: hours of audio separated per hour of wall time with ``--jobs 1``,
``--jobs 2`` and Ray with 2 actors, on this machine, in one run; and Ray's overhead per file.

Each runner separates the same generated catalogue (FILES stereo files of SECONDS each, noise
plus tones at 44.1 kHz) into a fresh output folder through the same code as the CLI
(``deepsampler.batch``: plan, runner, manifest); wall time runs from the plan to the last
manifest line and includes starting the workers (or actors), which a long catalogue amortises.
The local Ray is started once, before the timed runs, and its start-up reported on its own;
so is the pool's forkserver (an untimed one-file run).
Ray's per-file overhead is measured on TINY_FILES short files, where the work per file is
small: steady-state seconds per file (after the first outcome) of Ray minus that of ``--jobs``
with as many processes.

    .venv/bin/python benchmarks/batch.py --json experiments/bench/batch.json

Without Ray installed (``pip install 'deepsampler[cluster]'``) the Ray rows are skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from deepsampler.batch import Manifest, SeparationJob, execute, plan_run
from deepsampler.batch.local import run_pool
from deepsampler.separator import Separator

SR = 44100


def make_catalogue(folder: Path, files: int, seconds: float) -> list[tuple[Path, str]]:
    """``files`` stereo files of ``seconds`` s each: tones and noise, seeded."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * SR)) / SR
    found = []
    for i in range(files):
        tones = [0.2 * np.sin(2 * np.pi * (110 * (1 + i % 7) + 55 * c) * t) for c in range(2)]
        audio = np.stack(tones) + 0.05 * rng.standard_normal((2, t.size))
        sf.write(str(folder / f"f{i:03d}.wav"), audio.T.astype(np.float32), SR)
        found.append((folder / f"f{i:03d}.wav", f"f{i:03d}"))
    return found


def timed_run(sep: Separator, model: str, files, out: Path, runner: str, n: int) -> dict:
    """Separate ``files`` into ``out`` with ``n`` processes (``jobs``) or actors (``ray``)."""
    job = SeparationJob.from_separator(sep, model, out, None, "wav", 1)
    first: list[float] = []
    start = time.perf_counter()
    with Manifest(out) as manifest:
        plan = plan_run(files, job, manifest, False)
        if runner == "ray":
            from deepsampler.batch.ray_runner import run_ray

            outcomes = run_ray(job, plan.todo, actors=n)
        else:
            outcomes = run_pool(job, plan.todo, n)

        def seen(outcome) -> None:
            if not first:
                first.append(time.perf_counter() - start)

        summary = execute(plan, outcomes, manifest, job, on_outcome=seen)
    wall = time.perf_counter() - start
    if summary.failed:
        raise SystemExit(f"{runner} x{n}: {summary.failures[:3]}")
    audio = sum(sf.info(str(f)).duration for f, _ in files)
    return {
        "runner": f"--jobs {n}" if runner == "jobs" else f"Ray, {n} actors",
        "files": len(files),
        "audio_hours": round(audio / 3600, 5),
        "wall_s": round(wall, 2),
        "first_file_s": round(first[0], 2),
        "hours_per_hour": round(audio / wall, 2),
        "steady_s_per_file": round((wall - first[0]) / max(1, len(files) - 1), 4),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="music4-rt")
    ap.add_argument("--files", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--tiny-files", type=int, default=40)
    ap.add_argument("--tiny-seconds", type=float, default=0.5)
    ap.add_argument("--no-ray", action="store_true", help="skip the Ray rows")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    torch.set_num_threads(1)
    sep = Separator(args.model)
    try:
        import ray
    except ImportError:
        ray = None
        print("ray is not installed: the Ray rows are skipped (pip install 'deepsampler[cluster]')")
    use_ray = ray is not None and not args.no_ray
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        root = Path(tmp)
        files = make_catalogue(root / "catalogue", args.files, args.seconds)
        tiny = make_catalogue(root / "tiny", args.tiny_files, args.tiny_seconds)
        rows, ray_start = [], None
        # untimed: starts the pool's forkserver (once per process), which the first timed
        # runner would otherwise pay alone
        timed_run(sep, args.model, tiny[:1], root / "warm-up", "jobs", 1)
        for n in (1, 2):
            rows.append(timed_run(sep, args.model, files, root / f"jobs{n}", "jobs", n))
            print(f"done --jobs {n}", flush=True)
        tiny_rows = [timed_run(sep, args.model, tiny, root / "tiny-jobs", "jobs", 2)]
        if use_ray:
            start = time.perf_counter()
            ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level="ERROR")
            ray_start = round(time.perf_counter() - start, 2)
            rows.append(timed_run(sep, args.model, files, root / "ray2", "ray", 2))
            tiny_rows.append(timed_run(sep, args.model, tiny, root / "tiny-ray", "ray", 2))
            ray.shutdown()
            print("done Ray", flush=True)
    overhead = None
    if len(tiny_rows) == 2:
        overhead = round(tiny_rows[1]["steady_s_per_file"] - tiny_rows[0]["steady_s_per_file"], 4)

    print(
        f"\n{args.files} files x {args.seconds:g} s, model {args.model}, 1 thread per worker "
        f"({platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__})\n"
    )
    print("| runner | audio (h) | wall (s) | first file (s) | h of audio per hour |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['runner']} | {r['audio_hours']:.4f} | {r['wall_s']:.1f} | "
            f"{r['first_file_s']:.1f} | {r['hours_per_hour']:.1f} |"
        )
    if ray_start is not None:
        print(f"\nlocal Ray start-up (ray.init): {ray_start:.1f} s, not in the rows above")
    print(f"\n{args.tiny_files} files x {args.tiny_seconds:g} s, steady seconds per file:")
    for r in tiny_rows:
        print(f"- {r['runner']}: {r['steady_s_per_file']:.3f} s")
    if overhead is not None:
        print(f"- Ray's overhead per file: {overhead * 1000:.0f} ms")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        result = {
            "model": args.model,
            "files": args.files,
            "seconds": args.seconds,
            "cores": os.cpu_count(),
            "torch": torch.__version__,
            "ray": getattr(ray, "__version__", None),
            "rows": rows,
            "ray_start_s": ray_start,
            "tiny": {"files": args.tiny_files, "seconds": args.tiny_seconds, "rows": tiny_rows},
            "ray_overhead_s_per_file": overhead,
        }
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
