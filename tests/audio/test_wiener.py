"""Multichannel Wiener post-filter: stems sum to the mixture, separable sources come back."""

from __future__ import annotations

import numpy as np
import pytest

from deepsampler.audio.wiener import wiener_postfilter

RATE = 16000


def _sources() -> np.ndarray:
    """Two stereo sources in disjoint bands (300 Hz and 3 kHz tones with different panning)."""
    t = np.arange(RATE) / RATE
    low = np.sin(2 * np.pi * 300 * t)
    high = 0.5 * np.sin(2 * np.pi * 3000 * t)
    return np.stack([[low, 0.3 * low], [0.2 * high, high]]).astype(np.float32)


@pytest.mark.parametrize("iterations", [0, 1, 2])
def test_filtered_stems_sum_to_the_mixture(iterations: int) -> None:
    rng = np.random.default_rng(0)
    src = _sources()
    mix = src.sum(0)
    rough = src + 0.3 * rng.standard_normal(src.shape).astype(np.float32)  # a poor estimate
    out = wiener_postfilter(rough, mix, iterations, n_fft=512, hop=128)
    assert out.shape == src.shape
    np.testing.assert_allclose(out.sum(0), mix, atol=1e-3)


def test_separable_sources_are_recovered_from_rough_estimates() -> None:
    rng = np.random.default_rng(1)
    src = _sources()
    rough = src + 0.3 * rng.standard_normal(src.shape).astype(np.float32)
    out = wiener_postfilter(rough, src.sum(0), 1, n_fft=512, hop=128)

    def err(x: np.ndarray) -> float:
        return float(np.mean((x - src)[..., 1000:-1000] ** 2))

    assert err(out) < 0.01 * err(rough)


def test_bad_shapes() -> None:
    src = _sources()
    with pytest.raises(ValueError, match="same length"):
        wiener_postfilter(src, src.sum(0)[:, :-1])
    with pytest.raises(ValueError, match="iterations"):
        wiener_postfilter(src, src.sum(0), -1)
