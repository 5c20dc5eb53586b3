"""``notebooks/analysis.ipynb`` executes (nbclient) on two small evaluations written by
``evaluation.evaluate`` here, and ``evaluation.summaries`` reads them back."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from deepsampler.errors import DeepSamplerError
from deepsampler.evaluation.evaluate import evaluate
from deepsampler.evaluation.summaries import load_runs, markdown_table, speed_quality, track_scores

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "analysis.ipynb"
SOURCES = ("vocals", "bass")
SR = 8000


def toy_folder(root: Path, tracks: int = 2, seconds: float = 1.0) -> Path:
    """``root/track{k}/{mixture,vocals,bass}.wav``: two sines in a little noise, mono, 8 kHz (1 s:
    one BSS Eval frame)."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * SR)) / SR
    for k in range(tracks):
        folder = root / f"track{k}"
        folder.mkdir(parents=True)
        stems = {
            s: 0.2 * np.sin(2 * np.pi * 110 * (i + 1) * (k + 1) * t)
            + 0.02 * rng.standard_normal(t.size)
            for i, s in enumerate(SOURCES)
        }
        for s, x in stems.items():
            sf.write(folder / f"{s}.wav", x, SR, subtype="FLOAT")
        sf.write(folder / "mixture.wav", sum(stems.values()), SR, subtype="FLOAT")
    return root


@pytest.fixture(scope="module")
def evaluations(tmp_path_factory) -> Path:
    """``eval/halves`` (each source estimated as half the mixture, with the baselines) and
    ``eval/leaky-stream`` (the true stems with 10 % of the other one, no baselines, marked as
    a streaming run)."""
    root = tmp_path_factory.mktemp("nb")
    data = toy_folder(root / "data")
    out = root / "eval"

    def halves(mixture: np.ndarray, sample_rate: int) -> dict[str, np.ndarray]:
        return {s: 0.5 * mixture for s in SOURCES}

    def leaky(mixture: np.ndarray, sample_rate: int) -> dict[str, np.ndarray]:
        # the first track's stems, recovered from the mixture by reading them back
        track = next(
            f
            for f in sorted(data.iterdir())
            if np.allclose(sf.read(f / "mixture.wav")[0], mixture[0], atol=1e-6)
        )
        stems = {s: sf.read(track / f"{s}.wav")[0][None] for s in SOURCES}
        return {s: stems[s] + 0.1 * stems[o] for s, o in zip(SOURCES, SOURCES[::-1], strict=True)}

    common = {"sources": SOURCES, "n_fft": 256, "hop": 64, "progress": False}
    evaluate(halves, data, out / "halves", model_name="halves", latency_ms=0.0, **common)
    evaluate(
        leaky,
        data,
        out / "leaky-stream",
        model_name="leaky",
        latency_ms=32.0,
        stream=True,
        baselines=False,
        **common,
    )
    return out


def test_summaries_read_back(evaluations):
    runs = load_runs(evaluations)
    assert [r.label for r in runs] == ["halves", "leaky-stream"]
    halves, leaky = runs
    assert halves.sources == list(SOURCES) and halves.tracks == ["track0", "track1"]
    scores = track_scores(leaky)
    assert scores.shape == (2, 2) and (scores > 15).all()  # 10 % leakage: about 20 dB
    assert np.isnan(track_scores(leaky, system="irm1")).all()  # no baselines in that run
    assert (track_scores(halves, system="irm1") > track_scores(halves)).all()
    rows = speed_quality(runs)
    assert [r["mode"] for r in rows] == ["offline", "stream"]
    assert rows[1]["latency_ms"] == 32.0 and math.isnan(rows[1]["irm1 sdr"])
    assert rows[0]["sdr mean"] == pytest.approx(
        np.mean([rows[0]["sdr vocals"], rows[0]["sdr bass"]])
    )
    table = markdown_table(rows)
    assert table.count("\n") == 4 and "| halves | halves | offline | 2/2 |" in table
    assert load_runs(evaluations / "halves" / "summary.json")[0].label == "halves"
    with pytest.raises(DeepSamplerError, match="no summary.json"):
        load_runs(evaluations.parent / "data")


def test_notebook_executes_on_a_small_evaluation(evaluations, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.setenv("DEEPSAMPLER_EVAL", str(evaluations))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel draws inline
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=60,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "halves: halves (offline)" in text and "leaky-stream: leaky (streaming)" in text
    tables = [o.data["text/markdown"] for o in outputs if "text/markdown" in o.get("data", {})]
    assert len(tables) == 1 and "| leaky-stream | leaky | stream | 2/2 |" in tables[0]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 3  # one per-track figure per run, and the speed/quality plot
