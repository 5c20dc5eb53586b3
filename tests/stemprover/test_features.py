import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deepsampler.audio.stft import STFT
from deepsampler.stemprover.features import FeatureConfig, PhaseAwareSTFT


@settings(max_examples=20, deadline=None)
@given(
    n_fft=st.sampled_from([64, 128, 256, 512]),
    overlap=st.sampled_from([0.5, 0.625, 0.75, 0.875]),
    compress=st.sampled_from([0.3, 0.5, 1.0]),
    length=st.integers(1, 3000),
    channels=st.integers(1, 2),
)
def test_features_round_trip(n_fft, overlap, compress, length, channels):
    """wave -> features -> wave within 1e-5 for audio in [-1, 1] (float32)."""
    feats = PhaseAwareSTFT(FeatureConfig.from_overlap(n_fft, overlap, compress))
    gen = torch.Generator().manual_seed(length)
    x = torch.rand(2, channels, length, generator=gen) * 2 - 1
    y = feats.inverse(feats(x), length)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert (y - x).abs().max().item() < 1e-5


def test_shapes_and_plane_layout():
    config = FeatureConfig(n_fft=256, hop=64)
    feats = PhaseAwareSTFT(config)
    x = torch.randn(3, 2, 1000, generator=torch.Generator().manual_seed(0))
    out = feats(x)
    assert out.shape == (3, 4, 129, -(-1000 // 64) + 1)
    assert feats.phase_features(x).shape == out.shape
    assert feats.magnitude(x).shape == (3, 2, 129, -(-1000 // 64) + 1)
    # channel 1 -> planes 2 (real) and 3 (imag): |Y| = |X|^p
    spec = STFT(256, 64)(x)[:, 1]
    magnitude = torch.hypot(out[:, 2], out[:, 3])
    assert torch.allclose(magnitude, spec.abs() ** config.compress, atol=1e-4)
    assert torch.allclose(feats.magnitude(x)[:, 1], magnitude, atol=1e-4)


def test_compress_one_is_the_plain_stft():
    feats = PhaseAwareSTFT(FeatureConfig(n_fft=128, hop=32, compress=1.0))
    x = torch.randn(1, 1, 700, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    spec = STFT(128, 32)(x)[:, 0]
    out = feats(x)
    assert torch.equal(out[:, 0], spec.real) and torch.equal(out[:, 1], spec.imag)


def test_stationary_sinusoid_has_zero_if_deviation_at_its_bin():
    config = FeatureConfig(n_fft=512, hop=128)
    sr, k0 = 16000, 40  # a sinusoid at exactly bin 40's centre frequency
    t = torch.arange(sr, dtype=torch.float64) / sr
    wave = torch.sin(2 * math.pi * k0 * sr / config.n_fft * t)[None, None]
    phase = PhaseAwareSTFT(config).phase_features(wave)
    inner = slice(8, -8)  # frames fully inside the signal
    assert phase[0, 0, k0, inner].abs().max().item() < 1e-6
    # half a bin off the centre reads 2 * 0.5 * hop / n_fft = 0.25 (times its weight, ~1)
    wave = torch.sin(2 * math.pi * (k0 + 0.5) * sr / config.n_fft * t)[None, None]
    phase = PhaseAwareSTFT(config).phase_features(wave)
    assert phase[0, 0, k0, inner].mean().item() == pytest.approx(0.25, rel=0.1)


def test_group_delay_of_an_impulse():
    config = FeatureConfig(n_fft=512, hop=128)
    wave = torch.zeros(1, 1, 4096, dtype=torch.float64)
    wave[..., 2048 + 16] = 1.0  # 16 samples after the centre of frame 16
    phase = PhaseAwareSTFT(config).phase_features(wave)
    assert torch.allclose(
        phase[0, 1, 1:, 16], torch.full((256,), -2 * 16 / 512, dtype=torch.float64)
    )


@pytest.mark.parametrize("compress", [0.3, 0.5, 0.8, 1.0])
def test_silence_reads_zero_and_gradients_are_finite(compress):
    feats = PhaseAwareSTFT(FeatureConfig(n_fft=256, hop=64, compress=compress))
    x = torch.zeros(2, 1, 1000, requires_grad=True)
    out, phase, mag = feats(x), feats.phase_features(x), feats.magnitude(x)
    assert out.abs().max() == 0 and phase.abs().max() == 0 and mag.abs().max() == 0
    (out.square().sum() + out.sum() + phase.sum() + mag.sum()).backward()
    assert torch.isfinite(x.grad).all()
    # and through the inverse, from zero features
    f = torch.zeros(1, 2, 129, 10, requires_grad=True)
    feats.inverse(f, 576).sum().backward()
    assert torch.isfinite(f.grad).all()


def test_phase_features_are_bounded_and_weighted():
    feats = PhaseAwareSTFT(FeatureConfig(n_fft=256, hop=64))
    x = torch.randn(2, 2, 3000, generator=torch.Generator().manual_seed(3))
    x[:, :, :1000] = 0  # a silent stretch reads 0
    phase = feats.phase_features(x)
    assert phase.abs().max() <= 1.0
    assert phase[..., 2:13].abs().max() == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_fft": 1},
        {"n_fft": 512, "hop": 300},
        {"n_fft": 512, "hop": 0},
        {"compress": 0.0},
        {"compress": 1.5},
    ],
)
def test_config_rejects_bad_values(kwargs):
    with pytest.raises(ValueError):
        FeatureConfig(**kwargs)


def test_overlap_round_trips():
    config = FeatureConfig.from_overlap(1024, 0.75)
    assert config.hop == 256 and config.overlap == 0.75
    with pytest.raises(ValueError, match="overlap"):
        FeatureConfig.from_overlap(1024, 0.3)


def test_bad_shapes_are_refused():
    feats = PhaseAwareSTFT(FeatureConfig(n_fft=128, hop=32))
    with pytest.raises(ValueError, match="batch, channels, samples"):
        feats(torch.zeros(100))
    with pytest.raises(ValueError, match="2\\*channels"):
        feats.inverse(torch.zeros(1, 3, 65, 4), 96)
