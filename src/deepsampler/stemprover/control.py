"""Control branch: steers the base denoiser with the degraded stem and its phase features.

ControlNet-style: a trainable copy of the denoiser's encoder (initialised from the base weights)
reads the *condition* — the degraded stem's latent, optionally the latent of the mixture the
stem was separated from (``context_channels``), and a learned down-sampling of the stem's phase
features (instantaneous-frequency deviation and group delay) — and feeds one residual per skip
connection and one for the middle of the denoiser through **zero-initialised** 1x1 convolutions.
Those zero convs are *phase-aware*: each sees the branch's features concatenated with the phase
embedding resampled to its grid, so phase evidence reaches every resolution directly.

Because zero convs start at zero, a fresh control branch leaves the base model's output
unchanged, and training moves away from the base only as far as the data asks.

The branch takes no noisy latent and no timestep: its residuals depend on the condition alone and
are computed once per segment, then reused at every sampling step (``diffusion.py``).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from deepsampler.stemprover.autoencoder import DOWN
from deepsampler.stemprover.denoiser import LatentDenoiser


class PhaseAwareZeroConv(nn.Module):
    """Zero-initialised 1x1 conv over ``[features, phase embedding resampled to their grid]``.

    ``forward(h [b, c, f, t], phase [b, p, F, T]) -> [b, c, f, t]`` (all zeros until trained).
    """

    def __init__(self, channels: int, phase_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels + phase_channels, channels, 1)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def forward(self, h: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
        if phase.shape[-2:] != h.shape[-2:]:
            phase = F.adaptive_avg_pool2d(phase, h.shape[-2:])
        return self.conv(torch.cat([h, phase], dim=1))


class ControlBranch(nn.Module):
    """Condition -> list of residuals for ``LatentDenoiser.forward(..., control=...)``.

    Args:
        denoiser: the base model; its encoder is copied (weights included).
        phase_channels: planes of the raw phase features (2: IF deviation and group delay).
        phase_width: channels of the learned phase embedding on the latent grid.
        context_channels: channels of an extra latent read with the stem's (the mixture's
            latent; 0 = none).

    ``forward(cond_latent [b, latent_channels, f', t'], phase [b, phase_channels, F, T],
    context [b, context_channels, f', t'] | None)`` where ``F, T`` is the feature resolution
    (``f' = ceil(F / 4)``, ``t' = ceil(T / 4)``).
    """

    def __init__(
        self,
        denoiser: LatentDenoiser,
        phase_channels: int = 2,
        phase_width: int = 16,
        context_channels: int = 0,
    ) -> None:
        super().__init__()
        w = denoiser.width
        self.phase_channels = phase_channels
        self.context_channels = context_channels
        # learned 4x down-sampling: signed phase derivatives would cancel under plain pooling
        self.phase_stem = nn.Sequential(
            nn.Conv2d(phase_channels, phase_width, 4, stride=2, padding=1),
            nn.SiLU(),
            nn.Conv2d(phase_width, phase_width, 4, stride=2, padding=1),
            nn.SiLU(),
        )
        cond = denoiser.latent_channels + context_channels + phase_width
        self.cond_in = nn.Conv2d(cond, w, 3, padding=1)
        self.encoder = copy.deepcopy(denoiser.encoder)
        self.mid = copy.deepcopy(denoiser.mid1)
        channels = [*self.encoder.skip_channels, 2 * w]
        self.zero_convs = nn.ModuleList([PhaseAwareZeroConv(c, phase_width) for c in channels])

    def embed_phase(self, phase: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """Phase features ``[b, p, F, T]`` -> embedding ``[b, phase_width, *grid]``."""
        f, t = phase.shape[-2:]
        lf, lt = grid
        x = F.pad(phase, (0, max(0, lt * DOWN - t), 0, max(0, lf * DOWN - f)))
        return self.phase_stem(x)[..., :lf, :lt]

    def forward(
        self, cond_latent: torch.Tensor, phase: torch.Tensor, context: torch.Tensor | None = None
    ) -> list[torch.Tensor]:
        if (context is None) != (self.context_channels == 0):
            raise ValueError(
                f"this control branch takes {self.context_channels} context channels; "
                f"got {'none' if context is None else tuple(context.shape)}"
            )
        p = self.embed_phase(phase, tuple(cond_latent.shape[-2:]))
        parts = [cond_latent, p] if context is None else [cond_latent, context, p]
        h = self.cond_in(torch.cat(parts, dim=1))
        skips = self.encoder(h, None)
        feats = [*skips, self.mid(skips[-1], None)]
        return [zc(h, p) for zc, h in zip(self.zero_convs, feats, strict=True)]
