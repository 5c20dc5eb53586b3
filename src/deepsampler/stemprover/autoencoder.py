"""Autoencoder between phase-aware spectrogram features and a small latent grid.

The encoder maps ``[batch, feature_channels, freq, frames]`` (compressed real/imag planes, see
``features.py``) to ``[batch, latent_channels, ceil(freq/4), ceil(frames/4)]``; the decoder maps it
back to the exact input size. Latents are divided by ``latent_scale`` (their standard deviation on
clean stems, set once after training) so the diffusion model sees roughly unit-variance data.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

DOWN = 4  # total down-sampling factor per axis (two stride-2 stages)


def _groups(channels: int) -> int:
    return math.gcd(8, channels)


class ConvBlock(nn.Module):
    """Residual 3x3 conv block with GroupNorm and SiLU: ``[b, c, f, t] -> [b, c, f, t]``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.GroupNorm(_groups(channels), channels),
            nn.SiLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.GroupNorm(_groups(channels), channels),
            nn.SiLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SpectrogramAutoencoder(nn.Module):
    """Convolutional autoencoder for feature segments.

    Args:
        feature_channels: planes of the feature tensor (2 for mono compressed real/imag).
        latent_channels: channels of the latent grid.
        width: channels of the first stage (the second has ``2 * width``).
    """

    def __init__(
        self, feature_channels: int = 2, latent_channels: int = 8, width: int = 32
    ) -> None:
        super().__init__()
        self.feature_channels = feature_channels
        self.latent_channels = latent_channels
        w = width
        self.encoder = nn.Sequential(
            nn.Conv2d(feature_channels, w, 3, padding=1),
            ConvBlock(w),
            nn.Conv2d(w, 2 * w, 4, stride=2, padding=1),
            ConvBlock(2 * w),
            nn.Conv2d(2 * w, 2 * w, 4, stride=2, padding=1),
            ConvBlock(2 * w),
            nn.GroupNorm(_groups(2 * w), 2 * w),
            nn.SiLU(),
            nn.Conv2d(2 * w, latent_channels, 3, padding=1),
        )
        self.decoder = nn.Sequential(
            nn.Conv2d(latent_channels, 2 * w, 3, padding=1),
            ConvBlock(2 * w),
            nn.ConvTranspose2d(2 * w, 2 * w, 4, stride=2, padding=1),
            ConvBlock(2 * w),
            nn.ConvTranspose2d(2 * w, w, 4, stride=2, padding=1),
            ConvBlock(w),
            nn.GroupNorm(_groups(w), w),
            nn.SiLU(),
            nn.Conv2d(w, feature_channels, 3, padding=1),
        )
        # set from clean training latents after the autoencoder is trained (1 until then)
        self.register_buffer("latent_scale", torch.ones(()))

    @staticmethod
    def latent_size(freq: int, frames: int) -> tuple[int, int]:
        """Latent grid ``(freq, frames)`` for a feature tensor of ``freq`` bins and ``frames``."""
        return -(-freq // DOWN), -(-frames // DOWN)

    def encode(self, feats: torch.Tensor) -> torch.Tensor:
        """``[b, feature_channels, f, t]`` -> scaled latent ``[b, latent_channels, f', t']``."""
        if feats.dim() != 4 or feats.shape[1] != self.feature_channels:
            raise ValueError(
                f"expected features [batch, {self.feature_channels}, freq, frames], "
                f"got {tuple(feats.shape)}"
            )
        f, t = feats.shape[-2:]
        lf, lt = self.latent_size(f, t)
        # zero-pad to a multiple of DOWN so that the decoder can crop back to the exact size
        x = F.pad(feats, (0, lt * DOWN - t, 0, lf * DOWN - f))
        return self.encoder(x) / self.latent_scale

    def decode(self, z: torch.Tensor, freq: int, frames: int) -> torch.Tensor:
        """Scaled latent -> features ``[b, feature_channels, freq, frames]`` (cropped to size)."""
        x = self.decoder(z * self.latent_scale)
        return x[..., :freq, :frames]

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """Reconstruction of ``feats`` through the latent."""
        return self.decode(self.encode(feats), *feats.shape[-2:])
