"""Tiny speech and siren corpora rendered end to end through the corpus writer (the music4
preset has its own file): layout, exact mixtures, determinism, split disjointness."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from deepsampler.data.synth.corpus import SynthSettings, synth_corpus

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")
SOURCES = {"speech": ("speech", "noise"), "siren": ("siren", "background")}


def _render(preset: str, out, seed: int = 3) -> dict:
    settings = SynthSettings(preset, hours=0.0025, seed=seed, track_seconds=3.0)
    return synth_corpus(settings, out, workers=1, progress=False)


@pytest.mark.parametrize("preset", ["speech", "siren"])
def test_tiny_corpus(preset, tmp_path):
    summary = _render(preset, tmp_path / "a")
    again = _render(preset, tmp_path / "b")
    assert summary["sample_rate"] == 16000 and summary["channels"] == 1
    assert summary["tracks_per_split"] == {"train": 1, "valid": 1, "test": 1}
    tracks = sorted(p for p in (tmp_path / "a").glob("*/*") if p.is_dir())
    assert len(tracks) == 3
    for t in tracks:
        mix, sr = sf.read(t / "mixture.wav", dtype="int16")
        assert sr == 16000 and mix.shape == (3 * 16000,)
        stems = [sf.read(t / f"{s}.wav", dtype="int16")[0] for s in SOURCES[preset]]
        assert np.array_equal(sum(x.astype(np.int32) for x in stems), mix)
        assert all(np.abs(x).max() > 0 for x in stems), "a silent stem"
        other = tmp_path / "b" / t.parent.name / t.name / "mixture.wav"
        assert np.array_equal(sf.read(other, dtype="int16")[0], mix), "not deterministic"
    pieces = {}
    for tr in summary["tracks"]:
        assert pieces.setdefault(tr["piece"], tr["split"]) == tr["split"]
    assert summary["tracks"] == again["tracks"]
    record = json.loads((tracks[0] / "track.json").read_text())
    assert set(record["rms_dbfs"]) == {*SOURCES[preset], "mixture"}
