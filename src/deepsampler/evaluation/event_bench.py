"""Siren event detection on long streams: event and segment F1, false alarms, alert delay, RTF.

The library behind ``benchmarks/events.py`` (which only calls :func:`main`).

DIR is a streams folder as ``scripts/make_siren_streams.py`` writes it (``<stream>.wav``,
``<stream>.txt`` annotations ``onset<TAB>offset<TAB>siren`` in s, and ``streams.json``; without
the index, every ``<stream>.wav`` with a ``<stream>.txt`` beside it, siren-free when the
annotations are empty). Each DETECTOR (a shipped name or a checkpoint, loaded with
``deepsampler.detection.Detector``) is one row, labelled by the name as given: pass the
detector that reads the separated stem and the one on the mixture alone to see what separation
adds.

Per detector, over all streams:

- **event F1** (sed_eval ``EventBasedMetrics``: onset collar 1 s, offset collar max(50 % of the
  reference event's length, 1 s)) and **segment F1** (``SegmentBasedMetrics``, 1 s segments) of
  the offline events ``det.detect(x, sr)`` against the annotations; siren-free streams count too
  (their events are false positives);
- **false alarms** per hour and per minute of siren-free audio: offline events on the siren-free
  streams over their total length;
- **alert delay** from the streaming path: ``det.stream()`` fed blocks of the detector's hop
  (its separator's hop where it reads one, else its own; 16 ms if it says neither;
  ``--block-ms`` overrides); a true event is caught by the first unused ``start`` alert whose
  ``onset`` lies within 1 s of the true onset, and its delay is that alert's ``time`` minus the
  true onset (s; p50 and p99 over caught events); events with no such alert are listed as
  missed;
- **RTF** with one thread (``torch.set_num_threads(1)``): compute over audio seconds, offline
  and streaming; **latency** as the detector reports it (``det.latency_seconds``).

Prints a Markdown table and, with ``--json``, writes per-stream and aggregate numbers, the
settings, package versions and the command line.

    .venv/bin/python benchmarks/events.py experiments/heldout-sirens --models siren-sde \\
        runs/siren-sde-mixture/best.pt --json benchmarks/results/events.json
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shlex
import sys
import time
import warnings
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from deepsampler.errors import DeepSamplerError

LABEL = "siren"
ONSET_COLLAR_S = 1.0
OFFSET_FRACTION = 0.5  # offset collar: max(this x the reference event's length, ONSET_COLLAR_S)
SEGMENT_S = 1.0
DEFAULT_BLOCK_S = 0.016  # siren-rt's hop; used when a detector does not say its own


@dataclass
class Stream:
    """One annotated stream: reference events ``[(onset s, offset s)]``."""

    name: str
    audio: Path
    seconds: float
    siren_free: bool
    events: list[tuple[float, float]]


@dataclass
class Row:
    """One detector under test and what its runs took (s)."""

    name: str
    detector: Any
    offline_s: float = 0.0
    stream_s: float = 0.0
    audio_s: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# input


def read_annotations(path: Path) -> list[tuple[float, float]]:
    """``[(onset, offset)]`` of the ``siren`` lines of a sed_eval / DCASE annotation file."""
    events = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t") if "\t" in line else line.split()
        try:
            onset, offset = float(parts[0]), float(parts[1])
        except (IndexError, ValueError):
            raise DeepSamplerError(
                f"{path}:{i}: not 'onset<TAB>offset<TAB>label' ({line.strip()[:40]!r})"
            ) from None
        if offset <= onset:
            raise DeepSamplerError(f"{path}:{i}: offset {offset} is not after onset {onset}")
        if len(parts) < 3 or parts[2].strip() == LABEL:
            events.append((onset, offset))
    return sorted(events)


def load_streams(folder: Path, limit: int | None = None) -> list[Stream]:
    """The streams of ``folder`` (``streams.json`` order, else sorted by name), all checked."""
    from deepsampler.audio import audio_info

    if not folder.is_dir():
        raise DeepSamplerError(f"{folder}: not found (a streams folder from make_siren_streams)")
    index = folder / "streams.json"
    if index.is_file():
        try:
            entries = json.loads(index.read_text())["streams"]
            pairs = [(folder / e["audio"], folder / e["annotations"]) for e in entries]
        except (ValueError, KeyError, TypeError) as exc:
            raise DeepSamplerError(f"{index}: not a streams index ({exc})") from None
    else:
        pairs = [(w, w.with_suffix(".txt")) for w in sorted(folder.glob("*.wav"))]
        if not pairs:
            raise DeepSamplerError(f"{folder}: holds no streams.json and no <stream>.wav")
    streams = []
    for wav, txt in pairs[:limit] if limit else pairs:
        if not wav.is_file():
            raise DeepSamplerError(f"{wav}: not found")
        if not txt.is_file():
            raise DeepSamplerError(f"{txt}: not found (annotations of {wav.name})")
        events = read_annotations(txt)
        info = audio_info(wav)
        streams.append(Stream(wav.stem, wav, info.seconds, not events, events))
    return streams


def load_detector(name: str) -> Any:
    """``deepsampler.detection.Detector(name)``; a one-line error where it cannot be had."""
    try:
        from deepsampler.detection import Detector
    except ImportError as exc:
        raise DeepSamplerError(f"deepsampler.detection is not available ({exc})") from None
    try:
        return Detector(name)
    except DeepSamplerError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError) as exc:  # not its own error: one line
        raise DeepSamplerError(f"{name}: cannot be loaded as a detector ({exc})") from None


def import_sed_eval() -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # dcase_util imports the deprecated pkg_resources
            import sed_eval
    except ImportError:
        raise DeepSamplerError(
            "sed_eval is not installed: pip install 'deepsampler[events]' (or sed_eval)"
        ) from None
    return sed_eval


# --------------------------------------------------------------------------------------------
# running a detector


def block_samples(det: Any, block_ms: float | None) -> int:
    """Samples (at ``det.sample_rate``) per streaming push: ``--block-ms``, else the detector's
    ``hop``, else its separator's hop (the streaming engine's step), else its own frame hop,
    else 16 ms."""
    if block_ms is not None:
        return max(1, round(block_ms * det.sample_rate / 1000))
    candidates = (
        getattr(det, "hop", None),
        getattr(getattr(getattr(det, "separator", None), "config", None), "hop", None),
        getattr(getattr(det, "config", None), "hop", None),
    )
    for hop in candidates:
        if isinstance(hop, int) and hop > 0:
            return hop
    return max(1, round(DEFAULT_BLOCK_S * det.sample_rate))


def sirens_of(events: list[Any]) -> list[dict[str, float]]:
    """The ``siren`` events as ``{"onset", "offset", "confidence"}`` (s), sorted by onset."""
    out = [
        {
            "onset": float(e.onset),
            "offset": float(e.offset),
            "confidence": float(getattr(e, "confidence", math.nan)),
        }
        for e in events
        if getattr(e, "label", LABEL) == LABEL
    ]
    return sorted(out, key=lambda e: e["onset"])


def run_stream(det: Any, x: np.ndarray, block: int) -> tuple[list[dict[str, Any]], float]:
    """Push ``x [c, n]`` (at the detector's rate) through a new ``det.stream()`` in
    ``block``-sample blocks, then finish: the alerts as dicts and the seconds the pushes took."""
    stream = det.stream()  # may export or load an engine: a one-off in a live application
    start = time.perf_counter()
    alerts = []
    for i in range(0, x.shape[1], block):
        alerts += stream.push(x[:, i : i + block])
    alerts += stream.finish()
    took = time.perf_counter() - start
    out = [
        {
            "kind": a.kind,
            "time": float(a.time),
            "onset": float(a.onset),
            "confidence": float(getattr(a, "confidence", math.nan)),
            "label": getattr(a, "label", LABEL),
        }
        for a in alerts
    ]
    return out, took


def match_alerts(
    reference: list[tuple[float, float]], alerts: list[dict[str, Any]], collar: float
) -> tuple[list[dict[str, float]], list[dict[str, float]], int]:
    """Catch each reference event (in onset order) with the first unused siren ``start`` alert
    whose onset is within ``collar`` s of the true onset: ``(caught [{onset, offset, delay}],
    missed [{onset, offset}], unmatched start alerts)``; delay = alert time - true onset (s)."""
    starts = sorted(
        (a for a in alerts if a["kind"] == "start" and a["label"] == LABEL),
        key=lambda a: a["time"],
    )
    used = [False] * len(starts)
    caught, missed = [], []
    for onset, offset in reference:
        for j, a in enumerate(starts):
            if not used[j] and abs(a["onset"] - onset) <= collar:
                used[j] = True
                caught.append({"onset": onset, "offset": offset, "delay": a["time"] - onset})
                break
        else:
            missed.append({"onset": onset, "offset": offset})
    return caught, missed, used.count(False)


class SedScores:
    """sed_eval event- and segment-based metrics accumulated over streams."""

    def __init__(self, sed_eval: Any) -> None:
        self.event = sed_eval.sound_event.EventBasedMetrics(
            event_label_list=[LABEL],
            t_collar=ONSET_COLLAR_S,
            percentage_of_length=OFFSET_FRACTION,
        )
        self.segment = sed_eval.sound_event.SegmentBasedMetrics(
            event_label_list=[LABEL], time_resolution=SEGMENT_S
        )

    def add(
        self, name: str, ref: list[tuple[float, float]], est: list[dict], seconds: float
    ) -> None:
        """Score one stream of ``seconds`` s: reference ``[(onset, offset)]``, estimated events."""

        def listing(events: list[tuple[float, float]]) -> Any:
            import dcase_util

            return dcase_util.containers.MetaDataContainer(
                [
                    {"filename": name, "event_label": LABEL, "onset": a, "offset": b}
                    for a, b in events
                ]
            )

        estimated = [(e["onset"], e["offset"]) for e in est]
        self.event.evaluate(listing(ref), listing(estimated))
        self.segment.evaluate(listing(ref), listing(estimated), evaluated_length_seconds=seconds)

    def results(self) -> dict[str, float | None]:
        """F1, precision and recall, event- and segment-based (None where undefined)."""
        out = {}
        for kind, metric in (("event", self.event), ("segment", self.segment)):
            f = metric.results_overall_metrics()["f_measure"]
            for key in ("f_measure", "precision", "recall"):
                v = f.get(key)
                short = {"f_measure": "f1"}.get(key, key)
                out[f"{kind}_{short}"] = None if v is None or not math.isfinite(v) else float(v)
        return out


def percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


# --------------------------------------------------------------------------------------------
# report


def aggregate(row: Row, records: list[dict[str, Any]], sed: SedScores) -> dict[str, Any]:
    """One detector's numbers over ``records`` (its per-stream results)."""
    free = [r for r in records if r["siren_free"]]
    free_s = sum(r["seconds"] for r in free)
    false_alarms = sum(len(r["events"]) for r in free)
    delays = [c["delay"] for r in records for c in r["caught"]]
    missed = [{"stream": r["stream"], **m} for r in records for m in r["missed"]]
    det = row.detector
    latency = getattr(det, "latency_seconds", None)
    return {
        "detector": row.name,
        "latency_ms": None if latency is None else 1000 * float(latency),
        "rtf_offline_1thread": row.offline_s / row.audio_s if row.audio_s else None,
        "rtf_stream_1thread": row.stream_s / row.audio_s if row.audio_s else None,
        **sed.results(),
        "reference_events": sum(len(r["reference"]) for r in records),
        "detected_events": sum(len(r["events"]) for r in records),
        "siren_free_seconds": free_s,
        "false_alarms": false_alarms,
        "false_alarms_per_hour": 3600 * false_alarms / free_s if free_s else None,
        "false_alarms_per_minute": 60 * false_alarms / free_s if free_s else None,
        "stream_false_starts_siren_free": sum(r["unmatched_starts"] for r in free),
        "delay_p50_s": percentile(delays, 50),
        "delay_p99_s": percentile(delays, 99),
        "caught": len(delays),
        "missed": missed,
        "streams": len(records),
        **row.info,
    }


def markdown(aggregates: list[dict[str, Any]], n_streams: int, free_min: float, where: str) -> str:
    """One row per detector, with a caption saying what each number is."""

    def f(v: float | None, fmt: str) -> str:
        return "—" if v is None else format(v, fmt)

    lines = [
        f"Siren detection on {n_streams} stream(s) of {where} ({free_min:.1f} siren-free min). "
        f"Event F1: onset collar {ONSET_COLLAR_S:g} s, offset collar max({OFFSET_FRACTION:.0%} "
        f"of length, {ONSET_COLLAR_S:g} s); segment F1: {SEGMENT_S:g} s segments (sed_eval). "
        "FA: offline events on siren-free streams. Delay: streaming start alert time - true "
        "onset over caught events. RTF: compute / audio seconds, one thread.",
        "",
        "| detector | latency (ms) | RTF offline / stream | event F1 | segment F1 | FA / h "
        "| FA / min | delay p50 (s) | delay p99 (s) | missed |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for a in aggregates:
        lines.append(
            f"| {a['detector']} | {f(a['latency_ms'], '.1f')} "
            f"| {f(a['rtf_offline_1thread'], '.3f')} / {f(a['rtf_stream_1thread'], '.3f')} "
            f"| {f(a['event_f1'], '.3f')} | {f(a['segment_f1'], '.3f')} "
            f"| {f(a['false_alarms_per_hour'], '.1f')} | {f(a['false_alarms_per_minute'], '.2f')} "
            f"| {f(a['delay_p50_s'], '.2f')} | {f(a['delay_p99_s'], '.2f')} "
            f"| {len(a['missed'])} / {a['reference_events']} |"
        )
    return "\n".join(lines) + "\n"


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for pkg in ("deepsampler", "numpy", "torch", "sed_eval", "dcase_util", "soxr"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def _json_safe(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_json_safe(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return None  # JSON has no NaN
    return v


def run(
    folder: Path,
    detectors: list[str],
    *,
    block_ms: float | None = None,
    limit: int | None = None,
    command: list[str] | None = None,
) -> dict[str, Any]:
    """The whole benchmark: every detector (shipped name or checkpoint path, one row each) on
    every stream of ``folder`` (the first ``limit``), streaming blocks of ``block_ms`` ms (None:
    each detector's hop). Returns the JSON document (``command``: the command line to record)."""
    import torch
    from tqdm import tqdm

    from deepsampler.audio import read_audio, resample

    torch.set_num_threads(1)  # RTF on one thread
    sed_eval = import_sed_eval()
    streams = load_streams(folder, limit)
    names = list(dict.fromkeys(detectors))  # a detector given twice is run once
    rows = [Row(name, load_detector(name)) for name in names]
    for row in rows:
        det = row.detector
        row.info = {"sample_rate": det.sample_rate, "block": block_samples(det, block_ms)}
    per_row: dict[str, list[dict[str, Any]]] = {r.name: [] for r in rows}
    scores = {r.name: SedScores(sed_eval) for r in rows}
    progress = tqdm(total=len(streams) * len(rows), desc="streams", unit="run", file=sys.stderr)
    for s in streams:
        audio, sr = read_audio(s.audio)
        for row in rows:
            det = row.detector
            start = time.perf_counter()
            events = sirens_of(det.detect(audio, sr))
            row.offline_s += time.perf_counter() - start
            x = audio if sr == det.sample_rate else resample(audio, sr, det.sample_rate)
            alerts, took = run_stream(det, x, row.info["block"])
            row.stream_s += took
            row.audio_s += s.seconds
            caught, missed, unmatched = match_alerts(s.events, alerts, ONSET_COLLAR_S)
            one = SedScores(sed_eval)
            one.add(s.name, s.events, events, s.seconds)
            scores[row.name].add(s.name, s.events, events, s.seconds)
            per_row[row.name].append(
                {
                    "stream": s.name,
                    "seconds": s.seconds,
                    "siren_free": s.siren_free,
                    "reference": [list(e) for e in s.events],
                    "events": events,
                    "alerts": alerts,
                    "caught": caught,
                    "missed": missed,
                    "unmatched_starts": unmatched,
                    **one.results(),
                }
            )
            progress.update()
    progress.close()
    aggregates = [aggregate(r, per_row[r.name], scores[r.name]) for r in rows]
    free_min = sum(s.seconds for s in streams if s.siren_free) / 60
    return {
        "command": shlex.join([Path(sys.executable).name, *(command or [])]),
        "data": str(folder),
        "limit": limit,
        "settings": {
            "label": LABEL,
            "onset_collar_s": ONSET_COLLAR_S,
            "offset_collar": f"max({OFFSET_FRACTION} x reference length, {ONSET_COLLAR_S} s)",
            "segment_s": SEGMENT_S,
            "alert_match": "first unused start alert with |alert onset - true onset| <= 1 s",
            "block_ms": block_ms,
            "threads": 1,
        },
        "versions": versions(),
        "detectors": aggregates,
        "streams": {name: recs for name, recs in per_row.items()},
        "table": markdown(aggregates, len(streams), free_min, str(folder)),
    }


def parse(argv: list[str]) -> argparse.Namespace:
    """The command line of ``benchmarks/events.py``."""
    ap = argparse.ArgumentParser(prog="events.py", description=__doc__.splitlines()[0])
    ap.add_argument("dir", type=Path, metavar="DIR", help="streams folder (make_siren_streams)")
    ap.add_argument(
        "--models",
        nargs="+",
        required=True,
        metavar="DETECTOR",
        help="detectors: shipped names or checkpoint paths; one row each, labelled as given",
    )
    ap.add_argument("--block-ms", type=float, help="streaming block (default: the detector's hop)")
    ap.add_argument("--limit", type=int, help="only the first N streams")
    ap.add_argument("--json", type=Path, metavar="OUT", help="write per-stream and aggregate JSON")
    args = ap.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        ap.error("--limit: use a whole number >= 1")
    if args.block_ms is not None and args.block_ms <= 0:
        ap.error("--block-ms: use a positive number")
    return args


def main(argv: list[str] | None = None) -> int:
    """``benchmarks/events.py``: run, print the table, write ``--json``; 2 with a one-line
    error on bad input."""
    prog = sys.argv[0] if argv is None else "benchmarks/events.py"
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    try:
        result = run(
            args.dir, args.models, block_ms=args.block_ms, limit=args.limit, command=[prog, *argv]
        )
    except DeepSamplerError as exc:
        print(f"events: error: {exc}", file=sys.stderr)
        return 2
    print(result["table"], end="")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(_json_safe(result), indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0
