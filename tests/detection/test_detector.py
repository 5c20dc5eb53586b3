"""Detector from Python: streaming equals offline (probabilities and events), stems fed by
another engine equal the detector's own, and the checkpoint: round trip, digest, wrong kinds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepsampler.detection import (
    DetectionSettings,
    Detector,
    EventConfig,
    events_from_alerts,
    load_detector,
)
from deepsampler.errors import CheckpointError, DeepSamplerError
from deepsampler.models import load_checkpoint
from deepsampler.separator import Separator
from tests.detection.conftest import SR, make_detector, street


def stream_in_blocks(stream, x: np.ndarray, seed: int = 0):
    """Push ``x`` in random blocks: (alerts, probabilities of every frame)."""
    rng = np.random.default_rng(seed)
    alerts, probs, i = [], [], 0
    while i < x.shape[-1]:
        m = int(rng.choice([1, 100, 128, 1000, 3000, 8000]))
        alerts += stream.push(x[:, i : i + m])
        probs.append(stream.last_probabilities)
        i += m
    alerts += stream.finish()
    probs.append(stream.last_probabilities)
    return alerts, np.concatenate(probs)


def with_events_from(det: Detector, prob: np.ndarray) -> None:
    """Thresholds inside a random network's probability range, so its curve has events."""
    on, off = np.quantile(prob, [0.75, 0.55])
    det.events = EventConfig(float(on), float(off), 0.2, 0.2)


@pytest.fixture(scope="module")
def audio() -> np.ndarray:
    return street(6.0, 21, (1.5, 4.5))


@pytest.mark.parametrize("separated", [True, False])
def test_stream_equals_offline(separated, audio, separator_path, tmp_path):
    path = make_detector(tmp_path / "d.pt", separator_path if separated else None)
    det = Detector(path, chunk_seconds=1.0)  # several offline chunks, so seams are tested too
    times, prob = det.probabilities(audio, SR)
    assert prob.shape == times.shape == (det.config.frames(audio.shape[-1]),)
    assert times[0] == pytest.approx(det.config.n_fft / 2 / SR)
    with_events_from(det, prob)
    offline = det.detect(audio, SR)
    assert len(offline) >= 2
    alerts, streamed = stream_in_blocks(det.stream(engine="torch"), audio)
    np.testing.assert_allclose(streamed, prob, atol=1e-5)
    events = events_from_alerts(alerts)
    assert [(e.onset, e.offset) for e in events] == [(e.onset, e.offset) for e in offline]
    assert [e.confidence for e in events] == pytest.approx([e.confidence for e in offline])
    # each start alert comes before its end alert, no earlier than its onset + min length
    starts = [a for a in alerts if a.kind == "start"]
    assert [a.onset for a in starts] == [e.onset for e in offline]
    for a in starts:
        assert a.time >= a.onset + det.events.min_event_seconds


def test_stems_from_another_engine_give_the_same_alerts(audio, detector_path):
    """``stream --detect``'s path: the stream's engine separates, the detector listens."""
    from deepsampler.streaming.processor import StreamProcessor

    det = Detector(detector_path)
    _, prob = det.probabilities(audio, SR)
    with_events_from(det, prob)
    own = det.stream(engine="torch")
    alerts, _ = stream_in_blocks(own, audio)
    engine = det.separator.streaming_engine("torch")
    processor = StreamProcessor(engine, SR, det.separator.config.hop, block=512)
    listener = det.stem_stream(engine.latency_samples)
    heard = []
    for y in processor.push(audio) + processor.finish():
        heard += listener.push_stems(y)
    heard += listener.finish()
    assert len(alerts) >= 2
    assert [(a.kind, a.onset, a.offset) for a in heard] == [
        (a.kind, a.onset, a.offset) for a in alerts
    ]
    # the same frames decide them, so the same stream times (the engine's latency included)
    assert [a.time for a in heard] == pytest.approx([a.time for a in alerts])


