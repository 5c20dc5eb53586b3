"""The stream command on files, and the live callback path driven by a fake audio stream."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import soundfile as sf

from deepsampler.cli import main
from deepsampler.models import DeepSampler, load_checkpoint
from deepsampler.streaming import StreamingSeparator
from deepsampler.streaming.live import LiveSession
from tests.conftest import write_tone

SOURCES = ("vocals", "drums", "bass", "other")


def test_stream_file_equals_offline_separation(tmp_path, tiny_checkpoint, capsys):
    song = tmp_path / "song.wav"
    write_tone(song, seconds=1.7, sr=22050)
    assert (
        main(
            [
                "separate",
                str(song),
                "-o",
                str(tmp_path / "off"),
                "--model",
                str(tiny_checkpoint),
                "-q",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "stream",
                "--input",
                str(song),
                "--output",
                str(tmp_path / "st"),
                "--model",
                str(tiny_checkpoint),
                "--block",
                "100",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "latency 11.6 ms" in printed and "p99" in printed and "missed deadlines" in printed
    for s in SOURCES:
        a, _ = sf.read(tmp_path / "off" / "song" / f"{s}.wav")
        b, _ = sf.read(tmp_path / "st" / "song" / f"{s}.wav")
        assert a.shape == b.shape
        assert np.abs(a - b).max() < 1e-4  # one chunk offline == stream with latency removed


def test_stream_realtime_pacing_reports_deadlines(tmp_path, tiny_checkpoint, capsys):
    song = tmp_path / "song.wav"
    write_tone(song, seconds=0.5, sr=22050)
    start = time.perf_counter()
    assert (
        main(
            [
                "stream",
                "--input",
                str(song),
                "--output",
                str(tmp_path / "o"),
                "--model",
                str(tiny_checkpoint),
                "--realtime",
            ]
        )
        == 0
    )
    assert time.perf_counter() - start >= 0.45  # paced like a live source
    assert "missed deadlines" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args,message",
    [
        ([], "give one of --input FILE or --input-device"),
        (["--input", "x.wav", "--output", "o", "--block", "-5"], "--block -5"),
        (["--input", "x.wav", "--output", "o", "--play", "kazoo"], "--play: unknown stem(s)"),
        (["--input", "x.wav"], "--input FILE needs --output DIR"),
        (["--input-device", "0"], "--input-device needs --output DIR"),
    ],
)
def test_stream_argument_errors(args, message, capsys):
    assert main(["stream", *args]) == 1
    assert message in capsys.readouterr().err


def test_stream_refuses_offline_model(tmp_path, capsys):
    from deepsampler.models import preset_config, save_checkpoint

    path = save_checkpoint(
        tmp_path / "off.pt",
        DeepSampler(preset_config("tiny", causal=False)),
        training={"purpose": "test"},
    )
    song = tmp_path / "s.wav"
    write_tone(song, seconds=0.2)
    assert (
        main(["stream", "--input", str(song), "--output", str(tmp_path), "--model", str(path)]) == 1
    )
    assert "streaming needs a causal model" in capsys.readouterr().err


class FakeStream:
    """Stands in for sounddevice.Stream: on enter, a thread calls the duplex callback with
    ``blocks`` of input at (faster than) real time; ``slow`` makes the engine miss deadlines."""

    def __init__(self, callback, audio: np.ndarray, block: int, status_every: int = 0):
        self.callback, self.audio, self.block = callback, audio, block
        self.status_every = status_every
        self.played: list[np.ndarray] = []
        self.thread = threading.Thread(target=self._run)

    def _run(self):
        for k, i in enumerate(range(0, self.audio.shape[0] - self.block + 1, self.block)):
            out = np.zeros((self.block, 2), np.float32)
            status = (
                "output underflow" if self.status_every and k % self.status_every == 0 else None
            )
            self.callback(self.audio[i : i + self.block], out, self.block, None, status)
            self.played.append(out)

    @property
    def active(self) -> bool:  # like sounddevice: False once the stream has stopped
        return self.thread.is_alive()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.thread.join()


def test_live_callback_path_with_fake_stream(tiny_checkpoint):
    model = load_checkpoint(tiny_checkpoint).model
    engine = StreamingSeparator(model)
    cfg = model.config
    mono = np.random.default_rng(0).uniform(-0.5, 0.5, (cfg.hop * 20, 1)).astype(np.float32)
    written = []
    session = LiveSession(
        engine,
        cfg.sample_rate,
        2,
        cfg.sources,
        ["vocals", "bass"],
        cfg.hop,
        on_output=written.append,
    )
    fake = FakeStream(session.duplex_callback, mono, cfg.hop, status_every=5)
    start = time.perf_counter()
    stats = session.run(fake, seconds=30)
    assert time.perf_counter() - start < 10  # returned when the stream stopped, not at 30 s
    fake.thread.join()
    assert len(fake.played) == 20 and len(written) == 20
    summary = stats.summary()
    assert summary["blocks"] == 20 and summary["xruns"] == 4 and summary["p99_ms"] > 0
    # what was played is vocals + bass of what the engine produced from the duplicated mono input
    ref_engine = StreamingSeparator(model)
    y, _ = ref_engine.step(
        __import__("torch").from_numpy(np.repeat(mono.T, 2, 0)), ref_engine.init_state()
    )
    expected = (y[0] + y[2]).numpy()
    np.testing.assert_allclose(np.concatenate(fake.played).T, expected, atol=1e-5)


def test_live_engine_failure_is_reported_not_raised_in_callback(tiny_checkpoint):
    class Broken:
        latency_samples = 0

        def init_state(self, batch=1):
            return None

        def step(self, x, state):
            raise RuntimeError("boom")

    session = LiveSession(Broken(), 22050, 2, SOURCES, ["vocals"], 128)
    fake = FakeStream(session.duplex_callback, np.zeros((1280, 2), np.float32), 128)
    with pytest.raises(Exception, match="live processing stopped: boom"):
        session.run(fake, seconds=5)
    assert all((p == 0).all() for p in fake.played)


def test_missed_deadlines_are_counted():
    from deepsampler.streaming.stats import HopStats

    stats = HopStats(1000, 10)
    assert stats.add(0.005, 10) is False  # 5 ms for a 10 ms block
    assert stats.add(0.02, 10) is True
    assert stats.summary()["missed_deadlines"] == 1


def test_device_numbers_become_indices():
    from deepsampler.cli.stream import _device

    assert _device("3") == 3 and _device("pulse") == "pulse" and _device(None) is None


def test_threaded_writer_and_final_tail(tiny_checkpoint):
    from deepsampler.streaming.live import ThreadedWriter

    got = []
    writer = ThreadedWriter(got.append)
    for i in range(5):
        writer.write(np.full((2, 3), i, np.float32))
    writer.close()
    assert [int(b[0, 0]) for b in got] == [0, 1, 2, 3, 4]
    model = load_checkpoint(tiny_checkpoint).model
    session = LiveSession(StreamingSeparator(model), 22050, 2, SOURCES, [], model.config.hop)
    tail = session.finish()
    assert tail.shape == (4, 2, model.config.latency_samples)


def test_stats_memory_is_bounded():
    from deepsampler.streaming import stats as stats_module

    s = stats_module.HopStats(1000, 10)
    for _ in range(stats_module.KEEP + 10):
        s.add(0.001, 10)
    assert len(s.compute_ms) == stats_module.KEEP
    assert s.summary()["blocks"] == stats_module.KEEP + 10


def test_open_device_stream_builds_the_right_sounddevice_stream(monkeypatch, tiny_checkpoint):
    """Input only -> InputStream with the input callback; with an output -> duplex Stream."""
    from deepsampler.streaming import live

    made = []

    class FakeSd:
        class PortAudioError(Exception):
            pass

        @staticmethod
        def query_devices(device, kind):
            if device == "missing":
                raise ValueError("No input device matching 'missing'")
            return {"max_input_channels": 1, "max_output_channels": 8}

        @staticmethod
        def InputStream(**kwargs):
            made.append(("input", kwargs))
            return kwargs

        @staticmethod
        def Stream(**kwargs):
            made.append(("duplex", kwargs))
            return kwargs

    monkeypatch.setattr(live, "import_sounddevice", lambda: FakeSd)
    model = load_checkpoint(tiny_checkpoint).model
    session = LiveSession(StreamingSeparator(model), 22050, 2, SOURCES, ["bass"], 128)
    live.open_device_stream(session, 22050, 256, 3, None)
    live.open_device_stream(session, 22050, 256, 3, 5)
    (kind1, kw1), (kind2, kw2) = made
    assert kind1 == "input" and kw1["channels"] == 1 and kw1["callback"] == session.input_callback
    assert kind2 == "duplex" and kw2["channels"] == (1, 2) and kw2["device"] == (3, 5)
    assert kw2["samplerate"] == 22050 and kw2["blocksize"] == 256
    with pytest.raises(Exception, match="audio device: No input device matching"):
        live.open_device_stream(session, 22050, 256, "missing", None)
