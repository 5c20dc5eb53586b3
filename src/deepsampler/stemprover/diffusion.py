"""Diffusion objective and DDIM sampling in StemProver's latent space (``diffusers`` schedulers).

Training: v-prediction on a cosine ("squaredcos_cap_v2") noise schedule. Sampling: deterministic
DDIM (eta = 0) that starts from the *degraded* latent noised to ``strength`` of the schedule
(SDEdit-style) rather than from pure noise: the refiner only has to move a stem towards its clean
version, and a few steps suffice. ``steps`` is the quality/speed knob.
The control residuals depend on the condition only, so they are computed once by the caller and
passed to every step.

``refinement_prediction`` is the conditional stages' training step. Half of its rows (by default)
are noised from the *degraded* latent at a timestep within ``strength`` — exactly the state the
sampler starts from — and asked for the clean latent. Trained on clean-latent noise alone, the
model treats the degraded signal visible in that starting state as the answer and hands it back
(the first StemProver model did: ΔSDR fell towards 0 as strength fell and below it as it rose).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler

from deepsampler.stemprover.denoiser import LatentDenoiser


@dataclass(frozen=True)
class DiffusionConfig:
    """Noise schedule and sampling defaults.

    ``strength`` in (0, 1]: how far into the schedule the degraded latent is noised before
    denoising (1 = from pure noise, ignoring the degraded latent except through the control).
    """

    train_timesteps: int = 1000
    beta_schedule: str = "squaredcos_cap_v2"
    strength: float = 0.5
    steps: int = 4

    def __post_init__(self) -> None:
        if self.train_timesteps < 2:
            raise ValueError(f"train_timesteps must be >= 2, got {self.train_timesteps}")
        if not 0.0 < self.strength <= 1.0:
            raise ValueError(f"strength must be in (0, 1], got {self.strength}")
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")

    def scheduler(self) -> DDIMScheduler:
        """A fresh scheduler (schedulers keep per-sampling state, so never share one)."""
        return DDIMScheduler(
            num_train_timesteps=self.train_timesteps,
            beta_schedule=self.beta_schedule,
            prediction_type="v_prediction",
            clip_sample=False,
            set_alpha_to_one=True,
            timestep_spacing="trailing",
        )


def diffusion_loss(
    denoiser: LatentDenoiser,
    z0: torch.Tensor,
    config: DiffusionConfig,
    control: list[torch.Tensor] | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Mean squared v-prediction error on clean latents ``z0`` ``[b, c, f, t]`` (the base model's
    loss): :func:`refinement_prediction` with no degraded starts."""
    v_loss, _, _, _ = refinement_prediction(
        denoiser, z0, z0, config, control, degraded_start=0.0, generator=generator
    )
    return v_loss


@torch.no_grad()
def sample(
    denoiser: LatentDenoiser,
    start: torch.Tensor,
    control: list[torch.Tensor] | None,
    config: DiffusionConfig,
    steps: int | None = None,
    strength: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Denoise ``start`` (the degraded latent ``[b, c, f, t]``) with ``steps`` DDIM steps.

    Returns the refined latent, same shape. Deterministic for a given ``generator`` state.
    """
    steps = config.steps if steps is None else steps
    strength = config.strength if strength is None else strength
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if not 0.0 < strength <= 1.0:
        raise ValueError(f"strength must be in (0, 1], got {strength}")
    sched = config.scheduler()
    # spread `steps` steps over the part of the schedule that `strength` covers
    total = max(steps, round(steps / strength))
    sched.set_timesteps(total)
    timesteps = sched.timesteps[total - steps :]
    noise = torch.randn(start.shape, generator=generator, device="cpu").to(start)
    x = sched.add_noise(start, noise, timesteps[:1].repeat(start.shape[0]))
    for t in timesteps:
        tt = torch.full((start.shape[0],), int(t), device=start.device, dtype=torch.long)
        v = denoiser(x, tt, control)
        x = sched.step(v, t, x, eta=0.0).prev_sample
    return x


def predicted_clean(
    config: DiffusionConfig, noisy: torch.Tensor, v: torch.Tensor, t: torch.Tensor
) -> torch.Tensor:
    """The clean latent implied by a v-prediction: ``sqrt(a) x_t - sqrt(1 - a) v`` per row."""
    a = config.scheduler().alphas_cumprod.to(noisy.device)[t].to(noisy.dtype)
    a = a.view(-1, *([1] * (noisy.dim() - 1)))
    return a.sqrt() * noisy - (1 - a).sqrt() * v


def refinement_prediction(
    denoiser: LatentDenoiser,
    z0: torch.Tensor,
    z_degraded: torch.Tensor,
    config: DiffusionConfig,
    control: list[torch.Tensor] | None,
    degraded_start: float = 0.5,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One conditional training step's prediction, ``[b, c, f, t]`` latents in.

    Rows drawn with probability ``degraded_start`` start from ``z_degraded`` noised at a timestep
    in ``[strength * T / 2, strength * T]`` (the sampler's first state is at ``strength * T``);
    the others are ordinary diffusion rows (``z0`` noised at any timestep). Returns
    ``(v_loss, x0_pred, from_degraded, weight)``: the mean v-prediction error over the ordinary
    rows (0 if none), the implied clean latent of every row, the boolean row mask of degraded
    starts, and per-row weights ``1 / (1 - alpha_bar_t)`` for an error on ``x0_pred``. Those
    weights make an ``x0`` error count as much as the same error in ``v`` (``x0 = sqrt(a) x_t -
    sqrt(1 - a) v``): unweighted, a low-noise row's ``x0`` error reaches ``v`` shrunk by
    ``1 - a`` and the degraded-start rows barely train (the second model's control did not).
    """
    sched = config.scheduler()
    b = z0.shape[0]
    top = max(1, int(round(config.strength * (config.train_timesteps - 1))))
    from_deg = torch.rand(b, generator=generator) < degraded_start
    t_any = torch.randint(0, config.train_timesteps, (b,), generator=generator)
    t_low = torch.randint(max(1, top // 2), top + 1, (b,), generator=generator)
    t = torch.where(from_deg, t_low, t_any).to(z0.device)
    noise = torch.randn(z0.shape, generator=generator).to(z0)
    mask = from_deg.to(z0.device).view(-1, *([1] * (z0.dim() - 1)))
    start = torch.where(mask, z_degraded, z0)
    noisy = sched.add_noise(start, noise, t)
    v = denoiser(noisy, t, control)
    plain = ~from_deg.to(z0.device)
    if plain.any():
        target = sched.get_velocity(z0, noise, t)
        v_loss = F.mse_loss(v[plain], target[plain])
    else:
        v_loss = v.sum() * 0.0
    alpha = sched.alphas_cumprod.to(z0.device)[t].to(z0.dtype)
    weight = 1.0 / (1.0 - alpha).clamp_min(1e-3)
    return v_loss, predicted_clean(config, noisy, v, t), from_deg.to(z0.device), weight
