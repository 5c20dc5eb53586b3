"""``benchmarks/events.py`` (its library, ``deepsampler.evaluation.event_bench``) end to end on
tiny generated streams, with a stand-in detector (a 500-2000 Hz band-energy detector with
hysteresis, defined here) whose events and alerts are known exactly: scores computed by hand for
a case where it is exact and for one with a miss and a false alarm, and one-line refusals of bad
input."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("sed_eval")

SR = 16000
HOP = 1600  # the stand-in's frame: 0.1 s, so tones starting on a tenth of a second align


@dataclass
class Event:
    onset: float
    offset: float
    label: str
    confidence: float


@dataclass
class Alert:
    kind: str
    time: float
    onset: float
    confidence: float
    label: str


class BandStream:
    """Streaming state of :class:`BandDetector`: a partial frame, the frame count and whether a
    siren is on (since which frame)."""

    def __init__(self, det: BandDetector) -> None:
        self.det = det
        self.buffer = np.zeros(0, np.float32)
        self.frames = 0
        self.on_since: int | None = None
        self.events: list[Event] = []  # finished events, for the offline path

    def _end(self, offset_frame: int, confidence: float) -> Alert:
        onset = self.on_since * HOP / SR
        self.events.append(Event(onset, offset_frame * HOP / SR, "siren", confidence))
        self.on_since = None
        return Alert("end", self.frames * HOP / SR, onset, confidence, "siren")

    def push(self, block: np.ndarray) -> list[Alert]:
        """``block [c, n]`` at 16 kHz -> alerts decided at the end of each completed frame."""
        self.buffer = np.concatenate([self.buffer, block.mean(axis=0)])
        alerts = []
        while self.buffer.size >= HOP:
            frame, self.buffer = self.buffer[:HOP], self.buffer[HOP:]
            p = self.det.share(frame)
            k, self.frames = self.frames, self.frames + 1
            now = self.frames * HOP / SR  # all samples of frame k are in
            if self.on_since is None and p > 0.5:
                self.on_since = k
                alerts.append(Alert("start", now, k * HOP / SR, p, "siren"))
            elif self.on_since is not None and p < 0.3:
                alerts.append(self._end(k, p))  # the siren ended where frame k starts
        return alerts

    def finish(self) -> list[Alert]:
        return [] if self.on_since is None else [self._end(self.frames, 1.0)]


class BandDetector:
    """Siren when the 500-2000 Hz share of a 0.1 s frame's energy rises above 0.5, until it falls
    below 0.3 (white noise holds about 0.19 there)."""

    sample_rate = SR
    hop = HOP
    latency_seconds = HOP / SR

    @staticmethod
    def share(frame: np.ndarray) -> float:
        power = np.abs(np.fft.rfft(frame)) ** 2
        f = np.fft.rfftfreq(frame.size, 1 / SR)
        return float(power[(f >= 500) & (f <= 2000)].sum() / (power.sum() + 1e-20))

    def stream(self) -> BandStream:
        return BandStream(self)

    def detect(self, x: np.ndarray, sample_rate: int) -> list[Event]:
        assert sample_rate == SR and x.ndim == 2
        stream = self.stream()
        stream.push(x)
        stream.finish()
        return stream.events


def write_streams(folder: Path, streams: dict[str, tuple[list, list]]) -> Path:
    """Streams of 10 s: white noise (std 0.01) plus tones ``(onset s, offset s, Hz)``; the
    annotations list the first list's tones, the second list's tones are unannotated."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    index = []
    t = np.arange(10 * SR) / SR
    for name, (annotated, extra) in streams.items():
        x = 0.01 * rng.standard_normal(t.size)
        for onset, offset, hz in annotated + extra:
            on = (t >= onset) & (t < offset)
            x[on] += 0.3 * np.sin(2 * np.pi * hz * t[on])
        sf.write(folder / f"{name}.wav", x.astype(np.float32), SR, subtype="FLOAT")
        lines = "".join(f"{a:.3f}\t{b:.3f}\tsiren\n" for a, b, _ in annotated)
        (folder / f"{name}.txt").write_text(lines)
        entry = {"name": name, "audio": f"{name}.wav", "annotations": f"{name}.txt"}
        index.append(entry | {"seconds": 10.0, "siren_free": not annotated})
    (folder / "streams.json").write_text(json.dumps({"streams": index}))
    return folder


def load_benchmark() -> ModuleType:
    from deepsampler.evaluation import event_bench

    return event_bench


@pytest.fixture
def bench(monkeypatch) -> ModuleType:
    module = load_benchmark()
    monkeypatch.setattr(module, "load_detector", lambda name: BandDetector())
    return module


