"""StemProver, measured honestly: does refining a separated stem bring it closer to the truth?

Items are (track, source) excerpts of a separator's output with the true stem beside it:
* ``synthetic``: music4-rt on the held-out synthetic test split (separated here, cached);
* ``real``: music4-rt on ../shared/eval/real-music (evaluation only: never trained or tuned on);
* ``speech``: speech-rt's speech stem on ../shared/eval/real-speech (adds PESQ / STOI deltas).

Rows (the same items for each): the identity refiner (Delta = 0 by construction), the predictive
stage alone (models with one: what the latent stages add is the difference to it), its guide
separator alone (predictors with one: what reading the stem adds is the difference), the same-size
regression refiner (no diffusion; it refines the predictor's estimate, as StemProver does),
StemProver with its adapters chosen by the detectors (``auto``), with no adapters (base +
control), with each adapter alone, with all four, and without the mixture (as ``enhance``
without ``--mixture``); and the ``auto`` row again at each ``--steps`` count for the
speed/quality trade-off. ``--reseparate MODEL`` adds the user's alternative to refining: the
same mixtures separated again with MODEL (e.g. music4-hq), scored on the same excerpts. Each item
is refined knowing its source (for the domain guard only), as `enhance` knows it from the file
name, so a guided model leaves stems outside its guide's sources (speech) unchanged;
``--unguarded`` refines them anyway.
Per row: mean Delta SDR (whole-excerpt SDR, refined minus unrefined) and Delta SI-SDR with 95 %
t-intervals, the share of items improved, per-band phase coherence and magnitude error against
the true stem (before -> after), and the real-time factor (refining seconds / audio seconds).

    .venv/bin/python benchmarks/stemprover.py --model experiments/stemprover/stemprover.pt \
        --synthetic data/music4-2h/test --limit 6 --out experiments/bench/stemprover

Writes OUT/stemprover.json and OUT/stemprover.md and prints the table. The library behind
``benchmarks/stemprover.py`` (which only calls :func:`main`); ``scripts/ship_stemprover.py``
reuses :func:`markdown` for the model card.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from deepsampler.audio import audio_info, read_audio
from deepsampler.evaluation.metrics import (
    band_magnitude_error,
    band_phase_coherence,
    pesq_wb,
    si_sdr,
    stoi,
    usdr,
)
from deepsampler.sources import MUSIC4_SOURCES
from deepsampler.stemprover.checkpoint import load_regression, load_stemprover
from deepsampler.stemprover.enhancer import Enhancer, resolve_stemprover
from deepsampler.stemprover.model import StemProver
from deepsampler.stemprover.pairs import cache_separator_outputs
from deepsampler.stemprover.refiners import (
    GuideRefiner,
    IdentityRefiner,
    PredictorRefiner,
    RegressionRefiner,
)


@dataclass
class Item:
    name: str
    source: str
    degraded: np.ndarray  # [c, n]
    clean: np.ndarray  # [c, n]
    mixture: np.ndarray  # [c, n]
    sample_rate: int
    speech: bool = False


# the `auto` row with the refiner not shown the mixture (as `enhance` without --mixture)
NO_MIX = "stemprover auto, no mixture"
# the predictive stage's guide separator alone, on each mono segment of the mixture
GUIDE = "guide only (per segment, mono)"


def _excerpt(n: int, seconds: float, rate: int) -> slice:
    """The middle ``seconds`` of ``n`` samples (all of it if shorter)."""
    k = min(n, int(seconds * rate))
    start = (n - k) // 2
    return slice(start, start + k)


def separated_items(
    data: Path,
    cache: Path,
    model: str,
    sources: list[str],
    seconds: float,
    limit: int | None,
    speech: bool = False,
) -> list[Item]:
    """Separate ``data/<track>/mixture.*`` with ``model`` (cached in ``cache``) and pair each
    estimate of ``sources`` with its true stem."""
    items = []
    for track in cache_separator_outputs(data, cache, model, limit, progress=False):
        out = cache / track.name
        mix_path = next(track.glob("mixture.*"))
        mix, rate = read_audio(mix_path)
        for s in sources:
            clean_path = next(track.glob(f"{s}.*"), None)
            if clean_path is None:
                continue
            clean, _ = read_audio(clean_path)
            est, _ = read_audio(out / f"{s}.wav")
            sl = _excerpt(clean.shape[-1], seconds, rate)
            if float(np.sqrt(np.mean(clean[..., sl] ** 2))) < 1e-3:
                continue  # a silent true stem has no SDR
            items.append(
                Item(
                    f"{track.name}/{s}", s, est[..., sl], clean[..., sl], mix[..., sl], rate, speech
                )
            )
    return items


def _ci95(values: np.ndarray) -> float:
    from scipy import stats

    if len(values) < 2:
        return float("nan")
    return float(stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values)))


def score(items: list[Item], outputs: list[np.ndarray], seconds: float) -> dict:
    """Deltas of refined vs unrefined per item, summarised."""
    d_sdr, d_si, coh_b, coh_a, mag_b, mag_a, d_pesq, d_stoi = ([] for _ in range(8))
    audio = 0.0
    for it, out in zip(items, outputs, strict=True):
        audio += it.clean.shape[-1] / it.sample_rate
        d_sdr.append(float(usdr(it.clean, out)[0] - usdr(it.clean, it.degraded)[0]))
        d_si.append(float(si_sdr(it.clean, out)[0] - si_sdr(it.clean, it.degraded)[0]))
        coh_b.append(band_phase_coherence(it.clean, it.degraded, it.sample_rate))
        coh_a.append(band_phase_coherence(it.clean, out, it.sample_rate))
        mag_b.append(band_magnitude_error(it.clean, it.degraded, it.sample_rate))
        mag_a.append(band_magnitude_error(it.clean, out, it.sample_rate))
        if it.speech:
            d_pesq.append(
                pesq_wb(it.clean, out, it.sample_rate)
                - pesq_wb(it.clean, it.degraded, it.sample_rate)
            )
            d_stoi.append(
                stoi(it.clean, out, it.sample_rate) - stoi(it.clean, it.degraded, it.sample_rate)
            )
    d_sdr_a, d_si_a = np.array(d_sdr), np.array(d_si)
    row = {
        "items": len(items),
        "delta_sdr": float(d_sdr_a.mean()),
        "delta_sdr_ci95": _ci95(d_sdr_a),
        "delta_si_sdr": float(d_si_a.mean()),
        "delta_si_sdr_ci95": _ci95(d_si_a),
        "improved_pct": float(100 * (d_sdr_a > 1e-6).mean()),
        "phase_coherence_before": np.nanmean(coh_b, 0).round(4).tolist(),
        "phase_coherence_after": np.nanmean(coh_a, 0).round(4).tolist(),
        "magnitude_error_db_before": np.nanmean(mag_b, 0).round(3).tolist(),
        "magnitude_error_db_after": np.nanmean(mag_a, 0).round(3).tolist(),
        "rtf": seconds / max(audio, 1e-9),
        "per_item_delta_sdr": [round(x, 3) for x in d_sdr],
    }
    if d_pesq:
        row["delta_pesq"] = float(np.mean(d_pesq))
        row["delta_stoi"] = float(np.mean(d_stoi))
    return row


def run_rows(
    items: list[Item],
    model: StemProver,
    regression,
    steps_list: list[int],
    threads: int,
    full: bool,
    strength: float | None = None,
    unguarded: bool = False,
) -> dict[str, dict]:
    torch.set_num_threads(threads)
    rate = model.config.sample_rate
    rows: dict[str, tuple[Enhancer, object]] = {
        "identity": (Enhancer(model, refiner=IdentityRefiner(rate)), "none"),
    }
    if model.predictor is not None:
        rows["predictor only"] = (Enhancer(model, refiner=PredictorRefiner(model)), "none")
        if model.predictor.guide_model is not None:
            rows[GUIDE] = (Enhancer(model, refiner=GuideRefiner(model)), "none")
    if regression is not None:
        rows["regression"] = (Enhancer(model, refiner=RegressionRefiner(model, regression)), "none")

    def sp(**kw) -> Enhancer:
        return Enhancer(model, strength=strength, **kw)

    rows["stemprover auto"] = (sp(), "auto")
    if full:
        rows["stemprover none (base+control)"] = (sp(), "none")
        for name in model.adapters:
            rows[f"stemprover {name} only"] = (sp(), {name: 1.0})
        rows["stemprover all four"] = (sp(), {n: 1.0 for n in model.adapters})
        if model.config.mixture_condition:
            rows[NO_MIX] = (sp(), "auto")
    default_steps = model.config.diffusion.steps
    for steps in steps_list:
        if steps != default_steps:
            rows[f"stemprover auto, {steps} steps"] = (sp(steps=steps), "auto")
    results = {}
    for label, (enhancer, adapters) in rows.items():
        start = time.perf_counter()
        outputs = [
            enhancer.enhance(
                it.degraded,
                it.sample_rate,
                # as `enhance` without --mixture: neither the detectors nor the refiner see it
                mixture=None if label == NO_MIX else it.mixture,
                adapters=adapters,
                # a guided model leaves stems outside its guide's sources alone (speech here)
                source=None if unguarded else it.source,
            ).audio
            for it in items
        ]
        results[label] = score(items, outputs, time.perf_counter() - start)
        # the controls make one pass (regression) or none (identity), whatever the sampler's steps
        results[label]["steps"] = {
            "identity": 0,
            "predictor only": 0,
            GUIDE: 0,
            "regression": 1,
        }.get(label, enhancer.steps)
        r = results[label]
        print(
            f"  {label:<36} dSDR {r['delta_sdr']:+.3f} ± {r['delta_sdr_ci95']:.3f}  "
            f"improved {r['improved_pct']:.0f} %  RTF {r['rtf']:.3f}",
            flush=True,
        )
    return results


def reseparation_row(
    items: list[Item], data: Path, cache: Path, model: str, seconds: float, limit: int | None
) -> dict | None:
    """The user's alternative to refining: separate the same mixtures again with ``model`` (whole
    stereo tracks, as `deepsampler separate --model MODEL`), scored on the same excerpts as a
    refinement of the items' stems. None when ``model`` has none of the items' sources.

    RTF is the separation's, timed when the outputs are not cached yet (NaN when they were)."""
    from deepsampler.separator import Separator

    names = set(Separator(model).sources)
    if not any(it.source in names for it in items):
        return None
    start = time.perf_counter()
    cached = cache.is_dir()
    other = {
        it.name: it
        for it in separated_items(data, cache, model, sorted(names), seconds, limit, False)
    }
    elapsed = time.perf_counter() - start
    missing = [it.name for it in items if it.name not in other]
    if missing:
        raise SystemExit(f"re-separation with {model} lacks items {missing[:3]}")
    row = score(items, [other[it.name].degraded for it in items], 0.0)
    if cached:
        row["rtf"] = float("nan")
    else:
        tracks = {it.name.split("/")[0] for it in items}
        row["rtf"] = elapsed / max(1e-9, sum(_track_seconds(data / t) for t in tracks))
    row["steps"] = 0
    return row


