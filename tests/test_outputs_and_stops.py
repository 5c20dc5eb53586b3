"""What a run leaves on disk when it is stopped, killed or pointed at its own input (issue 25,
points 2, 3, 6 and 8): no ``.partial`` files after SIGTERM or the next run after SIGKILL, a live
recording kept when stopped, nothing left by a live start that fails, inputs never replaced."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from deepsampler.atomic import remove_stale_partials, stale_partials, temp_path_beside
from deepsampler.cli import main
from deepsampler.errors import DeepSamplerError
from deepsampler.interrupts import deferred_stops, install_stop_handlers
from deepsampler.models import load_checkpoint
from deepsampler.streaming import StreamingSeparator
from deepsampler.streaming.recording import record_live
from tests.conftest import write_tone


def partials(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.partial"))


# ---- stale partial files ----------------------------------------------------------------------
def test_stale_partials_are_those_of_dead_processes_and_of_this_target_only(tmp_path):
    target = tmp_path / "vocals.wav"
    dead = tmp_path / ".vocals.wav.99999999-abc123.partial"  # no such pid
    old_naming = tmp_path / ".vocals.wav.k2j4h5g6.partial"  # before pids were in the name
    alive = tmp_path / f".vocals.wav.{os.getppid()}-xyz.partial"  # our parent runs
    other = tmp_path / ".vocals.wav.bak.99999999-abc.partial"  # another file's partial
    for p in (dead, old_naming, alive, other):
        p.write_bytes(b"x")
    assert stale_partials(target) == sorted([dead, old_naming])
    assert remove_stale_partials(target) == sorted([dead, old_naming])
    assert alive.exists() and other.exists()


def test_a_new_temporary_file_clears_the_stale_ones_and_names_its_process(tmp_path):
    stale = tmp_path / ".x.wav.99999999-abc.partial"
    stale.write_bytes(b"x")
    tmp = temp_path_beside(tmp_path / "x.wav")
    assert not stale.exists()
    assert tmp.name.startswith(f".x.wav.{os.getpid()}-") and tmp.name.endswith(".partial")
    assert stale_partials(tmp_path / "x.wav") == [tmp]  # our own pid: not running another run


# ---- SIGTERM and SIGKILL on `separate` ----------------------------------------------------------
def start_separate(song: Path, out: Path, checkpoint: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "deepsampler.cli", "separate", str(song), "-o", str(out)]
    cmd += ["--model", str(checkpoint), "--threads", "1", "-q"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_partials(proc: subprocess.Popen, folder: Path, timeout: float = 60) -> None:
    """Until the run has begun writing (its partial files exist and grow)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = partials(folder) if folder.exists() else []
        if found and all(p.exists() and p.stat().st_size > 100_000 for p in found):
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("the run never started writing")


