"""Diffusion objective and DDIM sampling in StemProver's latent space (``diffusers`` schedulers).

Training: v-prediction on a cosine ("squaredcos_cap_v2") noise schedule. Sampling: deterministic
DDIM (eta = 0) that starts from the *degraded* latent noised to ``strength`` of the schedule
(SDEdit-style) rather than from pure noise: the refiner only has to move a stem towards its clean
version, and a few steps suffice. ``steps`` is the quality/speed knob.
The control residuals depend on the condition only, so they are computed once by the caller and
passed to every step.
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
    """Mean squared v-prediction error on clean latents ``z0`` ``[b, c, f, t]``."""
    sched = config.scheduler()
    b = z0.shape[0]
    t = torch.randint(0, config.train_timesteps, (b,), generator=generator, device="cpu")
    noise = torch.randn(z0.shape, generator=generator, device="cpu").to(z0)
    t = t.to(z0.device)
    noisy = sched.add_noise(z0, noise, t)
    target = sched.get_velocity(z0, noise, t)
    return F.mse_loss(denoiser(noisy, t, control), target)


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
