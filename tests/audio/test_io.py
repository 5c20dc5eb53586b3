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
from deepsampler.errors import AudioInputError, OutputError
from tests.conftest import write_tone


@pytest.mark.parametrize(
    "ext,subtype,tol",
    [
        ("wav", "FLOAT", 1e-7),
        ("flac", "PCM_24", 1e-6),
        ("ogg", "VORBIS", 0.2),
        ("mp3", "MPEG_LAYER_III", 0.2),
    ],
)
def test_reads_common_formats(tmp_path, ext, subtype, tol):
    path = tmp_path / f"a.{ext}"
    ref = write_tone(path, seconds=1.0, sr=44100, subtype=subtype)
    audio, sr = read_audio(path)
    assert sr == 44100 and audio.dtype == np.float32 and audio.shape[0] == 2
    if ext in ("wav", "flac"):
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
