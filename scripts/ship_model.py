#!/usr/bin/env python
"""Ship a trained run as a named model: evaluate it, copy its weights into
``src/deepsampler/pretrained/<name>.pt`` and write the model card ``<name>.md`` beside them.

    .venv/bin/python scripts/ship_model.py --run experiments/music4-rt --name music4-rt \\
        --test-data data/music4-4h/test --real-data ../shared/eval/real-music

The checkpoint shipped is the run's ``best.pt`` (chosen on the corpus's *validation* split during
training) or ``--checkpoint final``; the evaluation sets only measure it, they never choose it.
Every number on the card comes from ``deepsampler evaluate`` runs written under
``experiments/cards/<name>/`` and the card lists the commands.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from deepsampler.models import load_checkpoint, save_checkpoint
from deepsampler.models.registry import PRETRAINED_DIR

BIN = Path(sys.executable).parent
# The README of ../shared/train-real: its MedleyDB "Music Delta" drum stems share a series, studio
# and probably kit with this evaluation excerpt, so the mean is also given without it.
RELATED_TRACK = "musdb18_sample_music_delta_80s_rock"


def run_evaluate(
    data: str, checkpoint: Path, out: Path, threads: int, options: list[str]
) -> dict[str, Any]:
    """``deepsampler evaluate`` of ``checkpoint`` on ``data`` with the inference ``options``
    (explicit: the run's checkpoint does not carry the shipped model's defaults)."""
    cmd = [
        str(BIN / "deepsampler"),
        "evaluate",
        "--data",
        data,
        "--model",
        str(checkpoint),
        "--out",
        str(out),
        "--threads",
        str(threads),
        *options,
        "-q",
    ]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    return json.loads((out / "summary.json").read_text())


def fmt(value: float | None) -> str:
    return (
        "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.2f}"
    )


def source_table(summary: dict[str, Any], metrics: list[str]) -> str:
    """Rows: sources + mean; columns: the model's metrics, then mixture and IRM1 SDR."""
    head = [f"model {m.upper().replace('_', '-')}" for m in metrics] + ["mixture SDR", "IRM1 SDR"]
    lines = ["| source | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
    for s in summary["sources"] + ["mean"]:
        cells = [fmt(summary["scores"][s].get(m)) for m in metrics]
        cells += [
            fmt(summary["baselines"]["mixture"][s]["sdr"]),
            fmt(summary["baselines"]["irm1"][s]["sdr"]),
        ]
        name = f"**{s}**" if s == "mean" else s
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def track_table(summary: dict[str, Any], metric: str) -> str:
    sources = summary["sources"]
    lines = [
        "| track | " + " | ".join(sources) + " | mean | mixture mean |",
        "|---" * (len(sources) + 3) + "|",
    ]
    for name, row in summary["tracks"].items():
        values = [row[s][metric] for s in sources]
        floor = [summary["baseline_tracks"]["mixture"][name][s][metric] for s in sources]
        lines.append(
            f"| {name} | "
            + " | ".join(fmt(v) for v in values)
            + f" | {fmt(sum(values) / len(values))} | {fmt(sum(floor) / len(floor))} |"
        )
    return "\n".join(lines)


def mean_without(summary: dict[str, Any], track: str, metric: str = "sdr") -> float | None:
    rows = [r for name, r in summary["tracks"].items() if name != track]
    if len(rows) == len(summary["tracks"]) or not rows:
        return None
    sources = summary["sources"]
    return sum(r[s][metric] for r in rows for s in sources) / (len(rows) * len(sources))


def averaged_text(training: dict[str, Any]) -> str:
    """The card's checkpoint cell for weights averaged by scripts/average_checkpoints.py."""
    parts = [
        f"`{item['path']}` x{item['weight']:g} (validation {fmt(item.get('valid_sdr'))} dB)"
        for item in training["averaged_from"]
    ]
    return (
        "the weight average of " + ", ".join(parts) + "; the average's validation SDR on the "
        f"corpus's valid split: {fmt(training.get('valid_sdr'))} dB"
    )


def real_stem_text(training: dict[str, Any], data: dict[str, Any]) -> str:
    """The card's share of real stems: the run's, or each averaged run's where they differ."""
    shares = [item.get("real_stem_probability") for item in training.get("averaged_from", [])]
    shares = list(dict.fromkeys(x for x in shares if x is not None))
    if len(shares) > 1:
        return " / ".join(f"{x:g}" for x in shares) + " (in the averaged runs, in order)"
    return f"{data.get('real_stem_probability', 0)}"


def inference_options(shifts: int, flip: bool) -> list[str]:
    """The evaluate options of a model's default offline inference."""
    return ["--shifts", str(shifts), "--flip" if flip else "--no-flip"]


def passes_text(shifts: int, flip: bool) -> str:
    """``4 passes (shifts 2, flip)``: the card's words for a default offline inference."""
    opts = ([f"shifts {shifts}"] if shifts > 1 else []) + (["flip"] if flip else [])
    return f"{shifts * (2 if flip else 1)} passes ({', '.join(opts)})"


def inference_text(shifts: int, flip: bool, hop: int) -> str:
    """The kind row's words for a default offline inference of several passes."""
    how = [f"frame grids {hop // shifts} samples apart"] if shifts > 1 else []
    how += ["channels as given and swapped"] if flip else []
    return (
        f"offline inference by default: {passes_text(shifts, flip)}: {', '.join(how)}, "
        "averaged (`--shifts 1 --no-flip` for one pass)"
    )


def one_pass_table(rows: dict[str, dict[str, Any]]) -> str:
    """SDR per source and its mean (as in the source tables) of one-pass evaluations, one row
    per evaluation set."""
    sources = list(next(iter(rows.values()))["sources"])
    lines = [
        "| one pass, SDR (dB) | " + " | ".join(sources) + " | mean |",
        "|---" * (len(sources) + 2) + "|",
    ]
    for name, summary in rows.items():
        sdr = [summary["scores"][s]["sdr"] for s in [*sources, "mean"]]
        lines.append(f"| {name} | " + " | ".join(fmt(v) for v in sdr) + " |")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True, help="training run folder")
    ap.add_argument("--name", required=True, help="shipped model name")
    ap.add_argument("--checkpoint", choices=["best", "final"], default="best")
    ap.add_argument("--test-data", required=True, help="the corpus's test split")
    ap.add_argument("--real-data", help="real evaluation folder (../shared/eval/...)")
    ap.add_argument(
        "--title",
        default="",
        help="one line saying what the model is (default: the shipped model's, when re-shipping)",
    )
    ap.add_argument("--notes", type=Path, help="Markdown file appended to the card")
    ap.add_argument(
        "--train-command",
        action="append",
        metavar="CMD",
        help="the command(s) that made the run, for the card's reproduce block, in order "
        "(default: the config's plain train command; give them when the run took key=value "
        "overrides or started from an earlier run)",
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--shifts",
        type=int,
        default=1,
        help="the model's default offline inference: passes over frame grids (stored in the "
        "shipped file; the card's tables use it, and a one-pass table stands beside them). "
        "Choose it on the corpus's validation split (benchmarks/offline_options.py)",
    )
    ap.add_argument(
        "--flip",
        action="store_true",
        help="the model's default offline inference also averages the channel-swapped pass",
    )
    ap.add_argument(
        "--test-limit",
        type=int,
        default=0,
        help="score only the first N tracks of --test-data (BSS Eval of 30 s tracks with its "
        "floor and oracle rows takes about a minute each here); 0: all",
    )
    return ap


