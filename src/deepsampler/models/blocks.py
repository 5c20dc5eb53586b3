"""Convolutional U-Net blocks on ``[b, d, f, t]`` feature maps (channels, freq, frames).

Nothing here looks at future frames: every temporal convolution is left-padded (causal), and
normalisation is per (f, t) position over channels, never over time.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CausalTimeConv(nn.Module):
    """1-D convolution along frames with ``kernel - 1`` frames of left padding.

    Its streaming state is the last ``kernel - 1`` input frames.
    """

    def __init__(self, channels: int, kernel: int) -> None:
        super().__init__()
        self.kernel = kernel
        self.conv = nn.Conv2d(channels, channels, (1, kernel))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[b, d, f, t] -> [b, d, f, t]``."""
        return self.conv(F.pad(x, (self.kernel - 1, 0)))

    def initial_state(self, x: torch.Tensor) -> torch.Tensor:
        """Zeros ``[b, d, f, kernel - 1]`` shaped for input like ``x`` (the offline left pad)."""
        return x.new_zeros(*x.shape[:-1], self.kernel - 1)

    def step(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Streaming: ``x [b, d, f, t]`` new frames, ``state`` the previous ``kernel - 1`` input
        frames -> (output ``[b, d, f, t]``, new state)."""
        full = torch.cat([state, x], dim=-1)
        return self.conv(full), full[..., full.shape[-1] - (self.kernel - 1) :]


class ChannelNorm(nn.Module):
    """Layer normalisation over the channel axis of ``[b, d, f, t]``, per (f, t) position."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.transpose(1, 3)).transpose(1, 3)


class EncoderLevel(nn.Module):
    """Strided conv along frequency (downsamples ``f`` by ``stride``), then a causal conv along
    time with layer norm and LeakyReLU as a residual branch.

    ``[b, d_in, f, t] -> [b, d_out, f / stride, t]``.
    """

    def __init__(self, d_in: int, d_out: int, stride: int, time_kernel: int) -> None:
        super().__init__()
        self.freq = nn.Conv2d(d_in, d_out, (2 * stride, 1), (stride, 1), (stride // 2, 0))
        self.time = CausalTimeConv(d_out, time_kernel)
        self.norm = ChannelNorm(d_out)
        self.act = nn.LeakyReLU(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.freq(x)
        return h + self.act(self.norm(self.time(h)))

    def step(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Streaming form of :meth:`forward`; ``state`` is the time convolution's."""
        h = self.freq(x)
        t, state = self.time.step(h, state)
        return h + self.act(self.norm(t)), state


class DecoderLevel(nn.Module):
    """Transposed conv along frequency (upsamples ``f`` by ``stride``), plus the encoder's skip
    connection, then a causal time conv with layer norm and LeakyReLU as a residual branch.

    ``[b, d_in, f, t], skip [b, d_out, f * stride, t] -> [b, d_out, f * stride, t]``.
    """

    def __init__(self, d_in: int, d_out: int, stride: int, time_kernel: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(d_in, d_out, (2 * stride, 1), (stride, 1), (stride // 2, 0))
        self.time = CausalTimeConv(d_out, time_kernel)
        self.norm = ChannelNorm(d_out)
        self.act = nn.LeakyReLU(0.1)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        h = self.up(x) + skip
        return h + self.act(self.norm(self.time(h)))

    def step(
        self, x: torch.Tensor, skip: torch.Tensor, state: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Streaming form of :meth:`forward`; ``state`` is the time convolution's."""
        h = self.up(x) + skip
        t, state = self.time.step(h, state)
        return h + self.act(self.norm(t)), state
