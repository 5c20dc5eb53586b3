"""Oracle ideal ratio masks: the ceiling of a mask-based separator at a given STFT."""

from __future__ import annotations

import numpy as np
import torch

from deepsampler.audio.stft import STFT


def ideal_ratio_mask(
    mixture: np.ndarray, stems: np.ndarray, n_fft: int, hop: int, power: int
) -> np.ndarray:
    """Separate ``mixture [c, n]`` with the ideal ratio mask ``|S_j|^p / sum_k |S_k|^p`` of the
    true ``stems [s, c, n]`` (p = 1: IRM1, magnitude ratio; p = 2: IRM2, power ratio) at the
    given STFT, keeping the mixture's phase. Returns ``[s, c, n]``."""
    stft = STFT(n_fft, hop)
    spec = stft(torch.from_numpy(np.asarray(stems, dtype=np.float64)))  # [s, c, f, t]
    mix = stft(torch.from_numpy(np.asarray(mixture, dtype=np.float64)))[None]
    mag = spec.abs() ** power
    masks = mag / mag.sum(0, keepdim=True).clamp_min(1e-12)
    return stft.inverse(mix * masks, mixture.shape[-1]).numpy()
