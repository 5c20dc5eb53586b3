import numpy as np
import pytest

from deepsampler.audio import StreamResampler, resample


@pytest.mark.parametrize(
    "src,dst", [(44100, 22050), (48000, 44100), (16000, 44100), (44100, 44100)]
)
def test_stream_matches_one_shot_length_and_content(src, dst):
    rng = np.random.default_rng(0)
    t = np.arange(src) / src
    x = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 330 * t)]).astype(np.float32)
    x += 0.01 * rng.standard_normal(x.shape).astype(np.float32)
    whole = resample(x, src, dst)
    stream = StreamResampler(src, dst, 2)
    parts = [stream.push(x[:, i : i + 777]) for i in range(0, x.shape[1], 777)]
    parts.append(stream.push(np.zeros((2, 0), np.float32), last=True))
    y = np.concatenate(parts, axis=1)
    assert abs(y.shape[1] - whole.shape[1]) <= 1
    n = min(y.shape[1], whole.shape[1])
    np.testing.assert_allclose(y[:, 100 : n - 100], whole[:, 100 : n - 100], atol=1e-3)
    # a 440 Hz tone keeps its pitch: correlation with the ideal resampled tone
    ideal = np.sin(2 * np.pi * 440 * np.arange(n) / dst)
    assert np.corrcoef(y[0, 200 : n - 200], ideal[200 : n - 200])[0, 1] > 0.99
