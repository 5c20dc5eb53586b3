"""Plots of an evaluation: per-source bars, and spectrograms of mixture, reference, estimate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from deepsampler.evaluation.spectra import inner_stft


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def plot_scores(summary: dict[str, Any], path: Path) -> None:
    """Grouped bars: SDR per source for the model, the mixture floor and the IRM oracles."""
    plt = _pyplot()
    sources = summary["sources"] + ["mean"]
    systems = [(summary["model"], summary["scores"])] + [
        (name, summary["baselines"][key])
        for name, key in (("mixture", "mixture"), ("IRM1", "irm1"), ("IRM2", "irm2"))
    ]
    x = np.arange(len(sources))
    width = 0.8 / len(systems)
    fig, ax = plt.subplots(figsize=(1.6 * len(sources) + 2, 4))
    for i, (name, scores) in enumerate(systems):
        ax.bar(x + i * width, [scores[s]["sdr"] for s in sources], width, label=name)
    ax.set_xticks(x + 0.4 - width / 2, sources)
    ax.set_ylabel("SDR (dB)")
    ax.axhline(0, color="black", linewidth=0.5)
    ax.set_title(f"{summary['model']} on {Path(summary['data']).name}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def db_spectrogram(audio: np.ndarray, n_fft: int = 2048, hop: int = 512) -> np.ndarray:
    """``[channels, samples]`` (or ``[samples]``) -> dB magnitude ``[n_fft // 2 + 1, frames]``
    of the channel mean: periodic Hann frames wholly inside the signal, ``hop`` samples apart
    (any ``hop >= 1``), at least one frame (:func:`~deepsampler.evaluation.spectra.inner_stft`)."""
    mono = np.asarray(audio, dtype=np.float64).reshape(-1, np.shape(audio)[-1]).mean(axis=0)
    return 20 * np.log10(np.abs(inner_stft(mono, n_fft, hop)) + 1e-6)


def plot_stem_spectrograms(
    mixture: np.ndarray,
    stems: dict[str, np.ndarray],
    sample_rate: int,
    path: Path,
    title: str,
    max_seconds: float = 30.0,
) -> Path:
    """One row per signal (the mixture, then each stem ``[channels, samples]``): dB spectrograms
    on a shared colour scale (the mixture's top 80 dB), first ``max_seconds`` s. Writes a PNG."""
    plt = _pyplot()
    n = min(mixture.shape[-1], int(max_seconds * sample_rate))
    rows = [("mixture", mixture)] + list(stems.items())
    images = [(name, db_spectrogram(np.asarray(x)[..., :n])) for name, x in rows]
    top = images[0][1].max()
    fig, axes = plt.subplots(
        len(rows), 1, figsize=(10, 1.7 * len(rows) + 0.6), squeeze=False, layout="constrained"
    )
    extent = (0, n / sample_rate, 0, sample_rate / 2000)
    for ax, (name, img) in zip(axes[:, 0], images, strict=True):
        shown = ax.imshow(
            img, origin="lower", aspect="auto", extent=extent, vmin=top - 80, vmax=top, cmap="magma"
        )
        ax.set_ylabel(f"{name}\nkHz", fontsize=8)
    axes[-1, 0].set_xlabel("seconds")
    fig.colorbar(shown, ax=axes[:, 0].tolist(), label="dB", shrink=0.6)
    fig.suptitle(title)
    path = Path(path)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_spectrograms(
    track, estimates: dict[str, np.ndarray], sources: tuple[str, ...], path: Path, title: str
) -> None:
    """Rows: sources; columns: mixture, reference, estimate (dB magnitude, first 10 s)."""
    plt = _pyplot()
    n = min(track.mixture.shape[-1], 10 * track.sample_rate)

    def spec(x: np.ndarray) -> np.ndarray:
        return db_spectrogram(np.asarray(x)[..., :n])

    mix = spec(track.mixture)
    fig, axes = plt.subplots(len(sources), 3, figsize=(11, 2.2 * len(sources)), squeeze=False)
    extent = (0, n / track.sample_rate, 0, track.sample_rate / 2000)
    for row, s in enumerate(sources):
        for col, (label, img) in enumerate(
            (
                ("mixture", mix),
                (f"{s} reference", spec(track.stems[s])),
                (f"{s} estimate", spec(estimates[s])),
            )
        ):
            ax = axes[row, col]
            ax.imshow(
                img,
                origin="lower",
                aspect="auto",
                extent=extent,
                vmin=mix.max() - 80,
                vmax=mix.max(),
                cmap="magma",
            )
            ax.set_title(label, fontsize=9)
            ax.set_ylabel("kHz", fontsize=8)
    axes[-1, 1].set_xlabel("seconds")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
