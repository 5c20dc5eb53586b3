"""How far can a StemProver latent edit go, and how far does the model take it?

On separator pairs of a *validation* split (music4-rt's outputs against the true stems; never the
test split or ../shared/eval), this measures in one table:

* the **oracle edits**: the degraded latent moved a fraction ``a`` of the way to the target latent
  (the clean stem's own, and the keep-phase target: clean magnitude with the output's phase), and
  decoded like any edit — the headroom of the latent space;
* the **model**: latent MSE to the target after sampling (identity = the degraded latent) and the
  SNR change of the decoded edit, for each strength and step count.

    .venv/bin/python benchmarks/stemprover_headroom.py \
        --model experiments/stemprover/stemprover.pt --data data/music4-4h --split valid

Prints the table and writes OUT/headroom.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import torch

from deepsampler.stemprover.checkpoint import load_stemprover
from deepsampler.stemprover.diffusion import sample
from deepsampler.stemprover.model import keep_phase
from deepsampler.stemprover.pairs import (
    SEPARATOR,
    PairConfig,
    PairSampler,
    cache_separator_outputs,
)
from deepsampler.stemprover.train import negative_snr_db


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="StemProver file")
    ap.add_argument("--data", default="data/music4-4h", help="corpus root")
    ap.add_argument("--split", default="valid", help="a validation split (default: %(default)s)")
    ap.add_argument("--tracks", type=int, default=6, help="tracks to separate and draw from")
    ap.add_argument("--pairs", type=int, default=16, help="1.5 s pairs to score")
    ap.add_argument("--strengths", default="0.2,0.4")
    ap.add_argument("--steps", default="1,4")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("experiments/bench/stemprover-headroom"))
    args = ap.parse_args(argv)
    if "test" in args.split:
        ap.error("use a validation split: test splits are for the benchmark only")
    torch.set_num_threads(args.threads)
    model, _ = load_stemprover(args.model)
    cache = args.out / f"cache-{args.split}"
    split = Path(args.data) / args.split
    cache_separator_outputs(split, cache, "music4-rt", args.tracks, progress=False)
    config = dataclasses.replace(
        PairConfig(), root=args.data, split=args.split, separator_cache=str(cache)
    )
    d, c, mix, _ = PairSampler(config).batch(
        np.random.default_rng(args.seed), args.pairs, SEPARATOR
    )
    d, c, mix = (torch.from_numpy(a) for a in (d, c, mix))
    rows = []
    with torch.no_grad():
        feats, phase, z = model.analyse(d)
        f_clean, f_mix = model.features(c[:, None]), model.features(mix[:, None])
        base_snr = -negative_snr_db(d, c)

        def score(label: str, z_hat: torch.Tensor, target: torch.Tensor) -> None:
            out = model.apply_latent_edit(feats, z, z_hat, d.shape[-1], f_mix)
            gain = float((-negative_snr_db(out, c) - base_snr).mean())
            mse = float((z_hat - target).pow(2).mean())
            rows.append({"edit": label, "latent_mse": mse, "delta_snr_db": gain})
            print(f"  {label:<40} latent MSE {mse:.4f}   dSNR {gain:+.2f} dB", flush=True)

        targets = {"clean": model.autoencoder.encode(f_clean)}
        targets["keep-phase"] = model.autoencoder.encode(keep_phase(f_clean, feats, f_mix))
        target = targets["keep-phase" if model.config.keep_phase else "clean"]
        score("identity", z, target)
        for name, t in targets.items():
            for a in (0.25, 0.5, 1.0):
                score(f"oracle {name} x{a}", z + a * (t - z), t)
        control = model.condition(z, phase, model.mixture_latent(z, f_mix))
        for s in (float(x) for x in args.strengths.split(",")):
            for k in (int(x) for x in args.steps.split(",")):
                gen = torch.Generator().manual_seed(args.seed)
                z_hat = sample(model.denoiser, z, control, model.config.diffusion, k, s, gen)
                score(f"model strength {s} steps {k}", z_hat, target)
    args.out.mkdir(parents=True, exist_ok=True)
    payload = {"command": " ".join(sys.argv), "model": args.model, "rows": rows}
    (args.out / "headroom.json").write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
