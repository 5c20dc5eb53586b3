"""PNG of the artifact detectors' per-band, per-frame maps (``stemprover detect --plot``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deepsampler.stemprover.detectors import DetectionReport


def plot_artifact_maps(report: DetectionReport, path: str | Path, title: str = "") -> Path:
    """One heat map per artifact type (bands x time, 0..1), with severity and adapter weight."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report.maps)
    fig, axes = plt.subplots(len(names), 1, figsize=(10, 2.2 * len(names)), squeeze=False)
    for ax, name in zip(axes[:, 0], names, strict=True):
        m = report.maps[name]
        t = m.frame_times_s
        extent = (float(t[0]) if len(t) else 0.0, float(t[-1]) if len(t) else 1.0, 0, len(m.map))
        im = ax.imshow(
            m.map, aspect="auto", origin="lower", vmin=0, vmax=1, cmap="magma", extent=extent
        )
        edges = m.band_edges_hz
        ax.set_yticks(np.arange(len(edges) - 1) + 0.5)
        ax.set_yticklabels([f"{edges[b]:.0f}-{edges[b + 1]:.0f}" for b in range(len(edges) - 1)])
        ax.set_ylabel("band (Hz)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_title(
            f"{name}: severity {m.severity:.2f}, adapter weight "
            f"{report.weights.get(name, 0.0):.2f}",
            fontsize=9,
        )
        fig.colorbar(im, ax=ax, fraction=0.02)
    axes[-1, 0].set_xlabel("time (s)")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path