def reproduce_commands(args: argparse.Namespace, config_name: str) -> tuple[str, str]:
    """The card's reproduce block: the training command(s) and this script's own command line.

    The ship line carries every option that changes the card or the shipped file, shell-quoted,
    so that running it again re-creates the same card (a test parses it back)."""
    train_cmd = (
        "\n".join(args.train_command)
        if args.train_command
        else f".venv/bin/deepsampler train --config configs/{config_name}.yaml"
        "   # resumable: run it again after an interruption"
    )
    parts = [
        ".venv/bin/python scripts/ship_model.py",
        f"--run {shlex.quote(str(args.run))}",
        f"--name {shlex.quote(args.name)}",
        f"--checkpoint {args.checkpoint}",
        f"--test-data {shlex.quote(str(args.test_data))}",
    ]
    if args.test_limit:
        parts.append(f"--test-limit {args.test_limit}")
    if args.shifts != 1:
        parts.append(f"--shifts {args.shifts}")
    if args.flip:
        parts.append("--flip")
    if args.real_data:
        parts.append(f"--real-data {shlex.quote(str(args.real_data))}")
    if args.notes:
        parts.append(f"--notes {shlex.quote(str(args.notes))}")
    for cmd in args.train_command or []:
        parts.append(f"--train-command {shlex.quote(cmd)}")
    return train_cmd, " ".join(parts)


