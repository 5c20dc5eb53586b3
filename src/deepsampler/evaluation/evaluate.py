"""Evaluate a separator on a MUSDB18-HQ-layout folder: per-track and per-source scores, the
mixture (floor) and oracle IRM1/IRM2 (ceiling) rows on the same data, a Markdown table and plots.

Every track is checked before any model runs (each holds a stem per model source, and its
mixture and stems agree in sample rate, length and channels, read from the file headers): one
error names every bad track.

Output contract (``OUT/summary.json``)::

    {"model": NAME, "data": DIR, "sources": [...], "stream": bool,
     "scores": {SOURCE: {"sdr", "si_sdr", "usdr", ...}, "mean": {...}},
     "baselines": {"mixture": {...}, "irm1": {...}, "irm2": {...}},
     "tracks": {TRACK: {SOURCE: {"sdr", ...}}}, "rtf": float, "latency_ms": float,
     "complete": bool, "tracks_total": int, "failed": {TRACK: REASON}}

A full run writes ``"complete": true`` and ``"failed": {}``, then ``OUT/summary.md`` and the
plots (``scores.png``, ``spectrograms_{best,worst}.png``). If a track fails partway (a file
turned unreadable, the separator raised, Ctrl-C), the tracks finished so far are kept: the
summary (JSON and Markdown) is written over them with ``"complete": false`` and the failing
track and its reason in ``"failed"``, no plots are drawn (stale ones from an earlier run are
removed), and the exception is raised again. With no track finished, ``"tracks"`` is empty and
the score tables are ``{}``.

SDR is museval's: median over 1 s frames per track, then median over tracks; SI-SDR and uSDR are
medians over tracks too. For a ``speech`` source, PESQ-WB and STOI (and their improvement over
the unprocessed mixture) are added.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from deepsampler.atomic import atomic_write_bytes
from deepsampler.evaluation.metrics import museval_scores, pesq_wb, si_sdr, stoi, usdr
from deepsampler.evaluation.oracle import ideal_ratio_mask
from deepsampler.evaluation.tracks import Track, check_tracks, load_track

SeparateFn = Callable[[np.ndarray, int], dict[str, np.ndarray]]
Rows = dict[str, dict[str, dict[str, float]]]  # {track: {source: {metric: value}}}

PLOTS = ("scores.png", "spectrograms_best.png", "spectrograms_worst.png")


def score_track(
    track: Track, estimates: dict[str, np.ndarray], sources: tuple[str, ...]
) -> dict[str, dict[str, float]]:
    """Scores of ``estimates`` ``{source: [c, n]}`` against the track's stems."""
    refs = np.stack([track.stems[s] for s in sources])
    est = np.stack([estimates[s] for s in sources])
    bss = museval_scores(refs, est, track.sample_rate)
    si, us = si_sdr(refs, est), usdr(refs, est)
    out = {}
    for i, s in enumerate(sources):
        row = {
            "sdr": float(bss["sdr"][i]),
            "sir": float(bss["sir"][i]),
            "sar": float(bss["sar"][i]),
            "isr": float(bss["isr"][i]),
            "si_sdr": float(si[i]),
            "usdr": float(us[i]),
        }
        if s == "speech":
            row["pesq"] = pesq_wb(track.stems[s], estimates[s], track.sample_rate)
            row["stoi"] = stoi(track.stems[s], estimates[s], track.sample_rate)
        out[s] = row
    return out


def _aggregate(
    tracks: dict[str, dict[str, dict[str, float]]], sources: tuple[str, ...]
) -> dict[str, dict[str, float]]:
    """Median over tracks per source and metric, and the mean over sources; ``{}`` when no
    track was scored (a run stopped at its first track)."""
    if not tracks:
        return {}
    agg: dict[str, dict[str, float]] = {}
    for s in sources:
        keys = next(iter(tracks.values()))[s].keys()
        agg[s] = {k: _nanmedian([t[s][k] for t in tracks.values()]) for k in keys}
    keys = set.intersection(*(set(agg[s]) for s in sources))
    agg["mean"] = {k: float(np.mean([agg[s][k] for s in sources])) for k in sorted(keys)}
    return agg


