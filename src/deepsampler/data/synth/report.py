"""Human-readable statistics of a rendered corpus (from its ``corpus.json``): a text table and
an optional PNG of the instrument and loudness distributions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from deepsampler.errors import DeepSamplerError


def load_summary(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / "corpus.json"
    if not path.is_file():
        raise DeepSamplerError(
            f"{folder}: no corpus.json (render one with 'deepsampler data synth --out {folder}')"
        )
    return json.loads(path.read_text())


def format_summary(summary: dict[str, Any], top: int = 8) -> str:
    """Hours and pieces per split, loudness per source, the most used instruments per role."""
    s = summary["settings"]
    lines = [
        f"preset {s['preset']}, seed {s['seed']}, {summary['sample_rate']} Hz, "
        f"{summary['channels']} channel(s), sources {', '.join(summary['sources'])}",
        f"real-recordings pool: {s['real_pool'] or 'none (synthetic only)'}",
        "",
        "| split | tracks | hours | pieces |",
        "|---|---|---|---|",
    ]
    for split, hours in summary["hours_per_split"].items():
        lines.append(
            f"| {split} | {summary['tracks_per_split'].get(split, 0)} | {hours:.3f} | "
            f"{summary['pieces_per_split'].get(split, 0)} |"
        )
    lines += ["", "| source | mean RMS dBFS | p10 | p90 | silent tracks |", "|---|---|---|---|---|"]
    for src, d in summary["rms_dbfs"].items():
        lines.append(f"| {src} | {d['mean']} | {d['p10']} | {d['p90']} | {d['silent_tracks']} |")
    for role, counts in summary.get("instruments", {}).items():
        total = sum(counts.values())
        fam: dict[str, int] = {}
        for name, c in counts.items():
            fam[_family(name)] = fam.get(_family(name), 0) + c
        best = sorted(fam.items(), key=lambda kv: -kv[1])[:top]
        shown = ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in best)
        lines.append(f"\n{role} ({len(counts)} distinct, {total} parts): {shown}")
    if summary.get("styles"):
        lines.append("styles: " + ", ".join(f"{k} {v}" for k, v in summary["styles"].items()))
    run = summary.get("last_run") or {}
    if run.get("x_realtime"):
        lines.append(
            f"\nlast run: {run['tracks_rendered']} tracks, {run['audio_seconds'] / 3600:.2f} h "
            f"of audio in {run['wall_seconds']:.0f} s with {run['workers']} worker(s) = "
            f"{run['x_realtime']}x real time"
        )
    return "\n".join(lines)


def _family(instrument: str) -> str:
    """ "musescore:33:finger bass" -> "finger bass"; every singer voice -> "singer"; kits by
    their sample set."""
    parts = instrument.split(":")
    if parts[0] == "singer":
        return "singer (" + parts[1] + ")"
    if parts[0] in ("hydrogen", "sf2"):
        return f"{parts[0]} kit {parts[1]}"
    if parts[-1].startswith("kit"):
        return "SoundFont GM kit"
    return parts[-1]


def plot_summary(summary: dict[str, Any], png: str | Path, top: int = 12) -> Path:
    """Bar charts of the instruments per role and the loudness per source, as one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    roles = list(summary.get("instruments", {}))
    fig, axes = plt.subplots(1, len(roles) + 1, figsize=(4.5 * (len(roles) + 1), 4.5))
    axes = list(axes) if len(roles) else [axes]
    for ax, role in zip(axes, roles, strict=False):
        counts = sorted(summary["instruments"][role].items(), key=lambda kv: -kv[1])[:top]
        ax.barh([k[-28:] for k, _ in counts][::-1], [v for _, v in counts][::-1])
        ax.set_title(f"{role}: top {len(counts)} instruments")
        ax.tick_params(axis="y", labelsize=7)
    ax = axes[-1]
    srcs = list(summary["rms_dbfs"])
    means = [summary["rms_dbfs"][s]["mean"] or -100 for s in srcs]
    lo = [m - (summary["rms_dbfs"][s]["p10"] or m) for s, m in zip(srcs, means, strict=True)]
    hi = [(summary["rms_dbfs"][s]["p90"] or m) - m for s, m in zip(srcs, means, strict=True)]
    ax.bar(srcs, means, yerr=[lo, hi], capsize=4)
    ax.set_ylabel("RMS dBFS (mean, p10-p90)")
    ax.set_title("loudness per source")
    fig.tight_layout()
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return png