def main() -> None:
    ap = build_parser()
    args = ap.parse_args()
    current = PRETRAINED_DIR / f"{args.name}.pt"
    if not args.title and current.is_file():
        args.title = load_checkpoint(current).metadata.get("summary", "")
    if not args.title:
        ap.error(f"--title is needed: no shipped {args.name} to take its line from")

    source = args.run / "checkpoints" / f"{args.checkpoint}.pt"
    loaded = load_checkpoint(source)
    cfg = loaded.model.config
    if not 1 <= args.shifts <= cfg.hop:
        ap.error(f"--shifts {args.shifts}: use 1 to the model's hop ({cfg.hop})")
    if args.flip and cfg.audio_channels < 2:
        ap.error("--flip swaps stereo channels; this model is mono")
    out = Path("experiments/cards") / args.name
    test_data = args.test_data
    if args.test_limit:
        subset = out / "test-subset"
        shutil.rmtree(subset, ignore_errors=True)
        subset.mkdir(parents=True)
        for track in sorted(p for p in Path(test_data).iterdir() if p.is_dir())[: args.test_limit]:
            (subset / track.name).symlink_to(track.resolve())
        test_data = str(subset)
    averaged = args.shifts > 1 or args.flip
    options = inference_options(args.shifts, args.flip)
    synthetic = run_evaluate(test_data, source, out / "synthetic", args.threads, options)
    real = (
        run_evaluate(args.real_data, source, out / "real", args.threads, options)
        if args.real_data
        else None
    )
    # what a single pass scores, beside the default's tables: set -> (data, evaluation folder)
    one_pass_sets = {"synthetic test": (test_data, out / "synthetic-1pass")}
    if args.real_data:
        one_pass_sets["real"] = (args.real_data, out / "real-1pass")
    one_pass = (
        {
            name: run_evaluate(data, source, folder, args.threads, inference_options(1, False))
            for name, (data, folder) in one_pass_sets.items()
        }
        if averaged
        else {}
    )
    speech = "speech" in cfg.sources
    metrics = ["sdr", "si_sdr"] + (["pesq", "stoi"] if speech else [])

    def brief(summary: dict[str, Any] | None) -> dict[str, Any] | None:
        if summary is None:
            return None
        keep = {s: {m: summary["scores"][s].get(m) for m in metrics} for s in summary["scores"]}
        floor = {s: summary["baselines"]["mixture"][s]["sdr"] for s in summary["scores"]}
        return {"data": summary["data"], "scores": keep, "mixture_sdr": floor}

    training = dict(loaded.training or {})
    training["shipped_from"] = f"{source} ({args.checkpoint})"
    metadata = {
        "name": args.name,
        "summary": args.title,
        "results": {"synthetic_test": brief(synthetic), "real": brief(real)},
    }
    if averaged:
        metadata["inference"] = {"shifts": args.shifts, "flip": args.flip}
    shipped = save_checkpoint(
        PRETRAINED_DIR / f"{args.name}.pt", loaded.model, training=training, metadata=metadata
    )

    config = training.get("config", {})
    data = config.get("data", {})
    corpus_file = Path(training.get("data_root", "")) / "corpus.json"
    corpus = json.loads(corpus_file.read_text()) if corpus_file.is_file() else {}
    tracks = corpus.get("tracks_per_split", {})
    split_text = ", ".join(
        f"{k} {tracks.get(k, '?')} tracks / {h:.2f} h"
        for k, h in corpus.get("hours_per_split", {}).items()
    )
    optim = config.get("optim", {})
    loss = config.get("loss", {})
    params = loaded.model.num_parameters()
    kind = "causal (streams)" if cfg.causal else "offline (bidirectional: sees the whole input)"
    size_mb = shipped.stat().st_size / 1e6
    config_name = config.get("name", args.name)
    train_cmd, ship_cmd = reproduce_commands(args, config_name)
    last_ingredient = (
        " (of the last averaged run, to its best step; the checkpoint row names every run)"
        if training.get("averaged_from")
        else ""
    )
    eval_cmd = ".venv/bin/deepsampler evaluate --model {m} --data {d} --out {o}"
    lines = [
        f"# {args.name}",
        "",
        args.title,
        "",
        "| | |",
        "|---|---|",
        f"| architecture | DeepSampler `{config.get('model_preset', '?')}` preset with "
        f"{json.dumps(config.get('model', {}))}: {params:,} parameters, {size_mb:.1f} MB |",
        f"| sources | {', '.join(cfg.sources)} |",
        f"| audio | {cfg.sample_rate} Hz, {cfg.audio_channels} channel(s) |",
        f"| kind | {kind}; window {cfg.n_fft}, hop {cfg.hop}: algorithmic latency "
        f"{cfg.latency_ms:.1f} ms"
        + (f"; {inference_text(args.shifts, args.flip, cfg.hop)}" if averaged else "")
        + " |",
        f"| data | `{training.get('data_root', '?')}` ({split_text}), synthesised by "
        f"`deepsampler data synth`; random {data.get('segment_seconds')} s segments, "
        f"remix probability {data.get('remix_probability')}, gains {data.get('gain_db')} dB, "
        f"real recorded stems swapped in with probability {real_stem_text(training, data)} "
        "per source |",
        f"| training | {training.get('steps', 0):,} steps x batch {config.get('batch_size')} "
        f"({training.get('examples_seen', 0):,} examples), AdamW lr {optim.get('lr')} "
        f"(warm-up {optim.get('warmup_steps')} steps, cosine to x{optim.get('min_lr_ratio')}), "
        f"clip {optim.get('grad_clip')}, EMA {config.get('ema_decay')}, loss: waveform L1 "
        f"x{loss.get('waveform_l1')}"
        + (f" + multi-res STFT x{loss.get('multires_stft')}" if loss.get("multires_stft") else "")
        + (f" + SI-SDR x{loss.get('si_sdr')} per dB" if loss.get("si_sdr") else "")
        + (f"; started from `{config['init_from']}`" if config.get("init_from") else "")
        + last_ingredient
        + " |",
        f"| wall time / hardware | {training.get('train_hours', 0) * 60:.0f} min on "
        f"{training.get('hardware', '?')} (no GPU){last_ingredient} |",
        f"| checkpoint | `{args.checkpoint}.pt` of the run: "
        + (
            averaged_text(training)
            if training.get("averaged_from")
            else (
                f"best validation SDR on the corpus's valid split "
                f"({fmt(training.get('valid_sdr'))} dB)"
                if args.checkpoint == "best"
                else "weights after the last step"
            )
        )
        + " |",
        "",
        "## Results",
        "",
        "BSS Eval v4 as museval (median over 1 s frames, then median over tracks) by "
        "`deepsampler evaluate`; *mixture* is the unprocessed mixture used as the estimate (the "
        "floor), *IRM1* the oracle ideal ratio mask at the model's STFT (the ceiling)."
        + (
            f" Model rows: its default inference, {passes_text(args.shifts, args.flip)}; the "
            "one-pass table below them."
            if averaged
            else ""
        ),
        "",
        f"### Synthetic test split (`{args.test_data}`, "
        + (
            f"its first {len(synthetic['tracks'])} tracks"
            if args.test_limit
            else f"{len(synthetic['tracks'])} tracks"
        )
        + ")",
        "",
        source_table(synthetic, metrics),
        "",
        f"Reproduce: `{eval_cmd.format(m=args.name, d=test_data, o=out / 'synthetic')}`"
        + (
            f" (`{test_data}` links the first {args.test_limit} track folders)"
            if args.test_limit
            else ""
        ),
    ]
    if real is not None:
        lines += [
            "",
            f"### Real recordings (`{args.real_data}`, {len(real['tracks'])} items)",
            "",
            source_table(real, metrics),
            "",
        ]
        if speech:
            gain = (
                real["scores"]["speech"]["si_sdr"]
                - real["baselines"]["mixture"]["speech"]["si_sdr"]
            )
            mix = real["baselines"]["mixture"]["speech"]
            model = real["scores"]["speech"]
            lines += [
                f"**SI-SDR improvement on speech: {gain:+.2f} dB** (model minus mixture). "
                f"PESQ {model['pesq']:.2f} (mixture {mix['pesq']:.2f}), STOI {model['stoi']:.3f} "
                f"(mixture {mix['stoi']:.3f}).",
                "",
            ]
        else:
            lines += ["Per track (SDR, dB):", "", track_table(real, "sdr"), ""]
            without = mean_without(real, RELATED_TRACK)
            if without is not None:
                lines += [
                    f"Mean SDR over the tracks without `{RELATED_TRACK}` (its drums come from the "
                    f"same Music Delta series as real drum stems used in training): "
                    f"**{without:.2f} dB**.",
                    "",
                ]
        lines += [f"Reproduce: `{eval_cmd.format(m=args.name, d=args.real_data, o=out / 'real')}`"]
    if one_pass:
        lines += [
            "",
            "### One pass (`--shifts 1 --no-flip`)",
            "",
            one_pass_table(one_pass),
            "",
            "Reproduce: "
            + "; ".join(
                f"`{eval_cmd.format(m=args.name, d=data, o=folder)} --shifts 1 --no-flip`"
                for data, folder in one_pass_sets.values()
            ),
        ]
    lines += [
        "",
        "## Reproduce the model",
        "",
        "```bash",
        train_cmd,
        ship_cmd,
        "```",
        "",
        "The corpus command is in the config's header comment.",
    ]
    if args.notes:
        lines += ["", args.notes.read_text().rstrip()]
    card = PRETRAINED_DIR / f"{args.name}.md"
    card.write_text("\n".join(lines) + "\n")
    print(f"shipped {shipped} ({size_mb:.1f} MB) and {card}")


if __name__ == "__main__":
    main()