@pytest.fixture(scope="module")
def long_song(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("long") / "long.wav"
    write_tone(path, seconds=240, sr=22050, channels=2)
    return path


def test_sigterm_removes_partials_and_says_so(tmp_path, long_song, tiny_checkpoint):
    out = tmp_path / "out"
    proc = start_separate(long_song, out, tiny_checkpoint)
    wait_for_partials(proc, out)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "stopped by SIGTERM" in err and "Traceback" not in err
    assert partials(out) == [] and not list(out.rglob("*.wav"))


def test_the_run_after_a_sigkill_removes_its_partials(tmp_path, long_song, tiny_checkpoint):
    out = tmp_path / "out"
    proc = start_separate(long_song, out, tiny_checkpoint)
    wait_for_partials(proc, out)
    proc.kill()
    proc.communicate(timeout=60)
    left = partials(out)
    assert len(left) == 4  # SIGKILL cannot be caught: the next run must clean up
    short = tmp_path / "long.wav"  # same track name, a short file: the rerun is quick
    write_tone(short, seconds=1, sr=22050)
    assert (
        main(["separate", str(short), "-o", str(out), "--model", str(tiny_checkpoint), "-q"]) == 0
    )
    assert partials(out) == [] and len(list((out / "long").glob("*.wav"))) == 4


# ---- live recordings ---------------------------------------------------------------------------
class PacedStream:
    """A fake input device that calls the callback with ``block`` samples at real time until
    stopped: the shape of sounddevice.InputStream's use in live.py."""

    def __init__(self, callback, channels: int, block: int, rate: int, fail_on_start=False):
        self.callback, self.channels, self.block, self.rate = callback, channels, block, rate
        self.fail_on_start = fail_on_start
        self.stop = threading.Event()
        self.fed = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        rng = np.random.default_rng(0)
        while not self.stop.is_set():
            x = rng.uniform(-0.5, 0.5, (self.block, self.channels)).astype(np.float32)
            self.callback(x, self.block, None, None)
            self.fed += self.block
            time.sleep(self.block / self.rate)

    active = True

    def __enter__(self):
        if self.fail_on_start:
            raise RuntimeError("Error starting stream: Device unavailable")
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def live_args(tiny_checkpoint, made: list, fail_on_start: bool = False) -> dict:
    model = load_checkpoint(tiny_checkpoint).model
    cfg = model.config

    def open_stream(session, rate, block, device, out_device):
        stream = PacedStream(session.input_callback, 2, block, rate, fail_on_start)
        made.append(stream)
        return stream

    return dict(
        engine=StreamingSeparator(model),
        sample_rate=cfg.sample_rate,
        channels=cfg.audio_channels,
        sources=cfg.sources,
        hop=cfg.hop,
        block=cfg.hop,
        input_device=0,
        open_stream=open_stream,
    )


@pytest.fixture
def stop_handlers():
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    install_stop_handlers()
    yield
    for s, handler in previous.items():
        signal.signal(s, handler)


def test_a_live_recording_stopped_by_sigterm_is_kept(tmp_path, tiny_checkpoint, stop_handlers):
    made: list = []
    args = live_args(tiny_checkpoint, made)
    timer = threading.Timer(0.6, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    result = record_live(**args, output_dir=tmp_path, stems=["vocals", "bass"], seconds=30)
    timer.join()
    assert result.stopped_by == "SIGTERM"
    assert sorted(p.name for p in result.files) == ["bass.wav", "vocals.wav"]
    assert partials(tmp_path) == []
    fed = made[0].fed
    latency = args["engine"].latency_samples
    for path in result.files:
        audio, rate = sf.read(path)
        assert rate == args["sample_rate"] and audio.shape == (fed + latency, 2)
        assert np.abs(audio).max() > 0  # finalised with what was separated, not silence


def test_live_listeners_get_what_the_files_get_and_are_closed_once(
    tmp_path, tiny_checkpoint, stop_handlers
):
    """Live captions' path: a listener sees every separated block and the engine's tail, the
    same samples the stem files hold, and is closed once, after a SIGTERM stop too."""

    class Listener:
        def __init__(self) -> None:
            self.blocks: list[np.ndarray] = []
            self.closed = 0

        def push(self, y: np.ndarray) -> None:
            self.blocks.append(np.array(y, copy=True))

        def close(self) -> None:
            self.closed += 1

    made: list = []
    args = live_args(tiny_checkpoint, made)
    listener = Listener()
    timer = threading.Timer(0.6, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    result = record_live(
        **args, output_dir=tmp_path, stems=["vocals"], seconds=30, listeners=[listener]
    )
    timer.join()
    assert result.stopped_by == "SIGTERM" and listener.closed == 1
    heard = np.concatenate(listener.blocks, axis=-1)  # [s, c, n]
    vocals, _ = sf.read(result.files[0], dtype="float32")
    assert heard.shape[-1] == made[0].fed + args["engine"].latency_samples
    np.testing.assert_allclose(heard[0].T, vocals, atol=1e-4)  # the file is 16-bit PCM


@pytest.mark.parametrize("where", ["open", "start"])
def test_a_live_start_that_fails_leaves_nothing(tmp_path, tiny_checkpoint, where):
    made: list = []
    args = live_args(tiny_checkpoint, made, fail_on_start=where == "start")
    if where == "open":

        def no_device(*a):
            raise DeepSamplerError("audio device: Error querying device 0")

        args["open_stream"] = no_device
    out = tmp_path / "rec"
    before = set(threading.enumerate())
    with pytest.raises((DeepSamplerError, RuntimeError)):
        record_live(**args, output_dir=out, seconds=5)
    assert not out.exists() or list(out.rglob("*")) == []
    # the stem writer's thread ended with the run (it was left waiting on its queue before)
    assert not [t for t in set(threading.enumerate()) - before if t.name.endswith("(_loop)")]


def test_a_stop_while_finalising_is_held_back_until_the_block_ends(stop_handlers):
    done = []
    with deferred_stops(reraise=False) as received:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)  # the handler runs here: it must not raise
        done.append(True)
    assert done and received == [signal.SIGTERM]
    with pytest.raises(KeyboardInterrupt), deferred_stops():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)
        done.append(True)
    assert len(done) == 2


def test_stream_with_no_device_leaves_no_files(tmp_path, tiny_checkpoint, capsys, monkeypatch):
    """The CLI's live start with a device that cannot be opened (sounddevice faked: CI has no
    sound card, a desktop may have one)."""
    from deepsampler.streaming import live

    class NoDevices:
        class PortAudioError(Exception):
            pass

        @staticmethod
        def query_devices(device=None, kind=None):
            if device is None:
                return []
            raise NoDevices.PortAudioError("Error querying device 0")

    monkeypatch.setattr(live, "import_sounddevice", lambda: NoDevices)
    out = tmp_path / "D"
    code = main(
        [
            "stream",
            "--input-device",
            "0",
            "--output",
            str(out),
            "--model",
            str(tiny_checkpoint),
            "--engine",
            "torch",
        ]
    )
    assert code == 1
    assert "audio device" in capsys.readouterr().err
    assert not out.exists() or list(out.rglob("*")) == []
    assert main(["stream", "--list-devices"]) == 0
    assert "no audio devices found" in capsys.readouterr().out


# ---- inputs and options ------------------------------------------------------------------------
@pytest.mark.parametrize("link", [False, True])
def test_an_input_is_never_replaced_by_its_own_output(tmp_path, tiny_checkpoint, capsys, link):
    x = tmp_path / "X"
    (x / "vocals").mkdir(parents=True)
    song = x / "vocals" / "vocals.wav"
    write_tone(song, seconds=0.5)
    before = song.read_bytes()
    args = [str(song), "-o", str(x)]
    if link:  # another path to the same file (hard link) under another output folder
        (tmp_path / "Y" / "vocals").mkdir(parents=True)
        os.link(song, tmp_path / "Y" / "vocals" / "vocals.wav")
        args = [str(song), "-o", str(tmp_path / "Y")]
    assert main(["separate", *args, "--model", str(tiny_checkpoint), "-q"]) == 1
    err = capsys.readouterr().err
    assert "would replace the input" in err
    assert song.read_bytes() == before
    assert (
        main(
            [
                "stream",
                "--input",
                args[0],
                "--output",
                args[2],
                "--model",
                str(tiny_checkpoint),
                "--engine",
                "torch",
                "-q",
            ]
        )
        == 1
    )
    assert "would replace the input" in capsys.readouterr().err
    assert song.read_bytes() == before


@pytest.mark.parametrize("command", ["separate", "stream"])
def test_an_empty_stem_list_is_refused(tmp_path, tiny_checkpoint, capsys, command):
    song = tmp_path / "s.wav"
    write_tone(song, seconds=0.3)
    args = [str(song), "-o"] if command == "separate" else ["--input", str(song), "--output"]
    code = main(
        [
            command,
            *args,
            str(tmp_path / "o"),
            "--model",
            str(tiny_checkpoint),
            "--stems",
            " , ",
            "-q",
        ]
        + (["--engine", "torch"] if command == "stream" else [])
    )
    assert code == 1
    assert "names no stem" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_stream_downmixes_many_channels_when_asked(tmp_path, tiny_checkpoint, capsys):
    song = tmp_path / "six.wav"
    sf.write(song, np.random.default_rng(0).uniform(-0.3, 0.3, (22050, 6)), 22050)
    base = [
        "stream",
        "--input",
        str(song),
        "--output",
        str(tmp_path / "o"),
        "--model",
        str(tiny_checkpoint),
        "--engine",
        "torch",
        "-q",
    ]
    assert main(base) == 1
    assert "--downmix" in capsys.readouterr().err
    assert main([*base, "--downmix"]) == 0
    audio, _ = sf.read(tmp_path / "o" / "six" / "vocals.wav")
    assert audio.shape == (22050, 2)


def test_a_rerun_in_another_format_says_the_old_stems_remain(tmp_path, tiny_checkpoint, capsys):
    song = tmp_path / "s.wav"
    write_tone(song, seconds=0.3)
    base = ["separate", str(song), "-o", str(tmp_path / "o"), "--model", str(tiny_checkpoint)]
    assert main(base) == 0
    assert "earlier run in another format" not in capsys.readouterr().out
    assert main([*base, "--format", "flac"]) == 0
    out = capsys.readouterr().out
    assert "still holds vocals.wav, drums.wav, bass.wav, other.wav" in out


def test_a_truncated_input_warns_in_one_line(tmp_path, tiny_checkpoint, capsys):
    song = tmp_path / "cut.wav"
    write_tone(song, seconds=1.0, subtype="PCM_16")
    data = song.read_bytes()
    song.write_bytes(data[: len(data) // 2])
    assert (
        main(
            [
                "separate",
                str(song),
                "-o",
                str(tmp_path / "o"),
                "--model",
                str(tiny_checkpoint),
                "-q",
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "truncated" in line]
    assert len(lines) == 1 and lines[0].startswith("deepsampler: warning: ")


def test_stream_defaults_to_one_thread_and_the_fastest_engine(tmp_path, tiny_checkpoint, capsys):
    """Issue 25 point 4: torch's default thread count missed every live deadline; one thread and
    the onnx engine (installed with the dev extra) are the defaults."""
    import torch

    song = tmp_path / "s.wav"
    write_tone(song, seconds=0.5)
    torch.set_num_threads(2)
    try:
        code = main(
            [
                "stream",
                "--input",
                str(song),
                "--output",
                str(tmp_path / "o"),
                "--model",
                str(tiny_checkpoint),
            ]
        )
        assert code == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(os.cpu_count() or 1)
    assert "engine onnx, 1 thread(s)" in capsys.readouterr().out
