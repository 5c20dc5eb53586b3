"""Analysis spectra for the evaluation's metrics and plots, computed by the one STFT
(:class:`deepsampler.audio.stft.STFT`: periodic Hann window, ``torch.stft``).

The metrics and plots score or draw *whole frames of the signal*: frame ``k`` covers samples
``[k * hop, k * hop + n_fft)``, every frame lies inside the signal (no centring, no zero
padding at either end), and a signal shorter than ``n_fft`` is zero padded to one frame. The
STFT module centres its frames and pads the end to a whole number of hops (what its inverse
needs), so this adapter picks the frames that lie wholly inside the signal out of its output:
the same window and the same FFT, only a different choice of frames.

``audio.stft.STFT`` also refuses ``hop > n_fft / 2`` (no inverse exists there); a preview
spectrogram of a long file needs such hops (a few thousand columns whatever the length), so
there each ``n_fft``-long frame is cut out first and transformed on its own.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from deepsampler.audio.stft import STFT


@lru_cache(maxsize=16)
def _transform(n_fft: int, hop: int) -> STFT:
    return STFT(n_fft, hop)


def inner_frame_count(samples: int, n_fft: int, hop: int) -> int:
    """Frames wholly inside a ``samples``-long signal: ``1 + (samples - n_fft) // hop``, at least
    one (a shorter signal is zero padded to one frame)."""
    return 1 + max(0, (samples - n_fft) // hop)


def inner_stft(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """Complex spectrum of the frames wholly inside ``x``.

    Args:
        x: ``[..., samples]`` real signal (any float dtype; computed in float64).
        n_fft: window and FFT size in samples (``f = n_fft // 2 + 1`` bins).
        hop: frame step in samples (any ``hop >= 1``).

    Returns:
        ``[..., f, t]`` complex128, ``t = inner_frame_count(samples, n_fft, hop)``; frame ``k``
        is the periodic-Hann-windowed FFT of samples ``[k * hop, k * hop + n_fft)``.
    """
    wave = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))
    if wave.shape[-1] < n_fft:
        wave = torch.nn.functional.pad(wave, (0, n_fft - wave.shape[-1]))
    frames = inner_frame_count(wave.shape[-1], n_fft, hop)
    half = n_fft // 2
    if hop <= half:
        # centred frame t covers [t*hop - half, t*hop - half + n_fft): with `lead` zeros in front,
        # frame `first + k` covers [k*hop, k*hop + n_fft) of x
        lead = -half % hop
        first = (half + lead) // hop
        spec = _transform(n_fft, hop)(torch.nn.functional.pad(wave, (lead, 0)))
        spec = spec[..., first : first + frames]
    else:
        # cut each frame out, then the middle frame (t = 1, covering the whole cut) of its STFT
        # with hop n_fft // 2
        cuts = wave.unfold(-1, n_fft, hop)[..., :frames, :]  # [..., t, n_fft]
        spec = _transform(n_fft, half)(cuts)[..., 1].transpose(-1, -2)
    return spec.numpy()
