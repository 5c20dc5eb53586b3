"""Multichannel Wiener post-filter for offline separation (``norbert``, sigsep's EM filter).

The separated stems' power spectrograms become the source variances of a multichannel Wiener
filter, whose spatial covariances are refined by expectation-maximisation over the whole chunk
(Nugraha, Liutkus and Vincent 2016; as in Open-Unmix's offline mode). It uses every frame of the
chunk, so it is for offline models only; it changes how the mixture is shared among the stems,
and the filtered stems still sum to the mixture.
"""

from __future__ import annotations

import numpy as np
import torch

from deepsampler.audio.stft import STFT


def wiener_postfilter(
    stems: np.ndarray,
    mixture: np.ndarray,
    iterations: int = 1,
    n_fft: int = 4096,
    hop: int = 1024,
) -> np.ndarray:
    """Re-estimate ``stems`` ``[sources, channels, samples]`` from ``mixture``
    ``[channels, samples]`` (float, same rate) with ``iterations`` EM steps -> same shape.

    ``iterations = 0`` is the single-channel soft-mask filter (ratio of the stems' powers).
    """
    import warnings

    with warnings.catch_warnings():
        # norbert 0.2.1 imports scipy.ndimage.filters (deprecated, works until SciPy 2.0)
        warnings.simplefilter("ignore", DeprecationWarning)
        import norbert

    if iterations < 0:
        raise ValueError(f"iterations must be >= 0, got {iterations}")
    if stems.ndim != 3 or mixture.shape != stems.shape[1:]:
        raise ValueError(
            f"need stems [sources, channels, samples] and a mixture [channels, samples] of the "
            f"same length, got {stems.shape} and {mixture.shape}"
        )
    n = mixture.shape[-1]
    stft = STFT(n_fft, hop)
    with torch.no_grad():
        x = stft(torch.from_numpy(np.ascontiguousarray(mixture, dtype=np.float32)).double())
        s = stft(torch.from_numpy(np.ascontiguousarray(stems, dtype=np.float32)).double())
    # norbert's layout: x [frames, bins, channels], v [frames, bins, channels, sources]
    x_n = x.numpy().transpose(2, 1, 0)
    v = (np.abs(s.numpy()) ** 2).transpose(3, 2, 1, 0)
    y = norbert.wiener(v, x_n, iterations=iterations, use_softmask=True)
    y_t = torch.from_numpy(np.ascontiguousarray(y.transpose(3, 2, 1, 0)))
    with torch.no_grad():
        out = stft.inverse(y_t, n)
    return out.float().numpy()