def evaluate(
    separate: SeparateFn,
    data: str | Path,
    out: str | Path,
    *,
    sources: tuple[str, ...],
    n_fft: int,
    hop: int,
    model_name: str,
    latency_ms: float,
    stream: bool = False,
    progress: bool = True,
    baselines: bool = True,
) -> dict[str, Any]:
    """Run ``separate`` (``mixture [c, n], sample_rate -> {source: [c, n]}``) over every track
    of ``data`` and write ``out/summary.json``, ``out/summary.md`` and ``out/*.png``. Returns the
    summary. ``baselines=False`` skips the mixture and oracle rows (their scores are then NaN),
    for repeated runs on the same data.

    Every track is checked (headers only) before ``separate`` is first called, and a
    DeepSamplerError names every bad one. An exception while a track runs writes the summary of
    the tracks finished so far, marked ``"complete": false``, and is then raised again."""
    folders = check_tracks(data, sources)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows: dict[str, Rows] = {k: {} for k in ("model", "mixture", "irm1", "irm2")}
    compute, audio = 0.0, 0.0  # seconds of separation and of audio separated, finished tracks
    # only the best and worst tracks so far are kept (for the spectrogram plots): memory stays
    # at two tracks whatever the folder holds
    extremes: dict[str, tuple[float, Track, dict[str, np.ndarray]]] = {}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(folders), unit="track", desc="evaluate", leave=False)

    def summarize(failed: dict[str, str]) -> dict[str, Any]:
        return _summary(
            rows,
            sources=sources,
            data=data,
            model_name=model_name,
            stream=stream,
            rtf=compute / max(audio, 1e-9),
            latency_ms=latency_ms,
            n_fft=n_fft,
            hop=hop,
            baselines=baselines,
            tracks_total=len(folders),
            failed=failed,
        )

    folder = folders[0]
    try:
        for folder in folders:
            # a track's rows and times are committed only once all of them exist, so a failure
            # partway through a track leaves nothing of it in the summary
            track = load_track(folder, sources)
            start = time.perf_counter()
            estimates = separate(track.mixture, track.sample_rate)
            seconds = time.perf_counter() - start
            scored = {"model": score_track(track, estimates, sources)}
            if baselines:
                mix = {s: track.mixture for s in sources}
                scored["mixture"] = score_track(track, mix, sources)
                refs = np.stack([track.stems[s] for s in sources])
                for power in (1, 2):
                    oracle = ideal_ratio_mask(track.mixture, refs, n_fft, hop, power)
                    scored[f"irm{power}"] = score_track(
                        track, dict(zip(sources, oracle, strict=True)), sources
                    )
            else:
                for key in ("mixture", "irm1", "irm2"):
                    scored[key] = {
                        s: {k: float("nan") for k in scored["model"][s]} for s in sources
                    }
            for key, value in scored.items():
                rows[key][track.name] = value
            compute += seconds
            audio += track.mixture.shape[-1] / track.sample_rate
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                mean_sdr = float(np.nanmean([scored["model"][s]["sdr"] for s in sources]))
            key = -np.inf if np.isnan(mean_sdr) else mean_sdr
            if "best" not in extremes or key > extremes["best"][0]:
                extremes["best"] = (key, track, estimates)
            if "worst" not in extremes or key < extremes["worst"][0]:
                extremes["worst"] = (key, track, estimates)
            if bar is not None:
                bar.update(1)
    except BaseException as exc:  # Ctrl-C too: the finished tracks are kept either way
        if bar is not None:
            bar.close()
        _write_partial(out, summarize({folder.name: _reason(exc)}), folder.name)
        raise
    if bar is not None:
        bar.close()
    summary = summarize({})
    _write_text_atomic(out / "summary.json", json.dumps(_json_safe(summary), indent=2))
    _write_text_atomic(out / "summary.md", markdown_table(summary))
    from deepsampler.evaluation.plots import plot_scores, plot_spectrograms

    plot_scores(summary, out / "scores.png")
    for label in ("worst", "best"):
        _, track, estimates = extremes[label]
        plot_spectrograms(
            track,
            estimates,
            sources,
            out / f"spectrograms_{label}.png",
            title=f"{label} track: {track.name}",
        )
    return summary


