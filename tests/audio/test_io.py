import subprocess
import sys
import warnings

import numpy as np
import pytest
import soundfile as sf

from deepsampler.audio import (
    AtomicAudioWriter,
    audio_info,
    ensure_writable_dir,
    fit_channels,
    iter_blocks,
    read_audio,
    write_audio,
)
from deepsampler.errors import AudioInputError, AudioWarning, OutputError
from tests.conftest import write_tone


@pytest.mark.parametrize(
    "ext,subtype,tol",
    [
        ("wav", "FLOAT", 1e-7),
        ("flac", "PCM_24", 1e-6),
        ("ogg", "VORBIS", 0.2),
        ("mp3", "MPEG_LAYER_III", 0.2),
        ("aiff", "PCM_16", 1e-4),
    ],
)
def test_reads_common_formats(tmp_path, ext, subtype, tol):
    path = tmp_path / f"a.{ext}"
    ref = write_tone(path, seconds=1.0, sr=44100, subtype=subtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error", AudioWarning)  # a whole file is never called truncated
        audio, sr = read_audio(path)
    assert sr == 44100 and audio.dtype == np.float32 and audio.shape[0] == 2
    if ext in ("wav", "flac", "aiff"):
        np.testing.assert_allclose(audio, ref, atol=tol)
    else:  # lossy codecs: length within a frame's padding, energy preserved
        assert abs(audio.shape[1] - ref.shape[1]) < 4096
        assert np.std(audio) == pytest.approx(np.std(ref), rel=tol)


def test_missing_file(tmp_path):
    with pytest.raises(AudioInputError, match="not found"):
        audio_info(tmp_path / "nope.wav")


def test_corrupt_file(tmp_path):
    path = tmp_path / "bad.wav"
    path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(100))
    with pytest.raises(AudioInputError, match="bad.wav: cannot be read as audio"):
        audio_info(path)


@pytest.mark.parametrize(
    "name,subtype,frame_bytes",
    [("t.wav", "PCM_16", 4), ("t.wav", "FLOAT", 8), ("t.aiff", "PCM_16", 4)],
)
def test_truncated_file_warns_frames_read_and_declared(tmp_path, name, subtype, frame_bytes):
    path = tmp_path / name
    sf.write(str(path), np.zeros((44100, 2), np.float32), 44100, subtype=subtype)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 43100 * frame_bytes])  # keep the header, 1000 frames
    # measured (libsndfile 1.2.2): the header's count is trimmed to the bytes present and the
    # file reads to its end without a word, so only the header itself tells 44100 were meant
    assert sf.info(str(path)).frames == 1000
    with pytest.warns(AudioWarning) as caught:
        audio, _ = read_audio(path)
    assert audio.shape == (2, 1000)
    assert [str(w.message) for w in caught] == [
        f"{path}: truncated: read 1000 of 44100 declared frames (0.02 of 1.00 s); "
        "the rest is missing"
    ]


def test_truncated_mp3_warns(tmp_path):
    path = tmp_path / "t.mp3"
    write_tone(path, seconds=1.0, sr=44100, subtype="MPEG_LAYER_III")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    # measured: sf.info keeps the Xing header's 44100 frames; reading stops short silently
    assert sf.info(str(path)).frames == 44100
    with pytest.warns(AudioWarning, match=r"t.mp3: truncated: read \d+ of 44100 declared frames"):
        list(iter_blocks(path))


def test_truncated_flac_is_a_one_line_error(tmp_path):
    path = tmp_path / "t.flac"
    write_tone(path, seconds=1.0, sr=44100, subtype="PCM_24")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    # measured: sf.info keeps STREAMINFO's 44100 frames; reading fails with "Internal
    # psf_fseek() failed." or "flac decoder lost sync."
    with pytest.raises(AudioInputError, match="t.flac: damaged or truncated: decoding failed"):
        read_audio(path)


