"""STFT / iSTFT with a periodic Hann window, centred frames and zero padding.

Frame ``t`` covers samples ``[t*hop - n_fft/2, t*hop + n_fft/2)`` (zeros outside the signal).
The signal is first zero-padded at the end to a whole number of hops, so a signal of ``L``
samples has ``ceil(L / hop) + 1`` frames (:func:`frame_count`) and the last frame is centred at
or after its last sample. The inverse then never divides by the small end of a window: every
kept sample lies between two frame centres, where the summed squared window (the overlap-add
envelope) is at least :data:`ENVELOPE_FLOOR` for any ``hop <= n_fft / 2``. Without the pad, a
length 1..19 samples short of a whole number of hops left its last samples under the tail of
one window only (envelope ~1e-6), and any change to the spectrum there (a mask) came back
amplified up to 256 times: a click at the end of every stem. The inverse reconstructs the
signal exactly (up to float rounding).
"""

from __future__ import annotations

import torch
from torch import nn

# The overlap-add envelope of a periodic Hann window between two frame centres is
# w(d)^2 + w(d - hop)^2 (+ more frames for smaller hops) >= 0.5 for any hop <= n_fft / 2, so
# 0.25 is a floor every kept sample clears with margin; the streaming engines divide by
# max(envelope, ENVELOPE_FLOOR) so that positions past the signal (never kept) stay finite too.
ENVELOPE_FLOOR = 0.25


def frame_count(samples: int, hop: int) -> int:
    """Frames of a ``samples``-long signal: ``ceil(samples / hop) + 1`` (the signal is padded to
    a whole number of hops, then the centred frames run from its start to its padded end)."""
    return -(-samples // hop) + 1


def end_pad(samples: int, hop: int) -> int:
    """Zeros appended to a ``samples``-long signal to make it a whole number of hops."""
    return -samples % hop


class STFT(nn.Module):
    """Complex STFT of ``[..., samples]`` to ``[..., f, t]`` and its inverse.

    Args:
        n_fft: window and FFT size in samples (``f = n_fft // 2 + 1`` bins).
        hop: hop size in samples; must be ``<= n_fft // 2`` for the inverse to exist.
    """

    def __init__(self, n_fft: int, hop: int) -> None:
        super().__init__()
        if n_fft < 2 or hop < 1 or hop > n_fft // 2:
            raise ValueError(
                f"need n_fft >= 2 and 1 <= hop <= n_fft/2, got n_fft={n_fft} hop={hop}"
            )
        self.n_fft = n_fft
        self.hop = hop
        # persistent=False: the window is derived, never part of a checkpoint
        self.register_buffer("window", torch.hann_window(n_fft, periodic=True), persistent=False)

    @property
    def freq_bins(self) -> int:
        return self.n_fft // 2 + 1

    def frames(self, samples: int) -> int:
        """Number of frames for a signal of ``samples`` samples (:func:`frame_count`)."""
        return frame_count(samples, self.hop)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """``[..., samples]`` float -> ``[..., f, t]`` complex, ``t = frames(samples)``."""
        shape = wave.shape
        flat = wave.reshape(-1, shape[-1])
        pad = end_pad(shape[-1], self.hop)
        if pad:
            flat = torch.nn.functional.pad(flat, (0, pad))
        spec = torch.stft(
            flat,
            n_fft=self.n_fft,
            hop_length=self.hop,
            window=self.window.to(wave.dtype),
            center=True,
            pad_mode="constant",
            return_complex=True,
        )
        return spec.reshape(*shape[:-1], *spec.shape[-2:])

    def inverse(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        """``[..., f, t]`` complex -> ``[..., length]`` float; ``t`` frames cover at most
        ``(t - 1) * hop`` samples (a longer ``length`` would reach under the last window's
        tail, where the envelope vanishes, and is refused)."""
        shape = spec.shape
        if length > (shape[-1] - 1) * self.hop:
            raise ValueError(
                f"{shape[-1]} frames cover at most {(shape[-1] - 1) * self.hop} samples, "
                f"not {length}: pass the length the spectrum was computed from"
            )
        wave = torch.istft(
            spec.reshape(-1, *shape[-2:]),
            n_fft=self.n_fft,
            hop_length=self.hop,
            window=self.window.to(spec.real.dtype),
            center=True,
            length=length,
        )
        return wave.reshape(*shape[:-2], length)
