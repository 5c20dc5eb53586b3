"""Log-spaced frequency bands over STFT bins, shared by the band metrics and the detectors."""

from __future__ import annotations

import numpy as np


def log_band_edges(n_fft: int, sample_rate: int, bands: int, fmin_hz: float) -> np.ndarray:
    """Bin indices ``[bands + 1]`` of ``bands`` log-spaced bands from ``fmin_hz`` to Nyquist.

    Edge 0 is bin 0 (band 0 also takes the bins below ``fmin_hz``) and the last edge is
    ``n_fft // 2 + 1``; every band holds at least one bin (low bands that would round to the
    same bin are pushed up, which is where a short FFT has too few bins for log spacing).
    """
    nyquist = sample_rate / 2
    if not 0 < fmin_hz < nyquist:
        raise ValueError(f"fmin_hz must be in (0, {nyquist}) Hz, got {fmin_hz}")
    bins = n_fft // 2 + 1
    if bands >= bins:
        raise ValueError(f"{bands} bands need more than {bins} bins; raise n_fft or use fewer")
    edges = np.round(np.geomspace(fmin_hz, nyquist, bands + 1) / sample_rate * n_fft).astype(int)
    edges[0], edges[-1] = 0, bins
    for i in range(1, bands):  # strictly increasing: no empty band, room left for the rest
        edges[i] = min(max(edges[i], edges[i - 1] + 1), bins - (bands - i))
    return edges
