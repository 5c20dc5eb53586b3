#!/usr/bin/env python
"""How much of its representation's ceiling a speech model reaches: per set, the mean SI-SDR
improvement (whole items, mono) of the model's offline pass and of the oracle ideal ratio mask
at the model's own STFT with the mixture's phase (IRM2, power ratio), and their ratio.

    .venv/bin/python benchmarks/speech_ceiling.py stages/speech-rt-real-s2.pt \\
        data/speech-real-6h/valid:24 ../shared/eval/real-speech experiments/heldout-speech \\
        --json benchmarks/results/speech_ceiling.json

A set is a two-source folder (``DIR/<item>/{mixture,speech,noise}.*``); ``DIR:N`` takes its
first N items. A model far below the ceiling on its own training corpus's valid split underfits
(capacity, training time); one near it there but far below on real sets fails to generalise.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from deepsampler.evaluation.metrics import si_sdr
from deepsampler.evaluation.oracle import ideal_ratio_mask
from deepsampler.models import load_checkpoint


def read_mono(folder: Path, name: str) -> np.ndarray:
    """``folder/name.*`` as ``[1, n]`` float32, channels averaged."""
    path = next(folder.glob(f"{name}.*"), None)
    if path is None:
        raise SystemExit(f"error: {folder}: no {name}.* file")
    audio, _ = sf.read(path, dtype="float32", always_2d=True)
    return audio.T.mean(axis=0, keepdims=True)


def score_set(model, folder: Path, limit: int | None) -> dict:
    cfg = model.config
    items = sorted(p for p in folder.iterdir() if p.is_dir())[:limit]
    if not items:
        raise SystemExit(f"error: {folder}: no item folders")
    ours, irm = [], []
    for item in items:
        mix, speech, noise = (read_mono(item, n) for n in ("mixture", "speech", "noise"))
        base = float(si_sdr(speech, mix)[0])
        oracle = ideal_ratio_mask(mix, np.stack([speech, noise]), cfg.n_fft, cfg.hop, 2)
        irm.append(float(si_sdr(speech, oracle[0])[0]) - base)
        with torch.inference_mode():
            est = model(torch.from_numpy(mix)[None])[0, cfg.sources.index("speech")].numpy()
        ours.append(float(si_sdr(speech, est)[0]) - base)
    return {
        "set": str(folder),
        "items": len(items),
        "model_si_sdr_i": float(np.mean(ours)),
        "irm2_si_sdr_i": float(np.mean(irm)),
        "share": float(np.mean(ours) / np.mean(irm)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="a speech checkpoint (or shipped name)")
    ap.add_argument("sets", nargs="+", help="two-source folders, DIR or DIR:N")
    ap.add_argument("--json", type=Path, help="write the rows here")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    from deepsampler.models.registry import resolve_model

    model = load_checkpoint(resolve_model(args.model)).model.eval()
    if "speech" not in model.config.sources:
        print(f"error: {args.model} has no speech source", file=sys.stderr)
        return 2
    rows = []
    for spec in args.sets:
        folder, _, n = spec.partition(":")
        rows.append(score_set(model, Path(folder), int(n) if n else None))
    print("| set | items | model SI-SDRi | IRM2 SI-SDRi (ceiling) | share |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['set']} | {r['items']} | {r['model_si_sdr_i']:+.2f} dB "
            f"| {r['irm2_si_sdr_i']:+.2f} dB | {r['share']:.0%} |"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"model": args.model, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
