"""Ship a StemProver run: copy its model (and regression control) into the package and write the
model card from the run's config, its training log and a benchmark result.

    .venv/bin/python scripts/ship_stemprover.py --run experiments/stemprover-cpu \
        --bench experiments/bench/stemprover/stemprover.json \
        --notes scripts/card_notes/stemprover.md

Writes src/deepsampler/pretrained/stemprover/stemprover.pt, stemprover-regression.pt and
stemprover.md (a folder of their own: ``deepsampler.models.registry`` lists them with kinds
``stemprover`` and ``stemprover-regression``; ``--model`` takes only pretrained/*.pt).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from deepsampler.evaluation.stemprover_bench import markdown
from deepsampler.stemprover.checkpoint import (
    load_regression,
    load_stemprover,
    save_regression,
    save_stemprover,
)
from deepsampler.stemprover.enhancer import STEMPROVER_DIR


def training_table(run: Path) -> str:
    """Steps and last logged loss per stage, from every metrics file of the run."""
    stages: dict[str, dict] = {}
    for path in sorted(run.glob("metrics*.jsonl")):
        for line in path.read_text().splitlines():
            rec = json.loads(line)
            st = stages.setdefault(rec["stage"], {"steps": 0, "loss": None, "file": path.name})
            if "step" in rec:
                st["steps"] = max(st["steps"], rec["step"])
                st["loss"] = rec["loss"]
            if "stopped_early_at" in rec:
                st["stopped"] = rec["stopped_early_at"]
    lines = ["| stage | steps | last logged loss | log |", "|---|---|---|---|"]
    for name, st in stages.items():
        steps = st.get("stopped", st["steps"])
        loss = f"{st['loss']:.4f}" if st["loss"] is not None else "-"
        lines.append(f"| {name} | {steps} | {loss} | {st['file']} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument(
        "--bench",
        type=Path,
        nargs="+",
        required=True,
        help="benchmarks/stemprover.py JSON files (each a section of the card's results)",
    )
    ap.add_argument("--notes", type=Path, help="Markdown appended to the card (data, hardware)")
    ap.add_argument("--name", default="stemprover")
    ap.add_argument(
        "--steps",
        type=int,
        help="the shipped model's default sampling steps (0: the predictive stage alone), "
        "chosen on validation; default: its diffusion config's",
    )
    args = ap.parse_args()
    model_path = args.run / "stemprover.pt"
    model, extra = load_stemprover(model_path)
    needed = {"autoencoder", "base", "control", "adapters"}
    if model.predictor is not None:
        needed.add("predictor")
    if not needed <= set(extra.get("stages_done", [])):
        raise SystemExit(f"{model_path}: unfinished ({extra.get('stages_done')}); train it first")
    if args.steps is not None and args.steps < 0:
        raise SystemExit(f"--steps {args.steps}: use 0 (the predictive stage alone) or more")
    if args.steps == 0 and model.predictor is None:
        raise SystemExit("--steps 0 runs the predictive stage alone; this model has none")
    benches = [json.loads(path.read_text()) for path in args.bench]
    STEMPROVER_DIR.mkdir(parents=True, exist_ok=True)
    dest = STEMPROVER_DIR / f"{args.name}.pt"
    # saved anew rather than copied: the current format (a guide by digest, not its weights)
    save_stemprover(
        dest, model, extra if args.steps is None else {**extra, "inference": {"steps": args.steps}}
    )
    steps = model.config.diffusion.steps if args.steps is None else args.steps
    reg = args.run / "regression.pt"
    if reg.is_file():
        # verified against the model (one loader, sizes checked) and written anew
        save_regression(load_regression(model, reg), STEMPROVER_DIR / f"{args.name}-regression.pt")
    parts = ("predictor", "autoencoder", "denoiser", "control")
    params = {
        n: sum(p.numel() for p in getattr(model, n).parameters() if p.requires_grad)
        for n in parts
        if getattr(model, n) is not None
    }
    guide = model.predictor.config.guide if model.predictor is not None else None
    guide_params = sum(p.numel() for p in model.predictor.guide_model.parameters()) if guide else 0
    adapters = {
        n: sum(v.numel() for k, v in model.denoiser.state_dict().items() if f".{n}." in k)
        for n in model.adapters
    }
    card = [
        f"# {args.name}: StemProver artifact refiner",
        "",
        "Refines a separated stem: "
        + (
            "a predictive stage (a non-causal mask refiner reading the stem and its mixture"
            + (f", guided by our offline separator {guide}'s estimate" if guide else "")
            + ") estimates it first; then "
            if model.predictor is not None
            else ""
        )
        + "detects bleed, musical noise, band-limiting and phase smear per "
        "band, then edits the stem's latent with a few DDIM steps of a latent-diffusion model "
        "steered by a zero-conv control branch and the detected artifacts' LoRA adapters "
        "(`deepsampler enhance`, `deepsampler separate --enhance`).",
        "",
        "| | |",
        "|---|---|",
        f"| audio | {model.config.sample_rate} Hz, each channel refined as mono |",
        f"| features | n_fft {model.config.features.n_fft}, hop {model.config.features.hop}, "
        f"magnitude compression {model.config.features.compress} |",
        "| parameters | "
        + ", ".join(f"{n} {c / 1e6:.2f} M" for n, c in params.items())
        + ", adapters "
        + ", ".join(f"{n} {c / 1e3:.0f} k" for n, c in adapters.items())
        + (
            f"; the predictor's guide, {guide} ({guide_params / 1e6:.2f} M, frozen), is read "
            "from its own shipped file (this file holds its digest)"
            if guide
            else ""
        )
        + " |",
        (
            "| default | the predictive stage alone (`--steps 0`); `--steps N` adds N DDIM "
            f"steps from strength {model.config.diffusion.strength} |"
            if steps == 0
            else f"| sampling default | {steps} DDIM steps from strength "
            f"{model.config.diffusion.strength} |"
        ),
        f"| file | {dest.stat().st_size / 2**20:.1f} MiB |",
        "| base model | trained here from scratch on clean stems (no pretrained weights) |",
        "",
        "## Training",
        "",
        training_table(args.run),
        "",
        "Config (`config.yaml` of the run):",
        "",
        "```yaml",
        (args.run / "config.yaml").read_text().rstrip(),
        "```",
        "",
        "## Results (`benchmarks/stemprover.py`)",
        "",
        "ΔSDR is refined minus unrefined whole-excerpt SDR against the true stem; high band = "
        "the top of 8 log-spaced bands.",
        "",
        *[
            line
            for bench in benches
            for line in (
                f"Command: `.venv/bin/python {bench['command']}`; "
                f"{bench['seconds_per_item']:g} s excerpts, {bench['limit']} tracks per set, "
                f"{bench['threads']} CPU threads.",
                "",
                markdown(bench["sets"]),
            )
        ],
    ]
    if args.notes and args.notes.is_file():
        card += ["## Notes", "", args.notes.read_text().rstrip(), ""]
    (STEMPROVER_DIR / f"{args.name}.md").write_text("\n".join(card) + "\n")
    print(f"wrote {dest} and {STEMPROVER_DIR / f'{args.name}.md'}")


if __name__ == "__main__":
    main()
