"""Read ``deepsampler evaluate`` results back: the per-track scores of a run and a speed/quality
table over runs (what ``notebooks/analysis.ipynb`` draws). NumPy and the standard library only.

A run is an evaluation output folder holding ``summary.json`` (its format:
:mod:`deepsampler.evaluation.evaluate`); scores are in dB (PESQ in MOS, STOI in [0, 1]), ``null``
(undefined) scores read as NaN.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deepsampler.errors import DeepSamplerError


@dataclass
class Run:
    """One evaluation: its folder, a short label (the folder's path under the searched root) and
    the parsed ``summary.json``."""

    folder: Path
    label: str
    summary: dict[str, Any]

    @property
    def sources(self) -> list[str]:
        return list(self.summary["sources"])

    @property
    def tracks(self) -> list[str]:
        """Scored track names, in the summary's order."""
        return list(self.summary["tracks"])


def load_runs(root: str | Path) -> list[Run]:
    """Every run under ``root``: a ``summary.json`` file, an evaluation output folder, or a folder
    holding such folders at any depth (sorted by path). Raises DeepSamplerError if none."""
    root = Path(root)
    if root.is_file():
        paths = [root]
        root = root.parent.parent
    elif root.is_dir():
        paths = sorted(root.rglob("summary.json"))
    else:
        raise DeepSamplerError(f"{root}: not found (an output folder of `deepsampler evaluate`)")
    if not paths:
        raise DeepSamplerError(f"{root}: holds no summary.json from `deepsampler evaluate`")
    runs = []
    for path in paths:
        try:
            summary = json.loads(path.read_text())
            missing = {"sources", "tracks"} - set(summary)
        except (OSError, ValueError, TypeError) as exc:
            raise DeepSamplerError(f"{path}: not an evaluate summary ({exc})") from None
        if missing:
            raise DeepSamplerError(f"{path}: not an evaluate summary (no {sorted(missing)})")
        label = path.parent.relative_to(root).as_posix() if path.parent != root else root.name
        runs.append(Run(path.parent, label, summary))
    return runs


def _number(value: Any) -> float:
    return float("nan") if value is None else float(value)


def track_scores(run: Run, metric: str = "sdr", system: str = "model") -> np.ndarray:
    """``[tracks, sources]`` scores of ``metric`` per track (rows: :attr:`Run.tracks`, columns:
    :attr:`Run.sources`), NaN where undefined. ``system``: ``"model"`` or a baseline
    (``"mixture"``, ``"irm1"``, ``"irm2"``; NaN everywhere when the run skipped them)."""
    if system == "model":
        rows = run.summary["tracks"]
    else:  # summaries of runs without baselines, or older ones, may lack them
        rows = (run.summary.get("baseline_tracks") or {}).get(system) or {}
    return np.array(
        [
            [_number(rows.get(t, {}).get(s, {}).get(metric)) for s in run.sources]
            for t in run.tracks
        ],
        dtype=np.float64,
    ).reshape(len(run.tracks), len(run.sources))


def speed_quality(runs: list[Run]) -> list[dict[str, Any]]:
    """One row per run: label, model, mode (offline / stream), tracks scored of total, real-time
    factor (compute / audio seconds), latency (ms), median SDR per source and the mean over
    sources, mean SI-SDR and uSDR (dB), and the mean SDR of the mixture floor and the IRM1
    ceiling on the same tracks (NaN where absent)."""
    out = []
    for run in runs:
        s = run.summary
        scores, base = s.get("scores") or {}, s.get("baselines") or {}
        mean = scores.get("mean", {})
        row: dict[str, Any] = {
            "run": run.label,
            "model": s.get("model", "?"),
            "mode": "stream" if s.get("stream") else "offline",
            "tracks": f"{len(run.tracks)}/{s.get('tracks_total', len(run.tracks))}",
            "complete": bool(s.get("complete", True)),
            "rtf": _number(s.get("rtf")),
            "latency_ms": _number(s.get("latency_ms")),
        }
        for source in run.sources:
            row[f"sdr {source}"] = _number(scores.get(source, {}).get("sdr"))
        row["sdr mean"] = _number(mean.get("sdr"))
        row["si_sdr mean"] = _number(mean.get("si_sdr"))
        row["usdr mean"] = _number(mean.get("usdr"))
        row["mixture sdr"] = _number(base.get("mixture", {}).get("mean", {}).get("sdr"))
        row["irm1 sdr"] = _number(base.get("irm1", {}).get("mean", {}).get("sdr"))
        out.append(row)
    return out


def markdown_table(
    rows: list[dict[str, Any]], digits: int = 2, formats: dict[str, str] | None = None
) -> str:
    """Rows of dicts as a Markdown table: the union of their keys as columns (first-seen
    order), floats to ``digits`` decimals (``formats``: a format spec per column instead; by
    default ``rtf`` to 3 significant digits), ``—`` for NaN and missing cells."""
    columns = list(dict.fromkeys(k for r in rows for k in r))
    formats = {"rtf": ".3g"} if formats is None else formats

    def cell(column: str, v: Any) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "—"
        if isinstance(v, float):
            return format(v, formats.get(column, f".{digits}f"))
        return str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(c, r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"