def test_streamed_wav_with_placeholder_size_reads_without_warning(tmp_path):
    path = tmp_path / "s.wav"
    sf.write(str(path), np.zeros((1000, 1), np.float32), 8000, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    at = data.index(b"data")
    data[4:8] = data[at + 4 : at + 8] = b"\xff\xff\xff\xff"  # what ffmpeg writes to a pipe
    path.write_bytes(bytes(data))
    with warnings.catch_warnings():
        warnings.simplefilter("error", AudioWarning)
        audio, _ = read_audio(path)
    assert audio.shape == (1, 1000)


_READ_EACH = """
import os, sys
from deepsampler.audio import read_audio
from deepsampler.errors import AudioInputError
for name in sys.argv[1:]:
    try:
        read_audio(name)
    except AudioInputError as exc:
        print(exc)
os.write(2, b"fd 2 restored\\n")
"""


def test_not_audio_files_give_one_clean_line_and_nothing_on_stderr(tmp_path):
    files = {
        "x.mp3": b"hello\n",  # libmpg123 printed "Illegal Audio-MPEG-Header" notes to fd 2
        "x.wav": b"hello\n",
        "b.mp3": bytes(range(256)) * 4,
        "e.mp3": b"",
        "e.wav": b"",
        "r.mp3": b"RIFF" + bytes(60),  # a broken wav named .mp3 also ends in libmpg123
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    # the noise comes from C code writing to fd 2, so only a child process can catch it
    done = subprocess.run(
        [sys.executable, "-c", _READ_EACH, *files],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.stderr == "fd 2 restored\n"
    hint = "check the path, or export the audio as wav, flac, ogg or mp3"
    formats = "wav, flac, ogg, mp3 or aiff"
    assert done.stdout.splitlines() == [
        f"x.mp3: not an audio file (its content is text, not {formats}); {hint}",
        f"x.wav: not an audio file (its content is text, not {formats}); {hint}",
        f"b.mp3: not an audio file (its content is not {formats}); {hint}",
        "e.mp3: is empty (0 bytes), not an audio file; check the path or export it again",
        "e.wav: is empty (0 bytes), not an audio file; check the path or export it again",
        "r.mp3: cannot be read as audio (no header or audio frames it recognises); "
        "re-export it as wav, flac, ogg or mp3",
    ]


def test_audio_under_a_misleading_or_unsniffed_name_still_reads(tmp_path):
    wav = tmp_path / "a.wav"
    write_tone(wav, seconds=0.1, sr=8000)
    disguised = wav.rename(tmp_path / "a.mp3")  # wav bytes, mp3 name
    assert read_audio(disguised)[0].shape == (2, 800)
    au = tmp_path / "b.au"  # a format libsndfile reads whose bytes are not sniffed here
    sf.write(str(au), np.zeros((800, 1), np.float32), 8000, subtype="PCM_16")
    assert read_audio(au)[0].shape == (1, 800)


def test_zero_length(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(str(path), np.zeros((0, 2)), 44100)
    with pytest.raises(AudioInputError, match="no audio samples"):
        audio_info(path)


def test_nan_is_reported_with_time(tmp_path):
    path = tmp_path / "nan.wav"
    audio = np.zeros((44100, 2), np.float32)
    audio[22050, 1] = np.nan
    sf.write(str(path), audio, 44100, subtype="FLOAT")
    with pytest.raises(AudioInputError, match=r"NaN/Inf samples \(first at 0.500 s\)"):
        list(iter_blocks(path, block_frames=1000))


def test_channel_policy():
    mono = np.ones((1, 5), np.float32)
    assert fit_channels(mono, 2).shape == (2, 5)
    six = np.arange(30, dtype=np.float32).reshape(6, 5)
    with pytest.raises(AudioInputError, match="6 channels but the model takes 2; pass --downmix"):
        fit_channels(six, 2, name="x.wav")
    down = fit_channels(six, 2, downmix=True)
    np.testing.assert_allclose(down, np.repeat(six.mean(0, keepdims=True), 2, 0))
    with pytest.raises(AudioInputError):
        fit_channels(np.ones((2, 5)), 3)


def test_atomic_writer_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.wav"
    with pytest.raises(RuntimeError):
        with AtomicAudioWriter(target, 8000, 1) as w:
            w.write(np.zeros((1, 100), np.float32))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_write_audio_round_trip_and_flac_clipping(tmp_path):
    x = np.array([[0.5, -2.0, 0.25]], np.float32)
    write_audio(tmp_path / "a.wav", x, 8000)
    np.testing.assert_array_equal(read_audio(tmp_path / "a.wav")[0], x)
    with AtomicAudioWriter(tmp_path / "b.flac", 8000, 1, "flac") as w:
        w.write(x)
        w.commit()
    assert w.clipped == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav", "b.flac"]


def test_unwritable_output_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot write output here"):
        ensure_writable_dir(blocker / "sub")