def _summary(
    rows: dict[str, Rows],
    *,
    sources: tuple[str, ...],
    data: str | Path,
    model_name: str,
    stream: bool,
    rtf: float,
    latency_ms: float,
    n_fft: int,
    hop: int,
    baselines: bool,
    tracks_total: int,
    failed: dict[str, str],
) -> dict[str, Any]:
    """The summary (see the module docstring) of the tracks in ``rows``; ``failed`` (track ->
    reason) empty for a full run, which is then ``complete``."""
    summary: dict[str, Any] = {
        "model": model_name,
        "data": str(data),
        "sources": list(sources),
        "stream": stream,
        "complete": not failed,
        "tracks_total": tracks_total,
        "failed": dict(failed),
        "scores": _aggregate(rows["model"], sources),
        "baselines": {k: _aggregate(rows[k], sources) for k in ("mixture", "irm1", "irm2")},
        "tracks": rows["model"],
        "baseline_tracks": {k: rows[k] for k in ("mixture", "irm1", "irm2")},
        "rtf": rtf,
        "latency_ms": latency_ms,
        "stft": {"n_fft": n_fft, "hop": hop},
    }
    for s in sources:  # speech: improvement over the unprocessed mixture, median over tracks
        for metric in ("pesq", "stoi"):
            if metric in summary["scores"].get(s, {}) and baselines:
                gains = [
                    rows["model"][t][s][metric] - rows["mixture"][t][s][metric]
                    for t in rows["model"]
                ]
                summary["scores"][s][f"{metric}_improvement"] = _nanmedian(gains)
    return summary


def _reason(exc: BaseException) -> str:
    """``Type: message`` (KeyboardInterrupt has no message)."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _write_partial(out: Path, summary: dict[str, Any], track: str) -> None:
    """Write the summary of a run stopped at ``track``. Called while an exception propagates:
    a failure here is reported but must not replace that exception, which says what went
    wrong first."""
    try:
        _write_text_atomic(out / "summary.json", json.dumps(_json_safe(summary), indent=2))
        _write_text_atomic(out / "summary.md", markdown_table(summary))
        for name in PLOTS:  # they would show an earlier run beside this summary
            (out / name).unlink(missing_ok=True)
    except Exception as write_exc:
        print(
            f"deepsampler evaluate: stopped at track {track}, and the partial summary could "
            f"not be written ({_reason(write_exc)})",
            file=sys.stderr,
        )
        return
    print(
        f"deepsampler evaluate: stopped at track {track}; the {len(summary['tracks'])} of "
        f"{summary['tracks_total']} track(s) finished are in {out / 'summary.json'} "
        f'("complete": false)',
        file=sys.stderr,
    )


def _write_text_atomic(path: Path, text: str) -> None:
    """Write then rename: a run killed mid-write leaves the old file or the new, never half."""
    atomic_write_bytes(text.encode(), path)


def _nanmedian(values: list[float]) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN gives NaN, which is right
        return float(np.nanmedian(values))


def _json_safe(value: Any) -> Any:
    """NaN and infinities become null: strict JSON for the scripts that read the summary."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def markdown_table(summary: dict[str, Any]) -> str:
    """SDR per source and mean (dB) for the model and the baselines, plus SI-SDR and uSDR; a
    partial run (``"complete": false``) says so first and which track failed."""
    sources = summary["sources"]
    head = "| system | " + " | ".join(sources) + " | mean | SI-SDR mean | uSDR mean |"
    lines = [
        f"# Evaluation of {summary['model']} on {summary['data']}"
        f"{' (streaming)' if summary['stream'] else ''}",
        "",
    ]
    # summaries written before "complete" existed are full runs
    if not summary.get("complete", True):
        done = len(summary["tracks"])
        failed = "; ".join(f"{t}: {why}" for t, why in summary["failed"].items())
        lines += [
            f"**PARTIAL RUN**: {done} of {summary['tracks_total']} track(s) finished "
            f"(failed: {failed}); the scores below are over the finished tracks only.",
            "",
        ]
        if not done:
            return "\n".join(lines) + "\n"
    lines += [
        "SDR in dB (BSS Eval v4: median over 1 s frames, then over tracks). "
        f"Real-time factor {summary['rtf']:.3f}, latency {summary['latency_ms']:.1f} ms.",
        "",
        head,
        "|" + "---|" * (len(sources) + 4),
    ]
    systems = [
        ("**" + summary["model"] + "**", summary["scores"]),
        ("mixture (floor)", summary["baselines"]["mixture"]),
        ("oracle IRM1", summary["baselines"]["irm1"]),
        ("oracle IRM2", summary["baselines"]["irm2"]),
    ]
    for name, sc in systems:
        cells = " | ".join(f"{sc[s]['sdr']:.2f}" for s in sources)
        lines.append(
            f"| {name} | {cells} | {sc['mean']['sdr']:.2f} | "
            f"{sc['mean']['si_sdr']:.2f} | {sc['mean']['usdr']:.2f} |"
        )
    if any("pesq" in summary["scores"][s] for s in sources):
        lines += ["", "| system | PESQ-WB | STOI |", "|---|---|---|"]
        for name, sc in systems:
            lines.append(f"| {name} | {sc['speech']['pesq']:.2f} | {sc['speech']['stoi']:.3f} |")
    return "\n".join(lines) + "\n"