def test_interface_shapes_and_latency(detector_path):
    det = Detector(detector_path)
    assert det.sample_rate == SR and det.label == "siren"
    # one analysis frame of the detector plus the separator's latency
    expected = (det.config.n_fft + det.separator.config.latency_samples) / SR
    assert det.latency_seconds == pytest.approx(expected)
    stereo = np.stack([street(2.0, 1, None)[0]] * 2)
    times, prob = det.probabilities(stereo, 44100)  # resampled to 16 kHz, channels averaged
    assert prob.shape == times.shape and 0 <= prob.min() <= prob.max() <= 1
    with pytest.raises(DeepSamplerError, match="NaN"):
        det.detect(np.full(1000, np.nan, np.float32), SR)
    stream = det.stream(engine="torch")
    stream.finish()
    with pytest.raises(DeepSamplerError, match="finished"):
        stream.push(stereo)


def test_checkpoint_round_trip(detector_path, separator_path):
    loaded, settings = load_detector(detector_path)
    assert settings.separator == str(separator_path)
    assert settings.separator_digest == load_checkpoint(separator_path).digest
    assert settings.events == EventConfig()
    again = load_checkpoint(detector_path, kind="SDEModel")
    for k, v in loaded.model.state_dict().items():
        torch.testing.assert_close(v, again.model.state_dict()[k])
    assert loaded.model.config.use_separation and loaded.digest == again.digest


def test_wrong_kinds_are_refused_in_one_line(detector_path, separator_path):
    with pytest.raises(CheckpointError) as err:
        Detector(separator_path)
    assert "a separator checkpoint, not a sound-event detector" in str(err.value)
    with pytest.raises(CheckpointError) as err:
        Separator(detector_path)
    assert "a sound-event detector checkpoint, not a separator" in str(err.value)
    assert "\n" not in str(err.value)


def test_no_shipped_detector_says_how_to_train_one(monkeypatch):
    import deepsampler.detection.detector as detector_module

    monkeypatch.setattr(detector_module, "shipped_models", lambda: {})  # none shipped
    with pytest.raises(CheckpointError, match="no siren detector is shipped yet.*siren-sde.yaml"):
        Detector()


def test_a_retrained_separator_is_refused(separator_path, tmp_path):
    path = make_detector(tmp_path / "d.pt", separator_path)
    loaded, settings = load_detector(path)
    from deepsampler.detection import save_detector

    stale = DetectionSettings(
        settings.label, settings.separator, "0" * 64, settings.events
    )  # trained on another version of the separator
    save_detector(tmp_path / "stale.pt", loaded.model, stale, training={"purpose": "test"})
    with pytest.raises(CheckpointError, match="not the version the detector was trained on"):
        Detector(tmp_path / "stale.pt")


def test_tampered_settings_fail_the_integrity_check(detector_path, tmp_path):
    payload = torch.load(detector_path, weights_only=True)
    payload["metadata"]["detection"]["events"]["on_threshold"] = 0.01
    torch.save(payload, tmp_path / "edited.pt")
    with pytest.raises(CheckpointError, match="integrity check failed"):
        Detector(tmp_path / "edited.pt")


def test_untrained_detectors_are_refused(separator_path, tmp_path):
    path = make_detector(tmp_path / "d.pt", separator_path)
    loaded, settings = load_detector(path)
    from deepsampler.detection import save_detector

    save_detector(tmp_path / "raw.pt", loaded.model, settings, training=None)
    with pytest.raises(DeepSamplerError, match="untrained"):
        Detector(tmp_path / "raw.pt")
    assert Detector(tmp_path / "raw.pt", allow_untrained=True).name == "raw"


def test_models_lists_a_shipped_detector_beside_separators(
    detector_path, separator_path, monkeypatch, capsys
):
    import deepsampler.models as models
    from deepsampler.cli import main

    monkeypatch.setattr(
        models, "shipped_models", lambda: {"sep": separator_path, "det": detector_path}
    )
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("sep ") and "siren/background" in lines[0]
    assert lines[1].startswith("det ") and f"detector on {separator_path}" in lines[1]