def test_exact_detector_scores_one_with_known_delays(bench, tmp_path, capsys):
    folder = write_streams(
        tmp_path / "exact",
        {
            "siren_00": ([(2.0, 5.0, 1000.0)], []),
            "siren_01": ([(1.0, 3.0, 1200.0), (6.0, 9.0, 800.0)], []),
            "free_00": ([], []),
        },
    )
    out = tmp_path / "out.json"
    argv = [str(folder), "--models", "sde.pt", "mixture-only.pt", "--json", str(out)]
    assert bench.main(argv) == 0
    table = capsys.readouterr().out
    data = json.loads(out.read_text())
    assert [d["detector"] for d in data["detectors"]] == ["sde.pt", "mixture-only.pt"]
    rows = [line for line in table.splitlines() if line.startswith("| sde.pt ")]
    assert len(rows) == 1 and "| 1.000 | 1.000 |" in rows[0]
    agg = data["detectors"][0]
    assert agg["event_f1"] == 1.0 and agg["segment_f1"] == 1.0
    assert agg["false_alarms"] == 0 and agg["false_alarms_per_hour"] == 0.0
    assert agg["siren_free_seconds"] == pytest.approx(10.0)
    # every start alert comes at the end of the tone's first 0.1 s frame
    assert agg["caught"] == 3 and agg["missed"] == []
    assert agg["delay_p50_s"] == pytest.approx(0.1) and agg["delay_p99_s"] == pytest.approx(0.1)
    assert agg["latency_ms"] == pytest.approx(100.0)
    assert agg["rtf_offline_1thread"] > 0 and agg["rtf_stream_1thread"] > 0
    assert "events.py" in data["command"] and "mixture-only.pt" in data["command"]
    assert data["settings"]["onset_collar_s"] == 1.0 and data["settings"]["segment_s"] == 1.0
    per_stream = {r["stream"]: r for r in data["streams"]["sde.pt"]}
    assert set(per_stream) == {"siren_00", "siren_01", "free_00"}
    assert per_stream["siren_01"]["events"][1]["onset"] == pytest.approx(6.0)
    assert per_stream["siren_01"]["events"][1]["offset"] == pytest.approx(9.0)
    assert [a["kind"] for a in per_stream["siren_00"]["alerts"]] == ["start", "end"]
    assert per_stream["free_00"]["siren_free"] and per_stream["free_00"]["events"] == []


def test_a_miss_and_a_false_alarm(bench, tmp_path, capsys):
    # the 300 Hz 'siren' is out of the stand-in's band (missed); the 1500 Hz tone in the
    # siren-free stream is not annotated (a false alarm)
    folder = write_streams(
        tmp_path / "miss",
        {
            "siren_00": ([(2.0, 5.0, 1000.0), (6.0, 9.0, 300.0)], []),
            "free_00": ([], [(3.0, 6.0, 1500.0)]),
        },
    )
    out = tmp_path / "out.json"
    assert bench.main([str(folder), "--models", "sde.pt", "--json", str(out)]) == 0
    capsys.readouterr()
    agg = json.loads(out.read_text())["detectors"][0]
    # events: 1 hit, 1 miss, 1 false positive -> P = R = F1 = 1/2
    assert agg["event_f1"] == pytest.approx(0.5)
    assert agg["event_precision"] == pytest.approx(0.5)
    assert agg["event_recall"] == pytest.approx(0.5)
    # 1 s segments: 3 hit (2-5 s), 3 missed (6-9 s), 3 false (3-6 s of the free stream)
    assert agg["segment_f1"] == pytest.approx(0.5)
    # one false alarm in 10 s of siren-free audio
    assert agg["false_alarms"] == 1
    assert agg["false_alarms_per_hour"] == pytest.approx(360.0)
    assert agg["false_alarms_per_minute"] == pytest.approx(6.0)
    assert agg["stream_false_starts_siren_free"] == 1
    assert agg["caught"] == 1 and agg["delay_p50_s"] == pytest.approx(0.1)
    assert agg["missed"] == [{"stream": "siren_00", "onset": 6.0, "offset": 9.0}]


def test_bad_input_is_one_line(tmp_path, capsys):
    bench = load_benchmark()
    assert bench.main([str(tmp_path / "missing"), "--models", "x"]) == 2
    err = capsys.readouterr().err.strip()
    assert "not found" in err and len(err.splitlines()) == 1
    folder = write_streams(tmp_path / "s", {"siren_00": ([(2.0, 5.0, 1000.0)], [])})
    (folder / "siren_00.txt").unlink()
    assert bench.main([str(folder), "--models", "x"]) == 2
    err = capsys.readouterr().err.strip()
    assert "annotations" in err and len(err.splitlines()) == 1
    (folder / "siren_00.txt").write_text("2.0\tnot-a-time\tsiren\n")
    assert bench.main([str(folder), "--models", "x"]) == 2
    err = capsys.readouterr().err.strip()
    assert "siren_00.txt:1" in err and len(err.splitlines()) == 1
    # a detector that cannot be loaded (no detection package yet, or an unknown name)
    (folder / "siren_00.txt").write_text("2.0\t5.0\tsiren\n")
    assert bench.main([str(folder), "--models", str(tmp_path / "no-such-detector.pt")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("events: error:") and len(err.splitlines()) == 1
