"""Refiners that share StemProver's interface: mono segments ``[n, samples]`` -> same shape.

* ``IdentityRefiner``: returns its input (the benchmark's Delta = 0 control).
* ``PredictorRefiner``: StemProver's predictive stage alone (no latent edit): what the diffusion
  adds on top of it is the difference between its row and StemProver's.
* ``GuideRefiner``: the predictive stage's guide separator alone (models whose predictor has
  one): the guide's estimate of the stem's source from the mixture segment, ignoring the stem
  beyond picking the source. If StemProver does not beat it, the stem adds nothing.
* ``RegressionRefiner``: the same latent space and a network of the same size as the diffusion
  model's denoiser + control branch, trained to predict the clean latent in one pass, without
  diffusion. If diffusion does not beat it, diffusion is not earning its cost. Like StemProver
  it refines the predictive stage's estimate when the model has one.
"""

from __future__ import annotations

import torch
from torch import nn

from deepsampler.stemprover.denoiser import LatentDenoiser
from deepsampler.stemprover.model import StemProver, StemProverConfig, make_control


class IdentityRefiner:
    """Returns the input unchanged."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate

    def __call__(self, segments: torch.Tensor, mixture: torch.Tensor | None = None) -> torch.Tensor:
        return segments.clone()


class PredictorRefiner:
    """StemProver's predictive stage alone (the stem unchanged for models without one)."""

    def __init__(self, model: StemProver) -> None:
        self.model = model.eval()
        self.sample_rate = model.config.sample_rate

    def __call__(self, segments: torch.Tensor, mixture: torch.Tensor | None = None) -> torch.Tensor:
        return self.model.predict(segments, mixture).clone()


class GuideRefiner:
    """The predictive stage's guide separator alone (the stem unchanged without a mixture)."""

    def __init__(self, model: StemProver) -> None:
        if model.predictor is None or model.predictor.guide_model is None:
            raise ValueError("GuideRefiner needs a model whose predictor has a guide separator")
        self.model = model.eval()
        self.sample_rate = model.config.sample_rate

    def __call__(self, segments: torch.Tensor, mixture: torch.Tensor | None = None) -> torch.Tensor:
        if mixture is None:
            return segments.clone()
        assert self.model.predictor is not None
        return self.model.predictor.guide(segments, mixture)


class RegressionNet(nn.Module):
    """Denoiser + control branch of the diffusion model's sizes, used as a one-pass predictor of
    the latent change ``z_clean - z_degraded`` from the degraded latent, its phase features and
    (for mixture-conditioned models) the mixture's latent — the same inputs as the diffusion
    model's control branch. Built from the model (or its config: only the sizes count)."""

    def __init__(self, model: StemProver | StemProverConfig) -> None:
        super().__init__()
        self.config = c = model if isinstance(model, StemProverConfig) else model.config
        self.denoiser = LatentDenoiser(c.latent_channels, c.denoiser_width, c.bands, c.heads)
        self.control = make_control(self.denoiser, c)
        self.mixture_condition = c.mixture_condition

    def forward(
        self, z: torch.Tensor, phase: torch.Tensor, z_mix: torch.Tensor | None = None
    ) -> torch.Tensor:
        if self.mixture_condition and z_mix is None:
            z_mix = z
        t = torch.zeros(z.shape[0], dtype=torch.long, device=z.device)
        return self.denoiser(z, t, self.control(z, phase, z_mix))


class RegressionRefiner:
    """One-pass refiner: ``z_hat = z + net(z, phase)``, decoded as a change like StemProver."""

    def __init__(self, model: StemProver, net: RegressionNet) -> None:
        self.model = model.eval()
        self.net = net.eval()
        self.sample_rate = model.config.sample_rate

    @torch.no_grad()
    def __call__(self, segments: torch.Tensor, mixture: torch.Tensor | None = None) -> torch.Tensor:
        m = self.model
        segments = m.predict(segments, mixture)
        feats, phase, z = m.analyse(segments)
        mix_feats = None if mixture is None else m.features(mixture[:, None])
        z_hat = z + self.net(z, phase, m.mixture_latent(z, mix_feats))
        return m.apply_latent_edit(feats, z, z_hat, segments.shape[-1], mix_feats)
