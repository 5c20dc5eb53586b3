"""Latent denoiser with band-specific attention (the base model of StemProver).

A small U-Net over the latent grid ``[batch, latent_channels, freq', frames']``: residual conv
blocks conditioned on the diffusion timestep, two down-sampling stages, and in the middle a
**band attention** block that pools each frequency band into tokens (with a learned embedding per
band), attends along time within each band and across bands within each frame, and adds the
result back to the band's bins. Bands matter because the artifacts we remove are band-local
(bleed in one register, lost highs, smeared high-frequency phase).

The encoder half is its own module so that the control branch (``control.py``) can be a copy of
it; ``forward(x, t, control)`` adds the control branch's residuals to the skip connections and the
middle, ControlNet style.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from deepsampler.stemprover.autoencoder import _groups


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of diffusion timesteps ``[batch]`` -> ``[batch, dim]``."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class ResBlock(nn.Module):
    """Conv residual block; ``emb`` (``[batch, emb_dim]``) shifts the features when given."""

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(in_ch), in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.emb = nn.Linear(emb_dim, out_ch)
        self.norm2 = nn.GroupNorm(_groups(out_ch), out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        if emb is not None:
            h = h + self.emb(F.silu(emb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


def band_matrix(freq: int, bands: int) -> torch.Tensor:
    """``[bands, freq]`` averaging matrix: row ``b`` averages the bins of band ``b``.

    Bands are contiguous and of near-equal width on the latent frequency axis, which is itself a
    down-sampled linear-frequency axis.
    """
    bands = min(bands, freq)
    edges = torch.linspace(0, freq, bands + 1).round().long()
    m = torch.zeros(bands, freq)
    for b in range(bands):
        m[b, edges[b] : edges[b + 1]] = 1.0 / float(edges[b + 1] - edges[b])
    return m


class SelfAttention(nn.Module):
    """Multi-head self-attention over ``[batch, tokens, channels]`` with plain ``nn.Linear``
    projections (``to_qkv``, ``to_out``) so that LoRA adapters can target them by name."""

    def __init__(self, channels: int, heads: int) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"channels {channels} must be divisible by heads {heads}")
        self.heads = heads
        self.to_qkv = nn.Linear(channels, 3 * channels)
        self.to_out = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.to_qkv(x).reshape(b, n, 3, self.heads, c // self.heads).unbind(2)
        out = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        )
        return self.to_out(out.transpose(1, 2).reshape(b, n, c))


class BandAttention(nn.Module):
    """Attention along time within each band, then across bands within each frame.

    ``[batch, channels, freq, frames] -> same``; band tokens are band means plus a learned band
    embedding; the attended tokens are broadcast back to every bin of their band.
    """

    def __init__(self, channels: int, bands: int = 8, heads: int = 4) -> None:
        super().__init__()
        self.bands = bands
        self.band_embedding = nn.Parameter(torch.zeros(bands, channels))
        self.norm = nn.LayerNorm(channels)
        self.time_attn = SelfAttention(channels, heads)
        self.band_norm = nn.LayerNorm(channels)
        self.band_attn = SelfAttention(channels, heads)
        self.proj = nn.Linear(channels, channels)
        nn.init.normal_(self.band_embedding, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, f, t = x.shape
        pool = band_matrix(f, self.bands).to(x)  # [B, f]
        nb = pool.shape[0]
        tokens = torch.einsum("bcft,nf->bntc", x, pool) + self.band_embedding[:nb, None, :]
        seq = tokens.reshape(b * nb, t, c)
        seq = seq + self.time_attn(self.norm(seq))
        seq = seq.reshape(b, nb, t, c).transpose(1, 2).reshape(b * t, nb, c)
        seq = seq + self.band_attn(self.band_norm(seq))
        out = self.proj(seq).reshape(b, t, nb, c)
        spread = (pool > 0).to(x)  # [B, f]: each bin takes its band's token
        return x + torch.einsum("btnc,nf->bcft", out, spread)


class Encoder(nn.Module):
    """Encoder half: ``[b, width, f, t]`` -> list of skip features (finest first).

    Skips: full resolution x2 (``width``), half x2 and quarter x1 (``2 * width``).
    """

    def __init__(self, width: int, emb_dim: int) -> None:
        super().__init__()
        w = width
        self.res1 = ResBlock(w, w, emb_dim)
        self.down1 = nn.Conv2d(w, 2 * w, 3, stride=2, padding=1)
        self.res2 = ResBlock(2 * w, 2 * w, emb_dim)
        self.down2 = nn.Conv2d(2 * w, 2 * w, 3, stride=2, padding=1)

    @property
    def skip_channels(self) -> list[int]:
        w = self.res1.conv1.out_channels
        return [w, w, 2 * w, 2 * w, 2 * w]

    def forward(self, h: torch.Tensor, emb: torch.Tensor | None) -> list[torch.Tensor]:
        skips = [h]
        h = self.res1(h, emb)
        skips.append(h)
        h = self.down1(h)
        skips.append(h)
        h = self.res2(h, emb)
        skips.append(h)
        h = self.down2(h)
        skips.append(h)
        return skips


class LatentDenoiser(nn.Module):
    """Diffusion denoiser over StemProver latents.

    Args:
        latent_channels: channels of the latent grid (the autoencoder's).
        width: channels at full latent resolution (twice that below).
        bands: bands of the band attention (on the quarter-resolution grid).
        heads: attention heads.

    ``forward(x, t, control)``: ``x`` ``[b, latent_channels, f, t]`` noisy latent, ``t``
    ``[b]`` integer timesteps, ``control`` optional list of 6 residuals (one per skip, then one
    for the middle) from ``ControlBranch``; returns the model output (velocity) shaped like ``x``.
    """

    def __init__(
        self, latent_channels: int = 8, width: int = 32, bands: int = 8, heads: int = 4
    ) -> None:
        super().__init__()
        w = width
        self.latent_channels = latent_channels
        self.width = width
        self.emb_dim = 4 * w
        self.time_mlp = nn.Sequential(
            nn.Linear(w, self.emb_dim), nn.SiLU(), nn.Linear(self.emb_dim, self.emb_dim)
        )
        self.conv_in = nn.Conv2d(latent_channels, w, 3, padding=1)
        self.encoder = Encoder(w, self.emb_dim)
        self.mid1 = ResBlock(2 * w, 2 * w, self.emb_dim)
        self.mid_attn = BandAttention(2 * w, bands, heads)
        self.mid2 = ResBlock(2 * w, 2 * w, self.emb_dim)
        self.up_blocks = nn.ModuleList(
            [
                ResBlock(4 * w, 2 * w, self.emb_dim),  # + quarter skip
                ResBlock(4 * w, 2 * w, self.emb_dim),  # + half skip (after res2)
                ResBlock(4 * w, 2 * w, self.emb_dim),  # + half skip (after down1)
                ResBlock(3 * w, w, self.emb_dim),  # + full skip (after res1)
                ResBlock(2 * w, w, self.emb_dim),  # + full skip (conv_in)
            ]
        )
        self.norm_out = nn.GroupNorm(_groups(w), w)
        self.conv_out = nn.Conv2d(w, latent_channels, 3, padding=1)

    def embed(self, t: torch.Tensor) -> torch.Tensor:
        return self.time_mlp(timestep_embedding(t, self.width))

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        control: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        emb = self.embed(t)
        skips = self.encoder(self.conv_in(x), emb)
        if control is not None:
            if len(control) != len(skips) + 1:
                raise ValueError(f"need {len(skips) + 1} control residuals, got {len(control)}")
            skips = [s + c for s, c in zip(skips, control[:-1], strict=True)]
        h = self.mid2(self.mid_attn(self.mid1(skips[-1], emb)), emb)
        if control is not None:
            h = h + control[-1]
        for i, block in enumerate(self.up_blocks):
            skip = skips[len(skips) - 1 - i]
            if h.shape[-2:] != skip.shape[-2:]:
                h = F.interpolate(h, size=skip.shape[-2:], mode="nearest")
            h = block(torch.cat([h, skip], dim=1), emb)
        return self.conv_out(F.silu(self.norm_out(h)))
