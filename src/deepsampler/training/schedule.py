"""Learning-rate schedule: linear warm-up, then cosine decay."""

from __future__ import annotations

import math


def warmup_cosine(step: int, total_steps: int, warmup_steps: int, min_ratio: float) -> float:
    """Multiplier of the base learning rate before optimizer step ``step`` (0-based).

    Rises linearly from ``1 / warmup_steps`` to 1 over the first ``warmup_steps`` steps, then
    follows a half cosine from 1 down to ``min_ratio`` at ``total_steps - 1``; stays there after.
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - 1 - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
