"""BS-RoFormer latent: band split, time and subband transformers with rotary embeddings.

Tokens are ``[b, n, t, d]``: ``n`` bands, ``t`` frames, ``d`` features. The time transformer
attends along ``t`` within each band (RoPE over the frame index; causal over a bounded window
when streaming), the subband transformer along ``n`` within each frame (RoPE over the band
index). Attention is split into :meth:`Attention.project` and :meth:`Attention.attend` so a
streaming engine can keep a K/V cache between the two.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from rotary_embedding_torch import RotaryEmbedding
from torch import nn


def time_attention_mask(
    frames: int, window: int, lookahead: int, device: torch.device | None = None
) -> torch.Tensor:
    """Boolean ``[t, t]`` mask, True where query frame i may attend key frame j:
    ``i - window < j <= i + lookahead``."""
    i = torch.arange(frames, device=device)[:, None]
    j = torch.arange(frames, device=device)[None, :]
    return (j <= i + lookahead) & (j > i - window)


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary embedding of ``x [..., N, e]`` by angles whose ``cos``/``sin`` are ``[N, e]``, in
    rotary-embedding-torch's interleaved layout: exactly its ``apply_rotary_emb`` for angles
    over every feature (the same products and sum), in a third of its operations, which
    matters when a streaming step rotates one frame at a time.

    In an ONNX export the pair swap is one MatMul by a signed permutation (:func:`pair_swap`)
    instead of seven reshaping nodes (speech-rt's step: 301 -> 245 nodes, 7 % less time per
    frame); its products are by 0 and +-1, so both forms give the same bits."""
    if torch.compiler.is_exporting():
        half = x @ pair_swap(x.shape[-1], x.dtype, x.device)
    else:
        pairs = x.unflatten(-1, (-1, 2))
        half = torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)
    return (x * cos + half * sin).to(x.dtype)


def pair_swap(e: int, dtype: torch.dtype, device: torch.device | str = "cpu") -> torch.Tensor:
    """``[e, e]`` matrix ``P`` with ``(x @ P)[2i] = -x[2i+1]`` and ``(x @ P)[2i+1] = x[2i]``
    (``e`` even): the rotary embedding's pair swap as a product."""
    p = torch.zeros(e, e, dtype=dtype, device=device)
    i = torch.arange(0, e, 2, device=device)
    p[i + 1, i] = -1
    p[i, i + 1] = 1
    return p


