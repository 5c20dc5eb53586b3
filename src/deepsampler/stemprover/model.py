"""StemProver model: features -> latent -> controlled, adapter-steered diffusion -> waveform.

``StemProver.refine(segments)`` takes mono waveform segments ``[n, samples]`` (one row per
segment and channel) and returns refined segments of the same shape. The latent diffusion edits
the degraded latent ``z``; the decoded *change* ``decode(z_hat) - decode(z)`` is added to the
degraded features, so the autoencoder's own reconstruction error cancels wherever the sampler
leaves the latent alone (and ``z_hat == z`` returns the input exactly, up to float rounding).

With ``keep_phase`` (the default) the edit sets magnitudes only: the refined spectrum takes the
stem's phase, or the mixture's (when given) in bins where the edit adds content the stem barely
had (the stem >= ~20 dB below the result there). Mask-based separators such as music4-rt give
every stem the mixture's phase already, and the first StemProver model showed what a free complex
edit does: high-band magnitude error fell (16 -> 12 dB) while phase coherence fell with it and
SDR dropped. ``z_hat == z`` still returns the input exactly.

With ``mixture_condition`` the control branch also reads the latent of the mixture the stem was
separated from: bleed and lost highs are defined against the mixture, and a refiner that cannot
see it can only guess them from priors. Without a mixture the stem stands in for it (the
trainer shows the model that case too, ``mixture_dropout``).

With a ``predictor`` (:mod:`deepsampler.stemprover.mask_refiner`) the stem first passes a
predictive stage — a non-causal mask refiner that reads the stem and its mixture at full STFT
resolution — and the latent diffusion refines *its* estimate (predictive + generative, as in
StoRM, Lemercier et al. 2023): the deterministic part of the correction is learned by a network
that can reach it, and the sampler is left the residual. ``refine`` then returns the predictor's
estimate where the sampler leaves the latent alone. Without a mixture the predictor is skipped.

A model file (:mod:`deepsampler.stemprover.checkpoint`, the format of every deepsampler model)
holds the config, the predictor (if any; a guide separator by name and digest, not its weights),
the autoencoder, the base denoiser, the control branch and the LoRA adapters (each with its
rank); the same-size regression refiner used as a control in the benchmark is a file beside it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

from deepsampler.stemprover import adapters as lora
from deepsampler.stemprover.autoencoder import SpectrogramAutoencoder
from deepsampler.stemprover.control import ControlBranch
from deepsampler.stemprover.denoiser import LatentDenoiser
from deepsampler.stemprover.diffusion import DiffusionConfig, sample
from deepsampler.stemprover.features import FeatureConfig, PhaseAwareSTFT
from deepsampler.stemprover.mask_refiner import MaskRefiner, MaskRefinerConfig


@dataclass(frozen=True)
class StemProverConfig:
    """Architecture of a StemProver model (all sizes in channels; rates in Hz)."""

    sample_rate: int = 44100
    features: FeatureConfig = field(default_factory=FeatureConfig)
    latent_channels: int = 8
    autoencoder_width: int = 32
    denoiser_width: int = 32
    bands: int = 8
    heads: int = 4
    phase_width: int = 16
    lora_rank: int = 8
    mixture_condition: bool = True
    keep_phase: bool = True
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    # the predictive stage in front of the latent diffusion (None: the diffusion reads the stem)
    predictor: MaskRefinerConfig | None = None

    def __post_init__(self) -> None:
        if self.sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {self.sample_rate}")
        if self.predictor is not None and self.predictor.sample_rate != self.sample_rate:
            raise ValueError(
                f"predictor.sample_rate {self.predictor.sample_rate} differs from sample_rate "
                f"{self.sample_rate}"
            )
        for name in ("latent_channels", "autoencoder_width", "denoiser_width", "bands", "heads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if (2 * self.denoiser_width) % self.heads:
            raise ValueError("2 * denoiser_width must be divisible by heads")


class StemProver(nn.Module):
    """The full refiner. See the module docstring for the data flow."""

    def __init__(self, config: StemProverConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or StemProverConfig()
        self.features = PhaseAwareSTFT(c.features)
        self.autoencoder = SpectrogramAutoencoder(2, c.latent_channels, c.autoencoder_width)
        self.denoiser = LatentDenoiser(c.latent_channels, c.denoiser_width, c.bands, c.heads)
        self.control = make_control(self.denoiser, c)
        self.predictor = MaskRefiner(c.predictor) if c.predictor is not None else None
        self.adapter_ranks: dict[str, int] = {}

    # ----- adapters -------------------------------------------------------------------------
    def add_adapter(self, name: str, rank: int | None = None) -> None:
        rank = rank or self.config.lora_rank
        lora.add_adapter(self.denoiser, name, rank=rank)
        self.adapter_ranks[name] = rank

    @property
    def adapters(self) -> list[str]:
        return list(self.adapter_ranks)

    def set_adapter_weights(self, weights: Mapping[str, float]) -> None:
        """Weights per adapter (missing names: off). Empty mapping = base + control only."""
        lora.set_adapter_weights(self.denoiser, weights)

    # ----- predictive stage -----------------------------------------------------------------
    @torch.no_grad()
    def predict(self, wave: torch.Tensor, mixture: torch.Tensor | None) -> torch.Tensor:
        """The predictive stage's estimate of mono segments ``[n, samples]`` (same shape); the
        stem itself for models without one, or without a mixture (the stage reads it)."""
        if self.predictor is None or mixture is None:
            return wave
        return self.predictor(wave, mixture)

    # ----- analysis -------------------------------------------------------------------------
    def analyse(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mono segments ``[n, samples]`` -> (features ``[n, 2, F, T]``, phase features
        ``[n, 2, F, T]``, scaled latent ``[n, latent_channels, F', T']``)."""
        x = wave[:, None, :]
        feats = self.features(x)
        phase = self.features.phase_features(x)
        return feats, phase, self.autoencoder.encode(feats)

    def mixture_latent(
        self, z: torch.Tensor, mix_feats: torch.Tensor | None = None
    ) -> torch.Tensor | None:
        """The control branch's context: the mixture's features ``mix_feats`` encoded, or the
        stem's own latent ``z`` when no mixture is given; None for models without it."""
        if not self.config.mixture_condition:
            return None
        return z if mix_feats is None else self.autoencoder.encode(mix_feats)

    def condition(
        self, z: torch.Tensor, phase: torch.Tensor, z_mix: torch.Tensor | None = None
    ) -> list[torch.Tensor]:
        """Control residuals for a degraded latent (and the mixture's); computed once per
        segment. ``z_mix=None`` on a mixture-conditioned model means "no mixture" (``z``)."""
        if self.config.mixture_condition and z_mix is None:
            z_mix = z
        return self.control(z, phase, z_mix)

    @torch.no_grad()
    def refine(
        self,
        wave: torch.Tensor,
        steps: int | None = None,
        strength: float | None = None,
        generator: torch.Generator | None = None,
        mixture: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Refine mono segments ``[n, samples]`` (float, the model's sample rate) -> same shape.

        ``mixture``: the matching mixture segments ``[n, samples]`` (optional). ``steps=0``
        returns the predictive stage's estimate without a latent edit."""
        if wave.dim() != 2:
            raise ValueError(f"expected mono segments [n, samples], got {tuple(wave.shape)}")
        if mixture is not None and mixture.shape != wave.shape:
            raise ValueError(
                f"mixture segments {tuple(mixture.shape)} differ from the stem's "
                f"{tuple(wave.shape)}"
            )
        wave = self.predict(wave, mixture)
        if steps == 0:  # the predictive stage alone
            return wave
        feats, phase, z = self.analyse(wave)
        mix_feats = None if mixture is None else self.features(mixture[:, None])
        control = self.condition(z, phase, self.mixture_latent(z, mix_feats))
        z_hat = sample(self.denoiser, z, control, self.config.diffusion, steps, strength, generator)
        return self.apply_latent_edit(feats, z, z_hat, wave.shape[-1], mix_feats)

    def apply_latent_edit(
        self,
        feats: torch.Tensor,
        z: torch.Tensor,
        z_hat: torch.Tensor,
        length: int,
        mix_feats: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Add the decoded latent change to ``feats`` ``[n, 2, F, T]`` and return waveforms
        ``[n, length]``; with ``keep_phase`` only the magnitudes change (see the module doc),
        taking the mixture's phase (``mix_feats``, same shape) where the stem had little."""
        f, t = feats.shape[-2:]
        ae = self.autoencoder
        edited = feats + ae.decode(z_hat, f, t) - ae.decode(z, f, t)
        if self.config.keep_phase:
            edited = keep_phase(edited, feats, mix_feats)
        return self.features.inverse(edited, length)[:, 0]


def keep_phase(
    edited: torch.Tensor, stem: torch.Tensor, mixture: torch.Tensor | None = None
) -> torch.Tensor:
    """Compressed complex planes ``[n, 2, F, T]``: ``edited``'s magnitudes with the ``stem``'s
    phase, or — where the stem is weaker than half the edited compressed magnitude (about 20 dB
    in linear magnitude at p = 0.3) — the ``mixture``'s phase, or without one the edit's own."""
    eps = 1e-12
    mag = torch.linalg.vector_norm(edited, dim=1, keepdim=True)
    stem_mag = torch.linalg.vector_norm(stem, dim=1, keepdim=True)
    unit = stem / (stem_mag + eps)
    if mixture is not None:
        fallback = mixture / (torch.linalg.vector_norm(mixture, dim=1, keepdim=True) + eps)
    else:  # no better phase than the edit's own for content the stem lacks
        fallback = edited / (mag + eps)
    return mag * torch.where(stem_mag < 0.5 * mag, fallback, unit)


def make_control(denoiser: LatentDenoiser, config: StemProverConfig) -> ControlBranch:
    """The control branch for ``config`` (with the mixture's latent as context if asked)."""
    context = config.latent_channels if config.mixture_condition else 0
    return ControlBranch(
        denoiser, phase_channels=2, phase_width=config.phase_width, context_channels=context
    )