def _track_seconds(track: Path) -> float:
    return audio_info(next(track.glob("mixture.*"))).seconds


def markdown(sets: dict[str, dict[str, dict]]) -> str:
    lines = []
    for set_name, rows in sets.items():
        n = next(iter(rows.values()))["items"]
        lines += [
            f"### {set_name} ({n} items)",
            "",
            "| refiner | steps | ΔSDR (dB, 95% CI) | ΔSI-SDR (dB, 95% CI) | improved | "
            "phase coherence hi band before → after | mag. error hi band (dB) | RTF |"
            + (" ΔPESQ | ΔSTOI |" if "delta_pesq" in next(iter(rows.values())) else ""),
            "|---|---|---|---|---|---|---|---|"
            + ("---|---|" if "delta_pesq" in next(iter(rows.values())) else ""),
        ]
        for label, r in rows.items():
            line = (
                f"| {label} | {r['steps']} | {r['delta_sdr']:+.2f} ± {r['delta_sdr_ci95']:.2f} | "
                f"{r['delta_si_sdr']:+.2f} ± {r['delta_si_sdr_ci95']:.2f} | "
                f"{r['improved_pct']:.0f} % | {r['phase_coherence_before'][-1]:.3f} → "
                f"{r['phase_coherence_after'][-1]:.3f} | "
                f"{r['magnitude_error_db_before'][-1]:.2f} → "
                f"{r['magnitude_error_db_after'][-1]:.2f} | {r['rtf']:.3f} |"
            )
            if "delta_pesq" in r:
                line += f" {r['delta_pesq']:+.3f} | {r['delta_stoi']:+.4f} |"
            lines.append(line)
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``benchmarks/stemprover.py``: every set's rows, written to ``OUT/stemprover.{json,md}``
    and printed."""
    ap = argparse.ArgumentParser(prog="stemprover.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="stemprover", help="StemProver name or file")
    ap.add_argument(
        "--regression", help="regression refiner file (default: regression.pt beside --model)"
    )
    ap.add_argument("--synthetic", type=Path, help="synthetic test split (MUSDB layout)")
    ap.add_argument("--real", type=Path, help="real music with stems (../shared/eval/real-music)")
    ap.add_argument("--speech", type=Path, help="real speech in noise (../shared/eval/real-speech)")
    ap.add_argument("--limit", type=int, default=6, help="tracks per set (default: %(default)s)")
    ap.add_argument("--seconds", type=float, default=8.0, help="excerpt length per item")
    ap.add_argument("--steps", default="1,2,4,8", help="step counts for the speed rows")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="skip the per-adapter rows")
    ap.add_argument(
        "--strength", type=float, default=None, help="sampler start strength (default: model's)"
    )
    ap.add_argument(
        "--reseparate",
        metavar="MODEL",
        help="add a row: the same mixtures separated again with MODEL (e.g. music4-hq), "
        "the alternative to refining",
    )
    ap.add_argument(
        "--unguarded",
        action="store_true",
        help="do not tell the refiner each item's source, so a guided model refines stems "
        "outside its guide's sources too (what its domain guard prevents)",
    )
    ap.add_argument("--out", type=Path, default=Path("experiments/bench/stemprover"))
    args = ap.parse_args(argv)
    model_path = resolve_stemprover(args.model)
    model, _ = load_stemprover(model_path)
    reg_path = Path(args.regression) if args.regression else model_path.parent / "regression.pt"
    if not reg_path.is_file() and model_path.stem.startswith("stemprover"):
        reg_path = model_path.with_name(model_path.stem + "-regression.pt")
    regression = load_regression(model, reg_path) if reg_path.is_file() else None
    if regression is None:
        print(f"note: no regression refiner at {reg_path}; that control row is left out")
    steps_list = [int(s) for s in args.steps.split(",") if s.strip()]
    args.out.mkdir(parents=True, exist_ok=True)
    sets: dict[str, list[Item]] = {}
    folders: dict[str, tuple[Path, str]] = {}  # set name -> (data folder, cache tag)
    music = list(MUSIC4_SOURCES)
    if args.synthetic:
        sets["synthetic (music4-rt outputs)"] = separated_items(
            args.synthetic,
            args.out / "cache-synthetic",
            "music4-rt",
            music,
            args.seconds,
            args.limit,
        )
        folders["synthetic (music4-rt outputs)"] = (args.synthetic, "synthetic")
    if args.real:
        sets["real-music (music4-rt outputs)"] = separated_items(
            args.real, args.out / "cache-real", "music4-rt", music, args.seconds, args.limit
        )
        folders["real-music (music4-rt outputs)"] = (args.real, "real")
    if args.speech:
        sets["real-speech (speech-rt outputs)"] = separated_items(
            args.speech,
            args.out / "cache-speech",
            "speech-rt",
            ["speech"],
            args.seconds,
            args.limit,
            speech=True,
        )
    if not sets:
        ap.error("give at least one of --synthetic, --real, --speech")
    if args.unguarded:  # a different experiment: say so in every table it makes
        sets = {f"{name}, unguarded": items for name, items in sets.items()}
        folders = {f"{name}, unguarded": f for name, f in folders.items()}
    results = {}
    for name, items in sets.items():
        print(f"{name}: {len(items)} items", flush=True)
        results[name] = run_rows(
            items,
            model,
            regression,
            steps_list,
            args.threads,
            not args.quick,
            args.strength,
            args.unguarded,
        )
        if args.reseparate and name in folders:
            data, tag = folders[name]
            cache = args.out / f"cache-{tag}-{Path(args.reseparate).stem}"
            row = reseparation_row(items, data, cache, args.reseparate, args.seconds, args.limit)
            if row is not None:
                label = f"{args.reseparate} re-separation (stereo, whole track)"
                results[name][label] = row
                print(
                    f"  {label:<36} dSDR {row['delta_sdr']:+.3f} ± "
                    f"{row['delta_sdr_ci95']:.3f}  improved {row['improved_pct']:.0f} %"
                )
    payload = {
        "model": str(model_path),
        "regression": str(reg_path) if regression is not None else None,
        "seconds_per_item": args.seconds,
        "limit": args.limit,
        "threads": args.threads,
        "strength": args.strength,
        "reseparate": args.reseparate,
        "unguarded": args.unguarded,
        "command": " ".join(["benchmarks/stemprover.py", *(argv or sys.argv[1:])]),
        "sets": results,
    }
    (args.out / "stemprover.json").write_text(json.dumps(payload, indent=2))
    table = markdown(results)
    (args.out / "stemprover.md").write_text(table)
    print(table)
    return 0
