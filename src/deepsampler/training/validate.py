"""Validation during training: SDR per source on a fixed set of corpus segments."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from deepsampler.models.deepsampler import DeepSampler
from deepsampler.training.losses import segment_si_sdr


def segment_sdr(estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Whole-segment SDR in dB, ``10 log10(|s|^2 / |s - ŝ|^2)``, over the last two dims
    (channels, samples) of ``[..., c, n]`` tensors (a small epsilon keeps silence finite)."""
    signal = reference.pow(2).sum((-2, -1))
    error = (reference - estimate).pow(2).sum((-2, -1))
    return 10 * torch.log10((signal + 1e-8) / (error + 1e-8))


@torch.inference_mode()
def validate(
    model: DeepSampler,
    loader: DataLoader,
    device: torch.device,
    silence_db: float = -60.0,
    keep_examples: int = 0,
) -> dict[str, Any]:
    """Mean segment SDR per source (dB) of ``model`` on ``loader``'s fixed segments.

    Segments where a source's reference is below ``silence_db`` dBFS RMS are not scored for
    that source (its SDR says nothing). Returns ``{"sdr": mean over sources, "per_source":
    {name: sdr}, "mixture_sdr": the same for the mixture used as the estimate (the floor),
    "si_sdr": {name: mean scale-invariant SDR}, "examples": [(mixture [c, n], estimates
    [s, c, n]) ...]`` for the first ``keep_examples``}.
    """
    was_training = model.training
    model.eval()
    sources = model.config.sources
    scores: list[list[float]] = [[] for _ in sources]
    si_scores: list[list[float]] = [[] for _ in sources]
    floors: list[list[float]] = [[] for _ in sources]
    examples = []
    for batch in loader:
        mixture = batch["mixture"].to(device)
        stems = batch["stems"].to(device)
        estimate = model(mixture).float()
        sdr = segment_sdr(estimate, stems).cpu()
        si_sdr = segment_si_sdr(estimate, stems).cpu()
        floor = segment_sdr(mixture.unsqueeze(1).expand_as(stems), stems).cpu()
        rms = 10 * torch.log10(stems.pow(2).mean((-2, -1)) + 1e-12).cpu()
        for b in range(sdr.shape[0]):
            for s in range(len(sources)):
                if rms[b, s] >= silence_db:
                    scores[s].append(float(sdr[b, s]))
                    si_scores[s].append(float(si_sdr[b, s]))
                    floors[s].append(float(floor[b, s]))
            if len(examples) < keep_examples:
                examples.append((mixture[b].cpu(), estimate[b].cpu()))
    model.train(was_training)
    per_source = {
        s: float(np.mean(v)) if v else float("nan") for s, v in zip(sources, scores, strict=True)
    }
    mixture_sdr = {
        s: float(np.mean(v)) if v else float("nan") for s, v in zip(sources, floors, strict=True)
    }
    scored = [v for v in per_source.values() if not np.isnan(v)]
    return {
        "sdr": float(np.mean(scored)) if scored else float("nan"),
        "per_source": per_source,
        "mixture_sdr": mixture_sdr,
        "si_sdr": {
            s: float(np.mean(v)) if v else float("nan")
            for s, v in zip(sources, si_scores, strict=True)
        },
        "examples": examples,
    }
