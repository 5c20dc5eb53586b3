"""scripts/choose_event_rule.py: on streams whose probability curves are known (the detector's
``probabilities`` is replaced by curves drawn from the annotations: each siren split in two by a
dip, a short blip in a siren-free stream), the chosen rule merges the fragments and drops the
blip (event F1 1, no false alarm) where the configured rule does neither; the written checkpoint
loads with the chosen rule; the held-out test streams are refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from deepsampler.detection import Detector, EventConfig, load_detector
from tests.detection.conftest import SR, make_detector
from tests.scripts_loader import load_script

pytest.importorskip("sed_eval")

#: stream name -> (seconds, annotated sirens [(onset, offset)], blips [(onset, offset)])
STREAMS = {
    "siren_00": (20.0, [(3.0, 9.0)], []),
    "siren_01": (21.0, [(2.0, 6.0), (12.0, 18.0)], []),
    "free_00": (22.0, [], [(10.0, 10.3)]),
}


def write_streams(folder: Path, split: str) -> Path:
    folder.mkdir()
    index = []
    rng = np.random.default_rng(0)
    for name, (seconds, sirens, _) in STREAMS.items():
        sf.write(folder / f"{name}.wav", 0.01 * rng.standard_normal(int(seconds * SR)), SR)
        (folder / f"{name}.txt").write_text("".join(f"{a}\t{b}\tsiren\n" for a, b in sirens))
        index.append({"name": name, "audio": f"{name}.wav", "annotations": f"{name}.txt"})
    (folder / "streams.json").write_text(json.dumps({"split": split, "streams": index}))
    return folder


def known_curve(self, x, sample_rate):
    """The curve of the stream whose length ``x`` has: 0.9 inside sirens except a 0.8 s dip
    in the middle, 0.9 over blips, 0.05 elsewhere."""
    seconds = np.asarray(x).shape[-1] / sample_rate
    _, sirens, blips = next(v for v in STREAMS.values() if abs(v[0] - seconds) < 1e-6)
    frame = self.config.frame_seconds
    t = np.arange(int(seconds / frame)) * frame
    p = np.full(t.size, 0.05)
    for a, b in sirens + blips:
        p[(t >= a) & (t < b)] = 0.9
    for a, b in sirens:
        mid = (a + b) / 2
        p[(t >= mid - 0.4) & (t < mid + 0.4)] = 0.05
    return t, p


@pytest.fixture
def detector(tmp_path, monkeypatch) -> Path:
    monkeypatch.setattr(Detector, "probabilities", known_curve)
    rule = EventConfig(0.5, 0.3, 0.1, 0.5)  # keeps the blip, splits each siren in two
    return make_detector(tmp_path / "det.pt", None, events=rule)


def test_chosen_rule_merges_fragments_and_drops_blips(detector, tmp_path, capsys):
    streams = write_streams(tmp_path / "valid", "valid")
    out, record = tmp_path / "chosen.pt", tmp_path / "rule.json"
    script = load_script("choose_event_rule")
    code = script.main([str(detector), str(streams), "--out", str(out), "--json", str(record)])
    assert code == 0, capsys.readouterr().err
    result = json.loads(record.read_text())
    before, chosen = result["configured"], result["chosen"]
    assert before["false_alarms_per_minute"] > 0 and before["event_f1"] < 0.5
    assert chosen["event_f1"] == pytest.approx(1.0) and chosen["false_alarms_per_minute"] == 0
    rule = chosen["rule"]
    assert rule["min_gap_seconds"] > 0.8 and rule["min_event_seconds"] > 0.3
    _, settings = load_detector(out)
    assert settings.events == EventConfig(**rule)
    assert "chosen" in capsys.readouterr().out


def test_held_out_streams_are_refused(detector, tmp_path, capsys):
    streams = write_streams(tmp_path / "test", "test")
    assert load_script("choose_event_rule").main([str(detector), str(streams)]) == 1
    err = capsys.readouterr().err
    assert "held-out" in err and len(err.strip().splitlines()) == 1
    (streams / "streams.json").unlink()  # without its index a folder's split is unknown
    assert load_script("choose_event_rule").main([str(detector), str(streams)]) == 1
    assert "split cannot be told" in capsys.readouterr().err


def test_no_siren_free_stream_is_refused(detector, tmp_path, capsys):
    """--limit 2 keeps only siren streams: false alarms could not be counted."""
    streams = write_streams(tmp_path / "valid", "valid")
    script = load_script("choose_event_rule")
    assert script.main([str(detector), str(streams), "--limit", "2"]) == 1
    assert "no siren-free stream within --limit" in capsys.readouterr().err
