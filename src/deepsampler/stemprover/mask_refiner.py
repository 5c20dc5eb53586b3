"""StemProver's predictive stage: a full-resolution, non-causal mask refiner.

A real-time separator such as music4-rt decides each frame's masks from the past alone. Offline,
a refiner can read the whole segment: the frames after a transient, the rest of a sustained note.
This network reads the separated stem ``S`` and the mixture ``M`` it came from and sets the stem's
magnitude as a mask on the mixture's,

    |S'| = |M| * sigmoid(logit(r) + delta),   r = clamp(|S| / |M|),

with ``delta`` from the network. The last layer starts at zero, so a fresh refiner returns the
stem (for mask-based separators, where ``|S| <= |M|``, exactly up to the clamp). Phase is the
stem's (the mixture's where the stem had nothing): a stem's true phase where sources overlap
cannot be predicted, and music4-rt's stems carry the mixture's phase already.

**Guide** (optional, ``MaskRefinerConfig.guide``): an offline separator of ours (music4-hq) run
once on the mixture segment, the mono row doubled to the separator's channels. Of its sources the
one closest to the stem (cosine similarity of the waveforms) is the guide ``G``; the refiner reads
its magnitude too and starts its mask from a learned per-bin blend of the two ratios,

    logit(mask) = logit(r) + alpha_f * (logit(r_G) - logit(r)) + delta,   r_G = clamp(|G| / |M|),

with ``alpha`` zero-initialised, so a fresh refiner is still the identity. The separator is frozen;
the refiner learns when to trust which estimate, band by band and frame by frame. A saved refiner
holds its own weights and the guide's digest, not the guide's weights (they ship already, as
music4-hq): loading refuses a guide whose weights differ from those it was trained with
(:mod:`deepsampler.stemprover.checkpoint`).

Architecture (band-split, like BSRNN / BS-RoFormer but small): the bins of each band are
projected to ``width`` features per frame; ``layers`` blocks then mix along time (depthwise
dilated convolutions, both directions: ``receptive_field_s`` gives the reach)
and across bands (an MLP over the band axis); a per-band head returns ``delta`` for its bins.

Shapes: waveforms ``[n, samples]`` (mono rows at ``sample_rate`` Hz); spectra ``[n, f, t]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from deepsampler.audio.stft import STFT

_EPS = 1e-8
_CLAMP = 1e-4  # r is kept in [_CLAMP, 1 - _CLAMP] so that logit(r) stays finite (+-9.2)


@dataclass(frozen=True)
class MaskRefinerConfig:
    """Sizes of the mask refiner (``n_fft``/``hop`` in samples; ``bands``: bin widths, low to
    high, as (width, count) runs that must cover ``n_fft // 2 + 1`` bins exactly)."""

    sample_rate: int = 44100
    n_fft: int = 2048
    hop: int = 512
    width: int = 48
    layers: int = 6
    kernel: int = 5
    bands: tuple[tuple[int, int], ...] = ((4, 16), (8, 16), (16, 16), (32, 12), (64, 2), (65, 1))
    guide: str | None = None  # a separator (shipped name or checkpoint path) read as a guide

    def __post_init__(self) -> None:
        if self.guide is not None and not str(self.guide).strip():
            raise ValueError("guide must name a separator (e.g. music4-hq) or be null")
        if self.n_fft < 2 or not 1 <= self.hop <= self.n_fft // 2:
            raise ValueError(f"need 1 <= hop <= n_fft/2, got n_fft={self.n_fft} hop={self.hop}")
        if self.width < 1 or self.layers < 1 or self.kernel < 1 or self.kernel % 2 == 0:
            raise ValueError("width and layers must be >= 1 and kernel a positive odd number")
        if any(w < 1 or c < 1 for w, c in self.bands):
            raise ValueError(f"band widths and counts must be >= 1, got {self.bands}")
        bins = sum(w * c for w, c in self.bands)
        if bins != self.n_fft // 2 + 1:
            raise ValueError(
                f"bands cover {bins} bins but n_fft={self.n_fft} has {self.n_fft // 2 + 1}"
            )

    @property
    def band_widths(self) -> list[int]:
        return [w for w, c in self.bands for _ in range(c)]

    def receptive_field_s(self) -> float:
        """How far (seconds) one output frame reads in each direction."""
        frames = sum((self.kernel - 1) // 2 * 2 ** (i % 4) for i in range(self.layers))
        return frames * self.hop / self.sample_rate


class _Block(nn.Module):
    """Time mixing (depthwise dilated conv + MLP) then band mixing (MLP over the band axis)."""

    def __init__(self, width: int, bands: int, kernel: int, dilation: int) -> None:
        super().__init__()
        self.norm_t = nn.LayerNorm(width)
        self.conv = nn.Conv1d(
            width,
            width,
            kernel,
            padding=dilation * (kernel - 1) // 2,
            dilation=dilation,
            groups=width,
        )
        self.mlp_t = nn.Sequential(
            nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, width)
        )
        self.norm_k = nn.LayerNorm(bands)
        self.mlp_k = nn.Sequential(nn.Linear(bands, bands), nn.GELU(), nn.Linear(bands, bands))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: [n, k, t, d]
        n, k, t, d = x.shape
        y = self.conv(self.norm_t(x).reshape(n * k, t, d).transpose(1, 2)).transpose(1, 2)
        x = x + self.mlp_t(y).reshape(n, k, t, d)
        z = x.permute(0, 2, 3, 1)  # [n, t, d, k]
        return x + self.mlp_k(self.norm_k(z)).permute(0, 3, 1, 2)


class MaskRefinerNet(nn.Module):
    """(stem, mixture[, guide]) magnitude features ``[n, channels, f, t]`` (3, or 5 with a guide)
    -> mask-logit change ``[n, f, t]``."""

    def __init__(self, config: MaskRefinerConfig, channels: int = 3) -> None:
        super().__init__()
        self.config = c = config
        widths = c.band_widths
        self.widths = widths
        self.proj = nn.ModuleList([nn.Linear(channels * w, c.width) for w in widths])
        self.blocks = nn.ModuleList(
            [_Block(c.width, len(widths), c.kernel, 2 ** (i % 4)) for i in range(c.layers)]
        )
        self.heads = nn.ModuleList([nn.Linear(c.width, w) for w in widths])
        for head in self.heads:  # zero-initialised: a fresh refiner is the identity
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        n, _, _, t = feats.shape
        parts = torch.split(feats, self.widths, dim=2)  # each [n, channels, w, t]
        x = torch.stack(
            [
                p(b.permute(0, 3, 1, 2).reshape(n, t, -1))
                for p, b in zip(self.proj, parts, strict=True)
            ],
            1,
        )  # [n, k, t, d]
        for block in self.blocks:
            x = block(x)
        out = [head(x[:, i]) for i, head in enumerate(self.heads)]  # each [n, t, w]
        return torch.cat(out, dim=2).transpose(1, 2)  # [n, f, t]


class MaskRefiner(nn.Module):
    """Refines mono stem segments given their mixture: ``[n, samples]`` -> ``[n, samples]``."""

    def __init__(self, config: MaskRefinerConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or MaskRefinerConfig()
        self.stft = STFT(c.n_fft, c.hop)
        self.guide_model: nn.Module | None = None
        if c.guide is not None:
            self.guide_model = _load_guide(c.guide, c.sample_rate)
            # the per-bin trust in the guide's ratio; zero: a fresh refiner is the identity
            self.alpha = nn.Parameter(torch.zeros(c.n_fft // 2 + 1, 1))
        self.net = MaskRefinerNet(c, 5 if self.guide_model is not None else 3)

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    def train(self, mode: bool = True) -> MaskRefiner:
        super().train(mode)
        if self.guide_model is not None:  # frozen: never in training mode
            self.guide_model.eval()
        return self

    @property
    def guide_sources(self) -> tuple[str, ...] | None:
        """The sources the guide separates (its domain); None without a guide."""
        return None if self.guide_model is None else tuple(self.guide_model.config.sources)

    @torch.no_grad()
    def guide(self, stem: torch.Tensor, mixture: torch.Tensor) -> torch.Tensor:
        """The guide separator's estimate of each stem ``[n, samples]`` from its mixture (same
        shape): of the separator's sources, the one most similar to the stem."""
        if self.guide_model is None:
            raise ValueError("this refiner has no guide (MaskRefinerConfig.guide is null)")
        channels = self.guide_model.config.audio_channels
        est = self.guide_model(mixture[:, None].expand(-1, channels, -1)).mean(2)  # [n, s, T]
        sim = torch.nn.functional.cosine_similarity(est, stem[:, None], dim=-1, eps=_EPS)
        return est[torch.arange(len(stem)), sim.argmax(1)]

    @staticmethod
    def features(stem: torch.Tensor, mix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Complex spectra ``[n, f, t]`` -> (network input ``[n, 3, f, t]``, ratio ``r``)."""
        s, m = stem.abs(), mix.abs()
        r = (s / (m + _EPS)).clamp(_CLAMP, 1 - _CLAMP)
        feats = torch.stack([torch.log1p(s * 100), torch.log1p(m * 100), r], dim=1)
        return feats, r

    def forward(self, stem: torch.Tensor, mixture: torch.Tensor | None = None) -> torch.Tensor:
        """Differentiable refinement of ``[n, samples]`` stems (``mixture=None``: the stem stands
        in, and only a gain below one can be learned)."""
        if stem.dim() != 2:
            raise ValueError(f"expected mono segments [n, samples], got {tuple(stem.shape)}")
        if mixture is None:
            mixture = stem
        if mixture.shape != stem.shape:
            raise ValueError(
                f"mixture segments {tuple(mixture.shape)} differ from the stem's "
                f"{tuple(stem.shape)}"
            )
        S, M = self.stft(stem), self.stft(mixture)
        feats, r = self.features(S, M)
        logit = torch.logit(r)
        if self.guide_model is not None:
            G = self.stft(self.guide(stem, mixture))
            g = G.abs()
            r_g = (g / (M.abs() + _EPS)).clamp(_CLAMP, 1 - _CLAMP)
            feats = torch.cat([feats, torch.stack([torch.log1p(g * 100), r_g], dim=1)], dim=1)
            logit = logit + self.alpha * (torch.logit(r_g) - logit)
        mask = torch.sigmoid(logit + self.net(feats))
        mag = M.abs() * mask
        # phase: the stem's, or the mixture's where the stem had (almost) nothing
        unit_s = S / (S.abs() + _EPS)
        unit_m = M / (M.abs() + _EPS)
        unit = torch.where(S.abs() > 1e-6 * (M.abs() + _EPS), unit_s, unit_m)
        return self.stft.inverse(mag * unit, stem.shape[-1])


def _load_guide(name: str, sample_rate: int) -> nn.Module:
    """The frozen separator ``name`` (a shipped model or checkpoint path) at ``sample_rate``."""
    from deepsampler.models.checkpoint import load_checkpoint
    from deepsampler.models.registry import resolve_model

    model = load_checkpoint(resolve_model(name)).model.eval()
    if model.config.sample_rate != sample_rate:
        raise ValueError(
            f"guide {name}: runs at {model.config.sample_rate} Hz, the refiner at {sample_rate} Hz"
        )
    for p in model.parameters():
        p.requires_grad_(False)
    return model
