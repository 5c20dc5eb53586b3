import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deepsampler.audio import STFT


@settings(max_examples=60, deadline=None)
@given(
    n_fft=st.sampled_from([64, 256, 512, 1024, 2048]),
    hop_div=st.sampled_from([2, 3, 4, 8]),
    length=st.integers(1, 20000),
    channels=st.integers(1, 3),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_stft_istft_reconstructs(n_fft, hop_div, length, channels, dtype):
    """Within 1e-5 for audio in [-1, 1]: exact up to rounding (float64: ~1e-15); float32
    rounding in the FFTs reaches ~1e-5 where the window envelope is small (hop = n_fft/3),
    so float32 is held to 3e-5."""
    stft = STFT(n_fft, n_fft // hop_div)
    gen = torch.Generator().manual_seed(length)
    x = (torch.rand(2, channels, length, generator=gen, dtype=torch.float64) * 2 - 1).to(dtype)
    spec = stft(x)
    assert spec.shape == (2, channels, n_fft // 2 + 1, stft.frames(length))
    y = stft.inverse(spec, length)
    assert y.shape == x.shape and y.dtype == dtype
    tolerance = 1e-10 if dtype == torch.float64 else 3e-5
    assert (y - x).abs().max().item() < tolerance


def test_stft_float64_and_zero():
    stft = STFT(512, 128)
    x = torch.zeros(1, 1000, dtype=torch.float64)
    assert stft.inverse(stft(x), 1000).abs().max().item() == 0.0


@pytest.mark.parametrize("n_fft,hop", [(512, 300), (1, 1), (512, 0)])
def test_stft_rejects_unusable_hops(n_fft, hop):
    with pytest.raises(ValueError):
        STFT(n_fft, hop)


def test_stft_matches_numpy_fft_at_a_frame():
    stft = STFT(256, 64)
    x = torch.randn(1, 2000, dtype=torch.float64)
    spec = stft(x)[0]
    t = 10  # a frame fully inside the signal: covers [t*hop - n/2, t*hop + n/2)
    seg = x[0, t * 64 - 128 : t * 64 + 128].numpy() * np.hanning(257)[:-1]
    np.testing.assert_allclose(
        spec[:, t].numpy(), np.fft.rfft(seg), atol=1e-5
    )  # window built in float32
