"""benchmarks/stemprover.py (``evaluation.stemprover_bench``) end to end: music4-rt separates a
generated track, a tiny StemProver and its regression control refine the stems, and the table's
identity row is exactly zero."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from deepsampler.evaluation import stemprover_bench as bench
from deepsampler.stemprover.checkpoint import save_stemprover
from deepsampler.stemprover.model import StemProver
from deepsampler.stemprover.refiners import RegressionNet
from deepsampler.stemprover.train import save_regression

from .conftest import tiny_config
from .test_mask_refiner import tiny_mask_config


def _track(root: Path, rate: int = 44100, seconds: float = 2.0) -> Path:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * rate)) / rate
    folder = root / "song"
    folder.mkdir(parents=True)
    stems = {
        "vocals": 0.2 * np.sin(2 * np.pi * 440 * t) * (1 + np.sin(2 * np.pi * 2 * t)),
        "drums": 0.3 * rng.standard_normal(t.size) * (np.sin(2 * np.pi * 4 * t) > 0.8),
        "bass": 0.3 * np.sin(2 * np.pi * 55 * t),
        "other": 0.05 * rng.standard_normal(t.size),
    }
    for name, x in stems.items():
        sf.write(folder / f"{name}.wav", np.stack([x, 0.8 * x], 1).astype(np.float32), rate)
    mix = sum(stems.values())
    sf.write(folder / "mixture.wav", np.stack([mix, 0.8 * mix], 1).astype(np.float32), rate)
    return root


def test_benchmark_rows_on_a_generated_track(tmp_path) -> None:
    torch.manual_seed(0)
    # at the corpus's rate, so that the identity row involves no resampling and is exactly 0
    predictor = dataclasses.replace(tiny_mask_config(), sample_rate=44100)
    model = StemProver(dataclasses.replace(tiny_config(), sample_rate=44100, predictor=predictor))
    for name in ("bleed", "band_limit"):
        model.add_adapter(name)
    path = save_stemprover(tmp_path / "sp" / "stemprover.pt", model)
    save_regression(RegressionNet(model), tmp_path / "sp" / "regression.pt")
    data = _track(tmp_path / "data")
    out = tmp_path / "bench"
    args = ["--model", str(path), "--synthetic", str(data), "--limit", "1", "--seconds", "0.5"]
    assert bench.main([*args, "--steps", "1", "--threads", "1", "--out", str(out)]) == 0
    result = json.loads((out / "stemprover.json").read_text())
    rows = result["sets"]["synthetic (music4-rt outputs)"]
    ident = rows["identity"]
    assert abs(ident["delta_sdr"]) < 1e-4 and ident["improved_pct"] == 0.0
    assert ident["items"] == 4
    np.testing.assert_allclose(
        ident["phase_coherence_after"], ident["phase_coherence_before"], atol=1e-3
    )
    assert rows["predictor only"]["steps"] == 0
    for label in (
        "predictor only",
        "regression",
        "stemprover auto",
        bench.NO_MIX,
        "stemprover bleed only",
    ):
        assert np.isfinite(rows[label]["delta_sdr"]), label
    assert rows["stemprover auto, 1 steps"]["steps"] == 1
    assert "| identity |" in (out / "stemprover.md").read_text()


def test_guide_row_and_reseparation_row(tmp_path) -> None:
    """A guided predictor adds the guide-alone row; --reseparate scores the same items separated
    again by another model (here music4-hq), each item against its own music4-rt stem."""
    from deepsampler.audio import read_audio
    from deepsampler.evaluation.metrics import usdr

    torch.manual_seed(0)
    predictor = dataclasses.replace(tiny_mask_config(), sample_rate=44100, guide="music4-hq")
    model = StemProver(dataclasses.replace(tiny_config(), sample_rate=44100, predictor=predictor))
    path = save_stemprover(tmp_path / "sp" / "stemprover.pt", model)
    data = _track(tmp_path / "data")
    out = tmp_path / "bench"
    args = ["--model", str(path), "--synthetic", str(data), "--limit", "1", "--seconds", "1"]
    args += ["--steps", "1", "--threads", "1", "--quick", "--reseparate", "music4-hq"]
    assert bench.main([*args, "--out", str(out)]) == 0
    result = json.loads((out / "stemprover.json").read_text())
    rows = result["sets"]["synthetic (music4-rt outputs)"]
    assert rows[bench.GUIDE]["steps"] == 0 and np.isfinite(rows[bench.GUIDE]["delta_sdr"])
    label = "music4-hq re-separation (stereo, whole track)"
    reseparated = rows[label]
    assert reseparated["items"] == rows["identity"]["items"] == 4
    # the first item (vocals), recomputed from the two separators' files
    sl = bench._excerpt(int(2.0 * 44100), 1.0, 44100)
    clean, _ = read_audio(data / "song" / "vocals.wav")
    rt, _ = read_audio(out / "cache-synthetic" / "song" / "vocals.wav")
    hq, _ = read_audio(out / "cache-synthetic-music4-hq" / "song" / "vocals.wav")
    expected = usdr(clean[:, sl], hq[:, sl])[0] - usdr(clean[:, sl], rt[:, sl])[0]
    assert abs(reseparated["per_item_delta_sdr"][0] - expected) < 2e-3
    assert np.isfinite(reseparated["rtf"]) and reseparated["rtf"] > 0
    # --unguarded: the guide refines every item whatever its source, and the tables say so
    unguarded = out.parent / "bench-unguarded"
    args = ["--model", str(path), "--synthetic", str(data), "--limit", "1", "--seconds", "1"]
    args += ["--steps", "1", "--threads", "1", "--quick", "--unguarded", "--out", str(unguarded)]
    assert bench.main(args) == 0
    result = json.loads((unguarded / "stemprover.json").read_text())
    assert result["unguarded"] and list(result["sets"]) == [
        "synthetic (music4-rt outputs), unguarded"
    ]
