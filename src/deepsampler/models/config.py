"""The DeepSampler model configuration and its size presets."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

from deepsampler.config import from_dict
from deepsampler.errors import ConfigError
from deepsampler.sources import MUSIC4_SOURCES


@dataclass(frozen=True)
class ModelConfig:
    """Everything that fixes a DeepSampler model's shape and behaviour.

    Frequency path: ``n_fft // 2`` bins (the Nyquist bin is dropped and reuses the top bin's
    mask) shrink by each of ``freq_strides`` in the encoder, giving ``latent_bins``; these are
    cut into bands of ``band_width`` bins, each band one token of ``dim`` features.
    Time path: causal convolutions of ``time_kernel`` frames; the time attention sees
    ``attn_window`` past frames (itself included) plus ``lookahead`` future frames when
    ``causal``, every frame otherwise. The look-ahead applies in the first time-attention
    layer only, so the whole model looks ``lookahead`` frames ahead whatever its depth.
    """

    sources: tuple[str, ...] = MUSIC4_SOURCES
    sample_rate: int = 44100
    audio_channels: int = 2
    n_fft: int = 1024
    hop: int = 512
    causal: bool = True
    lookahead: int = 0
    attn_window: int = 128
    enc_channels: tuple[int, ...] = (32, 48, 64)
    freq_strides: tuple[int, ...] = (4, 4, 2)
    time_kernel: int = 3
    band_width: int = 2
    dim: int = 128
    depth: int = 2
    heads: int = 4
    ff_mult: int = 2
    dropout: float = 0.0
    feature_power: float = 0.5
    mask_activation: Literal["sigmoid", "softmax"] = "sigmoid"

    def __post_init__(self) -> None:
        problems = []
        if not self.sources or len(set(self.sources)) != len(self.sources):
            problems.append("sources must be a non-empty list of distinct names")
        if self.audio_channels < 1:
            problems.append("audio_channels must be >= 1")
        if self.hop < 1 or self.hop > self.n_fft // 2:
            problems.append("hop must be in [1, n_fft/2]")
        if len(self.enc_channels) != len(self.freq_strides) or not self.enc_channels:
            problems.append("enc_channels and freq_strides need the same, non-zero length")
        if any(s < 2 or s % 2 for s in self.freq_strides):
            problems.append("freq_strides must be even numbers >= 2")
        total = math.prod(self.freq_strides) * self.band_width
        if (self.n_fft // 2) % total:
            problems.append(
                f"n_fft/2 = {self.n_fft // 2} must be divisible by prod(freq_strides) * band_width"
                f" = {total}"
            )
        if self.dim % self.heads or (self.dim // self.heads) % 2:
            problems.append("dim must split into heads of an even size")
        if self.time_kernel < 1 or self.attn_window < 1 or self.lookahead < 0:
            problems.append("time_kernel and attn_window must be >= 1, lookahead >= 0")
        if not self.causal and self.lookahead:
            problems.append("lookahead only applies to causal models")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def freq_bins(self) -> int:
        """Bins the network sees (Nyquist dropped)."""
        return self.n_fft // 2

    @property
    def latent_bins(self) -> int:
        return self.freq_bins // math.prod(self.freq_strides)

    @property
    def num_bands(self) -> int:
        return self.latent_bins // self.band_width

    @property
    def latency_samples(self) -> int:
        """Algorithmic latency of streaming: analysis window + look-ahead frames x hop."""
        return self.n_fft + self.lookahead * self.hop

    @property
    def latency_ms(self) -> float:
        return 1000.0 * self.latency_samples / self.sample_rate

    def replace(self, **changes: Any) -> ModelConfig:
        return dataclasses.replace(self, **changes)


PRESETS: dict[str, dict[str, Any]] = {
    # for tests: a few thousand parameters, 11.6 ms hops at 22.05 kHz
    "tiny": dict(
        sample_rate=22050,
        n_fft=256,
        hop=128,
        enc_channels=(8, 16),
        freq_strides=(4, 4),
        band_width=2,
        dim=32,
        depth=1,
        heads=2,
        ff_mult=2,
        attn_window=32,
    ),
    # the real-time default: 23.2 ms latency at 44.1 kHz, 11.6 ms hop
    "small": dict(
        n_fft=1024,
        hop=512,
        enc_channels=(32, 48, 64),
        freq_strides=(4, 4, 2),
        band_width=2,
        dim=128,
        depth=2,
        heads=4,
        ff_mult=2,
        attn_window=128,
    ),
    # more capacity, same frame geometry
    "base": dict(
        n_fft=1024,
        hop=512,
        enc_channels=(48, 96, 128),
        freq_strides=(4, 4, 2),
        band_width=2,
        dim=256,
        depth=4,
        heads=8,
        ff_mult=4,
        attn_window=256,
    ),
}


def preset_config(name: str, **overrides: Any) -> ModelConfig:
    """The size preset ``name`` (tiny, small, base) with ``overrides`` applied and validated."""
    if name not in PRESETS:
        raise ConfigError(f"unknown model preset {name!r}; choose one of {sorted(PRESETS)}")
    return from_dict(ModelConfig, {**PRESETS[name], **overrides})
