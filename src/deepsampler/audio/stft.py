"""STFT / iSTFT with a periodic Hann window, centred frames and zero padding.

Frame ``t`` covers samples ``[t*hop - n_fft/2, t*hop + n_fft/2)`` (zeros outside the signal),
so a signal of ``L`` samples has ``L // hop + 1`` frames and the inverse reconstructs it
exactly (up to float rounding) for any ``hop <= n_fft / 2``.
"""

from __future__ import annotations

import torch
from torch import nn


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
        """Number of frames for a signal of ``samples`` samples."""
        return samples // self.hop + 1

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """``[..., samples]`` float -> ``[..., f, t]`` complex."""
        shape = wave.shape
        spec = torch.stft(
            wave.reshape(-1, shape[-1]),
            n_fft=self.n_fft,
            hop_length=self.hop,
            window=self.window.to(wave.dtype),
            center=True,
            pad_mode="constant",
            return_complex=True,
        )
        return spec.reshape(*shape[:-1], *spec.shape[-2:])

    def inverse(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        """``[..., f, t]`` complex -> ``[..., length]`` float."""
        shape = spec.shape
        wave = torch.istft(
            spec.reshape(-1, *shape[-2:]),
            n_fft=self.n_fft,
            hop_length=self.hop,
            window=self.window.to(spec.real.dtype),
            center=True,
            length=length,
        )
        return wave.reshape(*shape[:-2], length)
