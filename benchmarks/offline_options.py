"""Which offline inference options pay? SDR per source for the Wiener post-filter (off, soft
mask, 1/2 EM iterations) and test-time averaging over frame grids and channel swaps.

Choose a setting on a *validation* split (never on ../shared/eval), then report test numbers.

    .venv/bin/python benchmarks/offline_options.py --model music4-hq --data data/music4-4h/valid \
        --limit 6 --out experiments/bench/offline-hq

Prints a table (BSS Eval v4 SDR, museval-style medians, whole-track uSDR and the seconds each
setting took) and writes OUT/offline_options.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from deepsampler.audio import read_audio
from deepsampler.evaluation.metrics import museval_scores, usdr
from deepsampler.separator import Separator

#: Separator keyword arguments of each setting (every one explicit: a model may carry its own
#: default passes, and "off" must be one plain pass whatever the model says).
ONE_PASS = {"shifts": 1, "flip": False}
SETTINGS: dict[str, dict] = {
    "off": ONE_PASS,
    "softmask": {**ONE_PASS, "wiener": 0},
    "em1": {**ONE_PASS, "wiener": 1},
    "em2": {**ONE_PASS, "wiener": 2},
    "flip": {"shifts": 1, "flip": True},
    "shift2": {"shifts": 2, "flip": False},
    "shift4": {"shifts": 4, "flip": False},
    "shift2flip": {"shifts": 2, "flip": True},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="music4-hq")
    ap.add_argument("--data", type=Path, required=True, help="split folder (MUSDB layout)")
    ap.add_argument("--limit", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--settings",
        default="off,softmask,flip,shift2,shift2flip",
        help="subset of " + ",".join(SETTINGS),
    )
    ap.add_argument("--out", type=Path, default=Path("experiments/bench/offline_options"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tracks = sorted(p for p in args.data.iterdir() if any(p.glob("mixture.*")))[: args.limit]
    if not tracks:
        raise SystemExit(f"{args.data}: no <track>/mixture.* folders")
    settings = [s for s in args.settings.split(",") if s]
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise SystemExit(f"unknown settings {unknown}; choose from {', '.join(SETTINGS)}")
    seps = {s: Separator(args.model, **SETTINGS[s]) for s in settings}
    sources = next(iter(seps.values())).sources
    scores = {s: {"sdr": [], "usdr": [], "seconds": 0.0} for s in settings}
    for track in tracks:
        mix, rate = read_audio(next(track.glob("mixture.*")))
        refs = np.stack([read_audio(next(track.glob(f"{src}.*")))[0] for src in sources])
        for s, sep in seps.items():
            start = time.perf_counter()
            est = sep.separate(mix, rate)
            scores[s]["seconds"] += time.perf_counter() - start
            est = np.stack([est[src] for src in sources])
            scores[s]["sdr"].append(museval_scores(refs, est, rate)["sdr"])
            scores[s]["usdr"].append(usdr(refs, est))
        print(f"{track.name}: done", flush=True)
    rows = {}
    lines = [
        f"| {args.model} on {args.data} ({len(tracks)} tracks) | "
        + " | ".join(sources)
        + " | mean SDR | mean uSDR | seconds |",
        "|---" * (len(sources) + 4) + "|",
    ]
    for s in settings:
        sdr = np.nanmedian(np.array(scores[s]["sdr"]), axis=0)  # median over tracks, as museval
        u = np.nanmean(np.array(scores[s]["usdr"]), axis=0)
        rows[s] = {
            "sdr": dict(zip(sources, sdr.round(3).tolist(), strict=True)),
            "mean_sdr": float(np.mean(sdr)),
            "mean_usdr": float(np.mean(u)),
            "seconds": round(scores[s]["seconds"], 2),
        }
        lines.append(
            f"| {s} | "
            + " | ".join(f"{x:.2f}" for x in sdr)
            + f" | {np.mean(sdr):.2f} | {np.mean(u):.2f} | {scores[s]['seconds']:.1f} |"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    payload = {"model": args.model, "data": str(args.data), "tracks": len(tracks), "rows": rows}
    (args.out / "offline_options.json").write_text(json.dumps(payload, indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
