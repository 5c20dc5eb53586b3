"""`deepsampler separate` end to end on generated files, and each bad input's error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from deepsampler.cli import main
from tests.conftest import write_tone

SOURCES = ("vocals", "drums", "bass", "other")


def run_cli(*args: str) -> int:
    return main([str(a) for a in args])


def test_separate_end_to_end(tmp_path, tiny_checkpoint, capsys):
    song = tmp_path / "song.wav"
    ref = write_tone(song, seconds=2.0, sr=22050)
    out = tmp_path / "out"
    assert run_cli("separate", song, "-o", out, "--model", tiny_checkpoint) == 0
    printed = capsys.readouterr().out
    assert "latency 11.6 ms" in printed and "real-time factor" in printed
    stems = {s: sf.read(out / "song" / f"{s}.wav", always_2d=True) for s in SOURCES}
    for audio, sr in stems.values():
        assert sr == 22050 and audio.shape == (ref.shape[1], 2)
        assert np.isfinite(audio).all()
    assert sorted(p.name for p in (out / "song").iterdir()) == sorted(f"{s}.wav" for s in SOURCES)


def test_separate_plot_writes_a_spectrogram_png(tmp_path, tiny_checkpoint, capsys):
    song = tmp_path / "song.wav"
    write_tone(song, seconds=1.0, sr=22050)
    out = tmp_path / "out"
    assert run_cli("separate", song, "-o", out, "--model", tiny_checkpoint, "--plot", "-q") == 0
    png = out / "song" / "spectrograms.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    width, height = Image.open(png).size
    assert width > 500 and height > 500  # mixture + 4 stem rows


def test_stems_format_and_resampling(tmp_path, tiny_checkpoint):
    song = tmp_path / "hi.flac"
    ref = write_tone(song, seconds=1.3, sr=48000, subtype="PCM_24")  # model runs at 22.05 kHz
    out = tmp_path / "out"
    code = run_cli(
        "separate",
        song,
        "-o",
        out,
        "--model",
        tiny_checkpoint,
        "--stems",
        "bass,vocals",
        "--format",
        "flac",
        "-q",
    )
    assert code == 0
    assert sorted(p.name for p in (out / "hi").iterdir()) == ["bass.flac", "vocals.flac"]
    info = sf.info(str(out / "hi" / "bass.flac"))
    assert info.samplerate == 48000 and info.frames == ref.shape[1]


def test_mono_in_mono_out_and_silence(tmp_path, tiny_checkpoint):
    song = tmp_path / "quiet.wav"
    sf.write(str(song), np.zeros(30000, np.float32), 16000)
    assert run_cli("separate", song, "-o", tmp_path, "--model", tiny_checkpoint, "-q") == 0
    for s in SOURCES:
        audio, sr = sf.read(tmp_path / "quiet" / f"{s}.wav", always_2d=True)
        assert audio.shape == (30000, 1) and sr == 16000
        assert np.abs(audio).max() == 0.0


def test_folder_input_and_long_file_in_chunks(tmp_path, tiny_checkpoint):
    folder = tmp_path / "in"
    folder.mkdir()
    write_tone(folder / "a.wav", seconds=3.0)
    write_tone(folder / "b.ogg", seconds=0.5, subtype="VORBIS")
    (folder / "notes.txt").write_text("ignored")
    out = tmp_path / "out"
    assert (
        run_cli(
            "separate",
            folder,
            "-o",
            out,
            "--model",
            tiny_checkpoint,
            "-q",
            "--chunk-seconds",
            "1",
            "--overlap-seconds",
            "0.25",
        )
        == 0
    )
    # a folder run keeps OUT/manifest.jsonl beside the track folders (issue 30)
    assert sorted(p.name for p in out.iterdir()) == ["a", "b", "manifest.jsonl"]


def bad(tmp_path, name):
    path = tmp_path / name
    if name == "corrupt.wav":
        path.write_bytes(b"RIFF" + bytes(60))
    elif name == "empty.wav":
        sf.write(str(path), np.zeros((0, 2)), 22050)
    elif name == "nan.wav":
        audio = np.zeros((5000, 2), np.float32)
        audio[4000] = np.inf
        sf.write(str(path), audio, 22050, subtype="FLOAT")
    elif name == "six.wav":
        write_tone(path, seconds=0.5, channels=6)
    return path


@pytest.mark.parametrize(
    "name,message",
    [
        ("missing.wav", "missing.wav: file not found"),
        ("corrupt.wav", "corrupt.wav: cannot be read as audio"),
        ("empty.wav", "empty.wav: contains no audio samples"),
        ("nan.wav", "nan.wav: contains NaN/Inf samples"),
        ("six.wav", "six.wav: has 6 channels but the model takes 2; pass --downmix"),
    ],
)
def test_bad_inputs_one_line_error_no_output(tmp_path, tiny_checkpoint, capsys, name, message):
    path = bad(tmp_path, name)
    out = tmp_path / "out"
    assert run_cli("separate", path, "-o", out, "--model", tiny_checkpoint, "-q") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[0] and err[0].startswith("deepsampler: error: ")
    assert not out.exists()  # nothing half-written, not even the folders


def test_downmix_flag_accepts_many_channels(tmp_path, tiny_checkpoint):
    path = bad(tmp_path, "six.wav")
    assert (
        run_cli(
            "separate", path, "-o", tmp_path / "o", "--model", tiny_checkpoint, "-q", "--downmix"
        )
        == 0
    )
    assert sf.info(str(tmp_path / "o" / "six" / "bass.wav")).channels == 2


def test_unwritable_output(tmp_path, tiny_checkpoint, capsys):
    song = tmp_path / "song.wav"
    write_tone(song, seconds=0.5)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the output folder should be")
    assert run_cli("separate", song, "-o", blocker, "--model", tiny_checkpoint, "-q") == 1
    assert "cannot write output here" in capsys.readouterr().err
    assert blocker.read_text().startswith("a file")


def test_one_bad_file_does_not_stop_the_others(tmp_path, tiny_checkpoint, capsys):
    good = tmp_path / "good.wav"
    write_tone(good, seconds=0.5)
    out = tmp_path / "out"
    assert (
        run_cli(
            "separate", tmp_path / "nope.wav", good, "-o", out, "--model", tiny_checkpoint, "-q"
        )
        == 1
    )
    assert (out / "good" / "vocals.wav").exists()
    assert "1 of 2 input(s) failed" in capsys.readouterr().err


def test_untrained_model_refused_unless_allowed(tmp_path, untrained_checkpoint, capsys):
    song = tmp_path / "song.wav"
    write_tone(song, seconds=0.5)
    assert run_cli("separate", song, "-o", tmp_path / "o", "--model", untrained_checkpoint) == 1
    assert "untrained weights" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    assert (
        run_cli(
            "separate",
            song,
            "-o",
            tmp_path / "o",
            "--model",
            untrained_checkpoint,
            "--allow-untrained",
            "-q",
        )
        == 0
    )
    assert "NOT a separation" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args,message",
    [
        (["--model", "nosuch"], "unknown model 'nosuch'"),
        (["--stems", "guitar"], "unknown stem(s) ['guitar']"),
        pytest.param(
            ["--device", "cuda"],
            "CUDA is not available",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA"),
        ),
        (["--device", "mps"], "unsupported device 'mps'"),
        (["--threads", "-1"], "--threads -1"),
        (["--chunk-seconds", "1", "--overlap-seconds", "2"], "overlap_seconds"),
        (["--shifts", "0"], "shifts 0: use a whole number >= 1"),
    ],
)
def test_bad_options(tmp_path, tiny_checkpoint, capsys, args, message):
    song = tmp_path / "song.wav"
    write_tone(song, seconds=0.3)
    if "--model" not in args:
        args = ["--model", str(tiny_checkpoint), *args]
    assert run_cli("separate", song, "-o", tmp_path / "o", "-q", *args) == 1
    assert message in capsys.readouterr().err


def _console(*args: str) -> str:
    """stdout of the installed ``deepsampler`` console script run with ``args`` (must succeed)."""
    bin_dir = Path(sys.executable).parent
    return subprocess.run(
        [bin_dir / "deepsampler", *args], check=True, capture_output=True, text=True
    ).stdout


def test_console_script_info_and_models():
    out = _console("info", "--preset", "tiny")
    assert '"parameters"' in out and '"latency_ms": 11.61' in out
    models = _console("models")
    # the shipped music4-hq carries its default offline passes (ship_model.py --shifts 2 --flip)
    hq = next(line for line in models.splitlines() if line.startswith("music4-hq "))
    assert "offline, 4 passes" in hq
    rt = next(line for line in models.splitlines() if line.startswith("music4-rt "))
    assert "causal" in rt and "passes" not in rt
    info = _console("info", "--model", "music4-hq")
    assert json.loads(info)["offline_inference"] == {"shifts": 2, "flip": True}


def test_musdb_layout_folder_and_rerun_into_same_folder(tmp_path, tiny_checkpoint):
    """A MUSDB18-HQ-style folder: each track's mixture is separated into OUT/<track>/, the stems
    beside it are not inputs; running again with -o inside the input folder skips the results."""
    data = tmp_path / "data"
    for track in ("t1", "t2"):
        (data / track).mkdir(parents=True)
        write_tone(data / track / "mixture.wav", seconds=0.4)
        write_tone(data / track / "vocals.wav", seconds=0.4)
    out = data / "separated"
    for _ in range(2):
        assert run_cli("separate", data, "-o", out, "--model", tiny_checkpoint, "-q") == 0
    assert sorted(p.name for p in out.iterdir()) == ["manifest.jsonl", "t1", "t2"]


def test_write_failure_is_one_line_and_leaves_nothing(
    tmp_path, tiny_checkpoint, capsys, monkeypatch
):
    song = tmp_path / "song.wav"
    write_tone(song, seconds=0.5)
    calls = {"n": 0}
    real_write = sf.SoundFile.write

    def failing_write(self, data):
        calls["n"] += 1
        if calls["n"] > 2:  # the first stems get some data, then the "disk is full"
            raise sf.LibsndfileError(0, "Error writing: No space left on device")
        return real_write(self, data)

    monkeypatch.setattr(sf.SoundFile, "write", failing_write)
    out = tmp_path / "out"
    assert run_cli("separate", song, "-o", out, "--model", tiny_checkpoint, "-q") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "writing failed" in err[0] and "bass.wav" in err[0]
    assert not out.exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path, tiny_checkpoint, capsys):
    song = tmp_path / "locked.wav"
    write_tone(song, seconds=0.3)
    song.chmod(0)
    assert run_cli("separate", song, "-o", tmp_path / "o", "--model", tiny_checkpoint) == 1
    assert "locked.wav: permission denied" in capsys.readouterr().err
