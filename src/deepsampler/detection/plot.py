"""``detect --plot``: the mixture's spectrogram over the detector's probability curve, with the
events shaded on both."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from deepsampler.atomic import atomic_write_bytes
from deepsampler.detection.events import Event, EventConfig
from deepsampler.evaluation.plots import _pyplot, db_spectrogram

#: at most about this many spectrogram columns, whatever the length (an hour stays small)
MAX_COLUMNS = 4000


def plot_detection(
    audio: np.ndarray,
    sample_rate: int,
    times: np.ndarray,
    prob: np.ndarray,
    events: list[Event],
    thresholds: EventConfig,
    path: str | Path,
    title: str,
) -> Path:
    """Write a PNG (atomically) of ``audio`` ``[c, n]`` at ``sample_rate`` Hz: top, its dB
    spectrogram (the top 80 dB); bottom, ``prob`` at ``times`` (s) with the on/off thresholds;
    ``events`` shaded on both."""
    plt = _pyplot()
    n = audio.shape[-1]
    n_fft = 1024 if sample_rate <= 24000 else 2048
    hop = max(n_fft // 4, -(-n // MAX_COLUMNS))
    image = db_spectrogram(audio, n_fft, hop)
    top = float(image.max())
    seconds = n / sample_rate
    fig, (ax_spec, ax_prob) = plt.subplots(
        2, 1, figsize=(11, 5), sharex=True, height_ratios=(2, 1), layout="constrained"
    )
    ax_spec.imshow(
        image,
        origin="lower",
        aspect="auto",
        extent=(0, seconds, 0, sample_rate / 2000),
        vmin=top - 80,
        vmax=top,
        cmap="magma",
    )
    ax_spec.set_ylabel("kHz")
    ax_prob.plot(times, prob, color="tab:blue", linewidth=1.0, label="probability")
    ax_prob.axhline(thresholds.on_threshold, color="tab:red", linewidth=0.8, linestyle="--")
    ax_prob.axhline(thresholds.off_threshold, color="tab:gray", linewidth=0.8, linestyle=":")
    for e in events:
        ax_spec.axvspan(e.onset, e.offset, facecolor="none", edgecolor="cyan", linewidth=1.5)
        ax_prob.axvspan(e.onset, e.offset, color="tab:orange", alpha=0.3)
    ax_prob.set_ylim(0, 1)
    ax_prob.set_xlim(0, seconds)
    ax_prob.set_xlabel("seconds")
    ax_prob.set_ylabel("p(siren)")
    fig.suptitle(f"{title}: {len(events)} event(s)")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return atomic_write_bytes(buf.getvalue(), path)