class Attention(nn.Module):
    """Pre-norm multi-head self-attention with rotary position embeddings. ``[B, N, d]``."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.heads = heads
        self.dim_head = dim // heads
        self.norm = nn.RMSNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)  # one fused projection
        self.out = nn.Linear(dim, dim, bias=False)
        self.rope = RotaryEmbedding(self.dim_head, cache_if_possible=False)
        self.dropout = dropout

    def project(
        self, x: torch.Tensor, positions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``x [B, N, d]``, ``positions [N]`` -> rotated q, rotated k, v: ``[B, h, N, d/h]``."""
        return self.project_rotated(x, self.rotary_angles(positions).to(x.dtype))

    def project_rotated(
        self, x: torch.Tensor, angles: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`project` with the rotation angles ``[N, e]`` given (for exported graphs, which
        take them as an input computed outside in float64)."""
        q, k, v = rearrange(self.qkv(self.norm(x)), "B N (k h e) -> k B h N e", k=3, h=self.heads)
        cos, sin = angles.cos(), angles.sin()
        return rotate(q, cos, sin), rotate(k, cos, sin), v

    def rotary_angles(self, positions: torch.Tensor) -> torch.Tensor:
        """Rotation angles ``[N, e]`` for integer ``positions [N]``, in rotary-embedding-torch's
        interleaved layout. Computed in float64 and wrapped to [0, 2*pi) before the cast, so that
        a stream hours long (frame indices in the millions) rotates as precisely as its start."""
        inv_freq = self.rope.freqs.detach().to(torch.float64)
        angles = torch.remainder(positions.to(torch.float64)[:, None] * inv_freq, 2 * math.pi)
        return angles.to(torch.float32).repeat_interleave(2, dim=-1)

    def attend(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None
    ) -> torch.Tensor:
        """Attention of ``q [B, h, N, e]`` over ``k, v [B, h, M, e]`` -> ``[B, N, d]``."""
        drop = self.dropout if self.training else 0.0
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=drop)
        return self.out(rearrange(o, "B h N e -> B N (h e)"))

    def forward(
        self, x: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        q, k, v = self.project(x, positions)
        return self.attend(q, k, v, mask)


class FeedForward(nn.Module):
    """Pre-norm MLP ``d -> mult*d -> d``. ``[..., d]``."""

    def __init__(self, dim: int, mult: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.RMSNorm(dim),
            nn.Linear(dim, dim * mult),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(dim * mult, dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class TransformerLayer(nn.Module):
    """Residual attention + residual feed-forward on ``[B, N, d]``."""

    def __init__(self, dim: int, heads: int, ff_mult: int, dropout: float) -> None:
        super().__init__()
        self.attn = Attention(dim, heads, dropout)
        self.ff = FeedForward(dim, ff_mult, dropout)

    def forward(
        self, x: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        x = x + self.attn(x, positions, mask)
        return x + self.ff(x)

    def attend_cached(
        self,
        x: torch.Tensor,
        q: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        mask: torch.Tensor | None,
    ) -> torch.Tensor:
        """The layer for inputs ``x [B, N, d]`` whose rotated queries ``q [B, h, N, e]`` are
        given, over cached rotated ``keys``/``values [B, h, M, e]`` (streaming)."""
        x = x + self.attn.attend(q, keys, values, mask)
        return x + self.ff(x)


class BandSplit(nn.Module):
    """``[b, d_c, f, t]`` feature map -> ``[b, n, t, d]`` band tokens (one linear per band)."""

    def __init__(self, channels: int, band_width: int, bands: int, dim: int) -> None:
        super().__init__()
        self.band_width = band_width
        fan_in = channels * band_width
        self.norm = nn.RMSNorm(fan_in)
        self.weight = nn.Parameter(torch.randn(bands, fan_in, dim) / fan_in**0.5)
        self.bias = nn.Parameter(torch.zeros(bands, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = rearrange(x, "b c (n w) t -> b n t (c w)", w=self.band_width)
        return torch.einsum("bntk,nkd->bntd", self.norm(x), self.weight) + self.bias[:, None]


class BandMerge(nn.Module):
    """``[b, n, t, d]`` band tokens -> ``[b, d_c, f, t]`` feature map (one linear per band)."""

    def __init__(self, channels: int, band_width: int, bands: int, dim: int) -> None:
        super().__init__()
        self.band_width = band_width
        fan_out = channels * band_width
        self.norm = nn.RMSNorm(dim)
        self.weight = nn.Parameter(torch.randn(bands, dim, fan_out) / dim**0.5)
        self.bias = nn.Parameter(torch.zeros(bands, fan_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.einsum("bntd,ndk->bntk", self.norm(x), self.weight) + self.bias[:, None]
        return rearrange(y, "b n t (c w) -> b c (n w) t", w=self.band_width)


class RoFormerBlock(nn.Module):
    """One time transformer layer then one subband transformer layer on ``[b, n, t, d]``."""

    def __init__(self, dim: int, heads: int, ff_mult: int, dropout: float) -> None:
        super().__init__()
        self.time = TransformerLayer(dim, heads, ff_mult, dropout)
        self.band = TransformerLayer(dim, heads, ff_mult, dropout)

    def forward(
        self, x: torch.Tensor, frame_pos: torch.Tensor, time_mask: torch.Tensor | None
    ) -> torch.Tensor:
        b, n, t, _ = x.shape
        x = self.time(rearrange(x, "b n t d -> (b n) t d"), frame_pos, time_mask)
        x = rearrange(x, "(b n) t d -> (b t) n d", b=b)
        x = self.band(x, torch.arange(n, device=x.device))
        return rearrange(x, "(b t) n d -> b n t d", b=b)

    def band_tokens(self, x: torch.Tensor, batch: int) -> torch.Tensor:
        """The subband layer on time-major tokens ``[(b n), t, d]`` (as the time layer leaves
        them) -> ``[(b n), t, d]``."""
        x = rearrange(x, "(b n) t d -> (b t) n d", b=batch)
        x = self.band(x, torch.arange(x.shape[1], device=x.device))
        return rearrange(x, "(b t) n d -> (b n) t d", b=batch)


class RoFormerLatent(nn.Module):
    """Band split -> ``depth`` RoFormer blocks -> band merge, residual around the whole.

    ``[b, d_c, f_latent, t] -> [b, d_c, f_latent, t]``.
    """

    def __init__(
        self,
        channels: int,
        latent_bins: int,
        band_width: int,
        dim: int,
        depth: int,
        heads: int,
        ff_mult: int,
        dropout: float,
    ) -> None:
        super().__init__()
        bands = latent_bins // band_width
        self.split = BandSplit(channels, band_width, bands, dim)
        self.blocks = nn.ModuleList(
            RoFormerBlock(dim, heads, ff_mult, dropout) for _ in range(depth)
        )
        self.merge = BandMerge(channels, band_width, bands, dim)

    def forward(
        self,
        x: torch.Tensor,
        frame_pos: torch.Tensor,
        time_masks: tuple[torch.Tensor | None, torch.Tensor | None] = (None, None),
    ) -> torch.Tensor:
        """``time_masks``: (first block's, later blocks') time-attention masks. Look-ahead goes
        in the first mask only: were every block to look ahead, the look-ahead would add up
        across blocks (depth x lookahead frames) instead of staying ``lookahead`` frames."""
        tokens = self.split(x)
        for i, block in enumerate(self.blocks):
            tokens = block(tokens, frame_pos, time_masks[0] if i == 0 else time_masks[1])
        return x + self.merge(tokens)
